"""Gradient-health monitor: per-layer gradient norms, update-to-weight ratios and activation
statistics, collected every k steps, with rules that flag vanishing and exploding gradients,
saturated layers and dead units, and suggest remedies.

Use it in any training loop::

    monitor = GradientMonitor(model)          # every=10: record steps 0, 10, 20, ...
    for x, y in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        monitor.step()                        # after backward, before the next zero_grad
        optimizer.step()
    print(monitor.report())                   # table of the latest record + warnings
    warnings = monitor.check()                # [HealthWarning(kind, layer, message, values)]

A *layer* is a module that owns a weight of two or more dimensions (Linear, Conv2d, ...), named
by its dotted module name. Its *activation* is the first known activation module (Sigmoid, Tanh,
Softsign, ReLU, ...) that follows it in a ``Sequential`` before the next layer, or the kind given
in ``activations={"name": "relu"}`` for models that apply activations as functions; otherwise
the layer's own output is summarised (kind ``"linear"``).

Cost: forward hooks are attached only for the forward pass of a recording step and removed right
after it, so other steps run exactly as without the monitor; ``step()`` on those steps is a
counter increment (plus one pass over the weights on the step after a recording step, for the
update-to-weight ratio).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._mode import state as _grad_state
from .io import json_safe
from .nn.activations import ReLU
from .nn.module import Module, Sequential
from .ops.linalg import ones_vector
from .tensor import Tensor

__all__ = ["GradientMonitor", "HealthWarning", "ACTIVATION_KINDS"]

# Activation module class name -> kind. Saturation is measured for the saturating kinds below,
# dead units for ReLU.
ACTIVATION_KINDS: dict[str, str] = {
    "Sigmoid": "sigmoid", "Tanh": "tanh", "Softsign": "softsign", "Hardtanh": "hardtanh",
    "ReLU": "relu", "ReLU6": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu", "GELU": "gelu",
    "SiLU": "silu", "Softplus": "softplus",
}
_SATURATING = {"sigmoid", "tanh", "softsign", "hardtanh"}
_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": lambda z: 0.5 * (1.0 + np.tanh(0.5 * z)),
    "tanh": np.tanh,
    "softsign": lambda z: z / (1.0 + np.abs(z)),
    "hardtanh": lambda z: np.clip(z, -1.0, 1.0),
    "relu": lambda z: np.maximum(z, 0),
    "linear": lambda z: z,
}

_REMEDIES = {
    "vanishing": "use Glorot (tanh, sigmoid) or He (ReLU) initialisation, tanh or ReLU instead "
                 "of sigmoid, normalisation layers (BatchNorm/LayerNorm), or fewer layers",
    "exploding": "lower the learning rate, clip gradients (by norm), use Glorot/He "
                 "initialisation, or add normalisation layers",
    "saturated": "use Glorot initialisation (smaller initial weights), tanh or ReLU instead of "
                 "sigmoid, standardised inputs, normalisation layers, or a smaller learning rate",
    "dead": "use He initialisation with zero biases, a smaller learning rate, or LeakyReLU/ELU "
            "instead of ReLU",
}


@dataclass(frozen=True)
class HealthWarning:
    """One problem found by ``GradientMonitor.check``: its kind ("vanishing", "exploding",
    "saturated", "dead"), the layer it concerns, a message with numbers and remedies, and the
    numbers themselves."""

    kind: str
    layer: str
    message: str
    values: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


class _Layer:
    """What the monitor knows about one layer: its module, weights and activation."""

    def __init__(self, name: str, module: Module, kind: str, act_module: Module | None) -> None:
        self.name, self.module, self.kind, self.act_module = name, module, kind, act_module
        self.weights = [p for p in module._parameters.values() if p is not None and p.ndim >= 2]
        # Without an activation module, stats come from the layer output passed through `fn`.
        self.fn = None if act_module is not None else _FUNCTIONS.get(kind, _FUNCTIONS["linear"])
        # chainrule's ReLU and the "relu" function output no negative values
        self.nonnegative = kind == "relu" and (act_module is None or type(act_module) is ReLU)


class GradientMonitor:
    """Records per-layer gradient norms, update-to-weight ratios and activation statistics of
    ``model`` every ``every`` steps, and flags unhealthy training (see module docstring).

    Thresholds (all documented in ``check``): a unit output counts as *saturated* when
    ``|a| > saturation_threshold`` for tanh/softsign/hardtanh and when ``a < 1 - t`` or
    ``a > t`` for sigmoid (t = saturation_threshold, default 0.97, where the derivative has
    fallen to about 6% of its peak for tanh and 12% for sigmoid); a ReLU unit is *dead* when it
    outputs zero for every sample (and position) of the batch.
    """

    def __init__(
        self,
        model: Module,
        every: int = 10,
        *,
        saturation_threshold: float = 0.97,
        max_saturated: float = 0.5,
        max_dead: float = 0.5,
        vanishing_ratio: float = 1e-2,
        growth_factor: float = 100.0,
        max_update_ratio: float = 1.0,
        activations: Mapping[str, str] | None = None,
        histogram_samples: int = 4096,
    ) -> None:
        if not isinstance(model, Module):
            raise TypeError(
                f"GradientMonitor needs a chainrule.nn.Module, got {type(model).__name__}"
            )
        if not isinstance(every, int) or every < 1:
            raise ValueError(
                f"every must be a positive integer (steps between records), got {every!r}"
            )
        if not 0.5 < saturation_threshold < 1:
            raise ValueError(
                f"saturation_threshold must be between 0.5 and 1, got {saturation_threshold}"
            )
        if not 0 < vanishing_ratio < 1:
            raise ValueError(f"vanishing_ratio must be between 0 and 1, got {vanishing_ratio}")
        if growth_factor <= 1:
            raise ValueError(f"growth_factor must be greater than 1, got {growth_factor}")
        self.model = model
        self.every = every
        self.saturation_threshold = saturation_threshold
        self.max_saturated = max_saturated
        self.max_dead = max_dead
        self.vanishing_ratio = vanishing_ratio
        self.growth_factor = growth_factor
        self.max_update_ratio = max_update_ratio
        self.histogram_samples = histogram_samples
        self.steps = 0
        self.history: list[dict[str, Any]] = []
        self._latest: dict[str, np.ndarray] = {}  # activations of the latest recording step
        self._layers = _find_layers(model, dict(activations or {}))
        if not self._layers:
            raise ValueError(
                f"{type(model).__name__} has no layer with a weight matrix (Linear, Conv2d, ...) "
                "to monitor"
            )
        self._ordered = False
        self._pending: dict[str, dict[str, Any]] = {}  # activation stats of this step
        self._backprop: dict[str, Tensor] = {}  # gradients reaching layer outputs this step
        self._snapshot: tuple[dict[str, Any], list[list[np.ndarray]]] | None = None
        self._fired: list[_Layer] = []
        self._closed = False
        # A layer's tensor hook stores the gradient reaching its output in _backprop (a C call,
        # no Python frame); step() summarises it.
        hooks = [(layer.module, functools.partial(
                      self._on_layer_output, layer,
                      functools.partial(self._backprop.__setitem__, layer.name)))
                 for layer in self._layers]
        hooks += [(layer.act_module, functools.partial(self._on_activation, layer))
                  for layer in self._layers if layer.act_module is not None]
        # registered once; each recording step re-inserts them under their keys (no new handles)
        self._hooks = [(module.register_forward_hook(hook), hook) for module, hook in hooks]
        self._attached = True

    # -- public API ---------------------------------------------------------------------------
    @property
    def layers(self) -> list[str]:
        """Layer names, in forward order once a recording step has run (registration order
        before)."""
        return [layer.name for layer in self._layers]

    @property
    def kinds(self) -> dict[str, str]:
        """Activation kind of each layer ("sigmoid", "relu", "linear", ...)."""
        return {layer.name: layer.kind for layer in self._layers}

    @property
    def samples(self) -> dict[str, np.ndarray]:
        """Per layer, up to ``histogram_samples`` activation values from the latest recording
        step (for histograms)."""
        return {name: _subsample(a, self.histogram_samples) for name, a in self._latest.items()}

    @property
    def recording(self) -> bool:
        """True when the current step will be recorded (hooks are attached)."""
        return self._attached

    def step(self) -> dict[str, Any] | None:
        """Mark the end of one training step; call it after ``loss.backward()`` (before or after
        ``optimizer.step()``, before the next ``zero_grad``). Returns the new record on a
        recording step, else None."""
        if self._closed:
            return None
        if self._snapshot is not None:
            self._resolve_updates()
        record = None
        if self.steps % self.every == 0:
            record = self._record()
            self.history.append(record)
        self.steps += 1
        if record is not None or self.steps % self.every == 0:  # else the hooks stay off
            self._set_recording(self.steps % self.every == 0)
        return record

    def close(self) -> None:
        """Stop monitoring: remove the hooks from the model and, if the weights have moved since
        the last record (an optimizer step followed it), fill in that record's update ratios."""
        if self._snapshot is not None:
            before = self._snapshot[1]
            if any(not np.array_equal(p.data, w) for la, old in zip(self._layers, before,
                                                                     strict=True)
                   for p, w in zip(la.weights, old, strict=True)):
                self._resolve_updates()
            self._snapshot = None
        self._closed = True
        self._set_recording(False)
        self._backprop.clear()

    def __enter__(self) -> GradientMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def series(self, metric: str) -> tuple[list[int], dict[str, list[float]]]:
        """Steps and, per layer, the value of ``metric`` ("grad_norm", "update_ratio",
        "act_mean", "act_std", "saturated", "dead", "backprop_std") at each record (NaN where
        missing), for plotting."""
        return records_series(self.history, self.layers, metric)

    def to_dict(self) -> dict[str, Any]:
        """Settings, layers and every record as JSON-safe values (non-finite numbers become the
        strings "nan", "inf", "-inf")."""
        return {
            "every": self.every,
            "layers": self.layers,
            "kinds": self.kinds,
            "records": [json_safe(r, nonfinite=str) for r in self.history],
        }

    def check(self) -> list[HealthWarning]:
        """Apply the rules to the history and return the problems found (empty if healthy).

        - vanishing: in the latest record, the gradient norm of the first (input-side) layer is
          below ``vanishing_ratio`` (1e-2) times that of the last layer.
        - exploding: a NaN/Inf gradient or weight in any record; the first layer's gradient norm
          above 1/``vanishing_ratio`` times the last layer's; a layer's gradient norm growing
          by more than ``growth_factor`` (100) from the median of its previous (up to 5) records;
          or, in any record, an optimizer step changing a layer's weights by more than
          ``max_update_ratio`` (1) times their norm (a learning rate far too high).
        - saturated: more than ``max_saturated`` (0.5) of a sigmoid/tanh/softsign layer's outputs
          saturated in the latest record.
        - dead: more than ``max_dead`` (0.5) of a ReLU layer's units zero for the whole batch in
          the latest record.
        """
        if not self.history:
            return []
        warnings = self._check_nonfinite()
        latest = self.history[-1]["layers"]
        warnings += self._check_depth(latest)
        warnings += self._check_growth()
        warnings += self._check_updates()
        for name in self.layers:
            stats = latest[name]
            if stats["saturated"] is not None and stats["saturated"] > self.max_saturated:
                warnings.append(HealthWarning(
                    "saturated", name,
                    f"saturated layer '{name}' ({self.kinds[name]}): {stats['saturated']:.0%} of "
                    f"its outputs are within {1 - self.saturation_threshold:.2g} of the bounds "
                    f"(limit {self.max_saturated:.0%}; mean {stats['act_mean']:.3g}, std "
                    f"{stats['act_std']:.3g}), so their gradients are nearly zero. Try: "
                    + _REMEDIES["saturated"],
                    {"saturated": stats["saturated"], "step": self.history[-1]["step"]},
                ))
            if stats["dead"] is not None and stats["dead"] > self.max_dead:
                warnings.append(HealthWarning(
                    "dead", name,
                    f"dead units in '{name}' ({self.kinds[name]}): {stats['dead']:.0%} of its "
                    f"units output zero for the whole batch (limit {self.max_dead:.0%}) and get "
                    "no gradient. Try: " + _REMEDIES["dead"],
                    {"dead": stats["dead"], "step": self.history[-1]["step"]},
                ))
        return warnings

    def report(self) -> str:
        """A table of the latest record per layer, followed by the warnings (or a line saying
        there are none)."""
        if not self.history:
            return "gradient health: nothing recorded yet (call monitor.step() after backward)"
        latest = self.history[-1]
        lines = [
            f"gradient health at step {latest['step']} (recorded every {self.every} steps, "
            f"{len(self.history)} records)",
            f"  {'layer':<16} {'activation':<10} {'grad norm':>10} {'update/w':>10} "
            f"{'act mean':>9} {'act std':>9} {'saturated':>9} {'dead':>6}",
        ]
        for name in self.layers:
            s = latest["layers"][name]
            lines.append(
                f"  {name:<16} {self.kinds[name]:<10} {_fmt(s['grad_norm'], '10.2e')} "
                f"{_fmt(s['update_ratio'], '10.2e')} {_fmt(s['act_mean'], '9.3f')} "
                f"{_fmt(s['act_std'], '9.3f')} {_fmt(s['saturated'], '9.0%')} "
                f"{_fmt(s['dead'], '6.0%')}"
            )
        lines.append("  (update/w: |change of the weights| / |weights| per optimizer step; "
                     "around 1e-3 is typical)")
        warnings = self.check()
        if warnings:
            lines.append(f"{len(warnings)} warning(s):")
            lines += [f"  - {w.message}" for w in warnings]
        else:
            lines.append("no problems found: gradients neither vanish nor explode, no saturated "
                         "layers or dead units")
        return "\n".join(lines)

    # -- recording ----------------------------------------------------------------------------
    def _set_recording(self, on: bool) -> None:
        """Attach the forward hooks for the coming step (on) or remove them (off)."""
        if on and not self._attached and not self._closed:
            self._pending = {}
            self._backprop.clear()
            self._fired = []
            for handle, hook in self._hooks:
                handle.registry[handle.key] = hook
            self._attached = True
        elif not on and self._attached:
            for handle, _ in self._hooks:
                handle.remove()
            self._attached = False

    def _on_layer_output(self, layer: _Layer, keep_grad: Callable[[Tensor], None],
                         module: Module, inputs: tuple, out: Any) -> None:
        """Forward hook on a layer: note the forward order, hook the back-propagated gradient
        (``keep_grad``), and summarise the activation if no activation module follows."""
        if not (_grad_state.grad_enabled and isinstance(out, Tensor)):
            return  # evaluation passes (no_grad) are not training steps
        if not self._ordered and layer not in self._fired:
            self._fired.append(layer)
        if out.requires_grad:
            out.register_hook(keep_grad)
        if layer.fn is not None:
            self._summarise(layer, layer.fn(out.data))

    def _on_activation(self, layer: _Layer, module: Module, inputs: tuple, out: Any) -> None:
        """Forward hook on an activation module: summarise the layer's activated output."""
        if _grad_state.grad_enabled and isinstance(out, Tensor):
            self._summarise(layer, out.data)

    def _summarise(self, layer: _Layer, a: np.ndarray) -> None:
        """Statistics of a layer's activated output; keep it for histograms."""
        self._pending[layer.name] = activation_stats(a, layer.kind, self.saturation_threshold,
                                                     nonnegative=layer.nonnegative)
        self._latest[layer.name] = a

    def _record(self) -> dict[str, Any]:
        """Gather one record from the gradients, the weights and what the hooks collected."""
        if self._fired and not self._ordered:
            seen = {id(layer) for layer in self._fired}
            self._layers = self._fired + [la for la in self._layers if id(la) not in seen]
            self._ordered = len(self._fired) == len(self._layers)
        layers: dict[str, dict[str, Any]] = {}
        pending, backprop = self._pending, self._backprop
        for layer in self._layers:
            grads = [p.grad.data for p in layer.weights if p.grad is not None]
            stats: dict[str, Any] = {
                "grad_norm": _norm(grads) if grads else None,
                "weight_norm": _norm([p.data for p in layer.weights]),
                "update_ratio": None,
                "act_mean": None, "act_std": None, "saturated": None, "dead": None,
                "backprop_std": None,
            }
            if layer.name in pending:
                stats.update(pending[layer.name])
            if layer.name in backprop:
                stats["backprop_std"] = _mean_std(backprop[layer.name].data)[1]
            layers[layer.name] = stats
        self._pending = {}
        backprop.clear()
        record = {"step": self.steps, "layers": layers}
        self._snapshot = (record, [[p.data.copy() for p in la.weights] for la in self._layers])
        return record

    def _resolve_updates(self) -> None:
        """Fill in the update-to-weight ratios of the last record from the weights now."""
        record, before = self._snapshot  # type: ignore[misc]
        self._snapshot = None
        for layer, old in zip(self._layers, before, strict=True):
            stats = record["layers"][layer.name]
            for p, w in zip(layer.weights, old, strict=True):
                np.subtract(p.data, w, out=w)  # the snapshot becomes the update
            delta = _norm(old)
            wn = stats["weight_norm"]
            stats["update_ratio"] = delta / wn if wn else (math.inf if delta else 0.0)

    # -- rules --------------------------------------------------------------------------------
    def _check_nonfinite(self) -> list[HealthWarning]:
        """Exploding: the first record in which each layer had a NaN/Inf gradient or weight."""
        out = []
        for name in self.layers:
            for record in self.history:
                s = record["layers"][name]
                bad = [k for k in ("grad_norm", "weight_norm")
                       if s[k] is not None and not math.isfinite(s[k])]
                if bad:
                    out.append(HealthWarning(
                        "exploding", name,
                        f"exploding gradients: '{name}' has a non-finite "
                        f"{' and '.join(k.replace('_', ' ') for k in bad)} "
                        f"({s[bad[0]]}) at step {record['step']}. Try: " + _REMEDIES["exploding"],
                        {k: s[k] for k in bad} | {"step": record["step"]},
                    ))
                    break
        return out

    def _check_depth(self, latest: Mapping[str, Mapping[str, Any]]) -> list[HealthWarning]:
        """Vanishing/exploding across depth: first-layer vs last-layer gradient norm."""
        norms = [(n, latest[n]["grad_norm"]) for n in self.layers
                 if latest[n]["grad_norm"] is not None]
        if len(norms) < 2 or not all(math.isfinite(v) for _, v in norms) or norms[-1][1] == 0:
            return []
        (first, g_first), (last, g_last) = norms[0], norms[-1]
        ratio = g_first / g_last
        chain = ", ".join(f"{n} {v:.2e}" for n, v in norms)
        values = {"ratio": ratio, "grad_norms": dict(norms)}
        if ratio < self.vanishing_ratio:
            return [HealthWarning(
                "vanishing", first,
                f"vanishing gradients: the gradient norm falls from {g_last:.2e} at the output "
                f"layer '{last}' to {g_first:.2e} at the input layer '{first}', a ratio of "
                f"{ratio:.1e} (limit {self.vanishing_ratio:.0e}); per layer, input to output: "
                f"{chain}. The first layers barely learn. Try: " + _REMEDIES["vanishing"],
                values,
            )]
        if ratio > 1 / self.vanishing_ratio:
            return [HealthWarning(
                "exploding", first,
                f"exploding gradients: the gradient norm grows from {g_last:.2e} at the output "
                f"layer '{last}' to {g_first:.2e} at the input layer '{first}', a ratio of "
                f"{ratio:.1e} (limit {1 / self.vanishing_ratio:.0e}); per layer, input to "
                f"output: {chain}. Try: " + _REMEDIES["exploding"],
                values,
            )]
        return []

    def _check_growth(self) -> list[HealthWarning]:
        """Exploding over time: latest gradient norm vs the median of the previous records."""
        if len(self.history) < 2:
            return []
        out = []
        latest = self.history[-1]
        for name in self.layers:
            now = latest["layers"][name]["grad_norm"]
            before = [r["layers"][name]["grad_norm"] for r in self.history[-6:-1]]
            before = [v for v in before if v is not None and math.isfinite(v) and v > 0]
            if now is None or not math.isfinite(now) or not before:
                continue
            base = float(np.median(before))
            if now > self.growth_factor * base:
                out.append(HealthWarning(
                    "exploding", name,
                    f"exploding gradients: the gradient norm of '{name}' grew from {base:.2e} "
                    f"(median of the previous {len(before)} records) to {now:.2e} at step "
                    f"{latest['step']}, x{now / base:.1e} (limit x{self.growth_factor:.0f}). "
                    "Try: " + _REMEDIES["exploding"],
                    {"before": base, "now": now, "step": latest["step"]},
                ))
        return out

    def _check_updates(self) -> list[HealthWarning]:
        """Exploding updates: the first record in which an optimizer step changed a layer's
        weights by more than ``max_update_ratio`` times their norm."""
        out = []
        for name in self.layers:
            for record in self.history:
                ratio = record["layers"][name]["update_ratio"]
                if ratio is not None and not ratio <= self.max_update_ratio:
                    out.append(HealthWarning(
                        "exploding", name,
                        f"exploding updates: one optimizer step changed the weights of '{name}' "
                        f"by {ratio:.1e} times their norm at step {record['step']} (limit "
                        f"{self.max_update_ratio:g}; around 1e-3 is typical): the learning rate "
                        "is far too high. Try: " + _REMEDIES["exploding"],
                        {"update_ratio": ratio, "step": record["step"]},
                    ))
                    break
        return out


