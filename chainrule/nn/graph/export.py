"""A GraphNet as other tools see it: a networkx.DiGraph (round-trips through from_networkx) and
Graphviz DOT text (ranks by level; edge colour and width show each weight's sign and size)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .net import GraphNet

POSITIVE, NEGATIVE = "#1f77b4", "#d62728"  # blue for excitatory, red for inhibitory weights
ROLE_COLOURS = {"input": "#c7e9c0", "hidden": "#e0e0e0", "output": "#fdd0a2"}


def role(net: GraphNet, n: Any) -> str:
    """'input', 'output' or 'hidden'."""
    if n in net.inputs:
        return "input"
    return "output" if n in net.outputs else "hidden"


def to_networkx(net: GraphNet) -> Any:
    """Nodes carry role, level, bias, activation; edges weight and delayed; the graph its
    inputs and outputs, so ``GraphNet.from_networkx(g, g.graph['inputs'], ...)`` rebuilds it."""
    try:
        import networkx as nx
    except ImportError:  # pragma: no cover - networkx is in chainrule[full]
        raise ImportError("to_networkx needs networkx: pip install networkx") from None
    g = nx.DiGraph(inputs=list(net.inputs), outputs=list(net.outputs))
    biases, level_of, acts = net.get_biases(), net._plan.level_of, net.activations
    for n in net.neurons:
        attrs: dict[str, Any] = {"role": role(net, n), "level": level_of[n]}
        if n in biases:
            attrs.update(bias=biases[n], activation=acts[n])
        g.add_node(n, **attrs)
    for (s, t), w in net.get_weights().items():
        g.add_edge(s, t, weight=w, delayed=False)
    for (s, t), w in net.get_weights(delayed=True).items():
        if g.has_edge(s, t):
            raise ValueError(
                f"to_networkx: {(s, t)!r} is both a regular and a delayed edge, which a DiGraph "
                "cannot hold (one edge per pair); use get_weights() and get_weights(delayed=True)"
            )
        g.add_edge(s, t, weight=w, delayed=True)
    return g


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def edge_style(w: float, biggest: float) -> tuple[str, float]:
    """(colour, width) of an edge: blue/red by sign, 0.5 to 4 wide by |w| / biggest |w|."""
    return (POSITIVE if w >= 0 else NEGATIVE), 0.5 + 3.5 * abs(w) / biggest


def to_dot(net: GraphNet) -> str:
    """Graphviz DOT text; render with ``dot -Tpng``. Delayed edges are dashed."""
    ident = {n: f"n{i}" for i, n in enumerate(net.neurons)}
    biases, acts = net.get_biases(), net.activations
    lines = ["digraph GraphNet {", "  rankdir=LR;", "  node [shape=circle, style=filled, "
             "fontsize=10];"]
    for n in net.neurons:
        r = role(net, n)
        label = str(n) if r == "input" else f"{n}\n{acts[n]}\nb={biases[n]:.3g}"
        shape = ", shape=box" if r == "input" else ", shape=doublecircle" if r == "output" else ""
        lines.append(f"  {ident[n]} [label={_quote(label)}{shape}, "
                     f"fillcolor={_quote(ROLE_COLOURS[r])}];")
    for level in net.levels:
        lines.append("  { rank=same; " + " ".join(f"{ident[n]};" for n in level) + " }")
    regular, delayed = net.get_weights(), net.get_weights(delayed=True)
    biggest = max((abs(w) for w in (*regular.values(), *delayed.values())), default=0.0) or 1.0
    for extra, weights in (("", regular), (", style=dashed, constraint=false", delayed)):
        for (s, t), w in weights.items():
            colour, width = edge_style(w, biggest)
            lines.append(f"  {ident[s]} -> {ident[t]} [label={_quote(f'{w:.3g}')}, "
                         f"color={_quote(colour)}, penwidth={width:.2f}{extra}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
