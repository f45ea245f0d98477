"""GraphNet speed: (a) a random DAG of 1,000 neurons and 10,000 edges against a micrograd-style
scalar graph of the same topology, and (b) a GraphNet wired as a layered MLP against the same
Sequential of Linear layers. One training step = forward + MSE loss + backward + SGD update.

The scalar engine (below, micrograd's design: one Python object per number, a closure per
operation) is timed on a few samples and scaled linearly to the batch, as it costs the same per
sample; the output says so. BLAS is pinned to one thread (the scalar engine has one; and on a
shared machine OpenBLAS threads waiting for busy cores make small products erratic). Each time
is the median over interleaved repeats, as wall-clock and as process CPU time (CPU time is the
steadier figure when other jobs share the machine).
Usage: python benchmarks/bench_graphnet.py [--repeats N]; prints a table and writes
benchmarks/results/graphnet.json.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads its BLAS

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

import chainrule as cr  # noqa: E402
from chainrule import nn, optim  # noqa: E402
from chainrule.io import write_json_atomic  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "graphnet.json")


# -- a micrograd-style scalar engine --------------------------------------------------------------
class Value:
    """One scalar and its gradient, with the closure that sends the gradient to its operands."""

    __slots__ = ("data", "grad", "_backward", "_prev")

    def __init__(self, data: float, prev: tuple = ()) -> None:
        self.data, self.grad, self._prev = data, 0.0, prev
        self._backward: Callable[[], None] = _noop

    def __add__(self, other: Value) -> Value:
        out = Value(self.data + other.data, (self, other))

        def backward() -> None:
            self.grad += out.grad
            other.grad += out.grad

        out._backward = backward
        return out

    def __mul__(self, other: Value) -> Value:
        out = Value(self.data * other.data, (self, other))

        def backward() -> None:
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = backward
        return out

    def __sub__(self, other: Value) -> Value:
        return self + other * Value(-1.0)

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        out = Value(t, (self,))

        def backward() -> None:
            self.grad += (1 - t * t) * out.grad

        out._backward = backward
        return out

    def backward(self) -> None:
        """Reverse topological order (iterative, so deep graphs don't hit the recursion limit)."""
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            v, done = stack.pop()
            if done:
                order.append(v)
            elif id(v) not in seen:
                seen.add(id(v))
                stack.append((v, True))
                stack.extend((p, False) for p in v._prev)
        self.grad = 1.0
        for v in reversed(order):
            v._backward()


def _noop() -> None:
    pass


class ScalarGraph:
    """The same network as a GraphNet, evaluated one scalar at a time, one sample at a time."""

    def __init__(self, net: nn.GraphNet) -> None:
        self.inputs, self.outputs = net.inputs, net.outputs
        weights, biases = net.get_weights(), net.get_biases()
        self.w = {e: Value(v) for e, v in weights.items()}
        self.b = {n: Value(v) for n, v in biases.items()}
        self.acts = net.activations
        self.order = [n for level in net.levels[1:] for n in level]
        self.incoming: dict = {n: [] for n in self.order}
        for s, t in weights:
            self.incoming[t].append(s)

    def sample_step(self, x: np.ndarray, y: np.ndarray) -> None:
        """Forward and backward for one sample, accumulating into the parameters' grads."""
        val = {n: Value(float(v)) for n, v in zip(self.inputs, x, strict=True)}
        for n in self.order:
            z = self.b[n]
            for s in self.incoming[n]:
                z = z + self.w[(s, n)] * val[s]
            val[n] = z.tanh() if self.acts[n] == "tanh" else z
        loss = Value(0.0)
        for o, target in zip(self.outputs, y, strict=True):
            d = val[o] - Value(float(target))
            loss = loss + d * d
        loss.backward()

    def update(self, lr: float, batch: int) -> None:
        for p in (*self.w.values(), *self.b.values()):
            p.data -= lr * p.grad / batch
            p.grad = 0.0


# -- the networks ---------------------------------------------------------------------------------
def random_dag(n: int, m: int, n_in: int, n_out: int, seed: int) -> tuple[list, list, list]:
    """m distinct edges (i, j), i < j, drawn uniformly over neurons 0..n-1 in a fixed order;
    the first n_in neurons are inputs (no edges into them), the last n_out outputs."""
    rng = np.random.default_rng(seed)
    edges: set = set()
    while len(edges) < m:
        i = rng.integers(0, n, 2 * m)
        j = rng.integers(0, n, 2 * m)
        for a, b in zip(np.minimum(i, j).tolist(), np.maximum(i, j).tolist(), strict=True):
            if a != b and b >= n_in and len(edges) < m:
                edges.add((a, b))
    return list(range(n_in)), list(range(n - n_out, n)), sorted(edges)


def _timed(fns: dict[str, Callable[[], None]], repeats: int) -> dict[str, tuple[float, float]]:
    """Median (wall, cpu) seconds per call, the functions measured interleaved after a warm-up."""
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in fns}
    for f in fns.values():
        f()
    for _ in range(repeats):
        for name, f in fns.items():
            w0, c0 = time.perf_counter(), time.process_time()
            f()
            times[name].append((time.perf_counter() - w0, time.process_time() - c0))
    return {k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v))
            for k, v in times.items()}


