"""Fused neural-network primitives: where composing smaller ops would be slow or unstable.

Cross-entropy and NLL from class labels, binary cross-entropy (on probabilities and on logits),
batch/layer normalisation, GELU and softsign. Each is one graph node; its VJPs are written in
NumPy so they run fast on arrays and stay differentiable on Tensors (``create_graph=True``).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from ._core import defop, nondiff, poly
from .elementwise import erf, sigmoid_poly, softplus_
from .reduce import softmax_

_softmax = poly(softmax_)
_erf = poly(erf)
_softplus = poly(softplus_)
_SQRT_HALF = 1.0 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# -- classification from integer labels --------------------------------------------------------
# Array-only helpers (targets and class weights are constants); the common case, with no class
# weights and nothing ignored, skips every weight array.
def _labels(target: np.ndarray, weight: np.ndarray | None, ignore_index: int,
            dtype: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, Any]:
    """Safe labels (ignored set to 0), per-position weights (None: all 1), the not-ignored mask,
    and the denominator of the mean (the summed weights of the counted positions)."""
    mask = target != ignore_index
    n_valid = np.count_nonzero(mask)
    full = n_valid == mask.size
    labels = target if full else np.where(mask, target, 0)
    if weight is None:
        return labels, (None if full else mask.astype(dtype)), mask, n_valid
    w_t = weight[labels].astype(dtype, copy=False)
    if not full:
        w_t = w_t * mask
    return labels, w_t, mask, w_t.sum()


def _pick(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    if x.ndim == 2:
        return x[_rows(x.shape[0]), labels]
    return np.take_along_axis(x, labels[:, None], axis=1)[:, 0]


def _onehot(shape: tuple, labels: np.ndarray, values: Any, dtype: Any) -> np.ndarray:
    out = np.zeros(shape, dtype)
    if len(shape) == 2:
        out[_rows(shape[0]), labels] = values
    else:
        np.put_along_axis(out, labels[:, None], np.expand_dims(values, 1) if np.ndim(values)
                          else values, axis=1)
    return out


def _subtract_at_labels(p: np.ndarray, labels: np.ndarray, values: Any) -> None:
    """p[n, labels[n], ...] -= values[n, ...], in place."""
    if p.ndim == 2:
        p[_rows(p.shape[0]), labels] -= values
        return
    idx = labels[:, None]
    picked = np.take_along_axis(p, idx, axis=1)
    picked -= np.expand_dims(values, 1) if np.ndim(values) else values
    np.put_along_axis(p, idx, picked, axis=1)


def _class_weights(weight: np.ndarray | None, n_classes: int, ndim: int, dtype: Any) -> np.ndarray:
    """Per-class weights shaped to broadcast along the class axis (dim 1)."""
    wc = np.ones(n_classes, dtype) if weight is None else weight.astype(dtype, copy=False)
    return wc.reshape((1, -1) + (1,) * (ndim - 2))


def _reduce_fwd(loss: np.ndarray, denom: Any, reduction: str) -> np.ndarray:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if denom:  # (np.errstate costs more than the whole reduction on small batches)
        return loss.sum() / denom
    with np.errstate(invalid="ignore", divide="ignore"):  # everything ignored: NaN, as torch
        return loss.sum() / denom


def _grad_scale(g: Any, denom: Any, reduction: str) -> Any:
    """dLoss/dloss_n, broadcastable over the class axis (dim 1)."""
    if reduction == "none":
        return np.expand_dims(g, 1)
    if reduction == "sum":
        return g
    if denom:
        return g * (1.0 / denom)
    with np.errstate(invalid="ignore", divide="ignore"):
        return g * (1.0 / denom)


class _SoftmaxMemo:
    """The softmax the forward pass of the last cross-entropy call already computed, handed to
    its VJP (on arrays) instead of being computed again; one entry, matched by identity.
    ``layout`` is None for the general path, or "NC" / "CN" for a call of the common case (see
    ``_plain_mean_fwd``), whose exponentials may be kept class-major."""

    __slots__ = ("entry",)

    def __init__(self) -> None:
        self.entry: tuple | None = None

    def put(self, ans: np.ndarray, x: np.ndarray, e: np.ndarray, s: np.ndarray,
            layout: str | None = None) -> None:
        self.entry = (ans, x, e, s, layout)

    def take(self, ans: Any, x: Any) -> tuple[np.ndarray, str | None] | None:
        """(softmax(x), layout) if the forward that returned ``ans`` from ``x`` left it; the
        softmax is (N, C, ...) and C-contiguous whatever the memo's layout (a class-major
        memo is transposed by the division itself)."""
        entry, self.entry = self.entry, None
        if entry is None or entry[0] is not ans or entry[1] is not x:
            return None
        e, s, layout = entry[2], entry[3], entry[4]
        if layout == "CN":
            p = np.empty(e.shape[::-1], e.dtype)
            np.divide(e, s, out=p.T)
            return p, layout
        e /= s.reshape(s.shape[:1] + (1,) + s.shape[1:])
        return e, layout


_softmax_memo = _SoftmaxMemo()


@functools.lru_cache(maxsize=16)
def _rows(n: int) -> np.ndarray:
    """arange(n), read-only: the row index of a label pick (kept for the last few batch sizes)."""
    rows = np.arange(n)
    rows.flags.writeable = False
    return rows


# Up to this many classes the plain path works class-major, on a (C, N) copy: a reduction over
# the classes is then an elementwise pass over rows of N, which NumPy vectorises, where over the
# short contiguous axis of (N, C) it loops sample by sample (1.8x faster for 128 x 10, 4x for
# 2048 x 10; 1.3x slower for 128 x 1000).
_CLASS_MAJOR_MAX = 128


def _plain_mean_fwd(x: np.ndarray, target: np.ndarray, ignore_index: int,
                    in_range: bool) -> np.ndarray | None:
    """Mean cross-entropy of (N, C) logits, no class weights, no smoothing, no label ignored:
    the same arithmetic as the general path with a third of its NumPy calls. None otherwise.
    ``in_range``: every label is known to lie in [0, C), so an ``ignore_index`` outside that
    range matches none of them (no need to count)."""
    n, c = x.shape
    if not n or ((not in_range or 0 <= ignore_index < c)
                 and np.count_nonzero(target == ignore_index)):
        return None
    rows = _rows(n)
    # loss_n = log sum exp(x - m) - (x_t - m): the label's shifted logit is picked before exp
    # overwrites the shifted logits (one pass fewer); ufunc reduces skip ndarray.sum's wrapper
    if c <= _CLASS_MAJOR_MAX:
        layout, axis, e = "CN", 0, np.array(x.T, order="C")
        e -= np.maximum.reduce(e, axis=0)
        picked = e[target, rows]
    else:
        layout, axis = "NC", 1
        e = np.subtract(x, np.maximum.reduce(x, axis=1, keepdims=True))
        picked = e[rows, target]
    s = np.add.reduce(np.exp(e, out=e), axis=axis)
    loss = np.log(s)
    loss -= picked
    out = np.asarray(np.add.reduce(loss) / n)
    _softmax_memo.put(out, x, e, s, layout)
    return out


@functools.lru_cache(maxsize=8)
def _unsigned(dtype: np.dtype) -> np.dtype:
    """The unsigned integer type of ``dtype``'s size (labels viewed as it for the range check)."""
    return np.dtype(f"u{dtype.itemsize}")


