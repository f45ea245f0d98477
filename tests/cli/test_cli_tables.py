"""End to end: `chainrule train/evaluate/predict` on small generated CSV tables (classification
and regression, categorical columns, missing values, an unseen category), run in-process."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from chainrule.data import make_tabular_csv

PNG = b"\x89PNG\r\n\x1a\n"
FAST = ["--epochs", "3", "--hidden", "16,8", "--lr", "0.01", "--quiet", "--seed", "0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Training and new data for both tasks; the new classification data has a seat class
    ("First") that training never saw."""
    root = tmp_path_factory.mktemp("tables")
    paths = {
        "cls": make_tabular_csv(root / "cls.csv", n=160, seed=0),
        "reg": make_tabular_csv(root / "reg.csv", n=160, task="regression", seed=0),
        "reg_new": make_tabular_csv(root / "reg_new.csv", n=30, task="regression", seed=2),
    }
    new = pd.read_csv(make_tabular_csv(root / "tmp.csv", n=30, seed=1))
    new.loc[[0, 3], "seat_class"] = "First"
    new.to_csv(root / "cls_new.csv", index=False)
    new.drop(columns=["satisfaction"]).to_csv(root / "cls_unlabelled.csv", index=False)
    paths["cls_new"] = root / "cls_new.csv"
    paths["cls_unlabelled"] = root / "cls_unlabelled.csv"
    return {"root": root, **paths}


@pytest.fixture(scope="module")
def cls_model(data: dict, ok) -> tuple:
    out = data["root"] / "cls-model"
    stdout, stderr = ok("train", data["cls"], "--target", "satisfaction", *FAST, "--out", out)
    return out, stdout, stderr


@pytest.fixture(scope="module")
def reg_model(data: dict, ok) -> tuple:
    out = data["root"] / "reg-model"
    stdout, stderr = ok("train", data["reg"], "--target", "satisfaction_score", *FAST,
                        "--out", out)
    return out, stdout, stderr


def check_model_dir(out, task: str) -> dict:
    """The files train promises, each readable; returns metrics.json."""
    import safetensors.numpy

    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "model.json", "metrics.json", "history.json",
            "report.txt", "plots"} <= names
    assert not [n for n in names if n.startswith(".")]  # no temp files left
    weights = safetensors.numpy.load_file(out / "model.safetensors")
    assert weights and all(np.isfinite(w).all() for w in weights.values())
    meta = json.loads((out / "model.json").read_text())
    assert meta["format"] == "chainrule-model" and meta["task"] == task
    metrics = json.loads((out / "metrics.json").read_text())
    score = "accuracy" if task == "classification" else "r2"
    assert metrics["task"] == task
    for split in ("train", "validation"):
        assert np.isfinite(metrics[split]["loss"]) and np.isfinite(metrics[split][score])
    history = json.loads((out / "history.json").read_text())
    assert history  # one record per epoch, in whatever layout History uses
    assert "Overfitting report" in (out / "report.txt").read_text()
    plots = sorted((out / "plots").glob("*.png"))
    assert len(plots) >= 3
    for p in plots:
        assert p.read_bytes()[:8] == PNG
    return metrics


def test_train_classification_writes_model_dir(cls_model: tuple) -> None:
    out, stdout, stderr = cls_model
    metrics = check_model_dir(out, "classification")
    assert metrics["train"]["accuracy"] > 0.5
    assert metrics["epochs_run"] == 3
    assert "Overfitting report" in stdout and f"written to {out}" in stdout
    assert "missing value(s)" in stderr  # imputation is reported, not silent


def test_evaluate_plain_and_json(cls_model: tuple, data: dict, ok) -> None:
    out, _, _ = cls_model
    text, err = ok("evaluate", out, data["cls_new"])
    assert "30 samples, task classification" in text and "accuracy" in text
    assert "not seen in training" in err  # the unseen seat class is reported
    text, _ = ok("evaluate", out, data["cls_new"], "--json")
    result = json.loads(text)
    assert result["task"] == "classification" and result["n"] == 30
    assert 0 <= result["accuracy"] <= 1 and result["loss"] > 0


