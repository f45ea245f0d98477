"""Layers: gradients against finite differences, outputs and gradients against PyTorch (weights
copied across), BatchNorm running statistics and eval mode, Dropout statistics, reprs."""

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
import chainrule.nn.functional as F
from chainrule.autograd import grad as autograd_grad

RNG = np.random.default_rng(1)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def module_gradcheck(module, x):
    """Finite-difference check of d out / d (input and every direct parameter) of ``module``."""
    module.double()
    names = [n for n, _ in module.named_parameters()]
    originals = [getattr(module, n) for n in names]

    def fn(inp, *params):
        for n, p in zip(names, params, strict=True):
            object.__setattr__(module, n, p)
        return module(inp)

    x = cr.tensor(x, dtype=cr.float64, requires_grad=True)
    try:
        assert cr.gradcheck(fn, [x, *originals])
    finally:
        for n, p in zip(names, originals, strict=True):
            object.__setattr__(module, n, p)


def _copy_to_torch(ours, theirs, torch):
    with torch.no_grad():
        for name, t in ours.state_dict().items():
            getattr(theirs, name).copy_(torch.tensor(t.data))


def _compare_forward_backward(torch, ours, theirs, x, atol=1e-10):
    """Same output and same gradients (input and parameters) in float64."""
    ours.double()
    theirs.double()
    _copy_to_torch(ours, theirs, torch)
    xa = cr.tensor(x, dtype=cr.float64, requires_grad=True)
    out = ours(xa)
    w = np.random.default_rng(7).normal(size=out.shape)
    (out * cr.tensor(w, dtype=cr.float64)).sum().backward()
    xt = torch.tensor(x, requires_grad=True)
    out_t = theirs(xt)
    (out_t * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=1e-9, atol=atol)
    np.testing.assert_allclose(xa.grad.data, xt.grad.numpy(), rtol=1e-8, atol=atol)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.data, tparams[name].grad.numpy(), rtol=1e-8, atol=atol)


# -- Linear --------------------------------------------------------------------------------------
def test_linear_shapes_init_and_single_node():
    cr.manual_seed(0)
    lin = nn.Linear(5, 3)
    assert lin.weight.shape == (3, 5) and lin.bias.shape == (3,)
    assert lin.weight.dtype == np.float32 and lin.weight.requires_grad
    bound = np.sqrt(6 / 8)
    assert np.abs(lin.weight.data).max() <= bound and np.all(lin.bias.data == 0)
    y = lin(cr.ones(4, 5))
    assert y.shape == (4, 3) and y.grad_fn == "LinearBackward"
    assert lin(cr.ones(2, 7, 5)).shape == (2, 7, 3)
    assert nn.Linear(5, 3, bias=False).bias is None
    assert [n for n, _ in nn.Linear(5, 3, bias=False).named_parameters()] == ["weight"]
    assert nn.Linear(2, 2, dtype=cr.float64).weight.dtype == np.float64


def test_linear_init_argument_and_generator():
    a = nn.Linear(4, 6, init="he_normal", generator=cr.Generator(3))
    b = nn.Linear(4, 6, init="kaiming_normal_", generator=cr.Generator(3))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    cr.manual_seed(5)
    c = nn.Linear(4, 6)
    cr.manual_seed(5)
    np.testing.assert_array_equal(c.weight.data, nn.Linear(4, 6).weight.data)
    d = nn.Linear(4, 6, init=lambda w: nn.init.constant(w, 0.25))
    assert np.all(d.weight.data == 0.25)
    with pytest.raises(ValueError, match="unknown initialiser 'glorot'.*glorot_uniform"):
        nn.Linear(2, 2, init="glorot")


def test_linear_matches_torch_and_gradcheck(torch):
    x = RNG.normal(size=(4, 5))
    _compare_forward_backward(torch, nn.Linear(5, 3), torch.nn.Linear(5, 3), x)
    _compare_forward_backward(torch, nn.Linear(5, 3, bias=False),
                              torch.nn.Linear(5, 3, bias=False), x)
    module_gradcheck(nn.Linear(5, 3), x)


