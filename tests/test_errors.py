"""Error messages: each says what is wrong (naming the op, the shapes, the line of user code)
and, where there is one, what to do about it."""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

import chainrule as cr

THIS_FILE = os.path.basename(__file__)


def _line() -> int:
    """The line number of the caller (to check error messages point at user code)."""
    return inspect.currentframe().f_back.f_lineno


# -- shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fn",
    [
        ("add", lambda a, b: a + b), ("add", cr.add), ("sub", lambda a, b: a - b),
        ("mul", lambda a, b: a * b), ("div", lambda a, b: a / b), ("maximum", cr.maximum),
    ],
)
def test_incompatible_shapes_names_op_and_both_shapes(name, fn):
    a, b = cr.ones(2, 3, requires_grad=True), cr.ones(4)
    with pytest.raises(ValueError, match=rf"^{name}: incompatible shapes \(2, 3\) and \(4,\)"):
        fn(a, b)


@pytest.mark.parametrize(
    "sa, sb", [((2, 3), (4, 2)), ((3,), (4,)), ((2, 3, 4), (2, 5, 2)), ((2, 3), (2,))]
)
def test_matmul_incompatible_shapes(sa, sb):
    a, b = cr.ones(*sa), cr.ones(*sb)
    expected = rf"matmul: incompatible shapes {tuple(sa)} and {tuple(sb)}"
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        a @ b
    with pytest.raises(ValueError, match="matmul"):
        cr.matmul(a, b)


def test_linear_incompatible_shapes():
    with pytest.raises(ValueError, match=r"linear: incompatible shapes \(2, 3\) and \(4, 5\)"):
        cr.linear(cr.ones(2, 3), cr.ones(4, 5))


def test_reshape_wrong_size():
    with pytest.raises(ValueError, match=r"reshape.*\(2, 3\).*6 elements.*\(4, 2\)"):
        cr.ones(2, 3).reshape(4, 2)


def test_expand_wrong_shape():
    with pytest.raises(ValueError, match=r"expand.*\(2, 3\).*\(4, 3\)"):
        cr.ones(2, 3).expand(4, 3)


def test_cat_mismatched_shapes():
    with pytest.raises(ValueError, match=r"cat: incompatible shapes \(2, 3\) and \(2, 4\)"):
        cr.cat([cr.ones(2, 3), cr.ones(2, 4)], 0)


@pytest.mark.parametrize("fn", [cr.cat, cr.stack])
def test_cat_stack_empty(fn):
    with pytest.raises(ValueError, match="non-empty"):
        fn([])


def test_split_sizes_must_add_up():
    with pytest.raises(ValueError, match=r"split: sizes \[1, 1\].*size 3"):
        cr.ones(3).split([1, 1])


def test_split_size_must_be_positive():
    with pytest.raises(ValueError, match="split_size must be a positive integer, got 0"):
        cr.ones(3).split(0)


def test_permute_not_a_permutation():
    with pytest.raises(ValueError, match="not a permutation"):
        cr.ones(2, 3).permute(0, 0)


def test_dim_out_of_range():
    with pytest.raises(IndexError, match="dim 2 is out of range.*2 dimensions"):
        cr.ones(2, 3).sum(2)
    with pytest.raises(IndexError, match="out of range"):
        cr.ones(2, 3).softmax(-3)


def test_bad_index():
    with pytest.raises(IndexError, match=r"shape \(2, 3\)"):
        cr.ones(2, 3)[5]


def test_pad_errors():
    with pytest.raises(ValueError, match="even number"):
        cr.pad(cr.ones(2), (1,))
    with pytest.raises(ValueError, match="mode='constant'"):
        cr.pad(cr.ones(2), (1, 1), mode="reflect")


def test_bad_arguments():
    with pytest.raises(ValueError, match="clamp: give at least one"):
        cr.clamp(cr.ones(2))
    with pytest.raises(ValueError, match="approximate must be"):
        cr.gelu(cr.ones(2), approximate="fast")
    with pytest.raises(ValueError, match="non-negative integers"):
        cr.zeros(-1)


# -- data ------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [["a", "b"], "hello", [{"x": 1}], [1, "a"], object()])
def test_non_numeric_data(data):
    with pytest.raises(TypeError, match="cannot make a tensor"):
        cr.tensor(data)


def test_ragged_data():
    with pytest.raises(TypeError, match="cannot make a tensor"):
        cr.tensor([[1.0, 2.0], [3.0]])


