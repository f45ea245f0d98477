"""Small example datasets that need no download: bundled sets, 2-D toy problems, generated files.

Everything is seeded and deterministic. The file generators (a CSV table, an image folder) write
atomically, so a half-written result is never left behind.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from chainrule.data.errors import optional_import
from chainrule.data.images import PathLike, _size
from chainrule.io import write_text_atomic

IMAGE_CLASSES = ("horizontal", "vertical", "circle")


# ---- bundled with scikit-learn -------------------------------------------------------------


def load_digits(as_images: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 handwritten digits: X float32 (1797, 64) in [0, 1], y int64 in 0..9.

    With as_images=True X has shape (1797, 1, 8, 8), ready for a convolutional network.
    """
    datasets = optional_import("sklearn.datasets", "scikit-learn")
    bunch = datasets.load_digits()
    X = (bunch.data / 16.0).astype(np.float32)
    return (X.reshape(-1, 1, 8, 8) if as_images else X), bunch.target.astype(np.int64)


def load_diabetes() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's diabetes regression set: X float32 (442, 10) standardised, y float32."""
    datasets = optional_import("sklearn.datasets", "scikit-learn")
    bunch = datasets.load_diabetes(scaled=False)
    X = (bunch.data - bunch.data.mean(0)) / bunch.data.std(0)
    return X.astype(np.float32), bunch.target.astype(np.float32)


# ---- 2-D toy problems ----------------------------------------------------------------------


def make_xor(n: int = 200, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """XOR: points in [-1, 1]^2, class 1 where the coordinates differ in sign (not linearly
    separable, the classic case for a hidden layer). X float32 (n, 2), y int64."""
    _check(n=n, noise=noise)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, 2))
    y = ((X[:, 0] > 0) != (X[:, 1] > 0)).astype(np.int64)
    return (X + noise * rng.standard_normal((n, 2))).astype(np.float32), y


def make_spirals(
    n_per_class: int = 100, n_classes: int = 3, noise: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class. X float32 (n_per_class * n_classes, 2), y int64."""
    _check(n_per_class=n_per_class, noise=noise)
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    rng = np.random.default_rng(seed)
    radius = np.linspace(0.0, 1.0, n_per_class)
    X, y = [], []
    for k in range(n_classes):
        angle = np.linspace(k * 4.0, (k + 1) * 4.0, n_per_class)
        angle = angle + noise * rng.standard_normal(n_per_class)
        X.append(np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1))
        y.append(np.full(n_per_class, k, dtype=np.int64))
    return np.concatenate(X).astype(np.float32), np.concatenate(y)


def make_moons(n: int = 200, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles, classes 0 and 1. X float32 (n, 2), y int64."""
    _check(n=n, noise=noise)
    rng = np.random.default_rng(seed)
    y = np.arange(n, dtype=np.int64) % 2
    angle = rng.uniform(0.0, np.pi, n)
    X = np.where(
        y[:, None] == 0,
        np.stack([np.cos(angle), np.sin(angle)], axis=1),
        np.stack([1.0 - np.cos(angle), 0.5 - np.sin(angle)], axis=1),
    )
    return (X + noise * rng.standard_normal((n, 2))).astype(np.float32), y


# ---- generated files -----------------------------------------------------------------------


def make_tabular_csv(
    path: PathLike, n: int = 500, task: str = "classification", seed: int = 0
) -> Path:
    """Write an airline-passenger-satisfaction-like CSV with numeric and categorical columns and
    some missing values; target 'satisfaction' (satisfied / neutral or dissatisfied) or, for
    task='regression', 'satisfaction_score' (0-100). Returns the path."""
    _check(n=n)
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', not {task!r}")
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise ValueError(f"{path} should end in .csv so read_table can read it")
    rng = np.random.default_rng(seed)
    loyal = rng.random(n) < 0.8
    business_trip = rng.random(n) < 0.7
    seat = rng.choice(["Business", "Eco", "Eco Plus"], size=n, p=[0.45, 0.45, 0.10])
    distance = np.clip(np.round(rng.lognormal(6.6, 0.8, n)), 50, 5000)
    wifi = rng.integers(0, 6, n)
    food = rng.integers(1, 6, n)
    comfort = rng.integers(1, 6, n)
    delay = np.where(rng.random(n) < 0.45, 0.0, np.round(rng.exponential(25.0, n)))
    score = (0.9 * business_trip + 0.7 * (seat == "Business") + 0.5 * loyal
             + 0.45 * (wifi - 2.5) + 0.35 * (food - 3) + 0.4 * (comfort - 3)
             + 0.0002 * distance - 0.012 * delay + 0.5 * rng.standard_normal(n))
    if task == "classification":
        satisfied = score > np.median(score)
        target = ("satisfaction", np.where(satisfied, "satisfied", "neutral or dissatisfied"))
    else:
        target = ("satisfaction_score", np.round(np.clip(32 + 12 * score, 0, 100), 1))
    columns = {
        "age": rng.integers(7, 86, n),
        "customer_type": np.where(loyal, "Loyal", "Disloyal"),
        "travel_type": np.where(business_trip, "Business travel", "Personal travel"),
        "seat_class": _blank(seat, rng, 0.03),
        "flight_distance": distance.astype(np.int64),
        "wifi_service": wifi,
        "food_quality": _blank(food, rng, 0.02),
        "seat_comfort": comfort,
        "departure_delay_min": _blank(delay.astype(np.int64), rng, 0.06),
        target[0]: target[1],
    }
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*columns.values(), strict=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text.getvalue())
    return path