def test_linear_state_dict_loads_into_torch(torch):
    ours = nn.Linear(3, 2)
    theirs = torch.nn.Linear(3, 2)
    theirs.load_state_dict({k: torch.tensor(v.data) for k, v in ours.state_dict().items()})
    x = RNG.normal(size=(2, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(cr.tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-6)


# -- activations ---------------------------------------------------------------------------------
ACTIVATIONS = [
    (lambda: nn.Sigmoid(), lambda t: t.nn.Sigmoid()),
    (lambda: nn.Tanh(), lambda t: t.nn.Tanh()),
    (lambda: nn.ReLU(), lambda t: t.nn.ReLU()),
    (lambda: nn.LeakyReLU(0.2), lambda t: t.nn.LeakyReLU(0.2)),
    (lambda: nn.ELU(0.7), lambda t: t.nn.ELU(0.7)),
    (lambda: nn.Softplus(2.0, 3.0), lambda t: t.nn.Softplus(2.0, 3.0)),
    (lambda: nn.Softsign(), lambda t: t.nn.Softsign()),
    (lambda: nn.GELU(), lambda t: t.nn.GELU()),
    (lambda: nn.GELU("tanh"), lambda t: t.nn.GELU("tanh")),
    (lambda: nn.Softmax(1), lambda t: t.nn.Softmax(1)),
    (lambda: nn.LogSoftmax(1), lambda t: t.nn.LogSoftmax(1)),
    (lambda: nn.Identity(), lambda t: t.nn.Identity()),
]


@pytest.mark.parametrize("make", ACTIVATIONS, ids=lambda m: type(m[0]()).__name__)
def test_activation_matches_torch(torch, make):
    ours, theirs = make[0](), make[1](torch)
    x = RNG.normal(size=(4, 6)) * 3
    _compare_forward_backward(torch, ours, theirs, x)
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("make", ACTIVATIONS, ids=lambda m: type(m[0]()).__name__)
def test_activation_gradcheck_and_one_node(make):
    x = RNG.normal(size=(3, 4))
    x[np.abs(x) < 0.05] = 0.3  # keep finite differences away from kinks
    module_gradcheck(make[0](), x)
    y = make[0]()(cr.tensor(x, requires_grad=True))
    if not isinstance(make[0](), nn.Identity):
        assert y._ctx[1][0]._ctx is None  # a single recorded op between input and output


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_second_derivative_matches_torch(torch, approximate):
    x0 = RNG.normal(size=7) * 2
    x = cr.tensor(x0, dtype=cr.float64, requires_grad=True)
    (g,) = autograd_grad(F.gelu(x, approximate).sum(), x, create_graph=True)
    g.sum().backward()
    xt = torch.tensor(x0, requires_grad=True)
    (gt,) = torch.autograd.grad(torch.nn.functional.gelu(xt, approximate=approximate).sum(), xt,
                                create_graph=True)
    gt.sum().backward()
    np.testing.assert_allclose(g.data, gt.detach().numpy(), rtol=1e-9)
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-7, atol=1e-12)


# -- Dropout -------------------------------------------------------------------------------------
def test_dropout_statistics_and_scaling():
    cr.manual_seed(0)
    drop = nn.Dropout(0.3)
    x = cr.ones(200, 500, requires_grad=True)
    y = drop(x)
    zero_frac = np.mean(y.data == 0)
    assert abs(zero_frac - 0.3) < 0.005
    np.testing.assert_allclose(np.unique(y.data), [0.0, 1 / 0.7], rtol=1e-6)
    assert abs(y.data.mean() - 1.0) < 0.01  # inverted dropout keeps the expectation
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)  # gradient = mask / (1 - p)
    drop.eval()
    assert drop(x) is x
    assert repr(nn.Dropout(0.3)) == "Dropout(p=0.3)"