def _train_step(model: nn.Module, x: cr.Tensor, y: cr.Tensor) -> Callable[[], None]:
    opt = optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.MSELoss()

    def step() -> None:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    return step


def bench_dag(repeats: int, scalar_samples: int) -> dict:
    n, m, n_in, n_out, batch = 1000, 10_000, 32, 10, 256
    ins, outs, edges = random_dag(n, m, n_in, n_out, seed=0)
    cr.manual_seed(0)
    net = nn.GraphNet(ins, outs, edges, activation="tanh", output_activation="identity")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(batch, n_in)).astype(np.float32)
    y = rng.normal(size=(batch, n_out)).astype(np.float32)
    graph_wall, graph_cpu = _timed(
        {"graphnet": _train_step(net, cr.tensor(x), cr.tensor(y))}, repeats)["graphnet"]
    scalar = ScalarGraph(net)
    samples = {f"sample{k}": (lambda k=k: scalar.sample_step(x[k], y[k]))
               for k in range(scalar_samples)}
    per_sample = _timed(samples, 1)
    w0, c0 = time.perf_counter(), time.process_time()
    scalar.update(0.01, 2 * scalar_samples)
    update = (time.perf_counter() - w0, time.process_time() - c0)
    scalar_wall = statistics.median(t[0] for t in per_sample.values()) * batch + update[0]
    scalar_cpu = statistics.median(t[1] for t in per_sample.values()) * batch + update[1]
    return {
        "neurons": n, "edges": m, "inputs": n_in, "outputs": n_out, "batch": batch,
        "levels": len(net.levels) - 1,
        "graphnet_step_wall_s": graph_wall, "graphnet_step_cpu_s": graph_cpu,
        "scalar_step_wall_s": scalar_wall, "scalar_step_cpu_s": scalar_cpu,
        "scalar_samples_measured": scalar_samples,
        "scalar_note": f"micrograd-style engine timed on {scalar_samples} samples (median per "
                       f"sample) and scaled linearly to batch {batch}, plus one measured update",
        "speedup_wall": scalar_wall / graph_wall, "speedup_cpu": scalar_cpu / graph_cpu,
        "target_speedup": 1000.0,
    }


def layered_edges(sizes: list[int]) -> tuple[list, list, list, list]:
    """Neuron ids and edges of a fully connected layered network of the given sizes."""
    layers = [[f"l{i}_{k}" for k in range(n)] for i, n in enumerate(sizes)]
    edges = [(s, t) for a, b in zip(layers[:-1], layers[1:], strict=True) for t in b for s in a]
    return layers[0], layers[-1], edges, layers


