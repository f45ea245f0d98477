"""chainrule.compile: values library code computes from a step's data are operations, so a compiled
step recomputes them for every batch (Huber's branch, GaussianNLL's clamp, BatchNorm's cumulative
average, tensors built from step data, backward's given gradient, writes to parameters), or the
step is refused (random draws from any generator, a recurrent GraphNet's carried state)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.compile import CompileError, compile
from chainrule.nn import functional as F
from chainrule.nn.utils import parameters_to_vector, vector_to_parameters


def _assert_same_training(make, batches, rtol=1e-6, atol=1e-7):
    """Train two identical setups, one eager and one compiled: losses, weights, gradients and
    buffers agree, and the compiled step traced once (every later batch was a replay)."""
    (m1, s1), (m2, s2) = make(), make()
    c2 = compile(s2)
    for args in batches:
        l1, l2 = s1(*args), c2(*args)
        np.testing.assert_allclose(l2.data, l1.data, rtol=rtol, atol=atol)
    for p, q in zip(m1.parameters(), m2.parameters(), strict=True):
        np.testing.assert_allclose(q.data, p.data, rtol=rtol, atol=atol)
        if p.grad is not None:
            np.testing.assert_allclose(q.grad.data, p.grad.data, rtol=rtol, atol=atol)
    for a, b in zip(m1.buffers(), m2.buffers(), strict=True):
        np.testing.assert_allclose(b.data, a.data, rtol=rtol, atol=atol)
    assert c2.traces == 1


def _regression(n=4, batch=8, d_in=4, d_out=2, seed=0):
    rng = np.random.default_rng(seed)
    return [(cr.tensor(rng.normal(size=(batch, d_in)).astype(np.float32)),
             cr.tensor(rng.normal(size=(batch, d_out)).astype(np.float32))) for _ in range(n)]


def _sgd_step(model, loss_of):
    """A plain training step: loss_of(model, *batch) -> loss, then backward and SGD."""
    opt = optim.SGD(model.parameters(), lr=0.1)

    def step(*batch):
        opt.zero_grad()
        loss = loss_of(model, *batch)
        loss.backward()
        opt.step()
        return loss

    return step


def _linear_setup(loss_of):
    def make():
        cr.manual_seed(0)
        m = nn.Linear(4, 2)
        return m, _sgd_step(m, loss_of)

    return make


def test_huber_branch_is_chosen_per_batch():
    """Which elements take the quadratic branch depends on the batch (it was frozen)."""
    loss_fn = nn.HuberLoss(delta=0.5)
    _assert_same_training(_linear_setup(lambda m, x, y: loss_fn(m(x), y)), _regression())


def _variances(n=4, seed=1):
    """Positive variances with one zero (clamped to eps) at a different place in each batch."""
    rng = np.random.default_rng(seed)
    return [cr.tensor(np.where(np.arange(16).reshape(8, 2) == i, 0.0,
                               rng.uniform(0.5, 1, (8, 2))).astype(np.float32))
            for i in range(n)]


def test_gaussian_nll_clamps_each_batch_var():
    """The clamp of var at eps is an operation: each batch's var is clamped (the first batch's
    correction was kept, giving NaN losses)."""
    loss_fn = nn.GaussianNLLLoss(eps=1e-2)
    batches = [(x, y, v) for (x, y), v in zip(_regression(), _variances(), strict=True)]
    _assert_same_training(_linear_setup(lambda m, x, y, v: loss_fn(m(x), y, v)), batches)


def test_gaussian_nll_negative_var_raises_on_replay():
    """A negative variance in a later batch raises as eagerly, not a silent NaN."""
    m = nn.Linear(4, 2)
    step = compile(lambda x, y, v: F.gaussian_nll_loss(m(x), y, v))
    (x, y), v = _regression(1)[0], _variances(1)[0]
    step(x, y, v)
    with pytest.raises(ValueError, match="negative"):
        step(x, y, -v)


def test_batchnorm_cumulative_average_uses_each_batch_count():
    """momentum=None averages with factor 1/batches seen, an operation on the buffer (it was
    frozen at 1/1, so the running statistics were the last batch's)."""
    def make():
        cr.manual_seed(0)
        m = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3, momentum=None))
        return m, _sgd_step(m, lambda m, x, y: F.mse_loss(m(x)[:, :2], y))

    _assert_same_training(make, _regression(), rtol=1e-5, atol=1e-6)


def _recurrent_net():
    cr.manual_seed(0)
    return nn.GraphNet(["a"], ["o"], [("a", "h"), ("h", "o")], delayed_edges=[("h", "h")])