def _check_label_range(name: str, target: np.ndarray, n_classes: int, ignore_index: int) -> bool:
    """Every label in [0, C) or equal to ``ignore_index``, else an IndexError; returns whether
    all are in [0, C). Checked in the forward itself, so that a compiled step checks every
    batch's labels too."""
    # common case first, in one reduction: seen as unsigned, a negative label is >= C too
    if not target.size or np.maximum.reduce(target.view(_unsigned(target.dtype)), None) < n_classes:
        return True
    valid = target[target != ignore_index]
    if valid.size and (valid.min() < 0 or valid.max() >= n_classes):
        bad = valid.min() if valid.min() < 0 else valid.max()
        raise IndexError(f"{name}: target {bad} is out of range for {n_classes} classes")
    return False


def _cross_entropy_fwd(
    x: np.ndarray, target: np.ndarray, weight: np.ndarray | None, ignore_index: int,
    label_smoothing: float, reduction: str,
) -> np.ndarray:
    # loss_n = w_t (lse - x_t); logits that are +-inf give NaN, as in PyTorch
    in_range = target.dtype.kind in "iu" and _check_label_range(
        "cross_entropy", target, x.shape[1], ignore_index)
    if weight is None and not label_smoothing and x.ndim == 2 and reduction == "mean":
        out = _plain_mean_fwd(x, target, ignore_index, in_range)
        if out is not None:
            return out
    n_classes = x.shape[1]
    labels, w_t, mask, denom = _labels(target, weight, ignore_index, x.dtype)
    m = x.max(axis=1, keepdims=True)
    e = x - m
    s = np.exp(e, out=e).sum(axis=1)
    lse = np.log(s) + m[:, 0]
    loss = lse - _pick(x, labels)
    if w_t is not None:
        loss *= w_t
    if label_smoothing:  # + eps/C * sum_c w_c (lse - x_c) at every counted position
        wc = _class_weights(weight, n_classes, x.ndim, x.dtype)
        smooth = (wc.sum() * lse - (x * wc).sum(axis=1)) * mask
        loss = (1.0 - label_smoothing) * loss + (label_smoothing / n_classes) * smooth
    out = np.asarray(_reduce_fwd(loss, denom, reduction))
    _softmax_memo.put(out, x, e, s)
    return out


