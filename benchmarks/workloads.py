"""The benchmark workloads, each written once per framework from the same weights and data.

A workload is a problem maker (sizes, seed -> weights, batch, labels, all float32 NumPy) and one
builder per framework: ``builder(problem) -> Runner``, whose ``step()`` runs one training step
(forward, backward, SGD update) and returns a loss handle (``as_float`` reads it). Frameworks
that are not installed raise ImportError from their builder and are skipped by the caller.
``run.py`` times these side by side; ``tests/test_bench_smoke.py`` runs them at tiny sizes and
checks that every framework's losses agree.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench_lenet, run as a script

LR = 0.01


@dataclass
class Runner:
    """One framework's training step; ``sync`` waits for queued work (JAX dispatches async)."""

    step: Callable[[], Any]
    sync: Callable[[], None] = lambda: None


@dataclass
class Workload:
    """A named problem and its per-framework builders (in table order)."""

    name: str
    title: str
    make: Callable[..., dict]
    builders: dict[str, Callable[[dict], Runner]]
    full: dict[str, Any] = field(default_factory=dict)  # sizes of the real benchmark
    tiny: dict[str, Any] = field(default_factory=dict)  # sizes of the CI smoke run


def as_float(h: Any) -> float:
    """A loss handle (chainrule/torch/jax tensor, NumPy value, float) as a Python float."""
    return float(h.item() if hasattr(h, "item") else h)


# -- MLP classifiers: small (overhead-bound) and medium (GEMM-bound) ---------------------------
def make_mlp(sizes: tuple[int, ...], batch: int, act: str, seed: int = 0) -> dict:
    """PyTorch-default uniform(+-1/sqrt(fan_in)) weights in (out, in) layout, a normal batch and
    integer labels."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1.0 / np.sqrt(fan_in)
        params.append((rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32),
                       rng.uniform(-bound, bound, fan_out).astype(np.float32)))
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    return {"params": params, "x": x, "y": y, "act": act}


def mlp_chainrule(pb: dict, compiled: bool = False) -> Runner:
    """nn.Sequential of nn.Linear + activation, nn.CrossEntropyLoss, optim.SGD."""
    import chainrule as cr
    from chainrule import nn, optim
    from chainrule.compile import compile as cr_compile

    layers: list = []
    for i, (w, b) in enumerate(pb["params"]):
        lin = nn.Linear(w.shape[1], w.shape[0])
        lin.weight.data[...] = w
        lin.bias.data[...] = b
        layers.append(lin)
        if i < len(pb["params"]) - 1:
            layers.append(nn.Tanh() if pb["act"] == "tanh" else nn.ReLU())
    model = nn.Sequential(*layers)
    opt = optim.SGD(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    x, y = cr.tensor(pb["x"]), cr.tensor(pb["y"])

    def step(x: Any, y: Any) -> Any:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    fn = cr_compile(step) if compiled else step
    return Runner(lambda: fn(x, y))


def mlp_torch(pb: dict) -> Runner:
    """torch.nn.Sequential, nn.CrossEntropyLoss, torch.optim.SGD (the usual PyTorch loop)."""
    import torch

    layers: list = []
    for i, (w, b) in enumerate(pb["params"]):
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < len(pb["params"]) - 1:
            layers.append(torch.nn.Tanh() if pb["act"] == "tanh" else torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = torch.from_numpy(pb["x"]), torch.from_numpy(pb["y"])

    def step() -> Any:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    return Runner(step)


def mlp_jax(pb: dict) -> Runner:
    """A jax.jit-compiled value_and_grad step returning the new parameters."""
    import jax
    import jax.numpy as jnp

    act = jnp.tanh if pb["act"] == "tanh" else jax.nn.relu

    def loss_fn(ps: list, x: Any, y: Any) -> Any:
        h = x
        for i, (w, b) in enumerate(ps):
            h = h @ w + b
            if i < len(ps) - 1:
                h = act(h)
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    @jax.jit
    def step(ps: list, x: Any, y: Any) -> tuple:
        loss, grads = jax.value_and_grad(loss_fn)(ps, x, y)
        new = [(w - LR * gw, b - LR * gb) for (w, b), (gw, gb) in zip(ps, grads, strict=True)]
        return new, loss

    state = [[(jnp.asarray(w.T), jnp.asarray(b)) for w, b in pb["params"]]]
    x, y = jnp.asarray(pb["x"]), jnp.asarray(pb["y"])

    def run() -> Any:
        state[0], loss = step(state[0], x, y)
        return loss

    return Runner(run, lambda: jax.block_until_ready(state[0]))


def mlp_autograd(pb: dict) -> Runner:
    """HIPS autograd: grad of a NumPy loss, SGD on a list of arrays."""
    import autograd
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp

    act = anp.tanh if pb["act"] == "tanh" else (lambda h: anp.maximum(h, 0.0))
    params = [[w.copy(), b.copy()] for w, b in pb["params"]]
    x, y = pb["x"], pb["y"]
    rows = np.arange(len(y))

    def loss_fn(ps: list) -> Any:
        h = x
        for i, (w, b) in enumerate(ps):
            h = anp.dot(h, w.T) + b
            if i < len(ps) - 1:
                h = act(h)
        return -anp.mean((h - logsumexp(h, axis=1, keepdims=True))[rows, y])

    vg = autograd.value_and_grad(loss_fn)

    def step() -> Any:
        loss, grads = vg(params)
        for p, g in zip(params, grads, strict=True):
            p[0] -= np.float32(LR) * g[0].astype(np.float32)
            p[1] -= np.float32(LR) * g[1].astype(np.float32)
        return loss

    return Runner(step)


def mlp_numpy(pb: dict) -> Runner:
    """Hand-written NumPy backprop (same layouts and products as chainrule): the bar to beat."""
    ws = [w.copy() for w, _ in pb["params"]]
    bs = [b.copy() for _, b in pb["params"]]
    x, y = pb["x"], pb["y"]
    n, rows, relu = len(y), np.arange(len(y)), pb["act"] != "tanh"
    lr = np.float32(LR)

    def step() -> Any:
        hs = [x]
        for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
            z = hs[-1] @ w.T
            z += b
            if i < len(ws) - 1:
                z = np.maximum(z, 0, out=z) if relu else np.tanh(z, out=z)
            hs.append(z)
        z = hs.pop()
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        s = p.sum(axis=1)
        loss = np.mean(np.log(s) - z[rows, y])
        p /= s[:, None]
        p[rows, y] -= 1
        g = p / np.float32(n)
        for i in range(len(ws) - 1, -1, -1):
            h = hs[i]
            gw, gb = g.T @ h, g.sum(axis=0)
            if i:
                g = g @ ws[i]
                g *= (h > 0) if relu else (1 - h * h)
            ws[i] -= lr * gw
            bs[i] -= lr * gb
        return loss

    return Runner(step)


def mlp_sklearn(pb: dict) -> Runner:
    """scikit-learn's MLPClassifier, one partial_fit (one SGD step on the batch) per step."""
    from sklearn.neural_network import MLPClassifier

    ws = pb["params"]
    clf = MLPClassifier(
        hidden_layer_sizes=tuple(w.shape[0] for w, _ in ws[:-1]), activation=pb["act"],
        solver="sgd", learning_rate_init=LR, momentum=0.0, nesterovs_momentum=False, alpha=0.0,
        batch_size=len(pb["y"]), shuffle=False,
    )
    x, y = pb["x"], pb["y"]
    classes = np.arange(ws[-1][0].shape[0])
    clf.partial_fit(x, y, classes=classes)  # sets up its arrays; the weights are replaced:
    clf.coefs_ = [w.T.copy() for w, _ in ws]  # each partial_fit updates these in place
    clf.intercepts_ = [b.copy() for _, b in ws]

    def step() -> Any:
        clf.partial_fit(x, y)
        return clf.loss_

    return Runner(step)


