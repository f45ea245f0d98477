"""Callbacks that hook into Trainer.fit (early stopping, checkpoints, learning-rate schedules),
and the checkpoint file format they write: one safetensors file per checkpoint.

A checkpoint holds everything needed to continue a run as if it had never stopped: model,
optimizer, scheduler and callback states, RNG states, history and epoch. Arrays are stored as
safetensors tensors; everything else is JSON in the file's metadata, under "checkpoint".
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chainrule.io import LoadError, load, load_metadata, save
from chainrule.tensor import Tensor

if TYPE_CHECKING:
    from chainrule.train.trainer import Trainer

__all__ = [
    "Callback",
    "EarlyStopping",
    "LRSchedulerCallback",
    "ModelCheckpoint",
    "latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "chainrule.Checkpoint"
_NAME = re.compile(r"^checkpoint_epoch(\d+)\.safetensors$")


class Callback:
    """Base class: override the hooks you need. Hooks receive the Trainer, whose ``model``,
    ``optimizer``, ``history``, ``epoch``, ``step`` and ``stop_training`` they may use.

    Callbacks run in ascending ``order`` (checkpoints last, so they see every other callback's
    update of the epoch). A callback with state that must survive a resume implements
    ``state_dict`` / ``load_state_dict``.
    """

    order = 0

    def on_train_begin(self, trainer: Trainer) -> None:
        """Before the first epoch (also when resuming, before the checkpoint is loaded)."""

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        """Before epoch `epoch` (counting from 1)."""

    def on_batch_end(self, trainer: Trainer, step: int) -> None:
        """After each optimizer step; `step` counts steps from 1 over the whole run."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        """After epoch `epoch`; `logs` is its History record (loss, metrics, val_..., lr)."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After the last epoch, or after training was stopped."""

    def state_dict(self) -> dict[str, Any] | None:
        """State to store in checkpoints (None: this callback has none)."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""


class EarlyStopping(Callback):
    """Stop when validation loss has not improved by more than `min_delta` for `patience`
    epochs; with `restore_best_weights`, the model ends with the weights of its best epoch."""

    def __init__(
        self, patience: int = 5, min_delta: float = 0.0, restore_best_weights: bool = True
    ) -> None:
        if patience < 1:
            raise ValueError(f"patience must be at least 1 epoch, got {patience}")
        if min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta}")
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.restore_best_weights = bool(restore_best_weights)
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf
        self.best_epoch: int | None = None
        self.wait = 0
        self.best_weights: dict[str, np.ndarray] | None = None

    def on_train_begin(self, trainer: Trainer) -> None:
        if not trainer.has_validation:
            raise ValueError(
                "EarlyStopping watches the validation loss; pass val_data or val_split to fit"
            )
        self._reset()

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        loss = logs.get("val_loss")
        if loss is not None and loss < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = float(loss), epoch, 0
            if self.restore_best_weights:
                self.best_weights = {
                    k: v.data.copy() for k, v in trainer.model.state_dict().items()
                }
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.stop_training = True
            trainer.history.stopped_epoch = epoch

    def on_train_end(self, trainer: Trainer) -> None:
        last = trainer.history.records[-1]["epoch"] if len(trainer.history) else None
        if self.best_weights is not None and self.best_epoch != last:
            trainer.model.load_state_dict(self.best_weights)
            trainer.history.restored_epoch = self.best_epoch

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "best_weights": self.best_weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self.best_weights = state["wait"], state["best_weights"]


class ModelCheckpoint(Callback):
    """Every `every` epochs, write ``directory/checkpoint_epochNNNN.safetensors`` atomically (a
    crash never leaves a partial file); `keep` limits how many recent ones stay on disk.

    Resume with ``trainer.fit(..., resume_from=directory)`` (the latest) or a file path.
    """

    order = 100

    def __init__(self, directory: str | os.PathLike, every: int = 1, keep: int | None = None):
        if every < 1:
            raise ValueError(f"every must be at least 1 epoch, got {every}")
        if keep is not None and keep < 1:
            raise ValueError(f"keep must be None (keep all) or at least 1, got {keep}")
        self.directory = Path(directory)
        self.every = int(every)
        self.keep = keep
        self.saved: list[Path] = []

    def on_train_begin(self, trainer: Trainer) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        if epoch % self.every:
            return
        path = self.directory / f"checkpoint_epoch{epoch:04d}.safetensors"
        save_checkpoint(path, trainer.state_dict())
        self.saved.append(path)
        if self.keep is not None:
            for old in self.saved[: -self.keep]:
                old.unlink(missing_ok=True)
            self.saved = self.saved[-self.keep :]


class LRSchedulerCallback(Callback):
    """Step a learning-rate scheduler after every epoch (``interval="epoch"``) or optimizer step
    (``"step"``). Schedulers whose ``step`` takes a metric (ReduceLROnPlateau) get the validation
    loss, or the training loss without validation. Its state goes into checkpoints."""

    def __init__(self, scheduler: Any, interval: str = "epoch") -> None:
        if interval not in ("epoch", "step"):
            raise ValueError(f"interval must be 'epoch' or 'step', got {interval!r}")
        self.scheduler = scheduler
        self.interval = interval
        self._takes_metric = _needs_argument(scheduler.step)
        if self._takes_metric and interval == "step":
            raise ValueError(
                f"{type(scheduler).__name__} steps on a metric, which exists once per epoch; "
                "use interval='epoch'"
            )

    def on_batch_end(self, trainer: Trainer, step: int) -> None:
        if self.interval == "step":
            self.scheduler.step()

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        if self.interval != "epoch":
            return
        if self._takes_metric:
            self.scheduler.step(logs.get("val_loss", logs["loss"]))
        else:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)


def _needs_argument(fn: Any) -> bool:
    """True if `fn` has a required positional parameter."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        for p in params
    )


