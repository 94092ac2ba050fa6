"""Hierarchical measurements of a count table and their weighted-least-squares combination.

The measurement strategy (Hay et al. 2010; the US Census TopDown algorithm) measures, with
discrete Laplace noise, several groups of counting queries:

* ``inner``: every inner cell (each person is in one of them);
* ``<dim>@<level>``: the one-way marginal of dimension ``dim`` at hierarchy level ``level``
  (level 1 = the codes just below the total; the deepest level = the leaves of that dimension;
  a leaf above the level counts as part of the cut);
* ``total``: the grand total.

Every group is a partition of the inner cells, so one person changes each group's answers by at
most ``contribution_bound`` in L1; group ``g`` gets ``epsilon * w_g`` (sequential composition,
``sum w_g = 1``).

:func:`wls` returns the best linear unbiased estimate (BLUE) of the inner cells from all
measurements, with inverse-variance weights, in closed form (Woodbury identity): its cost is a
few passes over the cube plus an ``m x m`` solve (m = number of marginal queries).
:func:`wls_variance` gives the exact variance of the BLUE of every published cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spec import Hierarchy
from .table import membership


@dataclass
class Group:
    """One measured group: ``dim`` None for the grand total, -1 for the inner cells."""

    name: str
    dim: int | None
    matrix: np.ndarray | None  # (queries x leaves of dim) membership, for a marginal group
    codes: tuple[str, ...] = ()
    weight: float = 0.0
    variance: float = 0.0
    values: np.ndarray | None = None  # noisy answers

    @property
    def n_queries(self) -> int:
        if self.dim is None:
            return 1
        if self.dim == -1:
            raise ValueError("the inner group is not a marginal group")
        assert self.matrix is not None
        return self.matrix.shape[0]


def level_cut(h: Hierarchy, level: int) -> list[int]:
    """Indices (in ``h.codes``) of the codes cutting the tree at ``level`` (a partition of leaves)."""
    return [i for i, c in enumerate(h.codes)
            if h.depth[c] == level or (h.is_leaf(c) and 0 < h.depth[c] < level)]


def marginal_groups(hierarchies: tuple[Hierarchy, ...]) -> list[Group]:
    """The one-way marginal groups at every hierarchy level of every dimension.

    A level is skipped when it adds no query: a single code (the grand total again), the same
    codes as the level above, or (in a one-dimensional table) the leaves, which are the inner
    cells themselves.
    """
    out = []
    for d, h in enumerate(hierarchies):
        mem = membership(h).astype(float)
        prev: list[int] = []
        for level in range(1, h.levels + 1):
            idx = level_cut(h, level)
            if len(idx) == 1 or idx == prev:
                continue
            if len(hierarchies) == 1 and len(idx) == len(h.leaves):
                continue  # a one-dimensional table: its leaf margin is the inner cells again
            prev = idx
            out.append(Group(name=f"{h.name}@{level}", dim=d, matrix=mem[idx],
                             codes=tuple(h.codes[i] for i in idx)))
    return out


def _per_dim(group: Group, shape: tuple[int, ...]) -> list[np.ndarray]:
    """For each dimension, the (queries or 1) x leaves matrix of the group's query sets."""
    out = []
    for f, n in enumerate(shape):
        if group.dim == f:
            assert group.matrix is not None
            out.append(group.matrix)
        else:
            out.append(np.ones((1, n)))
    return out


def answer(group: Group, cube: np.ndarray) -> np.ndarray:
    """The group's query answers on an inner cube (A_g @ x)."""
    if group.dim is None:
        return np.array([cube.sum()], dtype=cube.dtype)
    axes = tuple(a for a in range(cube.ndim) if a != group.dim)
    assert group.matrix is not None
    one_way = cube.sum(axis=axes)
    if np.issubdtype(cube.dtype, np.integer):
        return group.matrix.astype(np.int64) @ one_way
    return group.matrix @ one_way


