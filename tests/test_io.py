"""Tests for chainrule.io: safetensors round trips, atomic writes, load errors, torch interop."""

import json
import os
import stat
import sys

import numpy as np
import pytest

import chainrule.io as cio
from chainrule import Tensor
from chainrule.io import (
    IncompatibleKeys,
    LoadError,
    atomic_open,
    check_state_dict_matches,
    load,
    load_metadata,
    save,
    write_json_atomic,
    write_text_atomic,
)

RNG = np.random.default_rng(0)


def _np(value):
    """The ndarray behind a loaded value (a chainrule Tensor once the core exists)."""
    return value if isinstance(value, np.ndarray) else value.data


def _random(dtype, shape):
    if dtype == np.bool_:
        return RNG.random(shape) < 0.5
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return RNG.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return RNG.standard_normal(shape).astype(dtype)


def _assert_same(loaded, expected):
    array = _np(loaded)
    assert array.dtype == expected.dtype
    assert array.shape == expected.shape
    np.testing.assert_array_equal(array, expected)


def _listing(directory):
    return sorted(os.listdir(directory))


class FakeTensor:
    """Stands in for chainrule.Tensor: anything with an ndarray `.data`."""

    def __init__(self, data):
        self.data = data


class FakeModule:
    """Stands in for a chainrule module: anything with `.state_dict()`."""

    def state_dict(self):
        return {"w": FakeTensor(np.ones((2, 3), np.float32)), "b": FakeTensor(np.zeros(3))}


# ---- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype", [np.float32, np.float64, np.int64, np.bool_, np.float16, np.int8, np.uint8, np.int32]
)
@pytest.mark.parametrize("shape", [(), (1,), (5,), (3, 4), (2, 0, 3), (2, 3, 4)])
def test_round_trip_preserves_dtype_shape_and_values(tmp_path, dtype, shape):
    array = _random(dtype, shape)
    path = tmp_path / "m.safetensors"
    save({"x": array}, path)
    loaded = load(path)
    assert list(loaded) == ["x"]
    _assert_same(loaded["x"], array)


def test_round_trip_many_keys_with_float64_not_downcast(tmp_path):
    state = {
        "layer.0.weight": _random(np.float64, (4, 3)),
        "layer.0.bias": _random(np.float32, (4,)),
        "steps": np.array(7, dtype=np.int64),
        "mask": _random(np.bool_, (2, 2)),
    }
    save(state, tmp_path / "m.safetensors")
    loaded = load(tmp_path / "m.safetensors")
    assert set(loaded) == set(state)
    for key, array in state.items():
        _assert_same(loaded[key], array)
    assert _np(loaded["layer.0.weight"]).dtype == np.float64


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a.T,
        lambda a: a[:, ::2],
        lambda a: a[::-1, 1:],
        lambda a: np.broadcast_to(a[:1], a.shape),
        lambda a: np.asfortranarray(a),
    ],
    ids=["transpose", "strided", "negative-stride", "broadcast", "fortran"],
)
def test_non_contiguous_arrays_round_trip(tmp_path, make):
    view = make(_random(np.float32, (4, 6)))
    assert not view.flags.c_contiguous
    save({"v": view}, tmp_path / "v.safetensors")
    _assert_same(load(tmp_path / "v.safetensors")["v"], np.ascontiguousarray(view))


def test_big_endian_and_numpy_scalar_are_saved_by_value(tmp_path):
    big = np.arange(6, dtype=">f4").reshape(2, 3)
    save({"big": big, "scalar": np.float64(2.5)}, tmp_path / "e.safetensors")
    loaded = load(tmp_path / "e.safetensors")
    np.testing.assert_array_equal(_np(loaded["big"]), big)
    assert _np(loaded["big"]).dtype == np.float32
    _assert_same(loaded["scalar"], np.array(2.5))


def test_loaded_arrays_are_writable_and_outlive_the_file(tmp_path):
    path = tmp_path / "w.safetensors"
    save({"w": np.zeros(3, np.float32)}, path)
    w = _np(load(path)["w"])
    path.unlink()
    w += 1  # optimisers update parameters in place
    np.testing.assert_array_equal(w, np.ones(3, np.float32))