def gemm_floor(pb: dict) -> Runner:
    """Only the matrix products of one MLP step (3 forward, 3 weight-gradient, 2 input-gradient
    GEMMs for three layers) in NumPy into preallocated arrays: the hardware limit of a step."""
    ws = [w for w, _ in pb["params"]]
    x = pb["x"]
    hs = [x] + [np.ones((len(x), w.shape[0]), np.float32) for w in ws]
    outs = [np.empty_like(h) for h in hs[1:]]
    gws = [np.empty_like(w) for w in ws]
    gxs = [np.empty_like(h) for h in hs[:-1]]

    def step() -> None:
        for i, w in enumerate(ws):
            np.matmul(hs[i], w.T, out=outs[i])
        for i in range(len(ws) - 1, -1, -1):
            np.matmul(hs[i + 1].T, hs[i], out=gws[i])
            if i:
                np.matmul(hs[i + 1], ws[i], out=gxs[i])

    return Runner(step)


def gemm_floor_feature_major(pb: dict) -> Runner:
    """The same matrix products in the layouts chainrule uses for batches of up to 256 rows
    (activations and their gradients stored feature-major, (features, N); see
    chainrule.ops.linalg.FEATURE_MAJOR_MAX_ROWS): W @ h.T forward, g.T @ h and W.T @ g.T back.
    OpenBLAS runs these faster than the batch-major products of ``gemm_floor``."""
    ws = [w for w, _ in pb["params"]]
    x = pb["x"]
    n = len(x)
    hts = [x.T] + [np.ones((w.shape[0], n), np.float32) for w in ws]  # h.T, C-contiguous
    outs = [np.empty_like(h) for h in hts[1:]]
    gws = [np.empty_like(w) for w in ws]
    gxs = [np.empty((w.shape[1], n), np.float32) for w in ws]

    def step() -> None:
        for i, w in enumerate(ws):
            np.matmul(w, hts[i], out=outs[i])
        for i in range(len(ws) - 1, -1, -1):
            np.matmul(hts[i + 1], hts[i].T, out=gws[i])
            if i:
                np.matmul(ws[i].T, hts[i + 1], out=gxs[i])

    return Runner(step)


