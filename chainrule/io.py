"""Save and load tensors as safetensors files, and write any file atomically.

Every write goes to a temp file in the same directory that replaces the target only once it is
complete, so a crash never leaves a half-written model, checkpoint or metrics file behind.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import math
import os
import secrets
import stat
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, NamedTuple

import numpy as np

from .tensor import Tensor

__all__ = [
    "IncompatibleKeys",
    "LoadError",
    "atomic_open",
    "check_state_dict_matches",
    "json_safe",
    "load",
    "load_metadata",
    "save",
    "write_json_atomic",
    "write_text_atomic",
]

PathLike = str | os.PathLike

# Array dtypes chainrule saves and loads; every safetensors reader (NumPy, PyTorch, JAX) has them.
_DTYPES = {
    "BOOL": np.dtype(bool),
    "I8": np.dtype(np.int8),
    "U8": np.dtype(np.uint8),
    "I16": np.dtype(np.int16),
    "U16": np.dtype(np.uint16),
    "I32": np.dtype(np.int32),
    "U32": np.dtype(np.uint32),
    "I64": np.dtype(np.int64),
    "U64": np.dtype(np.uint64),
    "F16": np.dtype(np.float16),
    "F32": np.dtype(np.float32),
    "F64": np.dtype(np.float64),
}
_SAVE_DTYPES = frozenset(_DTYPES.values())
_MAX_HEADER = 100_000_000  # safetensors refuses larger headers; bigger means "not safetensors"


class LoadError(ValueError):
    """A file cannot be loaded as tensors, or its tensors do not fit the model; says why."""


class IncompatibleKeys(NamedTuple):
    """Keys the model expected but the file lacks, and keys the file has but the model lacks."""

    missing_keys: list[str]
    unexpected_keys: list[str]


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temp file next to `path` ("wb" bytes or "w" UTF-8 text) that replaces `path` on exit.

    The file is fsynced before `os.replace`; if the block raises, the temp file is removed and
    any existing file at `path` is left untouched. Permissions of a replaced file are kept.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open mode must be 'wb' or 'w', got {mode!r}")
    target = os.path.realpath(path)
    if os.path.isdir(target):
        raise IsADirectoryError(f"cannot write {path}: it is a directory; pass a file path")
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"cannot write {path}: directory {directory} does not exist; create it first"
        )
    tmp, fd = _create_temp(target)
    try:
        with os.fdopen(fd, mode, encoding="utf-8" if mode == "w" else None) as f:
            _copy_permissions(target, tmp)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write `text` to `path` as UTF-8, atomically (see `atomic_open`)."""
    with atomic_open(path, "w") as f:
        f.write(text)


def write_json_atomic(path: PathLike, obj: Any, *, indent: int | None = 2) -> None:
    """Write `obj` as JSON to `path`, atomically; serialisation errors leave `path` untouched."""
    write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")


def json_safe(obj: Any, nonfinite: Callable[[float], Any] = lambda v: None) -> Any:
    """``obj`` with every non-finite float (NaN, Inf) inside dicts and lists replaced by
    ``nonfinite(value)`` (None by default), since standard JSON has no such numbers."""
    if isinstance(obj, dict):
        return {k: json_safe(v, nonfinite) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v, nonfinite) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return nonfinite(obj)
    return obj


