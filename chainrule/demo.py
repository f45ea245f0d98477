"""``chainrule demo``: backpropagation working, and backpropagation failing, in half a minute.

Part 1 trains a network on scikit-learn's bundled handwritten digits (no download) through the
same code path as ``chainrule train`` and prints the overfitting and gradient-health reports.
Part 2 trains a deep sigmoid network with standard-normal initialisation, the setting Glorot &
Bengio (2010) showed to fail, and lets the gradient monitor say why.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

Log = Callable[[str], None]


def _digits_csv(path: Path) -> Path:
    """The bundled digits as a CSV table: 64 pixel columns and the target column 'digit'."""
    import pandas as pd

    from .data.datasets import load_digits
    from .io import write_text_atomic

    X, y = load_digits()
    df = pd.DataFrame(np.round(X * 16).astype(int), columns=[f"px{i}" for i in range(64)])
    df["digit"] = y
    write_text_atomic(path, df.to_csv(index=False))
    return path


def _deep_network(activation: str, init: str, seed: int) -> object:
    from . import nn
    from ._random import manual_seed

    manual_seed(seed)
    act = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[activation]
    sizes = [64, 64, 64, 64, 64, 64]
    layers: list = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b, init=init), act()]
    return nn.Sequential(*layers, nn.Linear(64, 10, init=init))


def _deep_run(activation: str, init: str, seed: int, out: Path, log: Log) -> None:
    from . import nn, optim, plots
    from .data.datasets import load_digits
    from .diagnostics import GradientMonitor
    from .train import Trainer

    X, y = load_digits()
    model = _deep_network(activation, init, seed)
    monitor = GradientMonitor(model, every=5)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
                      progress=False, verbose=False, seed=seed, monitor=monitor)
    history = trainer.fit((X, y), val_split=0.2, epochs=3, batch_size=32)
    monitor.close()
    acc = history["val_accuracy"][-1]
    log(f"\n5 hidden layers, {activation} + {init} initialisation: validation accuracy "
        f"{acc:.2f} after 3 epochs")
    log(monitor.report())
    out.mkdir(parents=True, exist_ok=True)
    plots.plot_gradient_norms(monitor, out / f"gradient_norms_{activation}_{init}.png")


def run(out: Path, epochs: int = 20, seed: int = 0, progress: bool = True,
        log: Log = print) -> None:
    """Run the demo, writing the model and plots under ``out``."""
    from .workflow import TrainOptions, train

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory; choose --out")
    log("Part 1: a 64-64-10 tanh network learns handwritten digits by backpropagation\n")
    out.mkdir(parents=True, exist_ok=True)
    csv = _digits_csv(out / "digits.csv")
    opts = TrainOptions(target="digit", task="classification", hidden=[64],
                        activation="tanh", epochs=epochs, lr=3e-3, seed=seed,
                        progress=progress, early_stopping=5)
    train(csv, out / "model", opts, log=log)
    log("\nPart 2: the same job for a deep network, with a poor and a good initialisation")
    _deep_run("sigmoid", "normal", seed, out / "deep", log)
    _deep_run("tanh", "glorot_uniform", seed, out / "deep", log)
    log(f"\nEverything is in {os.path.abspath(out)}: model/ (weights, metrics.json, report.txt, "
        "plots/) and deep/ (gradient norms per layer). Try:\n"
        f"  chainrule evaluate {out}/model {out}/digits.csv\n"
        f"  chainrule train YOUR.csv --target COLUMN --out model-dir")
