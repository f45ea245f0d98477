"""GraphNet's wiring, parsed and validated: an edge list, a networkx graph or an adjacency
matrix becomes one GraphSpec, and every mistake is reported in one line naming the neurons."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...tensor import Tensor
from . import activations as acts

Edge = tuple[Hashable, Hashable]


@dataclass(frozen=True)
class GraphSpec:
    """A validated wiring: neurons (inputs first), outputs, regular and delayed edges, one
    activation per non-input neuron, and any weights/biases a networkx graph carried."""

    neurons: tuple
    inputs: tuple
    outputs: tuple
    edges: tuple[Edge, ...]
    delayed: tuple[Edge, ...]
    activation: dict
    weights: dict  # (source, target, delayed) -> float
    biases: dict  # neuron -> float


def _err(msg: str) -> ValueError:
    return ValueError(f"GraphNet: {msg}")


def is_networkx(obj: Any) -> bool:
    """True for a networkx graph (checked by module, so networkx is imported only if used)."""
    return type(obj).__module__.split(".")[0] == "networkx"


def _ids(seq: Any, what: str) -> tuple:
    if isinstance(seq, (str, bytes)) or not isinstance(seq, Iterable):
        raise TypeError(f"GraphNet: {what} must be a list of neuron ids, got {seq!r}")
    out = tuple(seq)
    for n in out:
        _check_hashable(n)
    seen: set = set()
    for n in out:
        if n in seen:
            raise _err(f"neuron {n!r} is listed twice in {what}")
        seen.add(n)
    return out


def _check_hashable(n: Any) -> None:
    try:
        hash(n)
    except TypeError:
        raise TypeError(
            f"GraphNet: neuron ids must be hashable (str, int, tuple), got {n!r}"
        ) from None


def _adjacency(a: Any, names: list | None, what: str) -> tuple[list[Edge], list]:
    arr = np.asarray(a.data if isinstance(a, Tensor) else a)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise _err(f"{what} as an adjacency matrix must be square (n, n), got shape {arr.shape}")
    n = arr.shape[0]
    if names is None:
        names = list(range(n))
    elif len(names) != n:
        raise _err(f"{what} is a {n}x{n} adjacency matrix but neurons has {len(names)} names")
    rows, cols = np.nonzero(arr)
    return [(names[i], names[j]) for i, j in zip(rows.tolist(), cols.tolist(), strict=True)], names


def _pairs(obj: Any, what: str) -> list[Edge]:
    if isinstance(obj, (str, bytes)) or not isinstance(obj, Iterable):
        raise TypeError(
            f"GraphNet: {what} must be a list of (source, target) pairs, a networkx.DiGraph or an "
            f"adjacency matrix (numpy array), got {type(obj).__name__}"
        )
    out = []
    for k, e in enumerate(obj):
        if not isinstance(e, (tuple, list)) or len(e) != 2:
            raise _err(f"{what}[{k}] = {e!r} is not a (source, target) pair")
        _check_hashable(e[0])
        _check_hashable(e[1])
        out.append((e[0], e[1]))
    return out


class _Source:
    """Edges, names and attributes read from whatever form the user passed."""

    def __init__(self, edges: Any, delayed_edges: Any, neurons: Any) -> None:
        self.names: list | None = None if neurons is None else list(_ids(neurons, "neurons"))
        self.weights: dict = {}
        self.biases: dict = {}
        self.node_acts: dict = {}
        self.delayed: list[Edge] = []
        if is_networkx(edges):
            self.edges = self._networkx(edges, neurons)
        elif isinstance(edges, (np.ndarray, Tensor)):
            self.edges, self.names = _adjacency(edges, self.names, "edges")
        else:
            self.edges = _pairs(edges, "edges")
        if delayed_edges is not None:
            if isinstance(delayed_edges, (np.ndarray, Tensor)):
                more, self.names = _adjacency(delayed_edges, self.names, "delayed_edges")
            else:
                more = _pairs(delayed_edges, "delayed_edges")
            self.delayed.extend(more)

    def _networkx(self, g: Any, neurons: Any) -> list[Edge]:
        if neurons is not None:
            raise TypeError("GraphNet: pass neurons= only with an edge list or adjacency matrix; "
                            "a networkx graph names its own nodes")
        if not g.is_directed() or g.is_multigraph():
            raise TypeError(f"GraphNet: need a networkx.DiGraph, got {type(g).__name__}")
        self.names = list(g.nodes)
        for n, data in g.nodes(data=True):
            if data.get("bias") is not None:
                self.biases[n] = float(data["bias"])
            if data.get("activation") is not None:
                self.node_acts[n] = data["activation"]
        regular = []
        for s, t, data in g.edges(data=True):
            delayed = bool(data.get("delayed", False))
            (self.delayed if delayed else regular).append((s, t))
            if data.get("weight") is not None:
                self.weights[(s, t, delayed)] = float(data["weight"])
        return regular


def build_spec(
    inputs: Any, outputs: Any, edges: Any, *, delayed_edges: Any = None, neurons: Any = None,
    activation: str = "tanh", output_activation: str | None = None,
    activations: Mapping[Hashable, str] | None = None,
) -> GraphSpec:
    """Parse and validate a wiring; raise ValueError/TypeError (one line) on any mistake."""
    ins, outs = _ids(inputs, "inputs"), _ids(outputs, "outputs")
    if not ins or not outs:
        raise _err("a network needs at least one input and one output neuron")
    both = set(ins) & set(outs)
    if both:
        raise _err(f"neuron {next(iter(both))!r} is both an input and an output; "
                   "add an output neuron fed by it instead")
    src = _Source(edges, delayed_edges, neurons)
    neurons_all = _universe(ins, outs, src)
    _check_edges(src.edges, ins, "edges")
    _check_edges(src.delayed, ins, "delayed_edges")
    _check_acyclic(neurons_all, src.edges)
    _check_reachable(ins, outs, src.edges + src.delayed)
    act = _activations(neurons_all, ins, outs, activation, output_activation,
                       src.node_acts, activations or {})
    for n in src.biases:
        if n in set(ins):
            raise _err(f"input neuron {n!r} has no bias (remove its 'bias' attribute)")
    return GraphSpec(tuple(neurons_all), ins, outs, tuple(src.edges), tuple(src.delayed), act,
                     src.weights, src.biases)


def _universe(ins: tuple, outs: tuple, src: _Source) -> list:
    """Every neuron, inputs first; with explicit names every id used must be among them."""
    if src.names is not None:
        known = set(src.names)
        for what, ids in (("inputs", ins), ("outputs", outs)):
            for n in ids:
                if n not in known:
                    raise _err(f"unknown neuron {n!r} in {what}: it is not a neuron of the graph")
        for what, es in (("edges", src.edges), ("delayed_edges", src.delayed)):
            for e in es:
                for n in e:
                    if n not in known:
                        raise _err(f"unknown neuron {n!r} in {what} {e!r}: it is not in neurons")
        order: Iterable = src.names
    else:
        order = (n for e in src.edges + src.delayed for n in e)
    out = list(ins)
    seen = set(ins)
    for n in (*order, *outs):
        if n not in seen:
            seen.add(n)
            out.append(n)
    return out


def _check_edges(edges: list[Edge], ins: tuple, what: str) -> None:
    inputs, seen = set(ins), set()
    for e in edges:
        if e in seen:
            raise _err(f"duplicate edge {e!r} in {what}: each (source, target) pair may appear "
                       "once")
        seen.add(e)
        if e[1] in inputs:
            raise _err(f"edge {e!r} in {what} points into input neuron {e[1]!r}; inputs take "
                       "no incoming edges")


def _check_acyclic(neurons: list, edges: list[Edge]) -> None:
    """Kahn's algorithm on the regular edges; what is left over holds a cycle, which we name."""
    preds: dict = {n: [] for n in neurons}
    indeg = dict.fromkeys(neurons, 0)
    succ: dict = {n: [] for n in neurons}
    for s, t in edges:
        preds[t].append(s)
        succ[s].append(t)
        indeg[t] += 1
    ready = [n for n in neurons if indeg[n] == 0]
    while ready:
        n = ready.pop()
        for t in succ[n]:
            indeg[t] -= 1
            if indeg[t] == 0:
                ready.append(t)
    left = [n for n in neurons if indeg[n] > 0]
    if not left:
        return
    path, pos, n = [], {}, left[0]
    while n not in pos:  # walk backwards along remaining predecessors until one repeats
        pos[n] = len(path)
        path.append(n)
        n = next(p for p in preds[n] if indeg[p] > 0)
    cycle = path[pos[n]:][::-1]
    names = " -> ".join(repr(c) for c in [*cycle, cycle[0]])
    raise _err(f"the edges form a cycle with no delayed edge: {names}; list one of its edges in "
               "delayed_edges (it then reads the previous time step) or remove it")


