"""``chainrule.compile``: trace one call of a training step, then replay it as straight-line NumPy.

The first call of ``step = chainrule.compile(fn)`` runs ``fn`` eagerly (a real step) while a
tracer records every primitive it applies, the backward pass (each VJP re-expressed in primitives
where that is safe, else called whole), in-place tensor updates and optimiser/scheduler calls.
From that tape it writes one Python function of plain NumPy calls, with no Tensor or graph built
per step: ufunc-shaped results go into buffers allocated once (``out=``); an elementwise result
reuses the buffer of an input that dies there (chains of elementwise ops run in place in one
buffer); views of fixed buffers are taken once; parameters' gradients land in fixed buffers bound
to ``.grad``; optimisers and schedulers run their own ``step()``, except plain SGD: its
parameters are packed side by side in one array (each ``p.data`` becomes a view of it) so the
update is one BLAS axpy (or two NumPy calls). ``step.source`` shows the generated code.

Rules (as ``jax.jit``): one tape per input signature - a new shape, dtype or non-array argument
traces again (up to ``max_tapes`` kept); Python code in ``fn`` runs only while tracing, so reading
a tensor's value there (``.item()``, ``float(t)``, ``bool(t)``, ``.numpy()``, ``.tolist()``)
raises ``CompileError`` naming the line, and so do random draws (any generator: dropout in
training mode), gradient hooks, an optimiser step given a closure, indexing with a boolean mask
tensor, a second derivative through a VJP the tape can only call whole (cross-entropy's), and a
recurrent GraphNet whose state would carry over between calls (call ``reset_state()`` in the
step). Returned tensors are copies without a graph; ``.grad`` arrays are reused from step to step
(copy them to keep one). If a parameter's array is replaced (``model.to(...)``), a tensor the
tape reads is frozen or unfrozen (``requires_grad``), or a module that ran switches between
``train()`` and ``eval()``, the step traces again; the earlier tape is kept, so switching back
reuses it. ``model.train()`` / ``model.eval()`` called inside the step are replayed, so such a
step runs in the mode it sets whatever mode it is called in. Gradient resets are replayed:
``Optimizer.zero_grad``, ``Module.zero_grad`` and ``p.grad = None`` (assigning a tensor to
``.grad`` raises ``CompileError``); so are in-place changes of ``.grad`` (clipping), and a
``.grad`` made before the step is read from its parameter at every call. Not seen by
the tracer, so not replayed: NumPy work done directly on ``.data`` arrays in your code (use the
in-place tensor methods - ``add_``, ``mul_``, ``copy_``, ``-=`` - which are recorded; the
library's own writes are recorded) and Python values read from ``.data``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ._mode import state
from ._random import default_generator
from .ops import _core
from .ops._core import Op, user_frame
from .optim.optimizer import blas_axpy
from .tensor import Tensor

__all__ = ["compile", "Compiled", "CompileError"]


class CompileError(RuntimeError):
    """The step can't be traced faithfully (value-dependent Python, randomness, hooks, ...)."""


class _Node:
    """One recorded call. kind: "op" (primitive forward), "call" (a VJP called whole), "effect"
    (in-place update of an array), "leaf" (a gradient reaching a leaf's .grad), "opaque" (an
    optimiser or scheduler method, called again on replay)."""

    __slots__ = ("kind", "fn", "args", "kw", "out", "op", "tensor")

    def __init__(self, kind: str, fn: Any, args: tuple, kw: dict, out: Any = None,
                 op: Op | None = None, tensor: Tensor | None = None) -> None:
        self.kind, self.fn, self.args, self.kw, self.out = kind, fn, args, kw, out
        self.op, self.tensor = op, tensor


class _Tracer:
    """Receives the engine's notifications (``ops._core.TRACER``) while ``fn`` runs once."""

    def __init__(self) -> None:
        self.nodes: list[_Node] = []
        self.tensors: dict[int, Tensor] = {}  # id(array) -> a tensor that held it (for guards)
        self.modes: dict[int, tuple[Any, bool]] = {}  # id(module) -> (module, its .training)
        self.modes_set: set[int] = set()  # modules whose mode a replayed train()/eval() sets
        self.grad_owner: dict[int, Tensor] = {}  # id(array of a .grad read) -> the tensor

    def grad_read(self, t: Tensor, g: Tensor) -> None:
        """The step read ``t.grad`` (``g``): the tape must read it from ``t`` at every call."""
        self.grad_owner.setdefault(id(g.data), t)

    def module_called(self, module: Any) -> None:
        """A module ran: the tape holds for its train/eval mode of now (guarded on replay),
        unless the step itself set that mode before (its train()/eval() call is replayed)."""
        if id(module) not in self.modes_set:
            self.modes.setdefault(id(module), (module, module.training))

    def record_op(self, op: Op, args: tuple, datas: list, kw: dict, out: np.ndarray) -> None:
        for a in args:
            if isinstance(a, Tensor):
                self.tensors.setdefault(id(a.data), a)
        self.nodes.append(_Node("op", op.fwd, tuple(datas), dict(kw), out, op=op))

    def record_effect(self, fn: Callable, args: tuple, kw: dict) -> None:
        self.nodes.append(_Node("effect", fn, tuple(args), dict(kw)))

    def record_leaf(self, t: Tensor, g: np.ndarray) -> None:
        self.nodes.append(_Node("leaf", None, (g,), {}, tensor=t))

    def call_vjp(self, vjp: Callable, g: Tensor, ans: Tensor, args: Any, kw: dict) -> Tensor:
        """Run a VJP on Tensors, so its primitives are recorded one by one - unless one of its
        non-tensor arguments is more than a plain constant (labels, index arrays, a plan or
        memo object): NumPy or Python work on those would be frozen, so then the VJP is
        recorded and replayed whole."""
        if all(_plain(v) for v in _flat((args, kw), skip=Tensor)):
            return vjp(g, ans, *args, **kw)
        if state.grad_enabled:  # create_graph: a VJP called whole would be a constant
            raise CompileError(
                f"compile: a gradient with create_graph=True goes through a backward step "
                f"({getattr(vjp, '__qualname__', vjp)}) that works on non-tensor data the tape "
                f"would freeze, so its second derivative can't be replayed (at {user_frame()}); "
                "don't compile this step"
            )
        datas = (g.data, ans.data, *(a.data if isinstance(a, Tensor) else a for a in args))
        out = np.asarray(vjp(*datas, **kw))
        self.nodes.append(_Node("call", vjp, datas, dict(kw), out))
        return Tensor._make(out)

    def record_opaque(self, method: Callable, args: tuple, kw: dict) -> None:
        self.nodes.append(_Node("opaque", method, args, kw))

    def grad_assigned(self, t: Tensor, value: Any) -> None:
        """The step set ``t.grad``: ``= None`` is replayed where it happened; a tensor can't be."""
        if value is not None:
            self.unsupported("assigning a tensor to .grad")
        self.record_opaque(functools.partial(_clear_grad, t), (), {})  # this tensor object

    def value_read(self, t: Tensor, what: str) -> None:
        raise CompileError(
            f"compile: the step reads a tensor's value ({what}) at {user_frame()}; the tape "
            "would freeze whatever Python did with it. Return the tensor from the step and read "
            "it outside, or don't compile this step"
        )

    def unsupported(self, what: str) -> None:
        raise CompileError(f"compile: {what} is not supported in a compiled step "
                           f"(at {user_frame()}); remove it or don't compile this step")


