"""Compile a GraphSpec once into the plan a GraphNet runs: rows of one activation buffer
(inputs, carried state, then the neurons level by level), the layout of the weight vector, and
one vectorised step per topological level over the whole batch, forward and backward.

The buffer is neuron-major, ``H[row, sample]``, so a level's neurons are one contiguous block of
rows and gathering a level's sources copies whole rows. A level is evaluated as a dense block
``W @ H[sources]`` (one BLAS product; when the level is fully connected to a contiguous range of
rows, ``W`` is a view of the weight vector and the gather is a slice) or, when that block would
be mostly zeros, as a sparse product (SciPy's CSR kernels if SciPy is installed, else NumPy
gathers and segment sums).
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import Any

import numpy as np

from .activations import APPLY, DERIVATIVE, NAMES
from .spec import GraphSpec

# A level is dense unless its block has more than DENSE_MIN entries and more than RATIO entries
# per edge, RATIO being the measured break-even density of BLAS against the sparse kernel.
DENSE_MIN = 4096
EDGE_RATIO = 32  # against the NumPy edge-list kernel
CSR_RATIO = 16  # against SciPy's CSR kernel
SAMPLED_RATIO = 8  # a dense level's weight gradient is taken edge by edge below this density


@functools.cache
def csr_matrix() -> Any:
    """SciPy's csr_matrix, or None without SciPy (imported on first use)."""
    try:
        from scipy.sparse import csr_matrix
    except ImportError:  # pragma: no cover - SciPy comes with chainrule[full]
        return None
    return csr_matrix


class Level:
    """One topological level: its rows, its sources, its slices of the weight and bias vectors,
    and the activation groups (contiguous row ranges sharing one activation)."""

    __slots__ = ("start", "stop", "src", "src_rows", "shape", "wa", "wb", "ba", "bb", "groups",
                 "feeds_computed", "t_local", "s_local", "e_src")

    def __init__(self, start: int, stop: int, src_rows: np.ndarray, t_local: np.ndarray,
                 s_local: np.ndarray, wa: int, ba: int, groups: tuple, n_base: int) -> None:
        self.start, self.stop = start, stop
        self.src_rows = src_rows
        n_src = len(src_rows)
        contiguous = n_src > 0 and src_rows[-1] - src_rows[0] + 1 == n_src
        self.src: Any = slice(int(src_rows[0]), int(src_rows[-1]) + 1) if contiguous else src_rows
        self.shape = (stop - start, n_src)
        self.wa, self.wb = wa, wa + len(t_local)
        self.ba, self.bb = ba, ba + stop - start
        self.groups = groups
        self.feeds_computed = n_src > 0 and int(src_rows[-1]) >= n_base
        self.t_local, self.s_local = t_local, s_local
        self.e_src = src_rows[s_local]  # each edge's source row

    def _activate(self, H: np.ndarray) -> None:
        for lo, hi, name in self.groups:
            APPLY[name](H[lo:hi])

    def _grad_z(self, H: np.ndarray, gH: np.ndarray) -> np.ndarray:
        """dLoss/dZ for this level's pre-activations, in place in gH's rows."""
        for lo, hi, name in self.groups:
            if name != "identity":
                gH[lo:hi] *= DERIVATIVE[name](H[lo:hi])
        return gH[self.start:self.stop]


class DenseLevel(Level):
    """A level evaluated as one dense product ``Z = W @ H[sources] + b``."""

    __slots__ = ("pos", "sampled")

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        pos = self.t_local * self.shape[1] + self.s_local
        block = self.shape[0] * self.shape[1]
        self.pos = None if len(pos) == block else pos  # weights sorted: full means pos = arange
        self.sampled = len(pos) * SAMPLED_RATIO <= block  # weight grads edge by edge

    def matrix(self, w: np.ndarray) -> np.ndarray:
        if self.pos is None:
            return w[self.wa:self.wb].reshape(self.shape)
        m = np.zeros(self.shape[0] * self.shape[1], w.dtype)
        m[self.pos] = w[self.wa:self.wb]
        return m.reshape(self.shape)

    def forward(self, H: np.ndarray, w: np.ndarray, b: np.ndarray) -> None:
        z = H[self.start:self.stop]
        np.matmul(self.matrix(w), H[self.src], out=z)
        z += b[self.ba:self.bb, None]
        self._activate(H)

    def backward(self, H: np.ndarray, gH: np.ndarray, w: np.ndarray, gw: np.ndarray,
                 gb: np.ndarray, need_base: bool) -> None:
        gz = self._grad_z(H, gH)
        np.sum(gz, axis=1, out=gb[self.ba:self.bb])
        if self.sampled:  # only the entries of gz @ x.T that are edges: row-wise dots
            np.einsum("eb,eb->e", gz[self.t_local], H[self.e_src], out=gw[self.wa:self.wb])
        elif self.pos is None:
            np.matmul(gz, H[self.src].T, out=gw[self.wa:self.wb].reshape(self.shape))
        else:
            gw[self.wa:self.wb] = (gz @ H[self.src].T).reshape(-1)[self.pos]
        if need_base or self.feeds_computed:
            gH[self.src] += self.matrix(w).T @ gz