# ---- the checkpoint file format ------------------------------------------------------------


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write a nested state (dicts, lists, tuples, numbers, strings, None, Tensors, arrays,
    NumPy scalars) to one safetensors file, atomically, so that load_checkpoint returns it
    exactly: arrays bit for bit, dtypes and Python types kept."""
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(state, arrays, "")
    meta = {"checkpoint": json.dumps({"format": CHECKPOINT_FORMAT, "version": 1, "state": tree})}
    save(arrays, path, metadata=meta)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a file written by save_checkpoint; LoadError if it is not a chainrule checkpoint."""
    raw = load_metadata(path).get("checkpoint")
    try:
        doc = json.loads(raw) if raw is not None else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise LoadError(
            f"cannot resume from {path}: it is not a chainrule training checkpoint "
            "(ModelCheckpoint writes checkpoint_epochNNNN.safetensors files)"
        )
    return _decode(doc["state"], load(path))


def latest_checkpoint(directory: str | os.PathLike) -> Path:
    """The checkpoint of the highest epoch in `directory`."""
    directory = Path(directory)
    found = sorted(
        (int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))
    ) if directory.is_dir() else []
    if not found:
        raise LoadError(
            f"no checkpoint_epochNNNN.safetensors files in {directory}; pass a checkpoint file "
            "or the directory a ModelCheckpoint wrote to"
        )
    return found[-1][1]


def _encode(obj: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    """`obj` as JSON, with arrays moved into `arrays` under their path and tagged containers."""
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, Tensor | np.ndarray | np.generic):
        key = where or "value"
        while key in arrays:
            key += "'"
        arrays[key] = np.asarray(obj.data if isinstance(obj, Tensor) else obj)
        kind = "tensor" if isinstance(obj, Tensor) else "ndarray" if isinstance(
            obj, np.ndarray) else "scalar"
        return {f"__{kind}__": key}
    if isinstance(obj, list | tuple):
        items = [_encode(v, arrays, _join(where, i)) for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else {"__tuple__": items}
    if isinstance(obj, dict):
        return {"__dict__": [
            [_encode(k, arrays, _join(where, "key")), _encode(v, arrays, _join(where, k))]
            for k, v in obj.items()
        ]}
    raise TypeError(
        f"cannot store {type(obj).__name__} at {where or 'top level'} in a checkpoint; state "
        "dicts may hold only numbers, strings, None, lists, tuples, dicts, Tensors and arrays"
    )


def _join(where: str, key: Any) -> str:
    """Dotted path of a nested entry, used to name its tensor in the file."""
    return f"{where}.{key}" if where else str(key)


def _decode(obj: Any, arrays: dict[str, Tensor]) -> Any:
    """Invert _encode, taking arrays from the loaded tensors."""
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    (tag, value), = obj.items()
    if tag == "__float__":
        return float(value)
    if tag == "__tuple__":
        return tuple(_decode(v, arrays) for v in value)
    if tag == "__dict__":
        return {_decode(k, arrays): _decode(v, arrays) for k, v in value}
    t = arrays[value]
    if tag == "__tensor__":
        return t
    return t.data if tag == "__ndarray__" else t.data[()]
