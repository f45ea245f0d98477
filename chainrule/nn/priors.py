"""Priors over weights, for maximum a posteriori (MAP) training: the Bayesian reading of weight
decay (Gaussian prior = L2) and of the L1 penalty (Laplace prior).

MAP training maximises log P(D|N) + log P(N), the log-likelihood of the data D under network
N plus the log-prior of its weights, i.e. minimises NLL(D) + prior.neg_log_prob(weights).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from .. import ops
from ..tensor import Tensor
from .module import Module


def _tensors(parameters: Module | Tensor | Iterable[Tensor]) -> list[Tensor]:
    if isinstance(parameters, Module):
        return list(parameters.parameters())
    if isinstance(parameters, Tensor):
        return [parameters]
    out = list(parameters)
    for p in out:
        if not isinstance(p, Tensor):
            raise TypeError(f"priors take tensors (or a Module), got {type(p).__name__}")
    return out


class _Prior:
    """Base: a factorised zero-mean prior with a positive ``scale`` over every weight."""

    def __init__(self, scale: float = 1.0) -> None:
        if not scale > 0:
            raise ValueError(f"{type(self).__name__}: scale must be positive, got {scale}")
        self.scale = float(scale)

    def _penalty(self, p: Tensor) -> Tensor:
        raise NotImplementedError

    def _log_norm(self) -> float:
        raise NotImplementedError

    def neg_log_prob(self, parameters: Module | Tensor | Iterable[Tensor],
                     include_constant: bool = False) -> Tensor:
        """-log P(weights), differentiable; the normalising constant (which does not change
        the gradient) only with ``include_constant=True``."""
        params = _tensors(parameters)
        if not params:
            raise ValueError(f"{type(self).__name__}.neg_log_prob: no parameters given")
        total = self._penalty(params[0])
        for p in params[1:]:
            total = total + self._penalty(p)
        if include_constant:
            total = total + sum(p.data.size for p in params) * self._log_norm()
        return total

    __call__ = neg_log_prob

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale={self.scale})"


class Gaussian(_Prior):
    """Independent N(0, scale^2) weights: -log P(w) = sum(w^2) / (2 scale^2) + const, the L2
    penalty of weight decay."""

    def _penalty(self, p: Tensor) -> Tensor:
        return ops.sum(ops.square(p)) * (0.5 / self.scale**2)

    def _log_norm(self) -> float:
        return math.log(self.scale) + 0.5 * math.log(2 * math.pi)

    def weight_decay(self, n_data: int) -> float:
        """The SGD ``weight_decay`` equivalent to this prior when the data term is the MEAN loss
        over ``n_data`` examples: 1 / (n_data * scale^2).

        Dividing the MAP objective NLL_sum + sum(w^2)/(2 s^2) by N leaves its minimum unchanged
        and gives mean_loss + (1/N) sum(w^2)/(2 s^2), whose gradient is grad(mean_loss) + w/(N s^2);
        ``SGD(weight_decay=wd)`` adds wd * w to the gradient, so wd = 1/(N s^2).
        """
        if n_data <= 0:
            raise ValueError(f"weight_decay: n_data must be a positive count, got {n_data}")
        return 1.0 / (n_data * self.scale**2)


class Laplace(_Prior):
    """Independent Laplace(0, scale) weights: -log P(w) = sum(|w|) / scale + const, the L1
    penalty (pushes weights to exactly zero). With a mean loss over N examples add
    neg_log_prob / N, an L1 strength of 1 / (N scale)."""

    def _penalty(self, p: Tensor) -> Tensor:
        return ops.sum(ops.abs(p)) * (1.0 / self.scale)

    def _log_norm(self) -> float:
        return math.log(2 * self.scale)