def activation_stats(
    a: np.ndarray, kind: str, threshold: float = 0.97, *, nonnegative: bool = False
) -> dict[str, Any]:
    """Mean, std, fraction saturated (saturating kinds) and fraction of dead units (ReLU) of a
    batch of activations ``a`` (batch first; units along axis 1). ``nonnegative=True`` promises
    no value below zero (ReLU outputs), which makes counting dead units cheaper."""
    a = np.asarray(a)
    sums = None  # per-unit sums, when they tell the dead units apart
    if kind == "relu" and nonnegative and a.ndim >= 2 and a.size and a.dtype in _BLAS_FLOATS:
        sums = _unit_sums(a)
    mean, std = _mean_std(a, None if sums is None else float(np.add.reduce(sums)))
    saturated = dead = None
    if kind == "sigmoid":
        saturated = float(np.count_nonzero(a < 1 - threshold) + np.count_nonzero(a > threshold))
        saturated /= a.size
    elif kind in _SATURATING:
        saturated = float(np.count_nonzero(np.abs(a) > threshold)) / a.size
    elif kind == "relu":
        if sums is not None and not math.isnan(mean):  # no NaN: alive where the sum is not 0
            alive = sums
        else:
            positive = a > 0
            alive = positive.any(axis=(0, *range(2, a.ndim))) if a.ndim >= 2 else positive
        dead = 1.0 - float(np.count_nonzero(alive)) / alive.size
    return {"act_mean": mean, "act_std": std, "saturated": saturated, "dead": dead}


