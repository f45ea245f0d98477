"""LeNet-sized training step (two conv + max-pool stages, three linear layers, cross-entropy, SGD)
in chainrule and, if installed, PyTorch CPU: the end-to-end measure of the convolution path.

Both run in one process on the same weights and batch, interleaved (A B A B ...) so machine
noise hits both alike; prints the median time per step and the ratio chainrule / PyTorch.
Both use the same number of threads (NumPy's BLAS and torch.set_num_threads; ``--threads``
pins it before NumPy loads). Idle thread pools are told to sleep soon (OpenBLAS and OpenMP
spin-wait for a long time by default, and a spinning pool of one framework steals the cores of
the other in an interleaved run). ``--keep-heap`` stops glibc returning freed memory to the
OS, which removes thousands of page faults per step (for both frameworks alike).
Usage: python benchmarks/bench_lenet.py [--steps N] [--batch B] [--threads T] [--keep-heap]
[--profile]
"""

from __future__ import annotations

import os
import sys

SPIN_ENV = {"OPENBLAS_THREAD_TIMEOUT": "18", "GOMP_SPINCOUNT": "10000"}  # ~0.1 ms, not ~0.1 s


def _configure_threads(argv: list[str]) -> None:
    """Before NumPy and torch load: pin their thread pools if asked, and shorten idle spinning."""
    for i, a in enumerate(argv):
        value = a.split("=", 1)[1] if a.startswith("--threads=") else (
            argv[i + 1] if a == "--threads" and i + 1 < len(argv) else None)
        if value is not None:
            for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[var] = value
    for var, value in SPIN_ENV.items():
        os.environ.setdefault(var, value)


if __name__ == "__main__":
    _configure_threads(sys.argv)

import argparse  # noqa: E402  (thread pools are configured before NumPy loads its BLAS)
import cProfile  # noqa: E402
import ctypes  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

import chainrule as cr  # noqa: E402
from chainrule.ops.conv import conv2d, max_pool2d  # noqa: E402

LR = 0.01
# (name, shape) of every parameter, in PyTorch's (out, in, ...) layout
SHAPES = [
    ("conv1.w", (6, 1, 5, 5)), ("conv1.b", (6,)),
    ("conv2.w", (16, 6, 5, 5)), ("conv2.b", (16,)),
    ("fc1.w", (120, 256)), ("fc1.b", (120,)),
    ("fc2.w", (84, 120)), ("fc2.b", (84,)),
    ("fc3.w", (10, 84)), ("fc3.b", (10,)),
]


def blas_threads() -> int:
    """Threads NumPy's BLAS uses (threadpoolctl when available, else the usual env vars)."""
    try:
        from threadpoolctl import threadpool_info

        counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
        if counts:
            return int(counts[0])
    except ImportError:
        pass
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return os.cpu_count() or 1


def make_problem(batch: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """PyTorch-default-style uniform(+-1/sqrt(fan_in)) weights, a random image batch and labels."""
    rng = np.random.default_rng(seed)
    params = []
    for name, shape in SHAPES:
        fan_in = int(np.prod(shape[1:])) if name.endswith(".w") else params[-1][0].size
        bound = 1.0 / np.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, shape).astype(np.float32))
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    return params, x, y


def chainrule_sgd_step(ps: list, x: cr.Tensor, rows: np.ndarray, y: np.ndarray) -> cr.Tensor:
    """One LeNet training step on parameters ``ps`` (forward, backward, SGD); returns the loss."""
    h = max_pool2d(conv2d(x, ps[0], ps[1]).relu(), 2)
    h = max_pool2d(conv2d(h, ps[2], ps[3]).relu(), 2)
    h = h.flatten(1)
    h = cr.linear(h, ps[4], ps[5]).relu()
    h = cr.linear(h, ps[6], ps[7]).relu()
    h = cr.linear(h, ps[8], ps[9])
    loss = -h.log_softmax(-1)[rows, y].mean()
    loss.backward()
    with cr.no_grad():
        for p in ps:
            p -= LR * p.grad
            p.grad = None
    return loss


