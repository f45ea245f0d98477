"""Callbacks: early stopping with restore of the best weights, atomic checkpoints and a resume
that ends bit-for-bit where an uninterrupted run ends, and learning-rate schedules."""

import pytest

import chainrule
import chainrule.optim as optim
from chainrule import nn
from chainrule.data import make_moons
from chainrule.io import LoadError
from chainrule.train import (
    Callback,
    EarlyStopping,
    LRSchedulerCallback,
    ModelCheckpoint,
    Trainer,
    load_checkpoint,
)

X, Y = make_moons(240, noise=0.3, seed=0)


def _model(seed=0, dropout=0.2):
    chainrule.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, 2))


def _weights(model):
    return {k: v.data.copy() for k, v in model.state_dict().items()}


def _same_bits(a, b):
    return a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)


def test_early_stopping_stops_and_restores_the_best_weights():
    model = _model(dropout=0.0)
    stop = EarlyStopping(patience=3)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.02),
                      callbacks=[stop], seed=0, progress=False, verbose=False)
    # 16 training rows and a wide network: validation loss soon turns up
    history = trainer.fit((X[:16], Y[:16]), (X[100:], Y[100:]), epochs=200, batch_size=16)
    best = history.best_epoch
    assert len(history) == best + 3 < 200
    assert history.stopped_epoch == len(history) and history.restored_epoch == best
    restored = trainer.evaluate((X[100:], Y[100:]))["loss"]
    assert restored == pytest.approx(history.record(best)["val_loss"], rel=1e-6)
    assert "weights of epoch" in str(trainer.report)


def test_early_stopping_min_delta_and_no_restore():
    model = _model(dropout=0.0)
    stop = EarlyStopping(patience=2, min_delta=10.0, restore_best_weights=False)
    trainer = Trainer(model, nn.CrossEntropyLoss(), callbacks=[stop], progress=False,
                      verbose=False)
    history = trainer.fit((X, Y), val_split=0.25, epochs=20)
    assert len(history) == 3  # only the first epoch counts as an improvement of > 10
    assert history.restored_epoch is None and stop.best_weights is None


def test_early_stopping_needs_validation_data():
    trainer = Trainer(_model(), nn.CrossEntropyLoss(), callbacks=[EarlyStopping()],
                      progress=False, verbose=False)
    with pytest.raises(ValueError, match="val_data or val_split"):
        trainer.fit((X, Y))


class _Crash(Callback):
    """Simulates a crash (power cut, Ctrl-C) at the end of a given epoch."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def _run(tmp_path, model_seed, crash_at=None, resume=False):
    """7 epochs with dropout, shuffling, Adam, a StepLR schedule and early stopping."""
    model = _model(model_seed)
    opt = optim.Adam(model.parameters(), lr=0.01)
    callbacks = [
        LRSchedulerCallback(optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)),
        EarlyStopping(patience=50),
        ModelCheckpoint(tmp_path / "ckpt", every=2),
    ]
    if crash_at:
        callbacks.append(_Crash(crash_at))
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, callbacks=callbacks, seed=7,
                      progress=False, verbose=False)
    history = trainer.fit((X, Y), val_split=0.25, epochs=7, batch_size=16,
                          resume_from=tmp_path / "ckpt" if resume else None)
    return model, history, trainer


def test_resume_from_checkpoint_is_bitwise_identical_to_an_uninterrupted_run(tmp_path):
    full_model, full_history, _ = _run(tmp_path / "a", model_seed=0)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "b", model_seed=0, crash_at=5)
    files = sorted(p.name for p in (tmp_path / "b" / "ckpt").iterdir())
    assert files == ["checkpoint_epoch0002.safetensors", "checkpoint_epoch0004.safetensors"]
    # a new process would build a freshly initialised model: a different seed shows that
    # everything comes from the checkpoint
    model, history, trainer = _run(tmp_path / "b", model_seed=99, resume=True)
    assert _same_bits(_weights(model), _weights(full_model))
    assert history.records == full_history.records
    assert trainer.step == 7 * 12 and history["lr"] == full_history["lr"]
    assert history["lr"][-1] == pytest.approx(0.01 * 0.5**3)


def test_checkpoint_contents(tmp_path):
    model, history, trainer = _run(tmp_path, model_seed=0)
    state = load_checkpoint(tmp_path / "ckpt" / "checkpoint_epoch0006.safetensors")
    assert state["epoch"] == 6 and state["step"] == 6 * 12
    assert set(state["model"]) == set(model.state_dict())
    assert state["optimizer"]["state"][0]["step"] == 6 * 12
    assert [name for name, _ in state["callbacks"]] == ["LRSchedulerCallback", "EarlyStopping"]
    assert len(state["history"]["records"]) == 6
    assert not [p for p in (tmp_path / "ckpt").iterdir() if p.name.startswith(".")]


def test_checkpoint_keep_and_resume_errors(tmp_path):
    model = _model()
    trainer = Trainer(model, nn.CrossEntropyLoss(), callbacks=[ModelCheckpoint(tmp_path, keep=2)],
                      progress=False, verbose=False)
    trainer.fit((X, Y), epochs=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint_epoch0003.safetensors", "checkpoint_epoch0004.safetensors"]
    with pytest.raises(LoadError, match="same callbacks"):
        Trainer(model, nn.CrossEntropyLoss(), callbacks=[EarlyStopping()], progress=False,
                verbose=False).fit((X, Y), val_split=0.2, epochs=5, resume_from=tmp_path)
    wider = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(LoadError, match="shape mismatch"):
        Trainer(wider, nn.CrossEntropyLoss(), progress=False, verbose=False).fit(
            (X, Y), epochs=5, resume_from=tmp_path)
    with pytest.raises(LoadError, match="no such file"):
        trainer.fit((X, Y), resume_from=tmp_path / "elsewhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LoadError, match="no checkpoint_epochNNNN"):
        trainer.fit((X, Y), resume_from=tmp_path / "empty")
    # resuming a finished run trains no further
    before = _weights(model)
    history = trainer.fit((X, Y), epochs=4, resume_from=tmp_path)
    assert len(history) == 4 and _same_bits(before, _weights(model))


def test_lr_scheduler_per_step_and_on_plateau():
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=15, gamma=0.1)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, progress=False, verbose=False,
                      callbacks=[LRSchedulerCallback(sched, interval="step")])
    history = trainer.fit((X, Y), epochs=2, batch_size=16)  # 15 steps per epoch
    assert history["lr"] == pytest.approx([0.01, 0.001])

    opt = optim.SGD(model.parameters(), lr=0.1)
    plateau = optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=10.0)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, progress=False, verbose=False,
                      callbacks=[LRSchedulerCallback(plateau)])
    history = trainer.fit((X, Y), val_split=0.25, epochs=3)
    assert history["lr"] == pytest.approx([0.1, 0.05, 0.025])  # never improves by 10x
    with pytest.raises(ValueError, match="interval='epoch'"):
        LRSchedulerCallback(plateau, interval="step")