@pytest.mark.parametrize("data", [[1, 2], [True, False]])
def test_requires_grad_on_integer_data(data):
    with pytest.raises(TypeError, match=r"only floating-point tensors can require grad.*dtype"):
        cr.tensor(data, requires_grad=True)


def test_requires_grad_on_integer_creation():
    with pytest.raises(TypeError, match="floating-point"):
        cr.arange(3, requires_grad=True)


# -- backward ------------------------------------------------------------------------------------


def test_backward_on_tensor_without_grad():
    with pytest.raises(RuntimeError, match=r"does not require grad.*requires_grad=True"):
        cr.ones(3).sum().backward()


def test_backward_on_tensor_computed_under_no_grad():
    x = cr.ones(3, requires_grad=True)
    with cr.no_grad():
        y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="no_grad"):
        y.backward()


def test_backward_non_scalar():
    with pytest.raises(RuntimeError, match=r"shape \(3,\).*scalar"):
        (cr.ones(3, requires_grad=True) * 2).backward()


def test_item_on_many_elements():
    with pytest.raises(ValueError, match=r"exactly one element.*\(2,\)"):
        cr.ones(2).item()


# -- detect_anomaly ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op, fn, bad",
    [
        ("log", lambda x: cr.log(x - 2.0), "NaN"),
        ("sqrt", lambda x: cr.sqrt(-x), "NaN"),
        ("div", lambda x: x / 0.0, "Inf"),
        ("exp", lambda x: cr.exp(x * 1000.0), "Inf"),
    ],
)
def test_detect_anomaly_forward(op, fn, bad):
    x = cr.tensor([1.0], dtype=cr.float64, requires_grad=True)
    with np.errstate(all="ignore"), cr.detect_anomaly():
        with pytest.raises(FloatingPointError) as info:
            fn(x)
    msg = str(info.value)
    assert f"detect_anomaly: {op} produced {bad} in the forward pass" in msg
    # the innermost line of user code: here, the lambda that applied the op
    assert f"{THIS_FILE}:{fn.__code__.co_firstlineno} in <lambda>" in msg


def test_detect_anomaly_forward_log_of_minus_one():
    with np.errstate(invalid="ignore"), cr.detect_anomaly():
        with pytest.raises(FloatingPointError, match=rf"log produced NaN.*{THIS_FILE}"):
            cr.log(cr.tensor(-1.0))


def test_detect_anomaly_forward_without_grad():
    # also checked when nothing is being recorded
    with np.errstate(divide="ignore"), cr.no_grad(), cr.detect_anomaly():
        with pytest.raises(FloatingPointError, match="log produced Inf"):
            cr.log(cr.zeros(2))


def test_detect_anomaly_backward_names_op_and_creation_line():
    x = cr.tensor([0.0, 1.0], dtype=cr.float64, requires_grad=True)
    with np.errstate(divide="ignore"), cr.detect_anomaly():
        line = _line() + 1
        y = cr.sqrt(x)  # sqrt at 0: infinite gradient
        loss = y.sum()
        with pytest.raises(FloatingPointError) as info:
            loss.backward()
    msg = str(info.value)
    assert "the backward of sqrt produced NaN/Inf" in msg
    assert f"{THIS_FILE}:{line}" in msg
    assert "cr.sqrt(x)" in msg


def test_detect_anomaly_backward_nan():
    x = cr.tensor([0.0], dtype=cr.float64, requires_grad=True)
    with np.errstate(all="ignore"), cr.detect_anomaly():
        y = (cr.sqrt(x) * 0.0).sum()  # 0 / 0 in the backward of sqrt
        with pytest.raises(FloatingPointError, match=rf"backward of sqrt.*{THIS_FILE}"):
            y.backward()


def test_detect_anomaly_as_decorator_and_off_by_default():
    @cr.detect_anomaly()
    def f(x):
        return cr.log(x)

    with np.errstate(invalid="ignore"):
        with pytest.raises(FloatingPointError, match="log produced NaN"):
            f(cr.tensor([-1.0]))
        assert np.isnan(cr.log(cr.tensor([-1.0])).data).all()  # off again: NaN flows


def test_detect_anomaly_quiet_when_finite():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    with cr.detect_anomaly():
        (cr.log(x) * cr.sqrt(x)).sum().backward()
    assert np.isfinite(x.grad.data).all()
