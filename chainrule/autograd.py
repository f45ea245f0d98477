"""The backpropagation engine: reverse-mode differentiation over the recorded graph.

It knows no particular operation: it walks the recorded graph from the output back to the
inputs, newest node first, and asks each node's op for its VJPs. Also the composable
functional API (``grad``, ``value_and_grad``, ``jacobian``, ``hessian``) and PyTorch's
``autograd.grad``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._mode import state
from .ops import _core, cast, clone, sum_to
from .ops._core import Op, user_frame
from .ops.shape import _sum_to_fwd
from .tensor import Tensor


class _Freed:
    """Stands in for a node's op once backward has freed the graph behind it."""

    def __init__(self, name: str) -> None:
        self.name = name


class _FreedRecords(dict):
    """op -> the record a freed node of that op keeps (made on first use, then shared)."""

    def __missing__(self, op: Op) -> tuple:
        record = self[op] = (_Freed(op.name), (), None)
        return record


_freed = _FreedRecords()


def _initial_grad(t: Tensor, grad: Any, create_graph: bool) -> Any:
    if grad is None:
        if t.data.size != 1:
            raise RuntimeError(
                f"backward: the output has shape {t.shape}; gradients can only be created "
                "implicitly for a scalar output. Pass gradient= (same shape), or call "
                ".sum() first"
            )
        g = np.ones(t.data.shape, t.data.dtype)
    else:
        g = _given_grad(grad, t.data.dtype)
        if g.shape != t.shape:
            raise ValueError(f"backward: gradient has shape {g.shape}, output has shape {t.shape}")
        if create_graph and isinstance(grad, Tensor):
            return grad
    return Tensor._make(g) if create_graph else g


def _given_grad(grad: Any, dtype: np.dtype) -> np.ndarray:
    """A copy of the output gradient the caller gave, in ``dtype``; from a tensor while a step is
    traced, by an operation (a compiled step then uses each call's gradient, not the first)."""
    if isinstance(grad, Tensor) and _core.TRACER is not None:
        return cast(grad, dtype=dtype).data
    return np.array(grad.data if isinstance(grad, Tensor) else grad, dtype=dtype)


def _run_hooks(t: Tensor, g: Any, create_graph: bool) -> Any:
    for hook in list(t._hooks or ()):
        r = hook(g if create_graph else Tensor._make(g))
        if r is not None:
            g = r if create_graph else np.asarray(r.data if isinstance(r, Tensor) else r)
    return g


def _check_grad_finite(op: Any, t: Tensor, g: Any) -> None:
    arr = g.data if isinstance(g, Tensor) else g
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        where = t._origin or "an operation recorded before detect_anomaly was on"
        raise FloatingPointError(
            f"detect_anomaly: the backward of {op.name} produced NaN/Inf; the op was created at "
            f"{where}"
        )