def bench_mlp(repeats: int) -> dict:
    sizes, batch = [64, 64, 64, 10], 128
    cr.manual_seed(0)
    seq = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                        nn.Linear(64, 10))
    ins, outs, edges, layers = layered_edges(sizes)
    net = nn.GraphNet(ins, outs, edges, activation="tanh", output_activation="identity")
    linears = [seq[0], seq[2], seq[4]]
    for lin, src, dst in zip(linears, layers[:-1], layers[1:], strict=True):
        net.set_weights({(s, t): lin.weight.data[j, i] for j, t in enumerate(dst)
                         for i, s in enumerate(src)})
        net.set_biases({t: lin.bias.data[j] for j, t in enumerate(dst)})
    rng = np.random.default_rng(2)
    x = cr.tensor(rng.normal(size=(batch, sizes[0])).astype(np.float32))
    y = cr.tensor(rng.normal(size=(batch, sizes[-1])).astype(np.float32))
    assert np.allclose(net(x).data, seq(x).data, atol=1e-5), "GraphNet and Sequential disagree"
    t = _timed({"graphnet": _train_step(net, x, y), "sequential": _train_step(seq, x, y)},
               repeats)
    return {
        "sizes": sizes, "batch": batch,
        "graphnet_step_wall_s": t["graphnet"][0], "graphnet_step_cpu_s": t["graphnet"][1],
        "sequential_step_wall_s": t["sequential"][0], "sequential_step_cpu_s": t["sequential"][1],
        "ratio_wall": t["graphnet"][0] / t["sequential"][0],
        "ratio_cpu": t["graphnet"][1] / t["sequential"][1],
        "target_ratio_at_most": 3.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--scalar-samples", type=int, default=4)
    args = parser.parse_args()
    dag = bench_dag(args.repeats, args.scalar_samples)
    mlp = bench_mlp(args.repeats * 10)
    print(f"\n(a) random DAG, {dag['neurons']} neurons, {dag['edges']} edges "
          f"({dag['levels']} levels), batch {dag['batch']}: one training step (SGD)")
    print(f"    {'':22s}{'wall':>12s}{'cpu':>12s}")
    print(f"    {'GraphNet':22s}{dag['graphnet_step_wall_s'] * 1e3:10.2f}ms"
          f"{dag['graphnet_step_cpu_s'] * 1e3:10.2f}ms")
    print(f"    {'micrograd-style *':22s}{dag['scalar_step_wall_s']:11.1f}s"
          f"{dag['scalar_step_cpu_s']:11.1f}s")
    print(f"    {'speed-up':22s}{dag['speedup_wall']:11.0f}x{dag['speedup_cpu']:11.0f}x"
          f"   target >= 1000x: {_verdict(min(dag['speedup_wall'], dag['speedup_cpu']) >= 1000)}")
    print(f"    * {dag['scalar_note']}")
    print(f"\n(b) layered MLP {'-'.join(map(str, mlp['sizes']))}, batch {mlp['batch']}, tanh: "
          "one training step (SGD)")
    print(f"    {'':22s}{'wall':>12s}{'cpu':>12s}")
    for name in ("graphnet", "sequential"):
        label = "GraphNet" if name == "graphnet" else "Sequential(Linear)"
        print(f"    {label:22s}{mlp[name + '_step_wall_s'] * 1e6:10.1f}us"
              f"{mlp[name + '_step_cpu_s'] * 1e6:10.1f}us")
    print(f"    {'GraphNet/Sequential':22s}{mlp['ratio_wall']:11.2f}x{mlp['ratio_cpu']:11.2f}x"
          f"   target <= 3x: {_verdict(max(mlp['ratio_wall'], mlp['ratio_cpu']) <= 3)}")
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    write_json_atomic(RESULTS, {
        "benchmark": "graphnet", "python": platform.python_version(),
        "numpy": np.__version__, "machine": platform.machine(), "cpus": os.cpu_count(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "load_average_1min": os.getloadavg()[0],
        "random_dag": dag, "layered_mlp": mlp,
    })
    print(f"\nwrote {os.path.relpath(RESULTS)}")


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


if __name__ == "__main__":
    main()
