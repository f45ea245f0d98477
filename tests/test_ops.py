"""Every differentiable op against central finite differences (chainrule.gradcheck, float64),
including broadcasting, reflected operators and second derivatives; plus numerical stability."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import chainrule as cr

FAST = settings(max_examples=12, deadline=None, derandomize=True, database=None)


def rnd(shape, seed=0, low=0.2, high=1.5, signed=True, requires_grad=True):
    """Float64 values with |x| in [low, high]: away from 0, where abs/relu/... have kinks."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, shape)
    if signed:
        x = x * rng.choice([-1.0, 1.0], shape)
    return cr.tensor(x, dtype=cr.float64, requires_grad=requires_grad)


def pos(shape, seed=0):
    return rnd(shape, seed, signed=False)


def check(fn, *inputs):
    assert cr.gradcheck(fn, inputs)


# -- elementwise unary -------------------------------------------------------------------------

UNARY = {
    "neg": (lambda x: -x, rnd),
    "neg_fn": (cr.neg, rnd),
    "exp": (cr.exp, rnd),
    "log": (cr.log, pos),
    "log1p": (cr.log1p, pos),
    "sqrt": (cr.sqrt, pos),
    "abs": (cr.abs, rnd),
    "abs_builtin": (lambda x: abs(x), rnd),
    "sin": (cr.sin, rnd),
    "cos": (cr.cos, rnd),
    "tan": (cr.tan, rnd),
    "tanh": (cr.tanh, rnd),
    "sigmoid": (cr.sigmoid, rnd),
    "relu": (cr.relu, rnd),
    "leaky_relu": (cr.leaky_relu, rnd),
    "leaky_relu_slope": (lambda x: cr.leaky_relu(x, negative_slope=0.3), rnd),
    "elu": (cr.elu, rnd),
    "elu_alpha": (lambda x: cr.elu(x, alpha=0.7), rnd),
    "softplus": (cr.softplus, rnd),
    "softplus_beta": (lambda x: cr.softplus(x, beta=2.0), rnd),
    "softplus_threshold": (lambda x: cr.softplus(x, threshold=1.0), rnd),
    "softsign": (cr.softsign, rnd),
    "gelu": (cr.gelu, rnd),
    "gelu_tanh": (lambda x: cr.gelu(x, approximate="tanh"), rnd),
    "clamp": (lambda x: cr.clamp(x, -0.7, 0.9), rnd),
    "clamp_min": (lambda x: x.clamp(min=0.1), rnd),
    "clamp_max": (lambda x: x.clamp(max=-0.1), rnd),
    "square": (cr.square, rnd),
    "rsqrt": (cr.rsqrt, pos),
    "reciprocal": (cr.reciprocal, rnd),
    "erf": (cr.erf, rnd),
    "expm1": (cr.expm1, rnd),
    "pow_int": (lambda x: x**3, rnd),
    "pow_neg": (lambda x: x**-2, rnd),
    "pow_frac": (lambda x: x**2.5, pos),
    "pow_fn": (lambda x: cr.pow(x, 0.5), pos),
    "rpow": (lambda x: 2**x, rnd),
    "rsub": (lambda x: 1 - x, rnd),
    "rdiv": (lambda x: 2 / x, rnd),
    "radd": (lambda x: 1.5 + x, rnd),
    "rmul": (lambda x: 3 * x, rnd),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_gradcheck(name):
    fn, make = UNARY[name]
    check(fn, make((3, 4)))


@pytest.mark.parametrize("name", ["clamp", "relu", "abs", "leaky_relu"])
def test_kinked_ops_on_both_sides(name):
    # values straddling the kink but a safe distance away from it
    fn = UNARY[name][0]
    x = cr.tensor([-1.3, -0.8, -0.35, 0.3, 0.75, 1.2], dtype=cr.float64, requires_grad=True)
    check(fn, x)


@pytest.mark.parametrize(
    "name", ["exp", "sin", "tanh", "sigmoid", "elu", "softplus", "softsign", "gelu", "gelu_tanh",
             "log", "sqrt", "tan", "pow_int", "pow_frac", "rpow", "rdiv", "erf", "abs",
             "leaky_relu", "clamp", "rsqrt", "log1p", "expm1", "cos"],
)
def test_unary_second_derivative(name):
    # every VJP is itself differentiable: gradcheck the gradient function
    fn, make = UNARY[name]
    g = cr.grad(lambda x: fn(x).sum())
    check(g, make((5,), seed=1))


# -- elementwise binary, with random broadcastable shapes --------------------------------------

BINARY = {
    "add": (lambda x, y: x + y, rnd, rnd),
    "add_fn": (cr.add, rnd, rnd),
    "sub": (lambda x, y: x - y, rnd, rnd),
    "sub_fn": (cr.sub, rnd, rnd),
    "mul": (lambda x, y: x * y, rnd, rnd),
    "mul_fn": (cr.mul, rnd, rnd),
    "div": (lambda x, y: x / y, rnd, rnd),
    "div_fn": (cr.div, rnd, rnd),
    "pow": (lambda x, y: x**y, pos, rnd),
    "pow_fn": (cr.pow, pos, rnd),
    "maximum": (cr.maximum, rnd, rnd),
    "minimum": (cr.minimum, rnd, rnd),
    "where": (lambda x, y: cr.where(x > y, x, y * 2), rnd, rnd),
    "where_method": (lambda x, y: x.where(x < 0.5, y), rnd, rnd),
}

shapes2 = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)


