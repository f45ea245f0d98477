"""chainrule: train neural networks of arbitrary connectivity by backpropagation, on NumPy.

PyTorch's names: ``chainrule.tensor``, ``Tensor.backward``, ``no_grad``, ``nn``, ``optim``; and
JAX's composable transformations: ``chainrule.grad``, ``value_and_grad``, ``jacobian``,
``hessian``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from . import autograd, data, diagnostics, nn, optim, train
from ._mode import detect_anomaly, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from ._random import Generator, default_generator, manual_seed
from .autograd import grad_fn as grad
from .autograd import hessian, jacobian, value_and_grad
from .compile import CompileError, compile
from .creation import (
    arange,
    as_tensor,
    empty,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from .gradcheck import gradcheck
from .io import load, save
from .ops import *  # noqa: F403  (every differentiable op as chainrule.NAME)
from .ops import abs, all, any, max, min, pow, round, sum  # noqa: F401  (shadow builtins here)
from .tensor import (
    Tensor,
    bool_,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    uint8,
)

try:
    __version__ = _version("chainrule")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

bool = bool_  # noqa: A001  (torch.bool)
