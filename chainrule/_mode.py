"""Global autograd switches: whether operations are recorded, and anomaly detection.

Kept in a module of their own, below everything else, so the tensor, the ops and the engine
can all read them without importing each other.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _State:
    """Mutable switches read on every operation (plain attributes: the fastest lookup)."""

    __slots__ = ("grad_enabled", "anomaly")

    def __init__(self) -> None:
        self.grad_enabled = True
        self.anomaly = False


state = _State()


class _Switch:
    """Base of a context manager that is also a decorator and sets one switch."""

    attr = "grad_enabled"

    def __init__(self, mode: bool) -> None:
        self.mode = mode
        self.prev: list[bool] = []

    def __enter__(self) -> None:
        self.prev.append(getattr(state, self.attr))
        setattr(state, self.attr, self.mode)

    def __exit__(self, *exc: object) -> None:
        setattr(state, self.attr, self.prev.pop())

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with type(self)(*self._args()):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def _args(self) -> tuple:
        return (self.mode,)


class set_grad_enabled(_Switch):
    """Turn gradient recording on or off (context manager or decorator), as in PyTorch."""


class no_grad(_Switch):
    """Do not record operations: for inference and for updating weights in place."""

    def __init__(self) -> None:
        super().__init__(False)

    def _args(self) -> tuple:
        return ()


class enable_grad(_Switch):
    """Record operations again inside a `no_grad` block."""

    def __init__(self) -> None:
        super().__init__(True)

    def _args(self) -> tuple:
        return ()


class detect_anomaly(_Switch):
    """Raise as soon as an operation produces NaN or Inf, forward or backward, naming the op and
    the line of user code that created it. Slower: use it to find a bug, not to train."""

    attr = "anomaly"

    def __init__(self, mode: bool = True) -> None:
        super().__init__(mode)


def is_grad_enabled() -> bool:
    """True when operations on tensors that require grad are being recorded."""
    return state.grad_enabled
