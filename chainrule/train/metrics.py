"""Evaluation metrics in plain NumPy, with scikit-learn's definitions: accuracy, macro F1, MSE,
MAE and R². Each takes (y_true, y_pred) as arrays or Tensors and returns a float."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["METRICS", "accuracy", "f1", "get_metric", "mae", "mse", "r2"]


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of predicted labels equal to the true labels."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def f1(y_true: Any, y_pred: Any) -> float:
    """Macro-averaged F1: the unweighted mean over classes (those in y_true or y_pred) of
    2·TP / (2·TP + FP + FN), so rare classes count as much as common ones."""
    t, p = _pair(y_true, y_pred)
    labels, codes = np.unique(np.concatenate([t.ravel(), p.ravel()]), return_inverse=True)
    ct, cp = codes[: t.size], codes[t.size :]
    k = len(labels)
    tp = np.bincount(ct[ct == cp], minlength=k)
    n_true = np.bincount(ct, minlength=k)
    n_pred = np.bincount(cp, minlength=k)
    return float(np.mean(2 * tp / (n_true + n_pred)))


def mse(y_true: Any, y_pred: Any) -> float:
    """Mean squared error."""
    t, p = _pair(y_true, y_pred, float)
    return float(np.mean((t - p) ** 2))


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error."""
    t, p = _pair(y_true, y_pred, float)
    return float(np.mean(np.abs(t - p)))


def r2(y_true: Any, y_pred: Any) -> float:
    """Coefficient of determination 1 − SS_res / SS_tot (1 is perfect, 0 is predicting the
    mean); averaged over output columns. A constant target scores 1 if fitted exactly, else 0."""
    t, p = _pair(y_true, y_pred, float)
    t, p = t.reshape(len(t), -1), p.reshape(len(p), -1)
    ss_res = np.sum((t - p) ** 2, axis=0)
    ss_tot = np.sum((t - t.mean(axis=0)) ** 2, axis=0)
    safe = np.where(ss_tot > 0, ss_tot, 1.0)
    scores = np.where(ss_tot > 0, 1.0 - ss_res / safe, np.where(ss_res == 0, 1.0, 0.0))
    return float(np.mean(scores))


METRICS: dict[str, Callable[[Any, Any], float]] = {
    "accuracy": accuracy,
    "f1": f1,
    "mse": mse,
    "mae": mae,
    "r2": r2,
}
LABEL_METRICS = frozenset({"accuracy", "f1"})  # compare class labels, not raw outputs


def get_metric(name: str) -> Callable[[Any, Any], float]:
    """The metric function called `name` (one of METRICS)."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(
            f"unknown metric {name!r}; choose from {', '.join(METRICS)}"
        ) from None


def _pair(y_true: Any, y_pred: Any, dtype: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as arrays of the same number of elements, column vectors flattened."""
    t = np.asarray(y_true, dtype=dtype)
    p = np.asarray(y_pred, dtype=dtype)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if t.shape != p.shape:
        raise ValueError(
            f"y_true has shape {t.shape} but y_pred has shape {p.shape}; they must match"
        )
    if t.size == 0:
        raise ValueError("cannot compute a metric on zero samples")
    return t, p