class EdgeListLevel(Level):
    """A level evaluated edge by edge, vectorised: gather each edge's source row, scale it by
    the edge's weight, and sum the rows of each target (edges are sorted by target)."""

    __slots__ = ("seg", "has", "by_src", "src_seg", "src_unique")

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        targets, self.seg = np.unique(self.t_local, return_index=True)
        self.has = None if len(targets) == self.shape[0] else targets
        self.by_src = np.argsort(self.e_src, kind="stable")
        self.src_unique, self.src_seg = np.unique(self.e_src[self.by_src], return_index=True)

    def forward(self, H: np.ndarray, w: np.ndarray, b: np.ndarray) -> None:
        p = H[self.e_src]
        p *= w[self.wa:self.wb, None]
        z = H[self.start:self.stop]
        if self.has is None:
            np.add.reduceat(p, self.seg, axis=0, out=z)
        else:
            z[...] = 0
            z[self.has] = np.add.reduceat(p, self.seg, axis=0)
        z += b[self.ba:self.bb, None]
        self._activate(H)

    def backward(self, H: np.ndarray, gH: np.ndarray, w: np.ndarray, gw: np.ndarray,
                 gb: np.ndarray, need_base: bool) -> None:
        gz = self._grad_z(H, gH)
        np.sum(gz, axis=1, out=gb[self.ba:self.bb])
        ge = gz[self.t_local]
        gw[self.wa:self.wb] = np.einsum("eb,eb->e", ge, H[self.e_src])
        if need_base or self.feeds_computed:
            ge *= w[self.wa:self.wb, None]
            gH[self.src_unique] += np.add.reduceat(ge[self.by_src], self.src_seg, axis=0)


class CsrLevel(Level):
    """A sparse level as SciPy CSR products: ``Z = W @ X`` and ``dX = W.T @ dZ``, with ``W``
    built each call from the weight vector (edges are sorted by target: already CSR order)."""

    __slots__ = ("indptr",)

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.indptr = np.searchsorted(self.t_local, np.arange(self.shape[0] + 1))

    def matrix(self, w: np.ndarray) -> Any:
        return csr_matrix()((w[self.wa:self.wb], self.s_local, self.indptr), shape=self.shape)

    def forward(self, H: np.ndarray, w: np.ndarray, b: np.ndarray) -> None:
        z = H[self.start:self.stop]
        z[...] = self.matrix(w) @ H[self.src]
        z += b[self.ba:self.bb, None]
        self._activate(H)

    def backward(self, H: np.ndarray, gH: np.ndarray, w: np.ndarray, gw: np.ndarray,
                 gb: np.ndarray, need_base: bool) -> None:
        gz = self._grad_z(H, gH)
        np.sum(gz, axis=1, out=gb[self.ba:self.bb])
        np.einsum("eb,eb->e", gz[self.t_local], H[self.e_src], out=gw[self.wa:self.wb])
        if need_base or self.feeds_computed:
            gH[self.src] += self.matrix(w).T @ gz


