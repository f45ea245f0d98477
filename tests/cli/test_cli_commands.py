"""`chainrule --help`, the installed console script, `chainrule demo` and
`chainrule experiment rules|glorot`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("command", [[], ["demo"], ["train"], ["evaluate"], ["predict"],
                                     ["experiment"]])
def test_help_everywhere(command: list[str], run) -> None:
    code, out, _ = run(*command, "--help")
    assert code == 0
    assert out.startswith("usage: chainrule")


def test_train_help_lists_the_flags(run) -> None:
    _, out, _ = run("train", "--help")
    for flag in ("--target", "--task", "--hidden", "--activation", "--init", "--optimizer",
                 "--lr", "--epochs", "--batch-size", "--prior", "--weight-decay",
                 "--early-stopping", "--seed", "--out"):
        assert flag in out


def test_console_script(tmp_path: Path) -> None:
    """The installed `chainrule` script: --help exits 0; a missing file exits 1 in one line."""
    script = Path(sys.executable).with_name("chainrule")
    if not script.exists():
        pytest.skip("the chainrule console script is not installed in this environment")
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "usage: chainrule" in done.stdout
    done = subprocess.run([script, "train", tmp_path / "none.csv", "--target", "y", "--out",
                           tmp_path / "out"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("chainrule: error:") and len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_demo(tmp_path: Path, run) -> None:
    out = tmp_path / "demo"
    code, stdout, err = run("demo", "--out", out, "--epochs", "2", "--quiet")
    assert code == 0, err
    assert "Overfitting report" in stdout and "gradient health" in stdout
    assert str(out.resolve()) in stdout  # says where everything is
    assert (out / "digits.csv").is_file()
    model = out / "model"
    for name in ("model.safetensors", "model.json", "metrics.json", "history.json",
                 "report.txt"):
        assert (model / name).is_file()
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["task"] == "classification" and metrics["validation"]["accuracy"] > 0.5
    plots = list((model / "plots").glob("*.png")) + list((out / "deep").glob("*.png"))
    assert len(plots) >= 5 and all(p.read_bytes()[:8] == PNG for p in plots)
    # the demo's model works with the other commands, as the demo suggests
    code, stdout, _ = run("evaluate", model, out / "digits.csv", "--json")
    assert code == 0 and json.loads(stdout)["n"] > 1000


def test_demo_out_is_a_file(tmp_path: Path, run) -> None:
    (tmp_path / "taken").write_text("x")
    code, _, err = run("demo", "--out", tmp_path / "taken", "--epochs", "1", "--quiet")
    assert code == 1 and err.startswith("chainrule: error:") and "not a directory" in err
    assert (tmp_path / "taken").read_text() == "x"


def test_experiment_rules(tmp_path: Path, run) -> None:
    out = tmp_path / "rules"
    code, stdout, err = run("experiment", "rules", "--out", out, "--quick")
    assert code == 0, err
    assert "perceptron" in stdout and "XOR" in stdout and "backpropagation" in stdout
    assert stdout.count("perceptron ") == 1  # the table is printed once
    plots = list(out.glob("*.png"))
    assert plots and all(p.read_bytes()[:8] == PNG for p in plots)


def test_experiment_glorot_quick(tmp_path: Path, run) -> None:
    out = tmp_path / "glorot"
    code, stdout, err = run("experiment", "glorot", "--out", out, "--quick")
    assert code == 0, err
    for network in ("sigmoid", "tanh", "softsign"):
        assert network in stdout
    assert "test error" in stdout
    plots = list(out.glob("*.png"))
    assert len(plots) >= 4 and all(p.read_bytes()[:8] == PNG for p in plots)


def test_experiment_out_is_a_file(tmp_path: Path, run) -> None:
    (tmp_path / "taken").write_text("x")
    code, _, err = run("experiment", "rules", "--out", tmp_path / "taken", "--quick")
    assert code == 1 and err.startswith("chainrule: error:") and len(err.splitlines()) == 1
    assert (tmp_path / "taken").read_text() == "x"
