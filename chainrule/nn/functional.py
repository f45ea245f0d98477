"""Function forms of the layers and losses (``import chainrule.nn.functional as F``), as
torch.nn.functional: stateless, with weights and running statistics passed in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._mode import no_grad
from .._random import Generator, rng
from ..ops import (
    elu,
    leaky_relu,
    linear,
    log_softmax,
    nondiff,
    relu,
    sigmoid,
    softmax,
    softplus,
    tanh,
)
from ..ops.conv import avg_pool2d, conv2d, max_pool2d
from ..ops.nn import batch_moments, gelu, normalize, softsign
from ..tensor import Tensor, _mutate, _no_value_under_trace
from .losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    gaussian_nll_loss,
    huber_loss,
    l1_loss,
    mse_loss,
    nll_loss,
    sum_squared_error,
)

__all__ = [
    "linear", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "softsign", "gelu",
    "softmax", "log_softmax", "dropout", "batch_norm", "layer_norm", "one_hot",
    "mse_loss", "sum_squared_error", "l1_loss", "huber_loss", "gaussian_nll_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "nll_loss",
    "conv2d", "max_pool2d", "avg_pool2d",
]


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            generator: Generator | None = None) -> Tensor:
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the
    survivors by 1/(1-p), so evaluation needs no rescaling; outside training, the identity."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    dtype = input.dtype if input.dtype.kind == "f" else np.dtype(np.float32)
    if p == 1.0:
        return input * np.zeros(input.shape, dtype)
    keep = rng(generator).random(input.shape, dtype=np.float32) >= p
    return input * (keep * np.asarray(1.0 / (1.0 - p), dtype))


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float | Tensor = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel (dim 1) of (N, C, ...) input. In training, with batch statistics,
    updating the running ones in place (running_var with the unbiased batch variance, as
    PyTorch; ``momentum`` may be a 0-d tensor); otherwise with the running statistics."""
    x = input.data
    if x.ndim < 2:
        raise ValueError(f"batch_norm expects input of shape (N, C, ...), got {x.shape}")
    c = x.shape[1]
    axes = (0,) + tuple(range(2, x.ndim))
    pshape = (1, c) + (1,) * (x.ndim - 2)
    if training:
        n = x.size // max(c, 1)
        if n <= 1:
            raise ValueError(
                f"batch_norm needs more than 1 value per channel when training, got input of "
                f"shape {x.shape}; use a larger batch or call .eval()"
            )
        # the batch statistics, computed once for the running averages and the normalisation;
        # tensor ops and in-place updates told to the tracer, so chainrule.compile replays them
        mean, var = batch_moments(input, axes)
        with no_grad():
            if running_mean is not None:
                _update_running(running_mean, mean.reshape(c), momentum)
            if running_var is not None:
                _update_running(running_var, var.reshape(c), momentum, unbias_n=n)
        return normalize(input, weight, bias, axes, axes, pshape, eps, mean, var)
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are required when not training")
    return normalize(input, weight, bias, axes, axes, pshape, eps, running_mean.reshape(pshape),
                     running_var.reshape(pshape), fixed=True)


def _update_running(running: Tensor, stat: Tensor, momentum: float | Tensor,
                    unbias_n: int | None = None) -> None:
    """running = (1 - momentum) * running + momentum * stat (stat times n / (n - 1) with
    ``unbias_n``: the unbiased variance), in place; told to a compile tracer, with a 0-d tensor
    momentum (BatchNorm's cumulative average, 1 / batches seen) read at every replay."""
    running._check_inplace("running statistics update")
    _mutate(_running_average, running.data, stat.data,
            momentum.data if isinstance(momentum, Tensor) else momentum, unbias_n)


def _running_average(running: np.ndarray, stat: np.ndarray, momentum: Any,
                     unbias_n: int | None) -> None:
    """The arrays' update of ``_update_running`` (factors rounded from Python floats)."""
    m = float(momentum)
    alpha = m if unbias_n is None else m * unbias_n / (unbias_n - 1)
    np.multiply(running, 1.0 - m, out=running, casting="same_kind")
    np.add(running, stat * alpha, out=running, casting="same_kind")


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dimensions of each example (Ba et al.
    2016), then scale and shift elementwise."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    nd, k = input.ndim, len(shape)
    if tuple(input.shape[nd - k:]) != shape or k == 0:
        raise ValueError(
            f"layer_norm: input of shape {tuple(input.shape)} does not end with normalized_shape "
            f"{shape}"
        )
    axes = tuple(range(nd - k, nd))
    return normalize(input, weight, bias, axes, tuple(range(nd - k)), shape, eps)


def one_hot(tensor: Any, num_classes: int = -1) -> Tensor:
    """Integer labels of shape S as an int64 tensor of shape S + (num_classes,) with a 1 at each
    label (``num_classes=-1``: one more than the largest label)."""
    labels = np.asarray(tensor.data if isinstance(tensor, Tensor) else tensor)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"one_hot expects integer class labels, got dtype {labels.dtype}")
    if num_classes == -1:  # the output's shape from the labels' values: not in a compiled step
        if isinstance(tensor, Tensor):
            _no_value_under_trace(tensor, "one_hot without num_classes")
        num_classes = int(labels.max()) + 1 if labels.size else 0
    return _one_hot(tensor, num_classes=num_classes)


def _one_hot_fwd(labels: np.ndarray, num_classes: int) -> np.ndarray:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise IndexError(f"one_hot: labels must be in [0, {num_classes}), got {labels.min()}.."
                         f"{labels.max()}")
    return (labels[..., None] == np.arange(num_classes)).astype(np.int64)


_one_hot = nondiff("one_hot", _one_hot_fwd)  # an operation: a compiled step replays it
