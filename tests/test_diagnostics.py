"""Tests for chainrule.diagnostics.GradientMonitor: what it records, when its hooks run, and the
rules that flag vanishing/exploding gradients, saturated layers and dead units."""

import json
import math

import numpy as np
import pytest

import chainrule as cr
import chainrule.diagnostics as diagnostics
from chainrule import nn, optim
from chainrule.data.datasets import load_digits
from chainrule.diagnostics import GradientMonitor, HealthWarning, activation_stats
from chainrule.nn import init


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def deep(act, init_fn=None, depth=12, width=16, n_in=64, n_out=10, seed=0):
    """A Sequential MLP with `depth` hidden layers of `width` units; `init_fn(weight)` if given."""
    cr.manual_seed(seed)
    sizes = [n_in] + [width] * depth
    mods = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        mods += [nn.Linear(a, b), act()]
    mods.append(nn.Linear(width, n_out))
    model = nn.Sequential(*mods)
    if init_fn is not None:
        for m in model:
            if isinstance(m, nn.Linear):
                init_fn(m.weight)
    return model


def train(model, monitor, X, y, steps, lr=0.05, batch=32, seed=0, before_step=None):
    """Minibatch SGD on cross-entropy, calling monitor.step() after each backward."""
    optimizer = optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    for step in range(steps):
        if before_step is not None:
            before_step(step)
        idx = rng.choice(len(X), batch, replace=False)
        optimizer.zero_grad()
        with np.errstate(all="ignore"):
            loss_fn(model(cr.tensor(X[idx])), cr.tensor(y[idx])).backward()
            monitor.step()
            optimizer.step()


def kinds(warnings):
    return {w.kind for w in warnings}


# -- the "Done when" pair: vanishing on deep sigmoid + N(0, 1), quiet on tanh + Glorot -------------


def test_flags_vanishing_gradients_on_deep_sigmoid_with_standard_normal_init(digits):
    X, y = digits
    model = deep(nn.Sigmoid, lambda w: init.normal(w, 0.0, 1.0))
    monitor = GradientMonitor(model)
    train(model, monitor, X, y, steps=21)
    vanishing = [w for w in monitor.check() if w.kind == "vanishing"]
    assert len(vanishing) == 1
    w = vanishing[0]
    assert isinstance(w, HealthWarning) and w.layer == "0"  # the input-side layer
    assert w.values["ratio"] < 1e-2 / 3  # well past the limit, not at the edge
    assert "'0'" in w.message and "'24'" in w.message  # names input and output layers
    assert "Glorot" in w.message and "ReLU" in w.message  # suggests remedies
    assert f"{w.values['ratio']:.1e}" in w.message  # shows the numbers


def test_quiet_on_same_network_with_glorot_init_and_tanh(digits):
    X, y = digits
    model = deep(nn.Tanh, init.glorot_uniform)
    monitor = GradientMonitor(model)
    train(model, monitor, X, y, steps=21)
    assert monitor.check() == []
    assert "no problems found" in monitor.report()


def test_vanishing_verdicts_hold_across_seeds(digits):
    X, y = digits
    for seed in (1, 2):
        bad = deep(nn.Sigmoid, lambda w: init.normal(w, 0.0, 1.0), seed=seed)
        good = deep(nn.Tanh, init.glorot_uniform, seed=seed)
        bad_monitor, good_monitor = GradientMonitor(bad), GradientMonitor(good)
        train(bad, bad_monitor, X, y, steps=11, seed=seed)
        train(good, good_monitor, X, y, steps=11, seed=seed)
        assert "vanishing" in kinds(bad_monitor.check())
        assert good_monitor.check() == []


# -- the other rules -------------------------------------------------------------------------------


def test_flags_saturation_on_sigmoid_with_big_weights(digits):
    X, y = digits
    model = deep(nn.Sigmoid, lambda w: init.normal(w, 0.0, 3.0), depth=3, width=64)
    monitor = GradientMonitor(model)
    train(model, monitor, X, y, steps=11)
    saturated = [w for w in monitor.check() if w.kind == "saturated"]
    assert {w.layer for w in saturated} >= {"2", "4"}
    assert all(w.values["saturated"] > 0.5 for w in saturated)
    assert "tanh or ReLU instead of sigmoid" in saturated[0].message


