"""Reproducible experiments from the history of backpropagation, run by ``chainrule experiment``:
``glorot`` (Glorot & Bengio 2010, saturation and initialisation) and ``rules`` (perceptron vs
Widrow-Hoff vs backpropagation). Each module exposes ``run(out_dir, ...) -> ExperimentResult``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ExperimentResult"]


@dataclass
class ExperimentResult:
    """What an experiment found: a table (``columns`` and ``rows``), a few lines of conclusion,
    the plots it wrote, and raw per-run data for further analysis."""

    title: str
    columns: list[str]
    rows: list[dict[str, Any]]
    summary: list[str] = field(default_factory=list)
    plots: dict[str, Path] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)  # column -> format spec, e.g. ".1%"

    def table(self) -> str:
        """The rows as an aligned text table (numbers to 3 significant digits unless the column
        has a format in ``formats``)."""
        cells = [[_cell(row.get(c), self.formats.get(c, ".3g")) for c in self.columns]
                 for row in self.rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(self.columns)]
        lines = [self.columns, ["-" * w for w in widths], *cells]
        return "\n".join(
            "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
            for line in lines
        )

    def __str__(self) -> str:
        parts = [self.title, "", self.table()]
        if self.summary:
            parts += [""] + self.summary
        if self.plots:
            parts += ["", "plots:"] + [f"  {p}" for p in self.plots.values()]
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: title, columns, rows, summary and plot paths (no details)."""
        return {
            "title": self.title,
            "columns": self.columns,
            "rows": [{k: _jsonable(v) for k, v in r.items()} for r in self.rows],
            "summary": self.summary,
            "plots": {k: str(p) for k, p in self.plots.items()},
        }


def _cell(v: Any, spec: str) -> str:
    """A table cell: numbers formatted with ``spec``, None as '-'."""
    if v is None:
        return "-"
    if isinstance(v, float | int) and not isinstance(v, bool):
        return format(v, spec)
    return str(v)


def _jsonable(v: Any) -> Any:
    """Non-finite floats become None (standard JSON has no NaN/Inf)."""
    return None if isinstance(v, float) and not math.isfinite(v) else v
