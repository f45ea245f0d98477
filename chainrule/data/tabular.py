"""Read CSV/Parquet tables and turn them into float32 feature matrices and targets.

TabularPreprocessor learns imputation, scaling and one-hot encoding from training data and
saves as a JSON-safe dict, so prediction later applies exactly the same transform.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chainrule.data.errors import DataError, optional_import

if TYPE_CHECKING:
    import pandas

TASKS = ("classification", "regression")
MAX_CLASSES = 20  # an integer target with at most this many distinct values is a class label
FORMAT = "chainrule.TabularPreprocessor"
_READERS = {".csv": "read_csv", ".parquet": "read_parquet", ".pq": "read_parquet"}


def read_table(path: str | Path) -> pandas.DataFrame:
    """Read a .csv or .parquet (.pq) file into a DataFrame; bad input raises one-line DataError."""
    pd = optional_import("pandas", "pandas")
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise DataError(f"{path} {what}; give the path of a .csv or .parquet file")
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise DataError(f"{path}: unsupported file type '{path.suffix}'; use .csv, .parquet or .pq")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; it needs a header row and at least one data row")
    if suffix != ".csv":
        optional_import("pyarrow", "pyarrow")
    try:
        df = getattr(pd, _READERS[suffix])(path)
    except Exception as exc:  # parsers raise many types; each means the content is unreadable
        lines = str(exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        kind = "CSV" if suffix == ".csv" else "Parquet"
        raise DataError(f"cannot read {path} as {kind}: {reason}; check the file") from exc
    if len(df) == 0:
        raise DataError(f"{path} has no data rows; it needs at least one row below the header")
    return df


def train_val_split(
    n: int, val_fraction: float = 0.2, seed: int = 0, stratify: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices 0..n-1 into sorted (train, val) int64 arrays, deterministically by seed.

    With `stratify` (one label per row) each class keeps its share in both parts.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    if n < 2:
        raise ValueError(f"need at least 2 rows to split into train and validation, got {n}")
    rng = np.random.default_rng(seed)
    if stratify is None:
        n_val = min(n - 1, max(1, round(n * val_fraction)))
        val_idx = rng.permutation(n)[:n_val]
    else:
        labels = np.asarray(stratify)
        if labels.shape != (n,):
            raise ValueError(f"stratify has shape {labels.shape} for {n} rows; give 1 label a row")
        _, inverse = np.unique(labels, return_inverse=True)
        groups = [np.flatnonzero(inverse == k) for k in range(inverse.max() + 1)]
        take = [rng.permutation(g)[: round(len(g) * val_fraction)] for g in groups]
        val_idx = np.concatenate(take)
        if len(val_idx) == 0:
            raise DataError(
                f"val_fraction={val_fraction} leaves no validation rows in any class; raise it"
            )
    val_idx = np.sort(val_idx).astype(np.int64)
    return np.setdiff1d(np.arange(n, dtype=np.int64), val_idx), val_idx


class TabularPreprocessor:
    """Turn a DataFrame into float32 features X and target y, the same way at fit and predict time.

    Numeric columns: missing -> training median, then standardised. Text/category/bool columns:
    missing -> most frequent training value, then one-hot (unseen values -> all zeros).
    Classification targets become int64 indices into `classes_`; regression targets stay float32.
    transform() prints notes about dropped rows, filled values and unseen categories to stderr
    when `verbose`; fit() is silent, so fit_transform() reports each note once.
    """

    def __init__(self, target: str, task: str | None = None, verbose: bool = True):
        if task not in (None, *TASKS):
            raise ValueError(f"task must be 'classification', 'regression' or None, not {task!r}")
        self.target = target
        self.task = task
        self.verbose = verbose
        self._requested_task = task
        self.columns: list[dict[str, Any]] | None = None
        self.classes_: list[Any] | None = None
        self.target_mean: float | None = None
        self.target_std: float | None = None

    # ---- fitting -------------------------------------------------------------------------

    def fit(self, df: pandas.DataFrame) -> TabularPreprocessor:
        """Learn the task, classes and per-column statistics from training rows."""
        pd = optional_import("pandas", "pandas")
        _check_frame(pd, df)
        if self.target not in df.columns:
            names = ", ".join(map(str, df.columns))
            raise DataError(f"target column {self.target!r} not found; columns are: {names}")
        df = df[df[self.target].notna()]
        if df.empty:
            raise DataError(f"target column {self.target!r} has no values; fill it or pick another")
        features = [c for c in df.columns if c != self.target]
        if not features:
            raise DataError(f"the table has no columns besides target {self.target!r}; add some")
        self._fit_target(pd, df[self.target])
        self.columns = [_fit_column(pd, df[name], name) for name in features]
        return self

    def _fit_target(self, pd: Any, y: pandas.Series) -> None:
        numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
        values = y.to_numpy(dtype=np.float64, na_value=np.nan) if numeric else None
        if values is not None and np.isinf(values).any():
            raise DataError(f"target column {self.target!r} contains infinite values; fix them")
        task = self._requested_task or _detect_task(values)
        if task == "regression":
            if values is None:
                raise DataError(
                    f"target column {self.target!r} is not numeric (e.g. {y.iloc[0]!r}), so it "
                    "cannot be used for regression; use task='classification'"
                )
            std = float(values.std())
            self.classes_, self.target_mean = None, float(values.mean())
            self.target_std = std or 1.0
        else:
            classes = _classes(y, values)
            if len(classes) < 2:
                raise DataError(
                    f"target column {self.target!r} has a single class ({classes[0]!r}); "
                    "classification needs at least 2"
                )
            self.classes_, self.target_mean, self.target_std = classes, None, None
        self.task = task

    # ---- transforming --------------------------------------------------------------------

    def transform(self, df: pandas.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """Return (X float32 (n, n_features), y or None when the target column is absent)."""
        pd = optional_import("pandas", "pandas")
        columns = self._fitted_columns()
        _check_frame(pd, df)
        missing = [c["name"] for c in columns if c["name"] not in df.columns]
        if missing:
            names = ", ".join(map(repr, missing))
            raise DataError(f"column(s) {names} missing; the preprocessor was fitted with them")
        y = None
        if self.target in df.columns:
            keep = df[self.target].notna()
            if not keep.all():
                dropped = int((~keep).sum())
                self._note(f"dropped {dropped} row(s) whose target {self.target!r} is missing")
                df = df[keep]
            y = self._encode_target(pd, df[self.target])
        X = np.zeros((len(df), self.n_features), dtype=np.float32)
        start = 0
        for col in columns:
            if col["kind"] == "numeric":
                X[:, start] = self._numeric(pd, df[col["name"]], col)
                start += 1
            else:
                self._one_hot(df[col["name"]], col, X[:, start : start + len(col["categories"])])
                start += len(col["categories"])
        return X, y

    def fit_transform(self, df: pandas.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """fit(df) then transform(df)."""
        return self.fit(df).transform(df)

    def _numeric(self, pd: Any, s: pandas.Series, col: dict[str, Any]) -> np.ndarray:
        values = _to_float(pd, s, col["name"])
        missing = np.isnan(values)
        if missing.any():
            self._note(
                f"column {col['name']!r}: filled {int(missing.sum())} missing value(s) "
                f"with the training median {col['median']:g}"
            )
            values[missing] = col["median"]
        return (values - col["mean"]) / col["std"]

    def _one_hot(self, s: pandas.Series, col: dict[str, Any], out: np.ndarray) -> None:
        text, present = _text(s)
        if not present.all():
            self._note(
                f"column {col['name']!r}: filled {int((~present).sum())} missing value(s) "
                f"with the most frequent training value {col['fill']!r}"
            )
            text[~present] = col["fill"]
        position = {c: k for k, c in enumerate(col["categories"])}
        idx = np.array([position.get(v, -1) for v in text], dtype=np.int64)
        unseen = idx < 0
        if unseen.any():
            self._note(
                f"column {col['name']!r}: {int(unseen.sum())} value(s) not seen in training "
                f"(e.g. {text[unseen][0]!r}) encoded as all zeros"
            )
        rows = np.flatnonzero(~unseen)
        out[rows, idx[rows]] = 1.0

    def _encode_target(self, pd: Any, y: pandas.Series) -> np.ndarray:
        if self.task == "regression":
            return _to_float(pd, y, self.target).astype(np.float32)
        index = {c: k for k, c in enumerate(self.classes_)}
        keys = [str(v) for v in y] if isinstance(self.classes_[0], str) else list(y)
        codes = np.array([index.get(v, -1) for v in keys], dtype=np.int64)
        if (codes < 0).any():
            bad = keys[int(np.argmax(codes < 0))]
            known = ", ".join(map(repr, self.classes_[:10]))
            raise DataError(
                f"target column {self.target!r} has value {bad!r} that was not a class in "
                f"training ({known}); remove those rows"
            )
        return codes

    def inverse_transform_target(self, indices: Any) -> np.ndarray:
        """Class indices (e.g. logits.argmax(1)) -> labels; regression values pass through."""
        self._fitted_columns()
        values = np.asarray(indices)
        if self.task == "regression":
            return values.astype(np.float32)
        if not np.issubdtype(values.dtype, np.integer):
            kind = values.dtype
            raise TypeError(f"pass integer class indices (e.g. logits.argmax(1)), not {kind}")
        if values.size and (values.min() < 0 or values.max() >= len(self.classes_)):
            raise ValueError(f"class indices must be in 0..{len(self.classes_) - 1}")
        return np.asarray(self.classes_)[values]

    # ---- description and persistence -----------------------------------------------------

    @property
    def feature_names(self) -> list[str]:
        """Names of the columns of X: numeric column names and 'column=category' for one-hots."""
        names = []
        for col in self._fitted_columns():
            if col["kind"] == "numeric":
                names.append(str(col["name"]))
            else:
                names.extend(f"{col['name']}={c}" for c in col["categories"])
        return names

    @property
    def n_features(self) -> int:
        """Number of columns of X."""
        return sum(
            1 if c["kind"] == "numeric" else len(c["categories"]) for c in self._fitted_columns()
        )

    @property
    def n_outputs(self) -> int:
        """Outputs a model needs: number of classes, or 1 for regression."""
        self._fitted_columns()
        return 1 if self.task == "regression" else len(self.classes_)

    def to_dict(self) -> dict[str, Any]:
        """The fitted preprocessing as a JSON-serialisable dict (see from_dict)."""
        return {
            "format": FORMAT,
            "version": 1,
            "target": self.target,
            "task": self.task,
            "classes": copy.deepcopy(self.classes_),
            "target_mean": self.target_mean,
            "target_std": self.target_std,
            "columns": copy.deepcopy(self._fitted_columns()),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], verbose: bool = True) -> TabularPreprocessor:
        """Rebuild a fitted preprocessor from to_dict() output."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise DataError("not a saved TabularPreprocessor; pass the dict made by to_dict()")
        try:
            pre = cls(d["target"], d["task"], verbose=verbose)
            pre.columns = copy.deepcopy(d["columns"])
            pre.classes_ = copy.deepcopy(d["classes"])
            pre.target_mean, pre.target_std = d["target_mean"], d["target_std"]
        except KeyError as exc:
            raise DataError(f"saved TabularPreprocessor is missing {exc}; re-save it") from exc
        return pre

    def _fitted_columns(self) -> list[dict[str, Any]]:
        if self.columns is None:
            raise RuntimeError("this TabularPreprocessor is not fitted; call fit(df) first")
        return self.columns

    def _note(self, message: str) -> None:
        if self.verbose:
            print(message, file=sys.stderr)

    def __repr__(self) -> str:
        state = "unfitted" if self.columns is None else f"{self.n_features} features"
        return f"TabularPreprocessor(target={self.target!r}, task={self.task!r}, {state})"


