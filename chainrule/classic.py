"""The two classic single-unit learning rules that backpropagation superseded, for comparison.

Both train one unit, that is one hyperplane w.x + b = 0, so both are limited to what one line
(plane) can do:

- Perceptron (Rosenblatt's rule, threshold unit): on linearly separable data it reaches zero
  training mistakes after finitely many updates (perceptron convergence theorem); on data that
  is not separable it never settles.
- WidrowHoff (LMS / delta rule, linear unit): minimises the squared error of a linear unit by
  online gradient descent; it converges (to near the least-squares solution) when the learning
  rate is small enough and diverges when it is too large. It fits regression targets too.
- Neither can represent XOR (Minsky & Papert): no line puts (0,0), (1,1) on one side and
  (0,1), (1,0) on the other, so a single unit gets at most 3 of those 4 points right.
  A network with a hidden layer trained by backpropagation can learn XOR.

Pure NumPy. Inputs may be anything np.asarray accepts, or chainrule Tensors (their `.data`).
"""

import math
from collections.abc import Iterator
from numbers import Integral, Real
from typing import Self

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["Perceptron", "WidrowHoff", "linearly_separable_problem", "xor_problem"]


def _as_float_array(a: object, name: str) -> np.ndarray:
    """Return `a` as a float64 ndarray, unwrapping a chainrule Tensor through its `.data` array."""
    data = getattr(a, "data", None)
    if isinstance(data, np.ndarray):
        a = data
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of numbers; got {type(a).__name__}") from None


def _check_X(X: object) -> np.ndarray:
    """Validate an input matrix: 2-D, at least one row, finite."""
    X = _as_float_array(X, "X")
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D (n_samples, n_features); got shape {X.shape} "
            "(use X.reshape(-1, 1) for a single feature)"
        )
    if X.shape[0] == 0:
        raise ValueError("X has no samples; pass at least one row")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or Inf; remove or impute those values first")
    return X


def _check_y(y: object, n_samples: int) -> np.ndarray:
    """Validate a target vector: 1-D, one value per sample, finite."""
    y = _as_float_array(y, "y")
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (n_samples,); got shape {y.shape} (use y.ravel())")
    if len(y) != n_samples:
        raise ValueError(f"X has {n_samples} samples but y has {len(y)}; they must match")
    if not np.isfinite(y).all():
        raise ValueError("y contains NaN or Inf; remove those samples first")
    return y


def _training_data(X: object, y: object) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validated X and y for fit, and y's label coding (see `_label_coding`)."""
    X = _check_X(X)
    y = _check_y(y, len(X))
    return X, y, _label_coding(y)


def _label_coding(y: np.ndarray) -> np.ndarray | None:
    """Return the labels [negative, positive] if y is coded {0, 1} or {-1, 1}, else None.

    A y holding only 1s counts as {0, 1}.
    """
    values = set(np.unique(y).tolist())
    for classes in ([0, 1], [-1, 1]):
        if values <= set(classes):
            return np.array(classes)
    return None


