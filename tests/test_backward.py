"""Tensor.backward: seeding, accumulation, deep graphs, freeing, hooks, retain_grad, no_grad /
enable_grad, gradient aliasing, and that a plain backward builds no graph."""

from __future__ import annotations

import time
import weakref

import numpy as np
import pytest

import chainrule as cr


def leaf(values, dtype=cr.float64):
    return cr.tensor(values, dtype=dtype, requires_grad=True)


# -- seeding -------------------------------------------------------------------------------------


def test_scalar_backward():
    x = leaf([1.0, 2.0, 3.0])
    y = (x * x).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0, 6.0])
    assert x.grad.shape == x.shape and x.grad.dtype == x.dtype


def test_backward_of_one_element_non_scalar():
    x = leaf([2.0])
    (x * 3).backward()
    np.testing.assert_array_equal(x.grad.data, [3.0])


def test_non_scalar_without_gradient_raises():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"scalar output.*gradient="):
        (x * 2).backward()


@pytest.mark.parametrize("as_tensor", [True, False])
def test_explicit_gradient(as_tensor):
    x = leaf([1.0, 2.0, 3.0])
    g = [1.0, 10.0, 100.0]
    (x * x).backward(cr.tensor(g) if as_tensor else np.array(g))
    np.testing.assert_allclose(x.grad.data, [2.0, 40.0, 600.0])


def test_explicit_gradient_wrong_shape():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\).*\(2,\)"):
        (x * 2).backward(cr.ones(3))


def test_float32_gradients_stay_float32():
    x = leaf([1.0, 2.0], dtype=cr.float32)
    (x * 2.5).sum().backward()
    assert x.grad.dtype == np.float32


# -- accumulation ----------------------------------------------------------------------------


def test_grads_accumulate_until_zeroed():
    x = leaf([1.0, 2.0])
    for k in range(1, 4):
        (x * 3).sum().backward()
        np.testing.assert_array_equal(x.grad.data, [3.0 * k, 3.0 * k])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])
    x.grad.zero_()
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])


def test_diamond_graph_accumulates_both_paths():
    x = leaf(2.0)
    a = x * 3
    b = x * x
    (a * b).backward()  # d(3x^3)/dx = 9x^2
    assert x.grad.item() == pytest.approx(36.0)


def test_same_leaf_twice_in_one_op():
    x = leaf([1.5, -2.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, -4.0])
    x.grad = None
    (x + x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])


def test_broadcast_gradient_reduced_to_input_shape():
    a = leaf(np.ones((3, 1)))
    b = leaf(np.ones(4))
    (a * b).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_array_equal(a.grad.data, np.full((3, 1), 4.0))
    np.testing.assert_array_equal(b.grad.data, np.full(4, 3.0))


def test_inputs_without_requires_grad_get_no_grad():
    x = leaf([1.0])
    c = cr.tensor([2.0])
    (x * c).sum().backward()
    assert c.grad is None and x.grad is not None


def test_unused_leaf_keeps_none():
    x, unused = leaf([1.0]), leaf([1.0])
    (x * 2).sum().backward()
    assert unused.grad is None


def test_intermediate_grads_not_kept_without_retain_grad():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.sum().backward()
    assert y.grad is None


# -- deep graphs ---------------------------------------------------------------------------------


def test_chain_of_100k_ops():
    x = leaf(1.0)
    start = time.perf_counter()
    y = x
    for _ in range(50_000):
        y = y * 1.0001
        y = y - 0.0001
    y.backward()
    elapsed = time.perf_counter() - start
    assert x.grad.item() == pytest.approx(1.0001**50_000, rel=1e-9)
    assert elapsed < 5.0, f"100k-op chain took {elapsed:.2f} s"
    del y  # tearing down a deep graph must not overflow the C stack either


def test_deep_graph_without_backward_is_freed():
    x = leaf(1.0)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    del y  # no RecursionError / crash on deallocation


# -- freeing the graph ---------------------------------------------------------------------------


def test_second_backward_raises_clear_error():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"second time.*retain_graph=True"):
        y.backward()


def test_second_backward_through_shared_subgraph_raises():
    x = leaf([1.0, 2.0])
    h = x.tanh()
    h.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (h * 2).sum().backward()


def test_retain_graph_allows_second_backward():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.data.copy()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * first)


def test_graph_references_dropped_after_backward():
    x = leaf([1.0, 2.0])
    h = x * 3
    y = h.sum()
    y.backward()
    assert y._ctx[1] == () and h._ctx[1] == ()  # parents (and saved arrays) released


# -- hooks ---------------------------------------------------------------------------------------


