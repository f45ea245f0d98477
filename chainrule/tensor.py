"""Tensor: an ndarray, its gradient, and the record of the operation that made it.

Kept lean (``__slots__``, no per-op dict work) because small networks are bound by Python
overhead per operation. The operations themselves live in ``chainrule.ops``; the methods here
are thin PyTorch-named entry points to them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ._mode import state

float16, float32, float64 = np.float16, np.float32, np.float64
int8, int16, int32, int64, uint8 = np.int8, np.int16, np.int32, np.int64, np.uint8
bool_ = np.bool_
_DEFAULT_FLOAT = np.dtype(np.float32)


class Tensor:
    """An n-dimensional array that can record the operations applied to it, for backpropagation.

    ``data`` is the NumPy array; ``grad`` accumulates dLoss/dself after ``backward()``;
    ``_ctx`` is ``(op, parents, kwargs)`` for a tensor made by a recorded operation, else None;
    such a tensor also has ``_seq``, its creation number (backward visits nodes newest first).
    """

    __slots__ = ("data", "_grad", "requires_grad", "_ctx", "_seq", "_hooks", "_origin",
                 "_version", "_saved_version", "__weakref__")
    __array_priority__ = 1000  # NumPy defers binary operators to Tensor

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        arr = as_array(data, dtype) if _core.TRACER is None else _traced_array(data, dtype)
        if requires_grad and arr.dtype.kind not in "fc":
            raise TypeError(
                f"only floating-point tensors can require gradients (got dtype {arr.dtype}); "
                "pass dtype=chainrule.float32"
            )
        self.data = arr
        self._grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self._hooks: list | None = None
        self._origin: str | None = None
        self._version = 0  # bumped by every in-place change; backward checks it (see apply)

    @property
    def grad(self) -> Tensor | None:
        """dLoss/dself, accumulated by ``backward()``; None until then (or after zero_grad)."""
        g = self._grad
        if g is not None and _core.TRACER is not None:  # a compiled step reads it per call
            _core.TRACER.grad_read(self, g)
        return g

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        # a step being compiled must replay this assignment (p.grad = None), or refuse it
        if _core.TRACER is not None:
            _core.TRACER.grad_assigned(self, value)
        self._grad = value

    # -- fast constructors used by the ops and the engine ------------------------------------
    @staticmethod
    def _make(data: np.ndarray, requires_grad: bool = False, ctx: Any = None) -> Tensor:
        t = object.__new__(Tensor)
        t.data = data
        t._grad = None
        t.requires_grad = requires_grad
        t._ctx = ctx
        t._hooks = None
        t._origin = None
        t._version = 0
        return t

    # -- attributes ----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        """True for tensors the user made (not produced by a recorded operation)."""
        return self._ctx is None

    @property
    def grad_fn(self) -> str | None:
        """Name of the operation that produced this tensor (None for a leaf)."""
        if self._ctx is None:
            return None
        return "".join(part.title() for part in self._ctx[0].name.split("_")) + "Backward"

    @property
    def T(self) -> Tensor:
        return _ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self) -> Tensor:
        return _ops.transpose(self, -2, -1)

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return self.data.size

    def item(self) -> float | int | bool:
        _no_value_under_trace(self, "item()")
        if self.data.size != 1:
            raise ValueError(
                f"item() needs a tensor with exactly one element, this one has shape {self.shape}"
            )
        return self.data.item()

    def tolist(self) -> Any:
        _no_value_under_trace(self, "tolist()")
        return self.data.tolist()

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        _no_value_under_trace(self, "numpy()")
        return self.data

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def detach(self) -> Tensor:
        """The same data, cut from the graph (shares memory, as in PyTorch)."""
        return Tensor._make(self.data)

    def clone(self) -> Tensor:
        return _ops.clone(self)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind not in "fc":
            raise TypeError(
                f"only floating-point tensors can require gradients (got dtype {self.dtype}); "
                "convert with .float() first"
            )
        if not requires_grad and self._ctx is not None:
            raise RuntimeError("requires_grad_(False) only works on leaf tensors; use .detach()")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep .grad on this non-leaf tensor after backward (leaves always keep it)."""
        if self._ctx is not None:
            self.register_hook(_RetainGrad(self))

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> Callable[[], None]:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor replaces
        the gradient. Returns a function that removes the hook."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        hooks = self._hooks
        return lambda: hooks.remove(hook) if hook in hooks else None

    def backward(
        self,
        gradient: Any = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
    ) -> None:
        """Backpropagate from this tensor, accumulating dself/dleaf into every leaf's ``.grad``."""
        from .autograd import backward

        backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph)

    # -- conversions ---------------------------------------------------------------------------
    def to(self, dtype: Any) -> Tensor:
        return _ops.cast(self, dtype=np.dtype(dtype))

    def type(self, dtype: Any) -> Tensor:
        return self.to(dtype)

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def long(self) -> Tensor:
        return self.to(np.int64)

    def int(self) -> Tensor:
        return self.to(np.int32)

    def bool(self) -> Tensor:
        return self.to(np.bool_)

    def __float__(self) -> float:
        _no_value_under_trace(self, "float()")
        return float(self.item())

    def __int__(self) -> int:
        _no_value_under_trace(self, "int()")
        return int(self.item())

    def __index__(self) -> int:
        _no_value_under_trace(self, "use as an index")
        if self.data.dtype.kind not in "iub":
            raise TypeError("only integer tensors can be used as an index")
        return int(self.item())

    def __bool__(self) -> bool:
        _no_value_under_trace(self, "bool()")
        if self.data.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self.data)

    # -- container protocol --------------------------------------------------------------------
    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    def __repr__(self) -> str:
        body = np.array2string(
            self.data, separator=", ", prefix="tensor(", precision=4, threshold=200
        )
        extra = ""
        if self.data.dtype not in (np.float32, np.int64, np.bool_):
            extra += f", dtype=chainrule.{self.data.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn=<{self.grad_fn}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    __hash__ = object.__hash__

    # -- in-place updates (the usual way to change weights, inside no_grad) ---------------------
    def _check_inplace(self, what: str) -> None:
        """Refuse an in-place change that would corrupt a graph being recorded; otherwise count
        it, so a backward that needs the old value can tell it is gone."""
        self._version += 1
        if state.grad_enabled and self.requires_grad:
            kind = ("a leaf tensor that requires grad" if self._ctx is None
                    else "a tensor in a graph")
            raise RuntimeError(
                f"in-place {what} on {kind} while gradients are being recorded would corrupt "
                "backpropagation; update weights inside `with chainrule.no_grad():`, or write "
                "x = x ... instead"
            )

    def _inplace(self, what: str, ufunc: Any, other: Any) -> Tensor:
        other_data = other.data if isinstance(other, Tensor) else other
        if state.grad_enabled and isinstance(other, Tensor) and other.requires_grad:
            if not self.requires_grad:  # no graph to corrupt: behave out of place
                return _BINARY[ufunc](self, other)
        self._check_inplace(what)
        _mutate(ufunc, self.data, other_data, out=self.data, casting="same_kind")
        return self

    def __iadd__(self, other: Any) -> Tensor:
        return self._inplace("+=", np.add, other)

    def __isub__(self, other: Any) -> Tensor:
        return self._inplace("-=", np.subtract, other)

    def __imul__(self, other: Any) -> Tensor:
        return self._inplace("*=", np.multiply, other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self._inplace("/=", np.true_divide, other)

    def __setitem__(self, index: Any, value: Any) -> None:
        self._check_inplace("item assignment")
        value = value.data if isinstance(value, Tensor) else value
        _mutate(operator.setitem, self.data, _ops.index_data(index), value)

    def add_(self, other: Any, alpha: float = 1.0) -> Tensor:
        return self._inplace("add_", np.add, other * alpha if alpha != 1.0 else other)

    def sub_(self, other: Any, alpha: float = 1.0) -> Tensor:
        return self._inplace("sub_", np.subtract, other * alpha if alpha != 1.0 else other)

    def mul_(self, other: Any) -> Tensor:
        return self._inplace("mul_", np.multiply, other)

    def div_(self, other: Any) -> Tensor:
        return self._inplace("div_", np.true_divide, other)

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def fill_(self, value: float) -> Tensor:
        self._check_inplace("fill_")
        _mutate(np.copyto, self.data, value, casting="unsafe")
        return self

    def copy_(self, src: Any) -> Tensor:
        self._check_inplace("copy_")
        _mutate(np.copyto, self.data, src.data if isinstance(src, Tensor) else src,
                casting="unsafe")
        return self

    def clamp_(self, min: float | None = None, max: float | None = None) -> Tensor:
        self._check_inplace("clamp_")
        _mutate(np.clip, self.data, min, max, out=self.data)
        return self

    # -- operators -----------------------------------------------------------------------------
    def __add__(self, o: Any) -> Tensor:
        return _ops.add(self, o)

    def __radd__(self, o: Any) -> Tensor:
        return _ops.add(o, self)

    def __sub__(self, o: Any) -> Tensor:
        return _ops.sub(self, o)

    def __rsub__(self, o: Any) -> Tensor:
        return _ops.sub(o, self)

    def __mul__(self, o: Any) -> Tensor:
        return _ops.mul(self, o)

    def __rmul__(self, o: Any) -> Tensor:
        return _ops.mul(o, self)

    def __truediv__(self, o: Any) -> Tensor:
        return _ops.div(self, o)

    def __rtruediv__(self, o: Any) -> Tensor:
        return _ops.div(o, self)

    def __pow__(self, o: Any) -> Tensor:
        return _ops.pow(self, o)

    def __rpow__(self, o: Any) -> Tensor:
        return _ops.pow(o, self)

    def __matmul__(self, o: Any) -> Tensor:
        return _ops.matmul(self, o)

    def __rmatmul__(self, o: Any) -> Tensor:
        return _ops.matmul(o, self)

    def __neg__(self) -> Tensor:
        return _ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _ops.abs(self)

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.getitem(self, index)

    def __lt__(self, o: Any) -> Tensor:
        return _ops.lt(self, o)

    def __le__(self, o: Any) -> Tensor:
        return _ops.le(self, o)

    def __gt__(self, o: Any) -> Tensor:
        return _ops.gt(self, o)

    def __ge__(self, o: Any) -> Tensor:
        return _ops.ge(self, o)

    def __eq__(self, o: Any) -> Tensor:  # type: ignore[override]
        return _ops.eq(self, o)

    def __ne__(self, o: Any) -> Tensor:  # type: ignore[override]
        return _ops.ne(self, o)

    def __invert__(self) -> Tensor:
        return _ops.logical_not(self)

    def __and__(self, o: Any) -> Tensor:
        return _ops.logical_and(self, o)

    def __or__(self, o: Any) -> Tensor:
        return _ops.logical_or(self, o)

    # -- NumPy interoperability: numpy functions on Tensors dispatch to chainrule ops ------------
    # This is what lets every VJP be written once in NumPy: called with arrays it is plain NumPy
    # (fast, no graph); called with Tensors (create_graph=True) it records a differentiable graph.
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        fn = _UFUNCS.get(ufunc) if method == "__call__" and not kwargs else None
        if fn is None:
            return NotImplemented
        return fn(*inputs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        fn = _FUNCTIONS.get(func)
        if fn is None:
            return NotImplemented
        return fn(*args, **kwargs)


class _RetainGrad:
    """Hook that stores a non-leaf tensor's gradient in its ``.grad`` (see retain_grad)."""

    def __init__(self, t: Tensor) -> None:
        self.t = t

    def __call__(self, g: Tensor) -> None:
        self.t.grad = g if self.t.grad is None else self.t.grad + g


def _mutate(fn: Callable, *args: Any, **kw: Any) -> None:
    """Run an in-place update ``fn(*args, **kw)`` of a tensor's array (told to a tracer, if any,
    so ``chainrule.compile`` replays it)."""
    tracer = _core.TRACER
    if tracer is not None:
        tracer.record_effect(fn, args, kw)
    fn(*args, **kw)


def _no_value_under_trace(t: Tensor, what: str) -> None:
    """Refuse to read a tensor's value while ``chainrule.compile`` traces a step: Python code
    that branches on it would be frozen into the tape."""
    tracer = _core.TRACER
    if tracer is not None:
        tracer.value_read(t, what)


def as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """Convert user data to an ndarray; floats default to float32. Rejects non-numeric data."""
    if isinstance(data, Tensor):
        data = data.data
    try:
        arr = np.array(data, dtype=dtype)
    except (ValueError, TypeError) as e:
        raise TypeError(f"cannot make a tensor from {type(data).__name__}: {e}") from None
    if arr.dtype.kind not in "biufc":
        raise TypeError(
            f"cannot make a tensor from non-numeric data (numpy dtype {arr.dtype}); "
            "convert strings/objects to numbers first"
        )
    if dtype is None and arr.dtype.kind == "f" and arr.dtype != _DEFAULT_FLOAT:
        arr = arr.astype(_DEFAULT_FLOAT)
    return arr


def _traced_array(data: Any, dtype: Any) -> np.ndarray:
    """``as_array`` while ``chainrule.compile`` traces a step: a copy of a tensor is an operation
    (a compiled step copies each call's tensor, not the first one's); tensors inside a list
    would be read as values, which is refused."""
    if isinstance(data, Tensor):  # the dtype (and errors) as_array would give
        target = as_array(np.empty(0, data.dtype), dtype).dtype
        return _ops.cast(data, dtype=target).data
    if isinstance(data, (list, tuple)):
        for t in _tensors_in(data):
            _no_value_under_trace(t, "making a tensor from a list of tensors")
    return as_array(data, dtype)


def _tensors_in(data: list | tuple) -> Iterator[Tensor]:
    """Every Tensor inside nested lists and tuples."""
    for v in data:
        if isinstance(v, Tensor):
            yield v
        elif isinstance(v, (list, tuple)):
            yield from _tensors_in(v)


# Dispatch tables filled by chainrule.ops (which imports this module first).
_UFUNCS: dict = {}
_FUNCTIONS: dict = {}
_BINARY: dict = {}

from . import ops as _ops  # noqa: E402  (ops need Tensor defined above)
from .ops import _core  # noqa: E402

