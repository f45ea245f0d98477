"""Values, gradients and second derivatives of every op against PyTorch, in float64, on the
same inputs. Each case is written once against a namespace ``m`` that is chainrule or torch."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")
F = torch.nn.functional

RTOL, ATOL = 1e-6, 1e-10


class TorchNS:
    """torch with torch.nn.functional behind it, so ``m.softplus`` works for both libraries."""

    def __getattr__(self, name):
        return getattr(torch, name) if hasattr(torch, name) else getattr(F, name)


TORCH = TorchNS()

MASK = np.array(
    [[True, False, True, False], [False, False, True, True], [True, True, False, False]]
)


def _any(rng, shape):
    return rng.uniform(0.2, 1.5, shape) * rng.choice([-1.0, 1.0], shape)


def _pos(rng, shape):
    return rng.uniform(0.2, 1.5, shape)


def call(name, *args, **kw):
    """The case ``m.NAME(*inputs, *args, **kw)``."""
    return lambda m, *xs: getattr(m, name)(*xs, *args, **kw)


def method(name, *args, **kw):
    """The case ``first_input.NAME(*other_inputs, *args, **kw)``."""
    return lambda m, x, *xs: getattr(x, name)(*xs, *args, **kw)


def _linear_then(act):
    def f(m, x, w, b):
        if m is TORCH:
            return getattr(m, act)(m.linear(x, w, b))
        return m.linear_act(x, w, b, act)
    return f


A, P = "any", "pos"  # kinds of inputs: signed and away from 0, or positive
S = (3, 4)
S3 = [((2, 3, 4), A)]
UNARY = [("exp", A), ("log", P), ("log1p", P), ("sqrt", P), ("abs", A), ("sin", A), ("cos", A),
         ("tan", A), ("tanh", A), ("sigmoid", A), ("relu", A)]
REDUCTIONS = ["sum", "mean", "var", "std", "logsumexp", "amax", "amin"]

# (id, f(m, *inputs), [(shape, kind), ...])
CASES = [
    # elementwise unary: function and method spellings
    ("neg", lambda m, x: -x, [(S, A)]),
    ("neg_fn", call("neg"), [(S, A)]),
    ("neg_method", method("neg"), [(S, A)]),
    *[(n, call(n), [(S, k)]) for n, k in UNARY],
    *[(n + "_method", method(n), [(S, k)]) for n, k in UNARY],
    *[(n, call(n), [(S, A)]) for n in ["softsign", "elu", "softplus", "gelu", "leaky_relu"]],
    ("leaky_relu_slope", lambda m, x: m.leaky_relu(x, negative_slope=0.3), [(S, A)]),
    ("elu_alpha", lambda m, x: m.elu(x, alpha=0.7), [(S, A)]),
    ("softplus_beta", lambda m, x: m.softplus(x, beta=2.0, threshold=1.5), [(S, A)]),
    ("gelu_tanh", lambda m, x: m.gelu(x, approximate="tanh"), [(S, A)]),
    ("clamp", lambda m, x: m.clamp(x, -0.7, 0.9), [(S, A)]),
    ("clamp_min_method", lambda m, x: x.clamp(min=0.1), [(S, A)]),
    ("clamp_max", lambda m, x: m.clamp(x, max=-0.1), [(S, A)]),
    ("pow_scalar", lambda m, x: x**3, [(S, A)]),
    ("pow_frac", lambda m, x: m.pow(x, 2.5), [(S, P)]),
    ("pow_neg_method", lambda m, x: x.pow(-2), [(S, A)]),
    ("rpow", lambda m, x: 2**x, [(S, A)]),
    ("rsub", lambda m, x: 1 - x, [(S, A)]),
    ("rdiv", lambda m, x: 2 / x, [(S, A)]),
    ("radd_rmul", lambda m, x: 1.5 + 3 * x, [(S, A)]),
    # elementwise binary, broadcasting
    *[(f"{n}_{sa}_{sb}", call(n), [(sa, ka), (sb, A)])
      for n, ka in [("add", A), ("sub", A), ("mul", A), ("div", A), ("pow", P),
                    ("maximum", A), ("minimum", A)]
      for sa, sb in [((2, 3), (3,)), ((2, 1), (1, 3)), ((3,), (2, 3)), ((), (2, 3))]],
    ("add_op", lambda m, x, y: x + y, [((2, 3), A), ((3,), A)]),
    ("sub_op", lambda m, x, y: x - y, [((2, 1), A), ((3,), A)]),
    ("mul_op", lambda m, x, y: x * y, [((2, 3), A), ((2, 1), A)]),
    ("div_op", lambda m, x, y: x / y, [((3,), A), ((2, 3), A)]),
    ("pow_op", lambda m, x, y: x**y, [((2, 3), P), ((3,), A)]),
    ("add_method", lambda m, x, y: x.add(y).mul(y).sub(x).div(y), [((2, 3), A), ((3,), A)]),
    ("maximum_method", lambda m, x, y: x.maximum(y) + x.minimum(y) * 2, [(S, A), (S, A)]),
    ("where", lambda m, x, y: m.where(x > y, x, y * 2), [((2, 3), A), ((3,), A)]),
    ("where_method", lambda m, x, y: x.where(x < 0.3, y), [((2, 3), A), ((2, 1), A)]),
    # matmul
    *[(f"matmul_{sa}_{sb}", call("matmul"), [(sa, A), (sb, A)])
      for sa, sb in [((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 2)), ((3, 4), (4, 2)),
                     ((2, 3, 4), (2, 4, 2)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3)),
                     ((2, 3, 4), (4,)), ((3, 4), (2, 4, 2))]],
    ("matmul_op", lambda m, x, y: x @ y, [((3, 4), A), ((4, 2), A)]),
    ("matmul_method", lambda m, x, y: x.matmul(y), [((2, 3, 4), A), ((4, 2), A)]),
    # linear
    ("linear_2d", lambda m, x, w, b: m.linear(x, w, b), [((3, 4), A), ((5, 4), A), ((5,), A)]),
    ("linear_1d", lambda m, x, w, b: m.linear(x, w, b), [((4,), A), ((5, 4), A), ((5,), A)]),
    ("linear_3d", lambda m, x, w, b: m.linear(x, w, b), [((2, 3, 4), A), ((5, 4), A), ((5,), A)]),
    ("linear_nobias", lambda m, x, w: m.linear(x, w), [((2, 3, 4), A), ((5, 4), A)]),
    # linear_act (one primitive here) against torch's linear then the activation
    *[(f"linear_{act}", _linear_then(act), [((3, 4), A), ((5, 4), A), ((5,), A)])
      for act in ("relu", "tanh", "sigmoid")],
    ("linear_relu_3d", _linear_then("relu"), [((2, 3, 4), A), ((5, 4), A), ((5,), A)]),
    # reductions
    *[(f"{n}_all", call(n), S3) for n in ["sum", "mean", "max", "min", "var", "std"]],
    *[(f"{n}_{d}_{k}", call(n, d, keepdim=k), S3)
      for n in REDUCTIONS for d in [1, -1, (0, 2), (-1, 0)] for k in [False, True]],
    *[(f"{n}_{d}_{k}", call(n, d, keepdim=k), S3)
      for n in ["max", "min"] for d in [0, -1] for k in [False, True]],
    *[(f"{n}_method_{d}", method(n, d), S3)
      for n in ["sum", "mean", "max", "min", "var", "std", "logsumexp"] for d in [1, -2]],
    ("var_biased", lambda m, x: m.var(x, 1, unbiased=False), [(S, A)]),
    ("std_correction", lambda m, x: x.std(0, correction=0, keepdim=True), [(S, A)]),
    *[(f"{n}_{d}", call(n, d), S3) for n in ["softmax", "log_softmax"] for d in [0, 1, -1]],
    ("softmax_method", lambda m, x: x.softmax(-2) * x.log_softmax(0), [((2, 3, 4), A)]),
    # shapes
    ("reshape", lambda m, x: m.reshape(x, (4, 6)), [((2, 3, 4), A)]),
    ("reshape_method", lambda m, x: x.reshape(-1, 3), [((2, 3, 4), A)]),
    ("view", lambda m, x: x.view(6, 4), [((2, 3, 4), A)]),
    ("flatten", lambda m, x: m.flatten(x, 1), [((2, 3, 4), A)]),
    ("flatten_method", lambda m, x: x.flatten(0, -2), [((2, 3, 4), A)]),
    ("transpose", lambda m, x: m.transpose(x, 0, 2), [((2, 3, 4), A)]),
    ("transpose_method", lambda m, x: x.transpose(-1, 1), [((2, 3, 4), A)]),
    ("permute", lambda m, x: m.permute(x, (2, 0, 1)), [((2, 3, 4), A)]),
    ("permute_method", lambda m, x: x.permute(-1, -3, -2), [((2, 3, 4), A)]),
    ("T", lambda m, x: x.T, [(S, A)]),
    ("squeeze", lambda m, x: m.squeeze(x), [((2, 1, 4, 1), A)]),
    ("squeeze_dim", lambda m, x: x.squeeze(1), [((2, 1, 4), A)]),
    ("unsqueeze", lambda m, x: m.unsqueeze(x, -1) + x.unsqueeze(1), [(S, A)]),
    ("expand", lambda m, x: x.expand(2, 3, 4), [((3, 1), A)]),
    ("expand_neg", lambda m, x: x.expand(5, -1, 4), [((3, 1), A)]),
    ("cat", lambda m, x, y, z: m.cat([x, y, z], 1), [((2, 3), A), ((2, 1), A), ((2, 2), A)]),
    ("cat_neg", lambda m, x, y: m.cat((x, y), -2), [((2, 3), A), ((1, 3), A)]),
    ("stack", lambda m, x, y: m.stack([x, y], 1), [((2, 3), A), ((2, 3), A)]),
    ("stack_neg", lambda m, x, y: m.stack([x, y], -1), [((2, 3), A), ((2, 3), A)]),
    ("split", lambda m, x: m.cat([p * (i + 1) for i, p in enumerate(m.split(x, 2, 1))], 1),
     [((3, 5), A)]),
    ("split_sizes", lambda m, x: m.cat([p * (i + 1) for i, p in enumerate(x.split([1, 3]))]),
     [((4, 2), A)]),
    ("pad", lambda m, x: m.pad(x, (1, 2)), [(S, A)]),
    ("pad_2d_value", lambda m, x: m.pad(x, (0, 1, 2, 1), value=1.5), [((2, 3, 4), A)]),
    # indexing
    ("index_int", lambda m, x: x[1], [(S, A)]),
    ("index_slices", lambda m, x: x[1:, ::2], [(S, A)]),
    ("index_neg_slice", lambda m, x: x[-2:, -3:-1], [(S, A)]),
    ("index_ellipsis_none", lambda m, x: x[..., None, 2], [(S, A)]),
    ("index_int_array", lambda m, x: x[m.tensor(np.array([2, 0]))], [(S, A)]),
    ("index_repeated", lambda m, x: x[m.tensor(np.array([0, 0, 2, 0]))], [(S, A)]),
    ("index_pairs_repeated", lambda m, x: x[m.tensor(np.array([1, 1, 0])),
                                           m.tensor(np.array([2, 2, 3]))], [(S, A)]),
    ("index_slice_array", lambda m, x: x[:, m.tensor(np.array([3, 1, 3]))], [(S, A)]),
    ("index_bool_mask", lambda m, x: x[m.tensor(MASK)], [(S, A)]),
    ("index_bool_rows", lambda m, x: x[m.tensor(np.array([True, False, True]))], [(S, A)]),
    ("index_comparison_mask", lambda m, x: x[x > 0], [(S, A)]),
    # composite
    ("mlp", lambda m, x, w1, b1, w2: m.log_softmax(m.tanh(m.linear(x, w1, b1)) @ w2.T, -1),
     [((4, 3), A), ((5, 3), A), ((5,), A), ((2, 5), A)]),
]
IDS = [c[0] for c in CASES]
assert len(set(IDS)) == len(IDS), "duplicate case ids"


def _inputs(case_id, spec):
    rng = np.random.default_rng(zlib.crc32(case_id.encode()))
    arrays = [(_pos if kind == P else _any)(rng, shape) for shape, kind in spec]
    ours = [cr.tensor(a, dtype=cr.float64, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    return ours, theirs


def _out(x):
    return x[0] if isinstance(x, tuple) else x  # torch.max(x, dim) gives (values, indices)


def _close(ours, theirs, what):
    ours = ours.data if isinstance(ours, cr.Tensor) else ours
    theirs = theirs.detach().numpy(force=True)  # force: torch's lazy ZeroTensor
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=what)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_values_and_gradients_match_torch(case):
    case_id, fn, spec = case
    ours, theirs = _inputs(case_id, spec)
    out, tout = _out(fn(cr, *ours)), _out(fn(TORCH, *theirs))
    assert out.shape == tuple(tout.shape)
    assert out.dtype == np.float64
    _close(out, tout, "value")

    w = np.random.default_rng(0).uniform(0.5, 1.5, out.shape)
    (out * cr.tensor(w, dtype=cr.float64)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        _close(a.grad, b.grad, f"gradient of input {i}")


def _graph(t):
    return t is not None and t.requires_grad


def _sum_sq(grads):
    parts = [(g * g).sum() for g in grads if g is not None]
    return sum(parts[1:], parts[0]) if parts else None


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_second_derivatives_match_torch(case):
    # d/dx of |d(w . f)/dx|^2: every VJP must itself be differentiable, with torch's values
    case_id, fn, spec = case
    ours, theirs = _inputs(case_id, spec)
    out, tout = _out(fn(cr, *ours)), _out(fn(TORCH, *theirs))
    w = np.random.default_rng(1).uniform(0.5, 1.5, out.shape)
    g = cr.autograd.grad((out * cr.tensor(w, dtype=cr.float64)).sum(), ours,
                         create_graph=True, allow_unused=True)
    tg = torch.autograd.grad((tout * torch.tensor(w)).sum(), theirs,
                             create_graph=True, allow_unused=True)
    s, ts = _sum_sq(g), _sum_sq(tg)
    none = [None] * len(ours)  # a gradient that does not depend on the inputs: zeros
    gg = cr.autograd.grad(s, ours, allow_unused=True) if _graph(s) else none
    tgg = torch.autograd.grad(ts, theirs, allow_unused=True) if _graph(ts) else none
    for i, (a, b) in enumerate(zip(gg, tgg, strict=True)):
        b = torch.zeros_like(theirs[i]) if b is None else b
        a = np.zeros(ours[i].shape) if a is None else a
        _close(a, b, f"second derivative for input {i}")


@pytest.mark.parametrize("name", ["log_softmax", "logsumexp", "softplus", "sigmoid", "softmax"])
def test_stability_matches_torch(name):
    x = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0], [1000.0, 999.0, 998.0, -3.0, 0.5]])
    args = {"log_softmax": (-1,), "logsumexp": (-1,), "softmax": (-1,)}.get(name, ())
    ours = cr.tensor(x, dtype=cr.float64, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    out, tout = getattr(cr, name)(ours, *args), getattr(TORCH, name)(theirs, *args)
    _close(out, tout, "value")
    w = np.linspace(0.5, 1.5, out.data.size).reshape(out.shape)
    (out * cr.tensor(w, dtype=cr.float64)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    _close(ours.grad, theirs.grad, "gradient")
    assert np.isfinite(ours.grad.data).all()
