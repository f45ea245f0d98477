"""Trainer.fit / evaluate / predict, the functional fit, MAP priors, determinism, the monitor
hook, progress output and the overfitting report on real training runs."""

import numpy as np
import pytest

import chainrule
import chainrule.optim as optim
from chainrule import nn
from chainrule.data import Dataset, make_moons
from chainrule.train import History, Trainer, fit


def _mlp(n_in, hidden, n_out, act=nn.Tanh, dropout=0.0):
    layers, width = [], n_in
    for h in hidden:
        layers += [nn.Linear(width, h), act()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    return nn.Sequential(*layers, nn.Linear(width, n_out))


def _regression_data(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
    y = np.sin(np.pi * X[:, 0]) + X[:, 1] ** 2 - 0.5 * X[:, 2] * X[:, 3]
    return X, (y + 0.05 * rng.standard_normal(n)).astype(np.float32)


def _weights(model):
    return {k: v.data.copy() for k, v in model.state_dict().items()}


def test_classifier_reaches_high_accuracy_on_moons():
    X, y = make_moons(400, noise=0.15, seed=0)
    chainrule.manual_seed(0)
    model = _mlp(2, [32], 2)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.02),
                      seed=0, progress=False, verbose=False)
    history = trainer.fit((X, y), val_split=0.25, epochs=25, batch_size=32)
    assert isinstance(history, History) and len(history) == 25
    assert history.keys() == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr"]
    assert history["val_accuracy"][-1] > 0.95 and history["loss"][-1] < history["loss"][0]
    assert trainer.step == 25 * 10  # 300 training rows in batches of 32
    Xv, yv = make_moons(200, noise=0.15, seed=1)
    result = trainer.evaluate((Xv, yv))
    assert set(result) == {"loss", "accuracy"} and result["accuracy"] > 0.95
    out = trainer.predict(Xv)
    assert isinstance(out, chainrule.Tensor) and out.shape == (200, 2)
    assert np.mean(out.data.argmax(1) == yv) == pytest.approx(result["accuracy"])
    assert trainer.report is not None and not trainer.report.overfitting


def test_regressor_reaches_high_r2():
    X, y = _regression_data(600)
    chainrule.manual_seed(0)
    model = _mlp(4, [32, 32], 1)
    history = fit(model, (X[:500], y[:500]), (X[500:], y[500:]), loss=nn.MSELoss(),
                  optimizer=optim.Adam(model.parameters(), lr=0.01), metrics=("r2", "mae"),
                  seed=0, progress=False, verbose=False, epochs=40)
    assert history["val_r2"][-1] > 0.9
    assert "val_mae" in history and history["val_mae"][-1] < 0.3


def test_metrics_auto_picks_r2_for_regression_and_accuracy_for_integer_labels():
    X, y = _regression_data(64)
    model = _mlp(4, [8], 1)
    h = fit(model, (X, y), loss=nn.MSELoss(), epochs=1, progress=False, verbose=False)
    assert "r2" in h and "accuracy" not in h
    labels = (y > 0).astype(np.int64)
    h = fit(_mlp(4, [8], 2), (X, labels), loss=nn.CrossEntropyLoss(), epochs=1,
            progress=False, verbose=False)
    assert "accuracy" in h


def test_single_logit_binary_classification_thresholds_at_zero():
    X, y = make_moons(200, noise=0.1, seed=0)
    chainrule.manual_seed(0)
    model = _mlp(2, [16], 1)
    h = fit(model, (X, y.astype(np.float32)), loss=nn.BCEWithLogitsLoss(),
            metrics=["accuracy", "f1"], optimizer=optim.Adam(model.parameters(), lr=0.03),
            seed=0, epochs=30, progress=False, verbose=False)
    assert h["accuracy"][-1] > 0.9 and h["f1"][-1] > 0.9


def test_same_seed_same_weights_and_history_different_seed_differs():
    X, y = make_moons(200, noise=0.2, seed=0)

    def run(seed):
        chainrule.manual_seed(seed)  # initialisation
        model = _mlp(2, [16], 2, dropout=0.2)
        trainer = Trainer(model, nn.CrossEntropyLoss(), seed=seed, progress=False,
                          verbose=False)
        history = trainer.fit((X, y), val_split=0.2, epochs=4, batch_size=16)
        return _weights(model), history.records

    w1, h1 = run(3)
    w2, h2 = run(3)
    assert h1 == h2
    assert all(w1[k].tobytes() == w2[k].tobytes() for k in w1)
    w3, _ = run(4)
    assert any(w1[k].tobytes() != w3[k].tobytes() for k in w1)


def test_prior_is_added_to_the_mean_loss_scaled_by_one_over_n():
    X, y = _regression_data(50)
    prior = nn.priors.Gaussian(scale=0.5)

    def one_step(**kw):
        chainrule.manual_seed(1)
        model = _mlp(4, [6], 1)
        before = _weights(model)
        opt = optim.SGD(model.parameters(), lr=0.1, weight_decay=kw.pop("weight_decay", 0.0))
        trainer = Trainer(model, nn.MSELoss(), opt, progress=False, verbose=False, **kw)
        history = trainer.fit((X, y), epochs=1, batch_size=50, shuffle=False)
        return before, _weights(model), history, model

    before, with_prior, history, model = one_step(prior=prior)
    _, with_decay, _, _ = one_step(weight_decay=prior.weight_decay(50))
    _, without, plain_history, _ = one_step()
    for k in before:
        np.testing.assert_allclose(with_prior[k], with_decay[k], rtol=1e-5, atol=1e-7)
        # the prior pulls every weight towards zero by lr * w / (N s^2)
        np.testing.assert_allclose(with_prior[k] - without[k],
                                   -0.1 * before[k] / (50 * 0.25), rtol=1e-4, atol=1e-7)
    # the reported loss is the data loss alone; the prior term is recorded beside it
    assert history["loss"] == plain_history["loss"]
    expected = float(prior.neg_log_prob(model.parameters()).data) / 50
    assert history["prior"][-1] == pytest.approx(expected, rel=1e-6)


