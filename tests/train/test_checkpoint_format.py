"""The checkpoint file format: nested state round-trips exactly through one safetensors file."""

import numpy as np
import pytest

import chainrule
from chainrule.io import LoadError, save
from chainrule.train import latest_checkpoint, load_checkpoint, save_checkpoint


def test_nested_state_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 4)).astype(np.float32)
    state = {
        "model": {"fc.weight": chainrule.tensor(w), "fc.bias": chainrule.zeros(4)},
        "optimizer": {
            "state": {0: {"step": 7, "exp_avg": rng.normal(size=(3, 4))}},
            "param_groups": [{"lr": 0.1 / 3, "betas": (0.9, 0.999), "params": [0, 1]}],
        },
        "rng": np.random.default_rng(5).bit_generator.state,
        "misc": [None, True, "text", float("inf"), float("nan"), np.float32(0.1), np.int64(3)],
    }
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, state)
    back = load_checkpoint(path)
    got = back["model"]["fc.weight"]
    assert isinstance(got, chainrule.Tensor) and got.dtype == np.float32
    assert got.data.tobytes() == w.tobytes()
    opt = back["optimizer"]
    assert list(opt["state"]) == [0] and opt["state"][0]["step"] == 7
    assert opt["state"][0]["exp_avg"].dtype == np.float64
    np.testing.assert_array_equal(opt["state"][0]["exp_avg"], state["optimizer"]["state"][0][
        "exp_avg"])
    assert opt["param_groups"] == state["optimizer"]["param_groups"]  # tuple kept, lr exact
    assert back["rng"] == state["rng"]
    misc = back["misc"]
    assert misc[:4] == [None, True, "text", float("inf")] and np.isnan(misc[4])
    assert type(misc[5]) is np.float32 and misc[5] == np.float32(0.1)
    assert type(misc[6]) is np.int64


def test_unstorable_values_and_foreign_files(tmp_path):
    with pytest.raises(TypeError, match="cannot store set at optimizer"):
        save_checkpoint(tmp_path / "x.safetensors", {"optimizer": {1, 2}})
    assert not list(tmp_path.iterdir())  # nothing half-written
    save({"w": np.zeros(2, np.float32)}, tmp_path / "weights.safetensors")
    with pytest.raises(LoadError, match="not a chainrule training checkpoint"):
        load_checkpoint(tmp_path / "weights.safetensors")
    with pytest.raises(LoadError, match="no such file"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_latest_checkpoint_picks_highest_epoch(tmp_path):
    with pytest.raises(LoadError, match="no checkpoint_epochNNNN"):
        latest_checkpoint(tmp_path)
    for epoch in (2, 10, 4):
        save_checkpoint(tmp_path / f"checkpoint_epoch{epoch:04d}.safetensors", {"epoch": epoch})
    assert latest_checkpoint(tmp_path).name == "checkpoint_epoch0010.safetensors"
