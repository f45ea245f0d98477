"""Adagrad: per-coordinate steps divided by the root of the summed squared gradients.

PyTorch's update, done in place with NumPy ufuncs and BLAS axpy (t counts this parameter's steps)::

    g = -grad if maximize else grad;  g += weight_decay * p
    sum += g * g
    p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .optimizer import Optimizer, add_scaled_, check_nonneg


class Adagrad(Optimizer):
    """Adagrad (``torch.optim.Adagrad``): large steps for rarely-updated coordinates, small ones
    for frequently-updated coordinates."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value,
                    "maximize": maximize}
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        check_nonneg(group, "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group; its accumulators start at once at ``initial_accumulator_value`` (as in
        PyTorch, so the state exists before the first step)."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for p in group["params"]:
            self.state[p] = {
                "step": 0,
                "sum": np.full_like(p.data, group["initial_accumulator_value"]),
            }

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Adagrad update of every parameter that has a gradient."""
        loss = self._call_closure(closure)
        state = self.state
        mul, add, div = np.multiply, np.add, np.divide
        for group in self.param_groups:
            lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
            for p, g, d, b in self._gradients(group, group["weight_decay"]):
                st = state[p]
                t = st["step"] = st["step"] + 1
                s = st["sum"]
                clr = lr / (1 + (t - 1) * lr_decay)
                add(s, mul(g, g, out=b), out=s)
                std = add(np.sqrt(s, out=b), eps, out=b)
                add_scaled_(d, -clr, div(g, std, out=b), b)
        return loss