@pytest.mark.parametrize("name", list(BINARY))
@FAST
@given(shapes=shapes2, seed=st.integers(0, 2**16))
def test_binary_broadcast_gradcheck(name, shapes, seed):
    fn, make_x, make_y = BINARY[name]
    sx, sy = shapes.input_shapes
    x, y = make_x(sx, seed), make_y(sy, seed + 1)
    assert fn(x, y).shape == shapes.result_shape
    check(fn, x, y)


def test_where_with_scalar_branches_and_broadcast_condition():
    x = rnd((3, 1))
    cond = cr.tensor([True, False, True, False])
    check(lambda x: cr.where(cond, x, 0.0), x)
    check(lambda x: cr.where(cond, 1.0, x * x), x)


def test_where_condition_gets_no_gradient():
    x = rnd((4,))
    y = cr.where(x > 0, x, -x)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, np.sign(x.data))


def test_maximum_ties_share_gradient():
    x = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    y = cr.tensor([1.0, 3.0], dtype=cr.float64, requires_grad=True)
    cr.maximum(x, y).sum().backward()
    np.testing.assert_allclose(x.grad.data, [0.5, 0.0])
    np.testing.assert_allclose(y.grad.data, [0.5, 1.0])


@pytest.mark.parametrize("name", ["div", "pow", "maximum", "where", "mul"])
def test_binary_second_derivative(name):
    fn, make_x, make_y = BINARY[name]
    x, y = make_x((2, 3), 3), make_y((3,), 4)
    for argnums in (0, 1):
        g = cr.grad(lambda a, b: (fn(a, b) ** 2).sum(), argnums=argnums)
        check(g, x, y)


# -- matmul ------------------------------------------------------------------------------------

MATMUL_SHAPES = {
    "1d@1d": ((4,), (4,)),
    "2d@1d": ((3, 4), (4,)),
    "1d@2d": ((4,), (4, 2)),
    "2d@2d": ((3, 4), (4, 2)),
    "batched": ((2, 3, 4), (2, 4, 2)),
    "batch_bcast": ((2, 1, 3, 4), (5, 4, 2)),
    "2d@batched": ((3, 4), (2, 4, 2)),
    "1d@batched": ((4,), (2, 4, 3)),
    "batched@1d": ((2, 3, 4), (4,)),
}


