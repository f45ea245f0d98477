"""chainrule.compile: the replayed tape gives the eager step's results (MLP, conv, GraphNet; SGD,
Adam, schedulers, manual updates, gradient accumulation), retraces on a new signature, and
refuses what it can't replay faithfully."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.compile import CompileError, compile


def _mlp(act: type = nn.Tanh, seed: int = 0) -> nn.Module:
    cr.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), act(), nn.Linear(8, 8), act(), nn.Linear(8, 3))


def _batches(n: int = 5, batch: int = 4, seed: int = 1) -> list[tuple[cr.Tensor, cr.Tensor]]:
    rng = np.random.default_rng(seed)
    return [(cr.tensor(rng.normal(size=(batch, 6)).astype(np.float32)),
             cr.tensor(rng.integers(0, 3, batch))) for _ in range(n)]


def _train_step(model: nn.Module, opt: optim.Optimizer, loss_fn: nn.Module | None = None):
    """zero_grad, loss, backward, step (cross-entropy unless another loss is given)."""
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def _assert_same_training(make, batches, rtol=1e-6, atol=1e-7):
    """Train two identical setups, one eager and one compiled: losses and weights agree."""
    (m1, s1), (m2, s2) = make(), make()
    c2 = compile(s2)
    for x, y in batches:
        l1, l2 = s1(x, y), c2(x, y)
        np.testing.assert_allclose(l2.data, l1.data, rtol=rtol, atol=atol)
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        np.testing.assert_allclose(q.data, p.data, rtol=rtol, atol=atol)
        np.testing.assert_allclose(q.grad.data, p.grad.data, rtol=rtol, atol=atol)
    return c2


@pytest.mark.parametrize("opt_cls,kw", [(optim.SGD, {"lr": 0.1}),
                                        (optim.SGD, {"lr": 0.1, "momentum": 0.9}),
                                        (optim.Adam, {"lr": 0.01})])
@pytest.mark.parametrize("act", [nn.Tanh, nn.ReLU])
def test_mlp_step_matches_eager(opt_cls, kw, act):
    def make():
        m = _mlp(act)
        return m, _train_step(m, opt_cls(m.parameters(), **kw))

    c = _assert_same_training(make, _batches())
    assert c.traces == 1
    assert "def replay" in c.source


def test_scheduler_and_manual_update_are_replayed():
    def make():
        m = _mlp()
        opt = optim.SGD(m.parameters(), lr=0.2)
        sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        base = _train_step(m, opt)

        def step(x, y):
            loss = base(x, y)
            sched.step()
            return loss

        return m, step

    _assert_same_training(make, _batches(6))


def test_manual_sgd_with_grad_reset_matches_eager():
    def make():
        m = _mlp()
        ps = list(m.parameters())
        loss_fn = nn.CrossEntropyLoss()

        def step(x, y):
            loss = loss_fn(m(x), y)
            loss.backward()
            with cr.no_grad():
                for p in ps:
                    p -= 0.1 * p.grad
                    p.grad = None
            return loss

        return m, step

    (m1, s1), (m2, s2) = make(), make()
    c2 = compile(s2)
    for x, y in _batches():
        np.testing.assert_allclose(c2(x, y).data, s1(x, y).data, rtol=1e-6)
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-6, atol=1e-7)
        assert q.grad is None and p.grad is None


@pytest.mark.parametrize("reset", ["model.zero_grad()", "model.zero_grad(set_to_none=False)",
                                   "p.grad = None"])
def test_gradients_reset_by_the_model_or_by_hand_are_reset_on_replay(reset):
    """Not only the optimiser's zero_grad: a reset the tape did not replay would let gradients
    pile up from call to call, silently."""
    def make():
        m = _mlp()
        opt = optim.SGD(m.parameters(), lr=0.1)
        loss_fn = nn.CrossEntropyLoss()

        def step(x, y):
            if reset == "p.grad = None":
                for p in m.parameters():
                    p.grad = None
            else:
                m.zero_grad(set_to_none=reset == "model.zero_grad()")
            loss = loss_fn(m(x), y)
            loss.backward()
            opt.step()
            return loss

        return m, step

    _assert_same_training(make, _batches(4))


def test_assigning_a_gradient_tensor_is_refused():
    m = _mlp()
    loss_fn = nn.CrossEntropyLoss()

    def step(x, y):
        loss = loss_fn(m(x), y)
        loss.backward()
        for p in m.parameters():
            p.grad = p.grad * 0.5
        return loss

    with pytest.raises(CompileError, match=r"assigning a tensor to \.grad is not supported"):
        compile(step)(*_batches(1)[0])


def test_gradient_accumulation_without_zero_grad():
    def make():
        m = _mlp()
        loss_fn = nn.CrossEntropyLoss()

        def step(x, y):
            loss = loss_fn(m(x), y)
            loss.backward()
            return loss

        return m, step

    _assert_same_training(make, _batches(4))


def test_conv_step_matches_eager():
    conv = pytest.importorskip("chainrule.ops.conv")

    def make():
        cr.manual_seed(0)
        w = cr.randn(3, 1, 3, 3, requires_grad=True)
        b = cr.zeros(3, requires_grad=True)
        lin = nn.Linear(3 * 3 * 3, 2)
        holder = nn.Module()
        holder.w, holder.b, holder.lin = nn.Parameter(w), nn.Parameter(b), lin
        opt = optim.SGD(holder.parameters(), lr=0.05)

        def step(x, y):
            opt.zero_grad()
            h = conv.max_pool2d(conv.conv2d(x, holder.w, holder.b).relu(), 2)
            loss = nn.functional.cross_entropy(lin(h.flatten(1)), y)
            loss.backward()
            opt.step()
            return loss

        return holder, step

    rng = np.random.default_rng(0)
    batches = [(cr.tensor(rng.normal(size=(4, 1, 8, 8)).astype(np.float32)),
                cr.tensor(rng.integers(0, 2, 4))) for _ in range(4)]
    _assert_same_training(make, batches, rtol=1e-5, atol=1e-6)


def test_grouped_same_padded_conv_model_matches_eager():
    """Two convolutions (the second backpropagates to its input), groups and 'same' padding with
    an even kernel, in nn modules, under Adam."""
    def make():
        cr.manual_seed(1)
        model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Tanh(),
                              nn.Conv2d(4, 4, 2, padding="same", groups=2), nn.ReLU(),
                              nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
        opt = optim.Adam(model.parameters(), lr=0.01)
        return model, _train_step(model, opt)

    rng = np.random.default_rng(1)
    batches = [(cr.tensor(rng.normal(size=(5, 2, 6, 6)).astype(np.float32)),
                cr.tensor(rng.integers(0, 3, 5))) for _ in range(4)]
    _assert_same_training(make, batches, rtol=1e-5, atol=1e-6)


def test_graphnet_step_matches_eager():
    edges = [("a", "h1"), ("b", "h1"), ("a", "h2"), ("h1", "h2"), ("h1", "o"), ("h2", "o"),
             ("b", "o")]

    def make():
        cr.manual_seed(0)
        net = nn.GraphNet(["a", "b"], ["o"], edges, activation="tanh",
                          output_activation="identity")
        return net, _train_step(net, optim.Adam(net.parameters(), lr=0.01), nn.MSELoss())

    rng = np.random.default_rng(0)
    batches = [(cr.tensor(rng.normal(size=(5, 2)).astype(np.float32)),
                cr.tensor(rng.normal(size=(5, 1)).astype(np.float32))) for _ in range(4)]
    _assert_same_training(make, batches, rtol=1e-5, atol=1e-6)


def test_new_shape_or_dtype_retraces():
    m = _mlp()
    c = compile(_train_step(m, optim.SGD(m.parameters(), lr=0.1)))
    (x, y), (x2, y2) = _batches(2)
    c(x, y)
    c(x2, y2)
    assert c.traces == 1
    c(cr.tensor(np.ones((7, 6), np.float32)), cr.tensor(np.zeros(7, np.int64)))
    assert c.traces == 2
    c(x, y)  # the first tape is still cached
    assert c.traces == 2
    m.double()
    c(cr.tensor(x.data.astype(np.float64)), y)
    assert c.traces == 3


def test_at_most_max_tapes_are_kept_oldest_dropped_first():
    m = _mlp()
    c = compile(_train_step(m, optim.SGD(m.parameters(), lr=0.1)), max_tapes=2)
    sizes = [3, 4, 5]
    batches = {n: _batches(1, batch=n)[0] for n in sizes}
    for n in sizes:  # three signatures: the first tape is dropped when the third is traced
        c(*batches[n])
    assert c.traces == 3
    c(*batches[5])
    c(*batches[4])
    assert c.traces == 3
    c(*batches[3])  # traced again
    assert c.traces == 4
    assert len([t for tapes in c._tapes.values() for t in tapes]) == 2


def test_replaced_parameter_array_retraces():
    m = _mlp()
    c = compile(_train_step(m, optim.SGD(m.parameters(), lr=0.1)))
    (x, y), (x2, y2) = _batches(2)
    c(x, y)
    m[0].weight.data = m[0].weight.data.copy()
    c(x2, y2)
    assert c.traces == 2


def test_returned_tensors_are_copies():
    m = _mlp()
    c = compile(_train_step(m, optim.SGD(m.parameters(), lr=0.5)))
    (x, y), (x2, y2) = _batches(2)
    c(x, y)
    first = c(x, y)
    kept = first.data.copy()
    c(x2, y2)
    np.testing.assert_array_equal(first.data, kept)
    assert not first.requires_grad


@pytest.mark.parametrize("read", [
    lambda loss: loss.item() > 1,
    lambda loss: float(loss) > 1,
    lambda loss: bool(loss > 1),
    lambda loss: loss.numpy(),
    lambda loss: loss.tolist(),
])
def test_value_dependent_python_is_reported(read):
    m = _mlp()
    loss_fn = nn.CrossEntropyLoss()

    def step(x, y):
        loss = loss_fn(m(x), y)
        if read(loss):
            loss = loss * 2
        return loss

    (x, y), = _batches(1)
    with pytest.raises(CompileError, match="reads a tensor's value"):
        compile(step)(x, y)


def test_returning_a_python_number_is_reported():
    m = _mlp()
    loss_fn = nn.CrossEntropyLoss()
    (x, y), = _batches(1)
    with pytest.raises(CompileError, match="returned a float"):
        compile(lambda x, y: float(loss_fn(m(x), y).data))(x, y)


def test_random_draws_are_reported():
    cr.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    loss_fn = nn.CrossEntropyLoss()
    (x, y), = _batches(1)
    with pytest.raises(CompileError, match="random"):
        compile(lambda x, y: loss_fn(m(x), y))(x, y)


def test_inputs_that_require_grad_are_refused():
    w = cr.tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.raises(CompileError, match="requires grad"):
        compile(lambda t: (t * 2).sum())(w)


def test_ndarray_inputs_and_plain_functions():
    w = cr.tensor(np.arange(3, dtype=np.float32), requires_grad=True)

    def f(x):
        w.grad = None
        loss = ((x * w).tanh() ** 2).sum()
        loss.backward()
        return loss, w.grad * 1.0

    c = compile(f)
    for k in range(3):
        x = np.full(3, 0.1 * (k + 1), np.float32)
        loss, g = c(x)
        xt = cr.tensor(x)
        w.grad = None
        ref = ((xt * w).tanh() ** 2).sum()
        ref.backward()
        np.testing.assert_allclose(loss.data, ref.data, rtol=1e-6)
        np.testing.assert_allclose(g.data, w.grad.data, rtol=1e-6)


def test_packed_sgd_follows_option_changes_and_late_zero_grad():
    def make():
        m = _mlp()
        opt = optim.SGD(m.parameters(), lr=0.1)
        loss_fn = nn.CrossEntropyLoss()

        def step(x, y):
            loss = loss_fn(m(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss

        return m, opt, step

    (m1, o1, s1), (m2, o2, s2) = make(), make()
    c2 = compile(s2)
    for k, (x, y) in enumerate(_batches(6)):
        if k == 3:  # the packed update must give way to the optimiser's own step
            o1.param_groups[0]["momentum"] = o2.param_groups[0]["momentum"] = 0.9
        np.testing.assert_allclose(c2(x, y).data, s1(x, y).data, rtol=1e-6)
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-6, atol=1e-7)
        assert q.grad is None
    assert c2.traces == 1


def test_scheduler_reading_the_loss_gets_each_steps_value():
    def make():
        m = _mlp()
        opt = optim.SGD(m.parameters(), lr=0.5)
        sched = optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)
        base = _train_step(m, opt)

        def step(x, y):
            loss = base(x, y)
            sched.step(loss)
            return loss

        return m, step

    _assert_same_training(make, _batches(6))


def test_batchnorm_running_statistics_are_replayed():
    """Batch norm in training mode updates its running statistics with in-place tensor methods,
    which the tape replays: after compiled training they equal eager training's."""

    def make():
        cr.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
        return m, _train_step(m, optim.SGD(m.parameters(), lr=0.1, momentum=0.9))

    eager, compiled = make(), make()
    step = compile(compiled[1])
    for x, y in _batches(batch=8):
        np.testing.assert_allclose(step(x, y).data, eager[1](x, y).data, rtol=1e-6)
    for name, b in eager[0].named_buffers():
        np.testing.assert_allclose(dict(compiled[0].named_buffers())[name].data, b.data,
                                   rtol=1e-6, err_msg=name)
    assert int(compiled[0][1].num_batches_tracked.item()) == 5


