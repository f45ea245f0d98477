"""Tests for chainrule.data.tabular: reading tables, preprocessing, train/validation splits."""

import json
import sys

import numpy as np
import pytest

from chainrule.data.errors import DataError
from chainrule.data.tabular import TabularPreprocessor, read_table, train_val_split

pd = pytest.importorskip("pandas")


def frame():
    """A small mixed table: numeric, text, bool features and a text target, with gaps."""
    return pd.DataFrame({
        "distance": [100.0, 250.0, np.nan, 400.0, 1000.0, 700.0, 300.0, np.nan],
        "seat": ["Eco", "Business", "Eco", None, "Eco", "Business", "Eco Plus", "Eco"],
        "member": [True, False, True, True, False, True, False, True],
        "food": [1, 2, 3, 4, 5, 3, 2, 1],
        "label": ["yes", "no", "yes", "no", None, "yes", "no", "yes"],
    })


# ---- read_table --------------------------------------------------------------------------


def test_read_csv_and_parquet_round_trip(tmp_path):
    df = frame()
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet")
    df.to_parquet(tmp_path / "t.pq")
    from_csv = read_table(tmp_path / "t.csv")
    assert list(from_csv.columns) == list(df.columns) and len(from_csv) == 8
    for name in ("t.parquet", "t.pq"):
        pd.testing.assert_frame_equal(read_table(str(tmp_path / name)), df)


def test_read_table_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a directory"):
        read_table(tmp_path)
    (tmp_path / "t.xlsx").write_text("a\n1\n")
    with pytest.raises(DataError, match=r"unsupported file type '\.xlsx'; use \.csv"):
        read_table(tmp_path / "t.xlsx")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="is empty"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="has no data rows"):
        read_table(tmp_path / "header.csv")
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataError, match=r"cannot read .*ragged\.csv as CSV: .*Expected 2 fields"):
        read_table(tmp_path / "ragged.csv")
    (tmp_path / "bad.parquet").write_bytes(b"this is not parquet at all")
    with pytest.raises(DataError, match=r"cannot read .*bad\.parquet as Parquet: "):
        read_table(tmp_path / "bad.parquet")


def test_errors_are_one_line(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"\x00garbage\x00" * 50)
    with pytest.raises(DataError) as info:
        read_table(tmp_path / "bad.parquet")
    assert "\n" not in str(info.value) and isinstance(info.value, ValueError)


def test_missing_pandas_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r'pip install "chainrule\[full\]"'):
        read_table(tmp_path / "t.csv")


# ---- target and task ---------------------------------------------------------------------


def test_unknown_target_lists_columns():
    with pytest.raises(DataError, match="target column 'satisfied' not found; columns are: "
                                        "distance, seat, member, food, label"):
        TabularPreprocessor("satisfied").fit(frame())


@pytest.mark.parametrize(("target", "task", "classes"), [
    (["a", "b", "a", "b", "a", "b"], "classification", ["a", "b"]),
    ([True, False, True, True, False, True], "classification", [False, True]),
    ([1, 2, 1, 2, 3, 3], "classification", [1, 2, 3]),
    ([1.0, 2.0, 1.0, 2.0, np.nan, 2.0], "classification", [1, 2]),
    ([1, 2, 3, 4, 5, 5], "regression", None),  # 5 distinct of 6 rows: more than half
    ([0.5, 1.5, 0.5, 1.5, 0.5, 1.5], "regression", None),
    (list(range(30)) * 2, "regression", None),  # 30 distinct > 20
])
def test_task_detection(target, task, classes):
    df = pd.DataFrame({"x": np.arange(len(target), dtype=float), "t": target})
    pre = TabularPreprocessor("t", verbose=False).fit(df)
    assert pre.task == task and pre.classes_ == classes
    assert all(type(c) is type(classes[0]) for c in pre.classes_ or [])  # plain Python values