def _cross_entropy_vjp(
    g: Any, ans: Any, x: Any, target: np.ndarray, weight: np.ndarray | None, ignore_index: int,
    label_smoothing: float, reduction: str,
) -> Any:
    # d loss_n / dx = a_n * softmax - b_n, a_n = w_t (the label's weight), b_n = w_t * onehot;
    # smoothing adds mask * eps/C * (sum(w) * softmax - w_c). a and b are constants, so under
    # create_graph the result stays differentiable through the softmax; on arrays it is
    # computed in place, without a one-hot matrix.
    hit = _softmax_memo.take(ans, x) if isinstance(x, np.ndarray) else None
    if hit is not None and hit[1] is not None:  # the plain mean: (softmax - onehot) / N
        p, n = hit[0], len(target)
        p[_rows(n), target] -= 1.0
        p *= g * (1.0 / n)
        return p
    shape, dtype = x.shape, x.dtype
    n_classes, keep = shape[1], 1.0 - label_smoothing
    labels, w_t, mask, denom = _labels(target, weight, ignore_index, dtype)
    a = None if w_t is None else keep * w_t
    at_label = keep if a is None else a
    dense = None
    if label_smoothing:
        m = mask * np.asarray(label_smoothing / n_classes, dtype)
        wc = _class_weights(weight, n_classes, len(shape), dtype)
        a = (keep if a is None else a) + m * wc.sum()
        dense = m[:, None] * wc
    p = _softmax(x, axis=1) if hit is None else hit[0]
    scale = _grad_scale(g, denom, reduction)
    if not isinstance(p, np.ndarray):
        b = _onehot(shape, labels, at_label, dtype)
        if dense is not None:
            b += dense
        return ((p if a is None else p * np.expand_dims(a, 1)) - b) * scale
    if a is not None:
        p *= np.expand_dims(a, 1)
    _subtract_at_labels(p, labels, at_label)
    if dense is not None:
        p -= dense
    p *= scale
    return np.ascontiguousarray(p)  # C-ordered like the fast path's, even for feature-major x


def _nll_fwd(
    x: np.ndarray, target: np.ndarray, weight: np.ndarray | None, ignore_index: int,
    reduction: str,
) -> np.ndarray:
    _check_label_range("nll_loss", target, x.shape[1], ignore_index)
    labels, w_t, _, denom = _labels(target, weight, ignore_index, x.dtype)
    loss = -_pick(x, labels)
    return _reduce_fwd(loss if w_t is None else loss * w_t, denom, reduction)


def _nll_vjp(
    g: Any, ans: Any, x: Any, target: np.ndarray, weight: np.ndarray | None, ignore_index: int,
    reduction: str,
) -> Any:
    labels, w_t, _, denom = _labels(target, weight, ignore_index, x.dtype)
    onehot = _onehot(x.shape, labels, -1.0 if w_t is None else -w_t, x.dtype)
    return onehot * _grad_scale(g, denom, reduction)


