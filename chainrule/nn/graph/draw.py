"""Draw a GraphNet to a PNG with matplotlib, headless (Agg canvas, no pyplot state): one column
per topological level, edge colour = weight sign, edge width = weight magnitude."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...io import atomic_open
from .export import NEGATIVE, POSITIVE, ROLE_COLOURS, edge_style, role

if TYPE_CHECKING:
    from .net import GraphNet

_ARROWS_UP_TO = 400  # more edges than this are drawn as plain lines (arrows are slow)


def _positions(net: GraphNet) -> dict:
    """x = level; within a level, neurons sorted by the mean height of their sources (fewer
    crossings), spread evenly around 0."""
    preds: dict = {}
    for s, t in net.edges:
        preds.setdefault(t, []).append(s)
    pos: dict = {}
    for x, level in enumerate(net.levels):
        def height(n: Any, i: int) -> float:
            ys = [pos[p][1] for p in preds.get(n, ()) if p in pos]
            return sum(ys) / len(ys) if ys else float(i)

        ordered = sorted(enumerate(level), key=lambda p: (height(p[1], p[0]), p[0]))
        m = len(ordered)
        for k, (_, n) in enumerate(ordered):
            pos[n] = (float(x), (m - 1) / 2.0 - k)
    return pos


def draw(net: GraphNet, path: str, *, dpi: int = 100, title: str | None = None,
         labels: bool | None = None) -> str:
    """Write the PNG atomically and return ``path``. ``labels`` (default: up to 80 neurons)
    prints neuron ids."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import LineCollection
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import FancyArrowPatch
    except ImportError:  # pragma: no cover - matplotlib is in chainrule[full]
        raise ImportError("draw() needs matplotlib: pip install matplotlib") from None
    pos = _positions(net)
    levels = net.levels
    tallest = max(len(lv) for lv in levels)
    fig = Figure(figsize=(min(2.0 + 1.5 * len(levels), 30.0), min(1.5 + 0.55 * tallest, 30.0)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    regular, delayed = net.get_weights(), net.get_weights(delayed=True)
    biggest = max((abs(w) for w in (*regular.values(), *delayed.values())), default=0.0) or 1.0
    if len(regular) > _ARROWS_UP_TO:
        styles = [edge_style(w, biggest) for w in regular.values()]
        ax.add_collection(LineCollection(
            [(pos[s], pos[t]) for s, t in regular], colors=[c for c, _ in styles],
            linewidths=[wd * 0.5 for _, wd in styles], alpha=0.5, zorder=1))
    else:
        for (s, t), w in regular.items():
            colour, width = edge_style(w, biggest)
            skip = pos[t][0] - pos[s][0] > 1  # bend skip connections around the levels between
            ax.add_patch(FancyArrowPatch(pos[s], pos[t], arrowstyle="-|>", mutation_scale=10,
                                         color=colour, linewidth=width, alpha=0.8,
                                         connectionstyle=f"arc3,rad={-0.2 if skip else 0.0}",
                                         shrinkA=9, shrinkB=9, zorder=1))
    for (s, t), w in delayed.items():
        colour, width = edge_style(w, biggest)
        (xa, ya), (xb, yb) = pos[s], pos[t]
        if s == t:  # a self-loop: a small arc above the neuron
            (xa, ya), (xb, yb), rad = (xa - 0.12, ya + 0.08), (xa + 0.12, yb + 0.08), -2.2
        else:
            rad = 0.35
        ax.add_patch(FancyArrowPatch((xa, ya), (xb, yb), arrowstyle="-|>", mutation_scale=10,
                                     color=colour, linewidth=width, linestyle="--", alpha=0.8,
                                     connectionstyle=f"arc3,rad={rad}", shrinkA=7, shrinkB=7,
                                     zorder=1))
    small = len(net.neurons) <= 80
    xs = [pos[n][0] for n in net.neurons]
    ys = [pos[n][1] for n in net.neurons]
    ax.scatter(xs, ys, s=320 if small else 30, c=[ROLE_COLOURS[role(net, n)] for n in net.neurons],
               edgecolors="#333333", linewidths=0.8, zorder=2)
    if small if labels is None else labels:
        for n in net.neurons:
            ax.annotate(str(n), pos[n], ha="center", va="center", fontsize=8, zorder=3)
    ax.legend(handles=[Line2D([], [], color=POSITIVE, label="positive weight"),
                       Line2D([], [], color=NEGATIVE, label="negative weight"),
                       Line2D([], [], color="#777777", linestyle="--", label="delayed edge")],
              loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=8, frameon=False)
    ax.xaxis.tick_top()
    ax.tick_params(axis="x", length=0)
    ax.set_xticks(range(len(levels)), [f"level {i}" for i in range(len(levels))], fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(-0.6, len(levels) - 0.4)
    ax.set_ylim(-(tallest + 1) / 2.0, (tallest + 1) / 2.0)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or f"GraphNet: {len(net.neurons)} neurons, "
                 f"{len(regular) + len(delayed)} edges", fontsize=10)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi)
    return path
