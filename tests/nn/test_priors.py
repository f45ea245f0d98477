"""Priors: values against the densities, gradients, and the weight-decay equivalence of MAP
training with a Gaussian prior and a mean-reduced loss."""

import math

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
import chainrule.nn.functional as F
from chainrule.nn.priors import Gaussian, Laplace

RNG = np.random.default_rng(3)


def _params():
    return [cr.tensor(RNG.normal(size=(3, 4)), dtype=cr.float64, requires_grad=True),
            cr.tensor(RNG.normal(size=4), dtype=cr.float64, requires_grad=True)]


def test_gaussian_value_and_gradient():
    ps, s = _params(), 0.7
    w = np.concatenate([p.data.ravel() for p in ps])
    prior = Gaussian(s)
    nlp = prior.neg_log_prob(ps)
    np.testing.assert_allclose(nlp.item(), np.sum(w**2) / (2 * s**2))
    full = prior(ps, include_constant=True).item()
    log_density = -(w**2) / (2 * s**2) - math.log(s) - 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(full, -np.sum(log_density))
    nlp.backward()
    for p in ps:
        np.testing.assert_allclose(p.grad.data, p.data / s**2)


def test_laplace_value_and_gradient():
    ps, b = _params(), 0.3
    w = np.concatenate([p.data.ravel() for p in ps])
    prior = Laplace(b)
    np.testing.assert_allclose(prior(ps).item(), np.sum(np.abs(w)) / b)
    np.testing.assert_allclose(prior.neg_log_prob(ps, include_constant=True).item(),
                               np.sum(np.abs(w) / b + math.log(2 * b)))
    prior(ps).backward()
    for p in ps:
        np.testing.assert_allclose(p.grad.data, np.sign(p.data) / b)


def test_priors_match_torch_distributions():
    torch = pytest.importorskip("torch")
    w, zero = RNG.normal(size=10), torch.tensor(0.0, dtype=torch.float64)
    for ours, theirs in ((Gaussian(1.3), torch.distributions.Normal(zero, 1.3)),
                         (Laplace(0.4), torch.distributions.Laplace(zero, 0.4))):
        np.testing.assert_allclose(
            ours(cr.tensor(w, dtype=cr.float64), include_constant=True).item(),
            -theirs.log_prob(torch.tensor(w)).sum().item(), rtol=1e-12)


def test_priors_accept_a_module_a_tensor_or_a_list():
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    total = sum(float(np.sum(p.data**2)) for p in net.parameters()) / 2
    np.testing.assert_allclose(Gaussian()(net).item(), total, rtol=1e-6)
    np.testing.assert_allclose(Gaussian()(net[0].weight).item(),
                               np.sum(net[0].weight.data**2) / 2, rtol=1e-6)
    assert repr(Laplace(2)) == "Laplace(scale=2.0)"
    with pytest.raises(ValueError, match="scale must be positive"):
        Gaussian(0)
    with pytest.raises(ValueError, match="no parameters"):
        Gaussian()([])
    with pytest.raises(TypeError, match="priors take tensors"):
        Gaussian()([np.zeros(3)])
    with pytest.raises(ValueError, match="n_data"):
        Gaussian().weight_decay(0)


def _problem(seed=0):
    cr.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 5, dtype=cr.float64), nn.Tanh(),
                        nn.Linear(5, 3, dtype=cr.float64))
    x = cr.tensor(RNG.normal(size=(20, 4)), dtype=cr.float64)
    t = RNG.integers(0, 3, 20)
    return net, x, t


def test_weight_decay_constant_gives_the_same_gradient():
    """grad(mean_loss + neg_log_prob / N) == grad(mean_loss) + weight_decay(N) * w."""
    net, x, t = _problem()
    prior, n = Gaussian(0.5), 20
    (F.cross_entropy(net(x), t) + prior(net) / n).backward()
    with_prior = [p.grad.data.copy() for p in net.parameters()]
    net.zero_grad()
    F.cross_entropy(net(x), t).backward()
    wd = prior.weight_decay(n)
    assert wd == pytest.approx(1 / (n * 0.5**2))
    for g, p in zip(with_prior, net.parameters(), strict=True):
        np.testing.assert_allclose(g, p.grad.data + wd * p.data, rtol=1e-12, atol=1e-15)


def test_one_sgd_step_with_prior_equals_one_sgd_step_with_weight_decay():
    optim = pytest.importorskip("chainrule.optim")
    prior, n, lr = Gaussian(0.8), 20, 0.3
    net_a, x, t = _problem(seed=1)
    net_b, _, _ = _problem(seed=1)
    opt_a = optim.SGD(net_a.parameters(), lr=lr)
    (F.cross_entropy(net_a(x), t) + prior(net_a) / n).backward()
    opt_a.step()
    opt_b = optim.SGD(net_b.parameters(), lr=lr, weight_decay=prior.weight_decay(n))
    F.cross_entropy(net_b(x), t).backward()
    opt_b.step()
    for a, b in zip(net_a.parameters(), net_b.parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-15)
