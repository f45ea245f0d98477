"""PNG plots of training: learning curves, per-layer gradient norms, activation histograms and
saturation, and decision boundaries of 2-D classifiers.

Headless and side-effect free: figures are drawn on matplotlib's Agg canvas directly (no pyplot,
no global backend switch), and every PNG is written atomically. Each function returns the path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .data.errors import optional_import
from .diagnostics import GradientMonitor, records_series
from .io import atomic_open

__all__ = [
    "plot_learning_curves", "plot_gradient_norms", "plot_activation_histograms",
    "plot_saturation", "plot_decision_boundaries",
]

PathLike = str | os.PathLike

# A decision-boundary panel: (title, predict(X) -> labels, X (n, 2), y (n,)).
Panel = tuple[str, Callable[[np.ndarray], Any], Any, Any]


def plot_learning_curves(history: Any, path: PathLike, title: str = "Learning curves") -> Path:
    """Train and validation loss, and each metric, per epoch; the best epoch (lowest validation
    loss) is marked. ``history`` is a Trainer History, its ``to_dict()``, a list of per-epoch
    dicts, or a dict of columns (``loss``/``train_loss``, ``val_loss``, ``accuracy``/
    ``train_accuracy``, ``val_accuracy``, ...)."""
    columns = _history_columns(history)
    epochs = columns.pop("epoch", None) or list(range(1, len(next(iter(columns.values()))) + 1))
    names = [k for k in columns if not k.startswith("val_") and k != "lr"]
    names += [k[4:] for k in columns if k.startswith("val_") and k[4:] not in names]
    if "loss" not in names:
        raise ValueError(
            f"history has no loss to plot; it has: {', '.join(columns) or 'nothing'}"
        )
    names.remove("loss")
    names.insert(0, "loss")
    fig, axes = _figure(1, len(names), width=4.2, height=3.4)
    best = _best_epoch(epochs, columns.get("val_loss"))
    for ax, name in zip(axes.flat, names, strict=True):
        for key, label, style in ((name, "train", "-"), ("val_" + name, "validation", "--")):
            if key in columns:
                ax.plot(epochs, _floats(columns[key]), style, marker=".", label=label)
        if best is not None:
            ax.axvline(best, color="grey", linestyle=":", label=f"best epoch ({best})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title)
    return _save(fig, path)


def plot_gradient_norms(
    source: Any, path: PathLike, title: str = "Gradient norm per layer"
) -> Path:
    """Per-layer weight-gradient norm over training (log scale) and, when recorded, the
    update-to-weight ratio. ``source`` is a GradientMonitor, its ``to_dict()``, or its
    ``history`` list."""
    layers, records, _ = _monitor_records(source)
    steps, norms = records_series(records, layers, "grad_norm")
    _, ratios = records_series(records, layers, "update_ratio")
    has_ratios = any(np.isfinite(v).any() for v in ratios.values())
    fig, axes = _figure(1, 2 if has_ratios else 1, width=5.0, height=3.6)
    panels = [(axes.flat[0], norms, "gradient norm |dL/dW|")]
    if has_ratios:
        panels.append((axes.flat[1], ratios, "update / weight  |ΔW| / |W|"))
    for ax, series, label in panels:
        for i, (name, values) in enumerate(series.items()):
            ax.plot(steps, _positive(values), color=_colour(i, len(series)), label=name)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    axes.flat[0].legend(fontsize="small", title="layer (input first)")
    fig.suptitle(title)
    return _save(fig, path)


def plot_activation_histograms(
    source: GradientMonitor | Mapping[str, Any], path: PathLike,
    title: str = "Activations per layer (latest record)",
) -> Path:
    """One histogram per layer of its activated outputs at the latest recording step.
    ``source`` is a GradientMonitor or a dict {layer name: array of activations}."""
    if isinstance(source, GradientMonitor):
        latest = source.samples
        samples = {n: latest[n] for n in source.layers if n in latest}
        kinds = source.kinds
    elif isinstance(source, Mapping):
        samples, kinds = {n: np.asarray(v) for n, v in source.items()}, {}
    else:
        raise TypeError(
            f"plot_activation_histograms needs a GradientMonitor or a dict of arrays, "
            f"got {type(source).__name__}"
        )
    if not samples:
        raise ValueError("no activations recorded yet; run a training step with the monitor first")
    ncols = min(len(samples), 4)
    nrows = math.ceil(len(samples) / ncols)
    fig, axes = _figure(nrows, ncols, width=3.0, height=2.5)
    for i, (ax, (name, values)) in enumerate(zip(axes.flat, samples.items(), strict=False)):
        values = np.asarray(values, dtype=np.float64).ravel()
        values = values[np.isfinite(values)]
        ax.hist(values, bins=50, color=_colour(i, len(samples)))
        kind = kinds.get(name)
        ax.set_title(f"{name} ({kind})" if kind else name, fontsize="medium")
        ax.set_yticks([])
    for ax in list(axes.flat)[len(samples):]:
        ax.set_visible(False)
    fig.suptitle(title)
    return _save(fig, path)


def plot_saturation(
    source: Any, path: PathLike, title: str = "Activations per layer over training"
) -> Path:
    """Per layer over training: activation mean with a ±1 std band, and the fraction of
    saturated outputs (sigmoid/tanh/softsign layers) or dead units (ReLU layers). Layers without
    an activation (e.g. the output layer) are left out when the kinds are known.
    ``source`` is a GradientMonitor, its ``to_dict()``, or its ``history`` list."""
    layers, records, kinds = _monitor_records(source)
    layers = [n for n in layers if kinds.get(n) != "linear"] or layers
    steps, means = records_series(records, layers, "act_mean")
    _, stds = records_series(records, layers, "act_std")
    _, saturated = records_series(records, layers, "saturated")
    _, dead = records_series(records, layers, "dead")
    fig, axes = _figure(1, 2, width=5.0, height=3.6)
    ax_mean, ax_frac = axes.flat
    for i, name in enumerate(layers):
        colour = _colour(i, len(layers))
        m, s = np.asarray(means[name]), np.asarray(stds[name])
        ax_mean.plot(steps, m, color=colour, label=name)
        ax_mean.fill_between(steps, m - s, m + s, color=colour, alpha=0.15)
        if np.isfinite(saturated[name]).any():
            ax_frac.plot(steps, saturated[name], color=colour, label=f"{name} saturated")
        if np.isfinite(dead[name]).any():
            ax_frac.plot(steps, dead[name], "--", color=colour, label=f"{name} dead")
    ax_mean.set_ylabel("activation mean ± std")
    ax_frac.set_ylabel("fraction saturated / dead")
    ax_frac.set_ylim(-0.02, 1.02)
    for ax in (ax_mean, ax_frac):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    ax_mean.legend(fontsize="small", title="layer (input first)")
    if ax_frac.lines:
        ax_frac.legend(fontsize="small")
    fig.suptitle(title)
    return _save(fig, path)


def plot_decision_boundaries(
    panels: Sequence[Panel], path: PathLike, ncols: int | None = None,
    title: str = "Decision boundaries", resolution: int = 200,
) -> Path:
    """A grid of 2-D classifiers: each panel ``(title, predict, X, y)`` shades the class
    ``predict`` gives at every point of the plane around ``X`` and draws the points coloured
    by ``y``. ``ncols`` defaults to one row."""
    if not panels:
        raise ValueError("plot_decision_boundaries needs at least one (title, predict, X, y) panel")
    ncols = ncols or len(panels)
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = _figure(nrows, ncols, width=3.2, height=3.0)
    for ax, (name, predict, X, y) in zip(axes.flat, panels, strict=False):
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
        if X.ndim != 2 or X.shape[1] != 2:
            raise ValueError(f"panel {name!r}: X must have shape (n, 2), got {X.shape}")
        lo, hi = X.min(0), X.max(0)
        pad = 0.15 * np.maximum(hi - lo, 1e-6)
        gx, gy = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution),
                             np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution))
        grid = np.column_stack([gx.ravel(), gy.ravel()])
        z = np.asarray(predict(grid), dtype=np.float64).reshape(gx.shape)
        ax.contourf(gx, gy, z, levels=np.unique(np.concatenate([z.ravel(), y])).size,
                    cmap="coolwarm", alpha=0.3)
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap="coolwarm", s=10, edgecolors="k", linewidths=0.3)
        ax.set_title(name, fontsize="medium")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title)
    return _save(fig, path)


# -- helpers ----------------------------------------------------------------------------------
def _figure(nrows: int, ncols: int, width: float, height: float) -> tuple[Any, np.ndarray]:
    """A Figure on an Agg canvas (never touches pyplot's global state) and its axes grid."""
    figure = optional_import("matplotlib.figure", "matplotlib")
    agg = optional_import("matplotlib.backends.backend_agg", "matplotlib")
    fig = figure.Figure(figsize=(width * ncols, height * nrows + 0.4), layout="constrained")
    agg.FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig: Any, path: PathLike) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically (creating the parent directory)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plots are PNG files; give a path ending in .png, not {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    return path


def _history_columns(history: Any) -> dict[str, list[Any]]:
    """Columns {name: per-epoch values} from a History, its to_dict(), records or columns,
    with ``train_X`` renamed to ``X``."""
    if hasattr(history, "records"):
        history = history.records
    elif isinstance(history, Mapping) and "records" in history:
        history = history["records"]
    if isinstance(history, Mapping):
        columns = {k: list(v) for k, v in history.items()
                   if isinstance(v, Sequence) and not isinstance(v, str)}
    elif isinstance(history, Sequence) and all(isinstance(r, Mapping) for r in history):
        keys = list(dict.fromkeys(k for r in history for k in r))
        columns = {k: [r.get(k) for r in history] for k in keys}
    else:
        raise TypeError(
            "history must be a History, its to_dict(), a list of per-epoch dicts or a dict of "
            f"columns, got {type(history).__name__}"
        )
    if not columns or not any(columns.values()):
        raise ValueError("history is empty; train for at least one epoch first")
    return {k.removeprefix("train_"): v for k, v in columns.items()}


def _monitor_records(
    source: Any,
) -> tuple[list[str], list[Mapping[str, Any]], Mapping[str, str]]:
    """Layer names, records and activation kinds (if known) from a GradientMonitor, its
    to_dict(), or its history list."""
    kinds: Mapping[str, str] = {}
    if isinstance(source, GradientMonitor):
        layers, records, kinds = source.layers, source.history, source.kinds
    elif isinstance(source, Mapping) and "records" in source:
        records, kinds = source["records"], source.get("kinds", {})
        layers = source.get("layers") or (list(records[0]["layers"]) if records else [])
    elif isinstance(source, Sequence) and all(isinstance(r, Mapping) for r in source):
        records = source
        layers = list(records[0]["layers"]) if records else []
    else:
        raise TypeError(
            "expected a GradientMonitor, its to_dict() or its history, "
            f"got {type(source).__name__}"
        )
    if not records:
        raise ValueError("the monitor has no records yet; call monitor.step() after backward")
    return list(layers), list(records), kinds


def _best_epoch(epochs: Sequence[Any], val_loss: Sequence[Any] | None) -> Any:
    """The epoch with the lowest finite validation loss, or None."""
    if not val_loss:
        return None
    values = _floats(val_loss)
    if not np.isfinite(values).any():
        return None
    return epochs[int(np.nanargmin(values))]


def _floats(values: Sequence[Any]) -> np.ndarray:
    """Values as floats, None as NaN."""
    return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)


def _positive(values: Sequence[float]) -> np.ndarray:
    """Values with non-positive and non-finite entries masked (NaN), for a log axis."""
    a = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(a) & (a > 0), a, np.nan)


def _colour(i: int, n: int) -> Any:
    """Colour of layer ``i`` of ``n``: input layers dark, output layers light (viridis)."""
    cmaps = optional_import("matplotlib", "matplotlib").colormaps
    return cmaps["viridis"](0.85 * i / max(n - 1, 1))