def test_dropout_seeding_and_edge_cases():
    x = cr.ones(50, 50)
    cr.manual_seed(11)
    a = F.dropout(x, 0.5)
    cr.manual_seed(11)
    np.testing.assert_array_equal(a.data, F.dropout(x, 0.5).data)
    g1 = F.dropout(x, 0.5, generator=cr.Generator(2))
    np.testing.assert_array_equal(g1.data, F.dropout(x, 0.5, generator=cr.Generator(2)).data)
    assert not np.array_equal(a.data, g1.data)
    assert np.all(F.dropout(x, 1.0).data == 0)
    assert F.dropout(x, 0.0) is x and F.dropout(x, 0.5, training=False) is x
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        nn.Dropout(1.5)


def test_dropout_gradcheck():
    gen = cr.Generator(0)

    def fn(x):
        gen.manual_seed(4)
        return F.dropout(x, 0.4, generator=gen)

    cr.gradcheck(fn, [cr.tensor(RNG.normal(size=(4, 5)), dtype=cr.float64, requires_grad=True)])


# -- Flatten -------------------------------------------------------------------------------------
def test_flatten_matches_torch(torch):
    x = RNG.normal(size=(2, 3, 4, 5))
    for args in [(), (0,), (1, 2), (2, -1)]:
        assert nn.Flatten(*args)(cr.tensor(x)).shape == tuple(torch.nn.Flatten(*args)(
            torch.tensor(x)).shape)
    assert repr(nn.Flatten()) == repr(torch.nn.Flatten())
    module_gradcheck(nn.Flatten(), RNG.normal(size=(2, 3, 2)))


# -- BatchNorm -----------------------------------------------------------------------------------
BN_CASES = [
    (lambda **k: nn.BatchNorm1d(3, **k), "BatchNorm1d", (8, 3)),
    (lambda **k: nn.BatchNorm1d(3, **k), "BatchNorm1d", (4, 3, 5)),
    (lambda **k: nn.BatchNorm2d(3, **k), "BatchNorm2d", (4, 3, 2, 3)),
]


@pytest.mark.parametrize("case", BN_CASES, ids=lambda c: f"{c[1]}{c[2]}")
@pytest.mark.parametrize("kwargs", [{}, {"affine": False}, {"momentum": None},
                                    {"track_running_stats": False}, {"momentum": 0.3},
                                    {"bias": False}])
def test_batchnorm_train_eval_and_running_stats_match_torch(torch, case, kwargs):
    make, tname, shape = case
    ours, theirs = make(**kwargs), getattr(torch.nn, tname)(3, **kwargs)
    if ours.weight is not None:
        ours.weight.data[:] = RNG.uniform(0.5, 2, 3)
    if ours.bias is not None:
        ours.bias.data[:] = RNG.normal(size=3)
    for _ in range(3):  # several training steps: running statistics accumulate
        _compare_forward_backward(torch, ours, theirs, RNG.normal(size=shape) * 2 + 1)
        ours.zero_grad()
        theirs.zero_grad()
        for name, buf in theirs.named_buffers():
            np.testing.assert_allclose(dict(ours.named_buffers())[name].data, buf.numpy(),
                                       rtol=1e-9)
    ours.eval()
    theirs.eval()
    _compare_forward_backward(torch, ours, theirs, RNG.normal(size=shape))
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize("shape", [(6, 3), (3, 3, 4), (2, 3, 2, 2)])
def test_batchnorm_gradcheck(shape):
    make = nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d
    bn = make(3)
    bn.weight.data[:] = RNG.uniform(0.5, 2, 3)
    module_gradcheck(bn, RNG.normal(size=shape))
    bn.eval()
    module_gradcheck(bn, RNG.normal(size=shape))


