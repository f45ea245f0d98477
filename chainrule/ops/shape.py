"""Shape operations: reshape, broadcast and its adjoint sum_to, transposes, cat/stack, pad.

All of them move or copy elements without arithmetic, so each VJP is the inverse movement.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..tensor import Tensor
from ._core import defop, normalize_axis, poly


def _sum_to_fwd(x: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a broadcast array back down to ``shape`` (the adjoint of broadcasting)."""
    if x.shape == shape:
        return x
    axes = _sum_to_axes(x.shape, shape)
    out = np.add.reduce(x, axis=axes, keepdims=True) if axes else x
    return out.reshape(shape)


def _sum_to_axes(have: tuple, shape: tuple) -> tuple:
    lead = len(have) - len(shape)
    return tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and have[i + lead] != 1
    )


def _sum_to_out(x: np.ndarray, shape: tuple, *, out: np.ndarray) -> np.ndarray:
    axes = _sum_to_axes(x.shape, shape)
    keep = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    np.add.reduce(x, axis=axes, keepdims=True, out=out.reshape(keep))
    return out


reshape_ = defop(
    "reshape",
    lambda x, shape: np.reshape(x, shape),
    lambda g, ans, x, shape: np.reshape(g, x.shape),
)
broadcast_to_ = defop(
    "expand",
    lambda x, shape: np.broadcast_to(x, shape),
    lambda g, ans, x, shape: sum_to(g, x.shape),
)
sum_to_ = defop("sum_to", _sum_to_fwd, lambda g, ans, x, shape: np.broadcast_to(g, x.shape),
                out=_sum_to_out)
sum_to = poly(sum_to_)
swapaxes_ = defop(
    "transpose",
    lambda x, a, b: np.swapaxes(x, a, b),
    lambda g, ans, x, a, b: np.swapaxes(g, a, b),
)
permute_ = defop(
    "permute",
    lambda x, axes: np.transpose(x, axes),
    lambda g, ans, x, axes: np.transpose(g, tuple(np.argsort(axes))),
)


def _cat_vjp(i: int, g: Any, ans: Any, *xs: Any, axis: int) -> Any:
    start = builtins.sum(x.shape[axis] for x in xs[:i])
    index = (slice(None),) * axis + (slice(start, start + xs[i].shape[axis]),)
    return g[index]


def _stack_vjp(i: int, g: Any, ans: Any, *xs: Any, axis: int) -> Any:
    return np.moveaxis(g, axis, 0)[i]


def _pad_fwd(x: np.ndarray, widths: tuple, value: float) -> np.ndarray:
    return np.pad(x, widths, mode="constant", constant_values=value)


def _pad_vjp(g: Any, ans: Any, x: Any, widths: tuple, value: float) -> Any:
    return g[tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape, strict=True))]


cat_ = defop("cat", lambda *xs, axis: np.concatenate(xs, axis=axis), nary=_cat_vjp)
stack_ = defop("stack", lambda *xs, axis: np.stack(xs, axis=axis), nary=_stack_vjp)
pad_ = defop("pad", _pad_fwd, _pad_vjp)


def _ndim(x: Any) -> int:
    return np.ndim(x.data if isinstance(x, Tensor) else x)


def _sizes(shape: tuple) -> tuple:
    """Accept reshape(2, 3) and reshape((2, 3)) alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(int(s) for s in shape)


def reshape(input: Any, *shape: Any) -> Tensor:
    """The same elements in a new shape (one dimension may be -1)."""
    shape = _sizes(shape)
    try:
        return reshape_(input, shape=shape)
    except ValueError:
        raise ValueError(
            f"reshape: cannot reshape a tensor of shape {tuple(np.shape(input))} "
            f"({int(np.prod(np.shape(input)))} elements) into {shape}"
        ) from None


view = reshape


def flatten(input: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions start_dim..end_dim into one."""
    shape = np.shape(input)
    if len(shape) == 0:
        return reshape(input, (1,))
    s, e = normalize_axis((start_dim, end_dim), len(shape))
    return reshape(input, shape[:s] + (-1,) + shape[e + 1 :])


def transpose(input: Any, dim0: int = -2, dim1: int = -1) -> Tensor:
    """Swap two dimensions."""
    return swapaxes_(input, a=dim0, b=dim1)


swapaxes = transpose


def permute(input: Any, *dims: Any) -> Tensor:
    """Reorder the dimensions."""
    dims = _sizes(dims)
    n = _ndim(input)
    if sorted(d % n for d in dims) != list(range(n)):
        raise ValueError(f"permute: {dims} is not a permutation of the {n} dimensions")
    return permute_(input, axes=tuple(d % n for d in dims))


