"""The scripts in examples/ run and reach what their docstrings promise (the README cites them)."""

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, argv: list[str], capsys: pytest.CaptureFixture,
                monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(sys, "argv", [name, *argv])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def test_xor_backprop_learns_what_the_classic_rules_cannot(capsys, monkeypatch):
    out = run_example("xor.py", [], capsys, monkeypatch)
    assert "backpropagation: [0.0" in out and "(target [0, 1, 1, 0])" in out
    preds = out.split("backpropagation: [")[1].split("]")[0].split(", ")
    assert [round(float(p)) for p in preds] == [0, 1, 1, 0]
    assert out.count("accuracy 0.5") + out.count("accuracy 0.75") == 2


def test_recurrent_parity(capsys, monkeypatch):
    out = run_example("recurrent_parity.py", [], capsys, monkeypatch)
    assert "running parity correct at 100%" in out


def test_irregular_network_trains_and_draws(tmp_path, capsys, monkeypatch):
    png = tmp_path / "net.png"
    out = run_example("irregular_network.py", [str(png)], capsys, monkeypatch)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    accuracy = float(out.split("test accuracy: ")[1].split("%")[0])
    assert accuracy > 95