# ---- column helpers ------------------------------------------------------------------------


def _check_frame(pd: Any, df: Any) -> None:
    if not isinstance(df, pd.DataFrame):
        kind = type(df).__name__
        raise TypeError(f"expected a pandas DataFrame, got {kind}; read files with read_table")
    duplicated = df.columns[df.columns.duplicated()]
    if len(duplicated):
        raise DataError(f"column {duplicated[0]!r} appears more than once; rename the copies")


def _detect_task(values: np.ndarray | None) -> str:
    """Classification for non-numeric targets and integer targets with few distinct values."""
    if values is None:
        return "classification"
    n_distinct = len(np.unique(values))
    integral = bool(np.all(values == np.round(values)))
    few = n_distinct <= MAX_CLASSES and n_distinct <= len(values) / 2
    return "classification" if integral and few else "regression"


def _classes(y: pandas.Series, values: np.ndarray | None) -> list[Any]:
    """Sorted distinct labels as JSON-safe Python values (int, float, bool or str)."""
    if values is not None:
        distinct = np.unique(values)
        integral = np.all(distinct == np.round(distinct))
        return [int(v) if integral else float(v) for v in distinct]
    distinct = y.unique()
    if all(isinstance(v, bool | np.bool_) for v in distinct):
        return sorted(bool(v) for v in distinct)
    return sorted({str(v) for v in distinct})


