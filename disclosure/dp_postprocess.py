"""Integer, non-negative, exactly additive post-processing of a noisy table estimate (top-down).

Input: the weighted-least-squares estimate (BLUE) of the inner cells, a float cube that may be
negative. Output: a non-negative integer inner cube; every total is then the exact sum of its
parts. The totals are fixed *before* the cells are made non-negative, so clipping small cells at 0
cannot push the totals upward (the bias of "clip, then sum"):

1. :func:`topdown_margins` — the grand total is the rounded BLUE total; going down each
   dimension's hierarchy, the children's BLUE margins are projected onto the non-negative values
   summing to their parent and rounded with the largest-remainder rule (sum kept).
2. :func:`project_nonneg` — the Euclidean projection of the BLUE inner cells onto
   {x >= 0, one-way margins = the integers of step 1} (dual block-coordinate ascent: every slice
   is shifted by a constant and clipped at 0).
3. :func:`round_stages` — controlled rounding, one dimension at a time: stage j rounds the
   j-way table (rows: cells of the already integer (j-1)-way table, columns: the leaves of
   dimension j) so that every entry goes to its floor or ceiling and both margins stay exact.
   Each stage is a two-way transportation problem, whose integral solutions always exist; it is
   solved by nearest rounding plus a max-flow repair that flips entries closest to .5 first.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import maximum_flow

from .spec import TOTAL, Hierarchy


def shift_to_sums(rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per row r, the lambda with ``sum(max(rows[r] + lambda, 0)) == targets[r]`` (targets >= 0)."""
    s = -np.sort(-rows, axis=1)
    c = np.cumsum(s, axis=1)
    j = np.arange(1, s.shape[1] + 1)
    lam = (targets[:, None] - c) / j
    valid = (s + lam) > 0
    # The valid j form a prefix; take the last one.
    rho = valid.shape[1] - 1 - np.argmax(valid[:, ::-1], axis=1)
    out = lam[np.arange(len(rows)), rho]
    none = ~valid.any(axis=1)
    out[none] = -s[none, 0]
    return out


def _largest_remainder(values: np.ndarray, total: int) -> np.ndarray:
    """Non-negative integers summing to ``total``, each the floor or ceiling of ``values``."""
    fl = np.floor(values + 1e-9).astype(np.int64)
    fl = np.minimum(fl, np.ceil(values).astype(np.int64))
    rest = int(total - fl.sum())
    if rest > 0:
        order = np.argsort(-(values - fl), kind="stable")[:rest]
        fl[order] += 1
    elif rest < 0:  # only from float error
        order = np.argsort(values - fl, kind="stable")
        for i in order:
            if rest == 0:
                break
            if fl[i] > 0:
                fl[i] -= 1
                rest += 1
    return fl


def topdown_margins(hierarchies: tuple[Hierarchy, ...], oneway: list[np.ndarray],
                    total: float) -> tuple[int, list[np.ndarray], list[np.ndarray]]:
    """Integer one-way margins (per dimension: a value per code), consistent down every hierarchy.

    ``oneway[d]`` is the BLUE of dimension d's one-way margin per code (in ``h.codes`` order).
    Returns (grand total, per-dimension value per code, per-dimension value per leaf).
    """
    grand = max(0, int(np.floor(total + 0.5)))
    per_code, per_leaf = [], []
    for h, est in zip(hierarchies, oneway, strict=True):
        ci = {c: i for i, c in enumerate(h.codes)}
        v = np.zeros(len(h.codes), dtype=np.int64)
        v[ci[TOTAL]] = grand
        for p in h.codes:  # depth-first: a parent before its children
            if p not in h.children:
                continue
            kids = [ci[c] for c in h.children[p]]
            f = est[kids].astype(float)
            lam = shift_to_sums(f[None, :], np.array([float(v[ci[p]])]))[0]
            proj = np.maximum(f + lam, 0.0)
            v[kids] = _largest_remainder(proj, int(v[ci[p]]))
        per_code.append(v)
        per_leaf.append(v[[ci[c] for c in h.leaves]])
    return grand, per_code, per_leaf


def _oneway(x: np.ndarray, d: int) -> np.ndarray:
    return x.sum(axis=tuple(a for a in range(x.ndim) if a != d))


def project_nonneg(est: np.ndarray, margins: list[np.ndarray], *, tol: float = 1e-6,
                   max_iter: int = 200) -> tuple[np.ndarray, int]:
    """Euclidean projection of ``est`` onto {x >= 0, one-way margins = ``margins``}.

    Returns (projection, sweeps). The margins must be non-negative and share one sum.
    """
    k = est.ndim
    lams = [np.zeros(n) for n in est.shape]

    def shaped(d: int) -> np.ndarray:
        sh = [1] * k
        sh[d] = est.shape[d]
        return lams[d].reshape(sh)

    x = np.maximum(est, 0)
    for it in range(1, max_iter + 1):
        for d in range(k):
            base = est.copy()
            for e in range(k):
                if e != d:
                    base += shaped(e)
            rows = np.moveaxis(base, d, 0).reshape(est.shape[d], -1)
            lams[d] = shift_to_sums(rows, margins[d].astype(float))
        total = est.copy()
        for e in range(k):
            total += shaped(e)
        x = np.maximum(total, 0)
        err = max(float(np.max(np.abs(_oneway(x, d) - margins[d]))) for d in range(k))
        if err < tol:
            return x, it
    return x, max_iter