def chainrule_step(params0: list[np.ndarray], x0: np.ndarray, y0: np.ndarray
                   ) -> Callable[[], float]:
    """One SGD step of LeNet in chainrule; returns the loss."""
    ps = [cr.tensor(p.copy(), requires_grad=True) for p in params0]
    x, rows = cr.tensor(x0), np.arange(len(y0))

    def step() -> float:
        return float(chainrule_sgd_step(ps, x, rows, y0).data)

    return step


def torch_step(params0: list[np.ndarray], x0: np.ndarray, y0: np.ndarray) -> Callable[[], float]:
    """The same step in PyTorch."""
    import torch
    import torch.nn.functional as F

    ps = [torch.tensor(p.copy(), requires_grad=True) for p in params0]
    x, y = torch.from_numpy(x0), torch.from_numpy(y0)

    def step() -> float:
        h = F.max_pool2d(F.relu(F.conv2d(x, ps[0], ps[1])), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, ps[2], ps[3])), 2)
        h = h.flatten(1)
        h = F.relu(F.linear(h, ps[4], ps[5]))
        h = F.relu(F.linear(h, ps[6], ps[7]))
        loss = F.cross_entropy(F.linear(h, ps[8], ps[9]), y)
        loss.backward()
        with torch.no_grad():
            for p in ps:
                p -= LR * p.grad
                p.grad = None
        return loss.item()

    return step


def keep_heap() -> bool:
    """Ask glibc to keep freed memory for reuse instead of returning it to the OS (and faulting
    it back in on the next step). Returns False where that is not possible (not glibc)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_trim_threshold, 1 << 30) and libc.mallopt(m_mmap_threshold, 1 << 25))


def page_faults() -> int:
    """Minor page faults of this process so far (0 where resource is unavailable)."""
    try:
        import resource
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def timed(step: Callable[[], float]) -> float:
    t = time.perf_counter()
    step()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200, help="timed steps per framework")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, help="threads for BLAS and torch (default: NumPy's)")
    ap.add_argument("--keep-heap", action="store_true",
                    help="glibc: keep freed memory (no page faults from trimming)")
    ap.add_argument("--profile", action="store_true", help="cProfile the chainrule step")
    args = ap.parse_args()
    heap = "kept (mallopt)" if args.keep_heap and keep_heap() else "glibc default"

    params, x, y = make_problem(args.batch)
    threads = blas_threads()
    steps = {"chainrule": chainrule_step(params, x, y)}
    try:
        import torch

        torch.set_num_threads(threads)
        steps["torch"] = torch_step(params, x, y)
    except ImportError:
        print("PyTorch is not installed: timing chainrule alone")
    print(f"LeNet step, batch {args.batch} of 1x28x28, float32; BLAS/torch threads: {threads}; "
          f"heap: {heap}; " + ", ".join(f"{k}={os.environ[k]}" for k in SPIN_ENV))

    first = {name: step() for name, step in steps.items()}  # also checks both agree
    print("first-step loss: " + ", ".join(f"{n} {v:.6f}" for n, v in first.items()))
    for _ in range(10):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    faults = dict.fromkeys(steps, 0)
    for _ in range(args.steps):
        for name, step in steps.items():
            before = page_faults()
            times[name].append(timed(step))
            faults[name] += page_faults() - before
    med = {name: statistics.median(ts) * 1e3 for name, ts in times.items()}
    for name, m in med.items():
        print(f"{name:>10}: {m:7.3f} ms/step (median of {args.steps}; min "
              f"{min(times[name]) * 1e3:.3f}; {faults[name] / args.steps:.0f} page faults/step)")
    if "torch" in med:
        print(f"     ratio: {med['chainrule'] / med['torch']:.2f}x  (chainrule / PyTorch)")

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(50):
            steps["chainrule"]()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
