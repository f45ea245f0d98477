"""SGD: stochastic gradient descent with optional momentum, Nesterov momentum and weight decay.

PyTorch's update, done in place with NumPy ufuncs and BLAS axpy::

    g = -grad if maximize else grad;  g += weight_decay * p
    buf = g (first step) or momentum * buf + (1 - dampening) * g
    g = g + momentum * buf if nesterov else buf   (when momentum != 0)
    p -= lr * g
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .optimizer import Optimizer, add_scaled_, check_nonneg


class SGD(Optimizer):
    """Stochastic gradient descent (``torch.optim.SGD``): the plain rule, or heavy-ball / Nesterov
    momentum, with L2 weight decay."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize}
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        check_nonneg(group, "lr", "momentum", "weight_decay")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One SGD update of every parameter that has a gradient."""
        loss = self._call_closure(closure)
        state = self.state
        mul, add = np.multiply, np.add
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            damp, nesterov = 1 - group["dampening"], group["nesterov"]
            if momentum == 0 and group["weight_decay"] == 0 and not group["maximize"]:
                for p in group["params"]:  # plain rule: p -= lr * grad, no scratch arrays
                    g = p._grad
                    if g is not None:
                        add_scaled_(p.data, -lr, g.data)
                        p._version += 1
                continue
            for p, g, d, b in self._gradients(group, group["weight_decay"]):
                if momentum != 0:
                    st = state[p]
                    buf = st.get("momentum_buffer")
                    if buf is None:
                        buf = st["momentum_buffer"] = np.array(g, dtype=d.dtype)
                    else:
                        mul(buf, momentum, out=buf)
                        if damp != 1:
                            add_scaled_(buf, damp, g, b)
                        else:
                            add(buf, g, out=buf)
                    if nesterov:  # p -= lr (g + momentum buf), as two axpy passes
                        add_scaled_(d, -lr * momentum, buf, b)
                    else:
                        g = buf
                add_scaled_(d, -lr, g, b)
        return loss