@pytest.mark.parametrize("frozen", [False, True])  # True: batch norm in eval mode, fine-tuning
def test_conv_batchnorm_and_layernorm_model_matches_eager(frozen):
    def make():
        cr.manual_seed(2)
        # no conv bias before batch norm: its gradient is zero but for rounding, which Adam
        # would blow up to full steps in different directions in the two runs
        m = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU(),
                          nn.Flatten(), nn.LayerNorm(3 * 5 * 5), nn.Linear(3 * 5 * 5, 3))
        if frozen:
            m[1].running_mean.data[:] = [0.1, -0.2, 0.3]
            m[1].eval()
        return m, _train_step(m, optim.Adam(m.parameters(), lr=0.01))

    rng = np.random.default_rng(2)
    batches = [(cr.tensor(rng.normal(size=(6, 2, 5, 5)).astype(np.float32)),
                cr.tensor(rng.integers(0, 3, 6))) for _ in range(4)]
    _assert_same_training(make, batches, rtol=1e-5, atol=1e-6)


def test_switching_a_module_between_train_and_eval_retraces():
    """The tape is only valid for the modes the modules ran in: batch norm in eval mode uses
    its running statistics, so after model.eval() the compiled function traces again."""
    cr.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 3), nn.BatchNorm1d(3))
    f = compile(lambda x: m(x))
    x = _batches(1, batch=8)[0][0]
    for mode in ("train", "eval", "eval", "train"):
        getattr(m, mode)()
        out = f(x).data
        stats = m[1].running_mean.data.copy()
        expected = m(x).data  # eager, in the same mode (train mode moves the statistics again)
        np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7, err_msg=mode)
        if mode == "eval":
            np.testing.assert_array_equal(m[1].running_mean.data, stats)
    assert f.traces == 2  # train, eval; back in train mode the first tape replays again


