"""Losses: values and gradients against PyTorch for every reduction and option, finite-difference
checks, second derivatives through the fused primitives, and stability for huge logits."""

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
import chainrule.nn.functional as F
from chainrule.autograd import grad as autograd_grad

REDUCTIONS = ["mean", "sum", "none"]
RNG = np.random.default_rng(0)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _run(fn, *arrays, grad_args=(0,)):
    """Call fn on float64 chainrule tensors; return (value, grads of the args in grad_args)."""
    ts = [cr.tensor(a, dtype=cr.float64, requires_grad=i in grad_args) if a.dtype.kind == "f"
          else cr.tensor(a) for i, a in enumerate(arrays)]
    out = fn(*ts)
    out.backward(gradient=np.linspace(0.5, 1.5, out.data.size).reshape(out.shape))
    return out.data, [ts[i].grad.data for i in grad_args]


def _run_torch(torch, fn, *arrays, grad_args=(0,)):
    ts = [torch.tensor(a, requires_grad=i in grad_args) if a.dtype.kind == "f"
          else torch.tensor(a) for i, a in enumerate(arrays)]
    out = fn(*ts)
    n = out.numel()
    out.backward(torch.linspace(0.5, 1.5, n, dtype=out.dtype).reshape(out.shape))
    return out.detach().numpy(), [ts[i].grad.numpy() for i in grad_args]


def _compare(torch, ours, theirs, *arrays, grad_args=(0,), atol=1e-10, rtol=1e-9):
    v1, g1 = _run(ours, *arrays, grad_args=grad_args)
    v2, g2 = _run_torch(torch, theirs, *arrays, grad_args=grad_args)
    np.testing.assert_allclose(v1, v2, rtol=rtol, atol=atol)
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# -- cross-entropy -------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(6, 4), (3, 5, 2, 3)])
def test_cross_entropy_labels_match_torch(torch, reduction, smoothing, weighted, shape):
    x = RNG.normal(size=shape) * 3
    t = RNG.integers(0, shape[1], (shape[0],) + shape[2:])
    t.reshape(-1)[[1, 4]] = -100  # ignored positions
    w = RNG.uniform(0.2, 2.0, shape[1]) if weighted else None
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    _compare(
        torch,
        lambda a, b: F.cross_entropy(a, b, weight=w, **kw),
        lambda a, b: torch.nn.functional.cross_entropy(
            a, b, weight=None if w is None else torch.tensor(w), **kw),
        x, t,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_custom_ignore_index(torch, reduction):
    x, t = RNG.normal(size=(7, 3)), np.array([0, 2, 1, 2, 2, 0, 1])
    _compare(
        torch,
        lambda a, b: F.cross_entropy(a, b, ignore_index=2, reduction=reduction),
        lambda a, b: torch.nn.functional.cross_entropy(a, b, ignore_index=2, reduction=reduction),
        x, t,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)])
def test_cross_entropy_probability_targets_match_torch(torch, reduction, smoothing, weighted,
                                                       shape):
    x = RNG.normal(size=shape)
    p = RNG.dirichlet(np.ones(shape[1]), size=(shape[0],) + shape[2:])
    p = np.moveaxis(p, -1, 1)
    w = RNG.uniform(0.2, 2.0, shape[1]) if weighted else None
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    _compare(
        torch,
        lambda a, b: F.cross_entropy(a, b, weight=w, **kw),
        lambda a, b: torch.nn.functional.cross_entropy(
            a, b, weight=None if w is None else torch.tensor(w), **kw),
        x, p, grad_args=(0, 1),
    )


def test_cross_entropy_unbatched_matches_torch(torch):
    x = RNG.normal(size=4)
    _compare(torch, lambda a, b: F.cross_entropy(a, b),
             lambda a, b: torch.nn.functional.cross_entropy(a, b), x, np.array(2))
    p = RNG.dirichlet(np.ones(4))
    _compare(torch, lambda a, b: F.cross_entropy(a, b, reduction="none"),
             lambda a, b: torch.nn.functional.cross_entropy(a, b, reduction="none"), x, p)