def _clear_grad(t: Tensor) -> None:
    """``t.grad = None``, as a compiled step replays it."""
    t._grad = None


def _plain(v: Any) -> bool:
    """A constant whose value the generated code can hold: None, a number, a string, a dtype."""
    return v is None or isinstance(v, (bool, int, float, complex, str, np.dtype, np.generic,
                                       type(Ellipsis)))


def _flat(x: Any, skip: type | None = None) -> Iterator[Any]:
    """Every leaf value inside nested tuples, lists, dicts and slices (a tensor's array for a
    tensor, unless tensors are skipped)."""
    if isinstance(x, Tensor) and skip is None:
        yield x.data
    elif isinstance(x, (tuple, list)):
        for v in x:
            yield from _flat(v, skip)
    elif isinstance(x, dict):
        for v in x.values():
            yield from _flat(v, skip)
    elif isinstance(x, slice):
        yield from _flat((x.start, x.stop, x.step), skip)
    elif skip is None or not isinstance(x, skip):
        yield x


# -- optimisers and schedulers: their Python methods are replayed as calls ----------------------
def _opaque_methods() -> list[tuple[type, str]]:
    """(class, method) pairs whose calls are recorded whole: every optimiser's step/zero_grad,
    every learning-rate scheduler's step (they keep Python state such as step counts),
    every module's zero_grad (it may write the gradients' arrays directly) and train (eval
    calls it: a step that sets its model's mode does so at every call)."""
    from .nn.module import Module
    from .optim import Optimizer
    from .optim.lr_scheduler import LRScheduler

    pairs = []
    for base, names in ((Optimizer, ("step", "zero_grad")), (LRScheduler, ("step",)),
                        (Module, ("zero_grad", "train"))):
        todo, seen = [base], set()
        while todo:
            cls = todo.pop()
            if cls in seen:
                continue
            seen.add(cls)
            todo.extend(cls.__subclasses__())
            pairs.extend((cls, n) for n in names if n in cls.__dict__)
    return pairs


@contextlib.contextmanager
def _intercept_opaque(tracer: _Tracer) -> Iterator[None]:
    """While tracing, optimiser/scheduler methods record themselves and run untraced."""
    saved = []

    def wrap(orig: Callable, sets_mode: bool) -> Callable:
        def method(self: Any, *args: Any, **kw: Any) -> Any:
            if _core.TRACER is not tracer:  # nested call (super().step) or not tracing
                return orig(self, *args, **kw)
            if any(callable(a) for a in (*args, *kw.values())):  # step(closure)
                tracer.unsupported(f"{type(self).__name__}.{orig.__name__} with a closure (the "
                                   "closure would replay the traced batch); call it yourself "
                                   "before step()")
            tracer.record_opaque(orig.__get__(self), args, kw)
            if sets_mode:  # Module.train (and eval): these modules run in the mode it sets
                tracer.modes_set.update(id(m) for m in self.modules())
            _core.TRACER = None
            try:
                return orig(self, *args, **kw)
            finally:
                _core.TRACER = tracer

        return method

    try:
        for cls, name in _opaque_methods():
            orig = cls.__dict__[name]
            saved.append((cls, name, orig))
            setattr(cls, name, wrap(orig, name == "train"))
        yield
    finally:
        for cls, name, orig in saved:
            setattr(cls, name, orig)