def save(obj: Any, path: PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Save a state dict (str -> Tensor or ndarray) or a module's `.state_dict()` to `path`.

    The file is standard safetensors, readable by PyTorch, JAX and others; `metadata` (str -> str)
    goes into its header together with `format` and `chainrule_version`. Written atomically.
    """
    safetensors = _import_safetensors()
    state = obj
    if not isinstance(obj, Mapping) and callable(getattr(obj, "state_dict", None)):
        state = obj.state_dict()
    if not isinstance(state, Mapping):
        raise TypeError(
            "save expects a state dict (str -> Tensor or ndarray) or a module with "
            f".state_dict(), got {type(obj).__name__}"
        )
    arrays = {key: _saveable_array(key, value) for key, value in state.items()}
    payload = safetensors.numpy.save(arrays, metadata=_header_metadata(metadata))
    with atomic_open(path, "wb") as f:
        f.write(payload)


def load(path: PathLike) -> dict[str, Any]:
    """Load every tensor in the safetensors file at `path` as str -> Tensor, dtypes unchanged."""
    safetensors = _import_safetensors()
    _read_header(path)
    try:
        with safetensors.safe_open(os.fspath(path), framework="numpy") as f:
            arrays = {key: f.get_tensor(key) for key in f.keys()}
    except (safetensors.SafetensorError, OSError) as e:
        raise LoadError(f"cannot load {path}: invalid safetensors file ({e})") from e
    # explicit dtype: Tensor() would turn float64 into float32
    return {key: Tensor(array, dtype=array.dtype) for key, array in arrays.items()}


def load_metadata(path: PathLike) -> dict[str, str]:
    """Return the str -> str metadata in the header of the safetensors file at `path`."""
    metadata = _read_header(path).get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise LoadError(f"cannot load {path}: its __metadata__ is not a str -> str mapping")
    return dict(metadata)


def check_state_dict_matches(
    expected: Mapping[str, tuple[int, ...]],
    loaded: Mapping[str, Any],
    strict: bool = True,
) -> IncompatibleKeys:
    """Check `loaded` (key -> array-like) against `expected` (key -> shape) before copying it in.

    Raises LoadError naming missing and unexpected keys (only if `strict`) and every shape
    mismatch (always); returns the missing and unexpected keys.
    """
    missing = [key for key in expected if key not in loaded]
    unexpected = [key for key in loaded if key not in expected]
    mismatched = [
        f"{key!r} expects {tuple(shape)}, file has {_shape(loaded[key])}"
        for key, shape in expected.items()
        if key in loaded and tuple(shape) != _shape(loaded[key])
    ]
    problems = []
    if strict and missing:
        problems.append(f"missing keys {missing}")
    if strict and unexpected:
        problems.append(f"unexpected keys {unexpected}")
    hint = "pass strict=False to load only the matching keys"
    if mismatched:
        problems.append("shape mismatch " + ", ".join(mismatched))
        hint = "was the file saved from a model of the same architecture?"
    if problems:
        raise LoadError(f"state dict does not match the model: {'; '.join(problems)} ({hint})")
    return IncompatibleKeys(missing, unexpected)


def _import_safetensors() -> Any:
    """Import the optional safetensors package, or explain how to install it."""
    try:
        import safetensors
        import safetensors.numpy
    except ImportError:
        raise ImportError(
            'saving and loading need the safetensors package: pip install "chainrule[full]"'
        ) from None
    return safetensors


def _create_temp(target: str) -> tuple[str, int]:
    """Create a new, uniquely named hidden temp file beside `target`; return its path and fd."""
    directory, name = os.path.split(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue


def _copy_permissions(target: str, tmp: str) -> None:
    """Give `tmp` the permission bits of the file it will replace, if there is one."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return
    os.chmod(tmp, mode)


def _fsync_directory(directory: str) -> None:
    """Persist the rename itself; best effort, as Windows and some filesystems cannot do it."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _saveable_array(key: Any, value: Any) -> np.ndarray:
    """Return `value` as a C-contiguous, native-endian array of a savable dtype, or say why not."""
    if not isinstance(key, str):
        raise TypeError(f"state dict keys must be str, got {key!r} ({type(key).__name__})")
    if key == "__metadata__":
        raise ValueError("the key '__metadata__' is reserved by safetensors; rename that entry")
    if isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
    elif isinstance(getattr(value, "data", None), np.ndarray):
        array = np.asarray(value.data)
    else:
        raise TypeError(
            f"cannot save {key!r}: expected a chainrule Tensor or numpy ndarray, "
            f"got {type(value).__name__}"
        )
    native = array.dtype.newbyteorder("=")
    if native not in _SAVE_DTYPES:
        raise TypeError(
            f"cannot save {key!r}: dtype {array.dtype} is not supported; "
            "use a bool, integer or float16/float32/float64 array"
        )
    return np.require(array, dtype=native, requirements="C")


def _header_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Validate user metadata and add chainrule's own keys (which win over the user's)."""
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict of str -> str, got {type(metadata).__name__}")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(
                f"metadata must be a dict of str -> str, but {key!r} -> {value!r} is not; "
                "convert it with str() or json.dumps()"
            )
    return {**metadata, "format": "chainrule", "chainrule_version": _version()}


def _version() -> str:
    """The installed chainrule version, or "0.0.0" when running from an uninstalled checkout."""
    try:
        return importlib.metadata.version("chainrule")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def _read_header(path: PathLike) -> dict[str, Any]:
    """Read and sanity-check the JSON header of a safetensors file, with one-line LoadErrors."""
    if os.path.isdir(path):
        raise LoadError(f"cannot load {path}: it is a directory, not a safetensors file")
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            prefix = f.read(8)
            length = int.from_bytes(prefix, "little")
            raw = f.read(length) if size >= 8 and length <= _MAX_HEADER else b""
    except FileNotFoundError:
        raise LoadError(f"cannot load {path}: no such file") from None
    except OSError as e:
        raise LoadError(f"cannot load {path}: {e.strerror or e}") from None
    if size == 0:
        raise LoadError(f"cannot load {path}: the file is empty, not a safetensors file")
    if size < 8:
        raise LoadError(
            f"cannot load {path}: {size} bytes is too short for a safetensors file "
            "(truncated, or not safetensors)"
        )
    if length > _MAX_HEADER:
        raise LoadError(f"cannot load {path}: not a safetensors file (invalid header length)")
    if len(raw) < length:
        if raw and not raw.startswith(b"{"):
            raise LoadError(f"cannot load {path}: not a safetensors file (invalid header length)")
        raise LoadError(
            f"cannot load {path}: the file is truncated inside its header ({len(raw)} of "
            f"{length} header bytes present); re-save or re-download it"
        )
    try:
        header = json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        header = None
    if not isinstance(header, dict):
        raise LoadError(f"cannot load {path}: not a safetensors file (header is not a JSON object)")
    data_end = 0
    for key, info in header.items():
        if key == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets)
        ):
            raise LoadError(f"cannot load {path}: not a valid safetensors file (bad entry {key!r})")
        if info.get("dtype") not in _DTYPES:
            raise LoadError(
                f"cannot load {path}: tensor {key!r} has dtype {info.get('dtype')}, which NumPy "
                "cannot hold; convert it to float32 (or another NumPy dtype) before saving"
            )
        data_end = max(data_end, offsets[1])
    present = size - 8 - length
    if present < data_end:
        raise LoadError(
            f"cannot load {path}: the file is truncated ({present} of {data_end} bytes of tensor "
            "data present); re-save or re-download it"
        )
    return header


def _shape(value: Any) -> tuple[int, ...]:
    """Shape of a Tensor, ndarray or nested sequence."""
    return tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