def test_cross_entropy_all_ignored_is_nan_like_torch():
    x = cr.tensor(RNG.normal(size=(2, 3)))
    assert np.isnan(F.cross_entropy(x, np.array([-100, -100])).item())


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n():
    x = cr.tensor(RNG.normal(size=(4, 3)), requires_grad=True)
    t = np.array([0, 2, 1, 1])
    F.cross_entropy(x, t).backward()
    expected = (cr.softmax(x, 1).data - np.eye(3)[t]) / 4
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-5, atol=1e-7)
    assert F.cross_entropy(x, t).grad_fn == "CrossEntropyBackward"  # one fused node


@pytest.mark.parametrize("classes", [2, 10, 128, 129, 300])  # class-major up to 128, then not
def test_cross_entropy_fast_path_equals_the_general_path(classes):
    """The plain mean (no weights, nothing ignored) takes a shortcut; class weights of 1 take
    the general path: the same values and gradients."""
    logits = RNG.normal(size=(37, classes)) * 3
    t = RNG.integers(0, classes, 37)
    results = []
    for weight in (None, np.ones(classes)):
        x = cr.tensor(logits, dtype=cr.float64, requires_grad=True)
        loss = F.cross_entropy(x, t, weight=weight)
        loss.backward()
        results.append((loss.item(), x.grad.data))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_gradcheck(smoothing):
    x = cr.tensor(RNG.normal(size=(3, 4, 2)), dtype=cr.float64, requires_grad=True)
    t = np.array([[0, 3], [-100, 1], [2, 2]])
    w = RNG.uniform(0.5, 1.5, 4)
    for reduction in REDUCTIONS:
        cr.gradcheck(lambda a, r=reduction: F.cross_entropy(
            a, t, weight=w, reduction=r, label_smoothing=smoothing), [x])


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_second_derivative_matches_torch(torch, smoothing):
    x0, t0 = RNG.normal(size=(5, 4)), RNG.integers(0, 4, 5)
    v = RNG.normal(size=(5, 4))
    x = cr.tensor(x0, dtype=cr.float64, requires_grad=True)
    (g,) = autograd_grad(F.cross_entropy(x, t0, label_smoothing=smoothing), x, create_graph=True)
    (g * cr.tensor(v, dtype=cr.float64)).sum().backward()
    xt = torch.tensor(x0, requires_grad=True)
    (gt,) = torch.autograd.grad(
        torch.nn.functional.cross_entropy(xt, torch.tensor(t0), label_smoothing=smoothing), xt,
        create_graph=True)
    (gt * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(g.data, gt.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_classification_losses_are_finite_for_huge_logits():
    x = cr.tensor([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]], requires_grad=True)
    loss = F.cross_entropy(x, np.array([1, 2]), label_smoothing=0.1)
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(x.grad.data).all()
    np.testing.assert_allclose(F.cross_entropy(x, np.array([0, 1])).item(),
                               np.log1p(np.exp(-1.0)) / 2, rtol=1e-3)  # float32 ulp at 1000
    y = cr.tensor([[1000.0, -1000.0]], requires_grad=True)
    bce = F.binary_cross_entropy_with_logits(y, cr.tensor([[0.0, 1.0]]), pos_weight=[2.0, 3.0])
    bce.backward()
    np.testing.assert_allclose(bce.item(), (1000 + 3 * 1000) / 2, rtol=1e-6)
    assert np.isfinite(y.grad.data).all()


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint64])
def test_cross_entropy_label_range_check_every_integer_type(dtype):
    # the range check views labels as unsigned of their size: -1 must read as out of range
    x = cr.tensor(RNG.normal(size=(3, 4)))
    good = F.cross_entropy(x, np.array([0, 3, 1], dtype=dtype)).item()
    assert np.isclose(good, F.cross_entropy(x, np.array([0, 3, 1])).item())
    with pytest.raises(IndexError, match="target 4 is out of range"):
        F.cross_entropy(x, np.array([0, 4, 1], dtype=dtype))
    if np.dtype(dtype).kind == "i":
        with pytest.raises(IndexError, match="target -1 is out of range"):
            F.cross_entropy(x, np.array([0, -1, 1], dtype=dtype), ignore_index=-7)
        ignored = F.cross_entropy(x, np.array([0, -7, 1], dtype=dtype), ignore_index=-7).item()
        assert np.isclose(ignored, F.cross_entropy(x[[0, 2]], np.array([0, 1])).item())