def test_task_override():
    df = pd.DataFrame({"x": [1.0, 2, 3, 4], "t": [0.5, 1.5, 0.5, 1.5]})
    pre = TabularPreprocessor("t", task="classification").fit(df)
    assert pre.classes_ == [0.5, 1.5] and pre.n_outputs == 2
    assert pre.transform(df)[1].tolist() == [0, 1, 0, 1]
    df = pd.DataFrame({"x": [1.0, 2, 3, 4], "t": [1, 2, 1, 2]})
    pre = TabularPreprocessor("t", task="regression").fit(df)
    assert pre.task == "regression" and pre.classes_ is None and pre.n_outputs == 1


def test_task_errors():
    with pytest.raises(ValueError, match="task must be 'classification', 'regression' or None"):
        TabularPreprocessor("t", task="ranking")
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "t": ["a", "a", "a"]})
    with pytest.raises(DataError, match="target column 't' has a single class \\('a'\\)"):
        TabularPreprocessor("t").fit(df)
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "t": ["a", "b", "a"]})
    with pytest.raises(DataError, match="target column 't' is not numeric .*use task='classif"):
        TabularPreprocessor("t", task="regression").fit(df)
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "t": [None, None, None]})
    with pytest.raises(DataError, match="target column 't' has no values"):
        TabularPreprocessor("t").fit(df)
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "t": [1.0, np.inf, 2.0]})
    with pytest.raises(DataError, match="target column 't' contains infinite values"):
        TabularPreprocessor("t").fit(df)
    with pytest.raises(DataError, match="no columns besides target 't'"):
        TabularPreprocessor("t").fit(df[["t"]])


def test_rows_without_target_are_dropped_with_a_count(capsys):
    pre = TabularPreprocessor("label")
    X, y = pre.fit_transform(frame())
    assert X.shape[0] == 7 and y.shape == (7,)
    assert "dropped 1 row(s) whose target 'label' is missing" in capsys.readouterr().err


def test_classification_labels_and_inverse():
    pre = TabularPreprocessor("label", verbose=False)
    _, y = pre.fit_transform(frame())
    assert pre.classes_ == ["no", "yes"] and y.dtype == np.int64
    assert y.tolist() == [1, 0, 1, 0, 1, 0, 1]
    labels = ["yes", "no", "yes", "no", "yes", "no", "yes"]
    assert pre.inverse_transform_target(y).tolist() == labels
    with pytest.raises(TypeError, match="pass integer class indices"):
        pre.inverse_transform_target(np.array([0.3]))
    with pytest.raises(ValueError, match=r"class indices must be in 0\.\.1"):
        pre.inverse_transform_target([2])
    with pytest.raises(DataError, match="target column 'label' has value 'maybe' that was not a "
                                        "class in training \\('no', 'yes'\\)"):
        pre.transform(frame().assign(label="maybe"))


def test_regression_target_is_float32_with_stats():
    df = pd.DataFrame({"x": [1.0, 2, 3, 4, 5], "price": [10.0, 20.5, 30.0, 15.0, 99.5]})
    pre = TabularPreprocessor("price", verbose=False)
    _, y = pre.fit_transform(df)
    assert pre.task == "regression" and y.dtype == np.float32
    np.testing.assert_allclose(y, df["price"].to_numpy(), rtol=1e-6)
    assert pre.target_mean == pytest.approx(35.0)
    assert pre.target_std == pytest.approx(np.std([10.0, 20.5, 30.0, 15.0, 99.5]))
    assert pre.inverse_transform_target(y).dtype == np.float32
    with pytest.raises(DataError, match="column 'price' should hold numbers but contains 'lots'"):
        pre.transform(df.astype({"price": object}).assign(price=[1.0, "lots", 3.0, 4.0, 5.0]))


# ---- feature columns ---------------------------------------------------------------------


def test_numeric_imputation_and_standardisation(capsys):
    pre = TabularPreprocessor("label")
    X, _ = pre.fit_transform(frame())
    err = capsys.readouterr().err
    # row 4 (label missing) is dropped before statistics: medians come from the 7 kept rows
    assert "column 'distance': filled 2 missing value(s) with the training median 300" in err
    assert "column 'seat': filled 1 missing value(s) with the most frequent training value 'Eco'" \
        in err
    distance = X[:, pre.feature_names.index("distance")]
    assert distance.mean() == pytest.approx(0.0, abs=1e-6)
    assert distance.std() == pytest.approx(1.0, abs=1e-5)
    assert X.dtype == np.float32 and not np.isnan(X).any()