# -- the compiled function --------------------------------------------------------------------
class Compiled:
    """A training step traced once per input signature and replayed as generated NumPy code."""

    def __init__(self, fn: Callable, max_tapes: int = 8) -> None:
        self.fn = fn
        self.max_tapes = max_tapes
        self._tapes: dict[tuple, list[_Tape]] = {}  # signature -> its tapes, oldest first
        self._last: _Tape | None = None  # the tape that replayed last (tried first)
        self._newest: _Tape | None = None
        self._packs: dict[int, tuple] = {}  # id(SGD) -> (array, views) its parameters live in
        self.traces = 0  # how many times fn was traced (for tests and curiosity)

    def __call__(self, *args: Any) -> Any:
        tape = self._last  # the usual case: same signature as the last call (checked inside)
        if tape is not None:
            result = tape.replay(*args)
            if result is not _RETRACE:
                return result
        key = _signature(args)
        for other in self._tapes.get(key, ()):  # one per state the guards tell apart
            if other is not tape:
                result = other.replay(*args)
                if result is not _RETRACE:
                    self._last = other
                    return result
        return self._trace(key, args)

    @property
    def source(self) -> str:
        """The generated code of the most recent tape."""
        return "" if self._newest is None else self._newest.source

    def _trace(self, key: tuple, args: tuple) -> Any:
        if _core.TRACER is not None:
            raise CompileError("compile: a compiled step can't be called while another is traced")
        inputs = [np.array(a.data if isinstance(a, Tensor) else a) if _is_array(a) else None
                  for a in args]
        for a in args:
            if isinstance(a, Tensor) and a.requires_grad:
                raise CompileError(
                    "compile: an argument requires grad; pass data as arguments and keep "
                    "parameters in the model (or the closure)"
                )
        call_args = [a if buf is None else (Tensor._make(buf) if isinstance(a, Tensor) else buf)
                     for a, buf in zip(args, inputs, strict=True)]
        tracer = _Tracer()
        rng_state = default_generator.get_state()
        _core.TRACER = tracer
        try:
            with _intercept_opaque(tracer):
                result = self.fn(*call_args)
        finally:
            _core.TRACER = None
        _copy_back_changed_inputs(args, inputs)
        if default_generator.get_state() != rng_state:
            raise CompileError(
                "compile: the step draws random numbers (dropout in training mode?); the tape "
                "would repeat the same draw every step. Don't compile this step (or use eval())"
            )
        for v in _flat(result, skip=Tensor):
            if v is not None:
                raise CompileError(
                    f"compile: the step returned a {type(v).__name__}, which the tape would "
                    "freeze at its first value; return tensors (e.g. the loss) and convert "
                    "them outside the step"
                )
        self.traces += 1
        tape = _Tape(tracer, args, inputs, result, self._packs)
        if sum(map(len, self._tapes.values())) >= self.max_tapes:  # drop the oldest
            oldest = next(iter(self._tapes))
            del self._tapes[oldest][0]
            if not self._tapes[oldest]:
                del self._tapes[oldest]
        self._tapes.setdefault(key, []).append(tape)
        self._last = self._newest = tape
        return _copy_out(result)


def compile(fn: Callable, *, max_tapes: int = 8) -> Compiled:  # noqa: A001 (chainrule.compile)
    """Compile a training step ``fn(*inputs)`` (forward, backward, optimiser update) into a
    replayed tape; see the module docstring for the rules."""
    return Compiled(fn, max_tapes)


def _copy_back_changed_inputs(args: tuple, inputs: list) -> None:
    """The trace ran on copies of the inputs: one the step changed in place changes the
    caller's array too, as in eager execution (a replay works on the caller's arrays)."""
    for a, buf in zip(args, inputs, strict=True):
        src = a.data if isinstance(a, Tensor) else a
        if buf is not None and src.flags.writeable and not np.array_equal(
                src, buf, equal_nan=src.dtype.kind in "fc"):
            np.copyto(src, buf)


def _is_array(a: Any) -> bool:
    return isinstance(a, (Tensor, np.ndarray))


def _signature(args: tuple) -> tuple:
    """Cache key: type, shape and dtype of array arguments, the value of the others."""
    key = []
    for a in args:
        if _is_array(a):
            d = a.data if isinstance(a, Tensor) else a
            key.append((isinstance(a, Tensor), d.shape, d.dtype.str))
        else:
            if any(_is_array(v) for v in _flat(a)):
                raise TypeError(
                    f"compile: a {type(a).__name__} holding tensors or arrays can't be an "
                    "argument (it would be taken as a constant); pass each one as an argument"
                )
            try:
                hash(a)
            except TypeError:
                raise TypeError(
                    f"compile: non-array arguments must be hashable (they select the tape), got "
                    f"{type(a).__name__}; pass arrays as Tensors or ndarrays"
                ) from None
            key.append(("static", type(a).__name__, a))
    return tuple(key)


def _copy_out(x: Any) -> Any:
    """The step's result with every tensor replaced by a graph-free copy."""
    if isinstance(x, Tensor):
        return Tensor._make(np.array(x.data))
    if isinstance(x, tuple):
        return tuple(_copy_out(v) for v in x)
    if isinstance(x, list):
        return [_copy_out(v) for v in x]
    if isinstance(x, dict):
        return {k: _copy_out(v) for k, v in x.items()}
    return x


_RETRACE = object()
_PER_CALL = ("dyn", "lbuf", "input")  # arrays that are new objects at every call


# -- from the tape to code ---------------------------------------------------------------------
class _Value:
    """An array of the tape: where it comes from and how the generated code names it."""

    __slots__ = ("name", "kind", "roots", "array")

    def __init__(self, name: str, kind: str, roots: tuple, array: Any) -> None:
        self.name = name    # expression in the generated code
        self.kind = kind    # "input", "ext", "buf"/"lbuf" (out= buffer, of a gradient),
        #                     "view" (taken once), "dyn" (a new array at every call)
        self.roots = roots  # ids of the buffers it lives in (itself, or its bases)
        self.array = array  # the static array (inputs, externals, buffers, hoisted views)


def _out_form(node: _Node) -> Callable | None:
    """How to run this node into a given buffer, if it can: ufuncs take ``out=``; an op may
    register an out-form with ``defop(..., out=f)``."""
    if node.kind != "op":
        return None
    if isinstance(node.fn, np.ufunc) and node.fn.nout == 1 and not node.kw:
        return node.fn
    return getattr(node.op, "out", None)


