"""Functions that make tensors (PyTorch names): from data, constants, ranges and random draws.

Random draws come from ``chainrule.manual_seed``'s default generator unless a ``generator`` is
given. Floats are float32 unless ``dtype`` says otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._random import Generator, rng
from .tensor import Tensor

_F32 = np.float32


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """A new tensor holding a copy of ``data`` (floats become float32 unless ``dtype`` is given)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(data: Any, dtype: Any = None) -> Tensor:
    """``data`` as a tensor; a tensor of the right dtype is returned as it is."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype == np.dtype(dtype)):
        return data
    return Tensor(data, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``array``, keeping its dtype (as torch.from_numpy)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor._make(array)


def _size(size: tuple) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"sizes must be non-negative integers, got {size}")
    return tuple(int(s) for s in size)


def _new(arr: np.ndarray, requires_grad: bool) -> Tensor:
    t = Tensor._make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def zeros(*size: Any, dtype: Any = _F32, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros."""
    return _new(np.zeros(_size(size), dtype=dtype), requires_grad)


def ones(*size: Any, dtype: Any = _F32, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return _new(np.ones(_size(size), dtype=dtype), requires_grad)


def empty(*size: Any, dtype: Any = _F32, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor (its values are whatever memory held)."""
    return _new(np.empty(_size(size), dtype=dtype), requires_grad)


def full(size: Any, fill_value: float, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value``."""
    if dtype is None:
        dtype = _F32 if isinstance(fill_value, float) else np.asarray(fill_value).dtype
    size = _size((size,) if isinstance(size, int) else tuple(size))
    return _new(np.full(size, fill_value, dtype=dtype), requires_grad)


def _like(t: Any, dtype: Any) -> tuple[tuple, Any]:
    arr = t.data if isinstance(t, Tensor) else np.asarray(t)
    return arr.shape, (arr.dtype if dtype is None else dtype)


def zeros_like(input: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros with the shape (and dtype) of ``input``."""
    shape, dt = _like(input, dtype)
    return _new(np.zeros(shape, dtype=dt), requires_grad)


def ones_like(input: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones with the shape (and dtype) of ``input``."""
    shape, dt = _like(input, dtype)
    return _new(np.ones(shape, dtype=dt), requires_grad)


def full_like(input: Any, fill_value: float, dtype: Any = None,
              requires_grad: bool = False) -> Tensor:
    """``fill_value`` with the shape (and dtype) of ``input``."""
    shape, dt = _like(input, dtype)
    return _new(np.full(shape, fill_value, dtype=dt), requires_grad)


def arange(start: float, end: float | None = None, step: float = 1, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Values from ``start`` (inclusive) to ``end`` (exclusive) in steps of ``step``."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if is_int else _F32
    return _new(np.arange(start, end, step, dtype=dtype), requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = _F32,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    return _new(np.linspace(start, end, steps, dtype=dtype), requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = _F32, requires_grad: bool = False) -> Tensor:
    """The identity matrix."""
    return _new(np.eye(n, m, dtype=dtype), requires_grad)


def randn(*size: Any, generator: Generator | None = None, dtype: Any = _F32,
          requires_grad: bool = False) -> Tensor:
    """Samples from the standard normal distribution."""
    return _new(rng(generator).standard_normal(_size(size)).astype(dtype), requires_grad)


def rand(*size: Any, generator: Generator | None = None, dtype: Any = _F32,
         requires_grad: bool = False) -> Tensor:
    """Samples from the uniform distribution on [0, 1)."""
    return _new(rng(generator).random(_size(size)).astype(dtype), requires_grad)


def randint(low: int, high: int | None = None, size: Any = (), *,
            generator: Generator | None = None, dtype: Any = np.int64) -> Tensor:
    """Random integers from ``low`` (inclusive) to ``high`` (exclusive)."""
    if high is None:
        low, high = 0, low
    shape = _size((size,) if isinstance(size, int) else tuple(size))
    return Tensor._make(rng(generator).integers(low, high, shape).astype(dtype))


def randperm(n: int, *, generator: Generator | None = None) -> Tensor:
    """A random permutation of 0..n-1."""
    return Tensor._make(rng(generator).permutation(n).astype(np.int64))