@pytest.mark.parametrize("case", list(MATMUL_SHAPES))
@pytest.mark.parametrize(
    "spelling",
    [lambda a, b: a @ b, cr.matmul, lambda a, b: a.matmul(b)],
    ids=["op", "fn", "method"],
)
def test_matmul_gradcheck(case, spelling):
    sa, sb = MATMUL_SHAPES[case]
    a, b = rnd(sa, 1), rnd(sb, 2)
    expected = np.matmul(a.data, b.data)
    np.testing.assert_allclose(spelling(a, b).data, expected)
    check(spelling, a, b)


def test_matmul_with_constant_operands():
    a = rnd((3, 4))
    w = np.random.default_rng(0).standard_normal((4, 2))
    check(lambda a: a @ w, a)
    check(lambda a: w.T @ a.T, a)  # ndarray @ Tensor uses __rmatmul__


def test_mm_and_dot():
    a, b, v = rnd((3, 4), 1), rnd((4, 2), 2), rnd((4,), 3)
    check(cr.mm, a, b)
    check(lambda a, b: a.mm(b), a, b)
    check(cr.dot, v, rnd((4,), 4))


@pytest.mark.parametrize("case", ["1d@1d", "2d@1d", "1d@2d", "batch_bcast", "1d@batched"])
def test_matmul_second_derivative(case):
    sa, sb = MATMUL_SHAPES[case]
    a, b = rnd(sa, 1), rnd(sb, 2)
    for argnums in (0, 1):
        check(cr.grad(lambda a, b: ((a @ b) ** 2).sum(), argnums=argnums), a, b)


# -- linear --------------------------------------------------------------------------------------