def records_series(
    records: Iterable[Mapping[str, Any]], layers: Iterable[str], metric: str
) -> tuple[list[int], dict[str, list[float]]]:
    """Steps and per-layer values of ``metric`` across ``records`` (as in ``history`` or
    ``to_dict()["records"]``), with NaN where a value is missing."""
    records = list(records)
    steps = [int(r["step"]) for r in records]
    values = {
        name: [_as_float(r["layers"].get(name, {}).get(metric)) for r in records]
        for name in layers
    }
    return steps, values


def _find_layers(model: Module, activations: dict[str, str]) -> list[_Layer]:
    """Every module owning a weight with ndim >= 2, with the activation that follows it."""
    names = {id(m): (n or type(m).__name__) for n, m in model.named_modules()}
    following: dict[int, Module] = {}
    for _, seq in model.named_modules():
        if isinstance(seq, Sequential):
            _match_activations(list(seq.children()), following)
    layers = []
    for _, module in model.named_modules():
        if not any(p is not None and p.ndim >= 2 for p in module._parameters.values()):
            continue
        name = names[id(module)]
        act = following.get(id(module))
        if name in activations:
            kind = activations.pop(name)
            if kind not in _FUNCTIONS:
                raise ValueError(
                    f"activations[{name!r}] = {kind!r} is not one of {sorted(_FUNCTIONS)}"
                )
            act = None
        elif act is not None:
            kind = ACTIVATION_KINDS[type(act).__name__]
        else:
            kind = "linear"
        layers.append(_Layer(name, module, kind, act))
    if activations:
        raise ValueError(
            f"activations names unknown layers {sorted(activations)}; layers are "
            f"{[layer.name for layer in layers]}"
        )
    return layers


