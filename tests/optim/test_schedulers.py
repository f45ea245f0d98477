"""Tests for chainrule.optim.lr_scheduler: lr sequences against PyTorch's and the closed forms,
state round trips and errors."""

import math
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import Parameter
from chainrule.optim import SGD
from chainrule.optim import lr_scheduler as sch
from chainrule.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    LinearWarmup,
    LRScheduler,
    MultiStepLR,
    ReduceLROnPlateau,
    StepLR,
)

LRS = (0.1, 0.03)  # two parameter groups with different learning rates
N = 30


def _optimizer():
    a, b = (Parameter(cr.zeros(2)) for _ in range(2))
    return SGD([{"params": [a], "lr": LRS[0]}, {"params": [b], "lr": LRS[1]}], lr=1.0)


def _sequence(scheduler, n=N, metrics=None):
    out = [scheduler.get_last_lr()]
    for k in range(n):
        scheduler.optimizer.step()
        scheduler.step() if metrics is None else scheduler.step(metrics[k])
        out.append(scheduler.get_last_lr())
    return np.array(out)


def _torch_sequence(torch, make, n=N, metrics=None):
    ps = [torch.zeros(2, requires_grad=True) for _ in range(2)]
    opt = torch.optim.SGD([{"params": [ps[0]], "lr": LRS[0]}, {"params": [ps[1]], "lr": LRS[1]}],
                          lr=1.0)
    scheduler = make(torch.optim.lr_scheduler, opt)
    out = [scheduler.get_last_lr()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(n):
            opt.step()
            scheduler.step() if metrics is None else scheduler.step(metrics[k])
            out.append(scheduler.get_last_lr())
    return np.array(out, dtype=float)


PLATEAU = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85, 0.7, 0.7, 0.7, 0.7, 0.7,
           0.69999, 0.6, 0.61, 0.62, 0.63, 0.64, 0.65, 0.66, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]

CASES = {
    "step": lambda m, o: m.StepLR(o, step_size=4, gamma=0.5),
    "multistep": lambda m, o: m.MultiStepLR(o, milestones=[3, 7, 7, 20], gamma=0.3),
    "exponential": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "cosine": lambda m, o: m.CosineAnnealingLR(o, T_max=8),
    "cosine-eta-min": lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.01),
    "linear": lambda m, o: m.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=6),
    "linear-default": lambda m, o: m.LinearLR(o),
    "lambda": lambda m, o: m.LambdaLR(o, lambda e: 1 / (1 + e)),
    "lambda-per-group": lambda m, o: m.LambdaLR(o, [lambda e: 0.9**e, lambda e: e + 1]),
}
PLATEAU_CASES = {
    "min-rel": lambda m, o: m.ReduceLROnPlateau(o, patience=2),
    "min-abs-cooldown": lambda m, o: m.ReduceLROnPlateau(
        o, factor=0.5, patience=1, threshold=0.05, threshold_mode="abs", cooldown=2),
    "max-rel-min-lr": lambda m, o: m.ReduceLROnPlateau(
        o, mode="max", factor=0.2, patience=0, min_lr=[0.01, 0.001]),
    "max-abs": lambda m, o: m.ReduceLROnPlateau(
        o, mode="max", patience=1, threshold=0.01, threshold_mode="abs"),
}