class Plan:
    """The compiled network: buffer rows, levels, and where each edge and bias lives."""

    def __init__(self, spec: GraphSpec) -> None:
        self.n_in = len(spec.inputs)
        inputs = set(spec.inputs)
        row: dict[Hashable, int] = {n: i for i, n in enumerate(spec.inputs)}
        self.state_neurons = tuple(dict.fromkeys(s for s, _ in spec.delayed))
        state_row = {n: self.n_in + i for i, n in enumerate(self.state_neurons)}
        self.n_state = len(self.state_neurons)
        self.n_base = self.n_in + self.n_state
        self.level_of = _levels(spec)
        appearance = {n: i for i, n in enumerate(spec.neurons)}
        order = sorted((n for n in spec.neurons if n not in inputs),
                       key=lambda n: (self.level_of[n], NAMES.index(spec.activation[n]),
                                      appearance[n]))
        for i, n in enumerate(order):
            row[n] = self.n_base + i
        self.row_of = row
        self.n_rows = self.n_base + len(order)
        self.bias_keys = tuple(order)
        self.bias_index = {n: i for i, n in enumerate(order)}
        self.out_rows = np.array([row[n] for n in spec.outputs], dtype=np.intp)
        self.state_src_rows = np.array([row[n] for n in self.state_neurons], dtype=np.intp)
        incoming: dict[Hashable, list] = {n: [] for n in order}
        for s, t in spec.edges:
            incoming[t].append((row[s], (s, t, False)))
        for s, t in spec.delayed:
            incoming[t].append((state_row[s], (s, t, True)))
        self.levels: list[Level] = []
        self.edge_keys: list[tuple] = []
        by_level: dict[int, list] = {}
        for n in order:
            by_level.setdefault(self.level_of[n], []).append(n)
        for lv in sorted(by_level):
            self.levels.append(self._level(by_level[lv], incoming, spec))
        self.edge_index = {k: i for i, k in enumerate(self.edge_keys)}

    def _level(self, neurons: list, incoming: dict, spec: GraphSpec) -> Level:
        start = self.row_of[neurons[0]]
        edges = [(t, r, key) for t, n in enumerate(neurons) for r, key in incoming[n]]
        src_rows = np.array(sorted({r for _, r, _ in edges}), dtype=np.intp)
        local = {int(r): i for i, r in enumerate(src_rows)}
        edges.sort(key=lambda e: (e[0], local[e[1]]))
        t_local = np.array([e[0] for e in edges], dtype=np.intp)
        s_local = np.array([local[e[1]] for e in edges], dtype=np.intp)
        groups, lo = [], start
        for i, n in enumerate(neurons):
            name = spec.activation[n]
            if i + 1 == len(neurons) or spec.activation[neurons[i + 1]] != name:
                groups.append((lo, start + i + 1, name))
                lo = start + i + 1
        wa = len(self.edge_keys)
        self.edge_keys.extend(e[2] for e in edges)
        block = len(neurons) * len(src_rows)
        if csr_matrix() is None:
            sparse, ratio = EdgeListLevel, EDGE_RATIO
        else:
            sparse, ratio = CsrLevel, CSR_RATIO
        cls = DenseLevel if block <= max(DENSE_MIN, ratio * len(edges)) else sparse
        return cls(start, start + len(neurons), src_rows, t_local, s_local, wa,
                   start - self.n_base, tuple(groups), self.n_base)

    def forward(self, x: np.ndarray, s: np.ndarray | None, w: np.ndarray,
                b: np.ndarray) -> np.ndarray:
        """All activations ``H`` (rows, batch) for inputs ``x`` (batch, n_in) and state ``s``."""
        dt = np.result_type(w.dtype, x.dtype) if x.dtype.kind == "f" else w.dtype
        H = np.empty((self.n_rows, x.shape[0]), dt)
        H[:self.n_in] = x.T
        if self.n_state:
            H[self.n_in:self.n_base] = s.T
        for level in self.levels:
            level.forward(H, w, b)
        return H

    def backward(self, g: np.ndarray, H: np.ndarray, w: np.ndarray,
                 need_base: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Gradients (x, state, weights, biases) from ``g`` = dLoss/dH, sweeping levels back."""
        gH = np.array(g, dtype=H.dtype)
        gw = np.empty(w.shape, H.dtype)
        gb = np.empty(self.n_rows - self.n_base, H.dtype)
        for level in reversed(self.levels):
            level.backward(H, gH, w, gw, gb, need_base)
        return gH[:self.n_in].T, gH[self.n_in:self.n_base].T, gw, gb


def _levels(spec: GraphSpec) -> dict:
    """Longest-path depth of every neuron over the regular edges (inputs 0, unfed neurons 1)."""
    preds: dict = {n: [] for n in spec.neurons}
    succ: dict = {n: [] for n in spec.neurons}
    for s, t in spec.edges:
        preds[t].append(s)
        succ[s].append(t)
    inputs = set(spec.inputs)
    indeg = {n: len(p) for n, p in preds.items()}
    level = {}
    ready = [n for n in spec.neurons if indeg[n] == 0]
    while ready:
        n = ready.pop()
        level[n] = 0 if n in inputs else 1 + max((level[p] for p in preds[n]), default=0)
        for t in succ[n]:
            indeg[t] -= 1
            if indeg[t] == 0:
                ready.append(t)
    return level