def _signs(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Map class labels to the internal targets -1.0 (negative class) and +1.0 (positive class)."""
    return np.where(y == classes[1], 1.0, -1.0)


def _count_mistakes(output: np.ndarray, signs: np.ndarray) -> int:
    """Number of samples whose thresholded output (positive iff > 0) disagrees with the target."""
    return int(np.count_nonzero((output > 0) != (signs > 0)))


class _LinearUnit:
    """What both rules share: hyper-parameters, the seeded epoch order, prediction and scoring."""

    classes_: np.ndarray | None

    def __init__(self, lr: float, epochs: int, shuffle: bool, seed: int | None) -> None:
        if not isinstance(lr, Real) or not 0 < lr < math.inf:
            raise ValueError(f"lr must be a positive finite number; got {lr!r}")
        if not isinstance(epochs, Integral) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer; got {epochs!r}")
        if seed is not None and (not isinstance(seed, Integral) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer or None; got {seed!r}")
        self.lr = lr
        self.epochs = epochs
        self.shuffle = shuffle
        self.seed = seed

    def _set_fitted(self, classes: np.ndarray | None, w: np.ndarray, b: float,
                    history: list) -> None:
        """Store what fit learned: the label coding, weights, bias and per-epoch history."""
        self.classes_, self.weight_, self.bias_ = classes, w, float(b)
        self.history_, self.n_epochs_ = history, len(history)

    def _epoch_orders(self, n_samples: int) -> Iterator[np.ndarray]:
        """Yield the sample order of each epoch: a fresh permutation per epoch if shuffling."""
        rng = np.random.default_rng(self.seed)
        for _ in range(self.epochs):
            yield rng.permutation(n_samples) if self.shuffle else np.arange(n_samples)

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Raw linear output w.x + b for each row of X."""
        if not hasattr(self, "weight_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet; call fit(X, y) first")
        X = _check_X(X)
        if X.shape[1] != len(self.weight_):
            raise ValueError(
                f"X has {X.shape[1]} features but {type(self).__name__} was fitted with "
                f"{len(self.weight_)}; pass the same columns as in fit"
            )
        return X @ self.weight_ + self.bias_

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Class labels in the fitted coding (positive iff w.x + b > 0), or the linear output."""
        output = self.decision_function(X)
        if self.classes_ is None:
            return output
        return np.where(output > 0, self.classes_[1], self.classes_[0])

    def score(self, X: ArrayLike, y: ArrayLike) -> float:
        """Accuracy for class labels; R^2 for regression targets (1.0 or 0.0 if y is constant)."""
        predicted = self.predict(X)
        y = _check_y(y, len(predicted))
        if self.classes_ is None:
            ss_res = float(np.sum((y - predicted) ** 2))
            ss_tot = float(np.sum((y - y.mean()) ** 2))
            return 1.0 - ss_res / ss_tot if ss_tot > 0 else float(ss_res == 0)
        if not set(np.unique(y).tolist()) <= set(self.classes_.tolist()):
            raise ValueError(
                f"y has labels outside {self.classes_.tolist()}, the coding "
                f"{type(self).__name__} was fitted with; recode y the same way"
            )
        return float(np.mean(predicted == y))


class Perceptron(_LinearUnit):
    """Rosenblatt's perceptron: a threshold unit trained by the perceptron rule.

    Output is the positive label iff w.x + b > 0. On each misclassified sample, in a (seeded,
    optionally shuffled) online pass: w += lr * t * x, b += lr * t, with t = +1 for the positive
    class and -1 for the negative. Weights start at zero, so lr only scales w and b and does not
    change the predictions or the number of mistakes.

    Can learn: any linearly separable two-class problem; it then stops with zero training
    mistakes after finitely many updates (perceptron convergence theorem).
    Cannot learn: anything not linearly separable, XOR included (Minsky & Papert); there it
    runs all epochs without settling. A hidden layer trained by backpropagation can.

    Targets are {0, 1} or {-1, 1}; predictions use the same coding (`classes_`).
    After fit: `weight_`, `bias_`, `classes_`, `n_epochs_`, and `history_`, the number of
    training samples the weights misclassify at the end of each epoch. Training stops after
    the first epoch that ends with zero misclassifications (the next pass would change nothing).
    """

    def __init__(
        self, lr: float = 1.0, epochs: int = 100, shuffle: bool = True, seed: int | None = None
    ) -> None:
        super().__init__(lr, epochs, shuffle, seed)

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Train on X (n_samples, n_features) and labels y in {0, 1} or {-1, 1}; return self."""
        X, y, classes = _training_data(X, y)
        if classes is None:
            found = np.unique(y)[:5].tolist()
            raise ValueError(f"Perceptron targets must be {{0, 1}} or {{-1, 1}}; got {found}")
        t = _signs(y, classes)
        w, b = np.zeros(X.shape[1]), 0.0
        history: list[int] = []
        for order in self._epoch_orders(len(X)):
            for x, target in zip(X[order], t[order], strict=True):
                if (x @ w + b > 0) != (target > 0):
                    w += self.lr * target * x
                    b += self.lr * target
            history.append(_count_mistakes(X @ w + b, t))
            if history[-1] == 0:
                break
        self._set_fitted(classes, w, b, history)
        return self


class WidrowHoff(_LinearUnit):
    """Widrow-Hoff LMS (delta) rule on a linear unit, as in ADALINE.

    Online updates, one per sample in a (seeded, optionally shuffled) pass:
    y = w.x + b; w += lr * (d - y) * x; b += lr * (d - y). Weights start at zero.

    Targets decide the task. If y holds only {0, 1} or only {-1, 1} it is classification:
    the unit is trained on d = -1 / +1 (negative / positive class), `predict` returns the
    positive label iff w.x + b > 0 in the same coding as y, `score` is accuracy, and `mistakes_`
    counts misclassified training samples after each epoch. Any other real y is regression:
    d = y, `predict` returns w.x + b, `score` is R^2, and `classes_` and `mistakes_` are None.
    `decision_function` always returns the raw linear output.

    Can learn: the least-squares linear fit; it converges near it when lr is small enough
    (in the mean when lr < 2 / the largest eigenvalue of mean(x x^T), x with a 1 appended for
    the bias; stay well below) and diverges when lr is too large, which fit reports as an
    error. With a fixed lr the online weights keep jittering slightly around the optimum.
    Minimising squared error does not guarantee separating separable classes, though it
    usually does when they are well apart.
    Cannot learn: anything a line cannot represent, XOR included (Minsky & Papert). A hidden
    layer trained by backpropagation can.

    After fit: `weight_`, `bias_`, `classes_`, `n_epochs_` (always `epochs`), and `history_`,
    the mean squared error of d on the training set at the end of each epoch.
    """

    def __init__(
        self, lr: float = 0.01, epochs: int = 100, shuffle: bool = True, seed: int | None = None
    ) -> None:
        super().__init__(lr, epochs, shuffle, seed)

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Train on X (n_samples, n_features) and targets y (labels or real values); return self."""
        X, y, classes = _training_data(X, y)
        d = y if classes is None else _signs(y, classes)
        w, b = np.zeros(X.shape[1]), 0.0
        history: list[float] = []
        mistakes: list[int] = []
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
            for epoch, order in enumerate(self._epoch_orders(len(X)), start=1):
                for x, target in zip(X[order], d[order], strict=True):
                    step = self.lr * (target - (x @ w + b))
                    w += step * x
                    b += step
                output = X @ w + b
                mse = float(np.mean((d - output) ** 2))
                if not math.isfinite(mse):
                    raise RuntimeError(
                        f"WidrowHoff diverged in epoch {epoch}: lr={self.lr} is too large for "
                        "this data; lower lr or scale X"
                    )
                history.append(mse)
                mistakes.append(_count_mistakes(output, d))
        self._set_fitted(classes, w, b, history)
        self.mistakes_ = None if classes is None else mistakes
        return self


def _check_n(n: object) -> None:
    """Validate a dataset size."""
    if not isinstance(n, Integral) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")


def linearly_separable_problem(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Toy 2-D problem a single unit can solve: two balanced classes split by a line.

    Returns X float64 (n, 2), every row within 2 of the origin, and y int64 in {0, 1}; every
    point lies at least 0.1 from the separating line (its direction comes from `seed`).
    """
    _check_n(n)
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    normal = np.array([np.cos(angle), np.sin(angle)])
    offset, margin = 0.2, 0.1
    y = rng.permutation(np.arange(n) % 2)
    X = rng.uniform(-1.0, 1.0, size=(n, 2))
    distance = X @ normal - offset
    wanted = np.where(y == 1, 1.0, -1.0) * (np.abs(distance) + margin)
    X += np.outer(wanted - distance, normal)  # mirror to the class's side, then push off by margin
    return X, y.astype(np.int64)


def xor_problem(n: int = 200, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Toy 2-D problem no single unit can solve: XOR of the unit square's corners.

    Returns X float64 (n, 2) and y int64 in {0, 1}, y = x1 XOR x2. The four corners appear
    equally often (as nearly as n allows; n=4 gives each once) in shuffled order, each moved by
    Gaussian noise of standard deviation `noise` (0 gives the exact corners).
    """
    _check_n(n)
    if not isinstance(noise, Real) or not 0 <= noise < math.inf:
        raise ValueError(f"noise must be a non-negative finite number; got {noise!r}")
    corners = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    labels = np.array([0, 1, 1, 0], dtype=np.int64)
    rng = np.random.default_rng(seed)
    index = rng.permutation(np.arange(n) % 4)
    X = corners[index] + rng.normal(0.0, noise, size=(n, 2))
    return X, labels[index]