cross_entropy_ = defop("cross_entropy", _cross_entropy_fwd, _cross_entropy_vjp)
nll_loss_ = defop("nll_loss", _nll_fwd, _nll_vjp)


# -- binary cross-entropy ------------------------------------------------------------------------
def _clamped_log(x: Any) -> Any:
    """log(x) floored at -100 (PyTorch's BCELoss convention: finite at x = 0)."""
    return np.maximum(np.log(np.maximum(x, 1e-44)), -100.0)


def _bce_fwd(x: np.ndarray, y: Any, weight: Any = None) -> np.ndarray:
    with np.errstate(divide="ignore"):
        out = -(y * np.maximum(np.log(x), -100.0) + (1 - y) * np.maximum(np.log1p(-x), -100.0))
    return out if weight is None else out * weight


def _bce_vjp_x(g: Any, ans: Any, x: Any, y: Any, weight: Any = None) -> Any:
    out = g * (x - y) / np.maximum(x * (1.0 - x), 1e-12)
    return out if weight is None else out * weight


def _bce_vjp_y(g: Any, ans: Any, x: Any, y: Any, weight: Any = None) -> Any:
    out = g * (_clamped_log(1.0 - x) - _clamped_log(x))
    return out if weight is None else out * weight


def _bce_logits_fwd(x: np.ndarray, y: Any, weight: Any = None,
                    pos_weight: Any = None) -> np.ndarray:
    # (1 - y) x + lw * softplus(-x), lw = 1 + (pos_weight - 1) y; softplus never overflows here
    sp = np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0)
    out = (1 - y) * x + (sp if pos_weight is None else (1 + (pos_weight - 1) * y) * sp)
    return out if weight is None else out * weight


def _bce_logits_vjp_x(g: Any, ans: Any, x: Any, y: Any, weight: Any = None,
                      pos_weight: Any = None) -> Any:
    s = sigmoid_poly(-x)
    out = g * ((1 - y) - (s if pos_weight is None else (1 + (pos_weight - 1) * y) * s))
    return out if weight is None else out * weight


def _bce_logits_vjp_y(g: Any, ans: Any, x: Any, y: Any, weight: Any = None,
                      pos_weight: Any = None) -> Any:
    out = g * (-x if pos_weight is None else (pos_weight - 1) * _softplus(-x) - x)
    return out if weight is None else out * weight


binary_cross_entropy_ = defop("binary_cross_entropy", _bce_fwd, _bce_vjp_x, _bce_vjp_y)
binary_cross_entropy_with_logits_ = defop(
    "binary_cross_entropy_with_logits", _bce_logits_fwd, _bce_logits_vjp_x, _bce_logits_vjp_y
)


# -- Gaussian NLL's variance floor ---------------------------------------------------------------
NEGATIVE_VAR = "gaussian_nll_loss: var has negative entries; variances must be >= 0"


def _var_floor_fwd(var: np.ndarray, eps: float, check: bool) -> np.ndarray:
    """max(var, eps); with ``check`` (a compiled step's replay) refuse negative entries."""
    if check and np.any(var < 0):
        raise ValueError(NEGATIVE_VAR)  # in a replay, where no eager check ran before
    return np.maximum(var, eps)


# var clamped at eps with the identity gradient (as PyTorch's no-grad clamp_ of a clone); an
# operation, so a compiled step clamps (and checks) each batch's var, not the first one's
var_floor = defop("var_floor", _var_floor_fwd, lambda g, ans, var, eps, check: g,
                  uses_ans=False)


# -- normalisation -------------------------------------------------------------------------------
# One primitive for batch and layer norm: y = (x - mean) / sqrt(var + eps) * weight + bias, the
# statistics (keepdims arrays) passed in as arguments. They are computed once per forward (by
# ``batch_moments``, or the running statistics in eval mode), so no VJP recomputes them on arrays.
# On arrays the VJPs take a fast path (few passes, fewer full-size temporaries); on Tensors
# (create_graph, or a compiled step being traced) the plain formulas below stay differentiable
# and, unless ``fixed``, recompute the statistics from x so their dependence on x is recorded.


