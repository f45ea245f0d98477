"""Tests for the classic perceptron and Widrow-Hoff (LMS) rules and their toy problems."""

import numpy as np
import pytest

from chainrule.classic import Perceptron, WidrowHoff, linearly_separable_problem, xor_problem

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0, 1, 1, 0])
RULES = [Perceptron, WidrowHoff]


class FakeTensor:
    """Stands in for a chainrule Tensor: only a `.data` ndarray."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data


@pytest.fixture(scope="module")
def separable() -> tuple[np.ndarray, np.ndarray]:
    return linearly_separable_problem(n=200, seed=0)


def test_perceptron_learns_separable_problem(separable):
    X, y = separable
    model = Perceptron(seed=0).fit(X, y)
    assert model.score(X, y) == 1.0
    assert model.history_[-1] == 0 and all(m > 0 for m in model.history_[:-1])
    assert model.n_epochs_ == len(model.history_) < model.epochs
    assert all(isinstance(m, int) for m in model.history_)
    assert model.weight_.shape == (2,) and isinstance(model.bias_, float)


def test_widrow_hoff_learns_separable_problem(separable):
    X, y = separable
    model = WidrowHoff(seed=0).fit(X, y)
    assert model.score(X, y) >= 0.95
    assert model.n_epochs_ == len(model.history_) == len(model.mistakes_) == model.epochs
    assert model.history_[-1] < model.history_[0]
    assert all(isinstance(e, float) for e in model.history_)
    assert model.mistakes_[-1] == np.count_nonzero(model.predict(X) != y)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("coding", [(0, 1), (-1, 1)])
def test_both_rules_fail_on_xor(rule, coding):
    y = np.where(XOR_Y == 1, coding[1], coding[0])
    model = rule(seed=0).fit(XOR_X, y)
    assert model.score(XOR_X, y) <= 0.75
    assert set(model.predict(XOR_X).tolist()) <= set(coding)


def test_perceptron_never_settles_on_xor():
    model = Perceptron(epochs=30, seed=1).fit(*xor_problem(n=40, noise=0.0, seed=1))
    assert model.n_epochs_ == 30 and min(model.history_) >= 1


@pytest.mark.parametrize("rule", RULES)
def test_prediction_uses_the_training_coding(rule, separable):
    X, y01 = separable
    ypm = 2 * y01 - 1
    for y, classes in ((y01, [0, 1]), (ypm, [-1, 1])):
        model = rule(seed=0).fit(X, y)
        assert model.classes_.tolist() == classes
        assert set(np.unique(model.predict(X)).tolist()) == set(classes)


@pytest.mark.parametrize("rule", RULES)
def test_predict_thresholds_the_decision_function(rule, separable):
    X, y = separable
    model = rule(seed=0).fit(X, y)
    raw = model.decision_function(X)
    np.testing.assert_allclose(raw, X @ model.weight_ + model.bias_)
    np.testing.assert_array_equal(model.predict(X), (raw > 0).astype(int))


def test_widrow_hoff_regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2))
    y = X @ np.array([2.0, -1.0]) + 0.5
    model = WidrowHoff(lr=0.05, epochs=50, seed=0).fit(X, y)
    assert model.classes_ is None and model.mistakes_ is None
    np.testing.assert_allclose(model.weight_, [2.0, -1.0], atol=1e-3)
    assert model.bias_ == pytest.approx(0.5, abs=1e-3)
    np.testing.assert_allclose(model.predict(X), model.decision_function(X))
    assert model.score(X, y) > 0.999
    assert model.history_[-1] < 1e-6 < model.history_[0]


def test_r2_of_constant_targets():
    X = np.array([[0.0], [1.0], [2.0]])
    model = WidrowHoff(epochs=1, seed=0).fit(X, np.array([0.5, 1.5, 2.5]))
    assert model.score(X, np.full(3, 7.0)) == 0.0


def test_perceptron_learning_rate_only_scales_weights(separable):
    X, y = separable
    one = Perceptron(lr=1.0, seed=3).fit(X, y)
    quarter = Perceptron(lr=0.25, seed=3).fit(X, y)
    assert quarter.history_ == one.history_
    np.testing.assert_array_equal(quarter.weight_ * 4, one.weight_)


@pytest.mark.parametrize("rule", RULES)
def test_seed_gives_identical_runs(rule, separable):
    X, y = separable
    a, b = rule(seed=7).fit(X, y), rule(seed=7).fit(X, y)
    assert a.history_ == b.history_ and a.bias_ == b.bias_
    np.testing.assert_array_equal(a.weight_, b.weight_)
    refit = a.fit(X, y)
    np.testing.assert_array_equal(refit.weight_, b.weight_)


def test_different_seeds_and_unseeded_runs_shuffle_differently(separable):
    X, y = separable
    weights = [WidrowHoff(epochs=3, seed=s).fit(X, y).weight_ for s in (1, 2, None)]
    assert not np.array_equal(weights[0], weights[1])
    assert not np.array_equal(weights[0], weights[2])


def test_no_shuffle_is_deterministic_without_seed(separable):
    X, y = separable
    a = WidrowHoff(epochs=3, shuffle=False).fit(X, y)
    b = WidrowHoff(epochs=3, shuffle=False).fit(X, y)
    np.testing.assert_array_equal(a.weight_, b.weight_)


@pytest.mark.parametrize("rule", RULES)
def test_accepts_tensor_like_inputs(rule, separable):
    X, y = separable
    plain = rule(seed=0).fit(X, y)
    wrapped = rule(seed=0).fit(FakeTensor(X), FakeTensor(y))
    np.testing.assert_array_equal(wrapped.weight_, plain.weight_)
    assert wrapped.score(FakeTensor(X), FakeTensor(y)) == plain.score(X, y)
    assert rule(epochs=1).fit(X.astype(np.float32), y).weight_.dtype == np.float64


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.zeros(4), np.zeros(4), "X must be 2-D"),
        (np.zeros((0, 2)), np.zeros(0), "X has no samples"),
        (np.zeros((4, 2)), np.zeros(3), "X has 4 samples but y has 3"),
        (np.zeros((4, 2)), np.zeros((4, 1)), "y must be 1-D"),
        (np.array([[0.0, np.nan]] * 2), np.zeros(2), "X contains NaN or Inf"),
        (np.zeros((2, 2)), np.array([0.0, np.inf]), "y contains NaN or Inf"),
        ([["a", "b"]], [0], "X must be an array of numbers"),
    ],
)
def test_fit_rejects_bad_input(rule, X, y, message):
    with pytest.raises((ValueError, TypeError), match=message):
        rule().fit(X, y)


@pytest.mark.parametrize("rule", RULES)
def test_predict_before_fit(rule):
    for method in (rule().predict, rule().decision_function):
        with pytest.raises(RuntimeError, match="not fitted yet; call fit"):
            method(XOR_X)


@pytest.mark.parametrize("rule", RULES)
def test_wrong_feature_count(rule):
    model = rule(epochs=1).fit(XOR_X, XOR_Y)
    with pytest.raises(ValueError, match="X has 3 features but .* fitted with 2"):
        model.predict(np.zeros((2, 3)))


@pytest.mark.parametrize("rule", RULES)
def test_score_rejects_labels_outside_the_fitted_coding(rule):
    model = rule(epochs=1).fit(XOR_X, XOR_Y)
    with pytest.raises(ValueError, match=r"y has labels outside \[0, 1\]"):
        model.score(XOR_X, 2 * XOR_Y - 1)


@pytest.mark.parametrize("y", [[0, 1, 2, 0], [-1, 0, 1, 1], [0.5, 1, 0, 1]])
def test_perceptron_rejects_other_targets(y):
    with pytest.raises(ValueError, match=r"targets must be \{0, 1\} or \{-1, 1\}; got"):
        Perceptron().fit(XOR_X, y)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0.0}, "lr must be a positive finite number"),
        ({"lr": float("nan")}, "lr must be a positive finite number"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"epochs": 2.5}, "epochs must be a positive integer"),
        ({"seed": -1}, "seed must be a non-negative integer or None"),
        ({"seed": "7"}, "seed must be a non-negative integer or None"),
    ],
)
def test_rejects_bad_hyperparameters(rule, kwargs, message):
    with pytest.raises(ValueError, match=message):
        rule(**kwargs)


def test_widrow_hoff_reports_divergence(separable):
    X, y = separable
    with pytest.raises(RuntimeError, match="diverged in epoch .*lower lr or scale X"):
        WidrowHoff(lr=5.0, seed=0).fit(X * 100, y)


def test_linearly_separable_problem_shape_and_margin():
    X, y = linearly_separable_problem(n=51, seed=4)
    assert X.shape == (51, 2) and X.dtype == np.float64 and y.dtype == np.int64
    assert set(y.tolist()) == {0, 1} and abs(int(y.sum()) - 25) <= 1
    assert np.all(np.linalg.norm(X, axis=1) < 2)
    again = linearly_separable_problem(n=51, seed=4)
    np.testing.assert_array_equal(X, again[0])
    np.testing.assert_array_equal(y, again[1])


def test_xor_problem():
    X, y = xor_problem(n=4)
    order = np.lexsort((X[:, 1], X[:, 0]))
    np.testing.assert_array_equal(X[order], XOR_X)
    np.testing.assert_array_equal(y[order], XOR_Y)
    X, y = xor_problem(n=200, noise=0.1, seed=2)
    assert X.shape == (200, 2) and X.dtype == np.float64 and y.dtype == np.int64
    assert np.array_equal(y, np.round(X[:, 0]).astype(int) ^ np.round(X[:, 1]).astype(int))
    assert 0 < np.abs(X - np.round(X)).max() < 0.5
    np.testing.assert_array_equal(X, xor_problem(n=200, noise=0.1, seed=2)[0])


@pytest.mark.parametrize(
    ("make", "kwargs", "message"),
    [
        (linearly_separable_problem, {"n": 0}, "n must be a positive integer"),
        (xor_problem, {"n": 2.0}, "n must be a positive integer"),
        (xor_problem, {"noise": -0.1}, "noise must be a non-negative finite number"),
    ],
)
def test_toy_problems_reject_bad_arguments(make, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)