def test_cross_entropy_rejects_bad_targets():
    x = cr.tensor(RNG.normal(size=(3, 4)))
    with pytest.raises(IndexError, match="out of range for 4 classes"):
        F.cross_entropy(x, np.array([0, 4, 1]))
    with pytest.raises(IndexError, match="out of range"):
        F.cross_entropy(x, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match="integer targets of shape"):
        F.cross_entropy(x, np.array([0, 1]))
    with pytest.raises(TypeError, match="must be integers"):
        F.cross_entropy(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(x, np.array([0, 1, 2]), reduction="avg")


# -- NLL -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(6, 4), (2, 4, 3)])
def test_nll_loss_matches_torch(torch, reduction, weighted, shape):
    x = RNG.normal(size=shape)
    t = RNG.integers(0, shape[1], (shape[0],) + shape[2:])
    t.reshape(-1)[0] = -100
    w = RNG.uniform(0.2, 2.0, shape[1]) if weighted else None
    _compare(
        torch,
        lambda a, b: F.nll_loss(a, b, weight=w, reduction=reduction),
        lambda a, b: torch.nn.functional.nll_loss(
            a, b, weight=None if w is None else torch.tensor(w), reduction=reduction),
        x, t,
    )


def test_nll_of_log_softmax_equals_cross_entropy():
    x = cr.tensor(RNG.normal(size=(5, 3)))
    t = np.array([0, 1, 2, 1, 0])
    np.testing.assert_allclose(F.nll_loss(F.log_softmax(x, 1), t).item(),
                               F.cross_entropy(x, t).item(), rtol=1e-6)


# -- binary cross-entropy ------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_matches_torch(torch, reduction, weighted):
    p = RNG.uniform(0.01, 0.99, (5, 3))
    y = RNG.uniform(0, 1, (5, 3))
    w = RNG.uniform(0.5, 2, (5, 3)) if weighted else None
    _compare(
        torch,
        lambda a, b: F.binary_cross_entropy(a, b, weight=w, reduction=reduction),
        lambda a, b: torch.nn.functional.binary_cross_entropy(
            a, b, weight=None if w is None else torch.tensor(w), reduction=reduction),
        p, y, grad_args=(0, 1),
    )


def test_bce_clamps_log_at_minus_100_like_torch(torch):
    p, y = np.array([0.0, 1.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0, 1.0])
    _compare(torch, lambda a, b: F.binary_cross_entropy(a, b, reduction="none"),
             lambda a, b: torch.nn.functional.binary_cross_entropy(a, b, reduction="none"), p, y,
             rtol=1e-8)  # torch's 1e-12 floor on p(1-p) is a float32 constant
    assert F.binary_cross_entropy(cr.tensor(p), cr.tensor(y), reduction="sum").item() == 200


def test_bce_rejects_non_probabilities():
    with pytest.raises(ValueError, match="apply sigmoid first"):
        F.binary_cross_entropy(cr.tensor([0.5, 1.5]), cr.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="must equal input shape"):
        F.binary_cross_entropy(cr.tensor([0.5, 0.5]), cr.tensor([[0.0, 1.0]]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos_weighted", [False, True])
def test_bce_with_logits_matches_torch(torch, reduction, weighted, pos_weighted):
    x = RNG.normal(size=(5, 3)) * 4
    y = RNG.uniform(0, 1, (5, 3))
    w = RNG.uniform(0.5, 2, (5, 3)) if weighted else None
    pw = RNG.uniform(0.5, 3, 3) if pos_weighted else None

    def theirs(a, b):
        return torch.nn.functional.binary_cross_entropy_with_logits(
            a, b, weight=None if w is None else torch.tensor(w), reduction=reduction,
            pos_weight=None if pw is None else torch.tensor(pw))

    _compare(torch, lambda a, b: F.binary_cross_entropy_with_logits(
        a, b, weight=w, reduction=reduction, pos_weight=pw), theirs, x, y, grad_args=(0, 1))


def test_binary_losses_gradcheck_and_second_derivatives():
    x = cr.tensor(RNG.normal(size=(4, 2)), dtype=cr.float64, requires_grad=True)
    y = cr.tensor(RNG.uniform(0, 1, (4, 2)), dtype=cr.float64, requires_grad=True)
    pw = np.array([0.5, 2.0])
    cr.gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=pw), [x, y])
    p = cr.tensor(RNG.uniform(0.1, 0.9, (4, 2)), dtype=cr.float64, requires_grad=True)
    cr.gradcheck(lambda a, b: F.binary_cross_entropy(a, b), [p, y])
    hess = cr.hessian(lambda a: F.binary_cross_entropy_with_logits(a, y.detach(), reduction="sum"))
    s = 1 / (1 + np.exp(-x.data))
    np.testing.assert_allclose(np.diag(hess(x).data.reshape(8, 8)), (s * (1 - s)).reshape(-1),
                               rtol=1e-9)


# -- regression ----------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses_match_torch(torch, reduction):
    a, b = RNG.normal(size=(6, 3)), RNG.normal(size=(6, 3))
    tf = torch.nn.functional
    pairs = [
        (lambda x, y: F.mse_loss(x, y, reduction),
         lambda x, y: tf.mse_loss(x, y, reduction=reduction)),
        (lambda x, y: F.l1_loss(x, y, reduction),
         lambda x, y: tf.l1_loss(x, y, reduction=reduction)),
    ]
    for delta in (0.3, 1.0, 2.5):
        pairs.append((lambda x, y, d=delta: F.huber_loss(x, y, reduction, delta=d),
                      lambda x, y, d=delta: tf.huber_loss(x, y, reduction=reduction, delta=d)))
    for ours, theirs in pairs:
        _compare(torch, ours, theirs, a, b, grad_args=(0, 1))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("var_shape", [(6, 3), (6,), (6, 1)])
def test_gaussian_nll_matches_torch(torch, reduction, full, var_shape):
    mu, y = RNG.normal(size=(6, 3)), RNG.normal(size=(6, 3))
    var = RNG.uniform(0.1, 2, var_shape)
    var.reshape(-1)[0] = 1e-9  # below eps: clamped, gradient passes straight through
    _compare(
        torch,
        lambda a, b, v: F.gaussian_nll_loss(a, b, v, full=full, reduction=reduction),
        lambda a, b, v: torch.nn.functional.gaussian_nll_loss(a, b, v, full=full,
                                                              reduction=reduction),
        mu, y, var, grad_args=(0, 1, 2), atol=1e-6,
    )


def test_gaussian_nll_rejects_bad_var():
    mu = cr.tensor(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="does not fit input"):
        F.gaussian_nll_loss(mu, mu, cr.ones(4, 2))
    with pytest.raises(ValueError, match="negative"):
        F.gaussian_nll_loss(mu, mu, -cr.ones(4, 3))


def test_sum_squared_error_is_half_sum_with_gradient_y_minus_d():
    y = cr.tensor([[0.2, 0.9], [0.6, 0.1]], requires_grad=True)
    d = cr.tensor([[0.0, 1.0], [1.0, 0.0]])
    e = F.sum_squared_error(y, d)
    e.backward()
    np.testing.assert_allclose(e.item(), 0.5 * np.sum((y.data - d.data) ** 2), rtol=1e-6)
    np.testing.assert_allclose(y.grad.data, y.data - d.data, rtol=1e-6)


def test_mismatched_shapes_warn():
    with pytest.warns(UserWarning, match="broadcast"):
        F.mse_loss(cr.zeros(4, 1), cr.zeros(4))


# -- modules -------------------------------------------------------------------------------------
def test_loss_modules_equal_functional_forms():
    x = cr.tensor(RNG.normal(size=(5, 3)))
    t = np.array([0, 2, 1, 1, 0])
    p = cr.tensor(RNG.uniform(0.1, 0.9, (5, 3)))
    y = cr.tensor(RNG.uniform(0, 1, (5, 3)))
    w = [0.5, 1.0, 2.0]
    cases = [
        (nn.MSELoss(reduction="sum")(x, y), F.mse_loss(x, y, "sum")),
        (nn.L1Loss()(x, y), F.l1_loss(x, y)),
        (nn.HuberLoss(delta=0.5)(x, y), F.huber_loss(x, y, delta=0.5)),
        (nn.BCELoss(weight=y)(p, y), F.binary_cross_entropy(p, y, weight=y)),
        (nn.BCEWithLogitsLoss(pos_weight=w)(x, y),
         F.binary_cross_entropy_with_logits(x, y, pos_weight=w)),
        (nn.CrossEntropyLoss(weight=w, label_smoothing=0.1, ignore_index=1)(x, t),
         F.cross_entropy(x, t, weight=w, label_smoothing=0.1, ignore_index=1)),
        (nn.NLLLoss(reduction="none")(x, t), F.nll_loss(x, t, reduction="none")),
        (nn.GaussianNLLLoss(full=True)(x, y, p), F.gaussian_nll_loss(x, y, p, full=True)),
    ]
    for a, b in cases:
        np.testing.assert_allclose(a.data, b.data, rtol=1e-6)
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert "weight" in dict(nn.CrossEntropyLoss(weight=w).named_buffers())
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="average")


