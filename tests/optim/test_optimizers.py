"""Tests for chainrule.optim optimisers: PyTorch trajectories, the published formulas, state
round trips, parameter groups, in-place updates and clear errors."""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.nn import Parameter

SHAPES = [(3, 4), (4,), ()]
STEPS = 20


def _problem(seed=0):
    """Initial values and a fixed sequence of gradients (with some missing ones)."""
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]
    grads[3][1] = None  # a parameter without a gradient on some steps is skipped
    grads[7][0] = None
    return init, grads


def _params(init, dtype=np.float64):
    return [Parameter(cr.tensor(np.array(a, dtype=dtype), dtype=dtype)) for a in init]


def _set_grads(params, gs):
    for p, g in zip(params, gs, strict=True):
        p.grad = None if g is None else cr.tensor(np.array(g, dtype=p.dtype), dtype=p.dtype)


def _run(opt, params, grads):
    for gs in grads:
        _set_grads(params, gs)
        opt.step()
    return [p.data.copy() for p in params]


def _torch_params(init):
    import torch

    return [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in init]


def _set_torch_grads(params, gs):
    import torch

    for p, g in zip(params, gs, strict=True):
        p.grad = None if g is None else torch.tensor(g, dtype=torch.float64)


def _run_torch(opt, params, grads):
    for gs in grads:
        _set_torch_grads(params, gs)
        opt.step()


def _assert_close_to_torch(ours, theirs):
    for a, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, t.detach().numpy(), rtol=1e-10, atol=1e-14)


CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.05}),
    ("SGD", {"lr": 0.1, "maximize": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "maximize": True}),
    ("Adam", {"lr": 0.1}),
    ("Adam", {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.05, "amsgrad": True}),
    ("Adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1, "maximize": True}),
    ("Adam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("AdamW", {"lr": 0.05}),
    ("AdamW", {"lr": 0.05, "weight_decay": 0.2, "amsgrad": True, "maximize": True}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.01, "centered": True}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5, "maximize": True}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1}),
    ("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-6, "maximize": True}),
]


def _ids(case):
    name, kw = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