# -- LeNet-like conv net: the conv helper's benchmark code, plus a compiled variant -------------
def make_lenet(batch: int, seed: int = 0) -> dict:
    from bench_lenet import make_problem

    params, x, y = make_problem(batch, seed)
    return {"params": params, "x": x, "y": y}


def lenet_chainrule(pb: dict) -> Runner:
    from bench_lenet import chainrule_step

    return Runner(chainrule_step(pb["params"], pb["x"], pb["y"]))


def lenet_torch(pb: dict) -> Runner:
    from bench_lenet import torch_step

    return Runner(torch_step(pb["params"], pb["x"], pb["y"]))


def lenet_compiled(pb: dict) -> Runner:
    """bench_lenet's network and update, returning the loss tensor, under chainrule.compile."""
    from bench_lenet import chainrule_sgd_step

    import chainrule as cr
    from chainrule.compile import compile as cr_compile

    ps = [cr.tensor(p.copy(), requires_grad=True) for p in pb["params"]]
    x, y = cr.tensor(pb["x"]), pb["y"]
    rows = np.arange(len(y))

    def step(x: Any) -> Any:
        return chainrule_sgd_step(ps, x, rows, y)

    fn = cr_compile(step)
    return Runner(lambda: fn(x))


# -- micrograd's own workload: a 2-16-16-1 ReLU MLP on 64 "moons" points, hinge loss + L2 -------
ALPHA = 1e-4


def make_moons(n: int = 64, seed: int = 0) -> dict:
    """Two interleaved half circles with noise (as sklearn's make_moons), labels -1/+1, and
    micrograd-style uniform(-1, 1) weights for a 2-16-16-1 network."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    upper = np.arange(n) % 2 == 0
    pts = np.where(upper[:, None], np.c_[np.cos(t), np.sin(t)],
                   np.c_[1 - np.cos(t), 0.5 - np.sin(t)])
    x = (pts + rng.normal(0, 0.1, (n, 2))).astype(np.float32)
    y = np.where(upper, 1.0, -1.0).astype(np.float32)
    sizes = (2, 16, 16, 1)
    params = [(rng.uniform(-1, 1, (b, a)).astype(np.float32), np.zeros(b, np.float32))
              for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    return {"params": params, "x": x, "y": y}


def moons_chainrule(pb: dict, compiled: bool = False) -> Runner:
    import chainrule as cr
    from chainrule import nn, optim
    from chainrule.compile import compile as cr_compile

    (w1, b1), (w2, b2), (w3, b3) = pb["params"]
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 1))
    for lin, (w, b) in zip((model[0], model[2], model[4]), pb["params"], strict=True):
        lin.weight.data[...] = w
        lin.bias.data[...] = b
    params = list(model.parameters())
    opt = optim.SGD(params, lr=LR)
    x, y = cr.tensor(pb["x"]), cr.tensor(pb["y"][:, None])

    def step(x: Any, y: Any) -> Any:
        opt.zero_grad()
        data_loss = (1.0 - y * model(x)).relu().mean()
        loss = data_loss + ALPHA * sum((p * p).sum() for p in params)
        loss.backward()
        opt.step()
        return loss

    fn = cr_compile(step) if compiled else step
    return Runner(lambda: fn(x, y))


def moons_micrograd(pb: dict) -> Runner:
    """micrograd's own MLP and training loop (scalar Values, float64)."""
    from micrograd.engine import Value
    from micrograd.nn import MLP

    model = MLP(2, [16, 16, 1])
    for layer, (w, b) in zip(model.layers, pb["params"], strict=True):
        for neuron, wrow, bias in zip(layer.neurons, w, b, strict=True):
            for v, wv in zip(neuron.w, wrow, strict=True):
                v.data = float(wv)
            neuron.b.data = float(bias)
    params = model.parameters()
    inputs = [list(map(Value, row)) for row in pb["x"].tolist()]
    ys = pb["y"].tolist()

    def step() -> Any:
        scores = list(map(model, inputs))
        losses = [(1 + -yi * si).relu() for yi, si in zip(ys, scores, strict=True)]
        data_loss = sum(losses) * (1.0 / len(losses))
        loss = data_loss + ALPHA * sum(p * p for p in params)
        model.zero_grad()
        loss.backward()
        for p in params:
            p.data -= LR * p.grad
        return loss.data

    return Runner(step)