class _Tape:
    """The generated replay function of one trace, with its buffers and guards."""

    def __init__(self, tracer: _Tracer, args: tuple, inputs: list, result: Any,
                 packs: dict) -> None:
        self.ns: dict[str, Any] = {"_Tensor_make": Tensor._make, "_array": np.array,
                                   "_RETRACE": _RETRACE, "_leaf_copy": _leaf_copy,
                                   "_leaf_acc": _leaf_acc, "_empty_like": np.empty_like,
                                   "_Tensor": Tensor, "_ndarray": np.ndarray}
        self.values: dict[int, _Value] = {}
        self.names = itertools.count()
        self.lines: list[str] = []
        self._leaf_tensor: dict[int, str] = {}
        self._remap: dict[int, np.ndarray] = {}      # parameter arrays moved by _pack_sgd
        self._grad_home: dict[int, np.ndarray] = {}  # gradient buffers it placed
        self._sgd: dict[int, tuple] = {}             # id(optimiser) -> its packed arrays
        self._packs = packs                          # the Compiled's packings, shared by tapes
        self._bound: dict[int, tuple] = {}           # id(param) -> (param, holder, buffer) names
        self._ce: dict[int, tuple] = {}              # cross-entropy node -> its buffers' names
        self._grad_owner = tracer.grad_owner         # id(a .grad's array) -> its tensor
        self._prologue: list[str] = []               # per call: .grad arrays made before it
        self._build(tracer, args, inputs, result)

    # names for constants and functions in the generated code's namespace
    def _const(self, obj: Any, prefix: str = "c") -> str:
        name = f"{prefix}{next(self.names)}"
        self.ns[name] = obj
        return name

    def _expr(self, x: Any) -> str:
        """Source text that evaluates to ``x`` at replay (arrays by their tape names)."""
        if isinstance(x, np.ndarray):
            v = self.values.get(id(x))
            return v.name if v is not None else self._external(x)
        if isinstance(x, Tensor):  # e.g. the loss handed to a scheduler: this step's value
            return f"_Tensor_make({self._expr(x.data)})"
        if x is None or isinstance(x, (bool, int, str)) and type(x) in (bool, int, str):
            return repr(x)
        if type(x) is float and np.isfinite(x):
            return repr(x)
        if isinstance(x, tuple):
            return "(" + "".join(self._expr(v) + ", " for v in x) + ")"
        if isinstance(x, list):
            return "[" + ", ".join(self._expr(v) for v in x) + "]"
        if isinstance(x, slice):
            return f"slice({self._expr(x.start)}, {self._expr(x.stop)}, {self._expr(x.step)})"
        if x is Ellipsis:
            return "..."
        return self._const(x)

    def _external(self, a: np.ndarray) -> str:
        """An array the step reads but did not make (a parameter, a constant). A gradient that
        existed before the step (read through ``p.grad``) is read from ``p`` at every call:
        code outside the step may have replaced it (zero_grad, then an eager backward)."""
        owner = self._grad_owner.get(id(a))
        if owner is not None:
            p, name = self._const(owner, "p"), f"gx{len(self._prologue)}"
            self._prologue += [
                f"if {p}._grad is None or {p}._grad.data.shape != {a.shape!r} or "
                f"{p}._grad.data.dtype != {self._const(a.dtype, 's')}:",
                "    return _RETRACE", f"{name} = {p}._grad.data"]
            self.values[id(a)] = _Value(name, "dyn", (id(a),), None)
            return name
        arr = self._remap.get(id(a), a)
        name = self._const(arr, "e")
        self.values[id(a)] = self.values[id(arr)] = _Value(name, "ext", (id(a),), arr)
        return name

    def _call(self, fn_name: str, node: _Node, out: str | None = None,
              scalars: np.dtype | None = None) -> str:
        parts = [self._expr(a) for a in node.args]
        if scalars is not None and self._float_scalars_ok(node, scalars):
            # a ufunc casts a Python float to the arrays' dtype at every call; a 0-d array of
            # that dtype holding the cast value computes the same, ~0.3 us faster
            parts = [self._const(np.array(a, scalars), "s") if type(a) is float else e
                     for a, e in zip(node.args, parts, strict=True)]
        parts += [f"{k}={self._expr(v)}" for k, v in node.kw.items()]
        if out is not None:  # a ufunc takes its output positionally (a little cheaper)
            ufunc = isinstance(node.fn, np.ufunc) and len(node.args) == node.fn.nin
            parts.append(out if ufunc and not node.kw else f"out={out}")
        return f"{fn_name}({', '.join(parts)})"

    def _build(self, tracer: _Tracer, args: tuple, inputs: list, result: Any) -> None:
        nodes = tracer.nodes
        head = []  # check the signature, bind the inputs' arrays (no copy)
        for k, (a, buf) in enumerate(zip(args, inputs, strict=True)):
            if buf is None:
                head.append(f"if a{k} != {self._const(a, 's')}:")
            else:
                name = f"x{k}"
                self.values[id(buf)] = _Value(name, "input", (id(buf),), buf)
                if isinstance(a, Tensor):
                    head += [f"if not isinstance(a{k}, _Tensor):", "    return _RETRACE",
                             f"{name} = a{k}.data"]
                else:
                    head += [f"if not isinstance(a{k}, _ndarray):", "    return _RETRACE",
                             f"{name} = a{k}"]
                head.append(f"if {name}.shape != {buf.shape!r} or {name}.dtype != "
                            f"{self._const(buf.dtype, 's')}:")
            head.append("    return _RETRACE")
        outputs = [a for a in _flat(result) if isinstance(a, np.ndarray)]
        live = _live_nodes(nodes, outputs)
        self._pack_sgd(tracer, live)
        self._plan(nodes, live, outputs)
        body = head + self._guards(tracer) + self._prologue + self.lines
        body.append("return " + self._result_expr(result))
        nargs = len(inputs)
        params = ", ".join(f"a{k}" for k in range(nargs))
        self.source = f"def replay({params}):\n" + "".join(f"    {ln}\n" for ln in body)
        exec(self.source, self.ns)  # noqa: S102 (code generated from the tape above)
        self.replay = self.ns["replay"]

    # -- plain SGD: one update call for all parameters ------------------------------------------
    def _pack_sgd(self, tracer: _Tracer, live: list[bool]) -> None:
        """For each plain-SGD optimiser whose parameters all get their gradient in a buffer of
        the tape, put the parameters (and those buffers) side by side in one array: each
        ``p.data`` becomes a view of it, and the update can be two NumPy calls."""
        leaf_grad: dict[int, np.ndarray] = {}
        made = {id(n.out) for j, n in enumerate(tracer.nodes)
                if live[j] and n.kind == "op" and _out_form(n) is not None}
        for j, n in enumerate(tracer.nodes):
            if live[j] and n.kind == "leaf":
                key = id(n.tensor)
                leaf_grad[key] = None if key in leaf_grad else n.args[0]
        for node in tracer.nodes:
            opt = getattr(node.fn, "__self__", None)
            if not self._is_sgd_step(node) or len(opt.param_groups) != 1 or id(opt) in self._sgd:
                continue
            params = opt.param_groups[0]["params"]
            grads = [leaf_grad.get(id(p)) for p in params]
            dtypes = {p.data.dtype for p in params}
            if (len(dtypes) != 1 or any(g is None or id(g) not in made or g.shape != p.shape
                                        or g.dtype != p.data.dtype
                                        for p, g in zip(params, grads, strict=True))):
                continue
            packed = self._packs.get(id(opt))  # packed by an earlier tape: keep that array
            if packed is None or any(p.data is not v for p, v in zip(params, packed[1],
                                                                       strict=False)):
                packed = self._packs[id(opt)] = _pack(params, tracer, self._remap)
            flat_p = packed[0]
            flat_g, off = np.empty_like(flat_p), 0
            for p, g in zip(params, grads, strict=True):
                self._grad_home[id(g)] = flat_g[off:off + p.data.size].reshape(p.shape)
                off += p.data.size
            self._sgd[id(opt)] = (params, flat_p, flat_g, None)

    @staticmethod
    def _is_sgd_step(node: _Node) -> bool:
        from .optim import SGD

        return node.kind == "opaque" and getattr(node.fn, "__func__", None) is SGD.step

    def _emit_sgd(self, node: _Node) -> bool:
        """The two-call update of a packed SGD, taken when the options are plain and every
        parameter's .grad is its packed buffer; else the optimiser's own step()."""
        params, flat_p, flat_g, scratch = self._sgd[id(node.fn.__self__)]
        if any(id(p) not in self._bound for p in params):
            return False
        opt = self._const(node.fn.__self__, "o")
        grp = self._const(node.fn.__self__.param_groups[0], "o")
        # the same single group (load_state_dict replaces it, add_param_group adds one)
        conds = [f"len({opt}.param_groups) == 1", f"{opt}.param_groups[0] is {grp}",
                 f'not {grp}["momentum"]', f'not {grp}["weight_decay"]',
                 f'not {grp}["maximize"]']
        conds += [f"{self._bound[id(p)][0]}._grad is {self._bound[id(p)][1]}" for p in params]
        conds += [f"{self._bound[id(p)][1]}.data is {self._bound[id(p)][2]}" for p in params]
        fp, fg = self._const(flat_p, "s"), self._const(flat_g, "s")
        axpy = blas_axpy(flat_p.dtype)
        if axpy is not None:  # BLAS p += (-lr) g: one pass, no scratch
            update = f'{self._const(axpy, "f")}({fg}, {fp}, a=-{grp}["lr"])'
        else:
            self.ns["_multiply"], self.ns["_subtract"] = np.multiply, np.subtract
            tmp = self._const(scratch if scratch is not None else np.empty_like(flat_p), "s")
            update = f'_subtract({fp}, _multiply({fg}, {grp}["lr"], out={tmp}), out={fp})'
        self.lines += [f"if {' and '.join(conds)}:", f"    {update}",
                       "else:", f"    {self._call(self._const(node.fn, 'f'), node)}"]
        return True

    def _guards(self, tracer: _Tracer) -> list[str]:
        """Retrace if a tensor whose array the tape reads got a new array (model.to(...)) or
        was frozen or unfrozen (requires_grad), or a module that ran changed between train()
        and eval() (dropout, batch norm)."""
        conds = [f"{self._const(m, 'm')}.training is not {flag}"
                 for m, flag in tracer.modes.values()]
        seen, read = set(), {}
        for v in self.values.values():
            t = tracer.tensors.get(id(v.array)) if v.kind == "ext" else None
            if t is not None and (id(t), v.name) not in seen:  # one check per tensor and array
                seen.add((id(t), v.name))
                name = read.setdefault(id(t), (t, self._const(t, "t")))[1]
                conds.append(f"{name}.data is not {v.name}")
        conds += [f"{name}.requires_grad is not {t.requires_grad}" for t, name in read.values()]
        if not conds:
            return []
        return [f"if {' or '.join(conds)}:", "    return _RETRACE"]

    def _result_expr(self, x: Any) -> str:
        if isinstance(x, Tensor):
            v = self.values.get(id(x.data))
            src = v.name if v is not None else self._external(x.data)
            return f"_Tensor_make(_array({src}))"
        if isinstance(x, tuple):
            return "(" + "".join(self._result_expr(v) + ", " for v in x) + ")"
        if isinstance(x, list):
            return "[" + ", ".join(self._result_expr(v) for v in x) + "]"
        if isinstance(x, dict):
            return "{" + ", ".join(f"{self._expr(k)}: {self._result_expr(v)}"
                                   for k, v in x.items()) + "}"
        return self._expr(x)

    # -- planning: classify every result, give buffers, write one line per node ---------------
    def _plan(self, nodes: list[_Node], live: list[bool], outputs: list) -> None:
        # 0. gradients that reach exactly one leaf (of their dtype) get a buffer of their own
        reach: dict[int, list[_Node]] = {}
        for j, node in enumerate(nodes):
            if live[j] and node.kind == "leaf":
                reach.setdefault(id(node.args[0]), []).append(node)
        self._leaf_tensor = {
            k: self._const(ns[0].tensor, "p") for k, ns in reach.items()
            if len(ns) == 1 and ns[0].args[0].dtype == ns[0].tensor.data.dtype
        }
        # 1. what each node's result is, and where it lives (roots)
        ce_pairs = _ce_pairs(nodes, live)
        ce_vjps = {k: j for j, k in ce_pairs.items()}
        kinds: list[str | None] = []
        for j, node in enumerate(nodes):
            arrays = [a for a in _flat((node.args, node.kw)) if isinstance(a, np.ndarray)]
            if live[j]:
                for a in arrays:  # arrays from outside the step (effects' targets too)
                    if id(a) not in self.values:
                        self._external(a)
            if not live[j] or node.out is None:
                kinds.append(None)
                continue
            if j in ce_pairs or j in ce_vjps:  # plain cross-entropy: its own buffers
                kinds.append("ce")
                kind = "dyn" if j in ce_pairs else "buf"
                self.values[id(node.out)] = _Value("", kind, (id(node.out),), None)
                continue
            out = node.out
            if any(out is a for a in arrays):
                kinds.append("alias")
                continue
            shared = [a for a in arrays if np.may_share_memory(out, a)]
            roots = tuple({r for a in shared for r in self.values[id(a)].roots}) or (id(out),)
            static = all(self.values[id(a)].kind not in _PER_CALL for a in arrays)
            if shared:
                kind = "view" if static and node.kind == "op" else "dyn"
            elif _out_form(node) is not None:
                kind = "lbuf" if id(out) in self._leaf_tensor else "buf"
            else:
                kind = "dyn"
            kinds.append(kind)
            self.values[id(out)] = _Value("", kind, roots, None)
        # 2. liveness of buffers: last node reading each root; escaping ones live forever
        last: dict[int, int] = {}
        for j, node in enumerate(nodes):
            if live[j]:
                for a in _flat((node.args, node.kw)):
                    if isinstance(a, np.ndarray):
                        for r in self.values[id(a)].roots:
                            last[r] = j
        escaping = set()
        for j, node in enumerate(nodes):
            if live[j] and node.kind == "leaf":
                escaping.update(self.values[id(node.args[0])].roots)
        for a in outputs:
            if id(a) in self.values:
                escaping.update(self.values[id(a)].roots)
        for r in escaping:
            last[r] = len(nodes)
        # 3. buffers and code, node by node
        free: dict[tuple, list[np.ndarray]] = {}
        owner: dict[int, np.ndarray] = {}  # root id -> its buffer
        ends: dict[int, list[int]] = {}    # node -> roots last read there
        for r, end in last.items():
            ends.setdefault(end, []).append(r)
        last_read: dict[int, int] = {}  # array id -> the last live node that reads it
        for j, node in enumerate(nodes):
            if live[j]:
                for a in _flat((node.args, node.kw)):
                    if isinstance(a, np.ndarray):
                        last_read[id(a)] = j
        for j, node in enumerate(nodes):
            if not live[j]:
                continue
            kind = kinds[j]
            if node.kind == "leaf":
                self._emit_leaf(node, last_read.get(id(node.args[0]), j) > j)
            elif kind == "ce":
                self._emit_ce(j, node, ce_vjps.get(j))
            elif kind == "alias":
                src = next(a for a in _flat((node.args, node.kw)) if a is node.out)
                self.values[id(node.out)] = self.values[id(src)]
            elif kind in ("buf", "lbuf"):
                self._emit_buf(j, node, owner, free, last, escaping)
            elif kind == "view" and self._hoist(node):
                pass
            elif kind in ("view", "dyn"):
                v = self.values[id(node.out)]
                v.name = f"d{j}"
                self.lines.append(f"{v.name} = {self._call(self._const(node.fn, 'f'), node)}")
            elif not (self._is_sgd_step(node) and id(node.fn.__self__) in self._sgd
                      and self._emit_sgd(node)):  # effects and optimiser calls
                self.lines.append(self._call(self._const(node.fn, "f"), node))
            for r in ends.get(j, ()):  # buffers whose last reader was this node are free
                if r in owner and last.get(r) == j:
                    buf = owner.pop(r)
                    free.setdefault((buf.shape, buf.dtype.str, buf.strides), []).append(buf)

    def _emit_ce(self, j: int, node: _Node, fwd: int | None) -> None:
        """Plain mean cross-entropy (forward ``fwd`` is None) or its VJP, as the eager fast path
        (``ops.nn._plain_mean_fwd`` and the softmax memo) computes it - class-major for few
        classes, as there - into fixed buffers, with labels picked by flat index; a batch with
        a label outside [0, C) or an ignored label takes the eager functions (which ignore it,
        or raise as eager does)."""
        from .ops.nn import _CLASS_MAJOR_MAX

        v = self.values[id(node.out)]
        fn = self._const(node.fn, "f")
        if fwd is None:
            x, kw = node.args[0], node.kw
            n, c = x.shape
            cm = c <= _CLASS_MAJOR_MAX  # the exponentials as (C, N), labels at t * N + row
            e, s = np.empty((c, n) if cm else (n, c), x.dtype), np.empty(n, x.dtype)
            ev, flat, idx = (self._const(e, "b"), self._const(e.reshape(-1), "v"),
                             self._const(np.empty(n, np.intp), "b"))
            if cm:  # the gradient goes back (N, C) C-contiguous, as eager's: its own buffer
                p = np.empty((n, c), x.dtype)
                grad = (self._const(p, "b"), self._const(p.T, "v"),
                        self._const(p.reshape(-1), "v"), self._const(np.empty(n, np.intp), "b"))
            else:
                grad = (ev, ev, flat, idx)
            self._ce[j] = (ev, self._const(s if cm else s.reshape(n, 1), "v"), grad)
            sv = self._const(s, "b")
            m = self._const(np.empty(n if cm else (n, 1), x.dtype), "b")
            loss = self._const(s.copy(), "b")
            rows = self._const(np.arange(n) if cm else np.arange(n) * c, "c")
            xs, t = self._expr(x), self._expr(kw["target"])
            unsigned = self._const(np.dtype(f"u{kw['target'].dtype.itemsize}"), "s")
            label_dtype = kw["target"].dtype
            # label * N in intp: an int8/int16 product would overflow (int64 needs no cast)
            as_intp = ("" if label_dtype.itemsize >= np.dtype(np.intp).itemsize
                       else f", dtype={self._const(np.dtype(np.intp), 's')}")
            self.ns.update(_count_nonzero=np.count_nonzero, _maximum=np.maximum, _exp=np.exp,
                           _subtract=np.subtract, _add=np.add, _log=np.log, _asarray=np.asarray,
                           _copyto=np.copyto, _multiply=np.multiply)
            check = f"_maximum.reduce({t}.view({unsigned})) >= {c}"
            ignore = kw["ignore_index"]
            if isinstance(ignore, (int, np.integer)) and 0 <= ignore < c:
                check += f" or _count_nonzero({t} == {int(ignore)})"
            v.name = f"d{j}"
            axis = 0 if cm else 1
            shifted = ([f"    _copyto({ev}, {xs}.T)",
                        f"    _maximum.reduce({ev}, 0, None, {m})",
                        f"    _subtract({ev}, {m}, {ev})",
                        f"    _multiply({t}, {n}, {idx}{as_intp})",
                        f"    _add({idx}, {rows}, {idx})",
                        f"    _add({self._const(np.arange(n) * c, 'c')}, {t}, {grad[3]})"]
                       if cm else
                       [f"    _maximum.reduce({xs}, 1, None, {m}, True)",
                        f"    _subtract({xs}, {m}, {ev})",
                        f"    _add({rows}, {t}, {idx})"])
            self.lines += [
                f"ce{j}_n = {check}",
                f"if ce{j}_n:", f"    {v.name} = {self._call(fn, node)}", "else:",
                *shifted,
                f"    ce{j}_p = {flat}[{idx}]",
                f"    _exp({ev}, {ev})",
                f"    _add.reduce({ev}, {axis}, None, {sv})",
                f"    _log({sv}, {loss})",
                f"    _subtract({loss}, ce{j}_p, {loss})",
                f"    {v.name} = _asarray(_add.reduce({loss}) / {n})",
            ]
            return
        ev, s2, (out, out_as_e, flat, idx) = self._ce[fwd]
        v.array, v.name = self.ns[out], out
        n = self.ns[out].shape[0]
        g = self._expr(node.args[0])
        self.ns.update(_copyto=np.copyto, _divide=np.divide, _multiply=np.multiply)
        self.lines += [
            f"if ce{fwd}_n:", f"    _copyto({out}, {self._call(fn, node)})", "else:",
            f"    _divide({ev}, {s2}, {out_as_e})",
            f"    {flat}[{idx}] -= 1.0",
            f"    _multiply({out}, {g} * {1.0 / n!r}, {out})",
        ]

    @staticmethod
    def _float_scalars_ok(node: _Node, dtype: np.dtype) -> bool:
        """A ufunc on floating arrays all of ``dtype`` (the result's) and Python floats."""
        if not isinstance(node.fn, np.ufunc) or node.kw or dtype.kind != "f":
            return False
        arrays = [a for a in node.args if isinstance(a, np.ndarray)]
        return bool(arrays) and all(a.dtype == dtype for a in arrays) and all(
            isinstance(a, np.ndarray) or type(a) is float for a in node.args)

    def _hoist(self, node: _Node) -> bool:
        """Take a view of fixed arrays once, now; False if here it would not be a view."""
        v = self.values[id(node.out)]
        v.kind = "dyn"
        if any(self.values[id(a)].kind in _PER_CALL for a in _flat((node.args, node.kw))
               if isinstance(a, np.ndarray)):
            return False
        args = [self._static(a) for a in node.args]
        kw = {k: self._static(a) for k, a in node.kw.items()}
        view = np.asarray(node.fn(*args, **kw))
        bases = [a for a in _flat((args, kw)) if isinstance(a, np.ndarray)]
        if not any(np.may_share_memory(view, b) for b in bases):
            return False
        v.array, v.kind = view, "view"
        v.name = self._const(view, "v")
        return True

    def _static(self, a: Any) -> Any:
        """The build-time object for an argument of a hoisted view."""
        if isinstance(a, np.ndarray):
            return self.values[id(a)].array
        if isinstance(a, tuple):
            return tuple(self._static(v) for v in a)
        return a

    def _emit_buf(self, j: int, node: _Node, owner: dict, free: dict, last: dict,
                  escaping: set) -> None:
        out = node.out
        v = self.values[id(out)]
        key = (out.shape, out.dtype.str, out.strides)  # same layout: views of it behave alike
        buf = None
        fn = node.fn
        if v.kind == "buf" and isinstance(fn, np.ufunc) and fn.signature is None:
            for a in node.args:  # elementwise: in place into an input that dies here
                src = self.values.get(id(a)) if isinstance(a, np.ndarray) else None
                r = id(a)
                if (src is not None and src.kind == "buf" and src.roots == (r,)
                        and r in owner and last.get(r) == j and r not in escaping
                        and (a.shape, a.dtype.str, a.strides) == key):
                    buf = owner.pop(r)
                    del last[r]
                    break
        if buf is None:
            pool = free.get(key) if v.kind == "buf" else None
            buf = pool.pop() if pool else self._grad_home.get(id(out))
            if buf is None:
                buf = np.empty_like(out)
        owner[id(out)] = buf
        v.array = buf
        call_fn = self._const(_out_form(node), "f")
        if v.kind == "lbuf":  # a parameter's gradient: its own buffer, unless .grad still has it
            base, t = self._const(buf, "g"), self._leaf_tensor[id(out)]
            v.name = f"l{j}"
            self.lines.append(f"{v.name} = {base} if {t}._grad is None or {t}._grad.data is not "
                              f"{base} else _empty_like({base})")
        else:
            v.name = self._const(buf, "b")
        if not (self._emit_linear(node, v.name) or self._emit_sum(node, v.name)):
            self.lines.append(self._call(call_fn, node, out=v.name, scalars=buf.dtype))

    def _emit_sum(self, node: _Node, out: str) -> bool:
        """A sum into a buffer as the ufunc reduce ``ops.reduce._sum_out`` makes, called
        directly with positional arguments (~0.35 us less than through the wrapper)."""
        from .ops.reduce import _sum_out

        if node.op is None or getattr(node.op, "out", None) is not _sum_out:
            return False
        try:
            bound = inspect.signature(_sum_out).bind(*node.args, **node.kw, out=None)
        except TypeError:
            return False
        x, axis, keep = (bound.arguments.get(k, d) for k, d in
                         (("x", None), ("axis", None), ("keepdims", False)))
        dtype = self._const(self.values[id(node.out)].array.dtype, "s")
        self.ns["_add"] = np.add
        self.lines.append(f"_add.reduce({self._expr(x)}, {self._expr(axis)}, {dtype}, {out}, "
                          f"{self._expr(keep)})")
        return True

    def _emit_linear(self, node: _Node, out: str) -> bool:
        """``x @ w.T (+ b)`` (``ops.linalg._linear_out``) inline. A small fixed 2-D weight of at
        least 32 rows is first copied, transposed, into a fixed buffer: OpenBLAS multiplies a
        transposed right operand of that size ~1.8x slower than a contiguous one (same
        products, same bits); the transposed view of another fixed weight is taken once. A
        feature-major output is computed as eager does, (W @ x.T).T. A fused activation
        (``ops.linalg.linear_act``) follows, in place."""
        from .ops.linalg import _is_feature_major, _linear_out

        form = getattr(node.op, "out", None) if node.op is not None else None
        act = getattr(form, "activation", None)
        if (form is not _linear_out and act is None) or node.kw:
            return False
        x, w = node.args[:2]
        if not isinstance(w, np.ndarray) or not isinstance(x, np.ndarray) or w.ndim != 2:
            return False
        self.ns.update(_copyto=np.copyto, _matmul=np.matmul, _add=np.add)
        ws, fixed = self._expr(w), self.values[id(w)].kind in ("ext", "buf", "view")
        buf = self.values[id(node.out)].array
        if _is_feature_major(buf):  # (W @ x.T).T, as eager computes it (ops.linalg)
            self.lines.append(f"_matmul({ws}, {self._expr(x)}.T, {self._const(buf.T, 'v')})")
        else:
            if (w.shape[0] >= 32 and w.size <= 16384 and w.flags.c_contiguous
                    and w.dtype == x.dtype):
                wt = self._const(np.empty_like(w.T, order="C"), "b")
                self.lines.append(f"_copyto({wt}, {ws}.T)")
            else:
                wt = self._const(self.values[id(w)].array.T, "v") if fixed else f"{ws}.T"
            self.lines.append(f"_matmul({self._expr(x)}, {wt}, {out})")
        if len(node.args) == 3 and node.args[2] is not None:
            self.lines.append(f"_add({out}, {self._expr(node.args[2])}, {out})")
        if act is not None:
            self.lines.append(f"{self._const(act, 'f')}({out})")
        return True

    def _emit_leaf(self, node: _Node, read_later: bool) -> None:
        """The gradient ``g`` reaches a leaf's ``.grad``. If the step reads that gradient again
        (clipping, ``p.grad.mul_``), the tape's later uses of ``g`` name ``t.grad.data`` - which
        is a copy of g, or the array g was added into, not g itself, in some calls."""
        g = node.args[0]
        v = self.values[id(g)]
        if v.kind == "lbuf":
            holder, t = self._const(Tensor._make(v.array), "h"), self._leaf_tensor[id(g)]
            self._bound[id(node.tensor)] = (t, holder, self._const(v.array, "g"))
            self.lines += [f"if {t}._grad is None:", f"    {holder}.data = {v.name}",
                           f"    {t}._grad = {holder}", "else:",
                           f"    _leaf_acc({t}, {v.name}, {holder})"]
        else:
            t = self._const(node.tensor, "p")
            self.lines.append(f"_leaf_copy({t}, {self._expr(g)})")
        if read_later:
            self.values[id(g)] = _Value(f"gr{len(self.lines)}", "dyn", v.roots, None)
            self.lines.append(f"{self.values[id(g)].name} = {t}._grad.data")


