"""What the ``chainrule`` command does, as plain functions: train a network on a table or an
image folder, evaluate it, predict with it, and the model directory that holds the result.

A model directory holds ``model.safetensors`` (the weights), ``model.json`` (architecture and
the fitted preprocessing, so prediction transforms data exactly as training did),
``metrics.json``, ``history.json``, ``report.txt`` and ``plots/``. It is written into a temporary
directory and renamed into place: a failed run leaves nothing half-written.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import nn, optim
from ._random import manual_seed
from .data.errors import DataError
from .io import LoadError, json_safe, load, save, write_json_atomic, write_text_atomic
from .tensor import Tensor

MODEL_FORMAT = "chainrule-model"
TABLE_SUFFIXES = {".csv", ".parquet", ".pq"}
OPTIMIZERS = {
    "adam": optim.Adam,
    "adamw": optim.AdamW,
    "sgd": optim.SGD,
    "rmsprop": optim.RMSprop,
    "adagrad": optim.Adagrad,
}
ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softsign": nn.Softsign,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}
Log = Callable[[str], None]


@dataclass
class TrainOptions:
    """Settings of ``chainrule train`` (the command's flags, with the same defaults)."""

    target: str | None = None
    task: str | None = None
    hidden: list[int] = field(default_factory=lambda: [64, 32])
    activation: str = "relu"
    init: str = "glorot_uniform"
    optimizer: str = "adam"
    lr: float = 1e-3
    epochs: int = 30
    batch_size: int = 32
    prior: str | None = None
    weight_decay: float = 0.0
    early_stopping: int | None = None
    seed: int = 0
    val_fraction: float = 0.2
    image_size: int = 32
    grayscale: bool = False
    monitor_every: int = 10
    progress: bool = True


# -- models -------------------------------------------------------------------------------------


def build_model(arch: dict[str, Any]) -> nn.Module:
    """Rebuild a network from its description in model.json ("mlp" or "convnet")."""
    act = ACTIVATIONS[arch["activation"]]
    init = arch.get("init", "glorot_uniform")
    if arch["kind"] == "mlp":
        layers: list[nn.Module] = []
        sizes = [arch["inputs"], *arch["hidden"]]
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b, init=init), act()]
        layers.append(nn.Linear(sizes[-1], arch["outputs"], init=init))
        return nn.Sequential(*layers)
    if arch["kind"] == "convnet":
        c, h, w = arch["input_shape"]
        flat = 16 * (h // 4) * (w // 4)
        return nn.Sequential(
            nn.Conv2d(c, 8, 3, padding=1), act(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), act(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(flat, arch["hidden"][0] if arch["hidden"] else 64, init=init), act(),
            nn.Linear(arch["hidden"][0] if arch["hidden"] else 64, arch["outputs"], init=init),
        )
    raise LoadError(f"unknown architecture kind {arch['kind']!r} in model.json")


def _check_architecture(arch: Any) -> None:
    """A LoadError naming the first field of an architecture description that is unusable."""
    if not isinstance(arch, dict):
        raise LoadError("its architecture is not a JSON object")

    def positive(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    if arch.get("kind") not in ("mlp", "convnet"):
        raise LoadError(f"unknown architecture kind {arch.get('kind')!r}")
    if arch.get("activation") not in ACTIVATIONS:
        raise LoadError(f"unknown activation {arch.get('activation')!r}")
    if not (isinstance(arch.get("hidden"), list) and all(map(positive, arch["hidden"]))):
        raise LoadError(f"hidden sizes {arch.get('hidden')!r} are not a list of positive integers")
    if not positive(arch.get("outputs")):
        raise LoadError(f"outputs {arch.get('outputs')!r} is not a positive integer")
    if arch["kind"] == "mlp" and not positive(arch.get("inputs")):
        raise LoadError(f"inputs {arch.get('inputs')!r} is not a positive integer")
    shape = arch.get("input_shape")
    if arch["kind"] == "convnet" and not (
        isinstance(shape, list) and len(shape) == 3 and all(map(positive, shape))
        and min(shape[1:]) >= 4
    ):
        raise LoadError(f"input_shape {shape!r} is not [channels, height, width] (height and "
                        "width at least 4)")
    try:
        nn.init.get_initializer(arch.get("init", "glorot_uniform"))
    except ValueError:
        raise LoadError(f"unknown initialiser {arch.get('init')!r}") from None


# -- data ---------------------------------------------------------------------------------------


def is_image_folder(path: Path) -> bool:
    """True for a directory of class subfolders (images); False for a table file."""
    return path.is_dir()


@dataclass
class Prepared:
    """Training data ready for the Trainer, and what model.json must remember about it."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    task: str
    data_spec: dict[str, Any]
    n_outputs: int
    classes: list[Any] | None


def _split(n: int, fraction: float, seed: int, labels: np.ndarray | None) -> tuple:
    """Training and validation indices, stratified by class unless the classes are too small
    for every one of them to give a validation sample."""
    from .data.tabular import train_val_split

    try:
        return train_val_split(n, val_fraction=fraction, seed=seed, stratify=labels)
    except DataError:
        return train_val_split(n, val_fraction=fraction, seed=seed)


def prepare_table(path: Path, opts: TrainOptions) -> Prepared:
    """Read a CSV/Parquet file, split it, fit the preprocessing on the training rows only."""
    import pandas as pd

    from .data.tabular import TabularPreprocessor, read_table

    if not opts.target:
        raise DataError("training on a table needs --target COLUMN (the column to predict)")
    df = read_table(path)
    if opts.target not in df.columns:
        cols = ", ".join(map(str, df.columns))
        raise DataError(f"target column {opts.target!r} is not in {path.name}; columns: {cols}")
    codes = pd.factorize(df[opts.target])[0]
    stratify = codes if opts.task != "regression" and len(set(codes)) <= 20 else None
    tr, va = _split(len(df), opts.val_fraction, opts.seed, stratify)
    pre = TabularPreprocessor(opts.target, task=opts.task).fit(df.iloc[tr])
    X_train, y_train = pre.transform(df.iloc[tr])
    pre.verbose = False
    X_val, y_val = pre.transform(df.iloc[va])
    if pre.task == "regression":  # train on a standardised target, report in original units
        y_train = ((y_train - pre.target_mean) / pre.target_std).astype(np.float32)
        y_val = ((y_val - pre.target_mean) / pre.target_std).astype(np.float32)
    return Prepared(X_train, y_train, X_val, y_val, pre.task,
                    {"kind": "table", "preprocessor": pre.to_dict()}, pre.n_outputs, pre.classes_)


def prepare_images(path: Path, opts: TrainOptions) -> Prepared:
    """Read an image folder (one subfolder per class) and split it, stratified by class."""
    from .data.images import ImageSpec, read_image_folder

    if opts.task == "regression":
        raise DataError("an image folder is a classification task (one subfolder per class)")
    X, y, names = read_image_folder(path, size=opts.image_size, grayscale=opts.grayscale)
    empty = [name for k, name in enumerate(names) if not (y == k).any()]
    if empty:
        raise DataError(f"class folder(s) {', '.join(empty)} in {path} hold no readable image; "
                        "add images or remove the folder")
    tr, va = _split(len(y), opts.val_fraction, opts.seed, y)
    spec = ImageSpec((opts.image_size, opts.image_size), opts.grayscale, names)
    return Prepared(X[tr], y[tr], X[va], y[va], "classification",
                    {"kind": "images", "spec": spec.to_dict()}, len(names), list(names))


# -- training -----------------------------------------------------------------------------------


def _prior(opts: TrainOptions) -> Any:
    """The weight prior named by --prior (gaussian:SCALE or laplace:SCALE), or None."""
    if not opts.prior:
        return None
    kind, _, scale = opts.prior.partition(":")
    try:
        value = float(scale)
    except ValueError:
        value = math.nan
    priors = {"gaussian": nn.priors.Gaussian, "laplace": nn.priors.Laplace}
    if kind not in priors or not 0 < value < math.inf:
        raise ValueError(f"--prior must be gaussian:SCALE or laplace:SCALE with SCALE > 0, "
                         f"e.g. gaussian:1.0; got {opts.prior!r}")
    return priors[kind](value)


def _check_options(opts: TrainOptions) -> None:
    """Every option, checked before any data is read, so a typo costs no time."""
    if opts.activation not in ACTIVATIONS:
        raise ValueError(f"--activation must be one of {', '.join(ACTIVATIONS)}, "
                         f"got {opts.activation!r}")
    if opts.optimizer not in OPTIMIZERS:
        raise ValueError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, "
                         f"got {opts.optimizer!r}")
    try:
        nn.init.get_initializer(opts.init)
    except ValueError as e:
        raise ValueError(f"--init: {e}") from None
    if opts.task not in (None, "classification", "regression"):
        raise ValueError(f"--task must be classification or regression, got {opts.task!r}")
    if not opts.hidden or any(not isinstance(h, int) or h < 1 for h in opts.hidden):
        raise ValueError(f"--hidden needs positive layer sizes like 64,32, got {opts.hidden}")
    patience = 1 if opts.early_stopping is None else opts.early_stopping
    for name, value in (("--epochs", opts.epochs), ("--batch-size", opts.batch_size),
                        ("--early-stopping", patience)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 0 < opts.lr < math.inf:
        raise ValueError(f"--lr must be a positive number, got {opts.lr}")
    if not 0 <= opts.weight_decay < math.inf:
        raise ValueError(f"--weight-decay must be zero or positive, got {opts.weight_decay}")
    if not 0 < opts.val_fraction < 1:
        raise ValueError(f"--val-fraction must be between 0 and 1, got {opts.val_fraction}")
    if not isinstance(opts.image_size, int) or opts.image_size < 4:
        raise ValueError(f"--image-size must be at least 4 (pixels), got {opts.image_size}")
    _prior(opts)


def _check_out(data: Path, out: Path) -> None:
    """Refuse an --out that train could not, or must not, replace (checked before training)."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not _is_model_dir(out):
        raise FileExistsError(f"{out} exists and is not a chainrule model directory, so train "
                              "will not replace it; choose a new --out or remove it")
    data, target = data.resolve(), out.resolve()
    if data.is_relative_to(target):
        raise ValueError(f"the data {data} is inside --out {out}, which train replaces; "
                         "choose another --out")
    if data.is_dir() and target.is_relative_to(data):
        raise ValueError(f"--out {out} is inside the image folder {data}; choose another --out")


def _is_model_dir(d: Path) -> bool:
    """True if ``d`` holds a model.json written by ``train`` (then train may replace ``d``)."""
    try:
        meta = json.loads((d / "model.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == MODEL_FORMAT


def train(data: str | os.PathLike, out: str | os.PathLike, opts: TrainOptions,
          log: Log = print) -> dict[str, Any]:
    """Train on a table or image folder; write the model directory ``out``; return metrics."""
    from .diagnostics import GradientMonitor
    from .train import EarlyStopping, Trainer

    _check_options(opts)
    path = _existing(data)
    _check_out(path, Path(out))
    prep = prepare_images(path, opts) if is_image_folder(path) else prepare_table(path, opts)
    arch = _architecture(prep, opts)
    manual_seed(opts.seed)
    model = build_model(arch)
    loss = nn.CrossEntropyLoss() if prep.task == "classification" else nn.MSELoss()
    optimizer = OPTIMIZERS[opts.optimizer](model.parameters(), lr=opts.lr,
                                           weight_decay=opts.weight_decay)
    monitor = GradientMonitor(model, every=opts.monitor_every)
    callbacks = [EarlyStopping(patience=opts.early_stopping)] if opts.early_stopping else []
    metrics = ("accuracy", "f1") if prep.task == "classification" else ("r2", "mae")
    y_train = prep.y_train if prep.task == "classification" else prep.y_train.reshape(-1, 1)
    y_val = prep.y_val if prep.task == "classification" else prep.y_val.reshape(-1, 1)
    trainer = Trainer(model, loss, optimizer, prior=_prior(opts), metrics=metrics,
                      callbacks=callbacks, progress=opts.progress, verbose=False, seed=opts.seed,
                      monitor=monitor)
    name = {"mlp": "an MLP", "convnet": "a conv net"}[arch["kind"]]
    log(f"Training {name} on {path} ({len(prep.y_train)} training and "
        f"{len(prep.y_val)} validation samples, task: {prep.task})")
    history = trainer.fit((prep.X_train, y_train), val_data=(prep.X_val, y_val),
                          epochs=opts.epochs, batch_size=opts.batch_size)
    monitor.close()
    result = json_safe({
        "task": prep.task,
        "train": _metrics(trainer, prep, prep.X_train, prep.y_train),
        "validation": _metrics(trainer, prep, prep.X_val, prep.y_val),
        "best_epoch": history.best_epoch,
        "epochs_run": len(history),
    })
    report = str(trainer.report)
    health = monitor.report()
    if result["train"]["loss"] is None:  # diverged: report why, and keep no useless model
        log(report)
        log(health)
        reason = history.stop_reason or ("the loss on the training data is not finite; lower "
                                         "the learning rate")
        raise RuntimeError(f"training diverged: {reason}; nothing was written to {out}")
    model_json = {"format": MODEL_FORMAT, "version": 1, "architecture": arch, "task": prep.task,
                  "data": prep.data_spec, "classes": prep.classes}
    with _atomic_dir(out) as tmp:
        save(model, tmp / "model.safetensors", metadata={"format": MODEL_FORMAT})
        write_json_atomic(tmp / "model.json", model_json)
        write_json_atomic(tmp / "metrics.json", result)
        write_json_atomic(tmp / "history.json", history.to_dict())
        write_json_atomic(tmp / "gradient_health.json", monitor.to_dict())
        write_text_atomic(tmp / "report.txt", report + "\n\n" + health + "\n")
        plots = _write_plots(tmp / "plots", history, monitor)
    log(report)
    log(health)
    log(f"Model, metrics and plots written to {out}/ ("
        + ", ".join(p.name for p in plots) + " in plots/)")
    return result


def _architecture(prep: Prepared, opts: TrainOptions) -> dict[str, Any]:
    base = {"activation": opts.activation, "init": opts.init, "hidden": list(opts.hidden),
            "outputs": prep.n_outputs}
    if prep.X_train.ndim == 4:
        return {"kind": "convnet", "input_shape": list(prep.X_train.shape[1:]), **base}
    return {"kind": "mlp", "inputs": int(prep.X_train.shape[1]), **base}


def _metrics(trainer: Any, prep: Prepared | _Loaded, X: np.ndarray, y: np.ndarray) -> dict:
    """Loss and task metrics; regression metrics in the target's original units."""
    from .train import metrics as M

    out = trainer.predict(X).data
    if prep.task == "classification":
        loss = float(nn.functional.cross_entropy(Tensor(out), Tensor(y)).item())
        pred = out.argmax(1)
        return {"loss": loss, "accuracy": M.accuracy(y, pred), "f1": M.f1(y, pred)}
    mean, std = _target_scale(prep)
    loss = float(np.mean((out[:, 0] - y) ** 2))
    pred, true = out[:, 0] * std + mean, y * std + mean
    return {"loss": loss, "r2": M.r2(true, pred), "mae": M.mae(true, pred),
            "mse": M.mse(true, pred)}


def _target_scale(prep: Any) -> tuple[float, float]:
    pre = prep.data_spec["preprocessor"]
    return float(pre["target_mean"]), float(pre["target_std"])


def _write_plots(folder: Path, history: Any, monitor: Any) -> list[Path]:
    from . import plots

    folder.mkdir()
    return [
        plots.plot_learning_curves(history, folder / "learning_curves.png"),
        plots.plot_gradient_norms(monitor, folder / "gradient_norms.png"),
        plots.plot_activation_histograms(monitor, folder / "activations.png"),
    ]


# -- using a trained model ------------------------------------------------------------------------


@dataclass
class _Loaded:
    """A model directory read back: the network and what model.json says about its data."""

    model: nn.Module
    task: str
    data_spec: dict[str, Any]
    classes: list[Any] | None


def load_model_dir(directory: str | os.PathLike) -> _Loaded:
    """Read a model directory written by ``train``; a clear LoadError if it is not one."""
    d = Path(directory)
    if not d.is_dir():
        raise LoadError(f"{d} is not a directory; pass the --out directory of `chainrule train`")
    meta_path, weights = d / "model.json", d / "model.safetensors"
    if not meta_path.is_file() or not weights.is_file():
        raise LoadError(f"{d} is not a chainrule model directory (model.json and "
                        "model.safetensors expected); pass the --out directory of "
                        "`chainrule train`")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError
        raise LoadError(f"{meta_path} is corrupt ({e}); retrain the model") from None
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        raise LoadError(f"{meta_path} was not written by `chainrule train`; pass the --out "
                        "directory of `chainrule train`")
    try:
        _check_meta(meta)
    except LoadError as e:
        raise LoadError(f"{meta_path} is corrupt: {e}; retrain the model") from None
    model = build_model(meta["architecture"])
    state = load(weights)  # a LoadError naming the file if it is not intact safetensors
    try:
        model.load_state_dict(state)
    except LoadError as e:
        raise LoadError(f"{weights} does not fit {meta_path}: {e}") from None
    if not all(np.isfinite(t.data).all() for t in state.values()):
        raise LoadError(f"{weights} holds NaN or infinite weights; retrain the model")
    return _Loaded(model, meta["task"], meta["data"], meta.get("classes"))


def _check_meta(meta: dict[str, Any]) -> None:
    """Check that model.json's fields are usable and agree with each other."""
    arch = meta.get("architecture")
    _check_architecture(arch)
    task, spec, classes = meta.get("task"), meta.get("data"), meta.get("classes")
    if task not in ("classification", "regression"):
        raise LoadError(f"unknown task {task!r}")
    if task == "classification" and not (isinstance(classes, list)
                                         and len(classes) == arch["outputs"]):
        raise LoadError(f"it lists classes {classes!r} for {arch['outputs']} outputs")
    if not isinstance(spec, dict) or spec.get("kind") not in ("table", "images"):
        raise LoadError("its data description is missing or of an unknown kind")
    try:
        if spec["kind"] == "table":
            from .data.tabular import TabularPreprocessor

            pre = TabularPreprocessor.from_dict(spec["preprocessor"], verbose=False)
            width, expected, labels = pre.n_features, arch.get("inputs"), pre.classes_
        else:
            from .data.images import ImageSpec

            ispec = ImageSpec.from_dict(spec["spec"])
            width, expected = [ispec.channels, *ispec.size], arch.get("input_shape")
            labels = ispec.class_names
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise LoadError(f"its {spec['kind']} preprocessing is unusable ({e})") from None
    if width != expected:
        raise LoadError(f"its preprocessing makes inputs of size {width} but the network takes "
                        f"{expected}")
    if labels != classes:
        raise LoadError(f"its preprocessing knows the classes {labels}, not {classes}")
    if spec["kind"] == "table" and task == "regression":
        scale = (pre.target_mean, pre.target_std)
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in scale):
            raise LoadError(f"its target scaling {scale} is not a pair of numbers")


def _inputs(loaded: _Loaded, data: Path, need_target: bool) -> tuple[np.ndarray, Any, Any]:
    """Features (and targets when present) of new data, transformed as at training time."""
    spec = loaded.data_spec
    if spec["kind"] == "images":
        from .data.images import ImageSpec, read_image_folder

        if data.suffix.lower() in TABLE_SUFFIXES:
            raise DataError(f"{data} is a table but this model was trained on images; pass an "
                            "image folder" + ("" if need_target else " or image files"))
        ispec = ImageSpec.from_dict(spec["spec"])
        if need_target:
            X, y, _ = read_image_folder(data, size=ispec.size, grayscale=ispec.grayscale,
                                        classes=ispec.class_names)
            return X, y, None
        X, paths = ispec.load(data)
        return X, None, {"file": paths}
    if data.is_dir():
        raise DataError(f"{data} is a directory but this model was trained on a table; "
                        "pass a CSV or Parquet file")
    from .data.tabular import TabularPreprocessor, read_table

    pre = TabularPreprocessor.from_dict(spec["preprocessor"])
    df = read_table(data)
    if need_target and pre.target not in df.columns:
        raise DataError(f"evaluation needs the target column {pre.target!r}, which is not in "
                        f"{data.name}")
    if not need_target and pre.target in df.columns:  # predict every row, labelled or not
        return pre.transform(df.drop(columns=[pre.target]))[0], None, df
    X, y = pre.transform(df)
    if y is not None and len(y) == 0:
        raise DataError(f"every row of {data.name} lacks the target {pre.target!r}; "
                        "nothing to evaluate")
    if y is not None and loaded.task == "regression":
        mean, std = _target_scale(loaded)
        y = ((y - mean) / std).astype(np.float32)
    return X, y, df


def evaluate(model_dir: str | os.PathLike, data: str | os.PathLike) -> dict[str, Any]:
    """The same metrics as training reports, on new labelled data."""
    from .train import Trainer

    loaded = load_model_dir(model_dir)
    X, y, _ = _inputs(loaded, _existing(data), need_target=True)
    trainer = Trainer(loaded.model, nn.CrossEntropyLoss() if loaded.task == "classification"
                      else nn.MSELoss(), progress=False, verbose=False)
    return json_safe({"task": loaded.task, "n": int(len(X)), **_metrics(trainer, loaded, X, y)})


def predict(model_dir: str | os.PathLike, data: str | os.PathLike,
            out: str | os.PathLike | None = None) -> str:
    """Predictions for new data as CSV text (written atomically to ``out`` when given)."""
    import pandas as pd

    from .train import Trainer

    loaded = load_model_dir(model_dir)
    X, _, frame = _inputs(loaded, _existing(data), need_target=False)
    trainer = Trainer(loaded.model, nn.MSELoss(), progress=False, verbose=False)
    raw = trainer.predict(X).data
    result = pd.DataFrame(frame) if isinstance(frame, dict) else frame.copy()
    if loaded.task == "classification":
        probs = nn.functional.softmax(Tensor(raw), dim=1).data
        result["prediction"] = [loaded.classes[i] for i in probs.argmax(1)]
        for i, c in enumerate(loaded.classes):
            result[f"p_{c}"] = np.round(probs[:, i], 6)
    else:
        mean, std = _target_scale(loaded)
        result["prediction"] = raw[:, 0] * std + mean
    text = result.to_csv(index=False)
    if out is not None:
        write_text_atomic(out, text)
    return text


# -- helpers --------------------------------------------------------------------------------------


def _existing(data: str | os.PathLike) -> Path:
    path = Path(data)
    if not path.exists():
        raise DataError(f"{path} does not exist; pass a CSV/Parquet file or an image folder")
    return path


class _atomic_dir:
    """Build a directory under a temporary name and rename it into place on success only; on
    failure remove it, and any parent directories made for it, leaving the old state alone."""

    def __init__(self, target: str | os.PathLike) -> None:
        self.target = Path(target).resolve()

    def __enter__(self) -> Path:
        if self.target.exists() and not self.target.is_dir():
            raise FileExistsError(f"{self.target} exists and is not a directory; choose --out")
        missing = [p for p in self.target.parents if not p.exists()]
        self.created = missing[-1] if missing else None  # the outermost directory made here
        self.tmp: Path | None = None
        try:
            parent = self.target.parent
            parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.", dir=parent))
        except BaseException:
            self._discard()
            raise
        return self.tmp

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            try:
                self._swap()
                return
            except BaseException:
                self._discard()
                raise
        self._discard()

    def _swap(self) -> None:
        """Put the finished directory in place of the target (replacing an old model)."""
        assert self.tmp is not None
        os.chmod(self.tmp, 0o755)
        old = None
        if self.target.exists():
            old = self.tmp.with_name(self.tmp.name + ".old")
            os.replace(self.target, old)
        try:
            os.replace(self.tmp, self.target)
        except BaseException:
            if old is not None:
                os.replace(old, self.target)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def _discard(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self.created is not None:
            shutil.rmtree(self.created, ignore_errors=True)
