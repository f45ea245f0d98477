"""The primitives a GraphNet runs on: the whole compiled network as one fused op (forward level
by level into one buffer, VJP sweeping the levels back once for every argument), and reading
rows out of that buffer.

The fused op's VJPs are NumPy on the fast path. Under ``create_graph=True`` they receive
Tensors; then the same plan is replayed with differentiable chainrule ops (level by level:
gather, dense product, activation) and differentiated with ``autograd.grad``, so gradients of
gradients are exact too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import ops
from ...ops._core import defop, poly
from ...tensor import Tensor
from .activations import TENSOR
from .plan import Plan


class Memo:
    """Holds the gradients of one fused call: the first VJP the engine asks for computes all of
    them, the others (one call per argument that needs a gradient, with the same output
    gradient) take theirs; after the last one the memo is empty again, ready for another
    backward through a retained graph (or a replayed tape that reuses its buffers)."""

    __slots__ = ("wanted", "left", "g", "grads")

    def __init__(self, wanted: int) -> None:
        self.wanted, self.left = wanted, 0
        self.g: Any = None
        self.grads: tuple = ()


def _fwd(x: np.ndarray, s: np.ndarray | None, w: np.ndarray, b: np.ndarray, *, plan: Plan,
         memo: Memo, need_base: bool) -> np.ndarray:
    return plan.forward(x, s, w, b)


def _grads(g: Any, ans: Any, x: Any, s: Any, w: Any, b: Any, *, plan: Plan, memo: Memo,
           need_base: bool) -> tuple:
    if not memo.left or memo.g is not g:
        if isinstance(g, Tensor) or isinstance(w, Tensor):
            memo.grads = _replayed_grads(g, plan, (x, s, w, b))
        else:
            memo.grads = plan.backward(g, ans, w, need_base)
        memo.g, memo.left = g, memo.wanted
    grads = memo.grads
    memo.left -= 1
    if not memo.left:
        memo.g, memo.grads = None, ()
    return grads


def _vjp(i: int) -> Any:
    return lambda g, ans, *args, **kw: _grads(g, ans, *args, **kw)[i]


graph_net = defop("graph_net", _fwd, *(_vjp(i) for i in range(4)))
"""``graph_net(x, state, weight, bias, plan=, memo=Memo(n), need_base=)`` -> H (rows, batch);
``n`` = how many of the four arguments require grad."""


def _scatter_rows_fwd(g: np.ndarray, shape: tuple, rows: np.ndarray) -> np.ndarray:
    out = np.zeros(shape, g.dtype)
    out[rows] = g.T
    return out


_scatter_rows = poly(defop(
    "graph_scatter_rows", _scatter_rows_fwd, lambda g, ans, gy, shape, rows: g[rows].T
))
readout = defop(
    "graph_readout",
    lambda H, rows: H[rows].T,
    lambda g, ans, H, rows: _scatter_rows(g, H.shape, rows),
)
"""``readout(H, rows)`` -> (batch, len(rows)): the chosen neurons' activations, batch-major."""


def _put_fwd(v: np.ndarray, size: int, pos: np.ndarray) -> np.ndarray:
    out = np.zeros(size, v.dtype)
    out[pos] = v
    return out


_put = defop("graph_put", _put_fwd, lambda g, ans, v, size, pos: g[pos])


def replay(plan: Plan, x: Tensor, s: Tensor | None, w: Tensor, b: Tensor) -> Tensor:
    """The fused op's forward as differentiable chainrule ops (for create_graph)."""
    H = ops.cat([x.T, s.T], 0) if plan.n_state else x.T
    for lv in plan.levels:
        n, n_src = lv.shape
        flat = _put(w[lv.wa:lv.wb], n * n_src, lv.t_local * n_src + lv.s_local)
        z = ops.reshape(flat, (n, n_src)) @ H[lv.src_rows] + ops.reshape(b[lv.ba:lv.bb], (n, 1))
        parts = [TENSOR[name](z[lo - lv.start:hi - lv.start]) for lo, hi, name in lv.groups]
        H = ops.cat([H, *parts], 0)
    return H


def _replayed_grads(g: Any, plan: Plan, args: tuple) -> tuple:
    from ...autograd import grad

    wanted = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    H = replay(plan, *(a if isinstance(a, Tensor) or a is None else Tensor(a) for a in args))
    found = grad(H, [args[i] for i in wanted], grad_outputs=g, create_graph=True,
                 allow_unused=True)
    out: list[Any] = [None] * 4
    for i, gi in zip(wanted, found, strict=True):
        out[i] = gi if gi is not None else Tensor(np.zeros_like(args[i].data))
    return tuple(out)