@pytest.mark.parametrize("name", CASES)
def test_lr_sequence_matches_torch(name):
    torch = pytest.importorskip("torch")
    got = _sequence(CASES[name](sch, _optimizer()))
    np.testing.assert_allclose(got, _torch_sequence(torch, CASES[name]), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", PLATEAU_CASES)
def test_reduce_on_plateau_matches_torch(name):
    torch = pytest.importorskip("torch")
    metrics = PLATEAU if name.startswith("min") else [-m for m in PLATEAU]
    got = _sequence(PLATEAU_CASES[name](sch, _optimizer()), metrics=metrics)
    want = _torch_sequence(torch, PLATEAU_CASES[name], metrics=metrics)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert got[-1, 0] < got[0, 0]  # the plateaus did reduce the lr


def test_linear_warmup_is_torch_linear_lr():
    torch = pytest.importorskip("torch")
    got = _sequence(LinearWarmup(_optimizer(), warmup_steps=5))
    want = _torch_sequence(torch, lambda m, o: m.LinearLR(o, 1 / 5, 1.0, 5))
    np.testing.assert_allclose(got, want, rtol=1e-12)


# -- closed forms, no torch needed ---------------------------------------------------------------
def _closed(schedule, n=N):
    return np.array([[base * schedule(t) for base in LRS] for t in range(n + 1)])


def test_closed_forms():
    rtol = 1e-12
    np.testing.assert_allclose(_sequence(StepLR(_optimizer(), 4, 0.5)),
                               _closed(lambda t: 0.5 ** (t // 4)), rtol=rtol)
    np.testing.assert_allclose(_sequence(MultiStepLR(_optimizer(), [3, 7], 0.3)),
                               _closed(lambda t: 0.3 ** ((t >= 3) + (t >= 7))), rtol=rtol)
    np.testing.assert_allclose(_sequence(ExponentialLR(_optimizer(), 0.9)),
                               _closed(lambda t: 0.9**t), rtol=rtol)
    T = 10
    cos = _sequence(CosineAnnealingLR(_optimizer(), T), n=T)
    np.testing.assert_allclose(cos, _closed(lambda t: (1 + math.cos(math.pi * t / T)) / 2, T),
                               rtol=1e-9, atol=1e-15)
    lin = _sequence(LinearLR(_optimizer(), 0.25, 1.0, 6))
    np.testing.assert_allclose(lin, _closed(lambda t: 0.25 + 0.75 * min(t, 6) / 6), rtol=rtol)
    np.testing.assert_allclose(_sequence(LambdaLR(_optimizer(), lambda e: 1 / (1 + e))),
                               _closed(lambda t: 1 / (1 + t)), rtol=rtol)


def test_linear_warmup_ramps_to_the_base_lr_and_stays():
    opt = _optimizer()
    seq = _sequence(LinearWarmup(opt, warmup_steps=4), n=8)[:, 0]
    np.testing.assert_allclose(seq, [0.025, 0.04375, 0.0625, 0.08125, 0.1, 0.1, 0.1, 0.1, 0.1])
    seq = _sequence(LinearWarmup(_optimizer(), warmup_steps=2, start_factor=0.5), n=3)[:, 1]
    np.testing.assert_allclose(seq, [0.015, 0.0225, 0.03, 0.03])


def test_scheduler_drives_the_optimizer_lr():
    opt = _optimizer()
    s = StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    s.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05, 0.015])
    assert [g["initial_lr"] for g in opt.param_groups] == list(LRS)


def test_plateau_counts_bad_epochs_and_patience():
    opt = _optimizer()
    s = ReduceLROnPlateau(opt, patience=2, factor=0.5)
    for m in [1.0, 1.0, 1.0]:
        s.step(m)
    assert s.get_last_lr() == list(LRS)  # two bad epochs: still within patience
    s.step(1.0)
    assert s.get_last_lr() == pytest.approx([0.05, 0.015])
    s.step(cr.tensor(0.5))  # a metric may be a 0-d tensor
    assert s.best == 0.5


# -- state ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer_first", [False, True])
@pytest.mark.parametrize("name", [*CASES, "plateau"])
def test_state_dict_round_trip(name, optimizer_first):
    make = PLATEAU_CASES["min-abs-cooldown"] if name == "plateau" else CASES[name]
    metrics = PLATEAU if name == "plateau" else None

    def advance(s, ks):
        for k in ks:
            s.optimizer.step()
            s.step() if metrics is None else s.step(metrics[k])
        return s.get_last_lr()

    whole = make(sch, _optimizer())
    advance(whole, range(20))
    first = make(sch, _optimizer())
    advance(first, range(9))
    saved, opt_saved = first.state_dict(), first.optimizer.state_dict()
    assert "optimizer" not in saved
    opt = _optimizer()
    if optimizer_first:
        opt.load_state_dict(opt_saved)
    resumed = make(sch, opt)
    if not optimizer_first:  # torch's usual order: build both, then load both
        opt.load_state_dict(opt_saved)
    resumed.load_state_dict(saved)
    assert advance(resumed, range(9, 20)) == pytest.approx(whole.get_last_lr(), rel=1e-14)


def test_resuming_with_last_epoch_needs_initial_lr():
    with pytest.raises(KeyError, match="initial_lr"):
        StepLR(_optimizer(), step_size=2, last_epoch=3)


def test_errors():
    opt = _optimizer()
    with pytest.raises(TypeError, match="not a chainrule Optimizer"):
        StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(ValueError, match="mode"):
        ReduceLROnPlateau(opt, mode="lowest")
    with pytest.raises(ValueError, match="min_lr"):
        ReduceLROnPlateau(opt, min_lr=[0.1])
    with pytest.raises(ValueError, match="start_factor"):
        LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="step_size"):
        StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="lr_lambdas"):
        LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(NotImplementedError):
        LRScheduler(opt)
