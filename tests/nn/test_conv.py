"""Tests for convolution and pooling (chainrule.ops.conv, chainrule.nn.conv): finite-difference
gradients, values and gradients against PyTorch, second derivatives, errors and the modules."""

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd import grad
from chainrule.nn.conv import AvgPool2d, Conv2d, MaxPool2d
from chainrule.ops import conv as conv_ops
from chainrule.ops.conv import avg_pool2d, conv2d, max_pool2d

# (stride, padding, dilation, kernel (kh, kw), bias)
CONV_CASES = [
    (1, 0, 1, (3, 3), True),
    (2, 1, 1, (3, 2), False),
    ((2, 1), (1, 2), 1, (2, 3), True),
    (1, 1, 2, (3, 3), True),
    ((1, 2), 0, (2, 1), (2, 2), False),
    (3, 2, (1, 2), (1, 3), True),
]
# (kernel_size, stride, padding, dilation) for max pooling; avg pooling uses the first three
POOL_CASES = [
    (2, None, 0, 1),
    (3, 2, 1, 1),
    ((3, 2), (1, 2), (1, 0), 1),
    (2, 1, 1, 2),
    ((2, 3), 3, (1, 1), (2, 1)),
]


def _data(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def _conv_inputs(kernel, bias, seed=0):
    x = cr.tensor(_data((2, 2, 7, 6), seed), dtype=cr.float64, requires_grad=True)
    w = cr.tensor(_data((3, 2, *kernel), seed + 1), dtype=cr.float64, requires_grad=True)
    b = cr.tensor(_data((3,), seed + 2), dtype=cr.float64, requires_grad=True) if bias else None
    return x, w, b


@pytest.mark.parametrize("stride,padding,dilation,kernel,bias", CONV_CASES)
def test_conv2d_gradients_match_finite_differences(stride, padding, dilation, kernel, bias):
    x, w, b = _conv_inputs(kernel, bias)
    args = (x, w) if b is None else (x, w, b)
    assert cr.gradcheck(
        lambda *a: conv2d(a[0], a[1], a[2] if len(a) > 2 else None, stride, padding, dilation),
        args,
    )


@pytest.mark.parametrize("stride,padding,dilation,kernel,bias", CONV_CASES)
def test_conv2d_matches_torch(stride, padding, dilation, kernel, bias):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w, b = _conv_inputs(kernel, bias, seed=3)
    tx, tw = (torch.tensor(t.data, requires_grad=True) for t in (x, w))
    tb = torch.tensor(b.data, requires_grad=True) if bias else None
    out = conv2d(x, w, b, stride, padding, dilation)
    tout = F.conv2d(tx, tw, tb, stride, padding, dilation)
    assert out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-6, atol=1e-6)
    gout = _data(out.shape, 9)
    (out * cr.tensor(gout, dtype=cr.float64)).sum().backward()
    (tout * torch.tensor(gout)).sum().backward()
    pairs = [(x, tx), (w, tw)] + ([(b, tb)] if bias else [])
    for mine, theirs in pairs:
        np.testing.assert_allclose(mine.grad.data, theirs.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kernel_size,stride,padding,dilation", POOL_CASES)
def test_pooling_gradients_match_finite_differences(kernel_size, stride, padding, dilation):
    x = cr.tensor(_data((2, 3, 7, 8), 4), dtype=cr.float64, requires_grad=True)
    assert cr.gradcheck(lambda t: max_pool2d(t, kernel_size, stride, padding, dilation), (x,))
    assert cr.gradcheck(lambda t: avg_pool2d(t, kernel_size, stride, padding), (x,))


@pytest.mark.parametrize("kernel_size,stride,padding,dilation", POOL_CASES)
def test_pooling_matches_torch(kernel_size, stride, padding, dilation):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    # a negative input checks the -inf padding; integer values make ties, which must go to the
    # first maximum of each window, as in PyTorch
    ties = np.random.default_rng(6).integers(0, 3, (2, 3, 7, 8))
    for data in (_data((2, 3, 7, 8), 5) - 3.0, ties):
        for mine_fn, torch_fn, args in (
            (max_pool2d, F.max_pool2d, (kernel_size, stride, padding, dilation)),
            (avg_pool2d, F.avg_pool2d, (kernel_size, stride, padding)),
        ):
            x = cr.tensor(data, dtype=cr.float64, requires_grad=True)
            tx = torch.tensor(data, dtype=torch.float64, requires_grad=True)
            out, tout = mine_fn(x, *args), torch_fn(tx, *args)
            np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-6, atol=1e-6)
            gout = _data(out.shape, 7)
            (out * cr.tensor(gout, dtype=cr.float64)).sum().backward()
            (tout * torch.tensor(gout)).sum().backward()
            np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-6, atol=1e-6)


