"""GraphNet: a Module whose neurons are wired by any directed graph, compiled once into
topological levels and trained by backpropagation (through time, when edges are delayed)."""

from __future__ import annotations

import math
import operator
import weakref
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import numpy as np

from ... import ops
from ..._random import Generator
from ...ops import _core
from ...tensor import Tensor, _mutate
from .. import init as _init
from ..module import Module, Parameter
from .kernel import Memo, graph_net, readout
from .plan import Plan
from .spec import build_spec

# tracer -> the recurrent GraphNets whose state a step being compiled reset: a state carried in
# from before the step would be frozen (the tape can't carry it from one replay to the next)
_RESET_IN_TRACE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class GraphNet(Module):
    """A network of neurons with arbitrary connectivity: one weight per edge, one bias and one
    activation per non-input neuron, any DAG plus cycles through delayed (recurrent) edges.

    ``edges`` is a list of ``(source, target)`` pairs, a ``networkx.DiGraph`` (its ``weight`` and
    ``delayed`` edge attributes and ``bias`` and ``activation`` node attributes are honoured) or
    a square adjacency matrix (a NumPy array or Tensor; nonzero entries are edges, neurons are
    ``neurons`` or ``0..n-1``). ``delayed_edges`` read their source's value from the previous
    time step. ``activation`` applies to every non-input neuron; ``output_activation`` (None:
    the same) to outputs; ``activations={neuron: name}`` overrides single neurons. Names:
    identity (or linear), sigmoid, tanh, relu, leaky_relu, elu, softplus, softsign.

    Input ``(batch, n_inputs)`` gives ``(batch, n_outputs)``; ``(batch, T, n_inputs)`` gives
    ``(batch, T, n_outputs)``. A network with delayed edges runs the T steps in order; its
    state (the values its delayed edges read, zeros at first) is carried from one call to the
    next, detached, until ``reset_state()``: call that between independent sequences (a
    compiled step must call it before the net runs: a state carried between calls is refused).
    ``truncate_bptt=k`` also cuts the gradient path every k steps within a call. A 2-D input to a
    recurrent network is one time step.

    Weights are initialised per neuron by ``init`` (a name from ``chainrule.nn.init`` or a
    callable, as for Linear) with fan-in = the neuron's in-degree and fan-out = the mean
    out-degree of its sources; biases start at zero. ``generator`` seeds it (default: the
    generator ``chainrule.manual_seed`` seeds).
    """

    def __init__(
        self,
        inputs: list[Hashable],
        outputs: list[Hashable],
        edges: Any,
        *,
        delayed_edges: Any = None,
        activation: str = "tanh",
        output_activation: str | None = None,
        activations: Mapping[Hashable, str] | None = None,
        neurons: list[Hashable] | None = None,
        init: str | Callable[..., Tensor] = "glorot_uniform",
        truncate_bptt: int | None = None,
        generator: Generator | None = None,
    ) -> None:
        super().__init__()
        spec = build_spec(inputs, outputs, edges, delayed_edges=delayed_edges, neurons=neurons,
                          activation=activation, output_activation=output_activation,
                          activations=activations)
        if truncate_bptt is not None:
            if isinstance(truncate_bptt, bool) or not isinstance(truncate_bptt, int) or \
                    truncate_bptt < 1:
                raise ValueError(f"GraphNet: truncate_bptt must be a positive number of steps "
                                 f"or None, got {truncate_bptt!r}")
            if not spec.delayed:
                raise ValueError("GraphNet: truncate_bptt needs a recurrent network "
                                 "(delayed_edges); this one has none")
        self._spec = spec
        self._plan = Plan(spec)
        self.truncate_bptt = truncate_bptt
        self._state: Tensor | None = None
        self.weight = Parameter(np.zeros(len(self._plan.edge_keys), np.float32))
        self.bias = Parameter(np.zeros(len(self._plan.bias_keys), np.float32))
        self._initialise(_init.get_initializer(init), generator)
        for (s, t, delayed), v in spec.weights.items():
            self.weight.data[self._plan.edge_index[(s, t, delayed)]] = v
        self.set_biases(spec.biases)

    @classmethod
    def from_networkx(cls, graph: Any, inputs: list[Hashable] | None = None,
                      outputs: list[Hashable] | None = None, **kwargs: Any) -> GraphNet:
        """A GraphNet wired like the ``networkx.DiGraph`` ``graph`` (see the class docstring);
        ``inputs``/``outputs`` default to ``graph.graph['inputs'/'outputs']``, which
        ``to_networkx`` records."""
        ins = graph.graph.get("inputs") if inputs is None else inputs
        outs = graph.graph.get("outputs") if outputs is None else outputs
        if ins is None or outs is None:
            raise ValueError("GraphNet.from_networkx: pass inputs= and outputs= (the graph does "
                             "not record them)")
        return cls(ins, outs, graph, **kwargs)

    # -- initialisation ------------------------------------------------------------------------
    def _initialise(self, fn: Callable[..., Tensor], generator: Generator | None) -> None:
        """Draw each neuron's incoming weights from ``fn`` with that neuron's fans: neurons with
        the same (fan_in, fan_out) share draws of (fan_out, fan_in) tensors, row by row."""
        plan = self._plan
        fan_out: dict = {}
        incoming: dict = {n: [] for n in plan.bias_keys}
        for i, (s, t, _) in enumerate(plan.edge_keys):
            incoming[t].append(i)
            fan_out[s] = fan_out.get(s, 0) + 1
        groups: dict[tuple[int, int], list] = {}
        for idx in incoming.values():
            if idx:
                mean_out = sum(fan_out[plan.edge_keys[i][0]] for i in idx) / len(idx)
                groups.setdefault((len(idx), max(1, round(mean_out))), []).append(idx)
        kw = {} if generator is None else {"generator": generator}
        for (k, fo), members in groups.items():
            rows = []
            for _ in range(math.ceil(len(members) / fo)):
                rows.append(fn(Tensor(np.zeros((fo, k), np.float32)), **kw).data)
            draws = np.concatenate(rows, 0)
            for r, idx in enumerate(members):
                self.weight.data[idx] = draws[r]

    # -- running -------------------------------------------------------------------------------
    def forward(self, x: Any) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(x)
        n_in, n_out = len(self._spec.inputs), len(self._spec.outputs)
        if x.ndim not in (2, 3) or x.shape[-1] != n_in:
            raise ValueError(
                f"GraphNet: input must have shape (batch, {n_in}) or (batch, T, {n_in}) for its "
                f"{n_in} input neurons, got {tuple(x.shape)}"
            )
        plan = self._plan
        if not plan.n_state:
            flat = x if x.ndim == 2 else ops.reshape(x, (-1, n_in))
            y = readout(self._step(flat, None), plan.out_rows)
            return y if x.ndim == 2 else ops.reshape(y, (x.shape[0], x.shape[1], n_out))
        return self._run_sequence(x)

    def _step(self, x: Tensor, s: Tensor | None) -> Tensor:
        wanted = [a is not None and a.requires_grad for a in (x, s, self.weight, self.bias)]
        return graph_net(x, s, self.weight, self.bias, plan=self._plan, memo=Memo(sum(wanted)),
                         need_base=wanted[0] or wanted[1])

    def _run_sequence(self, x: Tensor) -> Tensor:
        plan = self._plan
        batch, steps = x.shape[0], (1 if x.ndim == 2 else x.shape[1])
        tracer = _core.TRACER
        if tracer is not None and self not in _RESET_IN_TRACE.get(tracer, ()):
            tracer.unsupported("carrying a recurrent GraphNet's state from one call to the next "
                               "(call reset_state() in the step, before the net runs)")
        state = self._state
        if state is None:
            state = Tensor(np.zeros((batch, plan.n_state), self.weight.dtype))
        elif state.shape[0] != batch:
            raise ValueError(
                f"GraphNet: the carried recurrent state has batch size {state.shape[0]} but the "
                f"input has batch size {batch}; call reset_state() before a new batch"
            )
        ys = []
        k = self.truncate_bptt
        for t in range(steps):
            if k is not None and t and t % k == 0:
                state = state.detach()
            H = self._step(x if x.ndim == 2 else x[:, t], state)
            ys.append(readout(H, plan.out_rows))
            state = readout(H, plan.state_src_rows)
        self._state = state.detach()
        return ys[0] if x.ndim == 2 else ops.stack(ys, 1)

    def reset_state(self) -> None:
        """Forget the carried recurrent state: the next call starts from zeros."""
        self._state = None
        if _core.TRACER is not None:  # a compiled step that starts from zeros replays faithfully
            _RESET_IN_TRACE.setdefault(_core.TRACER, weakref.WeakSet()).add(self)

    # -- weights by name -----------------------------------------------------------------------
    def _edge_position(self, key: Any, delayed: bool) -> int:
        if not isinstance(key, tuple) or len(key) != 2:
            raise TypeError(f"GraphNet: weights are keyed by (source, target) pairs, got {key!r}")
        i = self._plan.edge_index.get((key[0], key[1], delayed))
        if i is not None:
            return i
        for n in key:
            if n not in self._plan.row_of:
                raise ValueError(f"GraphNet: unknown neuron {n!r} in edge {key!r}")
        kind = "delayed edge" if delayed else "edge"
        hint = ""
        if (key[0], key[1], not delayed) in self._plan.edge_index:
            other = "regular" if delayed else "delayed"
            hint = f" (it is a {other} edge: pass delayed={not delayed})"
        raise ValueError(f"GraphNet: there is no {kind} {key!r} in this network{hint}")

    def set_weights(self, weights: Mapping[tuple, float], delayed: bool = False) -> None:
        """Set the weights of the given edges, ``{(source, target): value}``; ``delayed=True``
        addresses delayed edges. Other weights are unchanged."""
        for key, value in weights.items():
            _mutate(operator.setitem, self.weight.data, self._edge_position(key, delayed),
                    float(value))  # told to a compile tracer, so a compiled step replays it

    def get_weights(self, delayed: bool = False) -> dict[tuple, float]:
        """``{(source, target): weight}`` for every edge (delayed edges with ``delayed=True``),
        in the order the edges were given."""
        w = self.weight.data
        return {e: float(w[i]) for e, i in self.edge_positions(delayed).items()}

    def edge_positions(self, delayed: bool = False) -> dict[tuple, int]:
        """``{(source, target): i}``: where each edge's weight sits in ``self.weight`` (to read
        ``self.weight.grad`` or optimiser state edge by edge)."""
        edges = self._spec.delayed if delayed else self._spec.edges
        index = self._plan.edge_index
        return {(s, t): index[(s, t, delayed)] for s, t in edges}

    def set_biases(self, biases: Mapping[Hashable, float]) -> None:
        """Set the biases of the given neurons, ``{neuron: value}``; others are unchanged."""
        for n, value in biases.items():
            i = self._plan.bias_index.get(n)
            if i is None:
                if n in self._plan.row_of:
                    raise ValueError(f"GraphNet: input neuron {n!r} has no bias")
                raise ValueError(f"GraphNet: unknown neuron {n!r} in set_biases")
            _mutate(operator.setitem, self.bias.data, i, float(value))  # replayed if compiled

    def get_biases(self) -> dict[Hashable, float]:
        """``{neuron: bias}`` for every non-input neuron."""
        b = self.bias.data
        return {n: float(b[i]) for n, i in self.bias_positions().items()}

    def bias_positions(self) -> dict[Hashable, int]:
        """``{neuron: i}``: where each neuron's bias sits in ``self.bias``."""
        index = self._plan.bias_index
        return {n: index[n] for n in self._spec.neurons if n in index}

    # -- description ---------------------------------------------------------------------------
    @property
    def inputs(self) -> tuple:
        return self._spec.inputs

    @property
    def outputs(self) -> tuple:
        return self._spec.outputs

    @property
    def neurons(self) -> tuple:
        """Every neuron id, inputs first."""
        return self._spec.neurons

    @property
    def edges(self) -> tuple:
        """The regular (same-step) edges, as given."""
        return self._spec.edges

    @property
    def delayed_edges(self) -> tuple:
        """The delayed (previous-step) edges, as given."""
        return self._spec.delayed

    @property
    def activations(self) -> dict:
        """``{neuron: activation name}`` for every non-input neuron."""
        return dict(self._spec.activation)

    @property
    def levels(self) -> list[list]:
        """Neurons by topological level: level 0 holds the inputs; each later level only reads
        earlier levels (and, through delayed edges, the previous step)."""
        out: list[list] = [[]]
        for n in (*self._spec.inputs, *self._plan.bias_keys):
            lv = self._plan.level_of[n]
            while len(out) <= lv:
                out.append([])
            out[lv].append(n)
        return out

    @property
    def is_recurrent(self) -> bool:
        """True when the network has delayed edges (and so carries state between steps)."""
        return bool(self._spec.delayed)

    def extra_repr(self) -> str:
        n_hidden = len(self._spec.neurons) - len(self.inputs) - len(self.outputs)
        text = (f"inputs={len(self.inputs)}, hidden={n_hidden}, outputs={len(self.outputs)}, "
                f"edges={len(self.edges)}, levels={len(self._plan.levels)}")
        if self._spec.delayed:
            text += f", delayed_edges={len(self._spec.delayed)}"
        return text

    def to_networkx(self) -> Any:
        """A ``networkx.DiGraph`` of this network with its current weights, biases and
        activations as attributes (``GraphNet.from_networkx`` rebuilds the same network)."""
        from .export import to_networkx

        return to_networkx(self)

    def to_dot(self) -> str:
        """The network as Graphviz DOT text: ranks by level, edge colour and width by weight."""
        from .export import to_dot

        return to_dot(self)

    def draw(self, path: str, **kwargs: Any) -> str:
        """Draw the network to a PNG at ``path`` (matplotlib, headless): neurons arranged by
        level, edge colour = weight sign, width = magnitude. Returns the path."""
        from .draw import draw

        return draw(self, path, **kwargs)
