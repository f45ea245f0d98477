"""Initialisers: fans, the spread each scheme promises, orthogonality, gains, seeding, lookup."""

import math

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
from chainrule.nn import init


def _weight(*shape, dtype=cr.float32):
    return nn.Parameter(cr.zeros(*shape, dtype=dtype))


def test_fans_for_linear_and_conv_weights():
    assert init._calculate_fan_in_and_fan_out(_weight(3, 5)) == (5, 3)
    assert init._calculate_fan_in_and_fan_out(_weight(8, 4, 3, 3)) == (36, 72)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.glorot_uniform(_weight(4))


@pytest.mark.parametrize("shape", [(300, 500), (64, 32, 3, 3)])
def test_spread_matches_each_formula(shape):
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(_weight(*shape))
    cases = [
        (init.glorot_uniform, {}, math.sqrt(2 / (fan_in + fan_out))),
        (init.glorot_normal, {"gain": 2.0}, 2 * math.sqrt(2 / (fan_in + fan_out))),
        (init.he_uniform, {}, math.sqrt(2 / fan_in)),
        (init.he_normal, {"mode": "fan_out", "nonlinearity": "relu"}, math.sqrt(2 / fan_out)),
        (init.he_normal, {"a": 0.5}, math.sqrt(2 / (1.25 * fan_in))),
        (init.he_uniform, {"nonlinearity": "tanh"}, (5 / 3) / math.sqrt(fan_in)),
        (init.lecun_normal, {}, math.sqrt(1 / fan_in)),
        (init.normal, {"std": 0.02}, 0.02),
    ]
    for fn, kw, std in cases:
        w = fn(_weight(*shape), generator=cr.Generator(0), **kw)
        assert abs(w.data.std() / std - 1) < 0.02, fn.__name__
        assert abs(w.data.mean()) < 0.02 * std
    bound = math.sqrt(6 / (fan_in + fan_out))
    w = init.xavier_uniform_(_weight(*shape))
    assert np.abs(w.data).max() <= bound and np.abs(w.data).max() > 0.99 * bound


def test_uniform_constant_zeros_ones():
    w = init.uniform(_weight(100, 100), -0.5, 2.0)
    assert w.data.min() >= -0.5 and w.data.max() < 2.0 and abs(w.data.mean() - 0.75) < 0.02
    assert np.all(init.constant(_weight(2, 2), 0.3).data == np.float32(0.3))
    assert np.all(init.zeros_(_weight(3)).data == 0) and np.all(init.ones_(_weight(3)).data == 1)


@pytest.mark.parametrize("shape", [(20, 50), (50, 20), (30, 30), (16, 4, 3, 3)])
def test_orthogonal_is_orthogonal(shape):
    w = init.orthogonal(_weight(*shape, dtype=cr.float64), gain=1.5).data.reshape(shape[0], -1)
    small = min(w.shape)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    np.testing.assert_allclose(gram, 1.5**2 * np.eye(small), atol=1e-10)


def test_calculate_gain_matches_torch():
    torch = pytest.importorskip("torch")
    for name, param in [("linear", None), ("sigmoid", None), ("conv2d", None), ("tanh", None),
                        ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)]:
        assert init.calculate_gain(name, param) == pytest.approx(
            torch.nn.init.calculate_gain(name, param))
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")


def test_seeding_is_reproducible_and_in_place():
    for fn in (init.glorot_uniform, init.he_normal, init.orthogonal, init.normal):
        cr.manual_seed(3)
        a = fn(_weight(6, 5)).data.copy()
        cr.manual_seed(3)
        b = fn(_weight(6, 5)).data.copy()
        np.testing.assert_array_equal(a, b)
        c = fn(_weight(6, 5), generator=cr.Generator(9)).data
        np.testing.assert_array_equal(c, fn(_weight(6, 5), generator=cr.Generator(9)).data)
        assert not np.array_equal(a, c)
    w = _weight(4, 4, dtype=cr.float64)
    assert init.he_uniform(w) is w and w.dtype == np.float64 and w.requires_grad
    assert w.grad is None and w.is_leaf


def test_get_initializer():
    assert init.get_initializer("xavier_uniform_") is init.glorot_uniform
    assert init.get_initializer("kaiming_normal") is init.he_normal
    custom = lambda w: init.constant(w, 1.0)  # noqa: E731
    assert init.get_initializer(custom) is custom
    w = init.get_initializer("zeros")(_weight(2, 2), generator=cr.Generator(0))
    assert np.all(w.data == 0)
    with pytest.raises(ValueError, match="one of: glorot_normal, glorot_uniform, he_normal"):
        init.get_initializer("glorot")
    with pytest.raises(TypeError, match="fill a chainrule Tensor"):
        init.zeros(np.zeros(3))


def test_standard_normal_saturates_sigmoids_where_glorot_does_not():
    """The docstring's claim, checked: with N(0, 1) weights most sigmoid units of a 100-wide
    layer sit in the flat tails, with Glorot's scaling almost none do."""
    x = cr.tensor(np.random.default_rng(0).normal(size=(256, 100)))
    for fn, most in ((init.normal, True), (init.glorot_normal, False)):
        w = fn(_weight(100, 100), generator=cr.Generator(1))
        s = cr.sigmoid(x @ w.T).data
        saturated = np.mean((s < 0.05) | (s > 0.95))
        assert (saturated > 0.5) if most else (saturated < 0.01)