def run_backward(
    roots: Sequence[Tensor],
    root_grads: Sequence[Any],
    *,
    retain_graph: bool,
    create_graph: bool,
    inputs: Sequence[Tensor] | None = None,
) -> list[Any] | None:
    """Backpropagate from ``roots``. With ``inputs`` return their gradients, otherwise
    accumulate into the ``.grad`` of every leaf.

    Nodes are visited newest first (a heap on their creation number): a node's inputs are always
    older than it, so when a node is popped every gradient flowing into it has arrived. One pass,
    no separate topological sort; leaves are finished last, in the order they were reached.
    """
    tracer = _core.TRACER
    tensor_mode = create_graph or tracer is not None  # VJPs see Tensors (recorded) or arrays
    grads: dict[int, Any] = {}
    heap: list[tuple[int, Tensor]] = []
    leaves: list[Tensor] = []
    for r, g in zip(roots, root_grads, strict=True):
        if tensor_mode and not isinstance(g, Tensor):
            g = Tensor._make(g)
        _arrive(r, g, grads, heap, leaves)
    wanted = {id(t): i for i, t in enumerate(inputs)} if inputs is not None else None
    results: list[Any] = [None] * (len(inputs) if inputs is not None else 0)
    # arrays already handed to a leaf's .grad or to a hook, by id (never share one); the
    # arrays are held so that no id is reused by a new array during this backward
    given: dict[int, Any] = {}
    prev_mode = state.grad_enabled
    state.grad_enabled = create_graph
    pop, push, anomaly = heapq.heappop, heapq.heappush, state.anomaly
    try:
        while heap:
            t = pop(heap)[1]
            g = grads.pop(id(t))
            if t._hooks or wanted is not None:
                g = _visit(t, g, create_graph, tracer, given, wanted, results)
            op, parents, kw = t._ctx
            if type(op) is _Freed:
                raise RuntimeError(
                    f"backward through the graph a second time (at {op.name}): its intermediate "
                    "results were freed; pass retain_graph=True to the first backward()"
                )
            versions = t._version
            for p in parents:
                if isinstance(p, Tensor):
                    versions += p._version
            if versions != t._saved_version:
                _modified_in_place(op, t)
            if not retain_graph:
                t._ctx = _freed[op]
            if tensor_mode:
                ans, args = t, parents
            else:
                ans = t.data if op.uses_ans else None
                args = [p.data if isinstance(p, Tensor) else p for p in parents]
                if not anomaly:  # drop the engine's reference: an output nobody else holds is
                    t = None     # freed before its VJPs allocate (lower peak memory)
            if op.prep is not None:  # the VJPs after it get no output: freed before they run
                g = (op.prep(g, ans, *args, **kw) if tracer is None
                     else tracer.call_vjp(op.prep, g, ans, args, kw))
                if not tensor_mode:
                    ans = None
            vjps = op.vjps
            for i, p in enumerate(parents):
                if not (isinstance(p, Tensor) and p.requires_grad):
                    continue
                if tracer is None:
                    gi = vjps[i](g, ans, *args, **kw)
                else:
                    gi = tracer.call_vjp(vjps[i], g, ans, args, kw)
                shape = p.data.shape
                if gi.shape != shape:
                    gi = sum_to(gi, shape) if tensor_mode else _sum_to_fwd(gi, shape)
                if anomaly:
                    _check_grad_finite(op, t, gi)
                k = id(p)
                prev = grads.get(k)
                if prev is not None:
                    grads[k] = prev + gi
                else:
                    grads[k] = gi
                    if p._ctx is None:
                        leaves.append(p)
                    else:
                        push(heap, (-p._seq, p))
        for t in leaves:
            g = grads.pop(id(t))
            if t._hooks or wanted is not None:
                g = _visit(t, g, create_graph, tracer, given, wanted, results)
            if wanted is None:
                if tracer is not None and not create_graph:
                    g = _traced_leaf_grad(t, g, tracer, given)
                _accumulate_leaf(t, g, create_graph, given)
    finally:
        state.grad_enabled = prev_mode
    return results if inputs is not None else None


def _modified_in_place(op: Any, t: Tensor) -> None:
    where = f", created at {t._origin}" if t._origin else ""
    raise RuntimeError(
        f"backward: an input or the output of {op.name}{where} was changed in place after the "
        "operation used it (by x += ..., or an optimiser's step()), so its gradient would be "
        "wrong; write x = x + ... instead of x += ..., change a .clone(), or run the forward "
        "pass again after the change"
    )


def _arrive(t: Tensor, g: Any, grads: dict, heap: list, leaves: list) -> None:
    """A root gradient reaches ``t``: add it up, and schedule ``t`` the first time."""
    k = id(t)
    if k in grads:
        grads[k] = grads[k] + g
    elif t._ctx is None:
        grads[k] = g
        leaves.append(t)
    else:
        grads[k] = g
        heapq.heappush(heap, (-t._seq, t))


