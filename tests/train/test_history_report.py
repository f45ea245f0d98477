"""History bookkeeping and the overfitting report, on hand-made histories."""

import json

import pytest

from chainrule.train import History, overfitting_report


def _history(train, val=None, metric=None):
    h = History()
    for i, loss in enumerate(train):
        r = {"epoch": i + 1, "loss": loss}
        if metric:
            r["accuracy"] = metric[i][0]
        if val is not None:
            r["val_loss"] = val[i]
            if metric:
                r["val_accuracy"] = metric[i][1]
        r["lr"] = 0.01
        h.append(r)
    return h


def test_history_columns_best_epoch_and_json_round_trip(tmp_path):
    h = _history([1.0, 0.5, 0.3, 0.2], [1.1, 0.6, 0.7, float("nan")])
    assert len(h) == 4 and h["loss"] == [1.0, 0.5, 0.3, 0.2]
    assert h.keys() == ["epoch", "loss", "val_loss", "lr"]
    assert h.history["epoch"] == [1, 2, 3, 4]
    assert h.best_epoch == 2 and h.monitor == "val_loss"
    with pytest.raises(KeyError, match="has no 'val_f1'"):
        h["val_f1"]
    h.stopped_epoch = 4
    h.save(tmp_path / "history.json")
    text = (tmp_path / "history.json").read_text()
    assert "NaN" not in text  # standard JSON: non-finite numbers become null
    back = History.load(tmp_path / "history.json")
    assert back.records[:3] == h.records[:3] and back.records[3]["val_loss"] is None
    assert back.stopped_epoch == 4 and back.best_epoch == 2
    assert json.loads(text)["best_epoch"] == 2
    with pytest.raises(ValueError, match="not a saved History"):
        History.from_dict({"records": []})


def test_best_epoch_without_validation_uses_training_loss():
    assert _history([3.0, 1.0, 2.0]).best_epoch == 2
    assert History().best_epoch is None


def test_overfitting_warning_when_validation_rises_while_training_falls():
    train = [1.0, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05]
    val = [1.0, 0.7, 0.55, 0.6, 0.7, 0.8, 0.9]
    acc = [(0.5, 0.5), (0.7, 0.68), (0.8, 0.75), (0.85, 0.74), (0.9, 0.73), (0.95, 0.72),
           (1.0, 0.7)]
    report = overfitting_report(_history(train, val, acc))
    assert report.overfitting and report.best_epoch == 3
    assert report.loss_gap == pytest.approx(0.85)
    assert report.metric == "accuracy" and report.metric_gap == pytest.approx(-0.3)
    text = str(report)
    assert "WARNING: overfitting" in text and "epoch 3" in text and "weight decay" in text
    assert "0.5500" in text and "0.9000" in text
    assert report.to_dict()["overfitting"] is True


def test_no_warning_while_validation_keeps_improving_or_too_soon():
    train = [1.0, 0.6, 0.4, 0.3, 0.2]
    assert not overfitting_report(_history(train, [1.0, 0.7, 0.5, 0.45, 0.44])).overfitting
    # rose only for 2 epochs after the best: below the default window of 3
    report = overfitting_report(_history(train, [1.0, 0.7, 0.5, 0.6, 0.7]))
    assert not report.overfitting and "no sign of overfitting" in str(report)
    assert overfitting_report(_history(train, [1.0, 0.7, 0.5, 0.6, 0.7]), window=2).overfitting
    # validation rose but training rose too (e.g. learning rate too high): not memorising
    assert not overfitting_report(_history([1, 0.5, 0.6, 0.7, 0.8], [1, 0.5, 0.6, 0.7, 0.8]))\
        .overfitting


def test_report_without_validation_says_how_to_get_one():
    report = overfitting_report(_history([1.0, 0.5]))
    assert report.val_loss is None and report.loss_gap is None and not report.overfitting
    assert "val_split" in str(report)
    with pytest.raises(ValueError, match="empty"):
        overfitting_report(History())
