"""GraphNet inspection: networkx round trip, Graphviz DOT text, and draw() writing a PNG."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import GraphNet

nx = pytest.importorskip("networkx")

XOR_EDGES = [("x1", "h"), ("x2", "h"), ("h", "y"), ("x1", "y"), ("x2", "y")]


def recurrent() -> GraphNet:
    return GraphNet(["a", "b"], ["o"], [("a", "h"), ("b", "h"), ("h", "o"), ("a", "o")],
                    delayed_edges=[("h", "h"), ("o", "h")], activations={"h": "relu"},
                    output_activation="sigmoid", generator=cr.Generator(1))


def test_networkx_round_trip_keeps_weights_biases_activations_and_outputs():
    net = recurrent()
    net.set_biases({"h": 0.25, "o": -0.5})
    g = net.to_networkx()
    assert isinstance(g, nx.DiGraph)
    assert g.nodes["a"]["role"] == "input" and g.nodes["o"]["role"] == "output"
    assert g.nodes["h"]["activation"] == "relu" and g.nodes["h"]["bias"] == 0.25
    assert g.nodes["o"]["level"] == 2
    assert g.edges["h", "h"]["delayed"] and not g.edges["a", "h"]["delayed"]
    assert g.edges["a", "h"]["weight"] == net.get_weights()[("a", "h")]
    for back in (GraphNet.from_networkx(g, inputs=["a", "b"], outputs=["o"]),
                 GraphNet.from_networkx(g)):
        assert back.get_weights() == net.get_weights()
        assert back.get_weights(delayed=True) == net.get_weights(delayed=True)
        assert back.get_biases() == net.get_biases()
        assert back.activations == net.activations
        x = cr.tensor(np.random.default_rng(0).normal(size=(3, 4, 2)))
        net.reset_state()
        np.testing.assert_allclose(back(x).data, net(x).data, rtol=1e-6)


def test_from_networkx_with_a_plain_digraph_initialises_weights():
    g = nx.DiGraph(XOR_EDGES)
    g.nodes["h"]["activation"] = "tanh"
    net = GraphNet.from_networkx(g, inputs=["x1", "x2"], outputs=["y"], activation="sigmoid")
    assert net.activations == {"h": "tanh", "y": "sigmoid"}
    assert len(set(net.get_weights().values())) == 5
    with pytest.raises(ValueError, match="pass inputs= and outputs="):
        GraphNet.from_networkx(g)
    with pytest.raises(TypeError, match="need a networkx.DiGraph, got Graph"):
        GraphNet(["x1", "x2"], ["y"], nx.Graph(XOR_EDGES))


def test_to_networkx_refuses_a_pair_that_is_both_regular_and_delayed():
    net = GraphNet(["x1", "x2"], ["y"], XOR_EDGES, delayed_edges=[("h", "y")])
    with pytest.raises(ValueError, match=r"\('h', 'y'\) is both a regular and a delayed edge"):
        net.to_networkx()


def test_to_dot_lists_every_neuron_and_edge_with_sign_colours():
    net = recurrent()
    net.set_weights({("a", "h"): -2.0, ("b", "h"): 1.0})
    dot = net.to_dot()
    assert dot.startswith("digraph GraphNet {") and dot.rstrip().endswith("}")
    assert dot.count("->") == len(net.edges) + len(net.delayed_edges)
    assert dot.count("style=dashed") == len(net.delayed_edges)
    assert dot.count("rank=same") == len(net.levels)
    lines = dot.splitlines()
    a_to_h = next(line for line in lines if 'label="-2"' in line)
    assert "#d62728" in a_to_h and "penwidth=4.00" in a_to_h  # negative, largest weight
    b_to_h = next(line for line in lines if 'label="1"' in line)
    assert "#1f77b4" in b_to_h
    assert 'label="h\\nrelu\\nb=0"' in dot and "shape=box" in dot and "doublecircle" in dot


def test_to_dot_quotes_awkward_neuron_ids():
    net = GraphNet(['in "1"'], [("out", 2)], [('in "1"', ("out", 2))])
    dot = net.to_dot()
    assert 'label="in \\"1\\""' in dot and "label=\"('out', 2)" in dot


def _is_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_draw_writes_a_png(tmp_path):
    path = tmp_path / "net.png"
    assert recurrent().draw(str(path)) == str(path)
    assert _is_png(path) and path.stat().st_size > 5000
    xor = GraphNet(["x1", "x2"], ["y"], XOR_EDGES)
    xor.draw(str(tmp_path / "xor.png"), title="XOR", dpi=60)
    assert _is_png(tmp_path / "xor.png")


def test_draw_a_large_network_and_report_bad_paths(tmp_path):
    rng = np.random.default_rng(0)
    pairs = {(int(a), int(b)) for a, b in np.sort(rng.integers(0, 150, (900, 2)), axis=1)
             if a != b and b >= 10}
    net = GraphNet(list(range(10)), [149], sorted(pairs), generator=cr.Generator(0))
    assert len(net.edges) > 400  # drawn as a line collection
    net.draw(str(tmp_path / "big.png"), dpi=40)
    assert _is_png(tmp_path / "big.png")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        net.draw(str(tmp_path / "missing" / "x.png"))
