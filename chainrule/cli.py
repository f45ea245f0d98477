"""The ``chainrule`` command: demo, train, evaluate, predict and the two experiments.

Every failure the user can cause (a missing file, a wrong column, a corrupt model directory)
ends with one line on stderr and a non-zero exit code, never a traceback; set
CHAINRULE_DEBUG=1 to see the traceback anyway.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .data.errors import DataError
from .io import LoadError


class _UsageError(Exception):
    """A bad command line; main() reports it in one line instead of argparse's usage block."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors name the subcommand in one line and do not exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{message} (see `{self.prog} --help`)")


def _hidden(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes sizes like 64,32, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"--hidden sizes must be positive, got {text!r}")
    return sizes


def _number(kind: type, accept: Callable[[Any], bool], expected: str) -> Callable[[str], Any]:
    """An argparse type: ``kind(text)`` if that parses and ``accept`` takes it, else a one-line
    usage error "expected EXPECTED, got TEXT"."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_non_negative_float = _number(float, lambda v: 0 <= v < math.inf, "a number >= 0")
_fraction = _number(float, lambda v: 0 < v < 1, "a number between 0 and 1")
_positive_float = _number(float, lambda v: 0 < v < math.inf, "a positive number")


@contextlib.contextmanager
def _removed_on_failure(out: Path) -> Iterator[None]:
    """Remove ``out`` if the block fails and ``out`` did not exist before it."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory; choose another --out")
    existed = out.exists()
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(out, ignore_errors=True)
        raise


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run

    out = Path(args.out)
    with _removed_on_failure(out):
        run(out, epochs=args.epochs, seed=args.seed, progress=not args.quiet)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .workflow import TrainOptions, train

    opts = TrainOptions(
        target=args.target, task=args.task, hidden=args.hidden, activation=args.activation,
        init=args.init, optimizer=args.optimizer, lr=args.lr, epochs=args.epochs,
        batch_size=args.batch_size, prior=args.prior, weight_decay=args.weight_decay,
        early_stopping=args.early_stopping, seed=args.seed, val_fraction=args.val_fraction,
        image_size=args.image_size, grayscale=args.grayscale, progress=not args.quiet,
    )
    train(args.data, args.out, opts)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .workflow import evaluate

    result = evaluate(args.model_dir, args.data)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['n']} samples, task {result['task']}")
        for k, v in result.items():
            if k not in ("n", "task"):
                print(f"  {k:10s} " + ("n/a" if v is None else f"{v:.4f}"))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .workflow import predict

    text = predict(args.model_dir, args.data, args.output)
    if args.output is None:
        sys.stdout.write(text)
    else:
        print(f"predictions written to {args.output}", file=sys.stderr)
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    if args.name == "glorot":
        from .experiments import glorot as experiment
    else:
        from .experiments import rules as experiment
    out = Path(args.out or f"chainrule-{args.name}")
    with _removed_on_failure(out):
        experiment.run(out, seed=args.seed, quick=args.quick)  # logs its table and findings
    print(f"plots written to {out}/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``chainrule`` command (every subcommand has --help)."""
    parser = _Parser(
        prog="chainrule",
        description="Train neural networks of arbitrary connectivity by backpropagation.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="train on a bundled dataset; show reports and plots",
                          description="Train on scikit-learn's bundled digits (no download), "
                          "print the overfitting and gradient-health reports, then show what "
                          "the monitor says about a deep sigmoid network with standard-normal "
                          "initialisation. Writes plots and says where they are.")
    demo.add_argument("--out", default="chainrule-demo", help="output directory (default "
                      "./chainrule-demo)")
    demo.add_argument("--epochs", type=_positive_int, default=20, help="epochs (default 20)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=cmd_demo)

    tr = sub.add_parser("train", help="train on a CSV/Parquet file or an image folder",
                        description="Train a network on DATA: a CSV/Parquet table (with "
                        "--target) or a folder with one subfolder of images per class.")
    tr.add_argument("data", help="CSV/Parquet file, or image folder (one subfolder per class)")
    tr.add_argument("--target", help="column to predict (tables)")
    tr.add_argument("--task", choices=["classification", "regression"],
                    help="override the detected task")
    tr.add_argument("--hidden", type=_hidden, default=[64, 32],
                    help="hidden layer sizes (default 64,32)")
    tr.add_argument("--activation", default="relu",
                    help="relu, tanh, sigmoid, softsign, elu, gelu, leaky_relu (default relu)")
    tr.add_argument("--init", default="glorot_uniform", help="weight initialiser (default "
                    "glorot_uniform; also glorot_normal, he_uniform, he_normal, lecun_normal, "
                    "orthogonal, normal, uniform)")
    tr.add_argument("--optimizer", default="adam",
                    help="adam, adamw, sgd, rmsprop, adagrad (default adam)")
    tr.add_argument("--lr", type=_positive_float, default=1e-3, help="learning rate (1e-3)")
    tr.add_argument("--epochs", type=_positive_int, default=30, help="epochs (default 30)")
    tr.add_argument("--batch-size", type=_positive_int, default=32, help="batch size (32)")
    reg = tr.add_mutually_exclusive_group()
    reg.add_argument("--prior", help="weight prior for MAP training: gaussian:SCALE or "
                     "laplace:SCALE")
    reg.add_argument("--weight-decay", type=_non_negative_float, default=0.0,
                     help="L2 weight decay (0)")
    tr.add_argument("--early-stopping", type=_positive_int, metavar="PATIENCE",
                    help="stop when validation loss has not improved for PATIENCE epochs")
    tr.add_argument("--val-fraction", type=_fraction, default=0.2,
                    help="fraction held out for validation (0.2)")
    tr.add_argument("--image-size", type=_positive_int, default=32,
                    help="images are resized to SIZE x SIZE (32)")
    tr.add_argument("--grayscale", action="store_true", help="read images as grayscale")
    tr.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    tr.add_argument("--quiet", action="store_true", help="no progress bars")
    tr.add_argument("--out", required=True, help="directory to write the model and reports to")
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="metrics of a trained model on new labelled data")
    ev.add_argument("model_dir", help="a directory written by `chainrule train`")
    ev.add_argument("data", help="labelled data in the same form as the training data")
    ev.add_argument("--json", action="store_true", help="print the metrics as JSON")
    ev.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("predict", help="predictions of a trained model for new data")
    pr.add_argument("model_dir", help="a directory written by `chainrule train`")
    pr.add_argument("data", help="a table (target column optional) or images / image folder")
    pr.add_argument("-o", "--output", help="CSV file to write (default: standard output)")
    pr.set_defaults(func=cmd_predict)

    ex = sub.add_parser("experiment", help="reproduce a classic result",
                        description="glorot: Glorot & Bengio (2010), activations and gradients "
                        "of deep networks under different activations and initialisations. "
                        "rules: perceptron vs Widrow-Hoff vs backpropagation.")
    ex.add_argument("name", choices=["glorot", "rules"])
    ex.add_argument("--out", help="output directory (default ./chainrule-NAME)")
    ex.add_argument("--quick", action="store_true",
                    help="a small subset and few epochs: seconds instead of minutes")
    ex.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ex.set_defaults(func=cmd_experiment)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chainrule`` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except _UsageError as e:
        return _fail(str(e), 2)
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return args.func(args)
        except KeyboardInterrupt:
            return _fail("interrupted", 130)
        except (DataError, LoadError, ValueError, TypeError, OSError, ImportError,
                RuntimeError) as e:
            if os.environ.get("CHAINRULE_DEBUG"):
                raise
            return _fail(str(e) or type(e).__name__, 1)


def _fail(message: str, status: int) -> int:
    """Print ``chainrule: error: MESSAGE`` (its first line) on stderr; return ``status``."""
    print(f"chainrule: error: {message.strip().splitlines()[0]}", file=sys.stderr)
    return status


def _show_warning(message: Warning | str, category: type[Warning], *args: object,
                  **kwargs: object) -> None:
    """Warnings as one ``chainrule: warning:`` line, without file names and source lines."""
    print(f"chainrule: warning: {str(message).strip().splitlines()[0]}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