def test_tensor_like_values_and_modules_are_saved(tmp_path):
    save({"t": FakeTensor(np.arange(3.0))}, tmp_path / "t.safetensors")
    _assert_same(load(tmp_path / "t.safetensors")["t"], np.arange(3.0))

    save(FakeModule(), tmp_path / "mod.safetensors")
    loaded = load(tmp_path / "mod.safetensors")
    _assert_same(loaded["w"], np.ones((2, 3), np.float32))
    _assert_same(loaded["b"], np.zeros(3))


def test_empty_state_dict_round_trips(tmp_path):
    save({}, tmp_path / "empty.safetensors")
    assert load(tmp_path / "empty.safetensors") == {}


def test_load_returns_chainrule_tensors_with_dtype_kept(tmp_path):
    save({"d": np.arange(3.0), "f": np.arange(3, dtype=np.float32)}, tmp_path / "c.safetensors")
    loaded = load(tmp_path / "c.safetensors")
    assert all(isinstance(v, Tensor) for v in loaded.values())
    assert loaded["d"].data.dtype == np.float64
    assert loaded["f"].data.dtype == np.float32


# ---- metadata ----------------------------------------------------------------------------------


def test_metadata_is_stored_with_chainrule_keys(tmp_path):
    path = tmp_path / "m.safetensors"
    save({"x": np.zeros(2)}, path, metadata={"epoch": "3", "note": "ünïcode ok"})
    meta = load_metadata(path)
    assert meta["epoch"] == "3"
    assert meta["note"] == "ünïcode ok"
    assert meta["format"] == "chainrule"
    assert meta["chainrule_version"] == cio._version()
    assert isinstance(meta["chainrule_version"], str) and meta["chainrule_version"]


def test_metadata_defaults_and_chainrule_keys_win(tmp_path):
    path = tmp_path / "m.safetensors"
    save({"x": np.zeros(2)}, path)
    assert set(load_metadata(path)) == {"format", "chainrule_version"}
    save({"x": np.zeros(2)}, path, metadata={"format": "other"})
    assert load_metadata(path)["format"] == "chainrule"


def test_version_falls_back_when_not_installed(monkeypatch):
    def not_installed(name):
        raise cio.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(cio.importlib.metadata, "version", not_installed)
    assert cio._version() == "0.0.0"


@pytest.mark.parametrize("metadata", [{"epoch": 3}, {1: "x"}, ["a"]])
def test_bad_metadata_is_rejected_before_writing(tmp_path, metadata):
    with pytest.raises(TypeError, match="metadata must be a dict of str -> str"):
        save({"x": np.zeros(2)}, tmp_path / "m.safetensors", metadata=metadata)
    assert _listing(tmp_path) == []


# ---- what save refuses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, match",
    [
        (np.array(["a", "b"]), r"cannot save 'bad': dtype <U1 is not supported"),
        (np.array([object()]), r"cannot save 'bad': dtype object is not supported"),
        (np.array([1 + 2j]), r"cannot save 'bad': dtype complex128 is not supported"),
        ([1.0, 2.0], r"cannot save 'bad': expected a chainrule Tensor or numpy ndarray, got list"),
        (FakeTensor([1.0]), r"cannot save 'bad': expected a chainrule Tensor .* got FakeTensor"),
    ],
)
def test_unsavable_values_name_the_key(tmp_path, value, match):
    with pytest.raises(TypeError, match=match):
        save({"good": np.zeros(1), "bad": value}, tmp_path / "m.safetensors")
    assert _listing(tmp_path) == []


def test_bad_keys_and_objects_are_rejected(tmp_path):
    with pytest.raises(TypeError, match=r"state dict keys must be str, got 3 \(int\)"):
        save({3: np.zeros(1)}, tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="'__metadata__' is reserved"):
        save({"__metadata__": np.zeros(1)}, tmp_path / "m.safetensors")
    with pytest.raises(TypeError, match="save expects a state dict .* got int"):
        save(3, tmp_path / "m.safetensors")