def _pack(params: list[Tensor], tracer: _Tracer, remap: dict) -> tuple:
    """Move the parameters' values into one new array; each ``p.data`` becomes a view of it."""
    flat = np.empty(sum(p.data.size for p in params), params[0].data.dtype)
    views, off = [], 0
    for p in params:
        view = flat[off:off + p.data.size].reshape(p.shape)
        view[...] = p.data
        remap[id(p.data)] = view
        tracer.tensors[id(view)] = p
        p.data = view
        views.append(view)
        off += view.size
    return flat, views


def _leaf_copy(t: Tensor, g: Any) -> None:
    """A gradient reaches leaf ``t`` (eager semantics: a fresh array, or added in place)."""
    g = np.asarray(g, dtype=t.data.dtype)
    if t._grad is None:
        t._grad = Tensor._make(np.array(g))
    else:
        _leaf_acc(t, g, None)


def _leaf_acc(t: Tensor, g: np.ndarray, holder: Tensor | None) -> None:
    """Bind the fixed gradient buffer ``g`` to ``t.grad`` (through ``holder``), or add it in."""
    if t._grad is None:
        holder.data = g
        t._grad = holder
        return
    acc = t._grad.data
    if acc is g:
        return
    if acc.shape == g.shape and acc.dtype == g.dtype and acc.flags.writeable:
        np.add(acc, g, out=acc)
    else:
        t._grad.data = acc + g


