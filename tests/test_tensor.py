"""Tensor API: construction and dtypes, creation functions and seeding, attributes, conversions,
the container protocol, in-place updates, comparisons and the function/method spellings."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import Tensor

# -- construction and dtypes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [1.5, [1.0, 2.0], [[1.0], [2.5]], np.array([1.0, 2.0]), np.float64(3.0)],
    ids=["float", "list", "nested", "ndarray64", "np_scalar"],
)
def test_float_data_becomes_float32(data):
    t = cr.tensor(data)
    assert isinstance(t, Tensor)
    assert t.dtype == np.float32
    np.testing.assert_allclose(t.data, np.asarray(data, dtype=np.float64), rtol=1e-6)


def test_float64_kept_when_asked():
    t = cr.tensor([1.0, 2.0], dtype=cr.float64)
    assert t.dtype == np.float64
    assert cr.tensor(np.array([0.1]), dtype=cr.float64).data[0] == 0.1


def test_integer_and_bool_dtypes():
    assert cr.tensor([1, 2]).dtype == np.int64
    assert cr.tensor([True, False]).dtype == np.bool_
    assert cr.tensor([1, 2], dtype=cr.float32).dtype == np.float32


def test_tensor_copies_data():
    arr = np.array([1.0, 2.0], dtype=np.float32)
    t = cr.tensor(arr)
    arr[0] = 100.0
    assert t.data[0] == 1.0


def test_requires_grad_positional_and_keyword():
    assert cr.tensor([1.0], True).requires_grad
    assert cr.tensor([1.0], requires_grad=True).requires_grad
    assert not cr.tensor([1.0]).requires_grad


def test_tensor_from_tensor():
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    b = cr.tensor(a, dtype=cr.float64)
    assert b.dtype == np.float64 and not b.requires_grad
    np.testing.assert_array_equal(b.data, [1.0, 2.0])


# -- creation functions ----------------------------------------------------------------------


@pytest.mark.parametrize("fn, value", [(cr.zeros, 0.0), (cr.ones, 1.0)])
def test_zeros_ones(fn, value):
    for t in (fn(2, 3), fn((2, 3)), fn([2, 3])):
        assert t.shape == (2, 3) and t.dtype == np.float32
        assert (t.data == value).all()
    assert fn(()).shape == ()
    assert fn(2, dtype=cr.float64).dtype == np.float64
    assert fn(2, requires_grad=True).requires_grad


def test_full():
    t = cr.full((2, 2), 1.5)
    assert t.dtype == np.float32 and (t.data == 1.5).all()
    assert cr.full((3,), 7).dtype == np.int64
    assert cr.full(3, 2.0, dtype=cr.float64).dtype == np.float64
    assert cr.full((2,), 0.5, requires_grad=True).requires_grad


def test_arange():
    np.testing.assert_array_equal(cr.arange(4).data, [0, 1, 2, 3])
    assert cr.arange(4).dtype == np.int64
    np.testing.assert_array_equal(cr.arange(2, 8, 2).data, [2, 4, 6])
    t = cr.arange(0, 1, 0.25)
    assert t.dtype == np.float32
    np.testing.assert_allclose(t.data, [0, 0.25, 0.5, 0.75])
    assert cr.arange(3, dtype=cr.float64).dtype == np.float64


@pytest.mark.parametrize("fn", [cr.randn, cr.rand])
def test_random_shapes_and_dtypes(fn):
    t = fn(3, 4)
    assert t.shape == (3, 4) and t.dtype == np.float32
    assert fn((2, 2), dtype=cr.float64).dtype == np.float64
    assert fn(2, requires_grad=True).requires_grad


def test_rand_in_unit_interval():
    cr.manual_seed(0)
    x = cr.rand(1000).data
    assert x.min() >= 0.0 and x.max() < 1.0


@pytest.mark.parametrize("fn", [cr.randn, cr.rand])
def test_manual_seed_reproducible(fn):
    cr.manual_seed(123)
    a = fn(5).data.copy()
    b = fn(5).data.copy()
    cr.manual_seed(123)
    np.testing.assert_array_equal(fn(5).data, a)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("fn", [cr.randn, cr.rand])
def test_generator_seedable_and_independent_of_global(fn):
    cr.manual_seed(1)
    a = fn(4, generator=cr.Generator(7)).data
    cr.manual_seed(999)
    fn(10)  # draws from the default generator don't affect a private one
    b = fn(4, generator=cr.Generator(7)).data
    np.testing.assert_array_equal(a, b)
    g = cr.Generator(7)
    c1, c2 = fn(4, generator=g).data, fn(4, generator=g).data
    np.testing.assert_array_equal(c1, a)
    assert not np.array_equal(c1, c2)


def test_manual_seed_rejects_non_integer():
    with pytest.raises(TypeError, match="integer"):
        cr.manual_seed(1.5)


@pytest.mark.parametrize("fn, value", [(cr.zeros_like, 0), (cr.ones_like, 1)])
def test_like(fn, value):
    src = cr.tensor([[1.0, 2.0, 3.0]], dtype=cr.float64)
    t = fn(src)
    assert t.shape == (1, 3) and t.dtype == np.float64 and (t.data == value).all()
    assert fn(src, dtype=cr.float32).dtype == np.float32
    assert fn(cr.tensor([1, 2])).dtype == np.int64
    assert fn(src, requires_grad=True).requires_grad
    assert not fn(cr.tensor([1.0], requires_grad=True)).requires_grad


# -- attributes --------------------------------------------------------------------------------


def test_attributes():
    t = cr.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert isinstance(t.data, np.ndarray)
    assert t.shape == (2, 3)
    assert t.ndim == 2 and t.dim() == 2
    assert t.size() == (2, 3) and t.size(0) == 2 and t.size(-1) == 3
    assert t.numel() == 6
    assert t.dtype == np.float32
    assert t.requires_grad and t.is_leaf and t.grad_fn is None
    assert t.grad is None


def test_grad_assignable_and_noneable():
    t = cr.tensor([1.0, 2.0], requires_grad=True)
    t.grad = cr.tensor([0.5, 0.5])
    np.testing.assert_array_equal(t.grad.data, [0.5, 0.5])
    (t * 2).sum().backward()  # accumulates into the assigned gradient
    np.testing.assert_array_equal(t.grad.data, [2.5, 2.5])
    t.grad = None
    assert t.grad is None
    (t * 3).sum().backward()
    np.testing.assert_array_equal(t.grad.data, [3.0, 3.0])


def test_data_assignable():
    t = cr.tensor([1.0, 2.0])
    t.data = np.array([5.0, 6.0], dtype=np.float32)
    np.testing.assert_array_equal((t * 2).data, [10.0, 12.0])


def test_item():
    assert cr.tensor(2.5).item() == 2.5
    assert isinstance(cr.tensor([3]).item(), int)
    assert isinstance(cr.tensor([[1.5]]).item(), float)
    with pytest.raises(ValueError, match="exactly one element"):
        cr.tensor([1.0, 2.0]).item()
    assert float(cr.tensor(1.5)) == 1.5 and int(cr.tensor(3)) == 3


def test_numpy_shares_memory():
    t = cr.tensor([1.0, 2.0])
    arr = t.numpy()
    assert isinstance(arr, np.ndarray)
    arr[0] = 9.0
    assert t.data[0] == 9.0
    np.testing.assert_array_equal(np.asarray(t), arr)


def test_tolist():
    assert cr.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]


def test_detach():
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    y = a * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert np.shares_memory(d.data, y.data)
    z = (d * a).sum()
    z.backward()
    np.testing.assert_array_equal(a.grad.data, [2.0, 4.0])  # no gradient through d


def test_requires_grad_():
    t = cr.tensor([1.0, 2.0])
    assert t.requires_grad_() is t and t.requires_grad
    assert not t.requires_grad_(False).requires_grad
    with pytest.raises(TypeError, match="floating-point"):
        cr.tensor([1, 2]).requires_grad_()
    y = cr.tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)


def test_conversions():
    t = cr.tensor([1.7, -2.2])
    assert t.double().dtype == np.float64
    assert t.float().dtype == np.float32
    assert t.long().dtype == np.int64
    np.testing.assert_array_equal(t.long().data, [1, -2])
    assert t.to(cr.float64).dtype == np.float64
    assert t.bool().dtype == np.bool_


def test_cast_is_differentiable():
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    (a.double() * 3).sum().backward()
    assert a.grad.dtype == np.float32
    np.testing.assert_array_equal(a.grad.data, [3.0, 3.0])


# -- container protocol and repr -------------------------------------------------------------


def test_len_and_iteration():
    t = cr.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
    assert len(t) == 3
    rows = list(t)
    assert len(rows) == 3 and all(isinstance(r, Tensor) for r in rows)
    np.testing.assert_array_equal(rows[1].data, [3.0, 4.0])
    total = rows[0].sum() * 1 + rows[2].sum() * 2
    total.backward()
    np.testing.assert_array_equal(t.grad.data, [[1, 1], [0, 0], [2, 2]])


def test_len_and_iter_of_scalar_raise():
    s = cr.tensor(1.0)
    with pytest.raises(TypeError, match="0-d"):
        len(s)
    with pytest.raises(TypeError, match="0-d"):
        iter(s)


def test_repr():
    assert repr(cr.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "requires_grad=True" in repr(cr.tensor([1.0], requires_grad=True))
    r = repr(cr.tensor([1.0], requires_grad=True) * 2)
    assert "grad_fn=<MulBackward>" in r and "2." in r
    assert "dtype=chainrule.float64" in repr(cr.tensor([1.0], dtype=cr.float64))
    assert repr(cr.tensor([1, 2])) == "tensor([1, 2])"


def test_bool_of_tensor():
    assert bool(cr.tensor(1.0)) and not bool(cr.tensor([0.0]))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(cr.tensor([1.0, 2.0]))


# -- in-place updates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op, expected",
    [("+=", [3.0, 4.0]), ("-=", [-1.0, 0.0]), ("*=", [2.0, 4.0]), ("/=", [0.5, 1.0])],
)
def test_inplace_inside_no_grad_mutates_data(op, expected):
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    before_obj, before_arr = w, w.data
    with cr.no_grad():
        if op == "+=":
            w += 2
        elif op == "-=":
            w -= cr.tensor([2.0, 2.0])
        elif op == "*=":
            w *= 2
        else:
            w /= 2
    assert w is before_obj and w.data is before_arr
    np.testing.assert_allclose(w.data, expected)
    assert w.requires_grad and w.is_leaf


def test_inplace_methods_inside_no_grad():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    with cr.no_grad():
        w.add_(cr.tensor([1.0, 1.0]), alpha=2.0).mul_(2).sub_(1.0).div_(2)
        np.testing.assert_allclose(w.data, [2.5, 3.5])
        w.zero_()
        assert (w.data == 0).all()
        w[0] = 4.0
        assert w.data[0] == 4.0


def test_inplace_on_plain_tensor_allowed():
    t = cr.tensor([1.0, 2.0])
    t += 1
    t[1] = 10.0
    np.testing.assert_array_equal(t.data, [2.0, 10.0])


@pytest.mark.parametrize("op", ["+=", "-=", "*=", "/=", "setitem"])
def test_inplace_on_recorded_tensor_raises(op):
    leaf = cr.tensor([1.0, 2.0], requires_grad=True)
    nonleaf = leaf * 2
    for t in (leaf, nonleaf):
        with pytest.raises(RuntimeError, match="no_grad"):
            if op == "+=":
                t += 1
            elif op == "-=":
                t -= 1
            elif op == "*=":
                t *= 2
            elif op == "/=":
                t /= 2
            else:
                t[0] = 0.0
    np.testing.assert_array_equal(leaf.data, [1.0, 2.0])


def test_inplace_with_grad_operand_on_constant_is_out_of_place():
    c = cr.tensor([1.0, 2.0])
    w = cr.tensor([3.0, 4.0], requires_grad=True)
    c2 = c
    c2 += w  # c needs no grad: behaves like c2 = c2 + w so the graph stays correct
    assert c2 is not c and c2.requires_grad
    np.testing.assert_array_equal(c.data, [1.0, 2.0])
    c2.sum().backward()
    np.testing.assert_array_equal(w.grad.data, [1.0, 1.0])


# -- comparisons -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fn",
    [
        ("lt", lambda a, b: a < b), ("le", lambda a, b: a <= b), ("gt", lambda a, b: a > b),
        ("ge", lambda a, b: a >= b), ("eq", lambda a, b: a == b), ("ne", lambda a, b: a != b),
    ],
)
def test_comparisons_are_bool_and_not_differentiable(name, fn):
    a = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = cr.tensor([2.0, 2.0, 2.0], requires_grad=True)
    npfn = getattr(np, {"lt": "less", "le": "less_equal", "gt": "greater",
                        "ge": "greater_equal", "eq": "equal", "ne": "not_equal"}[name])
    for out in (fn(a, b), getattr(cr, name)(a, b), getattr(a, name)(b), fn(a, 2.0)):
        assert out.dtype == np.bool_
        assert not out.requires_grad and out.grad_fn is None
        np.testing.assert_array_equal(out.data, npfn(a.data, b.data))


def test_logical_ops_on_masks():
    a = cr.tensor([1.0, -1.0, 2.0])
    m = (a > 0) & ~(a > 1.5) | (a < -0.5)
    np.testing.assert_array_equal(m.data, [True, True, False])


def test_tensor_is_hashable():
    a = cr.tensor([1.0])
    assert {a: 1}[a] == 1


# -- both spellings ----------------------------------------------------------------------------

# ops that PyTorch offers both as torch.NAME and as Tensor.NAME
BOTH = (
    "add sub mul div pow neg matmul exp log log1p sqrt abs sin cos tan tanh sigmoid relu clamp "
    "maximum minimum where sum mean max min var std logsumexp softmax log_softmax reshape "
    "flatten transpose permute squeeze unsqueeze split"
).split()
# ops PyTorch only offers as functions (torch.NAME or torch.nn.functional.NAME)
FUNCTION_ONLY = "cat stack leaky_relu elu softplus softsign gelu pad linear".split()
METHOD_ONLY = "view expand".split()


@pytest.mark.parametrize("name", BOTH + FUNCTION_ONLY)
def test_function_spelling_exists(name):
    assert callable(getattr(cr, name))


@pytest.mark.parametrize("name", BOTH + METHOD_ONLY)
def test_method_spelling_exists(name):
    assert callable(getattr(Tensor, name))


def test_both_spellings_match_torch_api():
    torch = pytest.importorskip("torch")
    for name in BOTH + FUNCTION_ONLY + METHOD_ONLY:
        if hasattr(torch, name):
            assert hasattr(cr, name), f"torch.{name} exists but chainrule.{name} does not"
        if hasattr(torch.Tensor, name):
            assert hasattr(Tensor, name), f"torch.Tensor.{name} exists but Tensor.{name} not"


@pytest.mark.parametrize(
    "name, args",
    [
        ("exp", ()), ("log", ()), ("sqrt", ()), ("sigmoid", ()), ("tanh", ()), ("relu", ()),
        ("sum", (1,)), ("mean", (0, True)), ("max", (1,)), ("min", ()), ("var", (1,)),
        ("std", ()), ("logsumexp", (1,)), ("softmax", (0,)), ("log_softmax", (-1,)),
        ("reshape", ((3, 2),)), ("flatten", ()), ("transpose", (0, 1)), ("permute", ((1, 0),)),
        ("unsqueeze", (1,)), ("clamp", (0.5, 1.5)), ("pow", (2,)), ("maximum", None),
    ],
)
def test_function_and_method_agree(name, args):
    x = cr.tensor([[0.5, 1.0, 2.0], [1.5, 0.25, 3.0]])
    if args is None:
        args = (cr.tensor([1.0, 1.0, 1.0]),)
    a = getattr(cr, name)(x, *args)
    b = getattr(x, name)(*args)
    np.testing.assert_array_equal(a.data, b.data)


def test_transpose_properties():
    x = cr.arange(24).reshape(2, 3, 4)
    assert x.T.shape == (4, 3, 2)
    np.testing.assert_array_equal(x.T.data, x.data.T)
    assert x.mT.shape == (2, 4, 3)


def test_numpy_float64_scalars_keep_float32_results():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x * np.sqrt(2.0) + np.float64(1.0)
    assert y.dtype == np.float32
    (y * np.float64(3.0)).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, [3 * np.sqrt(2.0)] * 2, rtol=1e-6)