def test_flags_dead_relu_units_from_very_negative_bias(digits):
    X, y = digits
    model = deep(nn.ReLU, depth=3, width=32)
    model[4].bias.data[:] = -10.0  # every unit of the last hidden layer starts dead
    monitor = GradientMonitor(model)
    train(model, monitor, X, y, steps=11)
    dead = [w for w in monitor.check() if w.kind == "dead"]
    assert [w.layer for w in dead] == ["4"]
    assert dead[0].values["dead"] == 1.0
    assert "100%" in dead[0].message and "LeakyReLU" in dead[0].message
    assert monitor.history[-1]["layers"]["0"]["dead"] < 0.5


def test_flags_exploding_gradients_when_weights_are_scaled_up(digits):
    X, y = digits
    model = deep(nn.ReLU, init.he_uniform, depth=6, width=32)
    monitor = GradientMonitor(model, every=5)

    def scale(step):
        if step == 38:
            for p in model.parameters():
                p.data *= 3.0

    train(model, monitor, X, y, steps=41, lr=0.01, before_step=scale)
    exploding = [w for w in monitor.check() if w.kind == "exploding"]
    assert {w.layer for w in exploding} >= {"0", "12"}
    assert all(w.values["now"] > 100 * w.values["before"] for w in exploding)
    assert "clip gradients" in exploding[0].message and "learning rate" in exploding[0].message


def test_flags_exploding_updates_with_a_huge_learning_rate(digits):
    X, y = digits
    model = deep(nn.Tanh, depth=6, width=32)
    monitor = GradientMonitor(model, every=5)
    train(model, monitor, X, y, steps=11, lr=50.0)
    exploding = [w for w in monitor.check() if w.kind == "exploding"]
    assert exploding and all(w.values["update_ratio"] > 1.0 for w in exploding)
    assert "learning rate is far too high" in exploding[0].message


def test_flags_inf_and_nan_gradients():
    model = deep(nn.Tanh, depth=2, width=8, n_in=4, n_out=2)
    monitor = GradientMonitor(model, every=1)
    x = cr.tensor(np.ones((3, 4), np.float32))
    model(x).sum().backward()
    model[0].weight.grad.data[0, 0] = np.inf
    model[2].weight.grad.data[0, 0] = np.nan
    monitor.step()
    found = {(w.kind, w.layer): w for w in monitor.check()}
    assert ("exploding", "0") in found and ("exploding", "2") in found
    assert "non-finite grad norm (inf) at step 0" in found["exploding", "0"].message
    # the record stays JSON-serialisable (strict JSON: non-finite numbers become strings)
    text = json.dumps(monitor.to_dict(), allow_nan=False)
    assert json.loads(text)["records"][0]["layers"]["0"]["grad_norm"] == "inf"


# -- what is recorded ------------------------------------------------------------------------------


def test_records_gradient_norms_and_update_ratios_exactly():
    model = deep(nn.Tanh, depth=2, width=8, n_in=4, n_out=3)
    monitor = GradientMonitor(model, every=1)
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    x = cr.tensor(np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32))
    model(x).pow(2).sum().backward()
    grads = {n: model[int(n)].weight.grad.data.copy() for n in monitor.layers}
    weights = {n: model[int(n)].weight.data.copy() for n in monitor.layers}
    record = monitor.step()
    optimizer.step()
    assert record["step"] == 0 and record["layers"]["0"]["update_ratio"] is None
    monitor.close()  # the weights moved: fills in the update ratios of the last record
    for name in monitor.layers:
        stats = record["layers"][name]
        assert stats["grad_norm"] == pytest.approx(np.linalg.norm(grads[name]), rel=1e-5)
        assert stats["weight_norm"] == pytest.approx(np.linalg.norm(weights[name]), rel=1e-5)
        expected = 0.1 * np.linalg.norm(grads[name]) / np.linalg.norm(weights[name])
        assert stats["update_ratio"] == pytest.approx(expected, rel=1e-4)
        assert stats["backprop_std"] > 0
    assert monitor.layers == ["0", "2", "4"]
    assert monitor.kinds == {"0": "tanh", "2": "tanh", "4": "linear"}


def test_layers_are_named_by_dotted_module_name_in_forward_order():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(8, 2)  # registered first, runs last
            self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU())

        def forward(self, x):
            return self.head(self.body(x))

    model = Net()
    monitor = GradientMonitor(model)
    assert monitor.layers == ["head", "body.0"]  # registration order before any step
    model(cr.tensor(np.ones((2, 4), np.float32))).sum().backward()
    monitor.step()
    assert monitor.layers == ["body.0", "head"]
    assert monitor.kinds == {"body.0": "relu", "head": "linear"}


