"""Matrix products: ``matmul`` (1-D, 2-D and batched, NumPy/PyTorch semantics), the fused
``linear`` (x @ W.T + b in one primitive: one node instead of three, the hot path of MLPs) and
``linear_act`` (an activation applied in place to that product, while it is still in cache).
Every product goes to BLAS; transposes are views, never copies."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..tensor import Tensor
from ._core import defop
from .elementwise import ACTIVATIONS_IN_PLACE


def _mT(a: Any) -> Any:
    return a.T if a.ndim == 2 else np.swapaxes(a, -1, -2)  # .T: no NumPy wrapper call


def _matmul_vjp_x(g: Any, ans: Any, x: Any, y: Any) -> Any:
    if x.ndim == 1 and y.ndim == 1:
        return g * y
    if y.ndim == 1:  # (..., m, k) @ (k,) -> (..., m)
        return np.expand_dims(g, -1) * y
    if x.ndim == 1:  # (k,) @ (..., k, n) -> (..., n)
        return np.squeeze(np.expand_dims(g, -2) @ _mT(y), -2)
    return g @ _mT(y)


def _matmul_vjp_y(g: Any, ans: Any, x: Any, y: Any) -> Any:
    if x.ndim == 1 and y.ndim == 1:
        return g * x
    if x.ndim == 1:  # (k,) @ (..., k, n)
        return np.expand_dims(x, -1) * np.expand_dims(g, -2)
    if y.ndim == 1:  # (..., m, k) @ (k,)
        return np.squeeze(_mT(x) @ np.expand_dims(g, -1), -1)
    return _mT(x) @ g


# Feature-major activations. For a batch of up to this many rows, linear computes
# (W @ x.T).T: the same products, returned as the transposed view of a (out, N) array. OpenBLAS
# runs W @ x.T, with W as the left operand, 10-30% faster than x @ W.T on such batches (1.12x at
# 128 x 784 -> 512; benchmarks/bench_layout.py); on larger batches it is not faster, nor for a
# batch-major input into fewer than FEATURE_MAJOR_MIN_OUT outputs (0.6x at 128 x 512 -> 10).
# The layout then carries through: elementwise ops keep it, and each gradient is returned in
# its input's layout, so no op mixes layouts.
FEATURE_MAJOR_MAX_ROWS = 256
FEATURE_MAJOR_MIN_OUT = 32


def _is_feature_major(a: Any) -> bool:
    """A 2-D array (or a Tensor's) stored column by column: the transpose of a contiguous one."""
    d = a.data if isinstance(a, Tensor) else a
    return d.ndim == 2 and d.flags.f_contiguous and not d.flags.c_contiguous


def _feature_major_product(x: np.ndarray, w: np.ndarray) -> bool:
    """Whether linear computes x @ w.T as (w @ x.T).T (see FEATURE_MAJOR_MAX_ROWS)."""
    return x.ndim == 2 and x.shape[0] <= FEATURE_MAJOR_MAX_ROWS and (
        w.shape[0] >= FEATURE_MAJOR_MIN_OUT or _is_feature_major(x))


def _linear_fwd(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    out = (w @ x.T).T if _feature_major_product(x, w) else x @ w.T
    if b is not None:
        out += b
    return out


def _linear_out(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
                out: np.ndarray) -> np.ndarray:
    if _is_feature_major(out):
        np.matmul(w, x.T, out=out.T)
    else:
        np.matmul(x, w.T, out=out)
    if b is not None:
        np.add(out, b, out=out)
    return out


def _linear_vjp_x(g: Any, ans: Any, x: Any, w: Any, b: Any = None) -> Any:
    # in x's layout: a feature-major input gets a feature-major gradient, (W.T @ g.T).T
    return (w.T @ g.T).T if _is_feature_major(x) else g @ w


def _linear_vjp_w(g: Any, ans: Any, x: Any, w: Any, b: Any = None) -> Any:
    if g.ndim == 1:  # a single input vector: the outer product g x^T
        return np.expand_dims(g, -1) * x
    if g.ndim == 2:
        return _mT(g) @ x
    # fold the batch dimensions into one (rows of g and x stay paired), then one BLAS call
    return _mT(np.reshape(g, (-1, g.shape[-1]))) @ np.reshape(x, (-1, x.shape[-1]))


@functools.lru_cache(maxsize=16)
def ones_vector(n: int, dtype: np.dtype) -> np.ndarray:
    """ones(n), read-only (kept for the last few batch sizes): ``ones @ g`` sums the rows of g
    in one BLAS gemv."""
    ones = np.ones(n, dtype)
    ones.flags.writeable = False
    return ones


def _linear_vjp_b(g: Any, ans: Any, x: Any, w: Any, b: Any = None) -> Any:
    if g.ndim == 2 and g.dtype.kind == "f":
        # the column sums as ones @ g: one BLAS gemv, 2x faster than NumPy's axis-0 reduce (on
        # Tensors too: a compiled step then replays the very same product)
        return ones_vector(g.shape[0], g.dtype) @ g
    return g.sum(axis=tuple(range(g.ndim - 1))) if g.ndim > 1 else g


matmul = defop("matmul", np.matmul, _matmul_vjp_x, _matmul_vjp_y, uses_ans=False)
_linear = defop("linear", _linear_fwd, _linear_vjp_x, _linear_vjp_w, _linear_vjp_b,
                 out=_linear_out, uses_ans=False)


def _linear_act_op(name: str, act: Any, act_grad: Any) -> Any:
    """``act(x @ W.T + b)`` as one primitive: the activation runs in place on the product, and
    backward applies its derivative once (``prep``) before linear's own VJPs."""
    def out_form(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
                 out: np.ndarray) -> np.ndarray:
        return act(_linear_out(x, w, b, out=out))

    out_form.activation = act  # type: ignore[attr-defined]  # compile inlines the product
    return defop(f"linear_{name}", lambda x, w, b=None: act(_linear_fwd(x, w, b)),
                 _linear_vjp_x, _linear_vjp_w, _linear_vjp_b, out=out_form,
                 prep=lambda g, ans, *args: act_grad(g, ans))


_linear_act = {name: _linear_act_op(name, *fs) for name, fs in ACTIVATIONS_IN_PLACE.items()}


def linear(input: Any, weight: Any, bias: Any = None) -> Any:
    """``input @ weight.T + bias`` as one primitive (PyTorch's F.linear)."""
    return _linear(input, weight) if bias is None else _linear(input, weight, bias)


def linear_act(input: Any, weight: Any, bias: Any = None, activation: str = "relu") -> Any:
    """``activation(input @ weight.T + bias)`` as one primitive, for ``activation`` in "relu",
    "tanh", "sigmoid": the same values and gradients as ``linear`` then the activation, with one
    graph node and one pass over the result fewer (nn.Sequential uses it for Linear + ReLU)."""
    f = _linear_act.get(activation)
    if f is None:
        raise ValueError(f"linear_act: unknown activation {activation!r}; "
                         f"use one of {', '.join(_linear_act)}")
    return f(input, weight) if bias is None else f(input, weight, bias)


def mm(input: Any, mat2: Any) -> Any:
    """Matrix product of two 2-D tensors."""
    return matmul(input, mat2)


def dot(input: Any, other: Any) -> Any:
    """Inner product of two 1-D tensors."""
    return matmul(input, other)