# -- against PyTorch -----------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_trajectory_matches_torch(case):
    torch = pytest.importorskip("torch")
    name, kw = case
    init, grads = _problem()
    ours = _params(init)
    opt = getattr(optim, name)(ours, **kw)
    got = _run(opt, ours, grads)

    theirs = _torch_params(init)
    topt = getattr(torch.optim, name)(theirs, foreach=False, **kw)
    _run_torch(topt, theirs, grads)
    _assert_close_to_torch(got, theirs)
    # the optimiser state (same names as torch's) agrees too
    tstate = topt.state_dict()["state"]
    for i, st in opt.state_dict()["state"].items():
        for key, val in st.items():
            tval = tstate[i][key]
            if key == "step":
                assert val == int(tval)
            else:
                np.testing.assert_allclose(val, tval.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_same_trajectory_without_blas(case, monkeypatch):
    """Without SciPy's BLAS (a core install) the axpy passes fall back to NumPy, same values."""
    from chainrule.optim import optimizer

    name, kw = case
    init, grads = _problem()
    with_blas = _run(getattr(optim, name)(ps := _params(init), **kw), ps, grads)
    monkeypatch.setattr(optimizer, "blas_axpy", lambda dtype: None)
    without = _run(getattr(optim, name)(ps := _params(init), **kw), ps, grads)
    for a, b in zip(with_blas, without, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_param_groups_with_different_lr_match_torch(name):
    torch = pytest.importorskip("torch")
    init, grads = _problem(1)
    ours = _params(init)
    extra = {"momentum": 0.9} if name == "SGD" else {}
    opt = getattr(optim, name)(
        [{"params": ours[:2]}, {"params": ours[2:], "lr": 0.5}], lr=0.05, **extra
    )
    got = _run(opt, ours, grads)
    theirs = _torch_params(init)
    topt = getattr(torch.optim, name)(
        [{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.5}], lr=0.05, foreach=False,
        **extra,
    )
    _run_torch(topt, theirs, grads)
    _assert_close_to_torch(got, theirs)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad"])
def test_loads_a_torch_state_dict_and_continues_like_torch(name):
    torch = pytest.importorskip("torch")
    kw = {"SGD": {"lr": 0.05, "momentum": 0.9}, "Adam": {"lr": 0.05},
          "RMSprop": {"lr": 0.01, "momentum": 0.5, "centered": True}, "Adagrad": {"lr": 0.1}}[name]
    init, grads = _problem(2)
    theirs = _torch_params(init)
    topt = getattr(torch.optim, name)(theirs, foreach=False, **kw)
    for k, gs in enumerate(grads):
        if k == 10:
            ours = _params([t.detach().numpy().copy() for t in theirs])
            opt = getattr(optim, name)(ours, **kw)
            opt.load_state_dict(topt.state_dict())
        if k >= 10:
            _set_grads(ours, gs)
            opt.step()
        _set_torch_grads(theirs, gs)
        topt.step()
    _assert_close_to_torch([p.data for p in ours], theirs)


# -- against the published formulas (no torch needed) --------------------------------------------
def _scalar_run(opt_factory, x0, grads):
    p = Parameter(cr.tensor(x0, dtype=cr.float64))
    opt = opt_factory([p])
    xs = []
    for g in grads:
        p.grad = cr.tensor(g, dtype=cr.float64)
        opt.step()
        xs.append(float(p.data))
    return xs


def test_sgd_nesterov_formula():
    lr, mu, wd, x, grads = 0.1, 0.9, 0.01, 1.5, [0.4, -0.2, 0.7]
    got = _scalar_run(lambda ps: optim.SGD(ps, lr, mu, weight_decay=wd, nesterov=True), x, grads)
    buf = None
    for g, y in zip(grads, got, strict=True):
        g = g + wd * x
        buf = g if buf is None else mu * buf + g
        x = x - lr * (g + mu * buf)
        assert y == pytest.approx(x, rel=1e-14)


def test_sgd_dampened_momentum_formula_and_maximize():
    lr, mu, damp, x, grads = 0.1, 0.5, 0.25, -0.3, [1.0, 2.0, -1.0]
    got = _scalar_run(lambda ps: optim.SGD(ps, lr, mu, damp, maximize=True), x, grads)
    buf = None
    for g, y in zip(grads, got, strict=True):
        buf = -g if buf is None else mu * buf + (1 - damp) * -g
        x = x - lr * buf
        assert y == pytest.approx(x, rel=1e-14)


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_formula(decoupled):
    lr, (b1, b2), eps, wd, x, grads = 0.01, (0.9, 0.999), 1e-8, 0.1, 2.0, [0.5, -0.3, 0.8]
    cls = optim.AdamW if decoupled else optim.Adam
    got = _scalar_run(lambda ps: cls(ps, lr, (b1, b2), eps, weight_decay=wd), x, grads)
    m = v = 0.0
    for t, (g, y) in enumerate(zip(grads, got, strict=True), 1):
        if decoupled:
            x = x * (1 - lr * wd)
        else:
            g = g + wd * x
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        x = x - lr * m_hat / (math.sqrt(v_hat) + eps)
        assert y == pytest.approx(x, rel=1e-12)
    # the first Adam step moves every coordinate by about lr (the bias-corrected ratio is ~±1)
    assert abs(got[0] - 2.0 * (1 - lr * wd if decoupled else 1)) == pytest.approx(lr, rel=1e-4)


def test_adam_amsgrad_uses_the_largest_second_moment():
    lr, (b1, b2), eps, x, grads = 0.01, (0.9, 0.99), 1e-8, 0.0, [3.0, 0.1, 0.1]
    got = _scalar_run(lambda ps: optim.Adam(ps, lr, (b1, b2), eps, amsgrad=True), x, grads)
    m = v = vmax = 0.0
    for t, (g, y) in enumerate(zip(grads, got, strict=True), 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = max(vmax, v)
        x = x - lr / (1 - b1**t) * m / (math.sqrt(vmax) / math.sqrt(1 - b2**t) + eps)
        assert y == pytest.approx(x, rel=1e-12)


def test_rmsprop_centered_momentum_formula():
    lr, a, eps, mu, x, grads = 0.01, 0.9, 1e-8, 0.5, 1.0, [0.3, -0.6, 0.2]
    got = _scalar_run(lambda ps: optim.RMSprop(ps, lr, a, eps, momentum=mu, centered=True),
                      x, grads)
    sq = ga = buf = 0.0
    for g, y in zip(grads, got, strict=True):
        sq = a * sq + (1 - a) * g * g
        ga = a * ga + (1 - a) * g
        buf = mu * buf + g / (math.sqrt(sq - ga * ga) + eps)
        x = x - lr * buf
        assert y == pytest.approx(x, rel=1e-12)


def test_adagrad_formula():
    lr, decay, init, eps, x, grads = 0.1, 0.5, 0.2, 1e-10, 1.0, [0.5, 1.5, -2.0]
    got = _scalar_run(
        lambda ps: optim.Adagrad(ps, lr, decay, initial_accumulator_value=init, eps=eps),
        x, grads)
    s = init
    for t, (g, y) in enumerate(zip(grads, got, strict=True), 1):
        s += g * g
        x = x - lr / (1 + (t - 1) * decay) * g / (math.sqrt(s) + eps)
        assert y == pytest.approx(x, rel=1e-12)


# -- state, dtype, in-place ----------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_state_dict_round_trip_continues_identically(case):
    name, kw = case
    init, grads = _problem(3)
    whole = _params(init)
    expected = _run(getattr(optim, name)(whole, **kw), whole, grads)

    first = _params(init)
    opt = getattr(optim, name)(first, **kw)
    _run(opt, first, grads[:8])
    saved = opt.state_dict()
    checkpoint = [p.data.copy() for p in first]
    _run(opt, first, grads[8:12])  # training on must not change the saved copy
    resumed = _params(checkpoint)
    opt2 = getattr(optim, name)(resumed, **{**kw, "lr": 123.0})
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == kw["lr"]
    got = _run(opt2, resumed, grads[8:])
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_state_dict_refers_to_parameters_by_index_across_groups():
    a, b, c = _params([np.ones(2), np.ones(3), np.ones(1)])
    opt = optim.SGD([{"params": [a, b]}, {"params": [c], "lr": 0.5}], lr=0.1, momentum=0.9)
    _set_grads([a, b, c], [np.ones(2), None, np.ones(1)])
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sorted(sd["state"]) == [0, 2]  # b had no gradient: no state
    assert sd["param_groups"][1]["lr"] == 0.5


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_float32_parameters_stay_float32_and_update_in_place(name):
    init, grads = _problem(4)
    ps = _params(init, np.float32)
    arrays = [p.data for p in ps]
    kw = {"momentum": 0.9} if name in ("SGD", "RMSprop") else {}
    opt = getattr(optim, name)(ps, lr=0.01, **kw)
    _run(opt, ps, grads[:3])
    state_arrays = {k: v for k, v in opt.state[ps[0]].items() if isinstance(v, np.ndarray)}
    _run(opt, ps, grads[3:6])
    for p, arr in zip(ps, arrays, strict=True):
        assert p.data is arr and p.data.dtype == np.float32
    for key, arr in state_arrays.items():
        assert opt.state[ps[0]][key] is arr and arr.dtype == np.float32
    sd = opt.state_dict()
    loaded = getattr(optim, name)(_params(init, np.float32), lr=0.01, **kw)
    loaded.load_state_dict(sd)
    assert all(v.dtype == np.float32 for st in loaded.state.values() for v in st.values()
               if isinstance(v, np.ndarray))


@pytest.mark.parametrize("name,kw", [("SGD", {}), ("SGD", {"momentum": 0.9}), ("Adam", {}),
                                     ("RMSprop", {}), ("Adagrad", {})])
def test_backward_through_a_graph_older_than_the_update_is_refused(name, kw):
    """As in PyTorch, step() changes the parameters in place: a loss computed before it cannot
    be backpropagated after it (its gradient would belong to the old weights)."""
    w = _params([np.ones((2, 3))])[0]
    x = cr.tensor(np.arange(6.0).reshape(3, 2), dtype=cr.float64)
    opt = getattr(optim, name)([w], lr=0.1, **kw)
    (w @ x).tanh().sum().backward()
    opt.step()
    stale = (w @ x).tanh().sum()
    opt.step()  # the gradient of the first backward is still there: w changes again
    with pytest.raises(RuntimeError, match=r"changed in place .* an optimiser's step\(\)"):
        stale.backward()
    opt.zero_grad()
    (w @ x).tanh().sum().backward()  # the usual order: forward after the update
    assert w.grad is not None


def test_step_does_not_touch_the_gradient():
    p = _params([np.ones(3)])[0]
    opt = optim.Adam([p], lr=0.1, weight_decay=0.5, maximize=True)
    p.grad = cr.tensor([1.0, 2.0, 3.0], dtype=cr.float64)
    opt.step()
    np.testing.assert_array_equal(p.grad.data, [1.0, 2.0, 3.0])


def test_zero_grad_and_closure():
    p = _params([np.ones(2)])[0]
    opt = optim.SGD([p], lr=0.1)
    p.grad = cr.tensor([1.0, 1.0], dtype=cr.float64)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.data, [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with cr.no_grad():  # the closure still records its graph
        loss = opt.step(closure)
    assert float(loss) == 2.0
    np.testing.assert_allclose(p.data, [0.8, 0.8])


def test_add_param_group_and_named_parameters():
    a, b = _params([np.ones(2), np.ones(2)])
    opt = optim.Adagrad([("w", a)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["w"]
    opt.add_param_group({"params": b, "lr": 0.2})
    assert opt.param_groups[1]["lr"] == 0.2 and opt.param_groups[1]["lr_decay"] == 0
    assert opt.state[b]["sum"].shape == (2,)
    assert "Parameter Group 1" in repr(opt)


# -- errors --------------------------------------------------------------------------------------
def test_clear_errors():
    p, q = _params([np.ones(2), np.ones(3)])
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="invalid lr"):
        optim.Adam([p], lr=-1.0)
    with pytest.raises(ValueError, match="invalid lr"):
        optim.SGD([{"params": [p], "lr": -0.1}], lr=0.1)
    with pytest.raises(ValueError, match="appears twice"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p, q]}, {"params": [p]}], lr=0.1)
    with pytest.raises(TypeError, match="floating-point"):
        optim.SGD([cr.tensor([1, 2])], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="ordered collection"):
        optim.SGD({p}, lr=0.1)
    with pytest.raises(TypeError, match="only optimize Tensors"):
        optim.SGD([np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="momentum"):
        optim.RMSprop([p], momentum=-0.5)
    with pytest.raises(ValueError, match="lr_decay"):
        optim.Adagrad([p], lr_decay=-1)

    opt = optim.Adam([p, q])
    with pytest.raises(ValueError, match="parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})
    with pytest.raises(ValueError, match="has 2 parameters"):
        opt.load_state_dict(optim.Adam([p]).state_dict())
    p.grad, q.grad = cr.ones(2, dtype=cr.float64), cr.ones(3, dtype=cr.float64)
    opt.step()
    swapped = optim.Adam([q, p])
    with pytest.raises(ValueError, match="shape"):
        swapped.load_state_dict(opt.state_dict())


# -- end to end ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make", [lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9), lambda ps: optim.Adam(ps, lr=0.05)],
    ids=["sgd-momentum", "adam"],
)
def test_optimisers_fit_linear_regression(make):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)).astype(np.float32)
    y = X @ np.array([[1.5], [-2.0], [0.5]], np.float32) + 0.3
    Xt, yt = cr.tensor(X), cr.tensor(y)
    w = Parameter(cr.zeros(3, 1))
    b = Parameter(cr.zeros(1))
    opt = make([w, b])
    losses = []
    for _ in range(200):
        opt.zero_grad()
        loss = ((Xt @ w + b - yt) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 1e-3 * losses[0]
    np.testing.assert_allclose(w.data.ravel(), [1.5, -2.0, 0.5], atol=0.02)
    assert w.data.dtype == np.float32