def test_constant_column_has_unit_std():
    df = pd.DataFrame({"c": [5.0, 5.0, 5.0, 5.0], "t": ["a", "b", "a", "b"]})
    pre = TabularPreprocessor("t").fit(df)
    assert pre.to_dict()["columns"][0]["std"] == 1.0
    assert pre.transform(df)[0].tolist() == [[0.0]] * 4


def test_one_hot_and_feature_names():
    pre = TabularPreprocessor("label", verbose=False)
    X, _ = pre.fit_transform(frame())
    assert pre.feature_names == ["distance", "seat=Business", "seat=Eco", "seat=Eco Plus",
                                 "member=False", "member=True", "food"]
    assert pre.n_features == X.shape[1] == 7 and pre.n_outputs == 2
    seat = X[:, 1:4]
    assert seat.sum(axis=1).tolist() == [1.0] * 7
    assert seat[1].tolist() == [1.0, 0.0, 0.0]  # Business
    assert seat[3].tolist() == [0.0, 1.0, 0.0]  # missing -> most frequent 'Eco'


def test_unseen_categories_become_zeros_with_a_note(capsys):
    pre = TabularPreprocessor("label").fit(frame())
    new = frame().drop(columns="label").iloc[:3].assign(seat=["First", "Eco", "Lounge"])
    X, y = pre.transform(new)
    assert y is None
    assert X[0, 1:4].tolist() == [0, 0, 0] and X[2, 1:4].tolist() == [0, 0, 0]
    assert X[1, 1:4].tolist() == [0, 1, 0]
    err = capsys.readouterr().err
    assert "column 'seat': 2 value(s) not seen in training (e.g. 'First') encoded as all zeros" \
        in err


def test_text_in_numeric_column_names_column_and_value():
    df = pd.DataFrame({"age": ["12", "abc", "7", "30"], "t": ["a", "b", "a", "b"]})
    with pytest.raises(DataError, match="column 'age' should hold numbers but contains 'abc'"):
        TabularPreprocessor("t").fit(df)


def test_number_like_text_is_numeric_and_mostly_text_is_categorical():
    df = pd.DataFrame({"age": ["12", "40", "7", None], "code": ["A1", "B2", "3", "A1"],
                       "t": ["a", "b", "a", "b"]})
    pre = TabularPreprocessor("t", verbose=False).fit(df)
    assert pre.feature_names == ["age", "code=3", "code=A1", "code=B2"]