def test_functional_activations_can_be_declared():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 16), nn.Linear(16, 2)
            self.fc1.bias.data[:8] = -100.0  # half the units dead

        def forward(self, x):
            return self.fc2(self.fc1(x).relu())

    model = Net()
    monitor = GradientMonitor(model, activations={"fc1": "relu"})
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    model(cr.tensor(x)).sum().backward()
    stats = monitor.step()["layers"]["fc1"]
    assert stats["dead"] == pytest.approx(0.5, abs=0.1) and stats["act_mean"] >= 0
    with pytest.raises(ValueError, match="unknown layers"):
        GradientMonitor(model, activations={"fc9": "relu"})
    with pytest.raises(ValueError, match="is not one of"):
        GradientMonitor(model, activations={"fc1": "swish"})


def test_activation_statistics_thresholds():
    sig = np.array([[0.01, 0.5, 0.98, 0.96]])
    assert activation_stats(sig, "sigmoid")["saturated"] == 0.5
    tanh = np.array([[-0.99, 0.0, 0.5, 0.98]])
    assert activation_stats(tanh, "tanh")["saturated"] == 0.5
    assert activation_stats(tanh, "tanh", threshold=0.999)["saturated"] == 0.0
    conv = np.zeros((2, 4, 3, 3))  # (batch, channels, h, w): a unit is a channel
    conv[1, 0, 2, 2] = 1.0
    stats = activation_stats(conv, "relu")
    assert stats["dead"] == 0.75 and stats["saturated"] is None
    lin = activation_stats(np.array([[1.0, 3.0]]), "linear")
    assert (lin["act_mean"], lin["act_std"], lin["dead"]) == (2.0, 1.0, None)


def test_relu_statistics_from_unit_sums_match_the_direct_ones():
    # nonnegative=True: dead units from per-unit sums, the mean from their total (one BLAS
    # product) -- the same numbers as the comparison, reduction and pairwise sum
    rng = np.random.default_rng(0)
    cases = [((64, 128), "C", np.float32), ((64, 128), "F", np.float32),
             ((5, 7), "F", np.float64), ((4, 6, 3, 3), "C", np.float32)]
    for shape, order, dtype in cases:
        a = np.asarray(np.maximum(rng.normal(size=shape), 0), dtype=dtype, order=order)
        a[:, ::3] = 0  # dead units
        a[:, 1] = 0
        a[2, 1] = 1e-40  # ... but for one tiny value: alive
        axes = (0, *range(2, a.ndim))
        expected_dead = 1.0 - np.mean((a > 0).any(axis=axes))
        fast, direct = activation_stats(a, "relu", nonnegative=True), activation_stats(a, "relu")
        assert fast["dead"] == direct["dead"] == pytest.approx(expected_dead)
        assert fast["act_mean"] == pytest.approx(np.mean(a, dtype=np.float64), rel=1e-6)
        assert fast["act_std"] == pytest.approx(np.std(a, dtype=np.float64), rel=1e-6)
        assert fast["act_mean"] == pytest.approx(direct["act_mean"], rel=1e-6)
        a[0, 0] = np.nan  # NaN: sums cannot tell, the direct count is used
        assert activation_stats(a, "relu", nonnegative=True)["dead"] == expected_dead


def test_records_activation_and_backprop_statistics_exactly():
    model = deep(nn.ReLU, depth=2, width=16, n_in=8, n_out=3)
    seen = {}

    def capture(name):
        def hook(module, inputs, out):
            seen[name] = out.data.copy()
            if name in ("0", "2", "4"):  # the layers: keep the gradient reaching their output
                out.register_hook(lambda g: seen.__setitem__(name + " grad", g.data.copy()))
        return hook

    for i, module in enumerate(model):
        module.register_forward_hook(capture(str(i)))
    monitor = GradientMonitor(model, every=1)
    x = np.random.default_rng(0).normal(size=(32, 8)).astype(np.float32)
    nn.CrossEntropyLoss()(model(cr.tensor(x)), cr.tensor(np.arange(32) % 3)).backward()
    record = monitor.step()["layers"]
    for layer, act in (("0", "1"), ("2", "3"), ("4", "4")):
        a, g, stats = seen[act], seen[layer + " grad"], record[layer]
        std = np.std(a, dtype=np.float64)
        assert stats["act_mean"] == pytest.approx(np.mean(a, dtype=np.float64), abs=1e-6 * std)
        assert stats["act_std"] == pytest.approx(std, rel=1e-5)
        assert stats["backprop_std"] == pytest.approx(np.std(g, dtype=np.float64), rel=1e-5)
        if layer != "4":
            assert stats["dead"] == pytest.approx(1.0 - np.mean((a > 0).any(axis=0)))


