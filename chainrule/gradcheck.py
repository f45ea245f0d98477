"""Finite-difference gradient checking: the test every backpropagation must pass.

Central differences in float64 compared with the analytic gradient from backward; on a
mismatch the error names the input, the element, and both values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._mode import enable_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """The analytic and numerical gradients disagree."""


def _scalar(out: Any) -> Tensor:
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out


def _reduce(out: Tensor, weights: np.ndarray) -> Tensor:
    """Turn any output into a scalar with fixed random weights (checks every output element)."""
    return (out * Tensor._make(weights)).sum()


def numerical_grad(f: Callable[[], float], x: np.ndarray, eps: float) -> np.ndarray:
    """d f / d x by central differences, perturbing ``x`` in place one element at a time."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        hi = f()
        flat[i] = old - eps
        lo = f()
        flat[i] = old
        gflat[i] = (hi - lo) / (2 * eps)
    return g


def gradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Any] | Tensor,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check the gradients of ``fn(*inputs)`` against central finite differences in float64.

    Inputs that are floating tensors requiring grad (or all floating inputs if none does) are
    checked. A non-scalar output is reduced with fixed random weights. Returns True or raises
    GradcheckError naming the input, the element index, the analytic and the numeric value.
    """
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    originals = list(inputs)
    floats = [i for i, a in enumerate(originals) if isinstance(a, Tensor) and a.dtype.kind == "f"]
    checked = [i for i in floats if originals[i].requires_grad] or floats
    if not checked:
        raise ValueError("gradcheck: no floating-point tensor inputs to check")
    args: list[Any] = []
    for i, a in enumerate(originals):
        if i in floats:
            t = Tensor(a.data, dtype=np.float64)
            t.requires_grad = i in checked
            args.append(t)
        else:
            args.append(a)
    with enable_grad():
        out = _scalar(fn(*args))
    weights = np.random.default_rng(seed).uniform(0.5, 1.5, out.shape)
    with enable_grad():
        loss = _reduce(out, weights)
        if loss.requires_grad:
            loss.backward()

    def value() -> float:
        # grad mode stays on: fn may differentiate internally (autograd.grad, create_graph)
        with enable_grad():
            return float(_reduce(_scalar(fn(*args)), weights).data)

    for i in checked:
        x = args[i]
        analytic = np.zeros_like(x.data) if x.grad is None else x.grad.data
        numeric = numerical_grad(value, x.data, eps)
        bad = ~np.isclose(analytic, numeric, atol=atol, rtol=rtol)
        if bad.any():
            idx = tuple(int(k) for k in np.argwhere(bad)[0])
            raise GradcheckError(
                f"gradcheck: input {i}, element {idx}: analytic {analytic[idx]:.10g} vs numeric "
                f"{numeric[idx]:.10g} (atol={atol}, rtol={rtol})"
            )
    return True