def test_infinity_names_the_column():
    df = pd.DataFrame({"x": [1.0, np.inf, 2.0, 3.0], "t": ["a", "b", "a", "b"]})
    with pytest.raises(DataError, match="column 'x' contains infinite values"):
        TabularPreprocessor("t").fit(df)
    pre = TabularPreprocessor("t").fit(df.assign(x=[1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(DataError, match="column 'x' contains infinite values"):
        pre.transform(df)


def test_column_order_and_missing_columns():
    pre = TabularPreprocessor("label", verbose=False)
    X, _ = pre.fit_transform(frame())
    shuffled = frame()[["food", "label", "member", "seat", "distance"]].assign(extra=1)
    np.testing.assert_array_equal(pre.transform(shuffled)[0], X)
    with pytest.raises(DataError, match="column\\(s\\) 'seat', 'food' missing; the preprocessor "
                                        "was fitted with them"):
        pre.transform(frame().drop(columns=["seat", "food"]))


def test_bad_columns():
    base = {"t": ["a", "b", "a"]}
    with pytest.raises(DataError, match="column 'x' has no values; drop it"):
        TabularPreprocessor("t").fit(pd.DataFrame({"x": [np.nan] * 3, **base}))
    with pytest.raises(DataError, match="column 'x' has no values; drop it"):
        TabularPreprocessor("t").fit(pd.DataFrame({"x": [None] * 3, **base}))
    when = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"])
    with pytest.raises(DataError, match="column 'when' has unsupported type datetime64"):
        TabularPreprocessor("t").fit(pd.DataFrame({"when": when, **base}))
    twice = pd.DataFrame([[1, 2, "a"], [3, 4, "b"]], columns=["x", "x", "t"])
    with pytest.raises(DataError, match="column 'x' appears more than once"):
        TabularPreprocessor("t").fit(twice)
    with pytest.raises(TypeError, match="expected a pandas DataFrame, got dict"):
        TabularPreprocessor("t").fit(base)


def test_unfitted_and_quiet(capsys):
    pre = TabularPreprocessor("label", verbose=False)
    with pytest.raises(RuntimeError, match="not fitted; call fit\\(df\\) first"):
        pre.transform(frame())
    with pytest.raises(RuntimeError, match="not fitted"):
        pre.to_dict()
    pre.fit_transform(frame())
    assert capsys.readouterr().err == ""
    assert "7 features" in repr(pre)


# ---- persistence -------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip_gives_identical_transform():
    pre = TabularPreprocessor("label", verbose=False).fit(frame())
    saved = json.loads(json.dumps(pre.to_dict()))
    again = TabularPreprocessor.from_dict(saved, verbose=False)
    new = frame().assign(seat=["Eco", "First", None, "Eco", "Eco", "Business", "Eco", "Eco"])
    X1, y1 = pre.transform(new)
    X2, y2 = again.transform(new)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert again.classes_ == pre.classes_ and again.feature_names == pre.feature_names
    assert again.task == "classification" and saved["target_mean"] is None


def test_round_trip_keeps_class_types_and_target_stats():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "t": [3, 7, 3, 7]})
    pre = TabularPreprocessor("t").fit(df)
    again = TabularPreprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    assert again.classes_ == [3, 7] and again.inverse_transform_target([1, 0]).tolist() == [7, 3]
    reg = TabularPreprocessor("t", task="regression").fit(df)
    saved = json.loads(json.dumps(reg.to_dict()))
    assert saved["target_mean"] == 5.0 and saved["target_std"] == 2.0


def test_from_dict_rejects_other_dicts():
    with pytest.raises(DataError, match="not a saved TabularPreprocessor"):
        TabularPreprocessor.from_dict({"size": [8, 8]})
    saved = TabularPreprocessor("label", verbose=False).fit(frame()).to_dict()
    del saved["columns"]
    with pytest.raises(DataError, match="saved TabularPreprocessor is missing 'columns'"):
        TabularPreprocessor.from_dict(saved)


# ---- train_val_split ---------------------------------------------------------------------


def test_split_is_deterministic_disjoint_and_complete():
    train, val = train_val_split(100, 0.25, seed=3)
    assert len(val) == 25 and len(train) == 75 and train.dtype == val.dtype == np.int64
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(100))
    again = train_val_split(100, 0.25, seed=3)
    np.testing.assert_array_equal(again[1], val)
    assert not np.array_equal(train_val_split(100, 0.25, seed=4)[1], val)
    assert len(train_val_split(2, 0.1)[1]) == 1  # never an empty validation part


def test_stratified_split_keeps_class_shares():
    labels = np.array([0] * 80 + [1] * 20)
    train, val = train_val_split(100, 0.2, seed=0, stratify=labels)
    assert (labels[val] == 1).sum() == 4 and (labels[val] == 0).sum() == 16
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 100
    text = np.array(["b", "a"] * 10)
    np.testing.assert_array_equal(train_val_split(20, stratify=text)[1],
                                  train_val_split(20, stratify=text)[1])


def test_split_errors():
    with pytest.raises(ValueError, match="val_fraction must be between 0 and 1"):
        train_val_split(10, 1.0)
    with pytest.raises(ValueError, match="need at least 2 rows"):
        train_val_split(1)
    with pytest.raises(ValueError, match="stratify has shape \\(3,\\) for 10 rows"):
        train_val_split(10, stratify=[0, 1, 0])
    with pytest.raises(DataError, match="leaves no validation rows"):
        train_val_split(4, 0.1, stratify=[0, 0, 1, 1])
