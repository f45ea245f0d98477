"""Weight initialisers (PyTorch's torch.nn.init, plus the Keras-style names layers accept as
``init="..."``). Each fills a Tensor/Parameter in place, outside the graph, and returns it.

Randomness comes from ``generator`` when given, else from the default generator that
``chainrule.manual_seed`` seeds, so initialisation is reproducible.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from .._random import Generator, rng
from ..tensor import Tensor, _mutate

_LINEAR_LIKE = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                "conv_transpose3d", "sigmoid")


def _fill(tensor: Tensor, values: Any) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(
            f"initialisers fill a chainrule Tensor in place, got {type(tensor).__name__}"
        )
    # writes the array directly (outside the graph, like torch.no_grad()), told to a compile
    # tracer so a compiled step replays it (random draws are refused there)
    _mutate(operator.setitem, tensor.data, Ellipsis, values)
    return tensor


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor by which to scale the weight std so activations keep their scale through a
    layer followed by ``nonlinearity`` (PyTorch's table: relu sqrt(2), tanh 5/3, selu 3/4...)."""
    if nonlinearity in _LINEAR_LIKE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {slope!r} is not a number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; use one of "
        f"{', '.join(_LINEAR_LIKE + ('tanh', 'relu', 'leaky_relu', 'selu'))}"
    )


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """Fan-in and fan-out of a weight: (out, in) for Linear, (out, in, kh, kw) for conv, whose
    fans are multiplied by the receptive-field size kh*kw (as PyTorch)."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(
            f"fan in and fan out need a weight with at least 2 dimensions, got shape {shape}; "
            "initialise biases with zeros/constant/uniform"
        )
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform(tensor: Tensor, a: float = 0.0, b: float = 1.0,
            generator: Generator | None = None) -> Tensor:
    """Fill with draws from U(a, b)."""
    return _fill(tensor, rng(generator).uniform(a, b, tensor.shape))


def normal(tensor: Tensor, mean: float = 0.0, std: float = 1.0,
           generator: Generator | None = None) -> Tensor:
    """Fill with draws from N(mean, std^2).

    Beware the default std=1 (a standard normal) for weights: the pre-activation variance then
    grows with the fan-in and sigmoid/tanh units saturate, the failure in deep sigmoid networks
    that Glorot & Bengio (2010) analysed. Prefer ``glorot_*`` (sigmoid/tanh) or ``he_*`` (ReLU).
    """
    return _fill(tensor, rng(generator).normal(mean, std, tensor.shape))


def constant(tensor: Tensor, val: float) -> Tensor:
    """Fill with the value ``val``."""
    return _fill(tensor, val)


def zeros(tensor: Tensor) -> Tensor:
    """Fill with zeros (the default for biases)."""
    return _fill(tensor, 0)


def ones(tensor: Tensor) -> Tensor:
    """Fill with ones."""
    return _fill(tensor, 1)


def glorot_uniform(tensor: Tensor, gain: float = 1.0,
                   generator: Generator | None = None) -> Tensor:
    """U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)): weight variance 2 / (fan_in + fan_out)
    keeps activations and gradients at the same scale forwards and backwards (Glorot & Bengio
    2010). Layers' default."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(tensor, -bound, bound, generator)


def glorot_normal(tensor: Tensor, gain: float = 1.0,
                  generator: Generator | None = None) -> Tensor:
    """N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def he_uniform(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
               nonlinearity: str = "leaky_relu", generator: Generator | None = None) -> Tensor:
    """U(-b, b), b = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a) (sqrt(2) for
    ReLU): keeps the activation variance constant through ReLU layers (He et al. 2015)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return uniform(tensor, -math.sqrt(3.0) * std, math.sqrt(3.0) * std, generator)


def he_normal(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
              nonlinearity: str = "leaky_relu", generator: Generator | None = None) -> Tensor:
    """N(0, std^2), std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a) (He et al.
    2015)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal(tensor, 0.0, std, generator)


def lecun_normal(tensor: Tensor, generator: Generator | None = None) -> Tensor:
    """N(0, 1 / fan_in) (LeCun et al. 1998), the choice for SELU networks; a plain (not
    truncated) normal."""
    return normal(tensor, 0.0, 1.0 / math.sqrt(_fan(tensor, "fan_in")), generator)


def orthogonal(tensor: Tensor, gain: float = 1.0, generator: Generator | None = None) -> Tensor:
    """A (semi-)orthogonal matrix times ``gain``, from the QR decomposition of a Gaussian matrix
    (Saxe et al. 2013); dimensions after the first are flattened."""
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal needs a tensor of at least 2 dimensions, got {tensor.shape}")
    rows = tensor.shape[0]
    cols = tensor.data.size // rows if rows else 0
    flat = rng(generator).normal(0.0, 1.0, (rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))  # makes the decomposition unique, hence Haar-distributed
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))


# PyTorch's in-place names
uniform_, normal_, constant_, zeros_, ones_ = uniform, normal, constant, zeros, ones
xavier_uniform = xavier_uniform_ = glorot_uniform
xavier_normal = xavier_normal_ = glorot_normal
kaiming_uniform = kaiming_uniform_ = he_uniform
kaiming_normal = kaiming_normal_ = he_normal
orthogonal_ = orthogonal

_BY_NAME: dict[str, Callable[..., Tensor]] = {
    "glorot_uniform": glorot_uniform, "glorot_normal": glorot_normal,
    "xavier_uniform": glorot_uniform, "xavier_normal": glorot_normal,
    "he_uniform": he_uniform, "he_normal": he_normal,
    "kaiming_uniform": he_uniform, "kaiming_normal": he_normal,
    "lecun_normal": lecun_normal, "orthogonal": orthogonal,
    "normal": normal, "uniform": uniform,
    "zeros": lambda tensor, generator=None: zeros(tensor),
    "ones": lambda tensor, generator=None: ones(tensor),
}


def get_initializer(init: str | Callable[..., Tensor]) -> Callable[..., Tensor]:
    """The initialiser called ``init`` (e.g. "glorot_uniform", "he_normal", "orthogonal"; a
    trailing underscore is accepted), called as ``f(tensor, generator=...)``; or ``init`` itself
    if it is a callable (layers call it as ``f(weight)``, adding ``generator=`` only if given)."""
    if callable(init):
        return init
    if isinstance(init, str):
        fn = _BY_NAME.get(init.removesuffix("_"))
        if fn is not None:
            return fn
    raise ValueError(
        f"unknown initialiser {init!r}; use a callable f(tensor) or one of: "
        f"{', '.join(sorted(_BY_NAME))}"
    )
