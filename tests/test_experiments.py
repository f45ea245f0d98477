"""Tests for chainrule.experiments: the Glorot & Bengio study and the learning-rules comparison
run in quick mode, log through `log` only, and produce their tables and plots."""

import contextlib
import io
import json

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

from chainrule.experiments import ExperimentResult, glorot, rules  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_pngs(paths):
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, path


@pytest.fixture(scope="module")
def glorot_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("glorot") / "out"
    lines, stdout = [], io.StringIO()
    with contextlib.redirect_stdout(stdout):
        result = glorot.run(out, quick=True, log=lines.append)
    assert stdout.getvalue() == ""  # everything goes through `log`
    return out, result, lines


def test_glorot_quick_produces_table_plots_and_statistics(glorot_run):
    out, result, lines = glorot_run
    assert isinstance(result, ExperimentResult)
    labels = [label for label, _, _ in glorot.CONFIGS.values()]
    assert [r["network"] for r in result.rows] == labels
    assert all(0.0 <= r["test error"] <= 1.0 for r in result.rows)
    table = result.table()
    assert all(label in table for label in labels) and "test error" in table.splitlines()[0]
    assert len(result.plots) == 12 and all(p.parent == out for p in result.plots.values())
    assert_pngs(result.plots.values())
    text = "\n".join(lines)
    for label in labels:
        assert f"== {label}: test error" in text
    assert "hidden1" in text and "hidden5" in text and "dL/dz std" in text  # per-layer stats
    assert table in text  # the table is logged too
    json.dumps(result.to_dict(), allow_nan=False)


def test_glorot_reproduces_the_papers_observations(glorot_run):
    _, result, _ = glorot_run
    rows = {r["network"]: r for r in result.rows}
    standard, normalised = rows["tanh, standard init"], rows["tanh, normalised (Glorot) init"]
    # standard init: back-propagated gradients shrink towards the input; Glorot init: they don't
    assert standard["dL/dz spread at start"] > 3 * normalised["dL/dz spread at start"]
    sigmoid = rows["sigmoid, N(0, 1) init"]
    assert "saturated" in sigmoid["warnings"] and sigmoid["saturated (top hidden)"] > 0.5
    assert normalised["warnings"] == "none"


def test_glorot_rejects_bad_epochs_before_writing_anything(tmp_path):
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        glorot.run(tmp_path / "never", epochs=0, log=lambda line: None)
    assert not (tmp_path / "never").exists()


def test_rules_table_and_decision_boundaries(tmp_path, capsys):
    lines = []
    result = rules.run(tmp_path / "rules", quick=True, log=lines.append)
    assert capsys.readouterr().out == ""
    acc = {r["method"]: r for r in result.rows}
    assert list(acc) == list(rules.METHODS)
    for method in ("perceptron", "Widrow-Hoff (LMS)"):
        assert acc[method]["linearly separable"] == 1.0
        assert acc[method]["XOR"] <= 0.75  # one line gets at most 3 of the 4 corners
    assert acc["backpropagation (MLP)"]["XOR"] >= 0.95
    assert acc["backpropagation (MLP)"]["linearly separable"] >= 0.95
    assert result.table() in "\n".join(lines) and "100.0%" in result.table()
    assert_pngs(result.plots.values())
    assert result.plots["decision_boundaries"].name == "rules_decision_boundaries.png"


def test_result_table_formats_and_str():
    result = ExperimentResult("T", ["a", "b"], [{"a": "x", "b": 0.12345}, {"a": "y", "b": None}],
                              summary=["done"], formats={"b": ".1%"})
    assert result.table().splitlines() == ["a  b", "-  -----", "x  12.3%", "y  -"]
    assert str(result).startswith("T\n\na  b") and "done" in str(result)
