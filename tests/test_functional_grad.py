"""Higher-order and functional differentiation: backward(create_graph=True), chainrule.grad and
its compositions, value_and_grad (argnums, has_aux), autograd.grad, jacobian and hessian."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr


def sig(x):
    return 1.0 / (1.0 + math.exp(-x))


# f, f', f'' (analytic), and a point in the domain
SCALAR = {
    "sin": (cr.sin, math.cos, lambda x: -math.sin(x)),
    "exp": (cr.exp, math.exp, math.exp),
    "tanh": (cr.tanh, lambda x: 1 - math.tanh(x) ** 2,
             lambda x: -2 * math.tanh(x) * (1 - math.tanh(x) ** 2)),
    "sigmoid": (cr.sigmoid, lambda x: sig(x) * (1 - sig(x)),
                lambda x: sig(x) * (1 - sig(x)) * (1 - 2 * sig(x))),
    "cube": (lambda x: x**3, lambda x: 3 * x**2, lambda x: 6 * x),
    "log": (cr.log, lambda x: 1 / x, lambda x: -1 / x**2),
    "softplus": (cr.softplus, sig, lambda x: sig(x) * (1 - sig(x))),
    "sqrt": (cr.sqrt, lambda x: 0.5 / math.sqrt(x), lambda x: -0.25 * x**-1.5),
    "rdiv": (lambda x: 1 / x, lambda x: -1 / x**2, lambda x: 2 / x**3),
    "rpow": (lambda x: 2**x, lambda x: math.log(2) * 2**x, lambda x: math.log(2) ** 2 * 2**x),
}


@pytest.mark.parametrize("name", list(SCALAR))
@pytest.mark.parametrize("x", [0.3, 1.7])
def test_grad_and_grad_of_grad_scalar(name, x):
    f, d1, d2 = SCALAR[name]
    g = cr.grad(f)
    gg = cr.grad(cr.grad(f))
    assert g(x).item() == pytest.approx(d1(x), rel=1e-10)
    assert gg(x).item() == pytest.approx(d2(x), rel=1e-10)
    xt = cr.tensor(x, dtype=cr.float64)
    assert gg(xt).item() == pytest.approx(d2(x), rel=1e-10)


def test_third_derivative():
    x = 0.7
    assert cr.grad(cr.grad(cr.grad(cr.sin)))(x).item() == pytest.approx(-math.cos(x))
    assert cr.grad(cr.grad(cr.grad(lambda t: t**4)))(x).item() == pytest.approx(24 * x)


def test_grad_keeps_float64_and_float32():
    assert cr.grad(cr.sin)(cr.tensor(1.0, dtype=cr.float64)).dtype == np.float64
    assert cr.grad(cr.sin)(cr.tensor(1.0)).dtype == np.float32


def test_grad_does_not_touch_input_grad():
    x = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    g = cr.grad(lambda t: (t**2).sum())(x)
    np.testing.assert_allclose(g.data, [2.0, 4.0])
    assert x.grad is None


def test_grad_of_constant_function_is_zero():
    g = cr.grad(lambda t: cr.tensor(3.0))(cr.tensor([1.0, 2.0]))
    np.testing.assert_array_equal(g.data, [0.0, 0.0])


def test_grad_requires_scalar_output():
    with pytest.raises(TypeError, match="scalar"):
        cr.grad(lambda t: t * 2)(cr.tensor([1.0, 2.0]))


# -- vector functions, against torch ------------------------------------------------------------

W = np.random.default_rng(0).standard_normal((3, 4))
C = np.random.default_rng(1).standard_normal(4)
IDX = np.array([0, 0, 2, 3, 3, 3])


def vec_fns(m, tensor):
    """The same functions written against chainrule (m=cr) or torch (m=torch)."""
    w, c = tensor(W), tensor(C)
    return {
        "matmul": lambda x: m.tanh(w @ x).sum() + (x @ x) ** 2,
        "softmax": lambda x: (m.softmax(x * 2.0, 0) * c).sum() + m.log_softmax(x, 0)[1],
        "indexing": lambda x: (x[IDX] ** 3).sum() + (x[1:3] * x[2:]).sum(),
        "mixed": lambda x: m.logsumexp(m.sigmoid(x[:, None] * x[None, :]), 1).sum(),
    }


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _torch_tensor(torch):
    return lambda a: torch.tensor(a, dtype=torch.float64)


X0 = np.array([0.3, -0.8, 1.1, 0.5])


@pytest.mark.parametrize("name", ["matmul", "softmax", "indexing", "mixed"])
def test_grad_grad_and_hessian_vector_functions_vs_torch(name, torch):
    f = vec_fns(cr, lambda a: cr.tensor(a, dtype=cr.float64))[name]
    tf = vec_fns(torch, _torch_tensor(torch))[name]
    xt = torch.tensor(X0, dtype=torch.float64, requires_grad=True)
    (tg,) = torch.autograd.grad(tf(xt), xt, create_graph=True)
    th = torch.autograd.functional.hessian(tf, torch.tensor(X0))
    v = np.array([1.0, -2.0, 0.5, 3.0])

    np.testing.assert_allclose(cr.grad(f)(X0).data, tg.detach().numpy(), rtol=1e-9)
    # grad of (grad . v) = H v: grad(grad(f)) via a Hessian-vector product
    hv = cr.grad(lambda x: (cr.grad(f)(x) * cr.tensor(v)).sum())(X0)
    np.testing.assert_allclose(hv.data, th.numpy() @ v, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cr.hessian(f)(X0).data, th.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["matmul", "softmax", "indexing", "mixed"])
@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning")
def test_backward_create_graph_then_differentiate_grad(name, torch):
    f = vec_fns(cr, lambda a: cr.tensor(a, dtype=cr.float64))[name]
    tf = vec_fns(torch, _torch_tensor(torch))[name]
    x = cr.tensor(X0, dtype=cr.float64, requires_grad=True)
    f(x).backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    x.grad = None
    (g * g).sum().backward()  # d/dx |grad f|^2 = 2 H grad f

    xt = torch.tensor(X0, dtype=torch.float64, requires_grad=True)
    tf(xt).backward(create_graph=True)
    tg = xt.grad
    xt.grad = None
    (tg * tg).sum().backward()
    np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_gradient_penalty_on_parameters():
    # d/dw of |d loss / d x|^2, the WGAN-GP pattern: mixed second derivative through matmul
    rng = np.random.default_rng(2)
    w = cr.tensor(rng.standard_normal((2, 3)), dtype=cr.float64, requires_grad=True)
    x = cr.tensor(rng.standard_normal(3), dtype=cr.float64, requires_grad=True)
    loss = cr.sigmoid(w @ x).sum()
    (gx,) = cr.autograd.grad(loss, x, create_graph=True)
    (gx**2).sum().backward()

    def penalty(w, x):
        (gx,) = cr.autograd.grad(cr.sigmoid(w @ x).sum(), x, create_graph=True)
        return (gx**2).sum()

    x0 = x.detach()
    assert cr.gradcheck(lambda w: penalty(w, x0.requires_grad_()), (w.detach(),))
    s = 1 / (1 + np.exp(-(w.data @ x.data)))
    ds = s * (1 - s)
    gx_np = w.data.T @ ds  # d loss / dx
    # d/dw_ij of |W^T ds|^2 = 2 ds_i gx_j + 2 (gx . w_i) ds_i (1 - 2 s_i) x_j
    expected = 2 * np.outer(ds, gx_np) + 2 * np.outer((w.data @ gx_np) * ds * (1 - 2 * s), x.data)
    np.testing.assert_allclose(w.grad.data, expected, rtol=1e-10)


# -- value_and_grad -----------------------------------------------------------------------------


def _f3(x, y, z):
    return (x * y).sum() + (z**2).sum() * 3.0


def test_value_and_grad_single_argnum():
    x, y, z = np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([0.5])
    value, g = cr.value_and_grad(_f3)(x, y, z)
    assert value.item() == pytest.approx(11.0 + 0.75)
    np.testing.assert_allclose(g.data, y)
    value, g = cr.value_and_grad(_f3, argnums=1)(x, y, z)
    np.testing.assert_allclose(g.data, x)


def test_value_and_grad_argnums_tuple():
    x, y, z = np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([0.5])
    value, grads = cr.value_and_grad(_f3, argnums=(0, 2))(x, y, z)
    assert isinstance(grads, tuple) and len(grads) == 2
    np.testing.assert_allclose(grads[0].data, y)
    np.testing.assert_allclose(grads[1].data, [3.0])
    (_, (gy,)) = cr.value_and_grad(_f3, argnums=(1,))(x, y, z)
    np.testing.assert_allclose(gy.data, x)
    gx, gy, gz = cr.grad(_f3, argnums=(0, 1, 2))(x, y, z)
    np.testing.assert_allclose(gz.data, [3.0])


def test_value_and_grad_has_aux():
    def f(x, y):
        pred = x * y
        return (pred**2).sum(), {"pred": pred, "n": 2}

    x, y = cr.tensor([1.0, 2.0]), cr.tensor([3.0, 4.0])
    (value, aux), (gx, gy) = cr.value_and_grad(f, argnums=(0, 1), has_aux=True)(x, y)
    assert value.item() == pytest.approx(9.0 + 64.0)
    assert aux["n"] == 2
    np.testing.assert_allclose(aux["pred"].data, [3.0, 8.0])
    np.testing.assert_allclose(gx.data, [18.0, 64.0])
    np.testing.assert_allclose(gy.data, [6.0, 32.0])
    g, aux2 = cr.grad(f, has_aux=True)(x, y)
    np.testing.assert_allclose(g.data, [18.0, 64.0])
    assert aux2["n"] == 2


def test_value_and_grad_unused_argument_gets_zeros():
    _, (gx, gy) = cr.value_and_grad(lambda x, y: (x * 2).sum(), argnums=(0, 1))(
        np.ones(2), np.ones(3)
    )
    np.testing.assert_array_equal(gy.data, np.zeros(3))


def test_argnums_out_of_range():
    with pytest.raises(ValueError, match="argnums"):
        cr.grad(lambda x: x.sum(), argnums=2)(np.ones(2))


def test_value_and_grad_composes_with_grad():
    # d/dx of the gradient returned by value_and_grad (x^3 -> 6x)
    def first(x):
        _, g = cr.value_and_grad(lambda t: t**3)(x)
        return g

    assert cr.grad(first)(2.0).item() == pytest.approx(12.0)


# -- autograd.grad ----------------------------------------------------------------------------


def test_autograd_grad():
    x = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    y = cr.tensor([3.0], dtype=cr.float64, requires_grad=True)
    out = (x**2).sum() * y
    gx, gy = cr.autograd.grad(out, [x, y], retain_graph=True)
    np.testing.assert_allclose(gx.data, [6.0, 12.0])
    np.testing.assert_allclose(gy.data, [5.0])
    assert x.grad is None and y.grad is None
    (g2,) = cr.autograd.grad(x * 2, x, grad_outputs=cr.tensor([1.0, 10.0], dtype=cr.float64))
    np.testing.assert_allclose(g2.data, [2.0, 20.0])


def test_autograd_grad_allow_unused():
    x = cr.tensor([1.0], requires_grad=True)
    u = cr.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="allow_unused"):
        cr.autograd.grad((x * 2).sum(), [x, u])
    gx, gu = cr.autograd.grad((x * 2).sum(), [x, u], allow_unused=True)
    assert gu is None and gx.item() == 2.0


def test_autograd_grad_of_intermediate():
    x = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    h = x * 3
    (gh,) = cr.autograd.grad((h**2).sum(), h)
    np.testing.assert_allclose(gh.data, 2 * h.data)


# -- jacobian / hessian vs torch.autograd.functional ------------------------------------------


JAC_FNS = {
    "tanh_matmul": lambda m, w: (lambda x: m.tanh(w @ x)),
    "softmax": lambda m, w: (lambda x: m.softmax(x, 0)),
    "outer": lambda m, w: (lambda x: x[:, None] * x[None, :3]),
    "cumulative": lambda m, w: (lambda x: m.stack([x[:k].sum() for k in range(1, 5)])),
}


@pytest.mark.parametrize("name", list(JAC_FNS))
def test_jacobian_vs_torch(name, torch):
    f = JAC_FNS[name](cr, cr.tensor(W, dtype=cr.float64))
    tf = JAC_FNS[name](torch, torch.tensor(W))
    j = cr.jacobian(f)(X0)
    tj = torch.autograd.functional.jacobian(tf, torch.tensor(X0))
    assert j.shape == tuple(tj.shape)
    np.testing.assert_allclose(j.data, tj.numpy(), rtol=1e-9, atol=1e-12)


def test_jacobian_argnums_and_matrix_input(torch):
    a = np.random.default_rng(3).standard_normal((2, 3))
    b = np.random.default_rng(4).standard_normal((3, 2))
    j = cr.jacobian(lambda a, b: cr.sigmoid(a @ b), argnums=1)(a, b)
    tj = torch.autograd.functional.jacobian(
        lambda a, b: torch.sigmoid(a @ b), (torch.tensor(a), torch.tensor(b))
    )[1]
    assert j.shape == (2, 2, 3, 2)
    np.testing.assert_allclose(j.data, tj.numpy(), rtol=1e-9)


HESS_FNS = {
    "quartic": lambda m, w: (lambda x: (x**4).sum() + x[0] * x[1] * x[2]),
    "logsumexp": lambda m, w: (lambda x: m.logsumexp(w @ x, 0)),
    "silu": lambda m, w: (lambda x: (m.sigmoid(w @ x) * (w @ x)).sum()),
    "log_softmax": lambda m, w: (lambda x: m.log_softmax(w @ x, 0)[2]),
    "exp_sin": lambda m, w: (lambda x: (m.exp(x[:2]) * m.sin(x[2:])).sum()),
    "var": lambda m, w: (lambda x: x.var() + (x * x).mean() * x.std()),
}


@pytest.mark.parametrize("name", list(HESS_FNS))
def test_hessian_vs_torch(name, torch):
    f = HESS_FNS[name](cr, cr.tensor(W, dtype=cr.float64))
    tf = HESS_FNS[name](torch, torch.tensor(W))
    h = cr.hessian(f)(X0)
    th = torch.autograd.functional.hessian(tf, torch.tensor(X0))
    assert h.shape == (4, 4)
    np.testing.assert_allclose(h.data, th.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h.data, h.data.T, rtol=1e-9, atol=1e-12)


def test_hessian_of_matrix_input():
    a = np.random.default_rng(5).standard_normal((2, 2))
    h = cr.hessian(lambda a: (a**3).sum())(a)
    assert h.shape == (2, 2, 2, 2)
    np.testing.assert_allclose(h.data.reshape(4, 4), np.diag(6 * a.reshape(-1)))


def test_jacobian_of_constant_output():
    j = cr.jacobian(lambda x: cr.tensor([1.0, 2.0]))(np.ones(3))
    assert j.shape == (2, 3) and (j.data == 0).all()