@pytest.mark.parametrize("xshape", [(3, 4), (4,), (2, 3, 4), (2, 1, 3, 4)], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(xshape, bias):
    x, w, b = rnd(xshape, 1), rnd((5, 4), 2), rnd((5,), 3)
    args = (x, w, b) if bias else (x, w)
    expected = x.data @ w.data.T + (b.data if bias else 0)
    np.testing.assert_allclose(cr.linear(*args).data, expected)
    check(cr.linear, *args)


@pytest.mark.parametrize("xshape", [(3, 4), (4,), (2, 3, 4)], ids=str)
def test_linear_second_derivative(xshape):
    x, w, b = rnd(xshape, 1), rnd((5, 4), 2), rnd((5,), 3)
    for argnums in (0, 1, 2):
        check(cr.grad(lambda x, w, b: (cr.linear(x, w, b) ** 2).sum(), argnums=argnums), x, w, b)


ACTS = {"relu": cr.relu, "tanh": cr.tanh, "sigmoid": cr.sigmoid}


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("xshape", [(3, 4), (4,), (2, 3, 4)], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_act_gradcheck(act, xshape, bias):
    x, w, b = rnd(xshape, 1), rnd((5, 4), 2), rnd((5,), 3)
    args = (x, w, b) if bias else (x, w, None)
    check(lambda *a: cr.linear_act(*a, activation=act), *args[:3 if bias else 2])
    for argnums in (0, 1):  # second derivatives through the fused activation's derivative
        check(cr.grad(lambda x, w: (cr.linear_act(x, w, args[2], act) ** 2).sum(),
                      argnums=argnums), x, w)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("dtype", [cr.float32, cr.float64])
def test_linear_act_is_bitwise_linear_then_activation(act, dtype):
    """The fused primitive does the same arithmetic as the two ops it replaces."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in [(7, 6), (5, 6), (5,)]]
    g = cr.tensor(rng.standard_normal((7, 5)), dtype=dtype)
    results = []
    for fused in (True, False):
        x, w, b = (cr.tensor(a, dtype=dtype, requires_grad=True) for a in arrays)
        y = cr.linear_act(x, w, b, act) if fused else ACTS[act](cr.linear(x, w, b))
        (y * g).sum().backward()
        results.append([y.data, x.grad.data, w.grad.data, b.grad.data])
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [3, 256, 257])  # up to 256 rows: stored feature-major
@pytest.mark.parametrize("act", [None, "relu"])
@pytest.mark.parametrize("order", ["C", "F"])  # a batch as given, or a feature-major activation
@pytest.mark.parametrize("out", [5, 40])  # a C input goes feature-major only into 32+ outputs
def test_linear_in_either_layout_matches_numpy(n, act, order, out):
    from chainrule.ops.linalg import FEATURE_MAJOR_MAX_ROWS, FEATURE_MAJOR_MIN_OUT

    rng = np.random.default_rng(n)
    xa, wa, ba, ga = (rng.standard_normal(s) for s in [(n, 7), (out, 7), (out,), (n, out)])
    x, w, b = (cr.tensor(a, dtype=cr.float64, requires_grad=True) for a in (xa, wa, ba))
    x.data = np.asarray(x.data, order=order)
    y = cr.linear(x, w, b) if act is None else cr.linear_act(x, w, b, act)
    feature_major = n <= FEATURE_MAJOR_MAX_ROWS and (order == "F" or out >= FEATURE_MAJOR_MIN_OUT)
    assert y.data.flags.f_contiguous == feature_major
    z = xa @ wa.T + ba
    gz = ga if act is None else ga * (z > 0)
    np.testing.assert_allclose(y.data, z if act is None else np.maximum(z, 0), rtol=1e-12)
    (y * cr.tensor(ga, dtype=cr.float64)).sum().backward()
    np.testing.assert_allclose(x.grad.data, gz @ wa, rtol=1e-12)
    np.testing.assert_allclose(w.grad.data, gz.T @ xa, rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, gz.sum(0), rtol=1e-12, atol=1e-12)
    assert x.grad.data.flags.f_contiguous == (order == "F")  # in the input's layout
    assert w.grad.data.flags.c_contiguous  # parameters' gradients stay C-ordered (optimisers)


def test_linear_act_names_its_node_and_rejects_unknown_activations():
    x, w = rnd((2, 3), 1), rnd((4, 3), 2)
    assert cr.linear_act(x, w, None, "relu").grad_fn == "LinearReluBackward"
    with pytest.raises(ValueError, match="unknown activation 'gelu'; use one of relu"):
        cr.linear_act(x, w, None, "gelu")


# -- reductions ----------------------------------------------------------------------------------

DIMS = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2)]
REDUCTIONS = ["sum", "mean", "max", "min", "var", "std", "logsumexp"]


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize(
    "dim, keepdim", [(d, k) for d in DIMS for k in (False, True) if d is not None or not k],
    ids=str,
)
def test_reduction_gradcheck(name, dim, keepdim):
    x = rnd((2, 3, 4), seed=5)
    fn = getattr(cr, name)
    out = fn(x) if dim is None else fn(x, dim, keepdim=keepdim)
    red = range(3) if dim is None else [d % 3 for d in ((dim,) if isinstance(dim, int) else dim)]
    expected_shape = tuple(
        (1 if keepdim else None) if i in red else n for i, n in enumerate(x.shape)
    )
    assert out.shape == tuple(n for n in expected_shape if n is not None)
    if dim is None:
        check(fn, x)
    else:
        check(lambda x: fn(x, dim, keepdim=keepdim), x)
        check(lambda x: getattr(x, name)(dim, keepdim=keepdim), x)


@pytest.mark.parametrize(
    "kwargs", [{"unbiased": False}, {"correction": 0}, {"correction": 2}, {"unbiased": True}]
)
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_corrections(name, kwargs):
    x = rnd((3, 5), seed=6)
    check(lambda x: getattr(cr, name)(x, 1, **kwargs), x)
    ddof = kwargs.get("correction", 1 if kwargs.get("unbiased", True) else 0)
    ref = getattr(np, name)(x.data, axis=1, ddof=ddof)
    np.testing.assert_allclose(getattr(cr, name)(x, 1, **kwargs).data, ref)


def test_max_min_ties_share_gradient():
    x = cr.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], dtype=cr.float64, requires_grad=True)
    x.max(1).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[0, 0.5, 0.5], [0.5, 0, 0.5]])
    x.grad = None
    x.min().backward()
    np.testing.assert_allclose(x.grad.data, [[0, 0, 0], [0, 1, 0]])


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -2])
def test_softmax_family_gradcheck(name, dim):
    x = rnd((2, 3, 4), seed=7)
    check(lambda x: getattr(cr, name)(x, dim), x)
    check(lambda x: getattr(x, name)(dim), x)


def test_softmax_values():
    x = rnd((3, 4))
    s = cr.softmax(x, -1).data
    np.testing.assert_allclose(s.sum(-1), 1.0)
    np.testing.assert_allclose(cr.log_softmax(x, -1).data, np.log(s))
    np.testing.assert_allclose(
        cr.logsumexp(x, 1).data, np.log(np.exp(x.data).sum(1)), rtol=1e-12
    )


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: x.max(1), lambda x: x.var(0), lambda x: x.std(), lambda x: x.logsumexp(-1),
        lambda x: x.softmax(0) ** 2, lambda x: x.log_softmax(1) ** 2, lambda x: x.mean(1) ** 3,
        lambda x: x.sum(0, keepdim=True) ** 3, lambda x: x.min(0) ** 2,
    ],
    ids=["max", "var", "std", "logsumexp", "softmax", "log_softmax", "mean", "sum", "min"],
)
def test_reduction_second_derivative(fn):
    check(cr.grad(lambda x: fn(x).sum()), rnd((3, 4), seed=8))


# -- shape ops -----------------------------------------------------------------------------------

SHAPE_OPS = {
    "reshape": lambda x: x.reshape(4, 6),
    "reshape_tuple": lambda x: cr.reshape(x, (-1, 3)),
    "view": lambda x: x.view(6, -1),
    "view_fn": lambda x: cr.view(x, (24,)),
    "flatten": lambda x: x.flatten(),
    "flatten_range": lambda x: cr.flatten(x, 1),
    "flatten_neg": lambda x: x.flatten(0, -2),
    "transpose": lambda x: x.transpose(0, 2),
    "transpose_fn": lambda x: cr.transpose(x, -1, 0),
    "permute": lambda x: x.permute(2, 0, 1),
    "permute_fn_neg": lambda x: cr.permute(x, (-1, -3, -2)),
    "T": lambda x: x.T,
    "mT": lambda x: x.mT,
    "squeeze": lambda x: x[:, :1].squeeze(),
    "squeeze_dim": lambda x: cr.squeeze(x[:1], 0),
    "squeeze_noop": lambda x: x.squeeze(1),
    "unsqueeze": lambda x: x.unsqueeze(1),
    "unsqueeze_neg": lambda x: cr.unsqueeze(x, -1),
    "expand": lambda x: x[:, :1].expand(2, 3, 4),
    "expand_neg": lambda x: x[:, :1].expand(3, -1, -1, 4),
    "expand_fn": lambda x: cr.expand(x[0, 0], 2, 4),
    "expand_as": lambda x: x[0].expand_as(x),
    "broadcast_to": lambda x: cr.broadcast_to(x[0, :, :1], (2, 3, 2)),
    "pad": lambda x: cr.pad(x, (1, 2)),
    "pad_2d": lambda x: cr.pad(x, (1, 0, 0, 2), value=3.0),
    "pad_3d": lambda x: cr.pad(x, (0, 1, 1, 1, 2, 0)),
    "split_int": lambda x: cr.split(x, 2, dim=-1)[1] * 2,
    "split_sizes": lambda x: x.split([1, 2], 1)[1],
    "chunk": lambda x: x.chunk(2, 2)[0],
}


@pytest.mark.parametrize("name", list(SHAPE_OPS))
def test_shape_op_gradcheck(name):
    check(SHAPE_OPS[name], rnd((2, 3, 4), seed=9))


def test_shape_op_values():
    x = rnd((2, 3, 4))
    d = x.data
    np.testing.assert_array_equal(x.permute(2, 0, 1).data, d.transpose(2, 0, 1))
    np.testing.assert_array_equal(x.flatten(1).data, d.reshape(2, 12))
    np.testing.assert_array_equal(x.unsqueeze(-1).data, d[..., None])
    np.testing.assert_array_equal(cr.pad(x, (1, 2)).data, np.pad(d, ((0, 0), (0, 0), (1, 2))))
    assert x[:, :1].squeeze().shape == (2, 4)
    assert x.squeeze(1).shape == (2, 3, 4)
    assert x[:, :1].expand(2, 3, 4).shape == (2, 3, 4)


def test_split_all_pieces_get_gradient():
    x = rnd((5, 2))
    pieces = x.split(2)
    assert [p.shape[0] for p in pieces] == [2, 2, 1]
    check(lambda x: sum((p * (i + 1)).sum() for i, p in enumerate(cr.split(x, 2))), x)
    check(lambda x: cr.cat([p * (i + 1) for i, p in enumerate(x.split([3, 2]))]), x)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_gradcheck(dim):
    a, b, c = rnd((2, 3), 1), rnd((2, 3), 2), rnd((2, 3), 3)
    check(lambda a, b, c: cr.cat([a, b, c], dim), a, b, c)
    np.testing.assert_array_equal(
        cr.cat([a, b, c], dim).data, np.concatenate([a.data, b.data, c.data], dim)
    )


def test_cat_uneven_and_constant_parts():
    a, b = rnd((2, 3), 1), rnd((2, 1), 2)
    const = cr.tensor(np.ones((2, 2)), dtype=cr.float64)
    check(lambda a, b: cr.cat((a, const, b), dim=1), a, b)


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack_gradcheck(dim):
    a, b = rnd((2, 3), 1), rnd((2, 3), 2)
    check(lambda a, b: cr.stack([a, b], dim), a, b)
    np.testing.assert_array_equal(cr.stack([a, b], dim).data, np.stack([a.data, b.data], dim))


@pytest.mark.parametrize(
    "fn",
    [lambda a, b: cr.cat([a, b], 1) ** 3, lambda a, b: cr.stack([a, b], 0) ** 3,
     lambda a, b: cr.pad(a * b, (1, 1)) ** 3, lambda a, b: (a.T @ b).reshape(-1) ** 2,
     lambda a, b: (a.unsqueeze(0).expand(2, 2, 3) * b) ** 2],
    ids=["cat", "stack", "pad", "transpose_reshape", "expand"],
)
def test_shape_second_derivative(fn):
    a, b = rnd((2, 3), 1), rnd((2, 3), 2)
    check(cr.grad(lambda a, b: fn(a, b).sum()), a, b)


# -- indexing ------------------------------------------------------------------------------------

MASK = np.array(
    [[True, False, True, False], [False, False, True, True], [True, True, False, False]]
)

INDEXES = {
    "int": 1,
    "neg_int": -1,
    "slice": slice(1, None),
    "step_slice": (slice(None), slice(None, None, -2)),
    "int_slice": (1, slice(0, 3)),
    "ellipsis_none": (Ellipsis, None, 2),
    "int_array": np.array([2, 0]),
    "int_list": [0, 2],
    "int_tensor": cr.tensor([2, 1]),
    "pairwise": (np.array([0, 2, 1]), np.array([3, 0, 1])),
    "slice_array": (slice(None), np.array([3, 1])),
    "repeated": np.array([0, 0, 2, 0]),
    "repeated_pairs": (np.array([1, 1, 1]), np.array([2, 2, 0])),
    "bool_mask": MASK,
    "bool_tensor": cr.tensor(MASK),
    "bool_rows": np.array([True, False, True]),
}


@pytest.mark.parametrize("name", list(INDEXES))
def test_indexing_gradcheck(name):
    index = INDEXES[name]
    x = rnd((3, 4), seed=10)
    raw = index.data if isinstance(index, cr.Tensor) else index
    raw = np.asarray(raw) if isinstance(raw, list) else raw
    np.testing.assert_array_equal(x[index].data, x.data[raw])
    check(lambda x: x[index], x)


def test_repeated_indices_accumulate():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 0.0, 1.0])
    m = cr.tensor(np.zeros((2, 2)), requires_grad=True)
    m[np.array([1, 1]), np.array([0, 0])].sum().backward()
    np.testing.assert_array_equal(m.grad.data, [[0, 0], [2, 0]])


def test_mask_from_comparison():
    x = rnd((3, 4))
    y = x[x > 0]
    assert y.ndim == 1 and (y.data > 0).all()
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, (x.data > 0).astype(float))


@pytest.mark.parametrize("name", ["slice", "repeated", "bool_mask", "pairwise", "step_slice"])
def test_indexing_second_derivative(name):
    index = INDEXES[name]
    check(cr.grad(lambda x: (x[index] ** 3).sum()), rnd((3, 4), seed=11))


def test_take_along_dim():
    x = rnd((3, 4))
    idx = np.array([[1], [3], [0]])
    np.testing.assert_array_equal(
        cr.take_along_dim(x, idx, 1).data, np.take_along_axis(x.data, idx, 1)
    )
    check(lambda x: cr.take_along_dim(x, idx, 1), x)


# -- composite -----------------------------------------------------------------------------------


def test_mlp_composite_gradcheck():
    x, w1, b1, w2 = rnd((4, 3), 1), rnd((5, 3), 2), rnd((5,), 3), rnd((2, 5), 4)

    def f(x, w1, b1, w2):
        h = cr.tanh(cr.linear(x, w1, b1))
        return cr.log_softmax(h @ w2.T, -1)[np.arange(4), np.array([0, 1, 1, 0])].mean()

    check(f, x, w1, b1, w2)


def test_tensor_used_many_times():
    x = rnd((3,))
    check(lambda x: x * x * x + x.exp() * x - x / (x * x + 1), x)


# -- numerical stability -----------------------------------------------------------------------

BIG = [-1000.0, -50.0, 0.0, 50.0, 1000.0]


@pytest.mark.parametrize("dtype", [cr.float32, cr.float64])
@pytest.mark.parametrize(
    "name, fn",
    [
        ("log_softmax", lambda x: cr.log_softmax(x, -1)),
        ("logsumexp", lambda x: cr.logsumexp(x, -1)),
        ("softmax", lambda x: cr.softmax(x, -1)),
        ("softplus", cr.softplus),
        ("sigmoid", cr.sigmoid),
    ],
)
def test_stable_at_large_magnitude(name, fn, dtype):
    x = cr.tensor(BIG, dtype=dtype, requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
        y = fn(x)
        assert np.isfinite(y.data).all(), y
        w = cr.tensor(np.linspace(0.5, 1.5, y.data.size).reshape(y.shape), dtype=dtype)
        (y * w).sum().backward()
    assert np.isfinite(x.grad.data).all(), x.grad


def test_stable_values():
    x = cr.tensor(BIG, dtype=cr.float64)
    np.testing.assert_allclose(cr.sigmoid(x).data, [0, 0, 0.5, 1, 1], atol=1e-20)
    np.testing.assert_allclose(cr.softplus(x).data, [0, np.log1p(np.exp(-50)), np.log(2), 50, 1000],
                               rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(cr.logsumexp(x, 0).item(), 1000.0)
    ls = cr.log_softmax(cr.tensor([1000.0, 0.0], dtype=cr.float64), 0).data
    np.testing.assert_allclose(ls, [0.0, -1000.0])
    x2 = cr.tensor([[1000.0, 1000.0], [-1000.0, -1000.0]], dtype=cr.float64)
    np.testing.assert_allclose(cr.logsumexp(x2, 1).data, [1000 + np.log(2), -1000 + np.log(2)])


def test_logsumexp_of_all_minus_inf_rows():
    x = cr.tensor([[-np.inf, -np.inf], [0.0, -np.inf]], dtype=cr.float64)
    with np.errstate(divide="ignore"):
        out = cr.logsumexp(x, 1).data
    assert out[0] == -np.inf and out[1] == 0.0


# -- dtypes and 0-d tensors ----------------------------------------------------------------------

F32_CASES = {
    **{f"unary_{k}": v[0] for k, v in UNARY.items() if v[1] is rnd},
    **{f"positive_{k}": (lambda f: lambda x: f(x.abs()))(v[0])
       for k, v in UNARY.items() if v[1] is pos},
    **{f"binary_{k}": (lambda f: lambda x: f(x.abs() + 0.5, x * 0.5 - 0.3))(v[0])
       for k, v in BINARY.items()},
    **{f"reduce_{n}": (lambda f: lambda x: f(x, 1))(getattr(cr, n)) for n in REDUCTIONS},
    **{f"shape_{k}": v for k, v in SHAPE_OPS.items()},
    "max_all": lambda x: x.max(),
    "softmax": lambda x: x.softmax(0),
    "log_softmax": lambda x: x.log_softmax(-1),
    "matmul": lambda x: x @ x.transpose(1, 2),
    "linear": lambda x: cr.linear(x, x[0], x[0, :, 0]),
    "index": lambda x: x[np.array([0, 0, 1])],
    "mask": lambda x: x[x > 0],
    "cat": lambda x: cr.cat([x, x * 2], 1),
    "stack": lambda x: cr.stack([x, x * 2], 1),
}


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("name", list(F32_CASES))
def test_float32_stays_float32(name, create_graph):
    # no VJP may promote float32 gradients to float64 (slower, and surprising under create_graph)
    x = cr.tensor(np.random.default_rng(0).uniform(-1.5, 1.5, (2, 3, 4)), requires_grad=True)
    h = x * 1.0
    h.retain_grad()
    y = F32_CASES[name](h)
    assert y.dtype == np.float32
    y.sum().backward(create_graph=create_graph)
    assert h.grad.dtype == np.float32 and x.grad.dtype == np.float32


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "logsumexp", "softmax"])
@pytest.mark.parametrize("dim", [0, -1])
def test_reductions_of_0d_tensor(name, dim):
    # PyTorch accepts dim 0 / -1 on a 0-d tensor and reduces nothing
    x = cr.tensor(1.3, dtype=cr.float64, requires_grad=True)
    y = getattr(x, name)(dim)
    assert y.shape == ()
    expected = {"softmax": 1.0}.get(name, 1.3)
    assert y.item() == pytest.approx(expected)
    check(lambda x: getattr(x, name)(dim), x)
    with pytest.raises(IndexError, match="out of range"):
        getattr(x, name)(1)


def test_pow_zero_exponent_has_zero_gradient_at_zero_base():
    # d/dx x**0 = 0 everywhere, including x = 0 (no 0 * inf = NaN, no warning), as in PyTorch
    x = cr.tensor([0.0, 1.0, -2.0], dtype=cr.float64, requires_grad=True)
    y = cr.tensor([0.0, 0.0, 2.0], dtype=cr.float64, requires_grad=True)
    with np.errstate(all="raise"):
        ((x**0).sum() + (x**y).sum()).backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, -4.0])
    np.testing.assert_allclose(y.grad.data, [0.0, 0.0, 0.0])  # log|x| is masked for x <= 0