def test_freezing_and_unfreezing_a_layer_retraces():
    """requires_grad decides what backward computes: a layer frozen after tracing must stop
    training (the tape would go on updating it), and train again when unfrozen."""
    def make():
        m = _mlp()
        return m, _train_step(m, optim.SGD(m.parameters(), lr=0.1))

    (m1, s1), (m2, s2) = make(), make()
    c2 = compile(s2)
    for k, (x, y) in enumerate(_batches(6)):
        for m in (m1, m2):
            for p in m[0].parameters():
                p.requires_grad = k not in (2, 3)
        np.testing.assert_allclose(c2(x, y).data, s1(x, y).data, rtol=1e-6)
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-6, atol=1e-7)
    assert c2.traces == 2  # unfrozen again, the first tape replays


def test_alternating_states_reuse_their_tapes():
    """A step called alternately with a layer frozen and unfrozen traces once per state, then
    replays whichever tape's guards hold, with eager's results throughout."""
    def make():
        m = _mlp()
        return m, _train_step(m, optim.SGD(m.parameters(), lr=0.1, momentum=0.9))

    (m1, s1), (m2, s2) = make(), make()
    c2 = compile(s2)
    for k, (x, y) in enumerate(_batches(8)):
        for m in (m1, m2):
            m[0].weight.requires_grad = k % 2 == 0
        np.testing.assert_allclose(c2(x, y).data, s1(x, y).data, rtol=1e-6)
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-6, atol=1e-7)
    assert c2.traces == 2


