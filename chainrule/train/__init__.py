"""Training: the Trainer fit loop and functional fit, metrics, callbacks (early stopping,
checkpoints, LR schedules), the History of a run and the overfitting report."""

from chainrule.train.callbacks import (
    Callback,
    EarlyStopping,
    LRSchedulerCallback,
    ModelCheckpoint,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from chainrule.train.history import History
from chainrule.train.metrics import METRICS, accuracy, f1, get_metric, mae, mse, r2
from chainrule.train.report import OverfittingReport, overfitting_report
from chainrule.train.trainer import Trainer, fit

__all__ = [
    "METRICS",
    "Callback",
    "EarlyStopping",
    "History",
    "LRSchedulerCallback",
    "ModelCheckpoint",
    "OverfittingReport",
    "Trainer",
    "accuracy",
    "f1",
    "fit",
    "get_metric",
    "latest_checkpoint",
    "load_checkpoint",
    "mae",
    "mse",
    "overfitting_report",
    "r2",
    "save_checkpoint",
]
