"""Basic layers: Linear (one fused op per call), Identity, Flatten and Dropout."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._random import Generator
from ..ops import flatten, linear, linear_act
from ..tensor import Tensor
from . import functional as F
from .activations import ReLU, Sigmoid, Tanh
from .init import get_initializer, zeros
from .module import Module, Parameter

_FUSABLE = {ReLU: "relu", Tanh: "tanh", Sigmoid: "sigmoid"}  # Linear/Conv2d + these: one op


def _parameter(shape: tuple[int, ...], dtype: Any) -> Parameter:
    """A zero Parameter of ``shape`` (float32 unless ``dtype`` says otherwise)."""
    return Parameter(Tensor._make(np.zeros(shape, np.dtype(dtype or np.float32))))


class _WeightAndBias(Module):
    """Shared code of Linear and Conv2d: a weight drawn by an initialiser and an optional bias
    (one entry per output) that starts at 0."""

    def _fusable(self, nxt: Module, own: type) -> str | None:
        """The activation's name when ``self`` is exactly ``own`` and ``nxt`` a plain ReLU, Tanh
        or Sigmoid, so that both can run as one primitive: None when a forward hook on either
        would see the intermediate result."""
        act = _FUSABLE.get(type(nxt))
        if act is None or type(self) is not own or self._forward_hooks or nxt._forward_hooks:
            return None
        return act

    def _make_parameters(self, weight_shape: tuple[int, ...], bias: bool,
                         init: str | Callable[..., Tensor], generator: Generator | None,
                         dtype: Any) -> None:
        """Create ``weight`` of ``weight_shape`` and, with ``bias``, ``bias`` of its first
        dimension; then draw them with ``reset_parameters``."""
        self.init = get_initializer(init)
        self.weight = _parameter(weight_shape, dtype)
        self.bias = _parameter(weight_shape[:1], dtype) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        """Draw new weights with the layer's initialiser and zero the bias."""
        if generator is None:
            self.init(self.weight)
        else:
            self.init(self.weight, generator=generator)
        if self.bias is not None:
            zeros(self.bias)


class Linear(_WeightAndBias):
    """y = x @ W.T + b, with W of shape (out_features, in_features) as in PyTorch.

    ``init`` names the weight initialiser (default "glorot_uniform"; see
    ``chainrule.nn.init.get_initializer``) or is a callable ``f(weight)``; the bias starts at 0.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 init: str | Callable[..., Tensor] = "glorot_uniform",
                 generator: Generator | None = None, dtype: Any = None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._make_parameters((out_features, in_features), bias, init, generator, dtype)

    def forward(self, input: Tensor) -> Tensor:
        return linear(input, self.weight, self.bias)

    def fuse_next(self, nxt: Module, x: Any) -> Tensor | None:
        """``nxt(self(x))`` as one primitive when they can fuse (see ``_fusable``)."""
        act = self._fusable(nxt, Linear)
        return None if act is None else linear_act(x, self.weight, self.bias, act)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. to remove a layer)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


class Flatten(Module):
    """Merge dimensions ``start_dim``..``end_dim`` into one (by default all but the batch)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input: Tensor) -> Tensor:
        return flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Inverted dropout (Srivastava et al. 2014): in training mode zero each element with
    probability ``p`` and scale the rest by 1/(1-p); in eval mode, the identity."""

    def __init__(self, p: float = 0.5, generator: Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p, self.generator = p, generator

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