def _match_activations(children: list[Module], following: dict[int, Module]) -> None:
    """In a Sequential, map each layer to the first activation module after it (skipping
    parameter-free modules and normalisation layers, stopping at the next layer)."""
    claimed = set(id(m) for m in following.values())
    for i, child in enumerate(children):
        if not any(p.ndim >= 2 for p in child.parameters()):
            continue
        for nxt in children[i + 1:]:
            if any(p.ndim >= 2 for p in nxt.parameters()):
                break
            if type(nxt).__name__ in ACTIVATION_KINDS:
                if id(nxt) not in claimed:
                    following[id(child)] = nxt
                    claimed.add(id(nxt))
                break


def _norm(arrays: Iterable[np.ndarray]) -> float:
    """Euclidean norm of several arrays taken together (BLAS dots; redone in float64 if float32
    overflowed on finite values)."""
    total = 0.0
    for a in arrays:
        a = a.ravel(order="K")  # a view for C- and F-ordered arrays alike
        sq = float(a @ a)
        if math.isinf(sq) and np.isfinite(a).all():
            a64 = a.astype(np.float64)
            sq = float(a64 @ a64)
        total += sq
    return math.sqrt(total)


_BLAS_FLOATS = (np.float32, np.float64)


def _unit_sums(a: np.ndarray) -> np.ndarray:
    """Per unit (axis 1) of a non-empty float array with two or more dimensions, the sum of its
    values over the batch and positions; for values >= 0 without NaN it is zero exactly when
    none is positive. The sums over the batch are one BLAS product with a vector of ones (like
    the bias gradient in a training step), several times cheaper there than a comparison and a
    NumPy reduction."""
    # (the reshape is a view for C- and F-ordered 2-D arrays alike)
    sums = ones_vector(a.shape[0], a.dtype) @ a.reshape(a.shape[0], -1)
    if a.ndim > 2:
        sums = np.add.reduce(sums.reshape(a.shape[1], -1), axis=1)
    return sums