# (in_channels, out_channels, kernel, stride, padding, dilation, groups)
GROUP_PAD_CASES = [
    (4, 6, (3, 2), 1, "same", (1, 2), 2),  # an even dilated width: one extra column at the right
    (4, 8, (3, 3), 2, "valid", 1, 4),      # depthwise, two filters per channel
    (3, 3, (4, 4), 1, "same", 1, 1),       # an even kernel: the extra row and column
    (6, 4, (2, 3), (2, 1), (1, 0), 1, 2),
]


@pytest.mark.parametrize("cin,cout,kernel,stride,padding,dilation,groups", GROUP_PAD_CASES)
def test_groups_and_string_padding_match_torch(cin, cout, kernel, stride, padding, dilation,
                                               groups):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(21)
    x = cr.tensor(rng.standard_normal((2, cin, 7, 6)), dtype=cr.float64, requires_grad=True)
    w = cr.tensor(rng.standard_normal((cout, cin // groups, *kernel)), dtype=cr.float64,
                  requires_grad=True)
    b = cr.tensor(rng.standard_normal(cout), dtype=cr.float64, requires_grad=True)
    out = conv2d(x, w, b, stride, padding, dilation, groups)
    tx, tw, tb = (torch.tensor(t.data, requires_grad=True) for t in (x, w, b))
    with warnings.catch_warnings():  # torch: 'same' with an even kernel copies the input padded
        warnings.simplefilter("ignore", UserWarning)
        tout = torch.nn.functional.conv2d(tx, tw, tb, stride, padding, dilation, groups)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-6, atol=1e-8)
    gout = rng.standard_normal(out.shape)
    (out * cr.tensor(gout, dtype=cr.float64)).sum().backward()
    (tout * torch.tensor(gout)).sum().backward()
    for mine, theirs in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_allclose(mine.grad.data, theirs.grad.numpy(), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("case", [GROUP_PAD_CASES[0], GROUP_PAD_CASES[1]])
def test_groups_and_string_padding_first_and_second_derivatives(case):
    cin, cout, kernel, stride, padding, dilation, groups = case
    rng = np.random.default_rng(22)
    x = cr.tensor(rng.standard_normal((2, cin, 5, 5)), dtype=cr.float64, requires_grad=True)
    w = cr.tensor(rng.standard_normal((cout, cin // groups, *kernel)), dtype=cr.float64,
                  requires_grad=True)

    def f(x, w):
        return conv2d(x, w, None, stride, padding, dilation, groups).tanh()

    def grad_norm(x, w):
        gx, gw = grad(f(x, w).sum(), (x, w), create_graph=True)
        return (gx * gx).sum() + (gw * gw).sum()

    assert cr.gradcheck(f, (x, w))
    assert cr.gradcheck(grad_norm, (x, w), atol=1e-4)


def test_grouped_conv2d_module_trains_and_keeps_its_shape():
    conv = Conv2d(4, 8, 3, padding="same", groups=4, generator=cr.Generator(0))
    assert conv.weight.shape == (8, 1, 3, 3)
    x = cr.randn(2, 4, 6, 6)
    assert conv(x).shape == (2, 8, 6, 6)
    # a grouped convolution is the convolutions of its groups side by side
    halves = [conv2d(x[:, i:i + 1], conv.weight[2 * i:2 * i + 2], conv.bias[2 * i:2 * i + 2],
                     padding="same") for i in range(4)]
    np.testing.assert_allclose(conv(x).data, cr.cat(halves, 1).data, rtol=1e-5, atol=1e-6)


# -- Conv2d + ReLU/Tanh/Sigmoid as one primitive (nn.Sequential's use: tests/nn/test_layers.py) --
ACTS = {"relu": cr.relu, "tanh": cr.tanh, "sigmoid": cr.sigmoid}


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("dtype", [cr.float32, cr.float64])
def test_conv2d_act_is_bitwise_conv_then_activation(act, dtype):
    """The fused primitive does the same arithmetic as the two ops it replaces."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in [(2, 4, 6, 5), (6, 2, 3, 2), (6,)]]
    g = cr.tensor(rng.standard_normal((2, 6, 4, 2)), dtype=dtype)
    geo = {"stride": (1, 2), "padding": "valid", "dilation": 1, "groups": 2}
    results = []
    for fused in (True, False):
        x, w, b = (cr.tensor(a, dtype=dtype, requires_grad=True) for a in arrays)
        y = (conv_ops.conv2d_act(x, w, b, **geo, activation=act) if fused
             else ACTS[act](conv2d(x, w, b, **geo)))
        (y * g).sum().backward()
        results.append([y.data, x.grad.data, w.grad.data, b.grad.data])
    for mine, unfused in zip(*results, strict=True):
        np.testing.assert_array_equal(mine, unfused)


@pytest.mark.parametrize("act", ACTS)
def test_conv2d_act_first_and_second_derivatives(act):
    x, w, b = _conv_inputs((2, 3), True, seed=30)

    def f(x, w, b):
        return conv_ops.conv2d_act(x, w, b, 1, 1, activation=act)

    def grad_norm(x, w):
        gx, gw = grad((f(x, w, b) ** 2).sum(), (x, w), create_graph=True)
        return (gx * gx).sum() + (gw * gw).sum()

    assert cr.gradcheck(f, (x, w, b))
    assert cr.gradcheck(grad_norm, (x, w), atol=1e-4)


def test_conv2d_act_rejects_unknown_activations():
    with pytest.raises(ValueError, match="unknown activation 'gelu'; use one of relu"):
        conv_ops.conv2d_act(cr.zeros(1, 1, 4, 4), cr.zeros(2, 1, 3, 3), activation="gelu")


def _net(F, x, w, b):
    """conv -> tanh -> max pool -> avg pool -> sum of squares (shared by both frameworks)."""
    h = F.conv2d(x, w, b, (2, 1), 1, (1, 2)).tanh()
    h = F.avg_pool2d(F.max_pool2d(h, 2, 1, 1), 2, 1, 1)
    return (h * h).sum()


def test_second_derivative_through_conv_and_pooling_matches_torch():
    torch = pytest.importorskip("torch")
    x, w, b = _conv_inputs((3, 2), True, seed=8)
    tx, tw, tb = (torch.tensor(t.data, requires_grad=True) for t in (x, w, b))
    gs = grad(_net(cr.ops.conv, x, w, b), (x, w, b), create_graph=True)
    sum((g * g).sum() for g in gs).backward()
    tgs = torch.autograd.grad(_net(torch.nn.functional, tx, tw, tb), (tx, tw, tb),
                              create_graph=True)
    sum((g * g).sum() for g in tgs).backward()
    for g, tg in zip(gs, tgs, strict=True):
        np.testing.assert_allclose(g.data, tg.detach().numpy(), rtol=1e-6, atol=1e-8)
    for mine, theirs in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_allclose(mine.grad.data, theirs.grad.numpy(), rtol=1e-6, atol=1e-8)


def test_hessian_through_conv_and_pooling_matches_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w = _data((2, 2, 5, 5), 14), _data((2, 2, 2, 2), 15)

    def f(w):
        h = conv2d(cr.tensor(x, dtype=cr.float64), w, padding=1).tanh()
        return avg_pool2d(max_pool2d(h, 2, 1), 2).pow(2).sum()

    def tf(w):
        h = torch.tanh(F.conv2d(torch.tensor(x), w, padding=1))
        return F.avg_pool2d(F.max_pool2d(h, 2, 1), 2).pow(2).sum()

    hess = cr.hessian(f)(cr.tensor(w, dtype=cr.float64))
    expected = torch.autograd.functional.hessian(tf, torch.tensor(w)).numpy()
    np.testing.assert_allclose(hess.data, expected, rtol=1e-6, atol=1e-9)


def test_second_derivative_matches_finite_differences():
    x, w, _ = _conv_inputs((2, 2), False, seed=10)

    def grad_norm(x, w):
        gx, gw = grad(_net(cr.ops.conv, x, w, None), (x, w), create_graph=True)
        return (gx * gx).sum() + (gw * gw).sum()

    assert cr.gradcheck(grad_norm, (x, w), atol=1e-4)


@pytest.mark.parametrize("block,blocks", [(72, 4), (216, 2)])  # 216: 3 rows then 1, uneven
def test_output_rows_in_blocks_give_the_same_values_and_gradients(monkeypatch, block, blocks):
    """The unfolded input is built a block of output rows at a time (forward, and again in
    backward): any split, with padding and dilation, gives PyTorch's values and gradients, and
    second derivatives pass finite differences."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(conv_ops, "_BLOCK", block)  # 12 x OW*N = 12 x 3*2 elements per row
    x, w, b = _conv_inputs((3, 2), True, seed=13)
    geo = {"stride": 2, "padding": (1, 0), "dilation": (1, 2)}  # out_hw = (4, 3)
    assert len(conv_ops._row_blocks((4, 3), 2, 12)) == blocks
    tx, tw, tb = (torch.tensor(t.data, requires_grad=True) for t in (x, w, b))
    out = conv2d(x, w, b, **geo)
    tout = torch.nn.functional.conv2d(tx, tw, tb, **geo)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-6, atol=1e-8)
    out.pow(2).sum().backward()
    tout.pow(2).sum().backward()
    for mine, theirs in ((x, tx), (w, tw), (b, tb)):
        np.testing.assert_allclose(mine.grad.data, theirs.grad.numpy(), rtol=1e-6, atol=1e-8)

    def grad_norm(x, w):
        gx, gw = grad(conv2d(x, w, None, **geo).tanh().sum(), (x, w), create_graph=True)
        return (gx * gx).sum() + (gw * gw).sum()

    assert cr.gradcheck(grad_norm, (x, w), atol=1e-4)


def test_float32_unbatched_and_layout_independent():
    x = _data((2, 3, 9, 9), 11).astype(np.float32)
    w = cr.tensor(_data((4, 3, 3, 3), 12), requires_grad=True)
    out = conv2d(cr.tensor(x), w, stride=2, padding=1)
    assert out.dtype == np.float32 and out.shape == (2, 4, 5, 5)
    # the same image unbatched, and as a non-contiguous (transposed) array, give the same result
    np.testing.assert_allclose(conv2d(cr.tensor(x[1]), w, stride=2, padding=1).data,
                               out.data[1], rtol=1e-5, atol=1e-6)
    xt = np.ascontiguousarray(x.transpose(2, 3, 0, 1)).transpose(2, 3, 0, 1)
    np.testing.assert_allclose(conv2d(cr.tensor(xt), w, stride=2, padding=1).data, out.data)
    assert max_pool2d(cr.tensor(x[0]), 2).shape == (3, 4, 4)
    assert avg_pool2d(cr.tensor(x[0]), 3, 2, 1).shape == (3, 5, 5)


@pytest.mark.parametrize("call,message", [
    (lambda: conv2d(cr.zeros(3, 8, 8), cr.zeros(2, 4, 3, 3)), r"input shape \(1, 3, 8, 8\) has 3"),
    (lambda: conv2d(cr.zeros(8, 8), cr.zeros(2, 1, 3, 3)), r"4-D .* got shape \(8, 8\)"),
    (lambda: conv2d(cr.zeros(1, 1, 1, 8, 8), cr.zeros(2, 1, 3, 3)), r"got shape \(1, 1, 1, 8, 8\)"),
    (lambda: conv2d(cr.zeros(1, 1, 4, 4), cr.zeros(2, 1, 5, 5)), r"kernel 5x5 .* padded input 4x4"),
    (lambda: conv2d(cr.zeros(1, 1, 4, 4), cr.zeros(2, 1, 3)), r"weight must be 4-D"),
    (lambda: conv2d(cr.zeros(1, 1, 4, 4), cr.zeros(2, 1, 3, 3), cr.zeros(3)), r"bias must have"),
    (lambda: conv2d(cr.zeros(1, 1, 9, 9), cr.zeros(2, 1, 3, 3), dilation=5), r"spanning 11x11"),
    (lambda: conv2d(cr.zeros(1, 1, 4, 4), cr.zeros(2, 1, 3, 3), stride=0), r"stride must be >= 1"),
    (lambda: conv2d(cr.zeros(1, 4, 8, 8), cr.zeros(2, 4, 3, 3), groups=2),
     r"weight shape \(2, 4, 3, 3\) with groups=2 expects 8"),
    (lambda: conv2d(cr.zeros(1, 4, 8, 8), cr.zeros(3, 2, 3, 3), groups=2), r"3 .* not divisible"),
    (lambda: conv2d(cr.zeros(1, 4, 8, 8), cr.zeros(2, 4, 3, 3), groups=0), r"positive int"),
    (lambda: conv2d(cr.zeros(1, 1, 8, 8), cr.zeros(2, 1, 3, 3), stride=2, padding="same"),
     r"padding='same' needs stride 1"),
    (lambda: conv2d(cr.zeros(1, 1, 8, 8), cr.zeros(2, 1, 3, 3), padding="full"),
     r"'valid' or 'same', got 'full'"),
    (lambda: Conv2d(4, 6, 3, groups=4), r"out_channels \(6\) must be divisible by groups"),
    (lambda: Conv2d(1, 2, 3, stride=2, padding="same"), r"Conv2d: padding='same' needs stride"),
    (lambda: max_pool2d(cr.zeros(1, 1, 4, 4), 2, padding=2), r"at most half the kernel"),
    (lambda: avg_pool2d(cr.zeros(1, 1, 2, 2), 3, padding=1), None),
    (lambda: max_pool2d(cr.zeros(1, 1, 2, 2), 3), r"kernel 3x3 .* padded input 2x2"),
])
def test_clear_errors(call, message):
    if message is None:  # a valid call, for contrast with its neighbours
        call()
        return
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_bad_argument_types():
    with pytest.raises(TypeError, match=r"kernel_size must be an int or a pair of ints"):
        max_pool2d(cr.zeros(1, 1, 4, 4), (2, 2, 2))
    with pytest.raises(TypeError, match=r"padding must be an int or a pair"):
        Conv2d(1, 2, 3, padding=(1, 2, 3))


def test_modules_shapes_parameters_and_repr():
    cr.manual_seed(0)
    conv = Conv2d(3, 8, (3, 5), stride=2, padding=1, bias=False)
    assert conv.weight.shape == (8, 3, 3, 5) and conv.bias is None
    assert [n for n, _ in conv.named_parameters()] == ["weight"]
    assert repr(conv) == (
        "Conv2d(3, 8, kernel_size=(3, 5), stride=(2, 2), padding=(1, 1), bias=False)"
    )
    assert repr(Conv2d(1, 6, 5)) == "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))"
    assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1)"
    assert repr(AvgPool2d(3, 2, 1)) == "AvgPool2d(kernel_size=3, stride=2, padding=1)"
    x = cr.randn(2, 3, 10, 10)
    assert conv(x).shape == (2, 8, 5, 4)
    assert MaxPool2d(2)(conv(x)).shape == (2, 8, 2, 2)
    assert AvgPool2d(2, 1)(x).shape == (2, 3, 9, 9)
    # glorot_uniform by default, fans counting the receptive field, as Linear
    bound = np.sqrt(6 / (3 * 15 + 8 * 15))
    assert np.abs(conv.weight.data).max() <= bound and conv.weight.data.std() > bound / 3
    he = Conv2d(3, 8, 3, init="he_uniform", generator=cr.Generator(1))
    assert np.abs(he.weight.data).max() <= np.sqrt(6 / 27) and not he.bias.data.any()


def test_module_repr_matches_torch():
    torch = pytest.importorskip("torch")
    for args, kw in (((1, 6, 5), {}), ((3, 8, (3, 5)), {"stride": 2, "padding": 1, "bias": False}),
                     ((2, 4, 3), {"dilation": 2}), ((4, 8, 3), {"padding": "same", "groups": 2}),
                     ((4, 4, 2), {"padding": "valid", "groups": 4, "bias": False})):
        assert repr(Conv2d(*args, **kw)) == repr(torch.nn.Conv2d(*args, **kw))
    assert repr(AvgPool2d(3, 2, 1)) == repr(torch.nn.AvgPool2d(3, 2, 1))


def test_lenet_style_training_reduces_the_loss():
    cr.manual_seed(0)
    rng = np.random.default_rng(0)
    x = cr.tensor(rng.standard_normal((16, 1, 12, 12)).astype(np.float32))
    y = rng.integers(0, 3, 16)
    c1, c2 = Conv2d(1, 4, 3, init="he_uniform"), Conv2d(4, 6, 3, padding=1, init="he_uniform")
    head = cr.tensor(rng.standard_normal((3, 6 * 4)).astype(np.float32) * 0.1, requires_grad=True)
    params = [*c1.parameters(), *c2.parameters(), head]
    losses = []
    for _ in range(30):
        h = MaxPool2d(2)(c1(x).relu())
        h = AvgPool2d(2)(c2(h).relu()).flatten(1)
        loss = -cr.linear(h, head).log_softmax(-1)[np.arange(16), y].mean()
        loss.backward()
        with cr.no_grad():
            for p in params:
                p -= 0.1 * p.grad
                p.grad = None
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