def _ce_pairs(nodes: list[_Node], live: list[bool]) -> dict[int, int]:
    """Live plain-mean cross-entropy forwards (no class weights or smoothing, (N, C) float
    logits, integer labels) whose VJP is replayed whole later: forward index -> VJP index."""
    from .ops.nn import _cross_entropy_fwd, _cross_entropy_vjp

    pairs, fwds = {}, {}
    for j, node in enumerate(nodes):
        if not live[j]:
            continue
        if node.kind == "op" and node.fn is _cross_entropy_fwd:
            x, kw = node.args[0], node.kw
            t = kw.get("target")
            if (len(node.args) == 1 and kw.get("weight") is None
                    and not kw.get("label_smoothing") and kw.get("reduction") == "mean"
                    and isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[0]
                    and x.dtype.kind == "f" and isinstance(t, np.ndarray)
                    and t.dtype.kind == "i" and t.shape == x.shape[:1]
                    and isinstance(node.out, np.ndarray)):
                fwds[id(node.out)] = j
        elif (node.kind == "call" and node.fn is _cross_entropy_vjp and len(node.args) == 3
              and id(node.args[1]) in fwds):
            f = fwds.pop(id(node.args[1]))
            fn = nodes[f]
            if (node.args[2] is fn.args[0] and node.kw == fn.kw
                    and node.out.shape == fn.args[0].shape
                    and node.out.dtype == fn.args[0].dtype):
                pairs[f] = j
    return pairs


def _live_nodes(nodes: list[_Node], outputs: list) -> list[bool]:
    """Dead-code elimination: a node is kept if it has an effect or feeds one or an output."""
    needed = {id(a) for a in outputs}
    live = [False] * len(nodes)
    for j in range(len(nodes) - 1, -1, -1):
        node = nodes[j]
        if node.kind in ("op", "call") and id(node.out) not in needed:
            continue
        live[j] = True
        for a in _flat((node.args, node.kw)):
            if isinstance(a, np.ndarray):
                needed.add(id(a))
    return live