def test_save_to_a_directory_or_missing_directory_fails_clearly(tmp_path):
    with pytest.raises(IsADirectoryError, match="it is a directory; pass a file path"):
        save({"x": np.zeros(1)}, tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        save({"x": np.zeros(1)}, tmp_path / "nope" / "m.safetensors")
    assert _listing(tmp_path) == []


def test_missing_safetensors_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    message = r'^saving and loading need the safetensors package: pip install "chainrule\[full\]"$'
    with pytest.raises(ImportError, match=message):
        save({"x": np.zeros(1)}, tmp_path / "m.safetensors")
    with pytest.raises(ImportError, match=message):
        load(tmp_path / "m.safetensors")


# ---- atomic writes -----------------------------------------------------------------------------


class _CrashingFile:
    """A file whose write puts half the bytes on disk, then fails like a full disk or a kill."""

    def __init__(self, f, directory, seen):
        self._f, self._directory, self._seen = f, directory, seen

    def write(self, data):
        self._f.write(data[: len(data) // 2])
        self._f.flush()
        self._seen.extend(os.listdir(self._directory))
        raise OSError("No space left on device (simulated)")

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def test_crash_midway_through_save_keeps_the_original_byte_identical(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    save({"w": np.arange(1000.0)}, path, metadata={"epoch": "1"})
    original = path.read_bytes()
    seen = []
    real_fdopen = os.fdopen
    monkeypatch.setattr(
        cio.os,
        "fdopen",
        lambda fd, *a, **k: _CrashingFile(real_fdopen(fd, *a, **k), tmp_path, seen),
    )
    with pytest.raises(OSError, match="simulated"):
        save({"w": np.zeros(1000)}, path, metadata={"epoch": "2"})
    monkeypatch.undo()
    assert any(name.startswith(".model.safetensors.") for name in seen)  # temp was beside it
    assert path.read_bytes() == original
    assert _listing(tmp_path) == ["model.safetensors"]
    np.testing.assert_array_equal(_np(load(path)["w"]), np.arange(1000.0))


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failed_fsync_or_replace_keeps_the_original(tmp_path, monkeypatch, failing):
    path = tmp_path / "model.safetensors"
    save({"w": np.arange(10.0)}, path)
    original = path.read_bytes()

    def fail(*args):
        raise OSError(f"{failing} failed (simulated)")

    monkeypatch.setattr(cio.os, failing, fail)
    with pytest.raises(OSError, match="simulated"):
        save({"w": np.zeros(10)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert _listing(tmp_path) == ["model.safetensors"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_atomic_open_exception_midway_keeps_original_and_removes_temp(tmp_path, error):
    path = tmp_path / "metrics.json"
    path.write_bytes(b'{"loss": 1.0}\n')
    with pytest.raises(error):
        with atomic_open(path) as f:
            f.write(b'{"loss": 0.')
            assert len(_listing(tmp_path)) == 2  # the temp file sits beside the target
            raise error()
    assert path.read_bytes() == b'{"loss": 1.0}\n'
    assert _listing(tmp_path) == ["metrics.json"]


def test_atomic_open_crash_on_a_new_file_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_open(tmp_path / "new.bin") as f:
            f.write(b"partial")
            raise RuntimeError
    assert _listing(tmp_path) == []


def test_atomic_open_writes_bytes_and_text(tmp_path):
    with atomic_open(tmp_path / "b.bin") as f:
        f.write(b"\x00\x01")
    with atomic_open(tmp_path / "t.txt", "w") as f:
        f.write("héllo\n")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo\n"
    assert _listing(tmp_path) == ["b.bin", "t.txt"]
    with pytest.raises(ValueError, match="atomic_open mode must be 'wb' or 'w', got 'a'"):
        with atomic_open(tmp_path / "x", "a"):
            pass


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_atomic_open_keeps_permissions_of_the_replaced_file(tmp_path):
    path = tmp_path / "secret.json"
    path.write_text("{}")
    path.chmod(0o600)
    write_text_atomic(path, "[]")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "[]"


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_atomic_open_writes_through_a_symlink(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_text_atomic(link, "new")
    assert link.is_symlink()
    assert real.read_text() == "new"


def test_write_json_and_text_atomic(tmp_path):
    write_json_atomic(tmp_path / "m.json", {"loss": [1.5, 0.25], "name": "run"})
    assert json.loads((tmp_path / "m.json").read_text()) == {"loss": [1.5, 0.25], "name": "run"}
    assert (tmp_path / "m.json").read_text().endswith("\n")
    write_text_atomic(tmp_path / "n.txt", "line\n")
    assert (tmp_path / "n.txt").read_text() == "line\n"
    assert _listing(tmp_path) == ["m.json", "n.txt"]


def test_write_json_atomic_unserialisable_leaves_original(tmp_path):
    path = tmp_path / "m.json"
    write_json_atomic(path, {"ok": 1})
    before = path.read_bytes()
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json_atomic(path, {"bad": object()})
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["m.json"]


# ---- load errors -------------------------------------------------------------------------------


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.safetensors"
    save({"a": np.arange(40, dtype=np.float32), "b": np.ones((3, 3))}, path, {"k": "v"})
    return path


def _header(length):
    """The 8-byte little-endian header-length prefix of a safetensors file."""
    return length.to_bytes(8, "little")


def _load_error(path):
    """The single-line LoadError messages of both load and load_metadata (they must agree)."""
    with pytest.raises(LoadError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"cannot load {path}: ")
    return message


def test_missing_file(tmp_path):
    assert _load_error(tmp_path / "nope.safetensors").endswith("no such file")
    with pytest.raises(LoadError, match="no such file"):
        load_metadata(tmp_path / "nope.safetensors")


def test_directory(tmp_path):
    assert "it is a directory, not a safetensors file" in _load_error(tmp_path)
    with pytest.raises(LoadError, match="is a directory"):
        load_metadata(tmp_path)


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "the file is empty, not a safetensors file"),
        (b"hello", "5 bytes is too short for a safetensors file"),
        (b"name,value\nw,1.0\nb,2.0\n", "not a safetensors file (invalid header length)"),
        (RNG.bytes(4096), "not a safetensors file (invalid header length)"),
        (_header(5) + b"xyzzy", "not a safetensors file (header is not a JSON object)"),
        (_header(3) + b"[1]", "not a safetensors file (header is not a JSON object)"),
        (_header(40) + b"\x00" * 60, "not a safetensors file (header is not a JSON object)"),
        (_header(1000) + b"\x00" * 60, "not a safetensors file (invalid header length)"),
        (
            _header(16) + b'{"a": {"x": 1}} ',
            "not a valid safetensors file (bad entry 'a')",
        ),
    ],
    ids=["empty", "tiny", "csv", "random", "not-json", "json-list", "zeros", "short", "bad-entry"],
)
def test_not_a_safetensors_file(tmp_path, content, expected):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    assert expected in _load_error(path)
    with pytest.raises(LoadError, match=expected.split(" (")[0]):
        load_metadata(path)


@pytest.mark.parametrize(
    "cut, expected",
    [
        (lambda n, size: 3, "too short for a safetensors file"),
        (lambda n, size: 8, "truncated inside its header (0 of"),
        (lambda n, size: 8 + n // 2, "truncated inside its header"),
        (lambda n, size: 8 + n - 1, "truncated inside its header"),
        (lambda n, size: 8 + n, "truncated (0 of {data} bytes of tensor data present)"),
        (lambda n, size: 8 + n + 100, "truncated (100 of {data} bytes of tensor data present)"),
        (lambda n, size: size - 1, "truncated ({last} of {data} bytes of tensor data present)"),
    ],
    ids=["prefix", "after-length", "mid-header", "header-minus-1", "no-data", "mid-data", "last"],
)
def test_truncated_file(good_file, cut, expected):
    content = good_file.read_bytes()
    n = int.from_bytes(content[:8], "little")
    data = len(content) - 8 - n
    assert data == 40 * 4 + 9 * 8
    good_file.write_bytes(content[: cut(n, len(content))])
    message = _load_error(good_file)
    assert expected.format(data=data, last=data - 1) in message
    if "truncated" in expected:
        assert message.endswith("re-save or re-download it")
    with pytest.raises(LoadError):
        load_metadata(good_file)


def test_trailing_garbage_is_rejected(good_file):
    good_file.write_bytes(good_file.read_bytes() + b"junk")
    assert "invalid safetensors file" in _load_error(good_file)


def test_load_metadata_of_a_good_file(good_file):
    assert load_metadata(good_file)["k"] == "v"


# ---- state dict matching -----------------------------------------------------------------------


EXPECTED = {"w": (2, 3), "b": (3,)}


def test_matching_state_dict_passes():
    loaded = {"w": np.zeros((2, 3)), "b": [0.0, 0.0, 0.0]}
    assert check_state_dict_matches(EXPECTED, loaded) == IncompatibleKeys([], [])
    assert check_state_dict_matches({"s": ()}, {"s": 1.0}) == ([], [])


def test_missing_and_unexpected_keys_are_named():
    with pytest.raises(LoadError) as info:
        check_state_dict_matches(EXPECTED, {"w": np.zeros((2, 3)), "extra": np.zeros(1)})
    message = str(info.value)
    assert "missing keys ['b']" in message
    assert "unexpected keys ['extra']" in message
    assert "pass strict=False" in message
    assert "\n" not in message


def test_shape_mismatch_names_key_and_both_shapes():
    with pytest.raises(LoadError) as info:
        check_state_dict_matches(EXPECTED, {"w": np.zeros((3, 2)), "b": [1.0, 2.0, 3.0]})
    assert str(info.value) == (
        "state dict does not match the model: shape mismatch 'w' expects (2, 3), file has (3, 2) "
        "(was the file saved from a model of the same architecture?)"
    )


def test_non_strict_reports_keys_but_still_rejects_shape_mismatch():
    result = check_state_dict_matches(EXPECTED, {"w": np.zeros((2, 3)), "x": 1}, strict=False)
    assert result == IncompatibleKeys(missing_keys=["b"], unexpected_keys=["x"])
    with pytest.raises(LoadError, match=r"'b' expects \(3,\), file has \(4,\)"):
        check_state_dict_matches(EXPECTED, {"b": np.zeros(4)}, strict=False)


def test_check_against_a_loaded_file(good_file):
    loaded = load(good_file)
    check_state_dict_matches({"a": (40,), "b": (3, 3)}, loaded)
    with pytest.raises(LoadError, match=r"'b' expects \(9,\), file has \(3, 3\)"):
        check_state_dict_matches({"a": (40,), "b": (9,)}, loaded)


# ---- interop with other frameworks' readers ----------------------------------------------------


def test_torch_reads_chainrule_files(tmp_path):
    torch = pytest.importorskip("torch")
    storch = pytest.importorskip("safetensors.torch")
    state = {
        "f32": _random(np.float32, (3, 4)),
        "f64": _random(np.float64, (5,)),
        "i64": _random(np.int64, (2, 2)),
        "mask": _random(np.bool_, (4,)),
        "scalar": np.array(1.5, dtype=np.float32),
        "t": _random(np.float32, (4, 3)).T,
    }
    path = tmp_path / "m.safetensors"
    save(state, path, metadata={"epoch": "2"})
    loaded = storch.load_file(str(path))
    assert set(loaded) == set(state)
    for key, array in state.items():
        assert loaded[key].shape == torch.Size(array.shape)
        np.testing.assert_array_equal(loaded[key].numpy(), array)
    assert loaded["f64"].dtype == torch.float64
    assert loaded["mask"].dtype == torch.bool


def test_chainrule_reads_torch_files(tmp_path):
    torch = pytest.importorskip("torch")
    storch = pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    tensors = {
        "weight": torch.randn(4, 3),
        "f64": torch.randn(2, dtype=torch.float64),
        "idx": torch.arange(5),
        "mask": torch.tensor([True, False]),
        "scalar": torch.tensor(3.0),
    }
    path = tmp_path / "torch.safetensors"
    storch.save_file(tensors, str(path), metadata={"source": "torch"})
    loaded = load(path)
    for key, tensor in tensors.items():
        _assert_same(loaded[key], tensor.numpy())
    assert load_metadata(path) == {"source": "torch"}


def test_torch_bfloat16_file_fails_with_advice(tmp_path):
    torch = pytest.importorskip("torch")
    storch = pytest.importorskip("safetensors.torch")
    path = tmp_path / "bf16.safetensors"
    storch.save_file({"w": torch.ones(3, dtype=torch.bfloat16)}, str(path))
    message = _load_error(path)
    assert "tensor 'w' has dtype BF16, which NumPy cannot hold; convert it to float32" in message
