"""Datasets and the DataLoader that cuts them into (optionally shuffled) mini-batches.

PyTorch's names and semantics. Datasets that hold whole arrays (TensorDataset, and Subsets of
it) hand out a batch with one fancy-indexing operation per array (``__getitems__``), so
batching costs no Python loop over samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from chainrule._random import Generator, rng
from chainrule.tensor import Tensor, as_array

__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset"]


class Dataset:
    """Base class of map-style datasets: implement ``__getitem__(i)`` and ``__len__()``.

    Optionally implement ``__getitems__(indices)`` returning a whole, already collated batch;
    DataLoader then fetches each batch with that single call.
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")


class TensorDataset(Dataset):
    """Samples are rows of the given tensors (or arrays), which must share their first dimension.

    ``dataset[i]`` is a tuple of one row per tensor; a batch is fetched by indexing every tensor
    with an index array at once.
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor, e.g. TensorDataset(X, y)")
        self.tensors = tuple(
            t if isinstance(t, Tensor) else Tensor._make(as_array(t)) for t in tensors
        )
        sizes = [len(t.data) if t.data.ndim else None for t in self.tensors]
        if None in sizes:
            raise ValueError("TensorDataset tensors need a first (sample) dimension, got a scalar")
        if len(set(sizes)) != 1:
            raise ValueError(
                f"TensorDataset tensors must have the same number of rows, got sizes {sizes}"
            )

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(Tensor._make(np.asarray(t.data[index])) for t in self.tensors)

    def __getitems__(self, indices: np.ndarray) -> tuple[Tensor, ...]:
        """One batch: every tensor indexed with the whole index array at once."""
        return tuple(Tensor._make(t.data[indices]) for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0].data)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order (batched fetching is kept)."""

    def __init__(self, dataset: Any, indices: Sequence[int] | np.ndarray) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[int(self.indices[index])]

    def __getitems__(self, indices: np.ndarray) -> Any:
        """One batch via the parent's ``__getitems__`` when it has one, else sample by sample."""
        return fetch(self.dataset, self.indices[indices])

    def __len__(self) -> int:
        return len(self.indices)


class DataLoader:
    """Iterate over ``dataset`` in mini-batches of ``batch_size`` samples.

    With ``shuffle`` each pass draws a new permutation from ``generator`` (default: the one
    seeded by ``chainrule.manual_seed``), so a seed fixes the whole sequence of batches.
    ``drop_last`` drops a final batch smaller than ``batch_size``. Batches are tuples of Tensors
    when samples are tuples (as from TensorDataset), else single Tensors.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: Generator | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise TypeError(f"batch_size must be a positive integer, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                f"DataLoader needs a dataset with __len__ and __getitem__, got "
                f"{type(dataset).__name__}; wrap arrays in TensorDataset(X, y)"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = generator

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        n = len(self.dataset)
        order = rng(self.generator).permutation(n) if self.shuffle else np.arange(n)
        stop = len(self) * self.batch_size
        for start in range(0, stop, self.batch_size):
            yield fetch(self.dataset, order[start : min(start + self.batch_size, n)])


def fetch(dataset: Any, indices: np.ndarray) -> Any:
    """The batch of ``dataset`` at ``indices``: one ``__getitems__`` call if it has one, else
    its samples collated by stacking."""
    getitems = getattr(dataset, "__getitems__", None)
    if getitems is not None:
        return getitems(indices)
    return collate([dataset[int(i)] for i in indices])


def collate(samples: list[Any]) -> Any:
    """Stack a list of samples into a batch: tuples field by field, arrays/tensors/numbers along
    a new first dimension."""
    first = samples[0]
    if isinstance(first, tuple | list):
        return tuple(collate([s[k] for s in samples]) for k in range(len(first)))
    if isinstance(first, dict):
        return {k: collate([s[k] for s in samples]) for k in first}
    return Tensor._make(np.stack([np.asarray(as_array(s)) for s in samples]))