def _moments_fwd(x: np.ndarray, axes: tuple) -> np.ndarray:
    """Mean and biased variance over ``axes`` (keepdims), stacked: shape (2, *kept). A plain
    float32 sum loses digits when the mean is large against the spread (the centred values, and
    so every gradient, would inherit them: 10x PyTorch's error), so the first mean is only a
    shift: the deviations from it are summed again (small numbers, summed accurately) to correct
    it, and their squares give the variance - as accurate as a float64 mean, in float32 passes."""
    n = max(1, math.prod(x.shape[a] for a in axes))
    shift = np.add.reduce(x, axis=axes, keepdims=True)
    shift *= 1.0 / n
    d = np.subtract(x, shift)
    offset = np.add.reduce(d, axis=axes, keepdims=True)
    offset *= 1.0 / n  # the mean of the deviations: tiny unless the shift was off
    var = np.add.reduce(np.square(d, out=d), axis=axes, keepdims=True)
    var *= 1.0 / n
    var -= offset * offset
    return np.stack([shift + offset, np.maximum(var, 0.0, out=var)])


_moments = nondiff("moments", _moments_fwd)


def batch_moments(x: Any, axes: tuple) -> tuple[Any, Any]:
    """(mean, biased variance) of x over ``axes`` (keepdims), without gradient: one op, so a
    compiled step computes them from each batch."""
    stats = _moments(x, axes=axes)
    return stats[0], stats[1]


def _graph_moments(x: Any, axes: tuple) -> tuple[Any, Any]:
    mean = np.mean(x, axis=axes, keepdims=True)
    xc = x - mean
    return mean, np.mean(xc * xc, axis=axes, keepdims=True)


def _graph_xhat(x: Any, axes: tuple, eps: float, mean: Any, var: Any, fixed: bool
                ) -> tuple[Any, Any]:
    """Normalised input and 1/std on Tensors: batch statistics recomputed from x (so that
    their gradient is recorded) unless they are constants (``fixed``, eval mode)."""
    if not fixed:
        mean, var = _graph_moments(x, axes)
    invstd = 1.0 / np.sqrt(var + eps)
    return (x - mean) * invstd, invstd


def _norm_fwd(x: np.ndarray, w: Any, b: Any, mean: np.ndarray, var: np.ndarray, *, axes: tuple,
              waxes: tuple, pshape: tuple, eps: float, fixed: bool = False) -> np.ndarray:
    scale = 1.0 / np.sqrt(var + eps)
    if w is not None:  # one pass over x for 1/std and weight together
        scale = scale * np.reshape(w, pshape)
    y = np.subtract(x, mean)
    y *= scale
    if b is not None:
        y += np.reshape(b, pshape)
    return y


def _norm_grads_graph(g: Any, x: Any, w: Any, b: Any, mean: Any, var: Any, axes: tuple,
                      waxes: tuple, pshape: tuple, eps: float, fixed: bool) -> tuple:
    """(dx, dweight, dbias) on Tensors, by the plain differentiable formulas."""
    xhat, invstd = _graph_xhat(x, axes, eps, mean, var, fixed)
    gx = g if w is None else g * np.reshape(w, pshape)
    if fixed:
        dx = gx * invstd
    else:
        mg = np.mean(gx, axis=axes, keepdims=True)
        mgx = np.mean(gx * xhat, axis=axes, keepdims=True)
        dx = (gx - mg - xhat * mgx) * invstd
    dw = None if w is None else np.reshape(np.sum(g * xhat, axis=waxes), np.shape(w))
    db = None if b is None else np.reshape(np.sum(g, axis=waxes), np.shape(b))
    return dx, dw, db