def _sequences(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [tuple(cr.tensor(rng.normal(size=(4, 5, 1)).astype(np.float32)) for _ in range(2))
            for _ in range(n)]


def test_recurrent_graphnet_carried_state_is_refused():
    """The state a recurrent GraphNet carries between calls can't be replayed (each replay would
    restart from the traced state): refused."""
    net = _recurrent_net()
    step = compile(_sgd_step(net, lambda m, x, y: F.mse_loss(m(x), y)))
    with pytest.raises(CompileError, match="reset_state"):
        step(*_sequences(1)[0])


def test_recurrent_graphnet_reset_in_step_is_replayed():
    """A step that resets the state before running the net replays faithfully."""
    def loss_of(m, x, y):
        m.reset_state()
        return F.mse_loss(m(x), y)

    def make():
        net = _recurrent_net()
        return net, _sgd_step(net, loss_of)

    _assert_same_training(make, _sequences())


@pytest.mark.parametrize("build", [cr.tensor, cr.Tensor,
                                   lambda y: cr.as_tensor(y, dtype=np.float64)],
                         ids=["tensor", "Tensor", "as_tensor"])
def test_tensor_built_from_step_data_is_copied_per_batch(build):
    """A tensor made from a step's input tensor copies each batch's values (the copy was the
    first batch's forever)."""
    _assert_same_training(_linear_setup(lambda m, x, y: F.mse_loss(m(x), build(y))),
                          _regression())


def test_tensor_from_a_list_of_tensors_is_refused():
    """Building a tensor from a list holding tensors reads their values: refused."""
    step = compile(lambda x: cr.tensor([x[0], x[1]]))
    with pytest.raises(CompileError, match="list of tensors"):
        step(cr.tensor(np.ones((2, 3), np.float32)))


def test_backward_given_gradient_is_each_batchs():
    """backward(gradient=w) uses each call's w (the first call's was kept)."""
    def loss_of(m, x, w):
        out = m(x)
        out.backward(gradient=w)
        return (out * w).sum()

    def make():
        cr.manual_seed(0)
        m = nn.Linear(4, 2)
        opt = optim.SGD(m.parameters(), lr=0.1)

        def step(x, w):
            opt.zero_grad()
            loss = loss_of(m, x, w)
            opt.step()
            return loss

        return m, step

    _assert_same_training(make, _regression())


def _functional_setup(grads, write):
    """A step that takes gradients with ``grads(loss, out, y, params)`` (autograd.grad) and
    writes new weights with ``write(params, gradients)`` under no_grad."""
    def make():
        cr.manual_seed(0)
        m = nn.Linear(4, 2)
        ps = list(m.parameters())

        def step(x, y):
            out = m(x)
            loss = F.mse_loss(out, y)
            gs = grads(loss, out, y, ps)
            with cr.no_grad():
                write(ps, gs)
            return loss

        return m, step

    return make


def _sgd_in_place(ps, gs):
    for p, g in zip(ps, gs, strict=True):
        p.sub_(g, alpha=0.1)


def test_autograd_grad_outputs_is_each_batchs():
    """autograd.grad(..., grad_outputs=w) uses each call's w (the first call's was kept)."""
    def grads(loss, out, y, ps):
        return cr.autograd.grad(out, ps, grad_outputs=(out - y) * (1.0 / y.shape[0]))

    _assert_same_training(_functional_setup(grads, _sgd_in_place), _regression())


def test_vector_to_parameters_in_a_step_is_replayed():
    """vector_to_parameters' writes are replayed with each call's vector (they were not)."""
    def write(ps, gs):
        vector_to_parameters(parameters_to_vector(ps) - 0.1 * parameters_to_vector(gs), ps)

    make = _functional_setup(lambda loss, out, y, ps: cr.autograd.grad(loss, ps), write)
    _assert_same_training(make, _regression())


def test_init_in_a_step_is_replayed():
    """An nn.init call inside a step writes the tensor on every replay (it was done once)."""
    def loss_of(m, x, y):
        nn.init.constant_(m.bias, 0.5)
        return F.mse_loss(m(x), y)

    _assert_same_training(_linear_setup(loss_of), _regression())


def test_graphnet_set_weights_in_a_step_is_replayed():
    """GraphNet.set_weights / set_biases inside a step write on every replay (they were not)."""
    def loss_of(m, x, y):
        m.set_weights({("a", "h"): 1.0})
        m.set_biases({"o": -0.5})
        return F.mse_loss(m(x), y)

    def make():
        cr.manual_seed(0)
        net = nn.GraphNet(["a", "b"], ["o"], [("a", "h"), ("b", "h"), ("h", "o")])
        return net, _sgd_step(net, loss_of)

    batches = [(x[:, :2], y[:, :1]) for x, y in _regression()]
    _assert_same_training(make, batches)


def test_load_state_dict_in_a_step_is_replayed():
    """A target network loaded from the trained one inside the step follows it on every replay."""
    def make():
        cr.manual_seed(0)
        online, target = nn.Linear(4, 2), nn.Linear(4, 2)
        train = _sgd_step(online, lambda m, x, y: F.mse_loss(m(x), y))

        def step(x, y):
            loss = train(x, y)
            target.load_state_dict(online.state_dict())
            return loss + F.mse_loss(target(x), y)

        return nn.ModuleList([online, target]), step

    _assert_same_training(make, _regression())


@pytest.mark.parametrize("draw", [
    lambda x, g: nn.Dropout(0.5, generator=g)(x),
    lambda x, g: F.dropout(x, 0.5, generator=g),
    lambda x, g: x + cr.randn(*x.shape, generator=g),
], ids=["Dropout", "F.dropout", "randn"])
def test_random_draw_from_a_user_generator_is_refused(draw):
    """A draw from a user's Generator would repeat every replay, like the default generator's."""
    step = compile(lambda x: draw(x, cr.Generator(1)).sum())
    with pytest.raises(CompileError, match="draws random numbers"):
        step(cr.tensor(np.ones((2, 3), np.float32)))