def test_one_hot_matches_torch(torch):
    t = np.array([[0, 3], [2, 1]])
    np.testing.assert_array_equal(F.one_hot(cr.tensor(t)).data,
                                  torch.nn.functional.one_hot(torch.tensor(t)).numpy())
    assert F.one_hot(np.array([1]), num_classes=5).shape == (1, 5)
    with pytest.raises(IndexError, match=r"labels must be in \[0, 3\), got 5..5"):
        F.one_hot(np.array([5]), num_classes=3)


def test_float32_inputs_keep_float32_with_float64_targets_and_weights():
    x = cr.tensor(RNG.normal(size=(4, 3)), requires_grad=True)
    y64 = RNG.uniform(0, 1, (4, 3))
    w = [0.5, 1.0, 2.0]
    losses = [
        F.mse_loss(x, y64), F.l1_loss(x, y64), F.huber_loss(x, y64),
        F.binary_cross_entropy_with_logits(x, y64, weight=np.ones((4, 3)), pos_weight=w),
        F.binary_cross_entropy(F.sigmoid(x), y64, weight=np.ones((4, 3))),
        F.cross_entropy(x, np.array([0, 1, 2, 1]), weight=w, label_smoothing=0.1),
        F.cross_entropy(x, y64 / y64.sum(1, keepdims=True), weight=w),
        F.nll_loss(x, np.array([0, 1, 2, 1]), weight=w),
        F.gaussian_nll_loss(x, y64, y64 + 0.1),
    ]
    for loss in losses:
        x.grad = None
        loss.backward()
        assert loss.dtype == np.float32 and x.grad.dtype == np.float32
