"""Tests for chainrule.nn.utils: gradient clipping (against PyTorch and by hand) and the
parameters <-> flat vector conversions."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import Parameter
from chainrule.nn.utils import (
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
    parameters_to_vector,
    vector_to_parameters,
)

SHAPES = [(3, 4), (5,), (), (2, 2)]


def _params(seed=0, scale=1.0, dtype=np.float64, none_at=2):
    rng = np.random.default_rng(seed)
    ps = []
    for i, s in enumerate(SHAPES):
        p = Parameter(cr.tensor(rng.standard_normal(s), dtype=dtype))
        if i != none_at:
            p.grad = cr.tensor(scale * rng.standard_normal(s), dtype=dtype)
        ps.append(p)
    return ps


def _torch_params(torch, ps):
    out = []
    for p in ps:
        t = torch.tensor(p.data, requires_grad=True)
        t.grad = None if p.grad is None else torch.tensor(p.grad.data)
        out.append(t)
    return out


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    ps = _params()
    ts = _torch_params(torch, ps)
    total = clip_grad_norm_(ps, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(ts, max_norm, norm_type, foreach=False)
    assert float(total) == pytest.approx(float(ttotal), rel=1e-12)
    assert total.dtype == np.float64 and total.shape == ()
    for p, t in zip(ps, ts, strict=True):
        if p.grad is None:
            assert t.grad is None
        else:
            np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-12, atol=0)


def test_clip_grad_value_matches_torch():
    torch = pytest.importorskip("torch")
    ps = _params(1)
    ts = _torch_params(torch, ps)
    clip_grad_value_(ps, 0.3)
    torch.nn.utils.clip_grad_value_(ts, 0.3, foreach=False)
    for p, t in zip(ps, ts, strict=True):
        if p.grad is not None:
            np.testing.assert_array_equal(p.grad.data, t.grad.numpy())


def test_vector_conversions_match_torch():
    torch = pytest.importorskip("torch")
    ps = _params(2)
    ts = _torch_params(torch, ps)
    vec = parameters_to_vector(ps)
    np.testing.assert_array_equal(vec.data, torch.nn.utils.parameters_to_vector(ts).detach())


def test_clip_grad_norm_by_hand_exploding_gradient():
    ps = _params(3, scale=1e6, dtype=np.float32)
    arrays = [p.grad.data for p in ps if p.grad is not None]
    before = np.sqrt(sum(float(np.sum(a.astype(np.float64) ** 2)) for a in arrays))
    total = clip_grad_norm_(ps, max_norm=1.0)
    assert float(total) == pytest.approx(before, rel=1e-5)
    after = np.sqrt(sum(float(np.sum(a.astype(np.float64) ** 2)) for a in arrays))
    assert after == pytest.approx(1.0, rel=1e-5)
    for p, a in zip([p for p in ps if p.grad is not None], arrays, strict=True):
        assert p.grad.data is a and a.dtype == np.float32  # in place, dtype kept
    assert total.dtype == np.float32


def test_small_gradients_are_left_alone_and_single_tensor_accepted():
    p = Parameter(cr.tensor([3.0, 4.0], dtype=cr.float64))
    p.grad = cr.tensor([0.3, 0.4], dtype=cr.float64)
    assert float(clip_grad_norm_(p, max_norm=1.0)) == pytest.approx(0.5)
    np.testing.assert_array_equal(p.grad.data, [0.3, 0.4])
    assert float(clip_grad_norm_(p, 1.0, norm_type="inf")) == pytest.approx(0.4)
    clip_grads_with_norm_([p], max_norm=0.25, total_norm=0.5)
    np.testing.assert_allclose(p.grad.data, [0.15, 0.2], rtol=1e-5)
    clip_grad_value_(p, 0.18)
    np.testing.assert_allclose(p.grad.data, [0.15, 0.18], rtol=1e-5)


def test_no_gradients_gives_zero_norm():
    p = Parameter(cr.zeros(3))
    assert float(clip_grad_norm_([p], 1.0)) == 0.0
    assert float(get_total_norm([])) == 0.0


def test_nonfinite_norm():
    p = Parameter(cr.zeros(2))
    p.grad = cr.tensor([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    with pytest.warns(RuntimeWarning):  # like torch, inf * 0 leaves NaN gradients
        assert np.isinf(float(clip_grad_norm_([p], 1.0)))
    assert np.isnan(p.grad.data[0])


def test_vector_round_trip_copies_in_place():
    ps = _params(4, dtype=np.float32)
    arrays = [p.data for p in ps]
    vec = parameters_to_vector(ps)
    assert vec.shape == (sum(int(np.prod(s)) for s in SHAPES),)
    vector_to_parameters(cr.tensor(np.arange(vec.shape[0], dtype=np.float64)), ps)
    assert all(p.data is a and a.dtype == np.float32 for p, a in zip(ps, arrays, strict=True))
    np.testing.assert_array_equal(ps[1].data, [12, 13, 14, 15, 16])
    np.testing.assert_array_equal(parameters_to_vector(ps).data, np.arange(vec.shape[0]))


def test_parameters_to_vector_is_differentiable():
    ps = _params(5)
    for p in ps:
        p.grad = None
    (parameters_to_vector(ps) ** 2).sum().backward()
    for p in ps:
        np.testing.assert_allclose(p.grad.data, 2 * p.data)


def test_errors():
    p = Parameter(cr.zeros(3))
    p.grad = cr.ones(3)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm_([p], -1.0)
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value_([p], -1.0)
    with pytest.raises(TypeError, match="expects a Tensor"):
        vector_to_parameters(np.zeros(3), [p])
    with pytest.raises(ValueError, match="has 4 elements"):
        vector_to_parameters(cr.zeros(4), [p])
    with pytest.raises(ValueError, match="no parameters"):
        parameters_to_vector([])