def test_predict_stdout_and_file(cls_model: tuple, data: dict, ok) -> None:
    out, _, _ = cls_model
    text, err = ok("predict", out, data["cls_unlabelled"])
    pred = pd.read_csv(io.StringIO(text))
    assert len(pred) == 30
    assert set(pred["prediction"]) <= {"satisfied", "neutral or dissatisfied"}
    probs = pred[["p_neutral or dissatisfied", "p_satisfied"]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    assert "not seen in training" in err
    target = data["root"] / "predictions.csv"
    text, err = ok("predict", out, data["cls_new"], "-o", target)
    assert text == "" and f"written to {target}" in err
    from_file = pd.read_csv(target)
    assert len(from_file) == 30 and "satisfaction" in from_file  # labelled rows keep the label
    assert list(from_file["prediction"]) == list(pred["prediction"])


def test_predict_keeps_rows_with_missing_target(cls_model: tuple, data: dict, ok) -> None:
    out, _, _ = cls_model
    frame = pd.read_csv(data["cls_new"])
    frame.loc[[1, 2], "satisfaction"] = None
    path = data["root"] / "partly_labelled.csv"
    frame.to_csv(path, index=False)
    text, _ = ok("predict", out, path)
    assert len(pd.read_csv(io.StringIO(text))) == 30
    result = json.loads(ok("evaluate", out, path, "--json")[0])
    assert result["n"] == 28


def test_regression_train_evaluate_predict(reg_model: tuple, data: dict, ok) -> None:
    out, _, _ = reg_model
    metrics = check_model_dir(out, "regression")
    assert {"r2", "mae"} <= set(metrics["validation"])
    result = json.loads(ok("evaluate", out, data["reg_new"], "--json")[0])
    assert result["task"] == "regression" and result["n"] == 30 and "r2" in result
    pred = pd.read_csv(io.StringIO(ok("predict", out, data["reg_new"])[0]))
    assert len(pred) == 30 and np.isfinite(pred["prediction"]).all()
    # predictions come back in the target's units (0-100), not standardised
    assert 5 < pred["prediction"].mean() < 95


def test_training_flags_reach_the_model(data: dict, ok) -> None:
    out = data["root"] / "flags"
    ok("train", data["cls"], "--target", "satisfaction", "--hidden", "12,6,4",
       "--activation", "tanh", "--init", "he_normal", "--optimizer", "sgd", "--lr", "0.05",
       "--prior", "gaussian:1.0", "--early-stopping", "1", "--epochs", "30", "--batch-size",
       "16", "--quiet", "--out", out)
    arch = json.loads((out / "model.json").read_text())["architecture"]
    assert arch["hidden"] == [12, 6, 4] and arch["activation"] == "tanh"
    assert arch["init"] == "he_normal"
    metrics = check_model_dir(out, "classification")
    assert metrics["epochs_run"] < 30  # early stopping with patience 1 stopped it
    history = json.loads((out / "history.json").read_text())
    assert "prior" in json.dumps(history)  # the MAP prior term is logged


def test_weight_decay_and_task_override(data: dict, ok) -> None:
    out = data["root"] / "wd"
    # wifi_service holds integers 0-5, detected as classes; --task regression overrides that
    ok("train", data["cls"], "--target", "wifi_service", "--task", "regression",
       "--weight-decay", "0.01", "--optimizer", "adamw", *FAST, "--out", out)
    metrics = check_model_dir(out, "regression")
    assert "r2" in metrics["train"]
    out2 = data["root"] / "wd-cls"
    ok("train", data["cls"], "--target", "wifi_service", *FAST, "--out", out2)
    meta = json.loads((out2 / "model.json").read_text())
    assert meta["task"] == "classification" and meta["classes"] == [0, 1, 2, 3, 4, 5]


def test_training_is_deterministic_and_retrain_replaces_model(data: dict, ok) -> None:
    out = data["root"] / "again"
    import safetensors.numpy

    ok("train", data["cls"], "--target", "satisfaction", *FAST, "--out", out)
    first = safetensors.numpy.load_file(out / "model.safetensors")
    (out / "plots" / "stale.png").write_bytes(PNG)
    ok("train", data["cls"], "--target", "satisfaction", *FAST, "--out", out)
    # same weights bit for bit (the file's header may order its metadata differently)
    second = safetensors.numpy.load_file(out / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert not (out / "plots" / "stale.png").exists()  # replaced whole, not merged
    assert not [p for p in data["root"].iterdir() if p.name.startswith(".again")]
