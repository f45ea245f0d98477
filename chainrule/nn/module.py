"""Module and Parameter: the containers users build networks from, with PyTorch's API.

Parameters and submodules are ordinary attributes (fast to read in ``forward``); assigning one
also records it in an ordered registry, which is what ``parameters()``, ``state_dict()`` and the
``repr`` tree walk.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Self

import numpy as np

from ..ops import _core
from ..tensor import Tensor, _mutate, as_array


class Parameter(Tensor):
    """A tensor that is a learnable weight of a Module (requires grad by default)."""

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            arr = np.zeros(0, np.float32)
        elif isinstance(data, Tensor):
            arr = data.data
        elif isinstance(data, np.ndarray) and data.dtype.kind == "f":
            arr = data  # an array's float dtype is kept (float64 for gradient checks)
        else:
            arr = as_array(data)
        super().__init__(arr, requires_grad=False)
        self.data = arr
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and network: subclass it, set layers and Parameters as
    attributes in ``__init__``, and write ``forward``."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration -------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(
                f"cannot assign {name!r} before Module.__init__(); call super().__init__() first"
            )
        for registry in (self._parameters, self._modules, self._buffers):
            if name in registry and not (registry is self._buffers and isinstance(value, Tensor)):
                del registry[name]
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self._buffers or (isinstance(value, Tensor) and name in self._buffers):
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter under ``name`` (None registers nothing but sets the attribute)."""
        setattr(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None) -> None:
        """Add a tensor that is state but not learnable (e.g. BatchNorm's running mean)."""
        self._buffers[name] = tensor
        object.__setattr__(self, name, tensor)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a submodule under ``name``."""
        setattr(self, name, module)

    # -- calling ------------------------------------------------------------------------------
    # ``fuse_next(nxt, x)``: this module and the one after it applied to x as one primitive, or
    # None where that is not exactly equivalent; nn.Sequential asks (Linear overrides it).
    fuse_next: Callable[[Module, Any], Any] | None = None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _core.TRACER is not None:  # chainrule.compile guards the tape on this module's mode
            _core.TRACER.module_called(self)
        out = self.forward(*args, **kwargs)
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                r = hook(self, args, out)
                if r is not None:
                    out = r
        return out

    def register_forward_hook(self, hook: Callable[[Module, tuple, Any], Any]) -> _Handle:
        """Call ``hook(module, inputs, output)`` after every forward; a returned value replaces
        the output. Returns a handle whose ``remove()`` unregisters it."""
        key = object()
        self._forward_hooks[key] = hook
        return _Handle(self._forward_hooks, key)

    # -- traversal ----------------------------------------------------------------------------
    def named_modules(
        self, memo: set | None = None, prefix: str = ""
    ) -> Iterator[tuple[str, Module]]:
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_parameters(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix=prefix) if recurse else iter([(prefix, self)])
        for mp, m in mods:
            for name, p in m._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mp}.{name}" if mp else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for mp, m in self.named_modules(prefix=prefix):
            for name, b in m._buffers.items():
                if b is not None:
                    yield (f"{mp}.{name}" if mp else name), b

    def buffers(self) -> Iterator[Tensor]:
        for _, b in self.named_buffers():
            yield b

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every submodule and then on self (e.g. to initialise weights)."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- modes and gradients ------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode: dropout drops, batch norm uses batch statistics."""
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode (same as ``train(False)``)."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget accumulated gradients (set to None, or to zeros)."""
        for p in self.parameters():
            if set_to_none:
                p._grad = None  # (a compiled step replays zero_grad whole)
            elif p.grad is not None:
                p.grad.data[...] = 0

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def to(self, dtype: Any) -> Module:
        """Convert every floating parameter and buffer to ``dtype`` in place."""
        dt = np.dtype(dtype)
        for t in list(self.parameters()) + list(self.buffers()):
            if t.data.dtype.kind == "f":
                t.data = t.data.astype(dt)
                if t.grad is not None:
                    t.grad = Tensor._make(t.grad.data.astype(dt))
        return self

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, Tensor]:
        """Every parameter and buffer by dotted name (tensors share memory with the model)."""
        out: OrderedDict[str, Tensor] = OrderedDict()
        for name, p in self.named_parameters():
            out[name] = p.detach()
        for name, b in self.named_buffers():
            out[name] = b.detach()
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> Any:
        """Copy values into this model's parameters and buffers, in place. With ``strict``,
        missing or unexpected names are an error; shapes must always match."""
        from ..io import check_state_dict_matches

        own = self.state_dict()
        result = check_state_dict_matches(
            {k: tuple(v.shape) for k, v in own.items()}, state_dict, strict=strict
        )
        for name, value in state_dict.items():
            if name in own:
                arr = value.data if isinstance(value, Tensor) else np.asarray(value)
                _mutate(operator.setitem, own[name].data, Ellipsis, arr)  # replayed if compiled
        return result

    # -- display ------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """One line of this module's own settings, shown in the repr tree."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}({extra}" if extra else f"{type(self).__name__}("
        return head + "\n" + "\n".join(lines) + "\n)"


class _Handle:
    """Returned by hook registration; ``remove()`` unregisters the hook."""

    def __init__(self, registry: dict, key: object) -> None:
        self.registry, self.key = registry, key

    def remove(self) -> None:
        self.registry.pop(self.key, None)


class _ModuleSequence(Module):
    """Shared code of Sequential and ModuleList: submodules named "0", "1", ... in order."""

    def append(self, module: Module) -> Self:
        """Add ``module`` at the end (named by its position); returns self."""
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class Sequential(_ModuleSequence):
    """Modules applied one after another; index, slice, iterate and append like a list."""

    def __init__(self, *modules: Module | Mapping[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x: Any) -> Any:
        mods = tuple(self._modules.values())
        i, n = 0, len(mods)
        while i < n:
            m = mods[i]
            if i + 1 < n and m.fuse_next is not None:  # e.g. Linear + ReLU as one primitive
                y = m.fuse_next(mods[i + 1], x)
                if y is not None:
                    x, i = y, i + 2
                    continue
            x = m(x)
            i += 1
        return x

    def __getitem__(self, idx: int | slice) -> Any:
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(*mods[idx])
        return mods[idx]


class ModuleList(_ModuleSequence):
    """A list of submodules whose parameters are registered (for loops in forward)."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for m in modules:
            self.append(m)

    def __getitem__(self, idx: int) -> Module:
        return list(self._modules.values())[idx]


class ModuleDict(Module):
    """A dict of submodules whose parameters are registered."""

    def __init__(self, modules: Mapping[str, Module] | None = None) -> None:
        super().__init__()
        for k, m in (modules or {}).items():
            self.add_module(k, m)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def keys(self) -> Iterable[str]:
        return self._modules.keys()

    def items(self) -> Iterable[tuple[str, Module]]:
        return self._modules.items()

    def values(self) -> Iterable[Module]:
        return self._modules.values()