def test_monitor_gets_one_step_per_optimizer_step():
    diagnostics = pytest.importorskip("chainrule.diagnostics")
    X, y = make_moons(64, seed=0)
    model = _mlp(2, [8, 8], 2)
    monitor = diagnostics.GradientMonitor(model, every=2)
    trainer = Trainer(model, nn.CrossEntropyLoss(), monitor=monitor, progress=False,
                      verbose=False)
    trainer.fit((X, y), epochs=2, batch_size=16)
    assert monitor.steps == trainer.step == 8
    assert len(monitor.history) == 4
    with pytest.raises(ValueError, match="different model"):
        Trainer(_mlp(2, [8], 2), nn.CrossEntropyLoss(), monitor=monitor)


def test_generic_dataset_with_val_split():
    X, y = make_moons(120, seed=0)

    class Moons(Dataset):
        def __len__(self):
            return len(X)

        def __getitem__(self, i):
            return X[i], y[i]

    chainrule.manual_seed(0)
    model = _mlp(2, [16], 2)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.03),
                      seed=0, progress=False, verbose=False)
    h = trainer.fit(Moons(), val_split=0.25, epochs=10, batch_size=16)
    assert trainer.n_train == 90 and h["val_accuracy"][-1] > 0.8
    assert trainer.predict(Moons()).shape == (120, 2)


def test_progress_lines_without_a_terminal_and_report_when_verbose(capsys):
    X, y = make_moons(64, seed=0)
    model = _mlp(2, [8], 2)
    Trainer(model, nn.CrossEntropyLoss(), seed=0).fit((X, y), val_split=0.25, epochs=3)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3: loss ")
    assert "val_accuracy" in lines[-1] and "lr 0.001" in lines[-1]
    assert out.startswith("Overfitting report (3 epochs")
    Trainer(model, nn.CrossEntropyLoss(), progress=False, verbose=False).fit((X, y), epochs=1)
    assert capsys.readouterr() == ("", "")


def test_overfitting_warning_fires_on_a_memorising_network_and_not_on_a_regularised_one():
    X, y = make_moons(400, noise=0.3, seed=0)
    X_val, y_val = make_moons(300, noise=0.3, seed=1)
    chainrule.manual_seed(0)
    big = _mlp(2, [128, 128], 2, act=nn.ReLU)
    trainer = Trainer(big, nn.CrossEntropyLoss(), optim.Adam(big.parameters(), lr=0.01),
                      seed=0, progress=False, verbose=False)
    trainer.fit((X[:16], y[:16]), (X_val, y_val), epochs=30, batch_size=16)
    assert trainer.report.overfitting, str(trainer.report)
    assert "WARNING: overfitting" in str(trainer.report)
    assert trainer.report.train_loss < 0.05 < trainer.report.val_loss

    chainrule.manual_seed(0)
    small = _mlp(2, [16], 2)
    trainer = Trainer(small, nn.CrossEntropyLoss(), optim.Adam(small.parameters(), lr=0.01),
                      prior=nn.priors.Gaussian(1.0), seed=0, progress=False, verbose=False)
    trainer.fit((X, y), (X_val, y_val), epochs=30, batch_size=32)
    assert not trainer.report.overfitting, str(trainer.report)
    assert abs(trainer.report.loss_gap) < 0.1


def test_nonfinite_loss_stops_training_with_a_reason():
    X, y = _regression_data(64)
    model = _mlp(4, [8], 1)
    trainer = Trainer(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=1e30),
                      progress=False, verbose=False)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning, match="training loss became"):
        history = trainer.fit((X, y * 1e10), epochs=5, batch_size=8)
    assert len(history) < 5 and "lower the learning rate" in history.stop_reason
    assert "stopped early" in str(trainer.report)


def test_bad_arguments():
    X, y = make_moons(40, seed=0)
    model = _mlp(2, [4], 2)
    trainer = Trainer(model, nn.CrossEntropyLoss(), progress=False, verbose=False)
    with pytest.raises(ValueError, match="either val_data or val_split"):
        trainer.fit((X, y), (X, y), val_split=0.2)
    with pytest.raises(ValueError, match="one row per sample"):
        trainer.fit((X, y[:10]))
    X_bad = X.copy()
    X_bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        trainer.fit((X_bad, y))
    with pytest.raises(TypeError, match=r"\(X, y\) pair"):
        trainer.fit(X)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        trainer.fit((X, y), epochs=0)
    with pytest.raises(ValueError, match="unknown metric"):
        Trainer(model, nn.CrossEntropyLoss(), metrics=["auc"])
    with pytest.raises(TypeError, match="neg_log_prob"):
        Trainer(model, nn.CrossEntropyLoss(), prior=0.1)
    with pytest.raises(TypeError, match="Module"):
        Trainer(lambda x: x, nn.CrossEntropyLoss())