def rake(x: np.ndarray, row_t: np.ndarray, col_t: np.ndarray, *, floor: float = 1e-6,
         tol: float = 1e-10, max_iter: int = 1000) -> np.ndarray:
    """Iterative proportional fitting of a non-negative matrix to row and column sums."""
    m = x + floor
    m[row_t == 0, :] = 0
    m[:, col_t == 0] = 0
    for _ in range(max_iter):
        rs = m.sum(axis=1)
        m *= np.divide(row_t, rs, out=np.zeros_like(rs), where=rs > 0)[:, None]
        cs = m.sum(axis=0)
        m *= np.divide(col_t, cs, out=np.zeros_like(cs), where=cs > 0)[None, :]
        if np.max(np.abs(m.sum(axis=1) - row_t)) < tol * (1 + row_t.max(initial=0)):
            break
    return m


def controlled_round(x: np.ndarray, row_t: np.ndarray, col_t: np.ndarray) -> np.ndarray:
    """Round a non-negative matrix whose margins are (nearly) the integers ``row_t``/``col_t``.

    Every entry goes to its floor or ceiling (a last-resort repair may move an entry by one more
    unit if float error made that necessary); both margins are met exactly; the result is >= 0.
    """
    snapped = np.where(np.abs(x - np.round(x)) < 1e-9, np.round(x), x)
    fl = np.floor(snapped).astype(np.int64)
    frac = snapped - fl
    y = fl + (frac >= 0.5)
    fractional = frac > 0
    for delta in (0.1, 0.25, 0.5, None):
        er = y.sum(axis=1) - row_t  # > 0: the row must lose units
        ec = y.sum(axis=0) - col_t
        if not er.any() and not ec.any():
            return y
        if delta is None:  # last resort: any entry may move by one unit
            off = y >= 1
            on = np.ones_like(y, dtype=bool)
        else:
            near = np.abs(frac - 0.5) < delta
            off = fractional & (y > fl) & near
            on = fractional & (y == fl) & near
        y = _repair(y, er, ec, off, on)
    er = y.sum(axis=1) - row_t
    ec = y.sum(axis=0) - col_t
    if er.any() or ec.any():
        raise RuntimeError("controlled rounding failed to meet the margins")
    return y


def _repair(y: np.ndarray, er: np.ndarray, ec: np.ndarray, off: np.ndarray, on: np.ndarray
            ) -> np.ndarray:
    """Flip entries along a max flow: row->col arcs turn an entry down, col->row arcs up."""
    r, c = y.shape
    src, snk = r + c, r + c + 1
    rows_i, cols_i, caps = [], [], []
    orr, occ = np.nonzero(off)
    rows_i.append(orr)
    cols_i.append(r + occ)
    caps.append(np.ones(len(orr), dtype=np.int32))
    onr, onc = np.nonzero(on)
    rows_i.append(r + onc)
    cols_i.append(onr)
    caps.append(np.ones(len(onr), dtype=np.int32))
    pr = np.flatnonzero(er > 0)
    rows_i.append(np.full(len(pr), src))
    cols_i.append(pr)
    caps.append(er[pr].astype(np.int32))
    nr = np.flatnonzero(er < 0)
    rows_i.append(nr)
    cols_i.append(np.full(len(nr), snk))
    caps.append((-er[nr]).astype(np.int32))
    pc = np.flatnonzero(ec > 0)
    rows_i.append(r + pc)
    cols_i.append(np.full(len(pc), snk))
    caps.append(ec[pc].astype(np.int32))
    nc = np.flatnonzero(ec < 0)
    rows_i.append(np.full(len(nc), src))
    cols_i.append(r + nc)
    caps.append((-ec[nc]).astype(np.int32))
    ri = np.concatenate(rows_i)
    ci = np.concatenate(cols_i)
    cp = np.concatenate(caps)
    g = sp.csr_matrix((cp, (ri, ci)), shape=(r + c + 2, r + c + 2))
    res = maximum_flow(g, src, snk)
    f = res.flow.tocoo()
    pos = f.data > 0
    fr, fc = f.row[pos], f.col[pos]
    y = y.copy()
    down = (fr < r) & (fc >= r) & (fc < r + c)
    up = (fr >= r) & (fr < r + c) & (fc < r)
    y[fr[down], fc[down] - r] -= 1
    y[fc[up], fr[up] - r] += 1
    return y


def round_stages(x: np.ndarray, margins: list[np.ndarray]) -> np.ndarray:
    """Non-negative integer cube with the given integer one-way margins, near the float ``x``."""
    k = x.ndim
    y = margins[0].astype(np.int64)
    for j in range(1, k):
        xj = x.sum(axis=tuple(range(j + 1, k))) if j + 1 < k else x
        mat = xj.reshape(-1, x.shape[j])
        row_t = y.reshape(-1).astype(float)
        col_t = margins[j].astype(float)
        fitted = rake(mat, row_t, col_t)
        y = controlled_round(fitted, y.reshape(-1), margins[j].astype(np.int64))
        y = y.reshape(x.shape[: j + 1])
    return y.reshape(x.shape)