def _visit(t: Tensor, g: Any, create_graph: bool, tracer: Any, given: dict[int, Any],
           wanted: dict[int, int] | None, results: list) -> Any:
    """Run ``t``'s hooks on its total gradient and keep it if ``t`` is one of ``inputs``."""
    if t._hooks:
        if tracer is not None:
            tracer.unsupported("a gradient hook (register_hook / retain_grad)")
        if not create_graph and id(g) in given:
            g = np.array(g)  # a leaf's .grad owns this array: hooks get their own
        g = _run_hooks(t, g, create_graph)
        if not create_graph:
            given[id(g)] = g  # a hook may keep it: a leaf's .grad must take a copy
    if wanted is not None and id(t) in wanted:
        results[wanted[id(t)]] = g if isinstance(g, Tensor) else Tensor._make(g)
    return g


def _traced_leaf_grad(t: Tensor, g: Tensor, tracer: Any, given: dict[int, Any]) -> np.ndarray:
    """Under compile's tracer: the array that will become (or be added to) ``t.grad``, copied
    by a recorded op where the eager path would copy, so the tape knows it by identity."""
    arr = g.data
    if t.grad is None and (id(arr) in given or not (arr.flags.owndata and arr.flags.writeable)):
        arr = clone(g).data
    tracer.record_leaf(t, arr)
    return arr


def _accumulate_leaf(t: Tensor, g: Any, create_graph: bool, given: dict[int, Any]) -> None:
    if create_graph:
        # clone: a writable array of its own, never a view shared with another leaf's .grad
        t._grad = clone(g) if t._grad is None else t._grad + g
        return
    if g.dtype != t.data.dtype:
        g = g.astype(t.data.dtype)
    held = t._grad  # (a compiled step's read of it was told to the tracer by _traced_leaf_grad)
    if held is None:
        if id(g) in given or not (g.flags.owndata and g.flags.writeable):
            g = np.array(g)
        given[id(g)] = g
        t._grad = Tensor._make(g)
        return
    acc = held.data
    if acc.shape == g.shape and acc.dtype == g.dtype and acc.flags.writeable:
        np.add(acc, g, out=acc)  # accumulate in place, as PyTorch does
    else:
        held.data = acc + g


