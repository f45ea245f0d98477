"""Optimizer: the base of every optimiser, holding parameter groups and per-parameter state.

Mirrors ``torch.optim.Optimizer`` (groups with per-group options, ``state``, ``zero_grad``,
``state_dict`` with parameters referred to by index). Subclasses update ``p.data`` in place with
NumPy ufuncs (``out=``), using the reusable work arrays from ``_work``, so a step allocates
nothing and records no graph.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from .._mode import enable_grad
from ..tensor import Tensor


class _Required:
    """Marker for an option without a default that every parameter group must give."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()
_SET_ERROR = (
    "optimizer parameters must be an ordered collection (the order of a set changes between "
    "runs); pass a list instead"
)


@functools.cache
def blas_axpy(dtype: np.dtype) -> Callable | None:
    """SciPy's BLAS ``axpy`` (y += a x, in place) for float32/float64, if SciPy is installed."""
    try:
        from scipy.linalg import blas
    except ImportError:
        return None
    return {np.dtype(np.float32): blas.saxpy, np.dtype(np.float64): blas.daxpy}.get(np.dtype(dtype))


def add_scaled_(y: np.ndarray, alpha: float, x: np.ndarray,
                scratch: np.ndarray | None = None) -> None:
    """y += alpha * x in place: one BLAS pass with no temporary where possible (the plain SGD
    update, so training needs no scratch memory the size of the model); otherwise two NumPy
    passes through ``scratch`` (shaped like ``x``, may be ``x`` itself) or a temporary."""
    axpy = blas_axpy(y.dtype) if x.dtype == y.dtype else None
    if axpy is not None and y.flags.c_contiguous and x.flags.c_contiguous:
        axpy(x.reshape(-1), y.reshape(-1), a=alpha)
    else:
        y += np.multiply(x, alpha, out=scratch)


def check_nonneg(group: dict[str, Any], *names: str) -> None:
    """Raise ValueError naming the first of ``names`` whose value in ``group`` is negative."""
    for name in names:
        if group[name] < 0:
            raise ValueError(f"invalid {name}: {group[name]} (it must be >= 0)")


