"""Tests for chainrule.data.datasets: bundled sets, toy problems and generated files."""

import sys

import numpy as np
import pytest

from chainrule.data.datasets import (
    load_diabetes,
    load_digits,
    make_image_folder,
    make_moons,
    make_spirals,
    make_tabular_csv,
    make_xor,
)
from chainrule.data.images import read_image_folder
from chainrule.data.tabular import TabularPreprocessor, read_table

pytest.importorskip("sklearn")


def test_digits():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert X.min() == 0.0 and X.max() == 1.0
    assert y.dtype == np.int64 and sorted(set(y.tolist())) == list(range(10))
    images, y2 = load_digits(as_images=True)
    assert images.shape == (1797, 1, 8, 8)
    np.testing.assert_array_equal(images.reshape(1797, 64), X)
    np.testing.assert_array_equal(y, y2)


def test_diabetes():
    X, y = load_diabetes()
    assert X.shape == (442, 10) and X.dtype == np.float32 and y.dtype == np.float32
    np.testing.assert_allclose(X.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(X.std(0), 1, atol=1e-5)
    assert 25 <= y.min() and y.max() <= 346


def test_missing_sklearn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r'scikit-learn is needed .*"chainrule\[full\]"'):
        load_digits()


@pytest.mark.parametrize(("make", "n", "classes"), [
    (lambda seed: make_xor(300, 0.1, seed), 300, 2),
    (lambda seed: make_moons(300, 0.1, seed), 300, 2),
    (lambda seed: make_spirals(100, 3, 0.2, seed), 300, 3),
])
def test_toy_problems_shapes_and_determinism(make, n, classes):
    X, y = make(0)
    assert X.shape == (n, 2) and X.dtype == np.float32 and y.dtype == np.int64
    assert sorted(set(y.tolist())) == list(range(classes))
    X_again, y_again = make(0)
    np.testing.assert_array_equal(X, X_again)
    np.testing.assert_array_equal(y, y_again)
    assert not np.array_equal(make(1)[0], X)


def test_xor_is_xor_without_noise():
    X, y = make_xor(100, noise=0.0)
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] < 0).astype(np.int64))


def test_toy_argument_errors():
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        make_xor(0)
    with pytest.raises(ValueError, match="noise must be >= 0, got -0.1"):
        make_moons(10, noise=-0.1)
    with pytest.raises(ValueError, match="n_classes must be at least 2"):
        make_spirals(10, n_classes=1)


# ---- generated CSV -----------------------------------------------------------------------


def test_tabular_csv_classification(tmp_path):
    path = make_tabular_csv(tmp_path / "sub" / "air.csv", n=400, seed=1)
    assert [p.name for p in path.parent.iterdir()] == ["air.csv"]  # no temp file left behind
    df = read_table(path)
    assert len(df) == 400 and df.columns[-1] == "satisfaction"
    assert {"food_quality", "flight_distance", "seat_class", "departure_delay_min"} <= set(df)
    assert set(df["satisfaction"]) == {"satisfied", "neutral or dissatisfied"}
    assert df["food_quality"].dropna().between(1, 5).all()
    for column in ("departure_delay_min", "seat_class", "food_quality"):
        assert df[column].isna().sum() > 0, column
    pre = TabularPreprocessor("satisfaction", verbose=False)
    X, y = pre.fit_transform(df)
    assert pre.task == "classification" and X.shape == (400, 13)
    # the target is learnable from the features: a least-squares fit beats chance clearly
    A = np.c_[X, np.ones(len(X))]
    w = np.linalg.lstsq(A[:300], y[:300] * 2.0 - 1, rcond=None)[0]
    assert ((A[300:] @ w > 0) == y[300:]).mean() > 0.75


def test_tabular_csv_regression_and_determinism(tmp_path):
    first = make_tabular_csv(tmp_path / "a.csv", n=50, task="regression", seed=3).read_bytes()
    assert make_tabular_csv(tmp_path / "b.csv", n=50, task="regression", seed=3).read_bytes() \
        == first
    assert make_tabular_csv(tmp_path / "c.csv", n=50, task="regression", seed=4).read_bytes() \
        != first
    df = read_table(tmp_path / "a.csv")
    assert "satisfaction_score" in df and df["satisfaction_score"].between(0, 100).all()
    assert TabularPreprocessor("satisfaction_score", verbose=False).fit(df).task == "regression"


def test_tabular_csv_errors(tmp_path):
    with pytest.raises(ValueError, match="task must be 'classification' or 'regression'"):
        make_tabular_csv(tmp_path / "a.csv", task="ranking")
    with pytest.raises(ValueError, match="should end in .csv"):
        make_tabular_csv(tmp_path / "a.parquet")


# ---- generated image folder --------------------------------------------------------------


def test_image_folder_layout_and_determinism(tmp_path):
    root = make_image_folder(tmp_path / "a", n_per_class=3, size=(12, 10), seed=5)
    assert sorted(p.name for p in root.iterdir()) == ["horizontal", "vertical"]
    assert sorted(p.name for p in (root / "vertical").iterdir()) == [
        "vertical_000.png", "vertical_001.png", "vertical_002.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["a"]  # the temporary folder was renamed
    again = make_image_folder(tmp_path / "b", n_per_class=3, size=(12, 10), seed=5)
    for name in ("horizontal/horizontal_002.png", "vertical/vertical_000.png"):
        assert (root / name).read_bytes() == (again / name).read_bytes()
    X, _, _ = read_image_folder(root, size=(12, 10))
    assert X.shape == (6, 3, 12, 10)


def test_image_classes_are_visually_distinct(tmp_path):
    root = make_image_folder(tmp_path / "s", n_per_class=10, size=16, n_classes=3)
    X, y, names = read_image_folder(root, size=16, grayscale=True)
    assert names == ["circle", "horizontal", "vertical"]
    img = X[:, 0]
    down = np.abs(np.diff(img, axis=1)).mean(axis=(1, 2))  # changes going down the rows
    across = np.abs(np.diff(img, axis=2)).mean(axis=(1, 2))
    assert (down[y == 1] > 2 * across[y == 1]).all()  # horizontal stripes
    assert (across[y == 2] > 2 * down[y == 2]).all()  # vertical stripes
    assert (np.abs(down[y == 0] - across[y == 0]) < 0.5 * down[y == 0]).all()  # discs


def test_image_folder_refuses_to_overwrite(tmp_path):
    (tmp_path / "empty").mkdir()
    assert make_image_folder(tmp_path / "empty", n_per_class=1, size=4).is_dir()
    with pytest.raises(FileExistsError, match="already exists; remove it or choose a new path"):
        make_image_folder(tmp_path / "empty", n_per_class=1, size=4)
    with pytest.raises(ValueError, match="n_classes must be 2 or 3"):
        make_image_folder(tmp_path / "x", n_classes=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
