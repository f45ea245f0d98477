"""End to end: `chainrule train/evaluate/predict` on a generated image folder (a small conv
net), including unreadable files that are skipped with a warning."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chainrule.data import make_image_folder

PNG = b"\x89PNG\r\n\x1a\n"
FAST = ["--image-size", "16", "--epochs", "2", "--hidden", "16", "--lr", "0.01",
        "--batch-size", "8", "--quiet"]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("images")
    train = make_image_folder(root / "train", n_per_class=10, size=16, seed=0)
    new = make_image_folder(root / "new", n_per_class=4, size=20, seed=1)  # resized on read
    (train / "horizontal" / "notes.txt").write_text("not an image")
    (train / "vertical" / "broken.png").write_bytes(PNG + b"truncated")
    return {"root": root, "train": train, "new": new}


@pytest.fixture(scope="module")
def model(images: dict[str, Path], ok) -> tuple[Path, str, str]:
    out = images["root"] / "model"
    stdout, stderr = ok("train", images["train"], *FAST, "--out", out)
    return out, stdout, stderr


def test_train_on_images(model: tuple[Path, str, str]) -> None:
    import safetensors.numpy

    out, stdout, stderr = model
    assert "conv net" in stdout
    warning = [line for line in stderr.splitlines() if line.startswith("chainrule: warning:")]
    assert len(warning) == 1 and "skipped 2 unreadable" in warning[0]
    meta = json.loads((out / "model.json").read_text())
    assert meta["task"] == "classification" and meta["architecture"]["kind"] == "convnet"
    assert meta["architecture"]["input_shape"] == [3, 16, 16]
    assert meta["classes"] == ["horizontal", "vertical"]
    weights = safetensors.numpy.load_file(out / "model.safetensors")
    assert any(w.ndim == 4 for w in weights.values())  # convolution kernels
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("train", "validation"):
        assert {"loss", "accuracy"} <= set(metrics[split])
    assert json.loads((out / "history.json").read_text())
    assert (out / "report.txt").read_text()
    plots = list((out / "plots").glob("*.png"))
    assert len(plots) >= 3 and all(p.read_bytes()[:8] == PNG for p in plots)


def test_evaluate_on_images(model: tuple[Path, str, str], images: dict[str, Path], ok) -> None:
    out, _, _ = model
    result = json.loads(ok("evaluate", out, images["new"], "--json")[0])
    assert result["task"] == "classification" and result["n"] == 8
    assert 0 <= result["accuracy"] <= 1
    text, _ = ok("evaluate", out, images["new"])
    assert "8 samples" in text


def test_predict_on_images(model: tuple[Path, str, str], images: dict[str, Path], ok) -> None:
    out, _, _ = model
    pred = pd.read_csv(io.StringIO(ok("predict", out, images["new"])[0]))
    assert len(pred) == 8 and set(pred["prediction"]) <= {"horizontal", "vertical"}
    np.testing.assert_allclose(pred[["p_horizontal", "p_vertical"]].sum(axis=1), 1, atol=1e-5)
    assert all(Path(f).suffix == ".png" for f in pred["file"])
    one = next((images["new"] / "vertical").iterdir())
    target = images["root"] / "one.csv"
    ok("predict", out, one, "-o", target)
    single = pd.read_csv(target)
    assert len(single) == 1 and single["file"][0] == str(one)


def test_predict_skips_unreadable_images(model: tuple[Path, str, str],
                                         images: dict[str, Path], ok) -> None:
    out, _, _ = model
    loose = images["root"] / "loose"
    shutil.copytree(images["new"] / "horizontal", loose)
    (loose / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    text, err = ok("predict", out, loose)
    assert len(pd.read_csv(io.StringIO(text))) == 4
    assert "chainrule: warning: skipped 1 unreadable" in err


def test_image_model_with_bad_data(model: tuple[Path, str, str],
                                   images: dict[str, Path], run) -> None:
    out, _, _ = model
    table = images["root"] / "table.csv"
    table.write_text("a,b\n1,2\n")
    for command in ("evaluate", "predict"):
        code, _, err = run(command, out, table)
        assert code == 1 and err.startswith("chainrule: error:") and "images" in err
    junk = images["root"] / "junk"
    junk.mkdir()
    (junk / "a.png").write_bytes(b"junk")
    code, _, err = run("predict", out, junk)
    assert code == 1 and "no readable image" in err and len(err.splitlines()) == 1
    other = make_image_folder(images["root"] / "three", n_per_class=2, size=16, n_classes=3)
    shutil.rmtree(other / "vertical")
    code, _, err = run("evaluate", out, other)
    assert code == 1 and "vertical" in err  # a training class is missing from the folder


def test_grayscale(images: dict[str, Path], ok) -> None:
    out = images["root"] / "gray"
    ok("train", images["train"], *FAST, "--grayscale", "--out", out)
    meta = json.loads((out / "model.json").read_text())
    assert meta["architecture"]["input_shape"] == [1, 16, 16]
    assert json.loads(ok("evaluate", out, images["new"], "--json")[0])["n"] == 8


def test_corrupt_image_model(model: tuple[Path, str, str], images: dict[str, Path], run) -> None:
    out, _, _ = model
    for name, change, says in [
        ("size", lambda m: m["data"]["spec"].__setitem__("size", [20, 20]), "inputs of size"),
        ("names", lambda m: m["data"]["spec"].__setitem__("class_names", ["a", "b"]), "classes"),
        ("spec", lambda m: m["data"].__setitem__("spec", "square"), "preprocessing"),
        ("shape", lambda m: m["architecture"].__setitem__("input_shape", [3, 2, 2]), "input_shape"),
    ]:
        copy = images["root"] / f"corrupt-{name}"
        shutil.copytree(out, copy)
        meta = json.loads((copy / "model.json").read_text())
        change(meta)
        (copy / "model.json").write_text(json.dumps(meta))
        for command in ("evaluate", "predict"):
            code, _, err = run(command, copy, images["new"])
            assert code == 1 and err.startswith("chainrule: error:") and says in err, err
            assert len(err.splitlines()) == 1
