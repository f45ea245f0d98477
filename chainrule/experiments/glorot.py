"""Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural
networks", reproduced on scikit-learn's bundled digits: five hidden layers with sigmoid and
standard-normal initialisation, tanh with the "standard" U[-1/sqrt(n), 1/sqrt(n)] initialisation,
tanh with the normalised (Glorot) initialisation, and softsign (Glorot initialisation).

For each network it logs per-layer activation and back-propagated-gradient statistics at the
start, middle and end of training, the gradient-health warnings, and the final test error, and
saves the plots: activation mean/std and saturation per layer over time, gradient norm per layer,
and the final activation histograms.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import chainrule as cr
from chainrule import nn, optim
from chainrule.data.datasets import load_digits
from chainrule.diagnostics import GradientMonitor, _fmt
from chainrule.experiments import ExperimentResult
from chainrule.nn import init
from chainrule.plots import plot_activation_histograms, plot_gradient_norms, plot_saturation

__all__ = ["CONFIGS", "build_network", "run"]

# key -> (description, activation module, initialisation)
CONFIGS: dict[str, tuple[str, str, str]] = {
    "sigmoid_normal": ("sigmoid, N(0, 1) init", "Sigmoid", "normal"),
    "tanh_standard": ("tanh, standard init", "Tanh", "standard"),
    "tanh_glorot": ("tanh, normalised (Glorot) init", "Tanh", "glorot"),
    "softsign_glorot": ("softsign, Glorot init", "Softsign", "glorot"),
}

_INITS: dict[str, Callable[[Any], Any]] = {
    "normal": lambda w: init.normal(w, 0.0, 1.0),
    # The paper's "standard" initialisation: U[-1/sqrt(fan_in), 1/sqrt(fan_in)].
    "standard": lambda w: init.uniform(w, -1 / math.sqrt(w.shape[1]), 1 / math.sqrt(w.shape[1])),
    "glorot": lambda w: init.glorot_uniform(w),
}


def build_network(
    activation: str, initialisation: str, n_in: int = 64, hidden: int = 64,
    n_out: int = 10, depth: int = 5,
) -> nn.Sequential:
    """``depth`` hidden layers of ``hidden`` units with the named activation module ("Sigmoid",
    "Tanh", "Softsign", "ReLU") and initialisation ("normal", "standard", "glorot"), zero biases;
    layers are named hidden1..hiddenN and output. Seed with ``chainrule.manual_seed`` first."""
    if initialisation not in _INITS:
        raise ValueError(f"initialisation must be one of {sorted(_INITS)}, got {initialisation!r}")
    act = getattr(nn, activation, None)
    if act is None:
        raise ValueError(f"chainrule.nn has no activation module {activation!r}")
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    sizes = [n_in] + [hidden] * depth
    for i in range(depth):
        layers[f"hidden{i + 1}"] = nn.Linear(sizes[i], sizes[i + 1])
        layers[f"act{i + 1}"] = act()
    layers["output"] = nn.Linear(hidden, n_out)
    for module in layers.values():
        if isinstance(module, nn.Linear):
            _INITS[initialisation](module.weight)
            init.zeros(module.bias)
    return nn.Sequential(layers)


def run(
    out_dir: str | Path,
    epochs: int | None = None,
    seed: int = 0,
    quick: bool = False,
    *,
    hidden: int = 100,
    batch_size: int = 16,
    lr: float = 0.05,
    log: Callable[[str], Any] = print,
) -> ExperimentResult:
    """Train the four networks on digits with SGD (20 epochs by default, about 10 s) and return
    their test errors and per-layer statistics; plots go to ``out_dir`` (created if missing).
    ``quick`` trains on a subset for 2 epochs (a few seconds), for tests. Everything is logged
    through ``log``; nothing is printed otherwise."""
    epochs = epochs if epochs is not None else (2 if quick else 20)
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    X, y = load_digits()
    order = np.random.default_rng(seed).permutation(len(X))
    n_test = 360
    test, train = order[:n_test], order[n_test:]
    if quick:
        train, test = train[:400], test[:200]
    steps_per_epoch = math.ceil(len(train) / batch_size)
    every = max(1, steps_per_epoch * epochs // 40)  # about 40 records per network
    log(f"Glorot & Bengio (2010) on digits: {len(train)} training and {len(test)} test images, "
        f"5 hidden layers of {hidden} units, SGD lr={lr}, batch {batch_size}, {epochs} epochs")
    rows, details, plots, warnings_by_label = [], {}, {}, {}
    for key, (label, activation, initialisation) in CONFIGS.items():
        start = time.perf_counter()
        cr.manual_seed(seed)
        model = build_network(activation, initialisation, X.shape[1], hidden, 10)
        monitor = GradientMonitor(model, every=every)
        _train(model, monitor, X[train], y[train], epochs, batch_size, lr, seed)
        monitor.close()
        error = _error(model, X[test], y[test])
        warnings = monitor.check()
        log("")
        log(f"== {label}: test error {error:.1%} ({time.perf_counter() - start:.1f} s)")
        log(_statistics_table(monitor))
        for w in warnings:
            log(f"  warning: {w.message}")
        plots[f"{key}_saturation"] = plot_saturation(
            monitor, out_dir / f"glorot_{key}_saturation.png", title=f"{label}: activations")
        plots[f"{key}_gradients"] = plot_gradient_norms(
            monitor, out_dir / f"glorot_{key}_gradients.png", title=f"{label}: gradients")
        plots[f"{key}_histograms"] = plot_activation_histograms(
            monitor, out_dir / f"glorot_{key}_histograms.png",
            title=f"{label}: activations at the end")
        rows.append(_row(label, error, monitor, warnings))
        warnings_by_label[label] = warnings
        details[key] = {"test_error": error, "monitor": monitor.to_dict()}
    result = ExperimentResult(
        "Glorot & Bengio (2010): activations, gradients and test error of 5-hidden-layer networks",
        ["network", "test error", "dL/dz spread at start", "|dL/dW| in/out",
         "saturated (top hidden)", "warnings"],
        rows, _summary(rows, warnings_by_label), plots, details,
        formats={"test error": ".1%", "saturated (top hidden)": ".0%"},
    )
    log("")
    log(result.table())
    log("")
    log("\n".join(result.summary))
    return result


def _train(model: nn.Module, monitor: GradientMonitor, X: np.ndarray, y: np.ndarray,
           epochs: int, batch_size: int, lr: float, seed: int) -> None:
    """Plain minibatch SGD on cross-entropy, with the monitor stepping after each backward."""
    optimizer = optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for start in range(0, len(X), batch_size):
            batch = order[start:start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(cr.tensor(X[batch])), cr.tensor(y[batch]))
            loss.backward()
            monitor.step()
            optimizer.step()


def _error(model: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of misclassified samples."""
    with cr.no_grad():
        logits = model(cr.tensor(X)).data
    return float(np.mean(np.argmax(logits, axis=1) != y))