def test_train_and_eval_inside_the_step_are_replayed():
    """The usual loop: the step calls model.train() itself, validation runs in eval mode in
    between. The step keeps one tape (no retrace per epoch), and the mode set inside it holds
    on every call; a step that switches to eval for part of its work replays that too."""
    def make():
        cr.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
        opt, loss_fn = optim.SGD(m.parameters(), lr=0.1), nn.CrossEntropyLoss()

        def step(x, y):
            m.train()
            opt.zero_grad()
            loss = loss_fn(m(x), y)
            loss.backward()
            opt.step()
            m.eval()
            return loss, m(x)  # the outputs in eval mode, from the running statistics

        return m, step

    (m1, s1), (m2, s2) = make(), make()
    c2 = compile(s2)
    batches = _batches(6, batch=8)
    for k, (x, y) in enumerate(batches):
        (l1, e1), (l2, e2) = s1(x, y), c2(x, y)
        np.testing.assert_allclose(l2.data, l1.data, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(e2.data, e1.data, rtol=1e-5, atol=1e-6)
        for m in (m1, m2):  # between steps, the caller leaves the model in either mode
            m.train(k % 2 == 0)
        with cr.no_grad():
            np.testing.assert_allclose(m2(x).data, m1(x).data, rtol=1e-5, atol=1e-6)
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m2[1].running_mean.data, m1[1].running_mean.data, rtol=1e-5)
    assert c2.traces == 1


