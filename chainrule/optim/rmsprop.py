"""RMSprop: steps divided by a running root-mean-square of the gradient (Hinton's rule).

PyTorch's update, done in place with NumPy ufuncs and BLAS axpy::

    g = -grad if maximize else grad;  g += weight_decay * p
    sq = alpha * sq + (1 - alpha) * g * g
    avg = sqrt(sq - ga * ga) with ga += (1 - alpha) * (g - ga)  if centered  else sqrt(sq)
    buf = momentum * buf + g / (avg + eps);  p -= lr * buf     (momentum > 0)
    p -= lr * g / (avg + eps)                                  (otherwise)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .optimizer import Optimizer, add_scaled_, check_nonneg


class RMSprop(Optimizer):
    """RMSprop (``torch.optim.RMSprop``), optionally centered (divides by an estimate of the
    gradient's standard deviation) and with momentum."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                    "momentum": momentum, "centered": centered, "maximize": maximize}
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        check_nonneg(group, "lr", "eps", "momentum", "weight_decay", "alpha")

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One RMSprop update of every parameter that has a gradient."""
        loss = self._call_closure(closure)
        state = self.state
        mul, add, sub, div = np.multiply, np.add, np.subtract, np.divide
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            momentum, centered = group["momentum"], group["centered"]
            for p, g, d, b in self._gradients(group, group["weight_decay"]):
                st = state[p]
                if not st:
                    st["step"] = 0
                    st["square_avg"] = np.zeros_like(d)
                    if momentum > 0:
                        st["momentum_buffer"] = np.zeros_like(d)
                    if centered:
                        st["grad_avg"] = np.zeros_like(d)
                st["step"] += 1
                sq = st["square_avg"]
                mul(sq, alpha, out=sq)
                add_scaled_(sq, 1 - alpha, mul(g, g, out=b), b)
                if centered:
                    ga = st["grad_avg"]
                    mul(ga, alpha, out=ga)
                    add_scaled_(ga, 1 - alpha, g, b)
                    avg = np.sqrt(sub(sq, mul(ga, ga, out=b), out=b), out=b)
                else:
                    avg = np.sqrt(sq, out=b)
                add(avg, eps, out=b)
                if momentum > 0:
                    buf = st["momentum_buffer"]
                    mul(buf, momentum, out=buf)
                    add(buf, div(g, b, out=b), out=buf)
                    add_scaled_(d, -lr, buf, b)
                else:
                    add_scaled_(d, -lr, div(g, b, out=b), b)
        return loss
