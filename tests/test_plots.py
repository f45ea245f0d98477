"""Tests for chainrule.plots: every plot writes a valid PNG headless, atomically, from each of the
inputs it accepts, and bad input gives a one-line error."""

import json
import os
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import chainrule as cr  # noqa: E402
from chainrule import nn, plots  # noqa: E402
from chainrule.diagnostics import GradientMonitor  # noqa: E402
from chainrule.train.history import History  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = open(path, "rb").read()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    assert [p for p in os.listdir(os.path.dirname(path)) if p.startswith(".")] == []  # no temps


@pytest.fixture(scope="module")
def monitor():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    mon = GradientMonitor(model, every=2)
    rng = np.random.default_rng(0)
    for _ in range(7):
        model.zero_grad()
        model(cr.tensor(rng.normal(size=(16, 4)).astype(np.float32))).pow(2).mean().backward()
        mon.step()
        for p in model.parameters():
            p.data -= 0.1 * p.grad.data
    mon.close()
    return mon


HISTORY_RECORDS = [
    {"epoch": e, "loss": 1.0 / e, "accuracy": 0.5 + 0.04 * e, "val_loss": 1.0 / e + 0.01 * e**2,
     "val_accuracy": 0.5 + 0.03 * e, "lr": 0.1}
    for e in range(1, 8)
]


@pytest.mark.parametrize("form", ["History", "to_dict", "records", "columns", "train_prefixed"])
def test_learning_curves_accept_every_history_form(tmp_path, form):
    history = History(HISTORY_RECORDS)
    source = {
        "History": history,
        "to_dict": json.loads(json.dumps(history.to_dict())),
        "records": HISTORY_RECORDS,
        "columns": history.history,
        "train_prefixed": {"train_loss": history["loss"], "val_loss": history["val_loss"],
                           "train_f1": history["accuracy"], "val_f1": history["val_accuracy"]},
    }[form]
    path = plots.plot_learning_curves(source, tmp_path / "curves.png")
    assert path == tmp_path / "curves.png"
    assert_png(path)


def test_learning_curves_without_validation_or_with_missing_values(tmp_path):
    records = [{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": None}, {"epoch": 3, "loss": 1.0}]
    assert_png(plots.plot_learning_curves(records, tmp_path / "c.png"))


def test_monitor_plots_from_monitor_dict_and_records(tmp_path, monitor):
    as_json = json.loads(json.dumps(monitor.to_dict()))
    for i, source in enumerate([monitor, as_json, monitor.history]):
        assert_png(plots.plot_gradient_norms(source, tmp_path / f"grads{i}.png"))
        assert_png(plots.plot_saturation(source, tmp_path / f"sat{i}.png"))
    assert_png(plots.plot_activation_histograms(monitor, tmp_path / "hist.png"))
    assert_png(plots.plot_activation_histograms({"a": np.arange(10.0)}, tmp_path / "hist2.png"))


def test_gradient_norm_plot_survives_non_finite_and_zero_values(tmp_path, monitor):
    records = json.loads(json.dumps(monitor.to_dict()))
    records["records"][1]["layers"]["0"]["grad_norm"] = "inf"
    records["records"][2]["layers"]["0"]["grad_norm"] = 0.0
    records["records"][3]["layers"]["2"]["grad_norm"] = "nan"
    assert_png(plots.plot_gradient_norms(records, tmp_path / "g.png"))


def test_decision_boundaries(tmp_path):
    X = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    y = (X[:, 0] > 0).astype(int)
    panels = [("left/right", lambda G: (G[:, 0] > 0).astype(int), X, y),
              ("constant", lambda G: np.zeros(len(G)), X, y),
              ("up/down", lambda G: (G[:, 1] > 0).astype(int), X, y)]
    assert_png(plots.plot_decision_boundaries(panels, tmp_path / "db.png", ncols=2))
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        plots.plot_decision_boundaries([("3d", lambda G: G[:, 0], np.ones((4, 3)), y[:4])],
                                       tmp_path / "bad.png")


def test_plots_are_headless_and_leave_pyplot_alone(tmp_path, monitor):
    import matplotlib

    backend = matplotlib.get_backend()
    had_pyplot = "matplotlib.pyplot" in sys.modules
    plots.plot_gradient_norms(monitor, tmp_path / "g.png")
    assert matplotlib.get_backend() == backend
    assert ("matplotlib.pyplot" in sys.modules) == had_pyplot


def test_png_is_written_atomically(tmp_path, monitor, monkeypatch):
    from matplotlib.figure import Figure

    target = tmp_path / "g.png"
    target.write_bytes(b"old plot")

    def failing_savefig(self, f, **kwargs):
        f.write(b"\x89PNG half a picture")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", failing_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        plots.plot_gradient_norms(monitor, target)
    assert target.read_bytes() == b"old plot"  # untouched
    assert os.listdir(tmp_path) == ["g.png"]  # and no temp file left behind
    monkeypatch.undo()
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (replaced.append((a, b)), real_replace(a, b)))
    plots.plot_gradient_norms(monitor, target)
    (src, dst), = replaced
    assert os.path.dirname(src) == str(tmp_path) and dst == os.path.realpath(target)
    assert_png(target)


def test_bad_input_gives_clear_errors(tmp_path, monitor):
    with pytest.raises(ValueError, match="ending in .png"):
        plots.plot_gradient_norms(monitor, tmp_path / "g.jpg")
    with pytest.raises(ValueError, match="history is empty"):
        plots.plot_learning_curves([], tmp_path / "c.png")
    with pytest.raises(ValueError, match="no loss to plot; it has: accuracy"):
        plots.plot_learning_curves([{"epoch": 1, "accuracy": 0.5}], tmp_path / "c.png")
    with pytest.raises(TypeError, match="history must be"):
        plots.plot_learning_curves(3, tmp_path / "c.png")
    fresh = GradientMonitor(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="no records yet"):
        plots.plot_gradient_norms(fresh, tmp_path / "g.png")
    with pytest.raises(ValueError, match="no activations recorded yet"):
        plots.plot_activation_histograms(fresh, tmp_path / "h.png")
    with pytest.raises(TypeError, match="GradientMonitor"):
        plots.plot_saturation("nope", tmp_path / "s.png")
    assert sorted(os.listdir(tmp_path)) == []