def _penalty_step(m, opt, loss_fn):
    """A loss plus a penalty on the input gradient: a second derivative in every step."""
    def step(x, y):
        opt.zero_grad()
        x = x.clone().requires_grad_()
        loss = loss_fn(m(x), y)
        (gx,) = cr.autograd.grad(loss, (x,), create_graph=True)
        total = loss + 0.1 * (gx * gx).sum()
        total.backward()
        opt.step()
        return total

    return step


def test_input_gradient_penalty_matches_eager():
    def make():
        m = _mlp()
        mse = nn.MSELoss()
        return m, _penalty_step(m, optim.Adam(m.parameters(), lr=0.01),
                                lambda out, y: mse(out, nn.functional.one_hot(y, 3).float()))

    _assert_same_training(make, _batches(4), rtol=1e-5, atol=1e-6)


def test_second_derivative_through_cross_entropy_is_refused():
    """Its backward picks labels with NumPy, which a tape would freeze: a clear error, not a
    silently constant gradient."""
    m = _mlp()
    step = compile(_penalty_step(m, optim.SGD(m.parameters(), lr=0.1), nn.CrossEntropyLoss()))
    with pytest.raises(CompileError, match=r"create_graph=True .*_cross_entropy_vjp"):
        step(*_batches(1)[0])


@pytest.mark.parametrize("pattern", ["clip_norm_layernorm", "keep_grads_clip_value",
                                     "zero_grads_at_the_end"])
def test_in_place_changes_to_gradients_reach_the_gradients(pattern):
    """After backward the step changes .grad in place: the tape must change the array .grad
    holds in this call (a copy, or the array the gradient was added into, in some calls), not
    the array the gradient was computed in."""
    def make():
        cr.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.Tanh(), nn.Linear(8, 3))
        opt = (optim.Adam if pattern == "zero_grads_at_the_end" else optim.SGD)(
            m.parameters(), lr=0.05)
        loss_fn = nn.CrossEntropyLoss()

        def step(x, y):
            if pattern != "zero_grads_at_the_end":
                opt.zero_grad(set_to_none=pattern == "clip_norm_layernorm")
            loss = loss_fn(m(x), y)
            loss.backward()
            if pattern == "clip_norm_layernorm":
                nn.utils.clip_grad_norm_(m.parameters(), 0.01)
            elif pattern == "keep_grads_clip_value":
                nn.utils.clip_grad_value_(m.parameters(), 0.001)
            opt.step()
            if pattern == "zero_grads_at_the_end":
                for p in m.parameters():
                    p.grad.zero_()
            return loss

        return m, step

    _assert_same_training(make, _batches(5))