def test_hook_sees_gradient():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.data.copy()))
    (x * 3).sum().backward()
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])


def test_hook_can_replace_gradient_on_leaf_and_nonleaf():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: g * 10)
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [30.0, 30.0])

    z = leaf([1.0, 2.0])
    h = z * z
    h.register_hook(lambda g: g * 0 + 1.0)  # replaced gradient flows on to z
    (h * 5).sum().backward()
    np.testing.assert_array_equal(z.grad.data, [2.0, 4.0])


def test_hook_handle_removal():
    x = leaf([1.0])
    calls = []
    remove = x.register_hook(lambda g: calls.append(1) or g * 2)
    (x * 1).sum().backward()
    assert calls == [1] and x.grad.item() == 2.0
    remove()
    remove()  # removing twice is harmless
    x.grad = None
    (x * 1).sum().backward()
    assert calls == [1] and x.grad.item() == 1.0


def test_hooks_run_in_order():
    x = leaf([1.0])
    x.register_hook(lambda g: g + 1)
    x.register_hook(lambda g: g * 10)
    (x * 1).sum().backward()
    assert x.grad.item() == 20.0


def test_register_hook_on_constant_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.tensor([1.0]).register_hook(lambda g: g)


def test_retain_grad():
    x = leaf([1.0, 2.0])
    h = x * 2
    h.retain_grad()
    y = (h * h).sum()
    y.retain_grad()
    y.backward()
    np.testing.assert_array_equal(h.grad.data, [4.0, 8.0])
    assert y.grad.item() == 1.0
    np.testing.assert_array_equal(x.grad.data, [8.0, 16.0])


def test_retain_grad_on_leaf_is_noop():
    x = leaf([1.0])
    x.retain_grad()
    (x * 2).sum().backward()
    assert x.grad.item() == 2.0


# -- no_grad / enable_grad -----------------------------------------------------------------------


def test_no_grad_context_manager():
    x = leaf([1.0, 2.0])
    with cr.no_grad():
        assert not cr.is_grad_enabled()
        y = x * 2
    assert cr.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_no_grad_decorator():
    x = leaf([1.0, 2.0])

    @cr.no_grad()
    def f(t):
        assert not cr.is_grad_enabled()
        return t * 2

    assert not f(x).requires_grad
    assert f.__name__ == "f"
    assert cr.is_grad_enabled()


def test_no_grad_restored_after_exception():
    with pytest.raises(KeyError), cr.no_grad():
        raise KeyError("boom")
    assert cr.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = leaf([1.0, 2.0])
    with cr.no_grad():
        with cr.enable_grad():
            assert cr.is_grad_enabled()
            y = x * 2
        z = x * 2
        assert not cr.is_grad_enabled()
    assert y.requires_grad and not z.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])


def test_enable_grad_decorator_and_set_grad_enabled():
    @cr.enable_grad()
    def f(t):
        return t * 2

    x = leaf([1.0])
    with cr.no_grad():
        assert f(x).requires_grad
    with cr.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    with cr.no_grad(), cr.set_grad_enabled(True):
        assert (x * 2).requires_grad


def test_nested_no_grad():
    with cr.no_grad():
        with cr.no_grad():
            pass
        assert not cr.is_grad_enabled()
    assert cr.is_grad_enabled()


def test_sgd_step_in_no_grad_keeps_leaf():
    w = leaf([1.0, -1.0])
    for _ in range(3):
        loss = ((w - 3.0) ** 2).sum()
        loss.backward()
        with cr.no_grad():
            w -= 0.25 * w.grad
        w.grad = None
    assert w.is_leaf and w.requires_grad
    np.testing.assert_allclose(w.data, 3.0 + (np.array([1.0, -1.0]) - 3.0) * 0.5**3)


# -- aliasing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda a, b: (a + b).sum(),
        lambda a, b: (a - b).sum(),
        lambda a, b: (a + b).sum() * 1.0,
        lambda a, b: cr.stack([a, b]).sum(),
        lambda a, b: a.sum() + b.sum(),
    ],
    ids=["add", "sub", "scaled", "stack", "separate"],
)
@pytest.mark.parametrize("create_graph", [False, True])
def test_leaf_grads_never_aliased(make, create_graph):
    a = leaf([1.0, 2.0])
    b = leaf([3.0, 4.0])
    make(a, b).backward(create_graph=create_graph)
    b_before = b.grad.data.copy()
    with cr.no_grad():
        a.grad *= 2
    np.testing.assert_array_equal(b.grad.data, b_before)
    assert not np.shares_memory(a.grad.data, b.grad.data)


