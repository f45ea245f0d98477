"""The activations a GraphNet neuron can have, in the three forms the compiled network needs:
applied in place to a block of pre-activations, differentiated from the output alone (so the
backward sweep needs only the stored activations), and as chainrule ops (for create_graph)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ... import ops

NAMES = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "softsign")
_ALIASES = {"linear": "identity", "logistic": "sigmoid"}
LEAKY_SLOPE = 0.01  # as torch.nn.LeakyReLU()
ELU_ALPHA = 1.0  # as torch.nn.ELU()


def resolve(name: Any, where: str) -> str:
    """The canonical name of activation ``name``; ``where`` says whose it is, for the error."""
    key = _ALIASES.get(name, name) if isinstance(name, str) else None
    if key not in NAMES:
        raise ValueError(
            f"GraphNet: unknown activation {name!r} for {where}; use one of "
            f"{', '.join(NAMES)} (or 'linear' / 'logistic')"
        )
    return key


def _sigmoid(z: np.ndarray) -> None:
    z *= 0.5
    np.tanh(z, out=z)
    z += 1.0
    z *= 0.5


def _elu(z: np.ndarray) -> None:
    z[...] = np.where(z > 0, z, ELU_ALPHA * np.expm1(np.minimum(z, 0)))


def _softplus(z: np.ndarray) -> None:
    z[...] = np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0)


def _softsign(z: np.ndarray) -> None:
    z /= np.abs(z) + 1.0


APPLY: dict[str, Callable[[np.ndarray], None]] = {
    "identity": lambda z: None,
    "sigmoid": _sigmoid,
    "tanh": lambda z: np.tanh(z, out=z),
    "relu": lambda z: np.maximum(z, 0, out=z),
    "leaky_relu": lambda z: np.maximum(z, z * LEAKY_SLOPE, out=z),
    "elu": _elu,
    "softplus": _softplus,
    "softsign": _softsign,
}
"""name -> function overwriting a block of pre-activations with the activations."""

DERIVATIVE: dict[str, Callable[[np.ndarray], Any]] = {
    "sigmoid": lambda y: y * (1.0 - y),
    "tanh": lambda y: 1.0 - y * y,
    "relu": lambda y: y > 0,
    "leaky_relu": lambda y: np.where(y > 0, 1.0, LEAKY_SLOPE),
    "elu": lambda y: np.where(y > 0, 1.0, y + ELU_ALPHA),
    "softplus": lambda y: -np.expm1(-y),
    "softsign": lambda y: np.square(1.0 - np.abs(y)),
}
"""name -> f'(z) written as a function of y = f(z) (identity is absent: its derivative is 1)."""

TENSOR: dict[str, Callable[[Any], Any]] = {
    "identity": lambda z: z,
    "sigmoid": ops.sigmoid,
    "tanh": ops.tanh,
    "relu": ops.relu,
    "leaky_relu": lambda z: ops.leaky_relu(z, LEAKY_SLOPE),
    "elu": lambda z: ops.elu(z, ELU_ALPHA),
    "softplus": ops.softplus,
    "softsign": ops.softsign,
}
"""name -> the same activation as differentiable chainrule ops."""
