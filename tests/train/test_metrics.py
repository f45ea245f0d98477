"""Metrics in chainrule.train.metrics agree with scikit-learn's."""

import numpy as np
import pytest

import chainrule
from chainrule.train.metrics import METRICS, accuracy, f1, get_metric, mae, mse, r2

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 6))
    t = rng.integers(0, k, 200)
    p = np.where(rng.random(200) < 0.6, t, rng.integers(0, k + 1, 200))  # an extra class too
    assert accuracy(t, p) == pytest.approx(sklearn_metrics.accuracy_score(t, p))
    expected = sklearn_metrics.f1_score(t, p, average="macro", zero_division=0)
    assert f1(t, p) == pytest.approx(expected)


def test_f1_with_string_labels_and_a_class_never_predicted():
    t = np.array(["cat", "dog", "dog", "cat", "bird"])
    p = np.array(["cat", "dog", "cat", "cat", "dog"])
    expected = sklearn_metrics.f1_score(t, p, average="macro", zero_division=0)
    assert f1(t, p) == pytest.approx(expected)


@pytest.mark.parametrize("shape", [(100,), (100, 1), (100, 3)])
def test_regression_metrics_match_sklearn(shape):
    rng = np.random.default_rng(1)
    t = rng.normal(size=shape)
    p = t + 0.5 * rng.normal(size=shape)
    assert mse(t, p) == pytest.approx(sklearn_metrics.mean_squared_error(t, p))
    assert mae(t, p) == pytest.approx(sklearn_metrics.mean_absolute_error(t, p))
    assert r2(t, p) == pytest.approx(sklearn_metrics.r2_score(t, p))


def test_column_vector_against_flat_vector_and_tensors():
    t = np.linspace(0, 1, 20)
    p = t[:, None] ** 2
    assert r2(chainrule.tensor(t), chainrule.tensor(p)) == pytest.approx(
        sklearn_metrics.r2_score(t, p[:, 0]), rel=1e-6)


def test_constant_target_r2_follows_sklearn():
    t = np.ones(5)
    assert r2(t, t) == sklearn_metrics.r2_score(t, t) == 1.0
    assert r2(t, t + 1) == sklearn_metrics.r2_score(t, t + 1) == 0.0


def test_errors_and_registry():
    assert set(METRICS) == {"accuracy", "f1", "mse", "mae", "r2"}
    assert get_metric("r2") is r2
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        get_metric("auc")
    with pytest.raises(ValueError, match="shape"):
        accuracy([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="zero samples"):
        mse([], [])
