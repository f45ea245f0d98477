"""Loss functions (PyTorch names and signatures) and their Module forms.

Classification losses work from logits through fused primitives (log-sum-exp inside), so they
are finite for logits of any magnitude; regression losses are composed from ordinary ops.
``reduction`` is 'mean' (default), 'sum' or 'none'.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .. import ops
from ..ops import _core
from ..ops import nn as _fused
from ..tensor import Tensor
from .module import Module

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return ops.mean(loss)
    if reduction == "sum":
        return ops.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _array(x: Any, dtype: Any = None) -> np.ndarray | None:
    """The array inside ``x`` (weights are cast to the input's dtype so float32 stays float32)."""
    return None if x is None else np.asarray(x.data if isinstance(x, Tensor) else x, dtype)


def _target(target: Any, input: Tensor) -> Any:
    """A constant target in the input's dtype (float64 labels must not turn a float32 loss into
    float64); a target that requires grad is left as it is. The conversion is an operation (a
    compiled step converts each new batch's target, not the first one's forever)."""
    if isinstance(target, Tensor) and target.requires_grad:
        return target
    data = target.data if isinstance(target, Tensor) else np.asarray(target)
    if data.dtype == input.dtype:
        return target if isinstance(target, Tensor) else Tensor._make(data)
    return ops.cast(target, input.dtype)


def _warn_broadcast(name: str, input: Any, target: Any) -> None:
    if np.shape(target) != np.shape(input):
        warnings.warn(
            f"{name}: target shape {tuple(np.shape(target))} differs from input shape "
            f"{tuple(np.shape(input))}; they will broadcast, which is likely not intended",
            stacklevel=3,
        )


# -- regression ------------------------------------------------------------------------------
def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error: mean((input - target)^2)."""
    _warn_broadcast("mse_loss", input, target)
    target = _target(target, input)
    return _reduce(ops.square(input - target), reduction)


def sum_squared_error(input: Tensor, target: Any) -> Tensor:
    """The classic E = 1/2 * sum((y - d)^2) of Rumelhart, Hinton & Williams (1986), whose
    gradient with respect to the output y is simply y - d."""
    _warn_broadcast("sum_squared_error", input, target)
    target = _target(target, input)
    return ops.sum(ops.square(input - target)) * 0.5


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean absolute error: mean(|input - target|)."""
    _warn_broadcast("l1_loss", input, target)
    target = _target(target, input)
    return _reduce(ops.abs(input - target), reduction)


def huber_loss(input: Tensor, target: Any, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta * (|d| - delta/2): quadratic near zero, linear (robust
    to outliers) beyond."""
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    _warn_broadcast("huber_loss", input, target)
    target = _target(target, input)
    d = input - target
    a = ops.abs(d)
    quadratic = ops.lt(a, delta)  # an operation: a compiled step picks the branch per batch
    loss = ops.where(quadratic, 0.5 * ops.square(d), delta * (a - 0.5 * delta))
    return _reduce(loss, reduction)


def gaussian_nll_loss(input: Tensor, target: Any, var: Any, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of ``target`` under N(input, var): 0.5 (log var + (input -
    target)^2 / var) [+ 0.5 log 2pi if full]. ``var`` is clamped at ``eps`` without blocking
    its gradient (as PyTorch); it may omit the last dimension or have size 1 there."""
    var = _target(var, input)
    vshape, ishape = tuple(np.shape(var)), tuple(np.shape(input))
    if vshape != ishape:
        if ishape[:-1] == vshape:
            var = ops.unsqueeze(var, -1)
        elif not (ishape[:-1] == vshape[:-1] and vshape[-1:] == (1,)):
            raise ValueError(
                f"gaussian_nll_loss: var of shape {vshape} does not fit input of shape {ishape}; "
                "give var the input's shape, or that shape without (or with 1 in) the last dim"
            )
    if np.any(_array(var) < 0):
        raise ValueError(_fused.NEGATIVE_VAR)
    var = _fused.var_floor(var, eps=eps, check=_core.TRACER is not None)
    loss = 0.5 * (ops.log(var) + ops.square(input - _target(target, input)) / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


# -- binary classification -------------------------------------------------------------------
def _check_same_shape(name: str, input: Any, target: Any) -> None:
    if np.shape(target) != np.shape(input):
        raise ValueError(
            f"{name}: target shape {tuple(np.shape(target))} must equal input shape "
            f"{tuple(np.shape(input))}"
        )


def binary_cross_entropy(input: Tensor, target: Any, weight: Any = None,
                         reduction: str = "mean") -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) for probabilities p in [0, 1]; each log is floored at -100
    (as PyTorch) so p = 0 or 1 gives a finite loss. Prefer binary_cross_entropy_with_logits."""
    _check_same_shape("binary_cross_entropy", input, target)
    target = _target(target, input)
    p = _array(input)
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(
            "binary_cross_entropy: input must be probabilities in [0, 1]; apply sigmoid first, or "
            "use binary_cross_entropy_with_logits on the raw scores"
        )
    loss = _fused.binary_cross_entropy_(input, target, weight=_array(weight, input.dtype))
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Any = None,
                                     reduction: str = "mean", pos_weight: Any = None) -> Tensor:
    """Binary cross-entropy of sigmoid(input), computed from the logits without overflow;
    ``pos_weight`` multiplies the positive term (one per class, broadcast on the last dim)."""
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    target = _target(target, input)
    loss = _fused.binary_cross_entropy_with_logits_(
        input, target, weight=_array(weight, input.dtype),
        pos_weight=_array(pos_weight, input.dtype),
    )
    return _reduce(loss, reduction)


# -- multi-class classification --------------------------------------------------------------
def _check_labels(name: str, input: Tensor, target: np.ndarray, ignore_index: int) -> None:
    shape = tuple(input.shape)
    expected = shape[:1] + shape[2:]
    if target.dtype.kind not in "iu":
        raise TypeError(
            f"{name}: class-label targets must be integers (got {target.dtype}); "
            f"probability targets must have the input's shape {shape}"
        )
    if tuple(target.shape) != expected:
        raise ValueError(
            f"{name}: input of shape {shape} (classes on dim 1) needs integer targets of shape "
            f"{expected} or probabilities of shape {shape}, got targets of shape {target.shape}"
        )


def _unbatched(input: Tensor, target: Any, probs: bool) -> bool:
    return input.ndim == 1 and np.ndim(target) == (1 if probs else 0)


def nll_loss(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood from log-probabilities ``input`` (N, C) or (N, C, d1, ...) and
    integer labels (N,) or (N, d1, ...); with ``weight`` the mean divides by the summed weights."""
    _check_reduction(reduction)
    t = _array(target)
    if _unbatched(input, t, False):
        out = nll_loss(ops.unsqueeze(input, 0), t[None], weight, ignore_index, reduction)
        return out[0] if reduction == "none" else out
    _check_labels("nll_loss", input, t, ignore_index)
    w = _array(weight, input.dtype)
    return _fused.nll_loss_(input, target=t, weight=w, ignore_index=ignore_index,
                            reduction=reduction)


def cross_entropy(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy from logits ``input`` (N, C) or (N, C, d1, ...) against integer
    labels (N,) / (N, d1, ...) or class probabilities shaped like ``input``.

    ``label_smoothing`` mixes the targets with the uniform distribution; ``weight`` rescales
    each class (the mean then divides by the summed weights of the labels, as PyTorch).
    """
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    probs = np.shape(target) == tuple(input.shape)
    t = target if probs else _array(target)
    if _unbatched(input, t, probs):
        out = cross_entropy(ops.unsqueeze(input, 0), t[None], weight, ignore_index, reduction,
                            label_smoothing)
        return out[0] if reduction == "none" else out
    w = _array(weight, input.dtype)
    if probs:
        return _cross_entropy_probs(input, target, w, reduction, label_smoothing)
    _check_labels("cross_entropy", input, t, ignore_index)
    return _fused.cross_entropy_(input, target=t, weight=w, ignore_index=ignore_index,
                                 label_smoothing=float(label_smoothing), reduction=reduction)


def _cross_entropy_probs(input: Tensor, target: Any, weight: np.ndarray | None, reduction: str,
                         label_smoothing: float) -> Tensor:
    """-sum_c w_c t_c log softmax(x)_c; the mean divides by the number of positions."""
    if _array(target).dtype.kind != "f":
        raise TypeError("cross_entropy: probability targets must be floating point")
    target = _target(target, input)
    n_classes = input.shape[1]
    if label_smoothing:
        target = target * (1.0 - label_smoothing) + label_smoothing / n_classes
    logp = ops.log_softmax(input, 1)
    if weight is not None:
        logp = logp * np.reshape(weight, (1, -1) + (1,) * (input.ndim - 2))
    loss = -ops.sum(logp * target, 1)
    if reduction == "mean":
        return ops.sum(loss) * (n_classes / max(input.data.size, 1))
    return _reduce(loss, reduction)


# -- Module forms ----------------------------------------------------------------------------
class _Loss(Module):
    """Base of the loss modules: holds ``reduction``."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        _check_reduction(reduction)
        self.reduction = reduction


class _WeightedLoss(_Loss):
    """A loss with an optional per-class ``weight`` (kept as a buffer, as in PyTorch)."""

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", None if weight is None else Tensor(weight))


class MSELoss(_Loss):
    """Mean squared error (see ``mse_loss``)."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """Mean absolute error (see ``l1_loss``)."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return l1_loss(input, target, self.reduction)


class HuberLoss(_Loss):
    """Quadratic for small errors, linear for large ones (see ``huber_loss``)."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return huber_loss(input, target, self.reduction, self.delta)


class GaussianNLLLoss(_Loss):
    """Gaussian negative log-likelihood with a predicted variance (see ``gaussian_nll_loss``)."""

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.full, self.eps = full, eps

    def forward(self, input: Tensor, target: Any, var: Any) -> Tensor:
        return gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy on probabilities (see ``binary_cross_entropy``)."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits, stable for any magnitude (see
    ``binary_cross_entropy_with_logits``)."""

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", None if weight is None else Tensor(weight))
        self.register_buffer("pos_weight", None if pos_weight is None else Tensor(pos_weight))

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return binary_cross_entropy_with_logits(input, target, self.weight, self.reduction,
                                                self.pos_weight)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood from log-probabilities (see ``nll_loss``)."""

    def __init__(self, weight: Any = None, ignore_index: int = -100,
                 reduction: str = "mean") -> None:
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy from logits (see ``cross_entropy``)."""

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                             self.label_smoothing)
