"""2-D convolution and pooling over NCHW images (PyTorch semantics), fast and twice differentiable.

``conv2d`` is two primitives: ``im2col`` (a strided copy of every receptive field) and one BLAS
matrix product. ``im2col`` and ``col2im`` are linear and each other's adjoint, and the pooling
primitives come in adjoint pairs too, so every VJP here is itself differentiable.

Internally the columns are ``(C*kh*kw, OH*OW*N)``: batch innermost, so the copies move long
contiguous runs and a convolution's output is an NCHW *view* of channel-major, batch-minor
memory ("CHWN") that ReLU, pooling and the next convolution read without any transposing copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..tensor import Tensor
from ._core import defop, poly
from .shape import reshape

Pair = tuple[int, int]
_BLOCK = 4096  # columns per block of a long GEMM over the M columns (see _gemm_blocks)


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


def _offsets(kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair) -> list:
    """For each kernel offset (row-major, like PyTorch's scan), the (H, W) slices it reads."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
    rows = [slice(i * dh, i * dh + sh * (oh - 1) + 1, sh) for i in range(kh)]
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


# -- im2col / col2im: the linear pair under convolution ---------------------------------------


def _im2col_fwd(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
                out_hw: Pair) -> np.ndarray:
    """(N, C, H, W) -> (C*kh*kw, OH*OW*N): every receptive field as a column, one strided copy."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = kernel, stride, padding, dilation, out_hw
    xt = x.transpose(1, 2, 3, 0)  # (C, H, W, N), padded and made contiguous in one copy
    if ph or pw:
        xt, inner = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype), xt
        xt[:, ph : ph + h, pw : pw + w] = inner
    else:
        xt = np.ascontiguousarray(xt)
    s_c, s_h, s_w, s_n = xt.strides
    windows = as_strided(
        xt,
        shape=(c, kh, kw, oh, ow, n),
        strides=(s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w, s_n),
        writeable=False,
    )
    return windows.reshape(c * kh * kw, oh * ow * n)


def _col2im_fwd(cols: np.ndarray, shape: tuple, kernel: Pair, stride: Pair, padding: Pair,
                dilation: Pair, out_hw: Pair) -> np.ndarray:
    """The adjoint of im2col: add every column back onto the pixels it was read from."""
    n, c, h, w = shape
    (kh, kw), (ph, pw), (oh, ow) = kernel, padding, out_hw
    cols6 = cols.reshape(c, kh, kw, oh, ow, n)
    acc = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=cols.dtype)
    for k, (rows, columns) in enumerate(_offsets(kernel, stride, dilation, out_hw)):
        acc[:, rows, columns] += cols6[:, k // kw, k % kw]
    return acc[:, ph : ph + h, pw : pw + w].transpose(3, 0, 1, 2)


im2col = defop(
    "im2col",
    _im2col_fwd,
    lambda g, ans, x, **geo: _col2im(g, x.shape, **geo),
)
col2im = defop(
    "col2im",
    _col2im_fwd,
    lambda g, ans, cols, shape, **geo: _im2col(g, **geo),
)
_im2col, _col2im = poly(im2col), poly(col2im)


# -- the matrix product of a convolution ------------------------------------------------------


def _gemm_blocks(m: int) -> int:
    """Into how many equal blocks of about _BLOCK columns to split a long product over the M
    columns. OpenBLAS runs (K, M) @ (M, Co) up to 3x (and (Co, K) @ (K, M) 1.5x) slower when M
    is long and K, Co small (LeNet's first layer: K=25, Co=6, M=36864) than the same work as a
    batch of shorter products (measured with OpenBLAS 0.3.31, 1 and 2 threads)."""
    first = -(-m // _BLOCK)
    return next((b for b in range(first, 2 * first + 1) if m % b == 0), 1)


def _conv_gemm_fwd(cols: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, *,
                   out_hw: Pair) -> np.ndarray:
    """weight (Co, C, kh, kw) times im2col columns -> (N, Co, OH, OW), one (batched) GEMM."""
    (k, m), co = cols.shape, weight.shape[0]
    out = np.empty((co, m), dtype=np.result_type(weight, cols))
    b = _gemm_blocks(m)  # a batch of column blocks, written straight into ``out``
    np.matmul(weight.reshape(co, k), cols.reshape(k, b, m // b).transpose(1, 0, 2),
              out=out.reshape(co, b, m // b).transpose(1, 0, 2))
    if bias is not None:
        out += bias[:, None]
    return out.reshape(co, *out_hw, -1).transpose(3, 0, 1, 2)


def _grad_rows(g: Any) -> Any:
    """The output gradient (N, Co, OH, OW) as (Co, OH*OW*N), the columns' order (free for CHWN)."""
    return np.reshape(np.transpose(g, (1, 2, 3, 0)), (g.shape[1], -1))


def _conv_gemm_vjp_cols(g: Any, ans: Any, cols: Any, weight: Any, bias: Any = None,
                        **_: Any) -> Any:
    return np.swapaxes(np.reshape(weight, (weight.shape[0], -1)), 0, 1) @ _grad_rows(g)


def _conv_gemm_vjp_weight(g: Any, ans: Any, cols: Any, weight: Any, bias: Any = None,
                          **_: Any) -> Any:
    rows = _grad_rows(g)  # (Co, M)
    (k, m), co = cols.shape, rows.shape[0]
    b = _gemm_blocks(m)
    if b == 1:  # cols @ rows.T: OpenBLAS is ~2x faster this way round than rows @ cols.T
        dw = cols @ np.swapaxes(rows, 0, 1)
    else:  # one batched product over column blocks, then the sum of the blocks
        blocks = np.swapaxes(np.reshape(cols, (k, b, m // b)), 0, 1)
        dw = np.sum(blocks @ np.transpose(np.reshape(rows, (co, b, m // b)), (1, 2, 0)), axis=0)
    return np.reshape(np.swapaxes(dw, 0, 1), weight.shape)


def _conv_gemm_vjp_bias(g: Any, ans: Any, cols: Any, weight: Any, bias: Any = None,
                        **_: Any) -> Any:
    return np.sum(g, axis=(0, 2, 3))


conv_gemm = defop(
    "conv2d", _conv_gemm_fwd, _conv_gemm_vjp_cols, _conv_gemm_vjp_weight, _conv_gemm_vjp_bias
)


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


def conv2d(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1) -> Tensor:
    """2-D cross-correlation of ``input`` (N, C_in, H, W) with ``weight`` (C_out, C_in, kh, kw),
    plus ``bias`` (C_out,): PyTorch's F.conv2d (no groups), as im2col and one GEMM."""
    x, squeeze = _batched(input, "conv2d")
    xs, ws = np.shape(_raw(x)), np.shape(_raw(weight))
    if len(ws) != 4:
        raise ValueError(
            f"conv2d: weight must be 4-D (out_channels, in_channels, kh, kw), got shape {ws}"
        )
    if xs[1] != ws[1]:
        raise ValueError(
            f"conv2d: input shape {xs} has {xs[1]} channels but weight shape {ws} expects "
            f"{ws[1]} (weight is (out_channels, in_channels, kh, kw); groups are not supported)"
        )
    if bias is not None and np.shape(_raw(bias)) != (ws[0],):
        raise ValueError(
            f"conv2d: bias must have shape ({ws[0]},) for weight shape {ws}, "
            f"got {np.shape(_raw(bias))}"
        )
    geo = {
        "kernel": (ws[2], ws[3]),
        "stride": as_pair(stride, "stride", "conv2d", 1),
        "padding": as_pair(padding, "padding", "conv2d", 0),
        "dilation": as_pair(dilation, "dilation", "conv2d", 1),
    }
    out_hw = _geometry(xs, **geo, op="conv2d")
    cols = im2col(x, **geo, out_hw=out_hw)
    args = (cols, weight) if bias is None else (cols, weight, bias)
    return _unbatch(conv_gemm(*args, out_hw=out_hw), squeeze)


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


__all__ = ["avg_pool2d", "conv2d", "max_pool2d"]
