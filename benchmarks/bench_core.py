"""Micro-benchmark of the engine: per-op overhead and a small MLP step, side by side.

Runs chainrule and, where installed, PyTorch and HIPS autograd in the same process, interleaved
(A B A B ...), and prints the median time of each and chainrule's ratio to each peer.
Usage: python benchmarks/bench_core.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

import chainrule as cr


def _chain_chainrule(x0: np.ndarray) -> Callable[[], None]:
    x = cr.tensor(x0, requires_grad=True)

    def step() -> None:
        y = x
        for _ in range(20):
            y = (y * 1.01 + 0.1).tanh()
        y.sum().backward()
        x.grad = None

    return step


def _chain_torch(x0: np.ndarray) -> Callable[[], None]:
    import torch

    x = torch.tensor(x0, requires_grad=True)

    def step() -> None:
        y = x
        for _ in range(20):
            y = torch.tanh(y * 1.01 + 0.1)
        y.sum().backward()
        x.grad = None

    return step


def _chain_autograd(x0: np.ndarray) -> Callable[[], None]:
    import autograd
    import autograd.numpy as anp

    def f(x: np.ndarray) -> float:
        for _ in range(20):
            x = anp.tanh(x * 1.01 + 0.1)
        return anp.sum(x)

    g = autograd.grad(f)
    return lambda: g(x0)


def _mlp_weights(sizes: list[int], seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        (rng.normal(0, 1 / np.sqrt(a), (b, a)).astype(np.float32), np.zeros(b, np.float32))
        for a, b in zip(sizes[:-1], sizes[1:], strict=True)
    ]


def _mlp_chainrule(ws: list, x0: np.ndarray, y0: np.ndarray) -> Callable[[], None]:
    params = [(cr.tensor(w, requires_grad=True), cr.tensor(b, requires_grad=True)) for w, b in ws]
    flat = [p for pair in params for p in pair]
    x = cr.tensor(x0)

    def step() -> None:
        h = x
        for i, (w, b) in enumerate(params):
            h = cr.linear(h, w, b)
            if i < len(params) - 1:
                h = h.tanh()
        loss = (h.log_softmax(-1)[np.arange(len(y0)), y0]).mean() * -1.0
        for p in flat:
            p.grad = None
        loss.backward()
        with cr.no_grad():
            for p in flat:
                p -= 0.01 * p.grad

    return step


def _mlp_torch(ws: list, x0: np.ndarray, y0: np.ndarray) -> Callable[[], None]:
    import torch

    params = [
        (torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)) for w, b in ws
    ]
    flat = [p for pair in params for p in pair]
    x, y = torch.tensor(x0), torch.tensor(y0)

    def step() -> None:
        h = x
        for i, (w, b) in enumerate(params):
            h = torch.nn.functional.linear(h, w, b)
            if i < len(params) - 1:
                h = torch.tanh(h)
        loss = torch.nn.functional.cross_entropy(h, y)
        for p in flat:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in flat:
                p -= 0.01 * p.grad

    return step


def _mlp_autograd(ws: list, x0: np.ndarray, y0: np.ndarray) -> Callable[[], None]:
    import autograd
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp

    params = [[w.copy(), b.copy()] for w, b in ws]

    def loss(ps: list) -> float:
        h = x0
        for i, (w, b) in enumerate(ps):
            h = anp.dot(h, w.T) + b
            if i < len(ps) - 1:
                h = anp.tanh(h)
        logp = h - logsumexp(h, axis=1, keepdims=True)
        return -anp.mean(logp[np.arange(len(y0)), y0])

    g = autograd.grad(loss)

    def step() -> None:
        grads = g(params)
        for p, gp in zip(params, grads, strict=True):
            p[0] -= 0.01 * gp[0]
            p[1] -= 0.01 * gp[1]

    return step


def _peers(builders: dict[str, Callable[[], Callable[[], None]]]) -> dict[str, Callable[[], None]]:
    out = {}
    for name, build in builders.items():
        try:
            out[name] = build()
        except ImportError:
            print(f"  ({name} not installed: skipped)")
    return out


def run(fns: dict[str, Callable[[], None]], repeats: int, inner: int) -> dict[str, float]:
    """Median seconds per call of each function, measured interleaved."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():
        f()
    for _ in range(repeats):
        for name, f in fns.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                f()
            times[name].append((time.perf_counter() - t0) / inner)
    return {k: statistics.median(v) for k, v in times.items()}


def report(title: str, med: dict[str, float]) -> None:
    base = med["chainrule"]
    print(f"\n{title}")
    for name, t in med.items():
        ratio = "" if name == "chainrule" else f"   chainrule/{name} = {base / t:.2f}x"
        print(f"  {name:10s} {t * 1e6:9.1f} us{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(32, 64)).astype(np.float32)
    chain = _peers({
        "chainrule": lambda: _chain_chainrule(x0),
        "torch": lambda: _chain_torch(x0),
        "autograd": lambda: _chain_autograd(x0),
    })
    report("chain of 60 small elementwise ops (32x64), forward + backward",
           run(chain, args.repeats, 50))
    ws = _mlp_weights([64, 64, 64, 10])
    y0 = rng.integers(0, 10, 32)
    mlp = _peers({
        "chainrule": lambda: _mlp_chainrule(ws, x0, y0),
        "torch": lambda: _mlp_torch(ws, x0, y0),
        "autograd": lambda: _mlp_autograd(ws, x0, y0),
    })
    report("small MLP step 64-64-64-10, batch 32, tanh, cross-entropy, SGD",
           run(mlp, args.repeats, 50))
    print("\n(torch pinned to 1 thread; ratios < 1 mean chainrule is faster)")


if __name__ == "__main__":
    main()
