"""Reductions (sum, mean, max, min, logsumexp) and the softmax family, with their VJPs.

``var`` and ``std`` are composed from ``mean`` (tinygrad style); ``logsumexp``, ``softmax`` and
``log_softmax`` are primitives because composing them would be slower and would overflow.
Note: ``max``/``min`` with a ``dim`` return the values only, not PyTorch's (values, indices)
tuple; use ``argmax``/``argmin`` for the indices.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from ..tensor import Tensor
from ._core import defop, nondiff, normalize_axis


def _expand(g: Any, axis: tuple | None, keepdims: bool, shape: tuple) -> Any:
    """Give a reduced gradient back its reduced axes (as size 1) so it broadcasts over ``shape``."""
    if axis is None or keepdims:
        return g
    return np.reshape(g, tuple(1 if i in axis else n for i, n in enumerate(shape)))


def _sum_vjp(g: Any, ans: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return np.broadcast_to(_expand(g, axis, keepdims, x.shape), x.shape)


def _count(shape: tuple, axis: tuple | None) -> int:
    return int(np.prod(shape)) if axis is None else int(np.prod([shape[a] for a in axis]))


def _mean_vjp(g: Any, ans: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    g = g * (1.0 / builtins.max(_count(x.shape, axis), 1))
    return np.broadcast_to(_expand(g, axis, keepdims, x.shape), x.shape)


def _extreme_vjp(g: Any, ans: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    a = _expand(ans, axis, keepdims, x.shape)
    mask = x == a  # every tied extreme shares the gradient equally
    gx = _expand(g, axis, keepdims, x.shape) * mask
    # the tie count is a constant: count on the bare array, in g's dtype (an int64 count
    # would promote float32 gradients to float64)
    m = mask.data if isinstance(mask, Tensor) else mask
    return gx / np.sum(m, axis=axis, keepdims=True).astype(gx.dtype)


def _logsumexp_fwd(x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _logsumexp_vjp(g: Any, ans: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return _expand(g, axis, keepdims, x.shape) * np.exp(x - _expand(ans, axis, keepdims, x.shape))


def _softmax_fwd(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    e /= np.sum(e, axis=axis, keepdims=True)
    return e


def _log_softmax_fwd(x: np.ndarray, axis: int) -> np.ndarray:
    return x - _logsumexp_fwd(x, axis=axis, keepdims=True)


def _numpy_reduction(f: Any) -> Any:
    """NumPy reduction ``f`` with the (axis, keepdims) keywords every reduction primitive takes."""
    return lambda x, axis=None, keepdims=False: f(x, axis, keepdims=keepdims)


def _sum_fwd(x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    # the ufunc's own reduce: same result as np.sum, without its Python wrapper (~2 us less)
    if x.ndim and x.dtype.kind in "fc":
        return np.add.reduce(x, axis, keepdims=keepdims)
    return np.sum(x, axis, keepdims=keepdims)


def _sum_out(x: np.ndarray, axis: Any = None, keepdims: bool = False, *,
             out: np.ndarray) -> np.ndarray:
    return np.add.reduce(x, axis, dtype=out.dtype, out=out, keepdims=keepdims)


def _mean_out(x: np.ndarray, axis: Any = None, keepdims: bool = False, *,
              out: np.ndarray) -> np.ndarray:
    return np.mean(x, axis, keepdims=keepdims, out=out)


sum_ = defop("sum", _sum_fwd, _sum_vjp, out=_sum_out)
mean_ = defop("mean", _numpy_reduction(np.mean), _mean_vjp, out=_mean_out)
amax_ = defop("max", _numpy_reduction(np.max), _extreme_vjp)
amin_ = defop("min", _numpy_reduction(np.min), _extreme_vjp)
logsumexp_ = defop("logsumexp", _logsumexp_fwd, _logsumexp_vjp)
softmax_ = defop(
    "softmax",
    _softmax_fwd,
    lambda g, ans, x, axis: ans * (g - np.sum(g * ans, axis=axis, keepdims=True)),
)
log_softmax_ = defop(
    "log_softmax",
    _log_softmax_fwd,
    lambda g, ans, x, axis: g - np.exp(ans) * np.sum(g, axis=axis, keepdims=True),
)


def _axes(input: Any, dim: Any) -> tuple | None:
    return normalize_axis(dim, np.ndim(input.data if isinstance(input, Tensor) else input))


def _reduce_axes(input: Any, dim: Any) -> tuple | None:
    """Axes for a reduction; on a 0-d tensor dim 0 / -1 reduce nothing, as in PyTorch."""
    axes = _axes(input, dim)
    return () if axes is not None and np.ndim(input) == 0 else axes


def sum(input: Any, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
        keepdims: bool | None = None, dtype: Any = None) -> Tensor:
    """Sum over ``dim`` (all elements when None). NumPy's ``axis``/``keepdims`` are accepted too."""
    dim = axis if dim is None else dim
    keep = keepdim if keepdims is None else keepdims
    out = sum_(input, axis=_reduce_axes(input, dim), keepdims=bool(keep))
    return out if dtype is None else out.to(dtype)