def test_batchnorm_second_derivative_matches_torch(torch):
    x0, w0 = RNG.normal(size=(5, 3)), RNG.uniform(0.5, 2, 3)
    v = RNG.normal(size=(5, 3))
    x = cr.tensor(x0, dtype=cr.float64, requires_grad=True)
    w = cr.tensor(w0, dtype=cr.float64, requires_grad=True)
    y = F.batch_norm(x, None, None, w, None, training=True)
    (gx,) = autograd_grad((y * cr.tensor(v, dtype=cr.float64)).sum() ** 2, x, create_graph=True)
    gx.sum().backward()
    xt, wt = torch.tensor(x0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    yt = torch.nn.functional.batch_norm(xt, None, None, wt, None, training=True)
    (gxt,) = torch.autograd.grad((yt * torch.tensor(v)).sum() ** 2, xt, create_graph=True)
    gxt.sum().backward()
    np.testing.assert_allclose(gx.data, gxt.detach().numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(w.grad.data, wt.grad.numpy(), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("layout", ["NCHW", "CHWN"])  # CHWN: a convolution's output
def test_batchnorm_float32_gradients_are_accurate_for_offset_inputs(layout):
    """float32 gradients stay close to a float64 reference of the same input even when the mean
    is large against the spread (PyTorch: 6e-7 and 4e-6 of the largest gradient here)."""
    rng = np.random.default_rng(5)
    x0, g0 = rng.normal(50, 0.1, (16, 4, 5, 6)), rng.standard_normal((16, 4, 5, 6))
    x0 = x0.astype(np.float32).astype(np.float64)  # the same input values for both precisions
    grads = {}
    for dtype in (np.float32, np.float64):
        bn = nn.BatchNorm2d(4)
        bn.weight.data = np.linspace(0.5, 2, 4).astype(dtype)
        bn.bias.data = bn.bias.data.astype(dtype)
        arr = x0.astype(dtype)
        if layout == "CHWN":
            arr = np.ascontiguousarray(arr.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
        x = cr.tensor(arr, dtype=dtype, requires_grad=True)
        bn(x).backward(cr.tensor(g0, dtype=dtype))
        grads[dtype] = [x.grad.data, bn.weight.grad.data, bn.bias.grad.data]
    for lo, hi in zip(grads[np.float32], grads[np.float64], strict=True):
        np.testing.assert_allclose(lo, hi, rtol=0, atol=1e-5 * np.abs(hi).max())


def test_batchnorm_errors():
    with pytest.raises(ValueError, match=r"BatchNorm1d expects input of shape \(N, C\)"):
        nn.BatchNorm1d(3)(cr.ones(2, 3, 4, 5))
    with pytest.raises(ValueError, match="got 4 channels"):
        nn.BatchNorm2d(3)(cr.ones(2, 4, 2, 2))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(cr.ones(1, 3))
    bn = nn.BatchNorm1d(3).eval()
    assert bn(cr.ones(1, 3)).shape == (1, 3)  # eval mode works on a single example


# -- LayerNorm -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,normalized", [((4, 6), 6), ((2, 3, 4), (3, 4)), ((3, 5), (5,))])
@pytest.mark.parametrize("kwargs", [{}, {"elementwise_affine": False}, {"bias": False}])
def test_layernorm_matches_torch(torch, shape, normalized, kwargs):
    ours = nn.LayerNorm(normalized, **kwargs)
    theirs = torch.nn.LayerNorm(normalized, **kwargs)
    if ours.weight is not None:
        ours.weight.data[...] = RNG.uniform(0.5, 2, ours.weight.shape)
    if ours.bias is not None:
        ours.bias.data[...] = RNG.normal(size=ours.bias.shape)
    _compare_forward_backward(torch, ours, theirs, RNG.normal(size=shape) * 3 - 1)
    assert repr(ours) == repr(theirs)


def test_layernorm_gradcheck_and_errors():
    ln = nn.LayerNorm((2, 3))
    ln.weight.data[...] = RNG.uniform(0.5, 2, (2, 3))
    ln.bias.data[...] = RNG.normal(size=(2, 3))
    module_gradcheck(ln, RNG.normal(size=(3, 2, 3)))
    with pytest.raises(ValueError, match="does not end with normalized_shape"):
        ln(cr.ones(3, 3, 2))


def test_layernorm_second_derivative_matches_torch(torch):
    x0 = RNG.normal(size=(3, 4))
    x = cr.tensor(x0, dtype=cr.float64, requires_grad=True)
    (g,) = autograd_grad((F.layer_norm(x, 4) ** 3).sum(), x, create_graph=True)
    g.sum().backward()
    xt = torch.tensor(x0, requires_grad=True)
    (gt,) = torch.autograd.grad((torch.nn.functional.layer_norm(xt, (4,)) ** 3).sum(), xt,
                                create_graph=True)
    gt.sum().backward()
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-7, atol=1e-10)


# -- reprs and containers ------------------------------------------------------------------------
def test_reprs_match_torch(torch):
    pairs = [
        (nn.Linear(3, 2), torch.nn.Linear(3, 2)),
        (nn.Linear(3, 2, bias=False), torch.nn.Linear(3, 2, bias=False)),
        (nn.BatchNorm1d(4, momentum=None), torch.nn.BatchNorm1d(4, momentum=None)),
        (nn.LayerNorm(5, elementwise_affine=False),
         torch.nn.LayerNorm(5, elementwise_affine=False)),
        (nn.Softplus(), torch.nn.Softplus()),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)


def test_mlp_in_sequential_trains_in_float32():
    cr.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.1),
                        nn.Linear(8, 3))
    x = cr.randn(16, 4)
    t = np.arange(16) % 3
    loss = F.cross_entropy(net(x), t)
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype == np.float32 for p in net.parameters())
    net.eval()
    with cr.no_grad():
        assert net(x).shape == (16, 3)


