"""2-D convolution and pooling over NCHW images (PyTorch semantics), fast and twice differentiable.

``conv2d`` is im2col (a strided copy of every receptive field) and a BLAS matrix product, done a
block of output rows at a time so the unfolded input never exists whole; backward unfolds each
block again rather than keeping it (the memory of the input, not of its C*kh*kw-times-larger
unfolding). The convolution and its two VJPs are three primitives whose VJPs are each other, and
the pooling primitives come in adjoint pairs, so every VJP here is itself differentiable.

The columns are ``(C*kh*kw, OH*OW*N)``: batch innermost, so the copies move long contiguous runs
and a convolution's output is an NCHW *view* of channel-major, batch-minor memory ("CHWN") that
ReLU, pooling and the next convolution read without any transposing copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..tensor import Tensor
from ._core import defop, poly
from .elementwise import ACTIVATIONS_IN_PLACE
from .shape import pad, reshape

Pair = tuple[int, int]
_BLOCK = 2**17  # unfolded elements per block of output rows, 512 KiB in float32 (see _row_blocks)


# -- geometry -------------------------------------------------------------------------------


def as_pair(value: Any, name: str, op: str, minimum: int) -> Pair:
    """An int or a pair of ints (PyTorch's kernel_size/stride/padding/dilation arguments)."""
    items = (value, value) if isinstance(value, (int, np.integer)) else value
    try:
        pair = tuple(items)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _out_size(n: int, k: int, s: int, p: int, d: int) -> int:
    """PyTorch's output length: floor((n + 2p - d(k-1) - 1) / s) + 1."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _geometry(shape: tuple, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
              op: str) -> Pair:
    """Output (OH, OW) for an (N, C, H, W) input; a clear error if the window does not fit."""
    h, w = shape[-2:]
    eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    hp, wp = h + 2 * padding[0], w + 2 * padding[1]
    if eff[0] > hp or eff[1] > wp:
        raise ValueError(
            f"{op}: kernel {kernel[0]}x{kernel[1]} (dilation {dilation[0]}x{dilation[1]}, "
            f"spanning {eff[0]}x{eff[1]}) is larger than the padded input {hp}x{wp} "
            f"(input shape {tuple(shape)}, padding {padding}); use a smaller kernel or more padding"
        )
    return (_out_size(h, kernel[0], stride[0], padding[0], dilation[0]),
            _out_size(w, kernel[1], stride[1], padding[1], dilation[1]))


def _pad_hw(x: np.ndarray, padding: Pair, value: float) -> np.ndarray:
    """Pad the last two axes with ``value``, keeping x's memory layout (CHWN stays CHWN)."""
    ph, pw = padding
    if not (ph or pw):
        return x
    n, c, h, w = x.shape
    out = np.empty_like(x, shape=(n, c, h + 2 * ph, w + 2 * pw))
    out.fill(value)
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out


def _offsets(kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair, first_row: int = 0
             ) -> list:
    """For each kernel offset (row-major, like PyTorch's scan), the (H, W) slices it reads
    (for output rows starting at padded input row ``first_row``)."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
    rows = [slice(r, r + sh * (oh - 1) + 1, sh) for r in range(first_row, first_row + kh * dh, dh)]
    cols = [slice(j * dw, j * dw + sw * (ow - 1) + 1, sw) for j in range(kw)]
    return [(r, c) for r in rows for c in cols]


def _zeros_padded(like: np.ndarray, padding: Pair, dtype: Any) -> np.ndarray:
    """Zeros of ``like``'s shape plus padding, in ``like``'s memory layout."""
    n, c, h, w = like.shape
    return np.zeros_like(like, dtype=dtype, shape=(n, c, h + 2 * padding[0], w + 2 * padding[1]))


def _crop(xp: np.ndarray, padding: Pair) -> np.ndarray:
    ph, pw = padding
    if not (ph or pw):
        return xp
    return xp[:, :, ph : xp.shape[2] - ph, pw : xp.shape[3] - pw]


def _raw(a: Any) -> Any:
    return a.data if isinstance(a, Tensor) else a


# -- convolution: three primitives, closed under differentiation ------------------------------
#
# conv(x, w) is bilinear, so its two VJPs are the other two primitives and theirs are the three
# again: d/dx is conv_input_grad(g, w) (a transposed convolution), d/dw is conv_weight_grad(x, g).
# Each walks the output in blocks of rows, unfolding only that block's receptive fields
# (im2col), so no op keeps or builds the whole unfolded input: backward recomputes a block's
# columns from x (one strided copy) instead of holding them from forward.


def _padded_chwn(x: np.ndarray, padding: Pair) -> np.ndarray:
    """(N, C, H, W) -> contiguous (C, H + 2ph, W + 2pw, N), zero padded: at most one copy (none
    for a convolution's own output, which already lives in this order)."""
    n, c, h, w = x.shape
    ph, pw = padding
    xt = x.transpose(1, 2, 3, 0)
    if not (ph or pw):
        return np.ascontiguousarray(xt)
    out = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype)
    out[:, ph : ph + h, pw : pw + w] = xt
    return out


def _row_blocks(out_hw: Pair, n: int, k: int) -> list[Pair]:
    """Output-row ranges [a, b) whose unfolded columns, k = C*kh*kw rows by OW*N per output row,
    hold about _BLOCK elements each. This bounds the memory of a block, keeps it in cache for
    its product, and OpenBLAS runs a product with a long M and small K and C_out up to 3x slower
    than the same work in shorter blocks (OpenBLAS 0.3.31, 1 and 2 threads)."""
    oh, ow = out_hw
    rows = max(1, round(_BLOCK / (k * ow * n)))
    return [(a, min(a + rows, oh)) for a in range(0, oh, rows)]


def _unfold(xt: np.ndarray, rows: Pair, kernel: Pair, stride: Pair, dilation: Pair, ow: int,
            buf: np.ndarray) -> np.ndarray:
    """im2col of output rows [a, b): every receptive field a column, (C*kh*kw, (b-a)*OW*N),
    written into the front of ``buf`` (one buffer for all blocks: one block's memory at a time)."""
    c, _, _, n = xt.shape
    (a, b), (kh, kw), (sh, sw), (dh, dw) = rows, kernel, stride, dilation
    s_c, s_h, s_w, s_n = xt.strides
    windows = as_strided(
        xt[:, a * sh :],
        shape=(c, kh, kw, b - a, ow, n),
        strides=(s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w, s_n),
        writeable=False,
    )
    cols = buf[: windows.size].reshape(windows.shape)
    np.copyto(cols, windows)
    return cols.reshape(c * kh * kw, -1)


def _block_buffer(blocks: list[Pair], k: int, per_row: int, dtype: Any) -> np.ndarray:
    """Room for the largest (the first) block's k unfolded rows of ``per_row`` columns per row."""
    return np.empty(k * (blocks[0][1] - blocks[0][0]) * per_row, dtype=dtype)


def _grad_rows(g: np.ndarray) -> np.ndarray:
    """The output gradient (N, Co, OH, OW) as (Co, OH*OW*N), the columns' order (free for CHWN)."""
    return np.reshape(np.transpose(g, (1, 2, 3, 0)), (g.shape[1], -1))


def _conv_fwd(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, *,
              kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair,
              groups: int = 1) -> np.ndarray:
    """weight (Co, C/groups, kh, kw) over x (N, C, H, W) -> (N, Co, OH, OW), a view of CHWN
    memory. Groups are one batched product: group i's filters see group i's channels."""
    n, co, (oh, ow) = x.shape[0], weight.shape[0], out_hw
    xt, wg = _padded_chwn(x, padding), weight.reshape(groups, co // groups, -1)
    out = np.empty((co, oh * ow * n), dtype=np.result_type(weight, x))
    per_row, blocks = ow * n, _row_blocks(out_hw, n, groups * wg.shape[2])
    buf = _block_buffer(blocks, groups * wg.shape[2], per_row, xt.dtype)
    for a, b in blocks:
        cols = _unfold(xt, (a, b), kernel, stride, dilation, ow, buf)
        np.matmul(wg, cols.reshape(groups, wg.shape[2], -1),
                  out=out[:, a * per_row : b * per_row].reshape(groups, co // groups, -1))
    if bias is not None:
        out += bias[:, None]
    return out.reshape(co, oh, ow, n).transpose(3, 0, 1, 2)


def _conv_weight_grad_fwd(x: np.ndarray, g: np.ndarray, *, kernel: Pair, stride: Pair,
                          padding: Pair, dilation: Pair, out_hw: Pair, groups: int = 1
                          ) -> np.ndarray:
    """d(loss)/d(weight) of conv(x, weight) given the output gradient g: (Co, C/groups, kh, kw)."""
    n, c, ow = x.shape[0], x.shape[1], out_hw[1]
    xt, rows = _padded_chwn(x, padding), _grad_rows(g)
    k, cog, per_row = c // groups * kernel[0] * kernel[1], rows.shape[0] // groups, ow * n
    blocks = _row_blocks(out_hw, n, groups * k)
    buf = _block_buffer(blocks, groups * k, per_row, xt.dtype)
    # dwt is (groups, k, Co/groups), as cols @ rows.T: OpenBLAS runs that ~2x faster than
    # rows @ cols.T
    dwt = None
    for a, b in blocks:
        cols = _unfold(xt, (a, b), kernel, stride, dilation, ow, buf).reshape(groups, k, -1)
        part = cols @ rows[:, a * per_row : b * per_row].reshape(groups, cog, -1).transpose(0, 2, 1)
        dwt = part if dwt is None else np.add(dwt, part, out=dwt)
    return np.ascontiguousarray(dwt.transpose(0, 2, 1)).reshape(rows.shape[0], c // groups,
                                                                 *kernel)


def _conv_input_grad_fwd(g: np.ndarray, weight: np.ndarray, *, shape: tuple, kernel: Pair,
                         stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair,
                         groups: int = 1) -> np.ndarray:
    """d(loss)/d(x) of conv(x, weight) for x of ``shape`` given the output gradient g: each
    block's column gradients added back onto the pixels they were read from (col2im)."""
    n, c, h, w = shape
    (kh, kw), (ph, pw), ow = kernel, padding, out_hw[1]
    rows = _grad_rows(g)
    wt = weight.reshape(groups, weight.shape[0] // groups, -1).transpose(0, 2, 1)  # (G, k, Co/G)
    acc = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=np.result_type(g, weight))
    per_row, blocks = ow * n, _row_blocks(out_hw, n, c * kh * kw)
    buf = _block_buffer(blocks, c * kh * kw, per_row, acc.dtype)
    for a, b in blocks:  # each block's column gradients into the one buffer, in turn
        cols = buf[: c * kh * kw * (b - a) * per_row].reshape(groups, wt.shape[1], -1)
        np.matmul(wt, rows[:, a * per_row : b * per_row].reshape(groups, wt.shape[2], -1),
                  out=cols)
        cols = cols.reshape(c, kh, kw, b - a, ow, n)
        offsets = _offsets(kernel, stride, dilation, (b - a, ow), first_row=a * stride[0])
        for k, (r, cc) in enumerate(offsets):
            acc[:, r, cc] += cols[:, k // kw, k % kw]
    return acc[:, ph : ph + h, pw : pw + w].transpose(3, 0, 1, 2)


_CONV_VJPS = (
    lambda g, ans, x, w, b=None, **geo: _conv_input_grad(g, w, shape=x.shape, **geo),
    lambda g, ans, x, w, b=None, **geo: _conv_weight_grad(x, g, **geo),
    lambda g, ans, x, w, b=None, **geo: np.sum(g, axis=(0, 2, 3)),
)
conv = defop("conv2d", _conv_fwd, *_CONV_VJPS, uses_ans=False)


def _conv_act_op(name: str, act: Any, act_grad: Any) -> Any:
    """``act(conv2d(...))`` as one primitive: the activation runs in place on the convolution's
    output, and backward applies its derivative once (``prep``) before the convolution's VJPs,
    so the pre-activation is never kept (as ops.linalg does for Linear)."""
    return defop(f"conv2d_{name}", lambda x, w, b=None, **geo: act(_conv_fwd(x, w, b, **geo)),
                 *_CONV_VJPS, prep=lambda g, ans, *args, **geo: act_grad(g, ans))


_conv_act = {name: _conv_act_op(name, *fs) for name, fs in ACTIVATIONS_IN_PLACE.items()}
conv_input_grad = defop(
    "conv2d_input_backward",
    _conv_input_grad_fwd,
    lambda gg, ans, g, w, shape, **geo: _conv(gg, w, **geo),
    lambda gg, ans, g, w, shape, **geo: _conv_weight_grad(gg, g, **geo),
    uses_ans=False,
)
conv_weight_grad = defop(
    "conv2d_weight_backward",
    _conv_weight_grad_fwd,
    lambda gg, ans, x, g, **geo: _conv_input_grad(g, gg, shape=x.shape, **geo),
    lambda gg, ans, x, g, **geo: _conv(x, gg, **geo),
    uses_ans=False,
)
_conv, _conv_input_grad, _conv_weight_grad = poly(conv), poly(conv_input_grad), poly(
    conv_weight_grad)


# -- pooling ----------------------------------------------------------------------------------


def _max_pool_fwd(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
                  out_hw: Pair) -> np.ndarray:
    xp = _pad_hw(x, padding, -np.inf)
    views = [xp[:, :, r, c] for r, c in _offsets(kernel, stride, dilation, out_hw)]
    if len(views) == 1:
        return views[0].copy(order="K")
    out = np.maximum(views[0], views[1])
    for v in views[2:]:
        np.maximum(out, v, out=out)
    return out


def _argmax_masks(x: np.ndarray, ans: np.ndarray, kernel: Pair, stride: Pair, padding: Pair,
                  dilation: Pair, out_hw: Pair) -> Any:
    """Yield (rows, cols, hit) per kernel offset; ``hit`` marks windows whose first maximum
    (in row-major scan order, as PyTorch) sits at that offset."""
    xp = _pad_hw(x, padding, -np.inf)
    taken = None
    offsets = _offsets(kernel, stride, dilation, out_hw)
    for k, (r, c) in enumerate(offsets):
        hit = xp[:, :, r, c] == ans
        if taken is None:
            taken = hit
        else:
            hit = np.greater(hit, taken, out=hit)  # hit and not yet taken
            if k + 1 < len(offsets):
                taken |= hit
        yield r, c, hit


def _max_pool_scatter_fwd(g: np.ndarray, x: np.ndarray, ans: np.ndarray, **geo: Any) -> np.ndarray:
    """Route each window's gradient to the input element that was its (first) maximum."""
    if g.strides != ans.strides:  # e.g. NCHW from a flatten: match the masks' layout once
        g, g_given = np.empty_like(ans, dtype=g.dtype), g
        g[...] = g_given
    acc = _zeros_padded(x, geo["padding"], g.dtype)
    # windows that do not overlap (stride >= dilated kernel) can write instead of add
    disjoint = all(s >= d * (k - 1) + 1 for k, s, d in
                   zip(geo["kernel"], geo["stride"], geo["dilation"], strict=True))
    for r, c, hit in _argmax_masks(x, ans, **geo):
        if disjoint:
            np.multiply(g, hit, out=acc[:, :, r, c])
        else:
            acc[:, :, r, c] += g * hit
    return _crop(acc, geo["padding"])


def _max_pool_gather_fwd(gx: np.ndarray, x: np.ndarray, ans: np.ndarray, **geo: Any) -> np.ndarray:
    """The adjoint of the scatter: read each window's value at its argmax."""
    gp = _pad_hw(gx, geo["padding"], 0)
    out = np.zeros_like(ans, dtype=gx.dtype)
    for r, c, hit in _argmax_masks(x, ans, **geo):
        out += gp[:, :, r, c] * hit
    return out


max_pool = defop(
    "max_pool2d",
    _max_pool_fwd,
    lambda g, ans, x, **geo: _max_scatter(g, _raw(x), _raw(ans), **geo),
)
max_pool_scatter = defop(
    "max_pool2d_backward",
    _max_pool_scatter_fwd,
    lambda gg, ans, g, x, a, **geo: _max_gather(gg, x, a, **geo),
)
max_pool_gather = defop(
    "max_pool2d_gather",
    _max_pool_gather_fwd,
    lambda gg, ans, gx, x, a, **geo: _max_scatter(gg, x, a, **geo),
)
_max_scatter, _max_gather = poly(max_pool_scatter), poly(max_pool_gather)


def _avg_pool_fwd(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair
                  ) -> np.ndarray:
    xp = _pad_hw(x, padding, 0)
    views = [xp[:, :, r, c] for r, c in _offsets(kernel, stride, (1, 1), out_hw)]
    out = views[0] + views[1] if len(views) > 1 else views[0].copy(order="K")
    for v in views[2:]:
        out += v
    out *= 1.0 / (kernel[0] * kernel[1])
    return out


def _avg_pool_scatter_fwd(g: np.ndarray, shape: tuple, kernel: Pair, stride: Pair,
                          padding: Pair, out_hw: Pair) -> np.ndarray:
    """The adjoint of average pooling: spread each window's gradient evenly over it."""
    n, c, h, w = shape
    acc = np.zeros_like(g, shape=(n, c, h + 2 * padding[0], w + 2 * padding[1]))
    share = g * (1.0 / (kernel[0] * kernel[1]))
    for r, cc in _offsets(kernel, stride, (1, 1), out_hw):
        acc[:, :, r, cc] += share
    return _crop(acc, padding)


avg_pool = defop(
    "avg_pool2d",
    _avg_pool_fwd,
    lambda g, ans, x, **geo: _avg_scatter(g, x.shape, **geo),
)
avg_pool_scatter = defop(
    "avg_pool2d_backward",
    _avg_pool_scatter_fwd,
    lambda gg, ans, g, shape, **geo: _avg_pool(gg, **geo),
)
_avg_pool, _avg_scatter = poly(avg_pool), poly(avg_pool_scatter)


# -- public functions (torch.nn.functional names and signatures) ------------------------------


def _batched(input: Any, op: str) -> tuple[Any, bool]:
    """Accept (N, C, H, W) or unbatched (C, H, W) like PyTorch; anything else is an error."""
    shape = np.shape(_raw(input))
    if len(shape) == 4:
        return input, False
    if len(shape) == 3:
        return reshape(input, (1, *shape)), True
    raise ValueError(
        f"{op}: expected a 4-D (N, C, H, W) or 3-D (C, H, W) input, got shape {tuple(shape)}"
    )


def _unbatch(out: Tensor, squeeze: bool) -> Tensor:
    return reshape(out, out.shape[1:]) if squeeze else out


def conv_padding(padding: Any, kernel: Pair, stride: Pair, dilation: Pair, op: str = "conv2d"
                 ) -> tuple[Pair, Pair]:
    """PyTorch's ``padding`` (an int, a pair, "valid" or "same") as the padding on both sides and
    the extra rows and columns at the bottom and right ("same" with an even dilated kernel)."""
    if not isinstance(padding, str):
        return as_pair(padding, "padding", op, 0), (0, 0)
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding != "same":
        raise ValueError(f"{op}: padding must be an int, a pair of ints, 'valid' or 'same', "
                         f"got {padding!r}")
    if stride != (1, 1):
        raise ValueError(f"{op}: padding='same' needs stride 1, got stride {stride} (as in "
                         "PyTorch); give the padding as numbers instead")
    total = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
    return (total[0] // 2, total[1] // 2), (total[0] % 2, total[1] % 2)


def conv2d(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation of ``input`` (N, C_in, H, W) with ``weight`` (C_out, C_in/groups,
    kh, kw), plus ``bias`` (C_out,): PyTorch's F.conv2d, padding "same"/"valid" included, as one
    (batched, for groups) GEMM per block of im2col columns."""
    return _apply_conv(conv, input, weight, bias, stride, padding, dilation, groups)


def conv2d_act(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
               dilation: Any = 1, groups: int = 1, activation: str = "relu") -> Tensor:
    """``activation(conv2d(...))`` for ``activation`` in "relu", "tanh", "sigmoid", as one
    primitive: the same values and gradients with one graph node, one array and one pass fewer
    (nn.Sequential uses it for Conv2d + ReLU)."""
    op = _conv_act.get(activation)
    if op is None:
        raise ValueError(f"conv2d_act: unknown activation {activation!r}; "
                         f"use one of {', '.join(_conv_act)}")
    return _apply_conv(op, input, weight, bias, stride, padding, dilation, groups)


def _apply_conv(op: Any, input: Any, weight: Any, bias: Any, stride: Any, padding: Any,
                dilation: Any, groups: Any) -> Tensor:
    """Check conv2d's arguments (clear errors), resolve the geometry and apply ``op``."""
    x, squeeze = _batched(input, "conv2d")
    xs, ws = np.shape(_raw(x)), np.shape(_raw(weight))
    if len(ws) != 4:
        raise ValueError(
            f"conv2d: weight must be 4-D (out_channels, in_channels/groups, kh, kw), got shape {ws}"
        )
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    if xs[1] != ws[1] * groups:
        raise ValueError(
            f"conv2d: input shape {xs} has {xs[1]} channels but weight shape {ws} with "
            f"groups={groups} expects {ws[1] * groups} (weight is (out_channels, "
            "in_channels/groups, kh, kw))"
        )
    if ws[0] % groups:
        raise ValueError(f"conv2d: out_channels {ws[0]} (weight shape {ws}) is not divisible by "
                         f"groups={groups}")
    if bias is not None and np.shape(_raw(bias)) != (ws[0],):
        raise ValueError(
            f"conv2d: bias must have shape ({ws[0]},) for weight shape {ws}, "
            f"got {np.shape(_raw(bias))}"
        )
    geo = {
        "kernel": (ws[2], ws[3]),
        "stride": as_pair(stride, "stride", "conv2d", 1),
        "dilation": as_pair(dilation, "dilation", "conv2d", 1),
    }
    geo["padding"], extra = conv_padding(padding, geo["kernel"], geo["stride"], geo["dilation"])
    if extra != (0, 0):  # the odd row/column of "same" padding goes at the bottom/right
        x = pad(x, (0, extra[1], 0, extra[0]))
        xs = np.shape(_raw(x))
    out_hw = _geometry(xs, **geo, op="conv2d")
    args = (x, weight) if bias is None else (x, weight, bias)
    return _unbatch(op(*args, **geo, out_hw=out_hw, groups=int(groups)), squeeze)


def pool_geometry(kernel_size: Any, stride: Any, padding: Any, op: str) -> dict:
    """Checked kernel/stride/padding of a pooling layer; stride defaults to the kernel size."""
    kernel = as_pair(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None else as_pair(stride, "stride", op, 1)
    pad = as_pair(padding, "padding", op, 0)
    if pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
        raise ValueError(
            f"{op}: padding {pad} must be at most half the kernel size {kernel} (as in PyTorch)"
        )
    return {"kernel": kernel, "stride": stride, "padding": pad}


def max_pool2d(input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1) -> Tensor:
    """Maximum over each (dilated) window, padding with -inf; the gradient goes to the first
    maximum of each window (PyTorch's F.max_pool2d, ceil_mode=False; a window whose maximum is
    NaN passes no gradient back)."""
    x, squeeze = _batched(input, "max_pool2d")
    geo = pool_geometry(kernel_size, stride, padding, "max_pool2d")
    geo["dilation"] = as_pair(dilation, "dilation", "max_pool2d", 1)
    out_hw = _geometry(np.shape(_raw(x)), **geo, op="max_pool2d")
    return _unbatch(max_pool(x, **geo, out_hw=out_hw), squeeze)


def avg_pool2d(input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """Mean over each window, zero padding counted in the divisor (PyTorch's F.avg_pool2d with
    count_include_pad=True, ceil_mode=False)."""
    x, squeeze = _batched(input, "avg_pool2d")
    geo = pool_geometry(kernel_size, stride, padding, "avg_pool2d")
    out_hw = _geometry(np.shape(_raw(x)), **geo, dilation=(1, 1), op="avg_pool2d")
    return _unbatch(avg_pool(x, **geo, out_hw=out_hw), squeeze)


__all__ = ["avg_pool2d", "conv2d", "conv2d_act", "max_pool2d"]