def _statistics_table(monitor: GradientMonitor) -> str:
    """Per-layer activation and back-propagated-gradient statistics at the first, middle and
    last record."""
    history = monitor.history
    picks = sorted({0, len(history) // 2, len(history) - 1})
    lines = [f"  {'step':>6} {'layer':<8} {'act mean':>9} {'act std':>8} {'saturated':>9} "
             f"{'dL/dz std':>10} {'|dL/dW|':>9}"]
    for i in picks:
        record = history[i]
        for name in monitor.layers:
            s = record["layers"][name]
            lines.append(
                f"  {record['step']:>6} {name:<8} {_fmt(s['act_mean'], '9.3f')} "
                f"{_fmt(s['act_std'], '8.3f')} {_fmt(s['saturated'], '9.0%')} "
                f"{_fmt(s['backprop_std'], '10.2e')} {_fmt(s['grad_norm'], '9.2e')}"
            )
    return "\n".join(lines)


def _row(label: str, error: float, monitor: GradientMonitor, warnings: list) -> dict[str, Any]:
    """One table row: test error; the spread (max/min) of the back-propagated gradient's std
    across hidden layers at the first record; the input/output weight-gradient-norm ratio
    (geometric mean over training); the top hidden layer's final saturation; warning kinds."""
    layers = monitor.history[0]["layers"]
    names = monitor.layers
    backprop = [layers[n]["backprop_std"] for n in names[:-1] if layers[n]["backprop_std"]]
    ratios = [
        r["layers"][names[0]]["grad_norm"] / r["layers"][names[-1]]["grad_norm"]
        for r in monitor.history
        if r["layers"][names[-1]]["grad_norm"] and r["layers"][names[0]]["grad_norm"]
    ]
    return {
        "network": label,
        "test error": error,
        "dL/dz spread at start": max(backprop) / min(backprop) if backprop else None,
        "|dL/dW| in/out": float(np.exp(np.mean(np.log(ratios)))) if ratios else None,
        "saturated (top hidden)": monitor.history[-1]["layers"][names[-2]]["saturated"],
        "warnings": ", ".join(sorted({w.kind for w in warnings})) or "none",
    }


def _summary(rows: list[dict[str, Any]], warnings: dict[str, list]) -> list[str]:
    """Conclusions drawn from this run, and what the paper leads one to look for."""
    best = min(rows, key=lambda r: r["test error"])
    worst = max(rows, key=lambda r: r["test error"])
    lines = [
        f"Lowest test error: {best['network']} ({best['test error']:.1%}); highest: "
        f"{worst['network']} ({worst['test error']:.1%})."
    ]
    for label, found in warnings.items():
        if found:
            kinds = sorted({w.kind for w in found})
            where = sorted({w.layer for w in found})
            lines.append(f"The monitor warns about {label}: {', '.join(kinds)} "
                         f"({', '.join(where)}).")
    lines.append(
        "What to look for (Glorot & Bengio 2010): with the standard initialisation the "
        "activations shrink from layer to layer and the back-propagated gradients (dL/dz std) "
        "shrink towards the input (a large 'dL/dz spread'); the normalised (Glorot) "
        "initialisation keeps both of similar size across layers. Large N(0, 1) weights drive "
        "sigmoid units into saturation, where they pass almost no gradient."
    )
    return lines
