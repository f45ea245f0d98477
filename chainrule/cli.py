"""The `chainrule` command: a demo now; training on CSV files and image folders as it grows."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from . import creation
from ._mode import no_grad


def _demo(args: argparse.Namespace) -> int:
    """Train a 2-2-1 tanh/sigmoid network on XOR by backpropagation and show the loss falling."""
    rng = np.random.default_rng(args.seed)
    x = creation.tensor([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = creation.tensor([[0], [1], [1], [0]], dtype=np.float32)
    w1 = creation.tensor(rng.normal(0, 1, (2, 2)), requires_grad=True)
    b1 = creation.zeros(2, requires_grad=True)
    w2 = creation.tensor(rng.normal(0, 1, (2, 1)), requires_grad=True)
    b2 = creation.zeros(1, requires_grad=True)
    params = [w1, b1, w2, b2]
    print("Training a 2-2-1 network on XOR by backpropagation (lr 0.5, full batch)")
    for epoch in range(args.epochs + 1):
        out = ((x @ w1 + b1).tanh() @ w2 + b2).sigmoid()
        loss = ((out - y) ** 2).mean()
        for p in params:
            p.grad = None
        loss.backward()
        with no_grad():
            for p in params:
                p -= 0.5 * p.grad
        if epoch % (args.epochs // 10) == 0:
            print(f"  epoch {epoch:5d}  loss {loss.item():.5f}")
    pred = out.data.round().astype(int).ravel().tolist()
    print(f"predictions for (0,0) (0,1) (1,0) (1,1): {pred}  (target [0, 1, 1, 0])")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="Train neural networks of arbitrary connectivity by backpropagation.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a small network and show what backpropagation does")
    demo.add_argument("--epochs", type=int, default=2000, help="training epochs (default 2000)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `chainrule` console script."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
