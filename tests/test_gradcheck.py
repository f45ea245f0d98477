"""chainrule.gradcheck: passes correct ops, and on a wrong VJP names the input, the element, and
the analytic and numeric values."""

from __future__ import annotations

import re

import numpy as np
import pytest

import chainrule as cr
from chainrule.gradcheck import GradcheckError, numerical_grad
from chainrule.ops import defop

# x * y with a deliberately wrong gradient for y (it forgets to multiply by x)
bad_mul = defop("bad_mul", np.multiply, lambda g, ans, x, y: g * y, lambda g, ans, x, y: g)
# x ** 2 with the factor 2 missing
bad_square = defop("bad_square", np.square, lambda g, ans, x: g * x)


def t64(values, requires_grad=True):
    return cr.tensor(values, dtype=cr.float64, requires_grad=requires_grad)


def test_returns_true_on_correct_ops():
    x, y = t64([[0.5, -1.2], [2.0, 0.3]]), t64([1.5, -0.7])
    assert cr.gradcheck(lambda x, y: cr.tanh(x @ y) * y.exp(), (x, y)) is True
    assert cr.gradcheck(cr.sigmoid, x) is True  # a single tensor instead of a tuple


def test_wrong_vjp_raises_naming_input_element_and_values():
    x = t64([1.5, -2.0, 0.5])
    with pytest.raises(GradcheckError) as info:
        cr.gradcheck(bad_square, (x,))
    msg = str(info.value)
    assert "input 0" in msg and "element (0,)" in msg
    m = re.search(r"analytic (\S+) vs numeric (\S+) ", msg)
    assert m, msg
    analytic, numeric = float(m.group(1)), float(m.group(2))
    weight = np.random.default_rng(0).uniform(0.5, 1.5, (3,))[0]  # gradcheck's default seed
    assert analytic == pytest.approx(1.5 * weight, rel=1e-6)
    assert numeric == pytest.approx(3.0 * weight, rel=1e-5)


def test_wrong_vjp_second_input_is_named():
    x, y = t64([[2.0, 3.0], [4.0, 5.0]]), t64([[0.5, 0.5], [2.0, 0.5]])
    with pytest.raises(GradcheckError, match=r"input 1, element \(0, 0\)"):
        cr.gradcheck(bad_mul, (x, y))
    # the first input's gradient is right: checking it alone passes
    assert cr.gradcheck(bad_mul, (x, y.detach()))


def test_error_is_an_assertion_error():
    assert issubclass(GradcheckError, AssertionError)
    with pytest.raises(AssertionError):
        cr.gradcheck(bad_square, (t64([2.0]),))


def test_element_index_points_at_first_bad_element():
    # the VJP is only wrong where x > 0
    halfbad = defop("halfbad", np.abs, lambda g, ans, x: g * np.where(x > 0, 2.0, -1.0))
    x = t64([[-1.0, -2.0], [-0.5, 3.0]])
    with pytest.raises(GradcheckError, match=r"input 0, element \(1, 1\)"):
        cr.gradcheck(halfbad, (x,))


def test_float32_inputs_checked_in_float64():
    x = cr.tensor([0.1, 0.2, 0.3], requires_grad=True)
    seen = []

    def f(x):
        seen.append(x.dtype)
        return x.exp()

    assert cr.gradcheck(f, (x,))
    assert set(seen) == {np.dtype(np.float64)}
    assert x.grad is None and x.dtype == np.float32  # the caller's tensor is untouched


def test_only_inputs_requiring_grad_are_checked():
    x = t64([1.0, 2.0])
    y = t64([3.0, 4.0], requires_grad=False)
    assert cr.gradcheck(bad_mul, (x, y))  # y's wrong VJP is not checked
    # with no input requiring grad, every floating input is checked
    with pytest.raises(GradcheckError, match="input 1"):
        cr.gradcheck(bad_mul, (x.detach(), y))


def test_non_tensor_and_integer_inputs_pass_through():
    x = t64([[0.5, 1.0, -1.0], [2.0, 0.1, 0.3]])
    idx = cr.tensor([2, 0])
    assert cr.gradcheck(lambda x, idx, k: x[:, idx] * k, (x, idx, 3.0))


def test_no_float_inputs_is_an_error():
    with pytest.raises(ValueError, match="no floating-point"):
        cr.gradcheck(lambda i: i * 2, (cr.tensor([1, 2]),))


def test_tuple_output_uses_first_element():
    x = t64([0.5, 1.5])
    assert cr.gradcheck(lambda x: (x.sin(), "aux"), (x,))


def test_function_that_differentiates_internally():
    # gradcheck of a gradient (the gradgradcheck pattern) built with autograd.grad
    x = t64([0.3, -0.4, 0.9])

    def grad_of_cube_sum(x):
        (g,) = cr.autograd.grad((x**3).sin().sum(), x, create_graph=True)
        return g

    assert cr.gradcheck(grad_of_cube_sum, (x,))


def test_tolerances_are_respected():
    x = t64([2.0])
    slightly_bad = defop("slightly_bad", np.square, lambda g, ans, x: g * x * 2.01)
    with pytest.raises(GradcheckError):
        cr.gradcheck(slightly_bad, (x,))
    assert cr.gradcheck(slightly_bad, (x,), rtol=2e-2)


def test_numerical_grad():
    x = np.array([1.0, 2.0, 3.0])
    g = numerical_grad(lambda: float((x**2).sum()), x, 1e-6)
    np.testing.assert_allclose(g, 2 * x, rtol=1e-8)
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])  # restored after perturbing
