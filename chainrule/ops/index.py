"""Indexing: ``x[index]`` with slices, integers, integer arrays and boolean masks.

The VJP scatters the gradient back into zeros; repeated integer indices accumulate (np.add.at).
Its own VJP is indexing again, so second derivatives flow through both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from . import _core
from ._core import defop, poly


def index_data(index: Any) -> Any:
    """Replace Tensors inside an index (masks, index arrays) by their arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _is_basic(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(
        i is None or i is Ellipsis or isinstance(i, (int, slice, np.integer)) for i in items
    )


def _scatter_fwd(g: np.ndarray, shape: tuple, index: Any) -> np.ndarray:
    out = np.zeros(shape, dtype=g.dtype)
    if _is_basic(index):
        out[index] = g
    else:
        np.add.at(out, index, g)
    return out


index_backward_ = defop(
    "index_backward", _scatter_fwd, lambda g, ans, gin, shape, index: g[index]
)
_scatter = poly(index_backward_)
getitem_ = defop(
    "getitem",
    lambda x, index: x[index],
    lambda g, ans, x, index: _scatter(g, x.shape, index),
)


def getitem(input: Any, index: Any) -> Tensor:
    """``input[index]``; index may hold Tensors (boolean masks, integer index tensors)."""
    if _core.TRACER is not None and any(
            isinstance(i, Tensor) and i.dtype == np.bool_
            for i in (index if isinstance(index, tuple) else (index,))):
        _core.TRACER.unsupported("indexing with a boolean mask tensor (the result's shape "
                                 "depends on its values); use where() instead")
    index = index_data(index)
    try:
        return getitem_(input, index=index)
    except IndexError as e:
        raise IndexError(
            f"index {index!r} is invalid for a tensor of shape {np.shape(input)}: {e}"
        ) from None


def take_along_dim(input: Any, indices: Any, dim: int) -> Tensor:
    """Pick one element per position along ``dim`` (used by NLL losses)."""
    idx = index_data(indices)
    shape = np.shape(input)
    grids = list(np.ogrid[tuple(slice(n) for n in idx.shape)])
    grids[dim % len(shape)] = idx
    return getitem_(input, index=tuple(grids))
