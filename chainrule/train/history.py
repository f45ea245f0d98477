"""History: what happened in each epoch of training (losses, metrics, learning rate), the best
epoch, and why training stopped; saved as JSON next to a model."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from chainrule.io import json_safe, write_json_atomic

__all__ = ["History"]

FORMAT = "chainrule.History"


class History:
    """Per-epoch records of a training run, as returned by ``Trainer.fit``.

    ``history.records`` is a list of dicts ``{"epoch": 1, "loss": ..., "accuracy": ...,
    "val_loss": ..., "val_accuracy": ..., "lr": ...}`` (epochs count from 1);
    ``history["val_loss"]`` is one such column as a list, as Keras's ``history.history``.
    ``loss`` is always the mean data loss (without any prior term), so train and validation
    values are comparable.
    """

    def __init__(self, records: list[dict[str, Any]] | None = None) -> None:
        self.records: list[dict[str, Any]] = [dict(r) for r in records or []]
        self.stopped_epoch: int | None = None  # set when a callback stopped training early
        self.restored_epoch: int | None = None  # epoch whose weights were restored at the end
        self.stop_reason: str | None = None  # why training stopped before the last epoch

    def append(self, record: dict[str, Any]) -> None:
        """Add the record of one finished epoch."""
        self.records.append(dict(record))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: str) -> list[Any]:
        if not any(key in r for r in self.records):
            raise KeyError(f"history has no {key!r}; it has: {', '.join(self.keys()) or 'nothing'}")
        return [r.get(key) for r in self.records]

    def __contains__(self, key: object) -> bool:
        return any(key in r for r in self.records)

    def keys(self) -> list[str]:
        """Column names in first-seen order (epoch, loss, metrics, val_..., lr)."""
        seen: dict[str, None] = {}
        for r in self.records:
            seen.update(dict.fromkeys(r))
        return list(seen)

    @property
    def history(self) -> dict[str, list[Any]]:
        """Columns as a dict of lists (Keras's ``History.history``)."""
        return {k: self[k] for k in self.keys()}

    @property
    def monitor(self) -> str | None:
        """The loss that picks the best epoch: 'val_loss' if recorded, else 'loss'."""
        if "val_loss" in self:
            return "val_loss"
        return "loss" if "loss" in self else None

    @property
    def best_epoch(self) -> int | None:
        """The epoch with the lowest validation loss (training loss without validation)."""
        key = self.monitor
        if key is None:
            return None
        finite = [(r[key], r["epoch"]) for r in self.records if _finite(r.get(key))]
        return min(finite)[1] if finite else None

    def record(self, epoch: int) -> dict[str, Any]:
        """The record of epoch `epoch` (counting from 1)."""
        for r in self.records:
            if r["epoch"] == epoch:
                return r
        raise KeyError(f"no record for epoch {epoch}; history has epochs 1..{len(self)}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (see from_dict)."""
        return {
            "format": FORMAT,
            "records": [json_safe(r) for r in self.records],
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
            "restored_epoch": self.restored_epoch,
            "stop_reason": self.stop_reason,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        """Rebuild a History from to_dict() output."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError("not a saved History; pass the dict made by History.to_dict()")
        h = cls(d["records"])
        h.stopped_epoch = d.get("stopped_epoch")
        h.restored_epoch = d.get("restored_epoch")
        h.stop_reason = d.get("stop_reason")
        return h

    def save(self, path: str | os.PathLike) -> None:
        """Write the history as JSON to `path`, atomically."""
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> History:
        """Read a history written by `save`."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def __repr__(self) -> str:
        return f"History({len(self)} epochs, keys={self.keys()}, best_epoch={self.best_epoch})"


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