@pytest.mark.parametrize("change", ["load_state_dict", "add_param_group"])
def test_plain_sgd_follows_its_param_groups_after_tracing(change):
    """The packed SGD update reads the optimiser's group: a group replaced by load_state_dict
    (a checkpoint with another lr) or a group added later must be obeyed."""
    def make():
        m = _mlp()
        scale = nn.Parameter(cr.ones(3))
        opt = optim.SGD(m.parameters(), lr=0.1)
        loss_fn = nn.CrossEntropyLoss()

        def step(x, y):
            opt.zero_grad()
            loss = loss_fn(m(x) * scale, y)
            loss.backward()
            opt.step()
            return loss

        return m, scale, opt, step

    (m1, sc1, o1, s1), (m2, sc2, o2, s2) = make(), make()
    c2 = compile(s2)
    for k, (x, y) in enumerate(_batches(4)):
        if k == 2:
            for o, sc in ((o1, sc1), (o2, sc2)):
                if change == "load_state_dict":
                    sd = o.state_dict()
                    sd["param_groups"][0]["lr"] = 0.01
                    o.load_state_dict(sd)
                else:
                    o.add_param_group({"params": [sc], "lr": 0.5})
        np.testing.assert_allclose(c2(x, y).data, s1(x, y).data, rtol=1e-6)
    for p, q in zip([*m1.parameters(), sc1], [*m2.parameters(), sc2], strict=True):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-6, atol=1e-7)


def test_cross_entropy_labels_are_checked_and_indexed_on_every_replay():
    """int8 labels index (N, C) logits without overflowing (row * C in the label dtype would),
    and a label out of range raises on replay as in eager, not picks a class silently."""
    def make():
        m = _mlp()
        return m, _train_step(m, optim.SGD(m.parameters(), lr=0.1))

    rng = np.random.default_rng(4)
    batches = [(cr.tensor(rng.normal(size=(64, 6)).astype(np.float32)),
                cr.tensor(rng.integers(0, 3, 64).astype(np.int8))) for _ in range(3)]
    _assert_same_training(make, batches)
    m = _mlp()
    step = compile(_train_step(m, optim.SGD(m.parameters(), lr=0.1)))
    x, y = batches[0]
    step(x, y)
    bad = cr.tensor(np.where(np.arange(64) == 5, -1, y.data).astype(np.int8))
    with pytest.raises(IndexError, match="target -1 is out of range for 3 classes"):
        step(x, bad)


def test_a_tuple_of_tensors_as_argument_is_refused():
    m = _mlp()
    step = compile(lambda batch: m(batch[0]).sum())
    with pytest.raises(TypeError, match="a tuple holding tensors or arrays can't be an argument"):
        step(_batches(1)[0])


def test_boolean_mask_indexing_is_refused():
    step = compile(lambda x: x[x > 0].sum())
    with pytest.raises(CompileError, match="indexing with a boolean mask tensor"):
        step(cr.randn(4, 3))


def test_an_input_changed_in_place_is_changed_for_the_caller_from_the_first_call():
    """The trace runs on copies of the inputs; eager changes the caller's tensor, and so must
    the first (traced) call, not only the replays."""
    step = compile(lambda x: x.mul_(0.5).sum())
    for _ in range(3):
        x = cr.ones(2, 3)
        step(x)
        np.testing.assert_array_equal(x.data, np.full((2, 3), 0.5, np.float32))


@pytest.mark.parametrize("pattern", ["compiled_update", "gradients_before_the_step"])
def test_gradients_made_outside_the_step_are_read_at_every_call(pattern):
    """A .grad that exists when the step is traced (made by an eager backward) is replaced
    between calls (zero_grad, backward): the tape must clip and apply this call's gradient."""
    def make():
        cr.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 4), nn.LayerNorm(4), nn.Linear(4, 3))
        opt = optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()

        def update():
            nn.utils.clip_grad_norm_(m.parameters(), 0.05)
            opt.step()
            opt.zero_grad()

        def step(x, y):
            loss_fn(m(x), y).backward()
            update()

        return m, loss_fn, (update if pattern == "compiled_update" else step)

    (m1, lf1, f1), (m2, lf2, f2) = make(), make()
    c2 = compile(f2)
    for x, y in _batches(4):
        for m, lf, f in ((m1, lf1, f1), (m2, lf2, c2)):
            if pattern == "compiled_update":
                lf(m(x), y).backward()
                f()
            else:
                lf(m(x * 0.5), y).backward()  # a gradient there before the step's own
                f(x, y)
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-5, atol=1e-6)
    assert c2.traces == 1


