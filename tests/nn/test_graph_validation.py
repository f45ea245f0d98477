"""GraphNet's validation: every wiring mistake and bad call is one clear line naming the
neurons involved."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import GraphNet

XOR_EDGES = [("x1", "h"), ("x2", "h"), ("h", "y"), ("x1", "y"), ("x2", "y")]


@contextlib.contextmanager
def raises(exc: type, match: str):
    """pytest.raises that also checks the message is a single line."""
    with pytest.raises(exc, match=match) as info:
        yield info
    assert "\n" not in str(info.value), str(info.value)


def test_cycle_without_delayed_edge_is_named():
    edges = [("x", "a"), ("a", "b"), ("b", "c"), ("c", "a"), ("c", "y")]
    with raises(ValueError, match="cycle with no delayed edge") as info:
        GraphNet(["x"], ["y"], edges)
    msg = str(info.value)
    assert "'a'" in msg and "'b'" in msg and "'c'" in msg and "'x'" not in msg
    cycle = msg.split(": ")[2].split(";")[0].split(" -> ")
    assert cycle[0] == cycle[-1] and sorted(cycle[:-1]) == ["'a'", "'b'", "'c'"]
    net = GraphNet(["x"], ["y"], [e for e in edges if e != ("c", "a")],
                   delayed_edges=[("c", "a")])
    assert net.is_recurrent


def test_self_loop_needs_to_be_delayed():
    with raises(ValueError, match="cycle with no delayed edge: 'h' -> 'h'"):
        GraphNet(["x"], ["y"], [("x", "h"), ("h", "h"), ("h", "y")])
    GraphNet(["x"], ["y"], [("x", "h"), ("h", "y")], delayed_edges=[("h", "h")])


def test_edge_into_an_input():
    with raises(ValueError, match="points into input neuron 'x1'"):
        GraphNet(["x1", "x2"], ["y"], [*XOR_EDGES, ("h", "x1")])
    with raises(ValueError, match="in delayed_edges points into input neuron 'x2'"):
        GraphNet(["x1", "x2"], ["y"], XOR_EDGES, delayed_edges=[("y", "x2")])


def test_output_unreachable_from_inputs():
    with raises(ValueError, match="output 'z' is not reachable from any input"):
        GraphNet(["x"], ["y", "z"], [("x", "y"), ("b", "z")])
    with raises(ValueError, match="output 'z' is not reachable"):
        GraphNet(["x"], ["y", "z"], [("x", "y")])
    # reachable only through a delayed edge is fine: it hears the input one step later
    GraphNet(["x"], ["y", "z"], [("x", "y")], delayed_edges=[("y", "z")])


def test_duplicate_edges():
    with raises(ValueError, match=r"duplicate edge \('x1', 'h'\) in edges"):
        GraphNet(["x1", "x2"], ["y"], [*XOR_EDGES, ("x1", "h")])
    with raises(ValueError, match=r"duplicate edge \('h', 'h'\) in delayed_edges"):
        GraphNet(["x1", "x2"], ["y"], XOR_EDGES, delayed_edges=[("h", "h"), ("h", "h")])
    with raises(ValueError, match="listed twice in inputs"):
        GraphNet(["x1", "x1"], ["y"], XOR_EDGES)
    # the same pair as a regular and as a delayed edge are two different edges
    net = GraphNet(["x1", "x2"], ["y"], XOR_EDGES, delayed_edges=[("x1", "h")])
    net.set_weights({("x1", "h"): 2.0}, delayed=True)
    assert net.get_weights(delayed=True) == {("x1", "h"): 2.0}
    assert net.get_weights()[("x1", "h")] != 2.0


def test_unknown_neurons():
    net = GraphNet(["x1", "x2"], ["y"], XOR_EDGES)
    with raises(ValueError, match=r"unknown neuron 'q' in edge \('x1', 'q'\)"):
        net.set_weights({("x1", "q"): 1.0})
    with raises(ValueError, match=r"there is no edge \('h', 'x1'\)"):
        net.set_weights({("h", "x1"): 1.0})
    with raises(ValueError, match="unknown neuron 'q' in set_biases"):
        net.set_biases({"q": 1.0})
    with raises(ValueError, match="input neuron 'x1' has no bias"):
        net.set_biases({"x1": 1.0})
    with raises(ValueError, match="unknown neuron 'q' in activations"):
        GraphNet(["x1", "x2"], ["y"], XOR_EDGES, activations={"q": "tanh"})
    with raises(ValueError, match="input neuron 'x1' has no activation"):
        GraphNet(["x1", "x2"], ["y"], XOR_EDGES, activations={"x1": "tanh"})
    with raises(ValueError, match="unknown neuron 'q' in inputs"):
        GraphNet(["x1", "q"], ["y"], np.ones((3, 3)), neurons=["x1", "h", "y"])
    with raises(ValueError, match=r"unknown neuron 'z' in edges \('h', 'z'\)"):
        GraphNet(["x1"], ["y"], [("x1", "h"), ("h", "z"), ("h", "y")],
                 neurons=["x1", "h", "y"])
    with raises(TypeError, match="weights are keyed by"):
        net.set_weights({"x1": 1.0})


def test_delayed_edge_hint_when_addressed_as_regular():
    net = GraphNet(["x"], ["y"], [("x", "y")], delayed_edges=[("y", "y")])
    with raises(ValueError, match=r"no edge \('y', 'y'\).*pass delayed=True"):
        net.set_weights({("y", "y"): 1.0})


def test_sequence_input_with_the_wrong_shape():
    net = GraphNet(["x1", "x2"], ["y"], XOR_EDGES)
    for shape in [(4,), (4, 3), (2, 5, 3), (2, 5, 2, 1)]:
        with raises(ValueError, match=r"input must have shape \(batch, 2\) or \(batch, T, 2\)"):
            net(cr.tensor(np.zeros(shape)))
    rnn = GraphNet(["x"], ["y"], [("x", "y")], delayed_edges=[("y", "y")])
    with raises(ValueError, match=r"\(batch, 1\) or \(batch, T, 1\)"):
        rnn(cr.tensor(np.zeros((2, 3))))
    rnn(cr.tensor(np.zeros((2, 3, 1))))
    with raises(ValueError, match="carried recurrent state has batch size 2 .* reset_state"):
        rnn(cr.tensor(np.zeros((5, 3, 1))))
    rnn.reset_state()
    assert rnn(cr.tensor(np.zeros((5, 3, 1)))).shape == (5, 3, 1)


def test_bad_arguments():
    with raises(ValueError, match="unknown activation 'swish' for neuron 'h'"):
        GraphNet(["x1", "x2"], ["y"], XOR_EDGES, activations={"h": "swish"})
    with raises(ValueError, match="unknown activation 'nope' for activation"):
        GraphNet(["x1", "x2"], ["y"], XOR_EDGES, activation="nope")
    with raises(ValueError, match="both an input and an output"):
        GraphNet(["x1", "x2"], ["x1"], XOR_EDGES)
    with raises(ValueError, match="at least one input and one output"):
        GraphNet([], ["y"], XOR_EDGES)
    with raises(TypeError, match="inputs must be a list of neuron ids"):
        GraphNet("x1", ["y"], XOR_EDGES)
    with raises(ValueError, match=r"edges\[1\] = \('x2',\) is not a \(source, target\) pair"):
        GraphNet(["x1", "x2"], ["y"], [("x1", "y"), ("x2",)])
    with raises(TypeError, match="neuron ids must be hashable"):
        GraphNet(["x1", "x2"], ["y"], [("x1", "y"), (["x2"], "y")])
    with raises(ValueError, match=r"adjacency matrix must be square \(n, n\), got shape \(2, 3\)"):
        GraphNet([0], [1], np.ones((2, 3)))
    with raises(ValueError, match="3x3 adjacency matrix but neurons has 2 names"):
        GraphNet([0], [2], np.ones((3, 3)), neurons=["a", "b"])
    with raises(ValueError, match="truncate_bptt must be a positive number of steps"):
        GraphNet(["x"], ["y"], [("x", "y")], delayed_edges=[("y", "y")], truncate_bptt=0)
    with raises(ValueError, match="truncate_bptt needs a recurrent network"):
        GraphNet(["x"], ["y"], [("x", "y")], truncate_bptt=3)