def _check_reachable(ins: tuple, outs: tuple, edges: list[Edge]) -> None:
    succ: dict = {}
    for s, t in edges:
        succ.setdefault(s, []).append(t)
    seen, stack = set(ins), list(ins)
    while stack:
        for t in succ.get(stack.pop(), ()):
            if t not in seen:
                seen.add(t)
                stack.append(t)
    for o in outs:
        if o not in seen:
            raise _err(f"output {o!r} is not reachable from any input; add a path of edges "
                       "from an input to it")


def _activations(
    neurons: list, ins: tuple, outs: tuple, activation: str, output_activation: str | None,
    node_acts: Mapping, overrides: Mapping,
) -> dict:
    inputs, known = set(ins), set(neurons)
    for what, table in (("activations", overrides), ("'activation' node attributes", node_acts)):
        for n in table:
            if n not in known:
                raise _err(f"unknown neuron {n!r} in {what}")
            if n in inputs:
                raise _err(f"input neuron {n!r} has no activation (remove it from {what})")
    default = acts.resolve(activation, "activation")
    out_default = default if output_activation is None else acts.resolve(
        output_activation, "output_activation")
    outputs = set(outs)
    table = {}
    for n in neurons:
        if n in inputs:
            continue
        if n in overrides:
            table[n] = acts.resolve(overrides[n], f"neuron {n!r}")
        elif n in node_acts:
            table[n] = acts.resolve(node_acts[n], f"neuron {n!r}")
        else:
            table[n] = out_default if n in outputs else default
    return table
