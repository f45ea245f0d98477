"""Normalisation layers: BatchNorm1d/2d (Ioffe & Szegedy 2015) and LayerNorm (Ba et al. 2016),
each one fused primitive per call; running statistics are buffers, as in PyTorch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._mode import no_grad
from ..tensor import Tensor
from . import functional as F
from .init import ones, zeros
from .layers import _parameter as _param
from .module import Module


class _BatchNorm(Module):
    """Shared code of BatchNorm1d/2d: per-channel statistics over every dim but dim 1."""

    _ndims: tuple[int, ...] = ()
    _shapes = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype: Any = None, *,
                 bias: bool = True) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = _param((num_features,), dtype) if affine else None
        self.bias = _param((num_features,), dtype) if affine and bias else None
        if track_running_stats:
            dt = np.dtype(dtype or np.float32)
            self.register_buffer("running_mean", Tensor._make(np.zeros(num_features, dt)))
            self.register_buffer("running_var", Tensor._make(np.ones(num_features, dt)))
            self.register_buffer("num_batches_tracked", Tensor._make(np.zeros((), np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches seen."""
        if self.track_running_stats:
            zeros(self.running_mean)
            ones(self.running_var)
            zeros(self.num_batches_tracked)

    def reset_parameters(self) -> None:
        """Reset the running statistics, and the affine weight to 1 and bias to 0."""
        self.reset_running_stats()
        if self.weight is not None:
            ones(self.weight)
        if self.bias is not None:
            zeros(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        shape = tuple(input.shape)
        if len(shape) not in self._ndims:
            raise ValueError(
                f"{type(self).__name__} expects input of shape {self._shapes}, got shape {shape}"
            )
        if shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}) got {shape[1]} channels on dim 1 "
                f"(input shape {shape})"
            )
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            with no_grad():
                self.num_batches_tracked += 1
            if self.momentum is None:  # cumulative moving average: an operation, replayed
                factor = 1.0 / self.num_batches_tracked
        use_batch_stats = self.training or self.running_mean is None
        return F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                            use_batch_stats, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input, per channel C."""

    _ndims = (2, 3)
    _shapes = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) input, per channel C."""

    _ndims = (4,)
    _shapes = "(N, C, H, W)"


class LayerNorm(Module):
    """Normalise each example over its trailing ``normalized_shape`` dims, then scale and shift
    elementwise (learned weight 1 and bias 0 at the start)."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, dtype: Any = None) -> None:
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        shape = tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        self.weight = ones(_param(shape, dtype)) if elementwise_affine else None
        self.bias = zeros(_param(shape, dtype)) if elementwise_affine and bias else None

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")