def test_optimiser_step_with_a_closure_is_refused():
    m = _mlp()
    opt = optim.SGD(m.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()

    def step(x, y):
        def closure():
            opt.zero_grad()
            loss = loss_fn(m(x), y)
            loss.backward()
            return loss

        return opt.step(closure)

    with pytest.raises(CompileError, match=r"SGD.step with a closure .* not supported"):
        compile(step)(*_batches(1)[0])


def test_regression_targets_of_another_dtype_are_converted_every_step():
    """float64 targets for a float32 model: the cast is an operation, replayed per batch."""
    def make():
        m = _mlp()
        return m, _train_step(m, optim.SGD(m.parameters(), lr=0.1), nn.MSELoss())

    rng = np.random.default_rng(3)
    batches = [(cr.tensor(rng.normal(size=(4, 6)).astype(np.float32)),
                cr.tensor(rng.normal(size=(4, 3)), dtype=cr.float64)) for _ in range(4)]
    _assert_same_training(make, batches)


@pytest.mark.parametrize("clip", ["norm", "value"])
def test_gradient_clipping_is_replayed(clip):
    """Clipping is computed again from every step's gradients (for the norm: the scale too)."""
    def make():
        m = _mlp()
        opt = optim.SGD(m.parameters(), lr=0.1)
        loss_fn = nn.CrossEntropyLoss()

        def step(x, y):
            opt.zero_grad()
            loss = loss_fn(m(x), y)
            loss.backward()
            if clip == "norm":
                nn.utils.clip_grad_norm_(m.parameters(), 0.05)
            else:
                nn.utils.clip_grad_value_(m.parameters(), 0.01)
            opt.step()
            return loss

        return m, step

    _assert_same_training(make, [(x * 10, y) for x, y in _batches()])


@pytest.mark.parametrize("ignore_index", [-100, 1])
def test_cross_entropy_with_ignored_labels_matches_eager(ignore_index):
    """The tape's own cross-entropy falls back to the eager one for a batch with an ignored
    label, and agrees with it bit for bit otherwise."""
    batches = _batches(6)
    for k in (1, 4):
        batches[k][1].data[0] = ignore_index

    def make():
        m = _mlp()
        opt = optim.SGD(m.parameters(), lr=0.1)
        loss_fn = nn.CrossEntropyLoss(ignore_index=ignore_index)

        def step(x, y):
            opt.zero_grad()
            loss = loss_fn(m(x), y)
            loss.backward()
            opt.step()
            return loss

        return m, step

    c = _assert_same_training(make, batches, rtol=0, atol=0)
    assert c.traces == 1


def test_cross_entropy_label_out_of_range_raises_as_eager():
    m = _mlp()
    step = compile(_train_step(m, optim.SGD(m.parameters(), lr=0.1)))
    x, y = _batches(1)[0]
    step(x, y)
    with pytest.raises(IndexError):
        step(x, cr.tensor(np.array([0, 1, 3, 2])))


def test_linear_with_a_copied_transposed_weight_matches_eager():
    """A Linear of 32+ outputs multiplies by a contiguous copy of W.T; results stay the same."""
    def make():
        cr.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 40), nn.Tanh(), nn.Linear(40, 3))
        return m, _train_step(m, optim.SGD(m.parameters(), lr=0.1))

    c = _assert_same_training(make, _batches())
    assert "_matmul(" in c.source and ".T)" in c.source


def test_sums_over_all_and_kept_axes_match_eager():
    def make():
        m = _mlp()
        opt = optim.SGD(m.parameters(), lr=0.01)

        def step(x, y):
            opt.zero_grad()
            h = m(x)
            loss = (h * h).sum() + h.sum(1, keepdim=True).sum() * 0.5
            loss.backward()
            opt.step()
            return loss

        return m, step

    c = _assert_same_training(make, _batches())
    assert "_add.reduce(" in c.source


@pytest.mark.parametrize("batch", [4, 300])  # feature-major activations up to 256 rows, then not
@pytest.mark.parametrize("act", [nn.Tanh, nn.ReLU])
def test_mlp_step_matches_eager_bitwise_in_both_layouts(batch, act):
    def make():
        m = _mlp(act)
        return m, _train_step(m, optim.SGD(m.parameters(), lr=0.1))

    c = _assert_same_training(make, _batches(3, batch), rtol=0, atol=0)
    assert c.traces == 1
