"""GraphNet numerics: the same outputs, gradients and initial weights as a Sequential MLP;
gradients against finite differences on random DAGs and recurrent graphs (first and second
order, dense and sparse levels); XOR with one hidden unit; running parity; state and BPTT."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.nn import GraphNet
from chainrule.nn.graph import plan as graph_plan

ACTS = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "softsign", "identity"]


def layered(sizes: list[int]) -> tuple[list, list, list, list]:
    layers = [[f"l{i}n{k}" for k in range(n)] for i, n in enumerate(sizes)]
    edges = [(s, t) for a, b in zip(layers[:-1], layers[1:], strict=True) for t in b for s in a]
    return layers[0], layers[-1], edges, layers


def random_dag(seed: int, n_in: int = 3, n_hidden: int = 7, n_out: int = 2, p: float = 0.4):
    """Random DAG with skip connections, a bias-only neuron and direct input->output edges."""
    rng = np.random.default_rng(seed)
    ins = [f"x{i}" for i in range(n_in)]
    order = ins + ["b"] + [f"h{i}" for i in range(n_hidden)] + [f"y{i}" for i in range(n_out)]
    edges = [(order[i], order[j]) for j in range(n_in, len(order)) for i in range(j)
             if order[j] != "b" and rng.random() < p]
    edges += [(ins[0], o) for o in order[-n_out:] if (ins[0], o) not in edges]
    acts = {n: ACTS[k % len(ACTS)] for k, n in enumerate(order[n_in:])}
    return ins, order[-n_out:], edges, acts


def use_params(net: GraphNet, w: cr.Tensor, b: cr.Tensor) -> None:
    """Run ``net`` on the given weight and bias tensors (for gradcheck over parameters)."""
    net.weight, net.bias = w, b


def params64(net: GraphNet, rng: np.random.Generator) -> tuple[cr.Tensor, cr.Tensor]:
    w = cr.tensor(net.weight.data + rng.normal(0, 0.5, net.weight.shape), dtype=cr.float64,
                  requires_grad=True)
    b = cr.tensor(rng.normal(0, 0.5, net.bias.shape), dtype=cr.float64, requires_grad=True)
    return w, b


@pytest.fixture(params=["dense", "csr", "edge-list"])
def level_mode(request, monkeypatch):
    """Run a test with the default (dense) level kernels, then with every level sparse: as
    SciPy CSR products, and as NumPy edge lists (the kernel used without SciPy)."""
    if request.param != "dense":
        monkeypatch.setattr(graph_plan, "DENSE_MIN", 0)
        monkeypatch.setattr(graph_plan, "CSR_RATIO", 0)
        monkeypatch.setattr(graph_plan, "EDGE_RATIO", 0)
    if request.param == "csr":
        pytest.importorskip("scipy.sparse")
    if request.param == "edge-list":
        monkeypatch.setattr(graph_plan, "csr_matrix", lambda: None)
    return request.param


def test_level_mode_fixture_builds_the_kernels_it_names(level_mode):
    ins, outs, edges, acts = random_dag(0)
    kinds = {type(lv).__name__ for lv in GraphNet(ins, outs, edges)._plan.levels[1:]}
    expected = {"dense": "DenseLevel", "csr": "CsrLevel", "edge-list": "EdgeListLevel"}
    assert kinds == {expected[level_mode]}


def test_layered_graphnet_matches_sequential_outputs_and_gradients():
    cr.manual_seed(0)
    seq = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.Sigmoid(),
                        nn.Linear(4, 2)).double()
    ins, outs, edges, layers = layered([3, 5, 4, 2])
    net = GraphNet(ins, outs, edges, activation="tanh", output_activation="identity",
                   activations={n: "sigmoid" for n in layers[2]}).double()
    linears = [seq[0], seq[2], seq[4]]
    for lin, src, dst in zip(linears, layers[:-1], layers[1:], strict=True):
        net.set_weights({(s, t): lin.weight.data[j, i] for j, t in enumerate(dst)
                         for i, s in enumerate(src)})
        net.set_biases({t: lin.bias.data[j] + 0.1 * j for j, t in enumerate(dst)})
        lin.bias.data += 0.1 * np.arange(len(dst))
    x0 = np.random.default_rng(1).normal(size=(7, 3))
    xs, xg = cr.tensor(x0, dtype=cr.float64, requires_grad=True), cr.tensor(
        x0, dtype=cr.float64, requires_grad=True)
    ys, yg = seq(xs), net(xg)
    np.testing.assert_allclose(yg.data, ys.data, rtol=1e-12, atol=1e-12)
    mix = cr.tensor(np.random.default_rng(2).normal(size=(7, 2)), dtype=cr.float64)
    (ys * mix).sum().backward()
    (yg * mix).sum().backward()
    np.testing.assert_allclose(xg.grad.data, xs.grad.data, rtol=1e-10, atol=1e-12)
    pos, bpos = net.edge_positions(), net.bias_positions()
    for lin, src, dst in zip(linears, layers[:-1], layers[1:], strict=True):
        for j, t in enumerate(dst):
            got = [net.weight.grad.data[pos[(s, t)]] for s in src]
            np.testing.assert_allclose(got, lin.weight.grad.data[j], rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(net.bias.grad.data[bpos[t]], lin.bias.grad.data[j],
                                       rtol=1e-10, atol=1e-12)


def test_layered_graphnet_is_initialised_exactly_like_linear_layers():
    ins, outs, edges, layers = layered([4, 6, 3])
    cr.manual_seed(5)
    seq = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    cr.manual_seed(5)
    net = GraphNet(ins, outs, edges)
    w = net.get_weights()
    for lin, src, dst in zip([seq[0], seq[2]], layers[:-1], layers[1:], strict=True):
        got = [[w[(s, t)] for s in src] for t in dst]
        np.testing.assert_array_equal(np.array(got, np.float32), lin.weight.data)
    assert all(v == 0.0 for v in net.get_biases().values())


def test_init_by_name_callable_and_generator():
    ins, outs, edges, _ = random_dag(0)
    assert set(GraphNet(ins, outs, edges, init="zeros").get_weights().values()) == {0.0}
    net = GraphNet(ins, outs, edges, init=lambda t: nn.init.constant(t, 0.5))
    assert set(net.get_weights().values()) == {0.5}
    a = GraphNet(ins, outs, edges, init="he_normal", generator=cr.Generator(3)).get_weights()
    b = GraphNet(ins, outs, edges, init="he_normal", generator=cr.Generator(3)).get_weights()
    assert a == b and len(set(a.values())) == len(a)
    with pytest.raises(ValueError, match="unknown initialiser"):
        GraphNet(ins, outs, edges, init="nope")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_dag_gradients_match_finite_differences(seed, level_mode):
    ins, outs, edges, acts = random_dag(seed)
    net = GraphNet(ins, outs, edges, activations=acts)
    rng = np.random.default_rng(seed)
    w, b = params64(net, rng)
    x = cr.tensor(rng.normal(size=(4, len(ins))), dtype=cr.float64, requires_grad=True)

    def f(w, b, x):
        use_params(net, w, b)
        return net(x)

    assert cr.gradcheck(f, [w, b, x])


def test_second_derivatives_through_graphnet_match_finite_differences(level_mode):
    """create_graph=True replays the compiled levels with differentiable ops."""
    ins, outs, edges, acts = random_dag(3)
    acts = {n: ("tanh" if a in ("relu", "leaky_relu", "elu") else a) for n, a in acts.items()}
    net = GraphNet(ins, outs, edges, activations=acts)
    rng = np.random.default_rng(3)
    w, b = params64(net, rng)
    x = cr.tensor(rng.normal(size=(3, len(ins))), dtype=cr.float64, requires_grad=True)

    def grad_of_input(w, b, x):
        use_params(net, w, b)
        (gx,) = cr.autograd.grad((net(x) ** 2).sum(), [x], create_graph=True)
        return gx

    assert cr.gradcheck(grad_of_input, [w, b, x])


def elman(n_hidden: int, **kw) -> GraphNet:
    hidden = [f"h{i}" for i in range(n_hidden)]
    edges = [("x", h) for h in hidden] + [(h, "y") for h in hidden]
    delayed = [(a, b) for a in hidden for b in hidden]
    return GraphNet(["x"], ["y"], edges, delayed_edges=delayed, **kw)


def recurrent_net() -> GraphNet:
    """Cycles only through delayed edges: self-loop, output -> hidden, input -> hidden."""
    return GraphNet(["a", "b"], ["o", "p"],
                    [("a", "h1"), ("b", "h2"), ("h1", "o"), ("h2", "o"), ("a", "o"),
                     ("h1", "p")],
                    delayed_edges=[("h1", "h1"), ("o", "h2"), ("h2", "h1"), ("a", "h2"),
                                   ("p", "p")],
                    activations={"p": "sigmoid", "h2": "softsign"})


def test_recurrent_gradients_match_finite_differences(level_mode):
    net = recurrent_net()
    rng = np.random.default_rng(4)
    w, b = params64(net, rng)
    x = cr.tensor(rng.normal(size=(2, 3, 2)), dtype=cr.float64, requires_grad=True)

    def f(w, b, x):
        use_params(net, w, b)
        net.reset_state()
        return net(x)

    assert cr.gradcheck(f, [w, b, x])

    def grad_of_weights(w, b, x):
        use_params(net, w, b)
        net.reset_state()
        (gw,) = cr.autograd.grad((net(x) ** 2).sum(), [w], create_graph=True)
        return gw

    assert cr.gradcheck(grad_of_weights, [w, b, x])


def test_truncated_bptt_cuts_the_gradient_every_k_steps():
    net = elman(3, truncate_bptt=2).double()
    x = cr.tensor(np.random.default_rng(0).normal(size=(2, 5, 1)), dtype=cr.float64,
                  requires_grad=True)
    net(x)[:, 3].sum().backward()
    g = np.abs(x.grad.data[..., 0]).sum(0)
    assert g[0] == 0 and g[1] == 0 and g[2] > 0 and g[3] > 0 and g[4] == 0
    full = elman(3).double()
    full.load_state_dict(net.state_dict())
    x.grad = None
    full(x)[:, 3].sum().backward()
    assert (np.abs(x.grad.data[..., 0]).sum(0)[:4] > 0).all()


def test_state_is_carried_between_calls_until_reset():
    cr.manual_seed(0)
    net = recurrent_net()
    x = cr.tensor(np.random.default_rng(1).normal(size=(3, 6, 2)))
    whole = net(x).data
    net.reset_state()
    halves = np.concatenate([net(x[:, :2]).data, net(x[:, 2:]).data], axis=1)
    np.testing.assert_allclose(halves, whole, rtol=1e-6, atol=1e-6)
    steps = [net(x[:, t]).data for t in range(6)]  # 2-D input = one step, state carried on
    net.reset_state()
    np.testing.assert_allclose(net(x).data, whole, rtol=1e-6)
    assert not np.allclose(np.stack(steps, 1), whole)
    net.reset_state()
    np.testing.assert_allclose(np.stack([net(x[:, t]).data for t in range(6)], 1), whole,
                               rtol=1e-6, atol=1e-6)


def test_feedforward_net_maps_sequences_step_by_step():
    ins, outs, edges, acts = random_dag(1)
    net = GraphNet(ins, outs, edges, activations=acts)
    x = cr.tensor(np.random.default_rng(0).normal(size=(4, 5, len(ins))))
    y = net(x)
    assert y.shape == (4, 5, len(outs))
    np.testing.assert_allclose(y.data[:, 2], net(x[:, 2]).data, rtol=1e-6)


def test_bias_only_neuron_and_unused_input():
    net = GraphNet(["x", "unused"], ["y"], [("x", "y"), ("c", "y")],
                   activations={"c": "sigmoid"}, output_activation="identity")
    net.set_weights({("x", "y"): 2.0, ("c", "y"): 3.0})
    net.set_biases({"c": 0.0, "y": 1.0})
    y = net(cr.tensor([[1.0, 5.0], [0.0, -5.0]]))
    np.testing.assert_allclose(y.data[:, 0], [2.0 + 1.5 + 1.0, 1.5 + 1.0], rtol=1e-6)
    assert net.levels == [["x", "unused"], ["c"], ["y"]]


def test_edges_as_adjacency_matrix_and_networkx_graph_give_the_same_network():
    nx = pytest.importorskip("networkx")
    names = ["x1", "x2", "h", "y"]
    edge_list = [("x1", "h"), ("x2", "h"), ("h", "y"), ("x1", "y"), ("x2", "y")]
    a = np.zeros((4, 4))
    for s, t in edge_list:
        a[names.index(s), names.index(t)] = 1
    nets = [GraphNet(["x1", "x2"], ["y"], edge_list, generator=cr.Generator(0)),
            GraphNet(["x1", "x2"], ["y"], a, neurons=names, generator=cr.Generator(0)),
            GraphNet(["x1", "x2"], ["y"], nx.DiGraph(edge_list), generator=cr.Generator(0))]
    x = cr.tensor([[0.5, -1.0], [2.0, 0.0]])
    for other in nets[1:]:
        assert set(other.edges) == set(edge_list)
        other.set_weights(nets[0].get_weights())
        np.testing.assert_allclose(other(x).data, nets[0](x).data, rtol=1e-6)
    by_index = GraphNet([0, 1], [3], a)
    assert set(by_index.edges) == {(0, 2), (1, 2), (2, 3), (0, 3), (1, 3)}


XOR_X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
XOR_Y = [[0.0], [1.0], [1.0], [0.0]]
XOR_EDGES = [("x1", "h"), ("x2", "h"), ("h", "y"), ("x1", "y"), ("x2", "y")]


def test_classic_xor_solution_with_one_hidden_unit():
    """h = AND(x1, x2); y = OR(x1, x2) and not h (Rumelhart, Hinton & Williams 1986)."""
    net = GraphNet(inputs=["x1", "x2"], outputs=["y"], edges=XOR_EDGES, activation="sigmoid")
    net.set_weights({("x1", "h"): 10.0, ("x2", "h"): 10.0, ("h", "y"): -20.0,
                     ("x1", "y"): 10.0, ("x2", "y"): 10.0})
    net.set_biases({"h": -15.0, "y": -5.0})
    np.testing.assert_array_equal(net(cr.tensor(XOR_X)).data > 0.5, np.array(XOR_Y) > 0.5)


def test_xor_network_with_one_hidden_unit_learns_xor():
    cr.manual_seed(0)
    net = GraphNet(inputs=["x1", "x2"], outputs=["y"], edges=XOR_EDGES, activation="sigmoid")
    x, y = cr.tensor(XOR_X), cr.tensor(XOR_Y)
    opt = optim.Adam(net.parameters(), lr=0.1)
    loss_fn = nn.BCELoss()
    for _ in range(1500):
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
    out = net(x).data
    assert loss.item() < 0.05
    np.testing.assert_array_equal(out > 0.5, np.array(XOR_Y) > 0.5)


def test_recurrent_graphnet_learns_running_parity():
    t = 5
    bits = np.array(list(itertools.product([0.0, 1.0], repeat=t)), np.float32)
    x = cr.tensor(bits[:, :, None])
    y = cr.tensor((np.cumsum(bits, 1) % 2)[:, :, None])
    cr.manual_seed(0)
    net = elman(8, activation="tanh", output_activation="sigmoid")
    opt = optim.Adam(net.parameters(), lr=0.05)
    loss_fn = nn.BCELoss()
    for _ in range(500):
        net.reset_state()
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
    net.reset_state()
    assert ((net(x).data > 0.5) == (y.data > 0.5)).all()


def test_float64_parameters_and_integer_inputs():
    net = GraphNet(["x1", "x2"], ["y"], XOR_EDGES).double()
    y = net(cr.tensor([[0, 1], [1, 1]]))
    assert y.dtype == np.float64 and y.shape == (2, 1)
    assert GraphNet(["x1", "x2"], ["y"], XOR_EDGES)(cr.tensor([[0, 1]])).dtype == np.float32


def test_no_graph_under_no_grad_and_repr():
    net = recurrent_net()
    with cr.no_grad():
        y = net(cr.tensor(np.ones((2, 3, 2))))
    assert not y.requires_grad
    text = "GraphNet(inputs=2, hidden=2, outputs=2, edges=6, levels=2, delayed_edges=5)"
    assert repr(net) == text
    assert net.is_recurrent and not GraphNet(["a"], ["b"], [("a", "b")]).is_recurrent


def test_backward_twice_through_a_retained_graph_and_frozen_weights():
    ins, outs, edges, acts = random_dag(2)
    net = GraphNet(ins, outs, edges, activations=acts).double()
    x = cr.tensor(np.random.default_rng(0).normal(size=(4, len(ins))), dtype=cr.float64)
    loss = (net(x) ** 2).sum()
    loss.backward(retain_graph=True)
    first_w, first_b = net.weight.grad.data.copy(), net.bias.grad.data.copy()
    loss.backward()
    np.testing.assert_allclose(net.weight.grad.data, 2 * first_w, rtol=1e-12)
    np.testing.assert_allclose(net.bias.grad.data, 2 * first_b, rtol=1e-12)
    net.zero_grad()
    net.weight.requires_grad_(False)
    (net(x) ** 2).sum().backward()
    assert net.weight.grad is None
    np.testing.assert_allclose(net.bias.grad.data, first_b, rtol=1e-12)
