"""How a primitive is defined and applied: forward and VJPs registered together, once.

A primitive is ``defop(name, forward, vjp_0, vjp_1, ...)``. ``forward`` maps arrays to an array;
``vjp_i(g, ans, *args, **kw)`` maps the output's gradient ``g`` to the gradient of argument i.
VJPs are written in NumPy: on arrays they run as plain NumPy (the fast path); on Tensors
(``create_graph=True``) NumPy dispatches back to chainrule ops, so gradients of gradients come free.
"""

from __future__ import annotations

import itertools
import os
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from .._mode import state
from ..tensor import Tensor

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_next_seq = itertools.count().__next__  # creation numbers of graph nodes (newest = largest)

# The active ``chainrule.compile`` tracer, or None. Set only while a step is being traced; it is
# told every primitive applied, every in-place update and every VJP the engine calls.
TRACER: Any = None


class Op:
    """A primitive: its name (for errors and grad_fn), forward function and per-argument VJPs;
    optionally ``out``, the forward writing into a given buffer (``out(*args, out=buf, **kw)``,
    used by ``chainrule.compile``; ufunc forwards need none). ``uses_ans=False`` says no VJP
    reads the output, so backward can free it before the VJPs run (lower peak memory).
    ``prep(g, ans, *args, **kw)``, if given, is the first step every VJP shares (a fused
    activation's derivative): backward runs it once and hands its result to each VJP as ``g``
    (on arrays, with the output already released: ``ans`` is then None)."""

    __slots__ = ("name", "fwd", "vjps", "out", "uses_ans", "prep")

    def __init__(self, name: str, fwd: Callable, vjps: Any, out: Callable | None = None,
                 uses_ans: bool = True, prep: Callable | None = None) -> None:
        self.name = name
        self.fwd = fwd
        self.vjps = vjps
        self.out = out
        self.uses_ans = uses_ans
        self.prep = prep

    def __repr__(self) -> str:
        return f"Op({self.name})"


class NaryVJP:
    """VJP table for ops with any number of tensor arguments (cat, stack): ``f(i, g, ans, ...)``."""

    __slots__ = ("f",)

    def __init__(self, f: Callable) -> None:
        self.f = f

    def __getitem__(self, i: int) -> Callable:
        f = self.f
        return lambda *a, **k: f(i, *a, **k)


def user_frame() -> str:
    """'file:line in function' of the innermost stack frame outside chainrule (for errors)."""
    for fr in reversed(traceback.extract_stack()):
        if not os.path.abspath(fr.filename).startswith(_PKG_DIR):
            return f"{fr.filename}:{fr.lineno} in {fr.name}: {(fr.line or '').strip()}"
    return "<unknown>"


def _check_finite(op: Op, out: np.ndarray) -> None:
    if out.dtype.kind in "fc" and not np.isfinite(out).all():
        bad = "NaN" if np.isnan(out).any() else "Inf"
        raise FloatingPointError(
            f"detect_anomaly: {op.name} produced {bad} in the forward pass, at {user_frame()}"
        )


def _shape_error(op: Op, args: tuple, e: Exception) -> ValueError:
    shapes = " and ".join(
        str(tuple(np.shape(a.data if isinstance(a, Tensor) else a)))
        for a in args
        if isinstance(a, (Tensor, np.ndarray))
    )
    return ValueError(f"{op.name}: incompatible shapes {shapes} ({e})")


def apply(op: Op, args: tuple, kw: dict) -> Tensor:
    """Run ``op`` on the arrays inside ``args`` and, if any input requires grad and recording is
    on, remember (op, args, kw) on the result so backward can call the op's VJPs."""
    needs = False
    versions = 0  # the inputs' in-place change counts, summed: backward checks them unchanged
    scalar64 = False
    datas = []
    for a in args:
        if isinstance(a, Tensor):
            datas.append(a.data)
            versions += a._version
            if a.requires_grad:
                needs = True
        elif type(a) is np.float64:  # a NumPy scalar would turn float32 results into float64;
            datas.append(float(a))   # as a Python float it takes the tensor's dtype (NEP 50)
            scalar64 = True
        else:
            datas.append(a)
    try:
        out = op.fwd(*datas, **kw)
    except ValueError as e:
        raise _shape_error(op, args, e) from None
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    if TRACER is not None:
        TRACER.record_op(op, args, datas, kw, out)
    if needs and state.grad_enabled:
        if scalar64:
            args = tuple(float(a) if type(a) is np.float64 else a for a in args)
        t = Tensor._make(out, True, (op, args, kw))
        t._seq = _next_seq()
        t._saved_version = versions
        if state.anomaly:
            _check_finite(op, out)
            t._origin = user_frame()
        return t
    if state.anomaly:
        _check_finite(op, out)
    return Tensor._make(out)


def defop(name: str, fwd: Callable, *vjps: Callable, nary: Callable | None = None,
          out: Callable | None = None, uses_ans: bool = True,
          prep: Callable | None = None) -> Callable:
    """Register a primitive and return the public function that applies it to tensors."""
    op = Op(name, fwd, NaryVJP(nary) if nary is not None else vjps, out, uses_ans, prep)

    def call(*args: Any, **kw: Any) -> Tensor:
        return apply(op, args, kw)

    call.op = op  # type: ignore[attr-defined]
    call.__name__ = name
    return call


def poly(f: Callable) -> Callable:
    """The op ``f`` applied to arrays returns an array, to Tensors a Tensor: for use inside VJPs."""
    op: Op = f.op  # type: ignore[attr-defined]

    def call(*args: Any, **kw: Any) -> Any:
        for a in args:
            if isinstance(a, Tensor):
                return apply(op, args, kw)
        return op.fwd(*args, **kw)

    return call


def nondiff(name: str, fwd: Callable) -> Callable:
    """A function of tensors with no gradient (comparisons, sign, argmax): result never records."""

    op = Op(name, fwd, ())

    def call(*args: Any, **kw: Any) -> Tensor:
        datas = [a.data if isinstance(a, Tensor) else a for a in args]
        try:
            out = fwd(*datas, **kw)
        except ValueError as e:
            raise _shape_error(op, args, e) from None
        out = out if type(out) is np.ndarray else np.asarray(out)
        if TRACER is not None:
            TRACER.record_op(op, args, datas, kw, out)
        return Tensor._make(out)

    call.__name__ = name
    return call


def normalize_axis(dim: Any, ndim: int) -> tuple[int, ...] | None:
    """Turn a PyTorch ``dim`` (int, sequence or None) into a tuple of non-negative axes."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in dims:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"dim {d} is out of range for a tensor with {ndim} dimensions")
        out.append(int(d) % max(ndim, 1))
    return tuple(out)