def moons_torch(pb: dict) -> Runner:
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16),
                                torch.nn.ReLU(), torch.nn.Linear(16, 1))
    with torch.no_grad():
        for lin, (w, b) in zip((model[0], model[2], model[4]), pb["params"], strict=True):
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=LR)
    x, y = torch.from_numpy(pb["x"]), torch.from_numpy(pb["y"][:, None])

    def step() -> Any:
        opt.zero_grad()
        loss = (1.0 - y * model(x)).relu().mean() + ALPHA * sum((p * p).sum() for p in params)
        loss.backward()
        opt.step()
        return loss.detach()

    return Runner(step)


def moons_jax(pb: dict) -> Runner:
    import jax
    import jax.numpy as jnp

    def loss_fn(ps: list, x: Any, y: Any) -> Any:
        h = x
        for i, (w, b) in enumerate(ps):
            h = h @ w + b
            if i < len(ps) - 1:
                h = jax.nn.relu(h)
        reg = sum((w * w).sum() + (b * b).sum() for w, b in ps)
        return jax.nn.relu(1.0 - y * h).mean() + ALPHA * reg

    @jax.jit
    def step(ps: list, x: Any, y: Any) -> tuple:
        loss, grads = jax.value_and_grad(loss_fn)(ps, x, y)
        new = [(w - LR * gw, b - LR * gb) for (w, b), (gw, gb) in zip(ps, grads, strict=True)]
        return new, loss

    state = [[(jnp.asarray(w.T), jnp.asarray(b)) for w, b in pb["params"]]]
    x, y = jnp.asarray(pb["x"]), jnp.asarray(pb["y"][:, None])

    def run() -> Any:
        state[0], loss = step(state[0], x, y)
        return loss

    return Runner(run, lambda: jax.block_until_ready(state[0]))


def _mlp_builders() -> dict[str, Callable[[dict], Runner]]:
    return {
        "chainrule": mlp_chainrule,
        "chainrule.compile": lambda pb: mlp_chainrule(pb, compiled=True),
        "numpy": mlp_numpy,
        "torch": mlp_torch,
        "jax.jit": mlp_jax,
        "autograd": mlp_autograd,
        "sklearn": mlp_sklearn,
    }


WORKLOADS: dict[str, Workload] = {
    w.name: w for w in (
        Workload("small_mlp", "small MLP: batch 32, 64-64-64-10, tanh, cross-entropy, SGD",
                 lambda sizes, batch, seed=0: make_mlp(sizes, batch, "tanh", seed),
                 _mlp_builders(),
                 full={"sizes": (64, 64, 64, 10), "batch": 32},
                 tiny={"sizes": (8, 8, 8, 4), "batch": 6}),
        Workload("medium_mlp", "medium MLP: batch 128, 784-512-512-10, ReLU, cross-entropy, SGD",
                 lambda sizes, batch, seed=0: make_mlp(sizes, batch, "relu", seed),
                 {**_mlp_builders(), "gemm floor": gemm_floor,
                  "gemm floor, feature-major": gemm_floor_feature_major},
                 full={"sizes": (784, 512, 512, 10), "batch": 128},
                 tiny={"sizes": (20, 16, 16, 5), "batch": 8}),
        Workload("lenet", "LeNet-like conv net: batch 64 of 1x28x28, cross-entropy, SGD",
                 lambda batch, seed=0: make_lenet(batch, seed),
                 {"chainrule": lenet_chainrule, "chainrule.compile": lenet_compiled,
                  "torch": lenet_torch},
                 full={"batch": 64}, tiny={"batch": 2}),
        Workload("micrograd", "micrograd's workload: 2-16-16-1 ReLU MLP, 64 moons points, hinge "
                 "loss + L2, SGD",
                 lambda n, seed=0: make_moons(n, seed),
                 {"chainrule": moons_chainrule,
                  "chainrule.compile": lambda pb: moons_chainrule(pb, compiled=True),
                  "micrograd": moons_micrograd, "torch": moons_torch, "jax.jit": moons_jax},
                 full={"n": 64}, tiny={"n": 8}),
    )
}

# frameworks whose step computes no loss (the GEMM floors) or that compute in float64 (micrograd)
NO_LOSS = {"gemm floor", "gemm floor, feature-major"}