def mean(input: Any, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
         keepdims: bool | None = None) -> Tensor:
    """Arithmetic mean over ``dim`` (all elements when None)."""
    dim = axis if dim is None else dim
    keep = keepdim if keepdims is None else keepdims
    return mean_(input, axis=_reduce_axes(input, dim), keepdims=bool(keep))


def max(input: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Largest value over ``dim`` (values only, unlike PyTorch's (values, indices) tuple)."""
    return amax_(input, axis=_reduce_axes(input, dim), keepdims=keepdim)


def min(input: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    """Smallest value over ``dim`` (values only, unlike PyTorch's (values, indices) tuple)."""
    return amin_(input, axis=_reduce_axes(input, dim), keepdims=keepdim)


amax, amin = max, min


def var(input: Any, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: int | None = None) -> Tensor:
    """Variance over ``dim``; ``correction=1`` (the default, Bessel's) divides by N - 1."""
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    axes = _reduce_axes(input, dim)
    shape = np.shape(input.data if isinstance(input, Tensor) else input)
    n = _count(shape, axes)
    d = input - mean_(input, axis=axes, keepdims=True)
    scale = 1.0 / (n - correction) if n > correction else float("nan")
    return sum_(d * d, axis=axes, keepdims=keepdim) * scale


def std(input: Any, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: int | None = None) -> Tensor:
    """Standard deviation over ``dim`` (square root of ``var``)."""
    from .elementwise import sqrt

    return sqrt(var(input, dim, unbiased, keepdim, correction=correction))


def logsumexp(input: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) over ``dim``, without overflow (the max is subtracted first)."""
    return logsumexp_(input, axis=_reduce_axes(input, dim), keepdims=keepdim)


def softmax(input: Any, dim: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``, stable for inputs of any magnitude."""
    return softmax_(input, axis=_axes(input, dim)[0])


def log_softmax(input: Any, dim: int = -1) -> Tensor:
    """log(softmax(x)) along ``dim``, computed as x - logsumexp(x) (never log(0))."""
    return log_softmax_(input, axis=_axes(input, dim)[0])


_argmax = nondiff("argmax", _numpy_reduction(np.argmax))
_argmin = nondiff("argmin", _numpy_reduction(np.argmin))
_all = nondiff("all", _numpy_reduction(np.all))
_any = nondiff("any", _numpy_reduction(np.any))


def argmax(input: Any, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the largest value (over the flattened tensor when ``dim`` is None)."""
    return _argmax(input, axis=dim, keepdims=keepdim)


def argmin(input: Any, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the smallest value (over the flattened tensor when ``dim`` is None)."""
    return _argmin(input, axis=dim, keepdims=keepdim)


def all(input: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    """True where every element over ``dim`` is true."""
    return _all(input, axis=_reduce_axes(input, dim), keepdims=keepdim)


def any(input: Any, dim: Any = None, keepdim: bool = False) -> Tensor:
    """True where some element over ``dim`` is true."""
    return _any(input, axis=_reduce_axes(input, dim), keepdims=keepdim)
