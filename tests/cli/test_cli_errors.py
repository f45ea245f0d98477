"""Bad input to `chainrule`: each case ends with one `chainrule: error:` line on stderr, a
non-zero exit code, no traceback, and no output left behind (a new --out is not created, an
existing one is untouched)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chainrule.data import make_image_folder, make_tabular_csv

FAST = ["--epochs", "1", "--hidden", "8", "--quiet"]


@pytest.fixture(scope="module")
def fails(run):
    """``fails(*args, status=1, says="")``: run a command that must fail cleanly; return its
    error line."""

    def check(*args: object, status: int = 1, says: str = "") -> str:
        code, _, err = run(*args)
        assert code == status, err
        assert "Traceback" not in err
        lines = err.strip().splitlines()
        errors = [line for line in lines if line.startswith("chainrule: error:")]
        assert len(errors) == 1 and lines[-1] == errors[0], err
        assert says.lower() in errors[0].lower(), errors[0]
        return errors[0]

    return check


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bad")


@pytest.fixture(scope="module")
def csv(root: Path) -> Path:
    return make_tabular_csv(root / "good.csv", n=80, seed=0)


@pytest.fixture(scope="module")
def model(root: Path, csv: Path, run) -> Path:
    out = root / "model"
    code, _, err = run("train", csv, "--target", "satisfaction", *FAST, "--out", out)
    assert code == 0, err
    return out


def variant(root: Path, csv: Path, name: str, change) -> Path:
    """A copy of the good CSV after `change(frame)`, which edits the frame in place."""
    frame = pd.read_csv(csv)
    change(frame)
    path = root / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def train_fails(fails):
    """``train_fails(root, data, *flags, says="", status=1)``: train must fail, creating no new
    --out and leaving an existing one untouched."""

    def check(root: Path, data: Path, *flags: object, says: str = "", status: int = 1) -> None:
        new = root / "new-out"
        fails("train", data, *flags, "--out", new, status=status, says=says)
        assert not new.exists()
        existing = root / "existing-out"  # an earlier model, which a successful run would replace
        existing.mkdir(exist_ok=True)
        (existing / "model.json").write_text(json.dumps({"format": "chainrule-model"}))
        (existing / "keep.txt").write_text("mine")
        before = snapshot(existing)
        fails("train", data, *flags, "--out", existing, status=status, says=says)
        assert snapshot(existing) == before
        assert not [p for p in root.iterdir() if p.name.startswith((".new-out", ".existing-out"))]

    return check


# ---- tables --------------------------------------------------------------------------------


def test_missing_and_empty_files(root: Path, fails, train_fails) -> None:
    train_fails(root, root / "nowhere.csv", "--target", "y", says="does not exist")
    (root / "empty.csv").write_text("")
    train_fails(root, root / "empty.csv", "--target", "y", says="is empty")
    (root / "header.csv").write_text("a,b,y\n")
    train_fails(root, root / "header.csv", "--target", "y", says="no data rows")
    (root / "notes.txt").write_text("a,b\n1,2\n")
    train_fails(root, root / "notes.txt", "--target", "b", says="unsupported file type")
    (root / "broken.csv").write_bytes(b'a,b\n"1,2\n\x00\xff')
    fails("train", root / "broken.csv", "--target", "b", "--out", root / "o")
    assert not (root / "o").exists()


def test_unknown_target_lists_columns(root: Path, csv: Path, fails, train_fails) -> None:
    train_fails(root, csv, "--target", "happiness", says="happiness")
    line = fails("train", csv, "--target", "happiness", "--out", root / "o")
    assert "seat_class" in line and "satisfaction" in line
    train_fails(root, csv, says="--target")  # a table needs a target at all


def test_single_class_target(root: Path, csv: Path, train_fails) -> None:
    single = variant(root, csv, "single", lambda f: f.__setitem__("satisfaction", "satisfied"))
    train_fails(root, single, "--target", "satisfaction", says="single class")


def test_text_in_numeric_column(root: Path, csv: Path, train_fails) -> None:
    def typo(f: pd.DataFrame) -> None:
        f["age"] = f["age"].astype(object)
        f.loc[[3, 40, 70], "age"] = "forty"

    train_fails(root, variant(root, csv, "text", typo), "--target", "satisfaction",
                says="'forty'")


def test_infinity_in_features_and_target(root: Path, csv: Path, train_fails) -> None:
    def inf(f: pd.DataFrame) -> None:
        f["flight_distance"] = f["flight_distance"].astype(float)
        f.loc[[5, 50], "flight_distance"] = np.inf

    train_fails(root, variant(root, csv, "inf", inf), "--target", "satisfaction",
                says="infinite")
    reg = make_tabular_csv(root / "reg.csv", n=40, task="regression")
    inf_target = variant(root, reg, "inf_target",
                         lambda f: f.__setitem__("satisfaction_score", np.inf))
    train_fails(root, inf_target, "--target", "satisfaction_score", says="infinite")


def test_diverging_training_writes_nothing(root: Path, train_fails) -> None:
    reg = make_tabular_csv(root / "diverge.csv", n=60, task="regression")
    train_fails(root, reg, "--target", "satisfaction_score", "--optimizer", "sgd", "--lr", "1e6",
                *FAST, says="diverged")


def test_regression_on_text_target(root: Path, csv: Path, train_fails) -> None:
    train_fails(root, csv, "--target", "satisfaction", "--task", "regression", says="numeric")


@pytest.mark.parametrize("flag, value, says", [
    ("--hidden", "0", "--hidden"),
    ("--hidden", "64,abc", "--hidden"),
    ("--lr", "-1", "--lr"),
    ("--lr", "nan", "--lr"),
    ("--epochs", "0", "--epochs"),
    ("--batch-size", "-4", "--batch-size"),
    ("--weight-decay", "-0.1", "--weight-decay"),
    ("--val-fraction", "1.5", "--val-fraction"),
    ("--task", "clustering", "--task"),
    ("--early-stopping", "0", "--early-stopping"),
])
def test_bad_flag_values_are_usage_errors(root: Path, csv: Path, flag: str, value: str,
                                          says: str, train_fails) -> None:
    train_fails(root, csv, "--target", "satisfaction", flag, value, says=says, status=2)


@pytest.mark.parametrize("flag, value, says", [
    ("--prior", "foo:1", "--prior"),
    ("--prior", "gaussian:-1", "--prior"),
    ("--prior", "gaussian", "--prior"),
    ("--activation", "nope", "--activation"),
    ("--optimizer", "nope", "--optimizer"),
    ("--init", "nope", "--init"),
    ("--image-size", "2", "--image-size"),
])
def test_bad_option_values(root: Path, csv: Path, flag: str, value: str, says: str,
                           train_fails) -> None:
    train_fails(root, csv, "--target", "satisfaction", flag, value, says=says)


def test_usage_errors_are_one_line(root: Path, csv: Path, fails) -> None:
    fails(status=2, says="required")
    fails("fly", status=2, says="invalid choice")
    fails("train", csv, "--target", "satisfaction", status=2, says="--out")
    fails("train", csv, "--target", "satisfaction", "--prior", "gaussian:1", "--weight-decay",
          "0.1", "--out", root / "o", status=2, says="not allowed")
    fails("experiment", "nope", status=2, says="invalid choice")
    assert not (root / "o").exists()


def test_out_that_train_must_not_replace(root: Path, csv: Path, fails) -> None:
    precious = root / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    before = snapshot(precious)
    fails("train", csv, "--target", "satisfaction", *FAST, "--out", precious,
          says="not a chainrule model directory")
    assert snapshot(precious) == before
    (root / "a-file").write_text("x")
    fails("train", csv, "--target", "satisfaction", *FAST, "--out", root / "a-file",
          says="not a directory")
    inside = root / "holder"
    inside.mkdir()
    shutil.copy(csv, inside / "data.csv")
    (inside / "model.json").write_text(json.dumps({"format": "chainrule-model"}))
    fails("train", inside / "data.csv", "--target", "satisfaction", *FAST, "--out", inside,
          says="inside --out")
    assert (inside / "data.csv").exists()


def test_out_parents_are_not_left_behind(root: Path, csv: Path, fails) -> None:
    deep = root / "made" / "for" / "out"
    fails("train", csv, "--target", "nope", "--out", deep)
    assert not (root / "made").exists()


# ---- images --------------------------------------------------------------------------------


def test_image_folder_with_one_class(root: Path, train_fails) -> None:
    folder = make_image_folder(root / "one", n_per_class=3, size=8)
    shutil.rmtree(folder / "vertical")
    train_fails(root, folder, says="need at least 2")
    train_fails(root, root / "empty-folder-does-not-exist", says="does not exist")
    (root / "no-classes").mkdir()
    train_fails(root, root / "no-classes", says="need at least 2")


def test_no_readable_image(root: Path, train_fails) -> None:
    folder = root / "junk"
    for name in ("cats", "dogs"):
        (folder / name).mkdir(parents=True)
        for i in range(3):
            (folder / name / f"{i}.png").write_bytes(b"not a png at all")
    train_fails(root, folder, says="no readable image")


def test_a_class_with_no_readable_image(root: Path, train_fails) -> None:
    folder = make_image_folder(root / "half", n_per_class=4, size=8)
    for png in (folder / "vertical").iterdir():
        png.write_bytes(b"garbage")
    train_fails(root, folder, says="no readable image")


def test_regression_on_images(root: Path, train_fails) -> None:
    folder = make_image_folder(root / "reg-images", n_per_class=2, size=8)
    train_fails(root, folder, "--task", "regression", says="classification")


# ---- model directories -----------------------------------------------------------------------


def corrupt(model: Path, root: Path, name: str) -> Path:
    copy = root / name
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(model, copy)
    return copy


def edit_json(path: Path, change) -> None:
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def use_fails(fails):
    """``use_fails(model_dir, data, says="")``: evaluate and predict (to stdout and to a file)
    both fail; no predictions file appears."""

    def check(model_dir: Path, data: Path, says: str = "") -> None:
        fails("evaluate", model_dir, data, says=says)
        fails("evaluate", model_dir, data, "--json", says=says)
        fails("predict", model_dir, data, says=says)
        target = model_dir.parent / "predictions-should-not-exist.csv"
        fails("predict", model_dir, data, "-o", target, says=says)
        assert not target.exists()

    return check


def test_model_json_garbage(model: Path, root: Path, csv: Path, use_fails) -> None:
    d = corrupt(model, root, "garbage-json")
    (d / "model.json").write_text("{not json")
    use_fails(d, csv, says="corrupt")
    (d / "model.json").write_bytes(b"\xff\xfe\x00binary")
    use_fails(d, csv, says="corrupt")
    (d / "model.json").write_text("[1, 2, 3]")
    use_fails(d, csv, says="not written by")


@pytest.mark.parametrize("change, says", [
    (lambda m: m["architecture"].pop("kind"), "kind"),
    (lambda m: m["architecture"].__setitem__("activation", "swish"), "activation"),
    (lambda m: m["architecture"].__setitem__("hidden", "lots"), "hidden"),
    (lambda m: m["architecture"].__setitem__("inputs", -3), "inputs"),
    (lambda m: m["architecture"].__setitem__("init", "magic"), "initialiser"),
    (lambda m: m.__setitem__("task", "clustering"), "task"),
    (lambda m: m.__setitem__("classes", ["only one"]), "classes"),
    (lambda m: m.__setitem__("data", {"kind": "audio"}), "data"),
    (lambda m: m["data"]["preprocessor"].__setitem__("columns", 5), "preprocessing"),
    (lambda m: m["data"]["preprocessor"].pop("format"), "preprocessing"),
    (lambda m: m["data"]["preprocessor"]["columns"].pop(0), "inputs of size"),
    (lambda m: m.pop("architecture"), "architecture"),
    (lambda m: m["data"]["preprocessor"].__setitem__("classes", ["no", "yes"]), "classes"),
])
def test_model_json_fields(model: Path, root: Path, csv: Path, change, says: str,
                           use_fails) -> None:
    d = corrupt(model, root, "bad-field")
    edit_json(d / "model.json", change)
    use_fails(d, csv, says=says)


def test_weights_truncated_or_random(model: Path, root: Path, csv: Path, use_fails) -> None:
    d = corrupt(model, root, "bad-weights")
    good = (model / "model.safetensors").read_bytes()
    for data, says in [(good[:50], "truncated"), (good[: len(good) // 2], "truncated"),
                       (np.random.default_rng(0).bytes(len(good)), "not a safetensors"),
                       (b"", "empty")]:
        (d / "model.safetensors").write_bytes(data)
        use_fails(d, csv, says=says)


def test_weights_that_do_not_match_model_json(model: Path, root: Path, csv: Path,
                                              use_fails) -> None:
    d = corrupt(model, root, "bad-shapes")
    edit_json(d / "model.json", lambda m: m["architecture"].__setitem__("hidden", [5]))
    use_fails(d, csv, says="does not fit")


def test_non_finite_weights(model: Path, root: Path, csv: Path, use_fails) -> None:
    import safetensors.numpy

    d = corrupt(model, root, "nan-weights")
    weights = safetensors.numpy.load_file(d / "model.safetensors")
    weights["0.weight"][0, 0] = np.nan
    safetensors.numpy.save_file(weights, d / "model.safetensors")
    use_fails(d, csv, says="NaN")


def test_not_a_model_directory(root: Path, csv: Path, use_fails) -> None:
    use_fails(root / "no-such-model", csv, says="not a directory")
    plain = root / "plain"
    plain.mkdir(exist_ok=True)
    (plain / "notes.txt").write_text("hello")
    use_fails(plain, csv, says="not a chainrule model directory")
    use_fails(csv, csv, says="not a directory")


def test_model_of_the_wrong_kind_for_the_data(model: Path, root: Path, csv: Path, fails,
                                              use_fails) -> None:
    images = make_image_folder(root / "images-for-table-model", n_per_class=2, size=8)
    use_fails(model, images, says="trained on a table")
    other = variant(root, csv, "other-columns", lambda f: f.pop("seat_class"))
    use_fails(model, other, says="seat_class")
    reg = make_tabular_csv(root / "other-target.csv", n=20, task="regression")
    fails("evaluate", model, reg, says="target column 'satisfaction'")


def test_bad_data_for_a_good_model(model: Path, root: Path, csv: Path, fails, use_fails) -> None:
    (root / "empty2.csv").write_text("")
    use_fails(model, root / "empty2.csv", says="empty")
    use_fails(model, root / "missing.csv", says="does not exist")
    new_label = variant(root, csv, "new-label",
                        lambda f: f.__setitem__("satisfaction", "ecstatic"))
    fails("evaluate", model, new_label, says="ecstatic")
    unlabelled = variant(root, csv, "unlabelled",
                         lambda f: f.__setitem__("satisfaction", None))
    fails("evaluate", model, unlabelled, says="target")
    fails("predict", model, csv, "-o", root, says="directory")
    fails("predict", model, csv, "-o", root / "no" / "such" / "dir.csv", says="does not exist")
    assert not (root / "no").exists()