def test_monitors_conv_layers():
    from chainrule.nn.conv import Conv2d

    model = nn.Sequential(Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    monitor = GradientMonitor(model)
    model(cr.tensor(np.ones((2, 1, 8, 8), np.float32))).sum().backward()
    record = monitor.step()
    assert monitor.layers == ["0", "3"] and monitor.kinds["0"] == "relu"
    assert record["layers"]["0"]["grad_norm"] > 0 and record["layers"]["0"]["dead"] is not None


# -- overhead: hooks only on recording steps -------------------------------------------------------


def test_hooks_do_no_work_on_non_recording_steps(monkeypatch, digits):
    calls = {"activations": 0, "backprop": 0}
    real_stats, real_mean_std = diagnostics.activation_stats, diagnostics._mean_std

    def counting_stats(*args, **kwargs):
        calls["activations"] += 1
        return real_stats(*args, **kwargs)

    def counting_mean_std(a):
        calls["backprop"] += 1
        return real_mean_std(a)

    monkeypatch.setattr(diagnostics, "activation_stats", counting_stats)
    X, y = digits
    model = deep(nn.ReLU, depth=2, width=16)
    monitor = GradientMonitor(model, every=10)
    hooked = [model[i] for i in range(len(model))]
    seen = []

    def watch(step):
        seen.append((step, monitor.recording, sum(len(m._forward_hooks) for m in hooked)))

    train(model, monitor, X, y, steps=25, before_step=watch)
    assert [s for s, recording, _ in seen if recording] == [0, 10, 20]
    assert all(n == 0 for _, recording, n in seen if not recording)  # detached in between
    assert all(n == 5 for _, recording, n in seen if recording)  # 3 layers + 2 activations
    assert calls["activations"] == 3 * 3  # 3 layers' outputs, on 3 recording steps only
    monkeypatch.setattr(diagnostics, "_mean_std", counting_mean_std)
    before = calls["backprop"]
    train(model, monitor, X, y, steps=4)  # steps 25..28: none recorded
    assert calls["backprop"] == before and len(monitor.history) == 3
    monitor.close()
    assert sum(len(m._forward_hooks) for m in hooked) == 0


def test_evaluation_passes_are_not_recorded():
    model = deep(nn.Tanh, depth=1, width=4, n_in=2, n_out=2)
    monitor = GradientMonitor(model)
    x = cr.tensor(np.ones((3, 2), np.float32))
    with cr.no_grad():
        model(x * 100.0)  # would saturate tanh if it were recorded
    model(x).sum().backward()
    record = monitor.step()
    assert record["layers"]["0"]["saturated"] == 0.0


def test_works_inside_the_trainer(digits):
    from chainrule.train import Trainer

    X, y = digits
    model = deep(nn.Tanh, depth=2, width=16)
    monitor = GradientMonitor(model, every=5)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
                      progress=False, verbose=False, seed=0, monitor=monitor)
    trainer.fit((X[:320], y[:320]), val_split=0.25, epochs=2, batch_size=32)
    monitor.close()
    assert monitor.steps == 16 and [r["step"] for r in monitor.history] == [0, 5, 10, 15]
    assert all(s["update_ratio"] is not None for s in monitor.history[-1]["layers"].values())
    assert monitor.check() == []
    steps, series = monitor.series("grad_norm")
    assert steps == [0, 5, 10, 15] and all(np.isfinite(v).all() for v in series.values())


def test_bad_arguments_give_one_line_errors():
    with pytest.raises(TypeError, match="needs a chainrule.nn.Module"):
        GradientMonitor(object())
    with pytest.raises(ValueError, match="no layer with a weight matrix"):
        GradientMonitor(nn.Sequential(nn.ReLU()))
    model = deep(nn.Tanh, depth=1, width=4)
    with pytest.raises(ValueError, match="every must be a positive integer"):
        GradientMonitor(model, every=0)
    with pytest.raises(ValueError, match="saturation_threshold"):
        GradientMonitor(model, saturation_threshold=1.5)


def test_report_before_any_record_says_what_to_do():
    monitor = GradientMonitor(deep(nn.Tanh, depth=1, width=4))
    assert "call monitor.step() after backward" in monitor.report()
    assert monitor.check() == [] and not math.isnan(monitor.every)
