"""One seedable source of randomness for everything in chainrule (initialisers, dropout,
shuffling), with PyTorch's `manual_seed` and per-call `generator` arguments."""

from __future__ import annotations

import numpy as np

from .ops import _core


class Generator:
    """A seedable random-number generator (wraps numpy.random.Generator), as torch.Generator."""

    __slots__ = ("rng",)

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def manual_seed(self, seed: int) -> Generator:
        """Reseed this generator; returns self so it chains."""
        self.rng = np.random.default_rng(seed)
        return self

    def get_state(self) -> dict:
        """The generator's state, for checkpoints."""
        return self.rng.bit_generator.state

    def set_state(self, st: dict) -> None:
        """Restore a state taken by `get_state`."""
        self.rng.bit_generator.state = st


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed everything random in chainrule; returns the default generator."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"manual_seed expects an integer seed, got {type(seed).__name__}")
    return default_generator.manual_seed(int(seed))


def rng(generator: Generator | None = None) -> np.random.Generator:
    """The numpy Generator to draw from: the given one, or the default (seeded by manual_seed).
    Refused while ``chainrule.compile`` traces a step: the tape would repeat the draw."""
    if _core.TRACER is not None:
        _refuse_draw()
    return (generator or default_generator).rng


def _refuse_draw() -> None:
    """Raise CompileError: a random draw inside a compiled step would be frozen into its tape."""
    from .compile import CompileError

    raise CompileError(
        f"compile: the step draws random numbers (dropout in training mode?) at "
        f"{_core.user_frame()}; the tape would repeat the same draw every step. Don't compile "
        "this step (or use eval())"
    )