class Optimizer:
    """Base class of optimisers: ``params`` is an iterable of tensors, or of dicts (parameter
    groups, each with its own options overriding ``defaults``)."""

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if isinstance(params, Tensor):
            raise TypeError(
                "params must be an iterable of tensors or of dicts (parameter groups), "
                "got a single Tensor; wrap it in a list"
            )
        if isinstance(params, set):
            raise TypeError(_SET_ERROR)
        self.defaults = defaults
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self._pool: dict[tuple, tuple[np.ndarray, ...]] = {}
        groups = list(params)
        if not groups:
            raise ValueError(
                "optimizer got an empty parameter list; pass model.parameters() of a model "
                "that has parameters"
            )
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # -- groups -------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (e.g. to unfreeze layers later)."""
        if not isinstance(param_group, dict):
            raise TypeError(
                f"a parameter group must be a dict with a 'params' key, got "
                f"{type(param_group).__name__}; don't mix tensors and dicts in params"
            )
        if "params" not in param_group:
            raise ValueError("a parameter group must have a 'params' key listing its tensors")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(_SET_ERROR)
        params = list(params)
        if params and all(isinstance(p, tuple) for p in params):
            group["param_names"] = [name for name, _ in params]
            params = [p for _, p in params]
        for p in params:
            self._check_param(p)
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group has no value for the required option {name!r}")
            group.setdefault(name, default)
        self._validate(group)

        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise ValueError(
                "a parameter appears twice in the same parameter group; list each tensor once"
            )
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if seen.intersection(ids):
            raise ValueError(
                "some parameters appear in more than one parameter group; give each tensor "
                "to one group only"
            )
        self.param_groups.append(group)

    @staticmethod
    def _check_param(p: Any) -> None:
        if not isinstance(p, Tensor):
            raise TypeError(f"optimizer can only optimize Tensors, but one of the params is a "
                            f"{type(p).__name__}")
        if not p.is_leaf:
            raise ValueError(
                "can't optimize a non-leaf tensor (one computed from others); optimize the "
                "leaf it came from, or .detach().requires_grad_() it"
            )
        if p.data.dtype.kind != "f":
            raise TypeError(
                f"optimizer can only optimize floating-point tensors, but a parameter has dtype "
                f"{p.data.dtype}; convert it with .float() or .double()"
            )

    def _validate(self, group: dict[str, Any]) -> None:
        """Check one group's options (subclasses raise ValueError on bad values)."""
        check_nonneg(group, "lr")

    # -- gradients and steps ------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (set ``.grad`` to None, or fill it with zeros)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p._grad = None  # (a compiled step replays zero_grad whole)
                    else:
                        p.grad.data.fill(0)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()`` if one is given."""
        raise NotImplementedError(f"{type(self).__name__} must implement step()")

    @staticmethod
    def _call_closure(closure: Callable[[], Any] | None) -> Any:
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def _work(self, d: np.ndarray, n: int = 2) -> tuple[np.ndarray, ...]:
        """``n`` scratch arrays shaped and typed like ``d``, reused across steps and shared by
        parameters of the same shape (valid only until the next parameter's update)."""
        key = (d.shape, d.dtype)
        w = self._pool.get(key)
        if w is None or len(w) < n:
            w = self._pool[key] = tuple(np.empty(d.shape, d.dtype) for _ in range(n))
        return w

    def _gradients(self, group: dict[str, Any], weight_decay: float
                   ) -> Iterator[tuple[Tensor, np.ndarray, np.ndarray, np.ndarray]]:
        """``(p, g, d, b)`` for each parameter of ``group`` that has a gradient: ``g`` is its
        gradient, negated if the group says ``maximize`` and plus ``weight_decay * p`` (L2) when
        that is nonzero; ``d`` is ``p.data``; ``b`` is a scratch array like ``d`` that the caller
        may overwrite (``g`` may live in the other one). Each ``p`` counts as changed in place."""
        maximize = group["maximize"]
        for p in group["params"]:
            if p.grad is None:
                continue
            p._version += 1  # updated in place: a graph that used the old value must not backprop
            g, d = p.grad.data, p.data
            a, b = self._work(d)
            if maximize:
                g = np.negative(g, out=a)
            if weight_decay != 0:
                g = np.add(g, np.multiply(d, weight_decay, out=b), out=a)
            yield p, g, d, b

    # -- saving and restoring -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Options and state, parameters replaced by their index (in group order), arrays
        copied: ``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``."""
        groups, state, start = [], {}, 0
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = list(range(start, start + len(group["params"])))
            for i, p in enumerate(group["params"], start):
                st = self.state.get(p)
                if st:
                    state[i] = {k: _copy(v) for k, v in st.items()}
            start += len(group["params"])
            groups.append(packed)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore options and state saved by ``state_dict()`` (for an optimizer built over the
        same parameters in the same order); arrays are copied and cast to each parameter's
        dtype."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"the saved optimizer state has {len(saved_groups)} parameter groups but this "
                f"optimizer has {len(self.param_groups)}; build it with the same groups"
            )
        by_index: dict[int, Tensor] = {}
        for k, (group, saved) in enumerate(zip(self.param_groups, saved_groups, strict=True)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    f"parameter group {k} has {len(group['params'])} parameters but the saved "
                    f"one has {len(saved['params'])}; build the optimizer over the same model"
                )
            by_index.update(zip((int(i) for i in saved["params"]), group["params"], strict=True))
        new_state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for i, st in state_dict["state"].items():
            p = by_index.get(int(i))
            if p is None:
                raise ValueError(
                    f"the saved optimizer state refers to parameter {i}, which no saved "
                    "parameter group lists"
                )
            new_state[p] = {name: _cast(name, v, p) for name, v in st.items()}
        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups, strict=True):
            ng = {k: v for k, v in saved.items() if k != "params"}
            ng["params"] = group["params"]
            if "param_names" in group:
                ng["param_names"] = group["param_names"]
            new_groups.append(ng)
        self.state, self.param_groups = new_state, new_groups

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key not in ("params", "param_names"):
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _copy(v: Any) -> Any:
    return v.copy() if isinstance(v, np.ndarray) else v


def _cast(name: str, v: Any, p: Tensor) -> Any:
    """A saved state value made ready for parameter ``p``: step counts as int, arrays as a
    fresh array of p's dtype and shape."""
    if name == "step":
        return int(np.asarray(v))
    if isinstance(v, Tensor):
        v = v.data
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    arr = np.array(np.asarray(v), dtype=p.data.dtype)
    if arr.shape != p.data.shape:
        raise ValueError(
            f"saved optimizer state {name!r} has shape {arr.shape} but its parameter has shape "
            f"{p.data.shape}; load the state of an optimizer over the same model"
        )
    return arr