def backward(
    tensor: Tensor, gradient: Any = None, retain_graph: bool | None = None,
    create_graph: bool = False,
) -> None:
    """``tensor.backward()``: accumulate d tensor / d leaf into each leaf's ``.grad``."""
    if not tensor.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad and has no graph; create the inputs "
            "with requires_grad=True (and don't compute it under no_grad)"
        )
    retain = create_graph if retain_graph is None else retain_graph
    g = _initial_grad(tensor, gradient, create_graph)
    run_backward([tensor], [g], retain_graph=retain, create_graph=create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """PyTorch's ``torch.autograd.grad``: gradients of ``outputs`` w.r.t. ``inputs``, returned
    (not accumulated into ``.grad``)."""
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        gos = [grad_outputs] * len(outs)
    else:
        gos = list(grad_outputs)
    for o in outs:
        if not o.requires_grad:
            raise RuntimeError("autograd.grad: an output does not require grad (no graph)")
    for x in ins:
        if not x.requires_grad:
            raise RuntimeError("autograd.grad: an input does not require grad")
    root_grads = [_initial_grad(o, go, create_graph) for o, go in zip(outs, gos, strict=True)]
    retain = create_graph if retain_graph is None else retain_graph
    res = run_backward(
        outs, root_grads, retain_graph=retain, create_graph=create_graph, inputs=ins
    )
    assert res is not None
    if not allow_unused and any(r is None for r in res):
        raise RuntimeError(
            "autograd.grad: an input was not used to compute the outputs; pass allow_unused=True"
        )
    return tuple(res)


# -- the functional API (JAX style): transformations of functions that compose -------------


def _argnums(argnums: int | Sequence[int]) -> tuple[tuple[int, ...], bool]:
    if isinstance(argnums, int):
        return (argnums,), True
    return tuple(argnums), False


def _prepare(args: tuple, nums: tuple[int, ...]) -> tuple[list, list[Tensor], bool]:
    """Fresh differentiable handles for the arguments we differentiate with respect to.
    If an argument is already in a graph (nested grad), the handle stays connected to it."""
    args = list(args)
    handles, nested = [], False
    for i in nums:
        if i >= len(args):
            raise ValueError(f"argnums {i} is out of range for {len(args)} arguments")
        a = args[i]
        if isinstance(a, Tensor) and a.requires_grad:
            nested = True
            h = a.clone()  # a new node whose gradient we can ask for, still tied to `a`
        else:
            h = Tensor(a if not isinstance(a, Tensor) else a.data, dtype=_float_dtype(a))
            h.requires_grad = True
        args[i] = h
        handles.append(h)
    return args, handles, nested


def _float_dtype(a: Any) -> Any:
    arr = a.data if isinstance(a, Tensor) else np.asarray(a)
    return arr.dtype if arr.dtype.kind == "f" else np.float32


def value_and_grad(
    fun: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., tuple[Any, Any]]:
    """Return a function computing ``(fun(*args), d fun / d args[argnums])``; ``fun`` must
    return a scalar tensor (or ``(scalar, aux)`` with ``has_aux``). Composes with itself."""
    nums, single = _argnums(argnums)

    def wrapped(*args: Any) -> tuple[Any, Any]:
        prev = state.grad_enabled
        state.grad_enabled = True
        try:
            targs, handles, nested = _prepare(args, nums)
            out = fun(*targs)
            value, aux = (out if has_aux else (out, None))
            if not isinstance(value, Tensor) or value.data.size != 1:
                raise TypeError(
                    "grad: the function must return a scalar tensor (use jacobian for "
                    "non-scalar outputs)"
                )
            if not value.requires_grad:
                gs = tuple(Tensor(np.zeros_like(h.data)) for h in handles)
            else:
                gs = grad(value, handles, create_graph=nested, retain_graph=nested,
                          allow_unused=True)
                gs = tuple(
                    Tensor(np.zeros_like(h.data)) if g is None else g
                    for g, h in zip(gs, handles, strict=True)
                )
        finally:
            state.grad_enabled = prev
        g_out = gs[0] if single else gs
        return ((value, aux), g_out) if has_aux else (value, g_out)

    return wrapped


def grad_fn(fun: Callable[..., Any], argnums: int | Sequence[int] = 0,
            has_aux: bool = False) -> Callable[..., Any]:
    """Return a function computing the gradient of scalar ``fun`` w.r.t. ``args[argnums]``.
    ``grad(grad(f))`` gives second derivatives. (Exported as ``chainrule.grad``.)"""
    vg = value_and_grad(fun, argnums, has_aux)

    def wrapped(*args: Any) -> Any:
        (value, g) = vg(*args)
        return (g, value[1]) if has_aux else g

    return wrapped


def jacobian(fun: Callable[..., Any], argnums: int = 0) -> Callable[..., Tensor]:
    """Return a function computing d fun(x) / d x with shape ``out.shape + x.shape``
    (one reverse pass per output element)."""

    def wrapped(*args: Any) -> Tensor:
        from .ops import reshape, stack

        prev = state.grad_enabled
        state.grad_enabled = True
        try:
            targs, (h,), nested = _prepare(args, (argnums,))
            out = fun(*targs)
            if not isinstance(out, Tensor):
                raise TypeError("jacobian: the function must return a tensor")
            flat = reshape(out, (-1,))
            rows = []
            for k in range(flat.shape[0]):
                if not out.requires_grad:
                    rows.append(Tensor(np.zeros_like(h.data)))
                    continue
                (gk,) = grad(flat[k], [h], retain_graph=True, create_graph=nested,
                             allow_unused=True)
                rows.append(Tensor(np.zeros_like(h.data)) if gk is None else gk)
            jac = stack(rows, 0) if rows else Tensor(np.zeros((0,) + h.shape, h.data.dtype))
            return reshape(jac, tuple(out.shape) + tuple(h.shape))
        finally:
            state.grad_enabled = prev

    return wrapped


def hessian(fun: Callable[..., Any], argnums: int = 0) -> Callable[..., Tensor]:
    """Return a function computing the matrix of second derivatives of scalar ``fun``."""
    return jacobian(grad_fn(fun, argnums), argnums)


__all__ = ["backward", "grad", "grad_fn", "value_and_grad", "jacobian", "hessian", "Op",
           "user_frame"]