def _mean_std(a: np.ndarray, total: float | None = None) -> tuple[float, float]:
    """Mean and standard deviation of all values of ``a`` (given their sum ``total`` if known),
    cheaply: one pass for the sum and one BLAS dot for the sum of squares; two passes when the
    spread is too small for that."""
    n = a.size
    if n == 0:
        return math.nan, math.nan
    a = a.ravel(order="K")  # a view for C- and F-ordered arrays alike
    if total is None:
        total = float(np.add.reduce(a))  # pairwise summation: accurate in float32 too
    mean = total / n
    var = float(a @ a) / n - mean * mean
    if not var > 1e-4 * mean * mean:  # cancellation (or NaN/Inf): subtract the mean first
        with np.errstate(invalid="ignore", over="ignore"):
            d = a - a.dtype.type(mean) if a.dtype.kind == "f" else a - mean
            var = float(d @ d) / n
    return mean, math.sqrt(max(var, 0.0))


def _subsample(a: np.ndarray, n: int) -> np.ndarray:
    """At most about ``n`` values of ``a`` (a regular stride, deterministic), as a float32 copy."""
    flat = np.ravel(a)
    return flat[:: max(1, flat.size // n)][:n].astype(np.float32)


def _as_float(v: Any) -> float:
    """A record value as a float (None -> NaN; "inf"/"nan" strings from to_dict accepted)."""
    return math.nan if v is None else float(v)


def _fmt(v: float | None, spec: str) -> str:
    """Format a table cell; '-' for a missing value."""
    width = int(spec.split(".")[0])
    return f"{'-':>{width}}" if v is None else format(v, spec)