def make_image_folder(
    root: PathLike,
    n_per_class: int = 20,
    size: int | tuple[int, int] = (32, 32),
    seed: int = 0,
    n_classes: int = 2,
) -> Path:
    """Write root/<class>/<class>_NNN.png: noisy horizontal stripes, vertical stripes and (with
    n_classes=3) discs, in random colours. The folder appears whole or not at all. Returns root."""
    image = optional_import("PIL.Image", "Pillow")
    _check(n_per_class=n_per_class)
    if n_classes not in (2, 3):
        raise ValueError(f"n_classes must be 2 or 3, got {n_classes}")
    height, width = _size(size)
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} already exists; remove it or choose a new path")
    root.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        for name in IMAGE_CLASSES[:n_classes]:
            (tmp / name).mkdir()
            for i in range(n_per_class):
                pixels = _draw(name, height, width, rng)
                image.fromarray(pixels).save(tmp / name / f"{name}_{i:03d}.png")
        os.chmod(tmp, 0o755)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def _draw(name: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """One noisy RGB uint8 picture of the given class."""
    rows, cols = np.mgrid[0:height, 0:width]
    if name == "circle":
        centre = rng.uniform(0.35, 0.65, 2) * (height, width)
        radius = rng.uniform(0.2, 0.35) * min(height, width)
        mask = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2
    else:
        period = rng.uniform(0.15, 0.3) * (height if name == "horizontal" else width)
        along = rows if name == "horizontal" else cols
        mask = ((along + rng.uniform(0, period)) % period) < period / 2
    foreground = rng.uniform(0.6, 1.0, 3)
    background = rng.uniform(0.0, 0.35, 3)
    pixels = np.where(mask[..., None], foreground, background)
    pixels = pixels + 0.08 * rng.standard_normal(pixels.shape)
    return np.round(np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)


def _blank(values: np.ndarray, rng: np.random.Generator, fraction: float) -> list:
    """values as a list with about `fraction` of entries blanked (written as empty CSV cells)."""
    missing = rng.random(len(values)) < fraction
    return ["" if m else v for v, m in zip(values.tolist(), missing, strict=True)]


def _check(**values: float) -> None:
    """Sizes must be positive and noise non-negative."""
    for name, value in values.items():
        if value < 0 or (name != "noise" and value < 1):
            raise ValueError(f"{name} must be {'>= 0' if name == 'noise' else '>= 1'}, got {value}")