def _fit_column(pd: Any, s: pandas.Series, name: Any) -> dict[str, Any]:
    """Statistics for one feature column: median/mean/std if numeric, categories/fill otherwise."""
    if _is_numeric_column(pd, s, name):
        values = _to_float(pd, s, name)
        present = ~np.isnan(values)
        if not present.any():
            raise DataError(f"column {name!r} has no values; drop it")
        median = float(np.median(values[present]))
        filled = np.where(present, values, median)
        std = float(filled.std())
        return {"name": name, "kind": "numeric", "median": median,
                "mean": float(filled.mean()), "std": std if std > 0 else 1.0}
    text, present = _text(s)
    if not present.any():
        raise DataError(f"column {name!r} has no values; drop it")
    categories, counts = np.unique(text[present].astype(str), return_counts=True)
    return {"name": name, "kind": "categorical", "categories": [str(c) for c in categories],
            "fill": str(categories[np.argmax(counts)])}


def _is_numeric_column(pd: Any, s: pandas.Series, name: Any) -> bool:
    """True for number columns and for text columns whose values are mostly numbers."""
    types = pd.api.types
    if types.is_bool_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype):
        return False
    if types.is_numeric_dtype(s) and not types.is_complex_dtype(s):
        return True
    if not (types.is_object_dtype(s) or types.is_string_dtype(s)):
        raise DataError(
            f"column {name!r} has unsupported type {s.dtype}; convert it to numbers or text, "
            "or drop it"
        )
    present = s.dropna().astype(object)
    if present.empty or present.map(_is_bool).any():
        return False
    # A mostly-numeric text column is a numeric column with typos; _to_float reports them.
    return bool(pd.to_numeric(present, errors="coerce").notna().mean() > 0.5)


def _to_float(pd: Any, s: pandas.Series, name: Any) -> np.ndarray:
    """A writable float64 copy of a column (NaN for missing); text or infinity raise DataError."""
    types = pd.api.types
    if types.is_numeric_dtype(s) and not types.is_bool_dtype(s):
        values = np.array(s.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    else:
        objs = s.astype(object)
        parsed = pd.to_numeric(objs.mask(objs.map(_is_bool)), errors="coerce")
        bad = (parsed.isna() & objs.notna()).to_numpy()
        if bad.any():
            raise DataError(
                f"column {name!r} should hold numbers but contains {objs[bad].iloc[0]!r}; "
                "fix or remove such values"
            )
        values = np.array(parsed.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    if np.isinf(values).any():
        raise DataError(f"column {name!r} contains infinite values; replace or blank them")
    return values


def _text(s: pandas.Series) -> tuple[np.ndarray, np.ndarray]:
    """Column values as an object array of str (None where missing), and the present-mask."""
    present = s.notna().to_numpy()
    text = np.full(len(s), None, dtype=object)
    text[present] = [str(v) for v in s[present]]
    return text, present


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool | np.bool_)