def test_leaf_grad_not_aliased_with_explicit_gradient():
    a = leaf([1.0, 2.0])
    g = cr.tensor([1.0, 1.0], dtype=cr.float64)
    a.backward(g)
    with cr.no_grad():
        a.grad *= 5
    np.testing.assert_array_equal(g.data, [1.0, 1.0])


@pytest.mark.parametrize("seed_grad", [False, True])
def test_retained_grad_not_aliased_with_leaf_grad(seed_grad):
    a = leaf([1.0, 2.0])
    h = a + 0.0
    h.retain_grad()
    if seed_grad:
        h.backward(cr.ones(2))
    else:
        h.sum().backward()
    with cr.no_grad():
        a.grad *= 2
    np.testing.assert_array_equal(h.grad.data, [1.0, 1.0])


def test_grads_seen_by_hooks_not_aliased_with_leaf_grads():
    a, c = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    b = c * 1.0
    b.retain_grad()
    kept = []
    b.register_hook(kept.append)
    (a + b).backward(cr.ones(2, dtype=cr.float64))
    for t in (b.grad, kept[0]):
        assert not np.shares_memory(a.grad.data, t.data)
        assert not np.shares_memory(c.grad.data, t.data)
    assert not np.shares_memory(a.grad.data, c.grad.data)


def test_leaf_grad_is_writable():
    x = leaf(np.ones((2, 3)))
    x.sum().backward()  # the sum VJP is a read-only broadcast view internally
    with cr.no_grad():
        x.grad += 1
    np.testing.assert_array_equal(x.grad.data, np.full((2, 3), 2.0))


# -- no graph unless asked -----------------------------------------------------------------------


def test_plain_backward_builds_no_graph():
    x = leaf([0.5, 1.0])
    w = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = cr.softmax(cr.tanh(w @ x), 0).log().sum() + (x**3).sum()
    y.backward()
    for t in (x, w):
        assert t.grad._ctx is None and t.grad.grad_fn is None
        assert not t.grad.requires_grad


def test_hook_during_plain_backward_sees_no_graph():
    x = leaf([1.0, 2.0])
    seen = []
    (x * x).register_hook(lambda g: seen.append((g.requires_grad, g.grad_fn)))
    h = x * x
    h.register_hook(lambda g: seen.append((g.requires_grad, g.grad_fn)))
    h.sum().backward()
    assert seen == [(False, None)]


def test_create_graph_builds_graph():
    x = leaf([0.5, 1.0])
    (x**3).sum().backward(create_graph=True)
    assert x.grad.requires_grad and x.grad.grad_fn is not None
    np.testing.assert_allclose(x.grad.data, 3 * x.data**2)
    g = x.grad
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(x.grad.data, 6 * x.data)


def test_backward_leaves_grad_mode_unchanged():
    x = leaf([1.0])
    (x * 2).sum().backward(create_graph=True)
    assert cr.is_grad_enabled()
    with cr.no_grad():
        pass
    (x * 2).sum().backward()
    assert cr.is_grad_enabled()


def test_input_changed_in_place_after_use_is_caught_at_backward():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    c = cr.tensor([1.0, 1.0])
    y = (w * c).sum()
    c += 1  # c does not require grad, so this is allowed, but mul saved its old value
    with pytest.raises(RuntimeError, match="mul was changed in place after the operation used it"):
        y.backward()


def test_output_changed_in_place_under_no_grad_is_caught_at_backward():
    x = cr.tensor([0.5], requires_grad=True)
    h = x.tanh()
    with cr.no_grad():
        h += 1  # tanh's VJP reads its output: the gradient would be wrong
    with pytest.raises(RuntimeError, match="tanh was changed in place"):
        h.sum().backward()


def test_in_place_change_before_use_is_fine():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    c = cr.tensor([1.0, 1.0])
    c += 1
    (w * c).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [2.0, 2.0])


# -- memory: outputs no VJP reads are freed early ---------------------------------------------


@pytest.mark.parametrize("uses_ans", [False, True])
def test_output_no_vjp_reads_is_freed_before_its_vjps_run(uses_ans):
    from chainrule.ops._core import defop

    seen = {}

    def vjp(g, ans, x):
        seen["alive"] = seen["ref"]() is not None
        return g * 2.0

    double = defop("double_probe", lambda x: x * 2.0, vjp, uses_ans=uses_ans)
    x = leaf([1.0, 2.0])
    y = double(x)
    seen["ref"] = weakref.ref(y.data)
    loss = y.sum()
    del y
    loss.backward()
    assert seen["alive"] is uses_ans  # freed only when the op says its VJPs never read it
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])
