"""The overfitting report: train against validation loss and metric at the end of training,
their gap, the best epoch, and a warning when validation loss rises while training loss falls
(the network is memorising its training data instead of learning what generalises)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from chainrule.train.history import History
from chainrule.train.metrics import METRICS

__all__ = ["OverfittingReport", "overfitting_report"]

REMEDIES = (
    "stop earlier (EarlyStopping restores the best weights), add a prior / weight decay or "
    "dropout, use a smaller network, or get more training data"
)


@dataclass
class OverfittingReport:
    """Train vs validation numbers at the last epoch, the best epoch, and the verdict.

    ``loss_gap`` is val_loss − train_loss and ``metric_gap`` is val − train for the main metric
    (None without validation data). ``overfitting`` is True when, over at least ``window`` epochs
    after the best epoch, validation loss rose while training loss fell; ``warning`` then says
    by how much and what to do. ``str(report)`` is the text printed at the end of ``fit``.
    """

    epochs: int
    best_epoch: int | None
    train_loss: float | None
    val_loss: float | None
    loss_gap: float | None
    metric: str | None
    train_metric: float | None
    val_metric: float | None
    metric_gap: float | None
    best_val_loss: float | None
    restored_epoch: int | None
    overfitting: bool
    warning: str | None
    stop_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-serialisable dict."""
        return asdict(self)

    def __str__(self) -> str:
        best = f", best epoch {self.best_epoch}" if self.best_epoch is not None else ""
        lines = [f"Overfitting report ({self.epochs} epochs{best})"]
        if self.stop_reason:
            lines.append(f"  training stopped early: {self.stop_reason}")
        if self.val_loss is None:
            lines.append(f"  {'loss':<10} train {_fmt(self.train_loss)}")
            if self.metric:
                lines.append(f"  {self.metric:<10} train {_fmt(self.train_metric)}")
            lines.append(
                "  no validation data: pass val_data or val_split to see the "
                "train/validation gap and detect overfitting"
            )
            return "\n".join(lines)
        lines.append(f"  {'':<10} {'train':>10} {'validation':>11} {'gap':>10}")
        lines.append(
            f"  {'loss':<10} {_fmt(self.train_loss):>10} {_fmt(self.val_loss):>11} "
            f"{_fmt(self.loss_gap, sign=True):>10}"
        )
        if self.metric:
            lines.append(
                f"  {self.metric:<10} {_fmt(self.train_metric):>10} {_fmt(self.val_metric):>11} "
                f"{_fmt(self.metric_gap, sign=True):>10}"
            )
        if self.best_epoch is not None:
            lines.append(
                f"  best epoch {self.best_epoch}: validation loss {_fmt(self.best_val_loss)}"
            )
        if self.restored_epoch is not None:
            lines.append(f"  the model holds the weights of epoch {self.restored_epoch} (restored)")
        if self.warning:
            lines.append(f"WARNING: {self.warning}")
        else:
            lines.append(
                "  no sign of overfitting: validation loss did not rise as training loss fell"
            )
        return "\n".join(lines)


def overfitting_report(
    history: History, window: int = 3, tolerance: float = 0.01, metric: str | None = None
) -> OverfittingReport:
    """Judge a finished run from its History.

    Overfitting is flagged when the last epoch is at least `window` epochs after the best
    (lowest validation loss) epoch, validation loss has since risen by more than `tolerance`
    (relative), and training loss has fallen. `metric` defaults to the first metric recorded.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1 epoch, got {window}")
    if not len(history):
        raise ValueError("the history is empty; train for at least one epoch first")
    last = history.records[-1]
    metric = metric or next((k for k in history.keys() if k in METRICS), None)
    best_epoch = history.best_epoch
    has_val = _num(last.get("val_loss")) is not None
    report = OverfittingReport(
        epochs=len(history),
        best_epoch=best_epoch,
        train_loss=_num(last.get("loss")),
        val_loss=_num(last.get("val_loss")),
        loss_gap=_diff(last.get("val_loss"), last.get("loss")),
        metric=metric,
        train_metric=_num(last.get(metric)) if metric else None,
        val_metric=_num(last.get(f"val_{metric}")) if metric else None,
        metric_gap=_diff(last.get(f"val_{metric}"), last.get(metric)) if metric else None,
        best_val_loss=None,
        restored_epoch=history.restored_epoch,
        overfitting=False,
        warning=None,
        stop_reason=history.stop_reason,
    )
    if not has_val or best_epoch is None:
        return report
    best = history.record(best_epoch)
    report.best_val_loss = best["val_loss"]
    v0, v1 = best["val_loss"], report.val_loss
    t0, t1 = _num(best.get("loss")), report.train_loss
    rising = v1 - v0 > tolerance * abs(v0)
    falling = t0 is not None and t1 is not None and t1 < t0
    if last["epoch"] - best_epoch >= window and rising and falling:
        report.overfitting = True
        rise = f" (+{100 * (v1 - v0) / abs(v0):.0f}%)" if v0 else ""
        report.warning = (
            f"overfitting: validation loss rose from {_fmt(v0)} at epoch {best_epoch} to "
            f"{_fmt(v1)} at epoch {last['epoch']}{rise} while training loss fell from "
            f"{_fmt(t0)} to {_fmt(t1)}; the network is memorising its training data. "
            f"Remedies: {REMEDIES}."
        )
    return report


def _num(x: Any) -> float | None:
    """x as a finite float, or None."""
    if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


def _diff(a: Any, b: Any) -> float | None:
    a, b = _num(a), _num(b)
    return None if a is None or b is None else a - b


def _fmt(x: float | None, sign: bool = False) -> str:
    if x is None:
        return "-"
    spec = ".2e" if 0 < abs(x) < 1e-3 else ".4f"  # tiny losses stay readable, not 0.0000
    return f"{x:{'+' if sign else ''}{spec}}"
