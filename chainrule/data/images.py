"""Read image files (a folder with one subfolder per class, or loose files) into float32 arrays.

Images are decoded with Pillow, resized and scaled to [0, 1] as (N, C, H, W); ImageSpec records
how, so images given for prediction are read exactly as the training images were.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.data.errors import DataError, optional_import

PathLike = str | os.PathLike


@dataclass
class ImageSpec:
    """How images are read for a model: size (height, width), grayscale or RGB, class names."""

    size: tuple[int, int] = (32, 32)
    grayscale: bool = False
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.size = _size(self.size)
        self.grayscale = bool(self.grayscale)
        self.class_names = [str(c) for c in self.class_names]

    @property
    def channels(self) -> int:
        """Channels per image: 1 for grayscale, 3 for RGB."""
        return 1 if self.grayscale else 3

    def to_dict(self) -> dict[str, Any]:
        """The spec as a JSON-serialisable dict (see from_dict)."""
        return {"size": list(self.size), "grayscale": self.grayscale,
                "class_names": list(self.class_names)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageSpec:
        """Rebuild a spec from to_dict() output."""
        try:
            return cls(tuple(d["size"]), d["grayscale"], list(d["class_names"]))
        except (KeyError, TypeError) as exc:
            raise DataError(f"not a saved ImageSpec ({exc!r}); pass to_dict() output") from exc

    def load(self, paths: PathLike | Iterable[PathLike]) -> tuple[np.ndarray, list[str]]:
        """Read images for prediction the way this spec says (see load_images)."""
        return load_images(paths, self.size, self.grayscale)


def read_image_folder(
    root: PathLike,
    size: int | tuple[int, int] = (32, 32),
    grayscale: bool = False,
    classes: Iterable[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read root/<class>/<image> into (X float32 (N, C, H, W) in [0, 1], y int64, class names).

    Classes are the sorted subfolder names, or `classes` in the order given (e.g. to match a
    training set). Files Pillow cannot read are skipped with one warning giving the count.
    """
    root = Path(root)
    size = _size(size)
    if not root.is_dir():
        raise DataError(f"{root} is not a directory; give a folder with one subfolder per class")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = found if classes is None else [str(c) for c in classes]
    absent = [c for c in names if c not in found]
    if absent:
        raise DataError(
            f"class folder(s) {', '.join(absent)} not found in {root}; "
            f"it has: {', '.join(found) or 'no subfolders'}"
        )
    if len(names) < 2:
        raise DataError(
            f"{root} has {len(names)} class folder(s) {names}; need at least 2, one subfolder per "
            "class (for images without classes use load_images)"
        )
    files, labels = [], []
    for k, name in enumerate(names):
        found_files = _files(root / name)
        files.extend(found_files)
        labels.extend([k] * len(found_files))
    X, kept = _read_all(files, size, grayscale, where=root)
    return X, np.asarray(labels, dtype=np.int64)[kept], names


def load_images(
    paths: PathLike | Iterable[PathLike],
    size: int | tuple[int, int] = (32, 32),
    grayscale: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """Read image files, or every file under a folder, into (X float32 (N, C, H, W), paths read).

    For prediction: the returned paths say which file each row of X came from, since files
    Pillow cannot read are skipped with a warning.
    """
    size = _size(size)
    if isinstance(paths, str | os.PathLike) and Path(paths).is_dir():
        where = Path(paths)
        files = _files(where)
    else:
        files = [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(p) for p in paths]
        where = files[0].parent if len(files) == 1 else "the given files"
        if not files:
            raise DataError("no image paths given; pass image files or a folder")
        absent = [f for f in files if not f.is_file()]
        if absent:
            raise DataError(f"{absent[0]} is not a file; check the path")
    X, kept = _read_all(files, size, grayscale, where=where)
    return X, [str(files[i]) for i in kept]


def _read_all(
    files: list[Path], size: tuple[int, int], grayscale: bool, where: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Decode files into one array; return it and the indices of the files that were readable."""
    image = optional_import("PIL.Image", "Pillow")
    image_ops = optional_import("PIL.ImageOps", "Pillow")
    arrays, kept, bad = [], [], []
    for i, path in enumerate(files):
        try:
            with image.open(path) as img:
                img = image_ops.exif_transpose(img).convert("L" if grayscale else "RGB")
                img = img.resize((size[1], size[0]), image.Resampling.BILINEAR)
        except Exception:  # Pillow raises many types for non-images and corrupt files
            bad.append(path)
            continue
        a = np.asarray(img, dtype=np.float32) / 255.0
        arrays.append(a[None] if grayscale else a.transpose(2, 0, 1))
        kept.append(i)
    if not arrays:
        raise DataError(f"no readable image in {where} ({len(files)} file(s) tried); "
                        "give PNG, JPEG or other files Pillow can open")
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable file(s) in {where} (e.g. {bad[0].name})",
                      stacklevel=3)
    return np.stack(arrays), np.asarray(kept, dtype=np.int64)


def _files(folder: Path) -> list[Path]:
    """Every non-hidden file under folder, sorted by path."""
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _size(size: Any) -> tuple[int, int]:
    """(height, width) from an int or a pair of positive ints."""
    if isinstance(size, int | np.integer):
        pair = (size, size)
    else:
        pair = tuple(size) if isinstance(size, tuple | list) else ()
    if len(pair) != 2 or not all(isinstance(v, int | np.integer) and v > 0 for v in pair):
        raise ValueError(f"size must be an int or (height, width) of positive ints, got {size!r}")
    return int(pair[0]), int(pair[1])