def squeeze(input: Any, dim: Any = None) -> Tensor:
    """Remove dimensions of size 1 (only ``dim`` when given, if it has size 1)."""
    shape = np.shape(input)
    axes = normalize_axis(dim, len(shape)) if dim is not None else None
    new = tuple(n for i, n in enumerate(shape) if not (n == 1 and (axes is None or i in axes)))
    return reshape(input, new)


def unsqueeze(input: Any, dim: int) -> Tensor:
    """Insert a dimension of size 1 at ``dim``."""
    shape = list(np.shape(input))
    dim = dim + len(shape) + 1 if dim < 0 else dim
    if not 0 <= dim <= len(shape):
        raise IndexError(f"unsqueeze: dim {dim} out of range for {len(shape)} dimensions")
    shape.insert(dim, 1)
    return reshape(input, tuple(shape))


def expand_dims(a: Any, axis: Any) -> Tensor:
    """NumPy's expand_dims (used by VJPs under create_graph)."""
    shape = np.shape(a)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    nd = len(shape) + len(axes)
    axes = sorted(x % nd for x in axes)
    it = iter(shape)
    return reshape(a, tuple(1 if i in axes else next(it) for i in range(nd)))


def moveaxis(a: Any, source: Any, destination: Any) -> Tensor:
    """Move dimensions to new positions (NumPy's moveaxis, used by VJPs under create_graph)."""
    n = _ndim(a)
    src = normalize_axis(source, n)
    dst = normalize_axis(destination, n)
    order = [i for i in range(n) if i not in src]
    for d, s in sorted(zip(dst, src, strict=True)):
        order.insert(d, s)
    return permute_(a, axes=tuple(order))


def broadcast_to(input: Any, shape: Sequence[int]) -> Tensor:
    """A read-only broadcast view of ``input`` with ``shape``; its gradient is summed back."""
    try:
        return broadcast_to_(input, shape=tuple(shape))
    except ValueError:
        raise ValueError(
            f"expand: cannot broadcast shape {tuple(np.shape(input))} to {tuple(shape)}"
        ) from None


def expand(input: Any, *sizes: Any) -> Tensor:
    """Broadcast to ``sizes`` (-1 keeps a dimension), as torch.Tensor.expand."""
    sizes = _sizes(sizes)
    shape = np.shape(input)
    lead = len(sizes) - len(shape)
    full = tuple(shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    return broadcast_to(input, full)


def cat(tensors: Sequence[Any], dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension."""
    if len(tensors) == 0:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    axis = normalize_axis(dim, _ndim(tensors[0]))[0]
    return cat_(*tensors, axis=axis)


concatenate = cat


def stack(tensors: Sequence[Any], dim: int = 0) -> Tensor:
    """Join tensors of the same shape along a new dimension."""
    if len(tensors) == 0:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    axis = normalize_axis(dim, _ndim(tensors[0]) + 1)[0]
    return stack_(*tensors, axis=axis)


def split(tensor: Any, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Split into chunks of a given size (the last may be smaller) or of the given sizes."""
    from .index import getitem

    shape = np.shape(tensor)
    axis = normalize_axis(dim, len(shape))[0]
    n = shape[axis]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: split_size must be a positive integer, got {step}")
        sizes = [builtins.min(step, n - s) for s in range(0, n, step)]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to dimension {dim} of size {n}")
    out, start = [], 0
    for s in sizes:
        out.append(getitem(tensor, (slice(None),) * axis + (slice(start, start + s),)))
        start += s
    return tuple(out)


def chunk(input: Any, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """Split into ``chunks`` nearly equal pieces."""
    n = np.shape(input)[dim]
    return split(input, -(-n // chunks), dim)


def pad(input: Any, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad with a constant, PyTorch order: (left, right) of the last dim, then the one before..."""
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    if len(pad) % 2:
        raise ValueError(f"pad: expected an even number of pad sizes, got {len(pad)}")
    nd = _ndim(input)
    if len(pad) // 2 > nd:
        raise ValueError(f"pad: {len(pad) // 2} dimensions to pad but the input has {nd}")
    widths = [(0, 0)] * nd
    for k in range(len(pad) // 2):
        widths[nd - 1 - k] = (int(pad[2 * k]), int(pad[2 * k + 1]))
    if builtins.min(builtins.min(w) for w in widths) < 0:
        raise ValueError("pad: negative padding is not supported")
    return pad_(input, widths=tuple(widths), value=value)