def _norm_grads_arrays(g: np.ndarray, x: np.ndarray, w: Any, b: Any, mean: np.ndarray,
                       var: np.ndarray, axes: tuple, waxes: tuple, pshape: tuple, eps: float,
                       fixed: bool) -> tuple:
    """(dx, dweight, dbias) on arrays, in few passes and two or three full-size arrays: with
    xc = x - mean, n values per statistic and gx = g * weight,
    dx = invstd * gx - invstd * sum(gx) / n - xc * invstd^3 * sum(gx * xc) / n (over ``axes``),
    dweight = sum(g * xc * invstd), dbias = sum(g) (over ``waxes``)."""
    invstd = 1.0 / np.sqrt(var + eps)
    n = x.size // invstd.size
    wr = None if w is None else np.reshape(w, (1,) * (x.ndim - len(pshape)) + tuple(pshape))
    # batch norm: the weight is constant over each statistic's values, so it factors out
    per_stat = wr is None or all(wr.shape[a] == 1 for a in axes)
    # batch norm: the parameters' sums are the statistics' sums of g * xc and g
    shared = per_stat and tuple(waxes) == tuple(axes)
    gx = g if per_stat else g * wr
    scale = invstd * wr if per_stat and wr is not None else invstd
    xc = np.subtract(x, mean)
    prod = np.multiply(gx, xc)  # becomes dx at the end
    sum_gxc = np.add.reduce(prod, axis=axes, keepdims=True)
    if w is None:
        dw = None
    elif shared:
        dw = np.reshape(sum_gxc * invstd, np.shape(w))
    else:
        np.multiply(g, xc, out=prod)
        prod *= invstd
        dw = np.reshape(np.add.reduce(prod, axis=waxes), np.shape(w))
    sum_gx = np.add.reduce(gx, axis=axes, keepdims=True)
    if b is None:
        db = None
    elif shared:
        db = np.reshape(sum_gx, np.shape(b))
    else:
        db = np.reshape(np.add.reduce(g, axis=waxes), np.shape(b))
    dx = np.multiply(gx, scale, out=prod)
    if not fixed:
        xc *= sum_gxc * (-(invstd * invstd) * scale / n)
        xc -= sum_gx * (scale / n)
        dx += xc
    return dx, dw, db


def _norm_grads(g: Any, ans: Any, x: Any, w: Any, b: Any, mean: Any, var: Any, *, axes: tuple,
                waxes: tuple, pshape: tuple, eps: float, fixed: bool = False) -> tuple:
    """The op's ``prep``: all three gradients at once, which share most of their work; each VJP
    then takes its own."""
    grads = _norm_grads_graph if not isinstance(g, np.ndarray) else _norm_grads_arrays
    return grads(g, x, w, b, mean, var, axes, waxes, pshape, eps, fixed)


normalize_ = defop("normalize", _norm_fwd, lambda grads, *_, **__: grads[0],
                   lambda grads, *_, **__: grads[1], lambda grads, *_, **__: grads[2],
                   prep=_norm_grads, uses_ans=False)


def normalize(x: Any, weight: Any, bias: Any, axes: tuple, waxes: tuple, pshape: tuple,
              eps: float, mean: Any = None, var: Any = None, fixed: bool = False) -> Any:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` as one node (batch norm and layer norm).

    Statistics reduce over ``axes``; ``weight``/``bias`` (or None) are reshaped to ``pshape`` and
    their gradients summed over ``waxes``. ``mean``/``var`` (keepdims, no gradient) are this
    batch's statistics of x, computed here when not given; with ``fixed=True`` they are
    constants instead (batch norm in eval mode), and x's gradient treats them so."""
    if mean is None or var is None:
        mean, var = batch_moments(x, axes)
    return normalize_(x, weight, bias, mean, var, axes=axes, waxes=waxes, pshape=pshape, eps=eps,
                      fixed=fixed)


# -- activations that would otherwise take several nodes -----------------------------------------
def _gelu_fwd(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
    return 0.5 * x * (1.0 + _erf(x * _SQRT_HALF))


def _gelu_vjp(g: Any, ans: Any, x: Any, approximate: str = "none") -> Any:
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))
        du = _SQRT_2_OVER_PI * (1.0 + 0.134145 * x * x)
        return g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)
    cdf = 0.5 * (1.0 + _erf(x * _SQRT_HALF))
    return g * (cdf + x * (_INV_SQRT_2PI * np.exp(-0.5 * x * x)))


gelu_ = defop("gelu", _gelu_fwd, _gelu_vjp)
softsign_ = defop(
    "softsign",
    lambda x: x / (1.0 + np.abs(x)),
    lambda g, ans, x: g / np.square(1.0 + np.abs(x)),
)


def gelu(input: Any, approximate: str = "none") -> Any:
    """x * Phi(x) (Gaussian error linear unit) as one node; ``approximate='tanh'`` uses the tanh
    form."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return gelu_(input, approximate=approximate)


def softsign(input: Any) -> Any:
    """x / (1 + |x|) as one node."""
    return softsign_(input)
