"""chainrule: train neural networks of arbitrary connectivity by backpropagation, on NumPy.

PyTorch's names: ``chainrule.tensor``, ``Tensor.backward``, ``no_grad``, ``nn``, ``optim``; and
JAX's composable transformations: ``chainrule.grad``, ``value_and_grad``, ``jacobian``,
``hessian``.
"""

from __future__ import annotations

import os

# OpenBLAS's worker threads spin for a long time before they sleep (OPENBLAS_THREAD_TIMEOUT 28,
# 2^28 cycles). On a small machine a spinning pool takes the cores the next operation needs: with
# 2 threads a 64-128-128-10 MLP step took 9.6 ms instead of 0.24 ms, the 784-512-512-10 one
# 11.6 ms instead of 4.8 ms single-threaded. Spinning 2^18 cycles (~0.1 ms) instead keeps the
# threads' gain (2.9 ms). OpenBLAS reads this once, when NumPy loads it: set here, it takes
# effect when chainrule is imported before NumPy (the chainrule command always is); a value you
# set yourself is kept.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "18")

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from . import autograd, data, diagnostics, nn, optim, train
from ._malloc import tune_malloc as _tune_malloc
from ._mode import detect_anomaly, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from ._random import Generator, default_generator, manual_seed
from ._threads import get_num_threads, set_num_threads
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

_tune_malloc()  # glibc's thresholds where its own adjustment ends: no page-fault storms (_malloc)

try:
    __version__ = _version("chainrule")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

bool = bool_  # noqa: A001  (torch.bool)
