"""All differentiable operations, and the NumPy dispatch tables that make VJPs differentiable.

Each family lives in its own module (elementwise, reduce, linalg, shape, index); this package
re-exports them and tells Tensor which chainrule op answers each NumPy function.
"""

from __future__ import annotations

import numpy as np

from .. import tensor as _tensor
from ._core import apply, defop, nondiff, normalize_axis, poly, user_frame
from .conv import avg_pool2d, conv2d, max_pool2d
from .elementwise import (
    abs,
    add,
    cast,
    ceil,
    clamp,
    clip,
    clone,
    cos,
    div,
    elu,
    eq,
    erf,
    exp,
    expm1,
    floor,
    ge,
    gelu,
    gt,
    isfinite,
    isnan,
    le,
    leaky_relu,
    log,
    log1p,
    logical_and,
    logical_not,
    logical_or,
    lt,
    maximum,
    minimum,
    mul,
    ne,
    neg,
    pow,
    reciprocal,
    relu,
    round,
    rsqrt,
    sigmoid,
    sign,
    sin,
    softplus,
    softsign,
    sqrt,
    square,
    sub,
    tan,
    tanh,
    where,
)
from .index import getitem, index_data, take_along_dim
from .linalg import dot, linear, linear_act, matmul, mm
from .reduce import (
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    log_softmax,
    logsumexp,
    max,
    mean,
    min,
    softmax,
    std,
    sum,
    var,
)
from .shape import (
    broadcast_to,
    cat,
    chunk,
    concatenate,
    expand,
    expand_dims,
    flatten,
    moveaxis,
    pad,
    permute,
    reshape,
    split,
    squeeze,
    stack,
    sum_to,
    swapaxes,
    transpose,
    unsqueeze,
    view,
)

_INTERNAL = {"annotations", "np", "apply", "defop", "nondiff", "normalize_axis", "poly",
             "user_frame", "index_data", "cast", "sum_to", "expand_dims", "moveaxis"}
__all__ = [n for n in dir() if not n.startswith("_") and n not in _INTERNAL]


def _np_reduce(fn):
    return lambda a, axis=None, dtype=None, out=None, keepdims=False, **_: fn(
        a, dim=axis, keepdim=keepdims
    )


_tensor._UFUNCS.update({
    np.add: add, np.subtract: sub, np.multiply: mul, np.true_divide: div, np.negative: neg,
    np.power: pow, np.exp: exp, np.log: log, np.log1p: log1p, np.expm1: expm1, np.sqrt: sqrt,
    np.absolute: abs, np.sin: sin, np.cos: cos, np.tan: tan, np.tanh: tanh, np.sign: sign,
    np.maximum: maximum, np.minimum: minimum, np.matmul: matmul, np.square: square,
    np.reciprocal: reciprocal, np.less: lt, np.less_equal: le, np.greater: gt,
    np.greater_equal: ge, np.equal: eq, np.not_equal: ne, np.logical_not: logical_not,
    np.logical_and: logical_and, np.logical_or: logical_or, np.isnan: isnan,
    np.isfinite: isfinite,
})
_tensor._FUNCTIONS.update({
    np.sum: _np_reduce(sum), np.mean: _np_reduce(mean), np.max: _np_reduce(max),
    np.amax: _np_reduce(max), np.min: _np_reduce(min), np.amin: _np_reduce(min),
    np.reshape: lambda a, shape=None, **kw: reshape(a, kw["newshape"] if shape is None else shape),
    np.broadcast_to: lambda a, shape, subok=False: broadcast_to(a, shape),
    np.swapaxes: lambda a, axis1, axis2: transpose(a, axis1, axis2),
    np.transpose: lambda a, axes=None: permute(
        a, tuple(range(np.ndim(a)))[::-1] if axes is None else axes
    ),
    np.moveaxis: moveaxis,
    np.expand_dims: expand_dims,
    np.squeeze: lambda a, axis=None: squeeze(a, axis),
    np.where: lambda c, x, y: where(c, x, y),
    np.concatenate: lambda arrays, axis=0, **_: cat(arrays, axis),
    np.stack: lambda arrays, axis=0, **_: stack(arrays, axis),
    np.ndim: lambda a: a.data.ndim,
    np.shape: lambda a: a.data.shape,
})
_tensor._BINARY.update({np.add: add, np.subtract: sub, np.multiply: mul, np.true_divide: div})

# Every op that PyTorch also offers as a method is a Tensor method here (self is the input).
_METHODS = (
    "abs", "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "log1p", "expm1", "sqrt",
    "rsqrt", "square", "reciprocal", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "erf",
    "clamp", "clip", "maximum", "minimum", "sign", "floor", "ceil", "round", "isnan", "isfinite",
    "sum", "mean", "max", "min", "amax", "amin", "var", "std", "logsumexp", "softmax",
    "log_softmax", "argmax", "argmin", "all", "any", "matmul", "mm", "dot", "reshape", "view",
    "flatten", "transpose", "swapaxes", "permute", "squeeze", "unsqueeze", "expand", "split",
    "chunk", "logical_not", "logical_and", "logical_or", "eq", "ne", "lt", "le", "gt", "ge",
)
for _name in _METHODS:
    setattr(_tensor.Tensor, _name, globals()[_name])
_tensor.Tensor.where = lambda self, condition, other: where(condition, self, other)  # type: ignore
_tensor.Tensor.expand_as = lambda self, other: broadcast_to(self, other.shape)  # type: ignore
_tensor.Tensor.view_as = lambda self, other: reshape(self, other.shape)  # type: ignore
_tensor.Tensor.reshape_as = _tensor.Tensor.view_as  # type: ignore
