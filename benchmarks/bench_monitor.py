"""Overhead of the gradient-health monitor: a small MLP training step with and without
``GradientMonitor`` (default interval), run interleaved (A B A B ...); prints the median time per
step of each and their ratio. Each run is one monitoring cycle (``every`` steps, exactly one of
them recorded), so many short interleaved runs make the median robust to a busy machine.
The issue's budget is < 10% at the default interval.
Usage: python benchmarks/bench_monitor.py [--repeats N] [--steps N] [--every K]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

import chainrule as cr
from chainrule import nn, optim
from chainrule.diagnostics import GradientMonitor


def make_step(monitored: bool, every: int) -> Callable[[], None]:
    """One training step of a 64-128-128-10 ReLU MLP (batch 64, cross-entropy, SGD)."""
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                          nn.Linear(128, 10))
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    x = cr.tensor(rng.normal(size=(64, 64)).astype(np.float32))
    y = cr.tensor(rng.integers(0, 10, 64))
    monitor = GradientMonitor(model, every=every) if monitored else None

    def step() -> None:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        if monitor is not None:
            monitor.step()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=301, help="interleaved runs of each")
    parser.add_argument("--every", type=int, default=10, help="monitor interval (default 10)")
    args = parser.parse_args()
    args.steps = args.every
    fns = {"without monitor": make_step(False, args.every),
           "with monitor": make_step(True, args.every)}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():  # warm up
        for _ in range(args.every):
            f()
    for _ in range(args.repeats):
        for name, f in fns.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                f()
            times[name].append((time.perf_counter() - t0) / args.steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"MLP 64-128-128-10 ReLU, batch 64, SGD; monitor every {args.every} steps; "
          f"median of {args.repeats} interleaved runs of {args.steps} steps (one cycle)")
    for name, t in med.items():
        print(f"  {name:16s} {t * 1e6:8.1f} us/step")
    ratio = med["with monitor"] / med["without monitor"]
    print(f"  ratio with/without = {ratio:.3f} (overhead {100 * (ratio - 1):+.1f}%; budget < 10%)")


if __name__ == "__main__":
    main()
