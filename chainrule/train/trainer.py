"""Trainer: the fit loop (mini-batches, optimiser steps, validation, metrics, callbacks,
progress output, checkpoints and exact resume), plus evaluate, predict and a functional fit.

The objective is maximum a posteriori (MAP) estimation. With a prior P(w) the Trainer
minimises, per mini-batch,

    mean over the batch of loss(model(x), y)  +  prior.neg_log_prob(model.parameters()) / N

where N is the number of training samples. Summed over the N samples this is
−log P(D | w) − log P(w) (up to constants), i.e. −log of the posterior of the weights; without a
prior it is maximum likelihood. Reported losses (History, progress, evaluate) are the data loss
alone, so training and validation values compare directly.

Determinism: with ``seed`` set, fit seeds ``chainrule.manual_seed`` (dropout and any other
default-generator draws) and a generator of its own for shuffling, and splits off validation
data with that seed; two runs of the same script give identical weights. Seed the
initialisation by calling ``chainrule.manual_seed`` before building the model.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from chainrule._mode import no_grad
from chainrule._random import Generator, default_generator, rng
from chainrule.data.loader import DataLoader, Subset, TensorDataset
from chainrule.data.tabular import train_val_split
from chainrule.io import LoadError
from chainrule.nn.module import Module
from chainrule.tensor import Tensor, as_array
from chainrule.train.callbacks import Callback, latest_checkpoint, load_checkpoint
from chainrule.train.history import History
from chainrule.train.metrics import LABEL_METRICS, get_metric
from chainrule.train.report import OverfittingReport, overfitting_report

__all__ = ["Trainer", "fit"]

CHECKPOINT_FORMAT = "chainrule.TrainerState"
CLASSIFICATION_LOSSES = frozenset({"CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss"})
EVAL_BATCH = 256  # evaluation and prediction use at least this batch size (no gradients kept)


class Trainer:
    """Train `model` by minimising `loss` (plus an optional `prior`) with `optimizer`.

    loss: a loss module or function ``loss(output, target) -> scalar Tensor`` (mean over the
    batch), e.g. ``nn.CrossEntropyLoss()`` or ``nn.MSELoss()``.
    optimizer: default ``optim.Adam(model.parameters(), lr=1e-3)``.
    prior: a ``chainrule.nn.priors`` object; ``prior.neg_log_prob(model.parameters()) / N_train``
    is added to every batch loss (MAP training, see the module docstring).
    metrics: names from ``chainrule.train.metrics.METRICS``; "auto" picks ("accuracy",) for
    classification (a classification loss, or integer targets) and ("r2",) otherwise. The
    first metric is the main one in the overfitting report.
    callbacks: e.g. EarlyStopping, ModelCheckpoint, LRSchedulerCallback.
    progress: a tqdm bar per epoch on a terminal, one line per epoch otherwise (stderr).
    verbose: print the overfitting report when fit ends.
    seed: makes shuffling, dropout and the validation split reproducible.
    monitor: a ``chainrule.diagnostics.GradientMonitor`` of `model`; the Trainer calls its
    ``step()`` after every ``loss.backward()`` (before ``optimizer.step()``), which is all the
    coupling there is: build it, pass it, read ``monitor.report()`` after fit.
    """

    def __init__(
        self,
        model: Module,
        loss: Any,
        optimizer: Any = None,
        prior: Any = None,
        metrics: str | Sequence[str] = "auto",
        callbacks: Iterable[Callback] = (),
        progress: bool = True,
        verbose: bool = True,
        seed: int | None = None,
        monitor: Any = None,
    ) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"Trainer needs a chainrule.nn.Module, got {type(model).__name__}")
        if not callable(loss):
            raise TypeError(
                f"loss must be a loss module or function, got {type(loss).__name__}; "
                "e.g. chainrule.nn.CrossEntropyLoss()"
            )
        if prior is not None and not callable(getattr(prior, "neg_log_prob", None)):
            raise TypeError(
                f"prior must have a neg_log_prob(parameters) method (chainrule.nn.priors), "
                f"got {type(prior).__name__}"
            )
        if monitor is not None and getattr(monitor, "model", model) is not model:
            raise ValueError("the monitor watches a different model; build it with this model")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed must be an integer or None, got {seed!r}")
        if isinstance(metrics, str) and metrics != "auto":
            metrics = (metrics,)
        if not isinstance(metrics, str):
            metrics = tuple(metrics)
            for name in metrics:
                get_metric(name)
        if optimizer is None:
            from chainrule.optim import Adam

            optimizer = Adam(model.parameters(), lr=1e-3)
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.prior = prior
        self.metrics: str | tuple[str, ...] = metrics
        self.callbacks = sorted(callbacks, key=lambda cb: getattr(cb, "order", 0))
        self.progress = progress
        self.verbose = verbose
        self.seed = seed
        self.monitor = monitor
        self.history = History()
        self.report: OverfittingReport | None = None
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps taken
        self.stop_training = False
        self.has_validation = False
        self.n_train = 0
        self.generator = Generator()  # shuffling; seeded in fit

    # ---- training ------------------------------------------------------------------------

    def fit(
        self,
        train_data: Any,
        val_data: Any = None,
        val_split: float | None = None,
        epochs: int = 10,
        batch_size: int = 32,
        shuffle: bool = True,
        resume_from: str | os.PathLike | None = None,
    ) -> History:
        """Train for `epochs` epochs and return the History.

        Data: an ``(X, y)`` pair of arrays/Tensors, or a Dataset of ``(x, y)`` samples.
        `val_split` (a fraction, e.g. 0.2) holds out part of `train_data` for validation
        (stratified by class for integer labels); or pass `val_data`.
        `resume_from`: a checkpoint file or a ModelCheckpoint directory (its latest file);
        training continues after the saved epoch, and, given the same data and settings, ends
        with weights bit-for-bit identical to an uninterrupted run.
        """
        _check_positive("epochs", epochs)
        _check_positive("batch_size", batch_size)
        train_ds, val_ds = self._datasets(train_data, val_data, val_split)
        self.n_train, self.has_validation = len(train_ds), val_ds is not None
        self._resolve_metrics(train_ds)
        if resume_from is None and self.seed is not None:
            default_generator.manual_seed(self.seed)
        self.generator = Generator(self._shuffle_seed())
        loader = DataLoader(train_ds, batch_size, shuffle=shuffle, generator=self.generator)
        self.history, self.epoch, self.step, self.stop_training = History(), 0, 0, False
        for cb in self.callbacks:
            cb.on_train_begin(self)
        if resume_from is not None:
            self.load_state_dict(load_checkpoint(_checkpoint_path(resume_from)))
        first = self.epoch + 1
        if self.history.stopped_epoch is not None:
            first = epochs + 1  # the run had already stopped early when it was saved
        for epoch in range(first, epochs + 1):
            for cb in self.callbacks:
                cb.on_epoch_begin(self, epoch)
            bar = self._bar(len(loader), epoch, epochs)
            logs = self._train_epoch(loader, epoch, bar)
            if val_ds is not None:
                val = self._evaluate(val_ds, batch_size)
                logs.update({f"val_{k}": v for k, v in val.items()})
            logs["lr"] = self._lr()
            self.history.append(logs)
            self.epoch = epoch
            for cb in self.callbacks:
                cb.on_epoch_end(self, epoch, logs)
            self._show_epoch(bar, epoch, epochs, logs)
            if self.stop_training:
                break
        for cb in self.callbacks:
            cb.on_train_end(self)
        if len(self.history):
            self.report = overfitting_report(self.history)
            if self.verbose:
                print(self.report)
        return self.history

    def _train_epoch(self, loader: DataLoader, epoch: int, bar: Any) -> dict[str, Any]:
        """One pass over the training data; returns the epoch's record (loss and metrics)."""
        self.model.train()
        total, count = 0.0, 0
        outputs, targets = [], []
        for batch in loader:
            x, y = _unpack(batch)
            out = self.model(x)
            y = _align(out, y)
            loss = self.loss(out, y)
            value, n = float(loss.data), len(y.data)
            if not math.isfinite(value):  # stop before the step spoils the weights
                self._stop_nonfinite(epoch, value)
                total, count = value, 1
                break
            objective = loss if self.prior is None else loss + self._prior_term()
            self.optimizer.zero_grad()
            objective.backward()
            if self.monitor is not None:
                self.monitor.step()
            self.optimizer.step()
            self.step += 1
            for cb in self.callbacks:
                cb.on_batch_end(self, self.step)
            total, count = total + value * n, count + n
            if self._metric_names:
                outputs.append(out.data)
                targets.append(y.data)
            if bar is not None:
                bar.set_postfix_str(f"loss {total / count:.4f}", refresh=False)
                bar.update()
        logs: dict[str, Any] = {"epoch": epoch, "loss": total / max(count, 1)}
        if outputs and not self.stop_training:
            logs.update(self._metric_values(np.concatenate(outputs), np.concatenate(targets)))
        if self.prior is not None:
            with no_grad():
                logs["prior"] = float(self._prior_term().data)
        return logs

    def _prior_term(self) -> Tensor:
        """−log P(w) / N_train: the prior's share per training sample."""
        return self.prior.neg_log_prob(self.model.parameters()) * (1.0 / self.n_train)

    def _stop_nonfinite(self, epoch: int, value: float) -> None:
        """Stop training (the weights keep their last finite values) and say why."""
        reason = (
            f"the training loss became {value} at epoch {epoch} (step {self.step + 1}); lower the "
            "learning rate, clip gradients or check the data for extreme values"
        )
        self.stop_training = True
        self.history.stopped_epoch = epoch
        self.history.stop_reason = reason
        warnings.warn(reason, RuntimeWarning, stacklevel=3)

    # ---- evaluation and prediction -------------------------------------------------------

    def evaluate(self, data: Any, batch_size: int = EVAL_BATCH) -> dict[str, float]:
        """Mean loss and metrics of the model on `data` (an (X, y) pair or a Dataset)."""
        _check_positive("batch_size", batch_size)
        ds = _as_dataset(data, "data")
        self._resolve_metrics(ds)
        return self._evaluate(ds, batch_size)

    def _evaluate(self, ds: Any, batch_size: int) -> dict[str, float]:
        was_training = self.model.training
        self.model.eval()
        total, count, outputs, targets = 0.0, 0, [], []
        with no_grad():
            for batch in DataLoader(ds, max(batch_size, EVAL_BATCH)):
                x, y = _unpack(batch)
                out = self.model(x)
                y = _align(out, y)
                n = len(y.data)
                total += float(self.loss(out, y).data) * n
                count += n
                outputs.append(out.data)
                targets.append(y.data)
        self.model.train(was_training)
        result = {"loss": total / count}
        result.update(self._metric_values(np.concatenate(outputs), np.concatenate(targets)))
        return result

    def predict(self, X: Any, batch_size: int = EVAL_BATCH) -> Tensor:
        """The model's raw outputs for inputs `X` (array, Tensor, or a Dataset whose samples
        are inputs or (input, target) pairs), in evaluation mode without gradients."""
        _check_positive("batch_size", batch_size)
        ds = X if _is_dataset(X) else TensorDataset(_finite_array(X, "X"))
        was_training = self.model.training
        self.model.eval()
        outputs = []
        with no_grad():
            for batch in DataLoader(ds, batch_size):
                x = batch[0] if isinstance(batch, tuple) else batch
                outputs.append(self.model(x).data)
        self.model.train(was_training)
        if not outputs:
            raise ValueError("predict got no samples; pass at least one input row")
        return Tensor._make(np.concatenate(outputs))

    def _resolve_metrics(self, ds: Any) -> None:
        """Fix the metric names ("auto" -> accuracy or r2 by task) and whether it is
        classification (which decides how outputs turn into labels)."""
        name = type(self.loss).__name__
        target = _first_target(ds)
        integer = target is not None and target.dtype.kind in "iub"
        self._classification = name in CLASSIFICATION_LOSSES or integer
        if self.metrics == "auto":
            self._metric_names = ("accuracy",) if self._classification else ("r2",)
        else:
            self._metric_names = tuple(self.metrics)

    def _metric_values(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        values = {}
        labels = truth = None
        for name in self._metric_names:
            if name in LABEL_METRICS:
                if labels is None:
                    labels, truth = self._labels(outputs), _target_labels(targets)
                values[name] = get_metric(name)(truth, labels)
            else:
                values[name] = get_metric(name)(targets, outputs)
        return values

    def _labels(self, outputs: np.ndarray) -> np.ndarray:
        """Class labels from outputs: argmax over classes, or a threshold for one output
        (0.5 for probabilities from BCELoss, 0 for logits)."""
        if outputs.ndim == 2 and outputs.shape[1] > 1:
            return outputs.argmax(axis=1)
        threshold = 0.5 if type(self.loss).__name__ == "BCELoss" else 0.0
        return (outputs.reshape(len(outputs)) > threshold).astype(np.int64)

    # ---- checkpoints ---------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint stores: epoch, step, model, optimizer, RNG states, history
        and the state of every callback that has some (schedulers, early stopping)."""
        callbacks = []
        for cb in self.callbacks:
            state = cb.state_dict()
            if state is not None:
                callbacks.append([type(cb).__name__, state])
        return {
            "format": CHECKPOINT_FORMAT,
            "epoch": self.epoch,
            "step": self.step,
            "model": dict(self.model.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "rng": {
                "default": default_generator.get_state(),
                "shuffle": self.generator.get_state(),
            },
            "history": self.history.to_dict(),
            "callbacks": callbacks,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from `state_dict` (as read from a checkpoint) to continue training."""
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise LoadError("not a Trainer checkpoint; pass a file written by ModelCheckpoint")
        mine = [cb for cb in self.callbacks if cb.state_dict() is not None]
        saved = state["callbacks"]
        names = [type(cb).__name__ for cb in mine]
        if names != [name for name, _ in saved]:
            raise LoadError(
                f"the checkpoint was written with callbacks {[n for n, _ in saved]} holding "
                f"state, this Trainer has {names}; resume with the same callbacks"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        default_generator.set_state(state["rng"]["default"])
        self.generator.set_state(state["rng"]["shuffle"])
        self.history = History.from_dict(state["history"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        for cb, (_, cb_state) in zip(mine, saved, strict=True):
            cb.load_state_dict(cb_state)

    # ---- helpers -------------------------------------------------------------------------

    def _datasets(self, train_data: Any, val_data: Any, val_split: float | None) -> tuple:
        train = _as_dataset(train_data, "train_data")
        if val_split is None:
            return train, None if val_data is None else _as_dataset(val_data, "val_data")
        if val_data is not None:
            raise ValueError("pass either val_data or val_split, not both")
        target = _first_target(train)
        labels = target if target is not None and target.dtype.kind in "iu" else None
        if labels is not None and labels.ndim != 1:
            labels = None
        seed = 0 if self.seed is None else self.seed
        train_idx, val_idx = train_val_split(len(train), val_split, seed=seed, stratify=labels)
        if isinstance(train, TensorDataset):
            arrays = [t.data for t in train.tensors]
            return (TensorDataset(*[a[train_idx] for a in arrays]),
                    TensorDataset(*[a[val_idx] for a in arrays]))
        return Subset(train, train_idx), Subset(train, val_idx)

    def _shuffle_seed(self) -> int:
        """Seed of the shuffling generator: derived from `seed`, else drawn from the default
        generator (so chainrule.manual_seed alone also makes runs reproducible)."""
        if self.seed is not None:
            return int(np.random.SeedSequence([self.seed, 1]).generate_state(1)[0])
        return int(rng().integers(2**63))

    def _lr(self) -> float | None:
        groups = getattr(self.optimizer, "param_groups", None)
        return float(groups[0]["lr"]) if groups and "lr" in groups[0] else None

    def _bar(self, batches: int, epoch: int, epochs: int) -> Any:
        """A tqdm bar for the epoch's batches when stderr is a terminal (and tqdm installed)."""
        if not (self.progress and sys.stderr.isatty()):
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
        return tqdm(total=batches, desc=f"epoch {epoch:>{len(str(epochs))}}/{epochs}",
                    unit="batch", leave=True)

    def _show_epoch(self, bar: Any, epoch: int, epochs: int, logs: dict[str, Any]) -> None:
        """End the epoch's bar with every number of the epoch; without a terminal (CI, logs)
        print them as one line instead."""
        if bar is not None:
            bar.set_postfix_str(_format_logs(logs), refresh=False)
            bar.close()
        elif self.progress:
            width = len(str(epochs))
            print(f"epoch {epoch:>{width}}/{epochs}: {_format_logs(logs)}", file=sys.stderr)


def fit(
    model: Module,
    train_data: Any,
    val_data: Any = None,
    *,
    loss: Any,
    optimizer: Any = None,
    prior: Any = None,
    metrics: str | Sequence[str] = "auto",
    callbacks: Iterable[Callback] = (),
    progress: bool = True,
    verbose: bool = True,
    seed: int | None = None,
    monitor: Any = None,
    val_split: float | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    shuffle: bool = True,
    resume_from: str | os.PathLike | None = None,
) -> History:
    """Train `model` in one call: ``Trainer(model, loss, ...).fit(train_data, ...)``; see
    Trainer for every argument. Returns the History."""
    trainer = Trainer(model, loss, optimizer=optimizer, prior=prior, metrics=metrics,
                      callbacks=callbacks, progress=progress, verbose=verbose, seed=seed,
                      monitor=monitor)
    return trainer.fit(train_data, val_data=val_data, val_split=val_split, epochs=epochs,
                       batch_size=batch_size, shuffle=shuffle, resume_from=resume_from)


# ---- data plumbing -----------------------------------------------------------------------


def _is_dataset(data: Any) -> bool:
    return (hasattr(data, "__getitem__") and hasattr(data, "__len__")
            and not isinstance(data, tuple | list | np.ndarray | Tensor))


def _as_dataset(data: Any, name: str) -> Any:
    """An (X, y) pair becomes a TensorDataset (checked: same length, finite); a Dataset passes."""
    if isinstance(data, DataLoader):
        raise TypeError(f"pass {name} as a Dataset or an (X, y) pair, not a DataLoader; "
                        "fit makes its own batches (batch_size=, shuffle=)")
    if _is_dataset(data):
        if len(data) == 0:
            raise ValueError(f"{name} is empty; it needs at least one sample")
        return data
    if not (isinstance(data, tuple | list) and len(data) == 2):
        raise TypeError(f"{name} must be an (X, y) pair of arrays or a Dataset, "
                        f"got {type(data).__name__}")
    X, y = _finite_array(data[0], f"{name} X"), _finite_array(data[1], f"{name} y")
    if X.ndim == 0 or y.ndim == 0 or len(X) != len(y):
        raise ValueError(f"{name}: X has shape {X.shape} but y has shape {y.shape}; they need "
                         "one row per sample")
    if len(X) == 0:
        raise ValueError(f"{name} is empty; it needs at least one sample")
    return TensorDataset(X, y)


def _finite_array(a: Any, name: str) -> np.ndarray:
    arr = as_array(a)
    if arr.dtype.kind in "fc":
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise ValueError(f"{name} contains {bad} NaN or infinite value(s); remove or impute "
                             "them before training")
    return arr


def _first_target(ds: Any) -> np.ndarray | None:
    """The targets of a TensorDataset (or Subset of one), or one sample's target, as an array."""
    base = ds.dataset if isinstance(ds, Subset) else ds
    if isinstance(base, TensorDataset) and len(base.tensors) >= 2:
        return base.tensors[1].data
    sample = ds[0]
    if isinstance(sample, tuple | list) and len(sample) >= 2:
        return np.asarray(as_array(sample[1]))
    return None


def _unpack(batch: Any) -> tuple[Tensor, Tensor]:
    if not (isinstance(batch, tuple | list) and len(batch) == 2):
        raise TypeError("training samples must be (input, target) pairs; the dataset gave "
                        f"{type(batch).__name__} batches")
    return batch[0], batch[1]


def _align(out: Any, y: Tensor) -> Tensor:
    """Give float targets of shape (N,) the shape (N, 1) of a single-output model, so the loss
    compares row with row instead of broadcasting to (N, N)."""
    od = getattr(out, "data", None)
    if (od is not None and od.ndim == 2 and od.shape[1] == 1 and y.data.ndim == 1
            and y.data.dtype.kind == "f"):
        return Tensor._make(y.data.reshape(-1, 1))
    return y


def _target_labels(targets: np.ndarray) -> np.ndarray:
    """Class labels from targets: one-hot/probability rows -> argmax, 0/1 floats -> ints."""
    if targets.ndim == 2 and targets.shape[1] > 1:
        return targets.argmax(axis=1)
    flat = targets.reshape(len(targets))
    return flat.astype(np.int64) if flat.dtype.kind == "f" else flat


def _format_logs(logs: dict[str, Any]) -> str:
    parts = [f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
             for k, v in logs.items() if k not in ("epoch", "lr") and v is not None]
    if logs.get("lr") is not None:
        parts.append(f"lr {logs['lr']:.3g}")
    return " - ".join(parts)


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _checkpoint_path(path: str | os.PathLike) -> str | os.PathLike:
    return latest_checkpoint(path) if os.path.isdir(path) else path