def spread(group: Group, u: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A_g^T @ u as a cube broadcastable to ``shape``."""
    if group.dim is None:
        return np.full((1,) * len(shape), float(u[0]))
    assert group.matrix is not None
    v = group.matrix.T @ u
    sh = [1] * len(shape)
    sh[group.dim] = shape[group.dim]
    return v.reshape(sh)


def gram(groups: list[Group], shape: tuple[int, ...]) -> np.ndarray:
    """A A^T over all marginal queries: entry (q, r) = number of inner cells in both sets."""
    pd_ = [_per_dim(g, shape) for g in groups]
    blocks = []
    for i in range(len(groups)):
        row = []
        for j in range(len(groups)):
            b = np.ones((1, 1))
            for f in range(len(shape)):
                b = b * (pd_[i][f] @ pd_[j][f].T)
            row.append(np.broadcast_to(b, (groups[i].n_queries, groups[j].n_queries)))
        blocks.append(row)
    return np.block(blocks) if blocks else np.zeros((0, 0))


@dataclass
class WLSResult:
    inner: np.ndarray  # BLUE of the inner cells (float cube)
    kinv: np.ndarray  # inverse of K = diag(v_q) + v0 A A^T
    v0: float


def wls(inner_noisy: np.ndarray, v0: float, groups: list[Group]) -> WLSResult:
    """Best linear unbiased estimate of the inner cells from the inner and marginal measurements.

    Minimises ``|x - y|^2 / v0 + sum_q (a_q x - z_q)^2 / v_q`` in closed form:
    ``x = v0 b - v0^2 A^T K^-1 A b`` with ``b = y / v0 + A^T W z`` and
    ``K = diag(v_q) + v0 A A^T``.
    """
    shape = inner_noisy.shape
    y = inner_noisy.astype(float)
    if not groups:
        return WLSResult(inner=y, kinv=np.zeros((0, 0)), v0=v0)
    b = y / v0
    for g in groups:
        assert g.values is not None
        b = b + spread(g, np.asarray(g.values, dtype=float) / g.variance, shape)
    ab = np.concatenate([answer(g, b) for g in groups])
    k = np.diag(np.concatenate([np.full(g.n_queries, g.variance) for g in groups]))
    k = k + v0 * gram(groups, shape)
    kinv = np.linalg.inv(k)
    kinv = (kinv + kinv.T) / 2
    t = kinv @ ab
    x = v0 * b
    off = 0
    for g in groups:
        n = g.n_queries
        x = x - v0 * v0 * spread(g, t[off:off + n], shape)
        off += n
    return WLSResult(inner=x, kinv=kinv, v0=v0)


def wls_variance(hierarchies: tuple[Hierarchy, ...], groups: list[Group], res: WLSResult
                 ) -> np.ndarray:
    """Exact variance of the BLUE of every cell of the full cube (all codes, C order).

    For a published cell c with N(c) inner cells, ``Var = v0 N - v0^2 u^T K^-1 u`` where
    ``u_q = |S_q ∩ S_c|``. ``u`` factorises as ``N(c) * rho_q(c_dim(q))``, so the quadratic form
    is a sum of small per-dimension-pair tables broadcast over the cube.
    """
    mems = [membership(h).astype(float) for h in hierarchies]
    n_under = [m.sum(axis=1) for m in mems]  # leaves under each code
    full_shape = tuple(len(h.codes) for h in hierarchies)
    k = len(hierarchies)
    ncube = np.ones(full_shape)
    for f in range(k):
        sh = [1] * k
        sh[f] = full_shape[f]
        ncube = ncube * n_under[f].reshape(sh)
    v0 = res.v0
    var = v0 * ncube
    if not groups:
        return var
    # rho_q: (queries x codes of the group's dim) = |L(g) ∩ L(code)| / n(code); total: [[1]].
    rhos = []
    for g in groups:
        if g.dim is None:
            rhos.append(np.ones((1, 1)))
        else:
            assert g.matrix is not None
            rhos.append((g.matrix @ mems[g.dim].T) / n_under[g.dim][None, :])
    offs = np.cumsum([0] + [g.n_queries for g in groups])
    quad = np.zeros(full_shape)
    for i, gi in enumerate(groups):
        for j, gj in enumerate(groups):
            kij = res.kinv[offs[i]:offs[i + 1], offs[j]:offs[j + 1]]
            di, dj = gi.dim, gj.dim
            if di is not None and di == dj:
                vals = np.einsum("qc,qr,rc->c", rhos[i], kij, rhos[j])
                sh = [1] * k
                sh[di] = full_shape[di]
                quad = quad + vals.reshape(sh)
            else:
                tab = rhos[i].T @ kij @ rhos[j]  # (codes_di or 1) x (codes_dj or 1)
                sh = [1] * k
                if di is not None:
                    sh[di] = full_shape[di]
                if dj is not None:
                    sh[dj] = full_shape[dj]
                if di is not None and dj is not None:
                    arr = tab if di < dj else tab.T
                    quad = quad + arr.reshape(sh)
                else:
                    quad = quad + tab.reshape(sh)
    var = var - v0 * v0 * ncube * ncube * quad
    return np.maximum(var, 0.0)


def membership_oneway(h: Hierarchy, cube: np.ndarray, d: int) -> np.ndarray:
    """One-way margin of an inner cube along dimension ``d``, for every code of ``h``."""
    axes = tuple(a for a in range(cube.ndim) if a != d)
    return membership(h).astype(float) @ cube.sum(axis=axes)
