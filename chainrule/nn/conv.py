"""Convolution and pooling layers (Conv2d, MaxPool2d, AvgPool2d) over NCHW images, with
PyTorch's constructor arguments and reprs; the work is done by ``chainrule.ops.conv``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._random import Generator
from ..ops.conv import (
    as_pair,
    avg_pool2d,
    conv2d,
    conv2d_act,
    conv_padding,
    max_pool2d,
    pool_geometry,
)
from ..tensor import Tensor
from .layers import _WeightAndBias
from .module import Module


class Conv2d(_WeightAndBias):
    """2-D convolution: weight (out_channels, in_channels / groups, kh, kw) and bias
    (out_channels,). ``padding`` is an int, a pair, "valid" or "same" (stride 1), as in PyTorch;
    ``groups`` splits the channels into that many independent convolutions.

    ``init`` names the weight initialiser, as for Linear (default "glorot_uniform"; "he_uniform"
    suits ReLU networks; see ``chainrule.nn.init.get_initializer``) or is a callable
    ``f(weight)``; fans count the receptive field (fan_in = in_channels / groups * kh * kw).
    The bias starts at 0.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 init: str | Callable[..., Tensor] = "glorot_uniform",
                 generator: Generator | None = None, dtype: Any = None) -> None:
        super().__init__()
        for name, n in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("groups", groups)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise ValueError(f"Conv2d: {name} must be a positive int, got {n!r}")
        for name, n in (("in_channels", in_channels), ("out_channels", out_channels)):
            if n % groups:
                raise ValueError(f"Conv2d: {name} ({n}) must be divisible by groups ({groups})")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.groups = int(groups)
        self.kernel_size = as_pair(kernel_size, "kernel_size", "Conv2d", 1)
        self.stride = as_pair(stride, "stride", "Conv2d", 1)
        self.dilation = as_pair(dilation, "dilation", "Conv2d", 1)
        conv_padding(padding, self.kernel_size, self.stride, self.dilation, "Conv2d")  # fail now
        self.padding = padding if isinstance(padding, str) else as_pair(padding, "padding",
                                                                         "Conv2d", 0)
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self._make_parameters(shape, bias, init, generator, dtype)

    def forward(self, input: Tensor) -> Tensor:
        return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)

    def fuse_next(self, nxt: Module, x: Any) -> Tensor | None:
        """``nxt(self(x))`` as one primitive when they can fuse (see ``_fusable``)."""
        act = self._fusable(nxt, Conv2d)
        if act is None:
            return None
        return conv2d_act(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                          self.groups, act)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class MaxPool2d(Module):
    """Maximum over each window (stride defaults to the kernel size; padding is -inf)."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1) -> None:
        super().__init__()
        pool_geometry(kernel_size, stride, padding, "MaxPool2d")  # fail here, not in forward
        as_pair(dilation, "dilation", "MaxPool2d", 1)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation

    def forward(self, input: Tensor) -> Tensor:
        return max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}")


class AvgPool2d(Module):
    """Mean over each window, zero padding counted in the divisor (PyTorch's defaults)."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        pool_geometry(kernel_size, stride, padding, "AvgPool2d")
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def forward(self, input: Tensor) -> Tensor:
        return avg_pool2d(input, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
