"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay.

PyTorch's update, done in place with NumPy ufuncs and BLAS axpy (t counts this parameter's
steps)::

    g = -grad if maximize else grad
    p *= 1 - lr * weight_decay  (AdamW)   or   g += weight_decay * p  (Adam)
    m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
    v_hat = max(v_hat, v) if amsgrad else v
    p -= lr / (1 - beta1**t) * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps)

The last line is computed as ``p -= (lr c / (1 - beta1**t)) * m / (sqrt(v_hat) + eps c)`` with
``c = sqrt(1 - beta2**t)``: the same value in nine passes over the parameters instead of 13.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .optimizer import Optimizer, add_scaled_, check_nonneg


class Adam(Optimizer):
    """Adam (``torch.optim.Adam``): per-coordinate steps scaled by running averages of the
    gradient and of its square; ``amsgrad`` keeps the largest second moment seen."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        check_nonneg(group, "lr", "eps", "weight_decay")
        for i, beta in enumerate(group["betas"]):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"invalid beta at index {i}: {beta} (it must be in [0, 1))")

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One Adam update of every parameter that has a gradient."""
        loss = self._call_closure(closure)
        state = self.state
        mul, add, div = np.multiply, np.add, np.divide
        for group in self.param_groups:
            lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            amsgrad, decoupled = group["amsgrad"], group["decoupled_weight_decay"]
            for p, g, d, b in self._gradients(group, 0 if decoupled else wd):
                if decoupled and wd != 0:
                    mul(d, 1 - lr * wd, out=d)
                st = state[p]
                if not st:
                    st["step"] = 0
                    st["exp_avg"] = np.zeros_like(d)
                    st["exp_avg_sq"] = np.zeros_like(d)
                    if amsgrad:
                        st["max_exp_avg_sq"] = np.zeros_like(d)
                m, v = st["exp_avg"], st["exp_avg_sq"]
                t = st["step"] = st["step"] + 1
                # m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2  (axpy passes)
                mul(m, beta1, out=m)
                add_scaled_(m, 1 - beta1, g, b)
                mul(v, beta2, out=v)
                add_scaled_(v, 1 - beta2, mul(g, g, out=b), b)
                if amsgrad:
                    v = np.maximum(st["max_exp_avg_sq"], v, out=st["max_exp_avg_sq"])
                # lr / bc1 * m / (sqrt(v) / c + eps) with c = sqrt(bc2), as
                # (lr c / bc1) * m / (sqrt(v) + eps c): two passes fewer than PyTorch's order
                c = (1 - beta2**t) ** 0.5
                denom = add(np.sqrt(v, out=b), eps * c, out=b)
                add_scaled_(d, -lr * c / (1 - beta1**t), div(m, denom, out=b), b)
        return loss


class AdamW(Adam):
    """AdamW (``torch.optim.AdamW``): Adam with decoupled weight decay, ``p *= 1 - lr * wd``
    applied to the weights directly instead of added to the gradient."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