# -- nn.Sequential fuses Linear/Conv2d + ReLU/Tanh/Sigmoid into one primitive --------------------
def _two_nets(act, kind="Linear", seed=0):
    """The same Linear (or Conv2d) -> act -> Linear (Conv2d) net twice: in a Sequential, and
    applied by hand."""
    cr.manual_seed(seed)
    first, last = ((nn.Linear(6, 5), nn.Linear(5, 3)) if kind == "Linear"
                   else (nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 3, 2)))
    net = nn.Sequential(first, act(), last)
    return net, lambda x: net[2](net[1](net[0](x)))


@pytest.mark.parametrize("kind,shape", [("Linear", (4, 6)), ("Conv2D", (3, 2, 5, 5))])
@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh, nn.Sigmoid])
def test_sequential_fuses_a_layer_and_activation_with_identical_results(act, kind, shape):
    net, by_hand = _two_nets(act, kind)
    x = cr.tensor(np.random.default_rng(0).standard_normal(shape), dtype=cr.float32)
    results = []
    for f in (net, by_hand):
        net.zero_grad()
        y = f(x)
        y.pow(2).sum().backward()
        results.append([y.data] + [p.grad.data.copy() for p in net.parameters()])
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)
    fused = net[0].fuse_next(net[1], x)
    assert fused.grad_fn == f"{kind}{act.__name__.capitalize()}Backward"


@pytest.mark.parametrize("kind,shape", [("Linear", (8, 6)), ("Conv2D", (3, 2, 5, 5))])
def test_sequential_does_not_fuse_when_a_hook_would_see_the_intermediate(kind, shape):
    net, _ = _two_nets(nn.ReLU, kind)
    seen = []
    net[0].register_forward_hook(lambda m, i, o: seen.append(o.data.min()))
    net[1].register_forward_hook(lambda m, i, o: seen.append(o.data.min()))
    net(cr.randn(*shape))
    assert len(seen) == 2 and seen[0] < 0 <= seen[1]  # the layer's output, then the ReLU's


def test_sequential_does_not_fuse_subclasses():
    class Shifted(nn.ReLU):
        def forward(self, x):
            return super().forward(x) + 1

    class Doubled(nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2

    cr.manual_seed(0)
    x = cr.randn(3, 6)
    net = nn.Sequential(nn.Linear(6, 5), Shifted())
    assert net(x).data.min() >= 1
    net = nn.Sequential(Doubled(6, 5), nn.ReLU())
    np.testing.assert_allclose(net(x).data, np.maximum(2 * (x.data @ net[0].weight.data.T), 0),
                               rtol=1e-6)
    assert net[0].fuse_next(net[1], x) is None
