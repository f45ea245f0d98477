"""Gradient clipping and flat-vector views of parameters, as in ``torch.nn.utils``.

Clipping works in place on each ``p.grad.data`` between ``backward()`` and ``optimizer.step()``;
it is the standard remedy for exploding gradients (deep or recurrent networks, high learning
rates), where one huge gradient would otherwise throw the weights far off.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..ops import cat, nondiff
from ..tensor import Tensor, _mutate

__all__ = [
    "clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_",
    "parameters_to_vector", "vector_to_parameters",
]


def _as_list(tensors: Tensor | Iterable[Tensor]) -> list[Tensor]:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def _norm(x: np.ndarray, norm_type: float) -> float:
    x = x.ravel()
    if x.size == 0:
        return 0.0
    if norm_type == 2.0:
        return math.sqrt(np.dot(x, x))
    return float(np.linalg.norm(x, norm_type))


def _total_norm_fwd(*arrays: np.ndarray, norm_type: float) -> np.ndarray:
    total = _norm(np.array([_norm(a, norm_type) for a in arrays]), norm_type)
    return np.array(total, dtype=np.result_type(*arrays))


def _clip_coef_fwd(total: np.ndarray, max_norm: float) -> np.ndarray:
    return np.minimum(max_norm / (total + 1e-6), 1.0).astype(total.dtype)


# operations on the gradients' values, so a compiled step computes them again on every replay
_total_norm = nondiff("total_norm", _total_norm_fwd)
_clip_coef = nondiff("clip_coef", _clip_coef_fwd)


def get_total_norm(
    tensors: Tensor | Iterable[Tensor],
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` taken together (as if concatenated into one
    vector; ``float('inf')`` gives the largest absolute value)."""
    tensors = _as_list(tensors)
    if not tensors:
        return Tensor._make(np.array(0.0, np.float32))
    total = _total_norm(*tensors, norm_type=float(norm_type))
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise RuntimeError(
            f"the total norm of order {norm_type} of the gradients is non-finite "
            f"({float(total)}), so they cannot be clipped; find the NaN/Inf "
            "(chainrule.detect_anomaly()) or pass error_if_nonfinite=False"
        )
    return total


def clip_grads_with_norm_(
    parameters: Tensor | Iterable[Tensor], max_norm: float, total_norm: Tensor | float
) -> None:
    """Scale every gradient in place by ``min(1, max_norm / (total_norm + 1e-6))`` (always, as
    PyTorch: no branch on the norm's value, so a compiled step replays it)."""
    max_norm = float(max_norm)
    if max_norm < 0:
        raise ValueError(f"max_norm must be >= 0, got {max_norm}")
    total = total_norm if isinstance(total_norm, Tensor) else Tensor._make(
        np.array(float(total_norm)))
    coef = _clip_coef(total, max_norm=max_norm)
    for p in _as_list(parameters):
        if p.grad is not None:
            p.grad.mul_(coef)


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Rescale the gradients in place so that their joint norm is at most ``max_norm`` — the
    standard remedy for exploding gradients. Returns the norm before clipping (a 0-d Tensor)."""
    parameters = _as_list(parameters)
    total = get_total_norm([p.grad for p in parameters if p.grad is not None], norm_type,
                           error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element in place to ``[-clip_value, clip_value]`` (a blunter remedy
    for exploding gradients than ``clip_grad_norm_``: it changes the gradient's direction)."""
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value}")
    for p in _as_list(parameters):  # a tensor method, so chainrule.compile replays it
        if p.grad is not None:
            p.grad.clamp_(-clip_value, clip_value)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one 1-d tensor (differentiable, as in
    PyTorch; the result is a copy)."""
    flat = [p.reshape(-1) for p in _as_list(parameters)]
    if not flat:
        raise ValueError("parameters_to_vector got no parameters")
    return cat(flat)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-d ``vec`` into the parameters, in place (PyTorch instead
    makes the parameters views of ``vec``; copying keeps each parameter's own array and dtype)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters expects a Tensor, got {type(vec).__name__}")
    params = _as_list(parameters)
    need = sum(p.data.size for p in params)
    if vec.data.size != need:
        raise ValueError(
            f"vector_to_parameters: the vector has {vec.data.size} elements but the parameters "
            f"have {need} in total"
        )
    start = 0
    for p in params:  # told to a compile tracer: a compiled step copies each call's vec
        _mutate(_copy_slice, p.data, vec.data, start)
        start += p.data.size


def _copy_slice(dst: np.ndarray, src: np.ndarray, start: int) -> None:
    """Write the ``dst.size`` values of the flattened ``src`` from ``start`` into ``dst``."""
    dst[...] = src.reshape(-1)[start:start + dst.size].reshape(dst.shape)
