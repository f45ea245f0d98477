"""Which memory layout makes this machine's BLAS fastest for a Linear layer's product.

chainrule stores the activations of batches of up to ``FEATURE_MAJOR_MAX_ROWS`` rows
feature-major (chainrule.ops.linalg; a batch-major input only into ``FEATURE_MAJOR_MIN_OUT`` or
more outputs): the forward product is ``(W @ x.T).T`` instead of
``x @ W.T``. This script times the forward product y = x @ W.T both ways (x as given, C-ordered,
and x feature-major as a previous layer leaves it) over a range of shapes, so the rule can be
checked on another CPU or BLAS. Same products, same results; only the time differs.

Usage: python benchmarks/bench_layout.py [--threads N]
"""

from __future__ import annotations

import argparse
import os
import sys


def _pin(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


if __name__ == "__main__":
    _pin(int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1)

import timeit  # noqa: E402

import numpy as np  # noqa: E402

from chainrule.ops.linalg import FEATURE_MAJOR_MAX_ROWS, FEATURE_MAJOR_MIN_OUT  # noqa: E402

SHAPES = [  # (batch rows N, in features K, out features M)
    (32, 64, 64), (32, 64, 10), (64, 256, 256), (128, 784, 512), (128, 512, 512), (128, 512, 10),
    (256, 1024, 1024), (512, 100, 100), (1024, 512, 512),
]


def best_us(f, flops: float) -> float:
    """Best of 5 repeats, in microseconds per call (about 0.1 s of work per repeat)."""
    number = max(3, int(2e8 / flops))
    return min(timeit.repeat(f, number=number, repeat=5)) / number * 1e6


def both_layouts(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Microseconds for x @ w.T into a batch-major result, and as (w @ x.T).T (feature-major)."""
    out, out_t = np.empty((x.shape[0], w.shape[0]), x.dtype), np.empty((w.shape[0], x.shape[0]),
                                                                         x.dtype)
    flops = 2.0 * x.size * w.shape[0]
    return (best_us(lambda: np.matmul(x, w.T, out=out), flops),
            best_us(lambda: np.matmul(w, x.T, out=out_t), flops))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads")
    ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"chainrule goes feature-major for N <= {FEATURE_MAJOR_MAX_ROWS} rows, from a C input "
          f"only into M >= {FEATURE_MAJOR_MIN_OUT} outputs. Time per product, and "
          "batch-major / feature-major (above 1: feature-major is faster):")
    print(f"{'N':>5} {'K':>5} {'M':>5} | {'x C: x@W.T':>11} {'(W@x.T).T':>10} {'ratio':>6} | "
          f"{'x F: x@W.T':>11} {'(W@x.T).T':>10} {'ratio':>6}")
    for n, k, m in SHAPES:
        x = rng.standard_normal((n, k)).astype(np.float32)
        w = rng.standard_normal((m, k)).astype(np.float32)
        row = []
        for xs in (x, np.asfortranarray(x)):
            bm, fm = both_layouts(xs, w)
            row += [f"{bm:9.1f}us", f"{fm:8.1f}us", f"{bm / fm:6.2f}"]
        print(f"{n:5d} {k:5d} {m:5d} | {row[0]:>11} {row[1]:>10} {row[2]:>6} | "
              f"{row[3]:>11} {row[4]:>10} {row[5]:>6}")


if __name__ == "__main__":
    main()
