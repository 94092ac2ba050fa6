"""Hypercube partner choice for large tables: every primary cell gets a protection proof by construction.

In a table with all its marginals, the attacker's feasible deviations (changes of the suppressed
cells that keep every published value and every relation) are exactly the sums of tensor products
``v_1 ⊗ ... ⊗ v_k`` of one *kernel vector* ``v_d`` per dimension: a vector over the dimension's codes
that keeps every parent equal to the sum of its children. The smallest kernel vectors of a code
hierarchy are paths: two leaves joined through their lowest common ancestor (that ancestor left
out, the two sides with opposite signs), or a leaf joined to the root (all the same sign). A
*hypercube* around a primary cell ``p`` is the product of one such path through ``p``'s code per
dimension (``2^k`` corners when every path has two codes, as in tau-Argus' GHMITER).

If every corner is suppressed, ``t * (v_1 ⊗ ... ⊗ v_k)`` is a point of the attacker's polytope for
every ``t`` with ``-T_minus <= t <= T_plus`` (each corner stays inside ``0 <= x <= ub``), so the
attacker's interval of ``p`` is at least ``T_plus + T_minus`` wide. Both end points are recorded
as certificates (:class:`disclosure.audit.Certificates`); the whole-table audit re-verifies every
certificate against the final pattern, so no protection claim rests on this module's arithmetic.

Per primary cell not yet wide enough (cells move in earlier hypercubes too): the path of each
dimension is chosen by coordinate descent — starting from the cheapest path along the cell's own
line, each dimension's path is re-chosen with the others fixed, minimising the cost of the corners
not yet suppressed, subject to the required width — for a few sweeps. No linear program is solved,
so the time grows with the number of primaries, not with the size of the suppressed component.
The price is over-suppression compared with the LP-driven heuristic, which is why it is only used
above :data:`HYPERCUBE_MIN_CELLS` cells.
"""

from __future__ import annotations

import time

import numpy as np

from .audit import TOL, AuditSystem, Certificates
from .spec import Hierarchy

HYPERCUBE_MIN_CELLS = 150_000  # from this many cells on, LP-unprotected primaries get hypercubes
MAX_PATHS = 400  # candidate paths per code (shortest first)


class DimensionPaths:
    """Per code of one dimension: the kernel paths through it, padded (codes -1, signs 0).

    ``codes[c]`` is an int array (paths x longest), ``signs[c]`` the matching +1/-1 (code ``c``
    itself has +1).
    """

    def __init__(self, h: Hierarchy, max_paths: int = MAX_PATHS):
        idx = {c: i for i, c in enumerate(h.codes)}
        self.codes: list[np.ndarray] = []
        self.signs: list[np.ndarray] = []
        for c in h.codes:
            paths = sorted(_paths_through(h, c), key=len)[:max_paths]
            width = max(len(p) for p in paths)
            ci = np.full((len(paths), width), -1, dtype=np.int64)
            sg = np.zeros((len(paths), width))
            for r, path in enumerate(paths):
                for k, (code, sign) in enumerate(path):
                    ci[r, k] = idx[code]
                    sg[r, k] = sign
            self.codes.append(ci)
            self.signs.append(sg)


def _down(h: Hierarchy, c: str) -> list[list[str]]:
    """Paths from ``c`` down to each leaf under it (``c`` first)."""
    if h.is_leaf(c):
        return [[c]]
    return [[c, *rest] for k in h.children[c] for rest in _down(h, k)]


def _paths_through(h: Hierarchy, c: str) -> list[list[tuple[str, int]]]:
    """Every minimal kernel vector of the hierarchy containing ``c``, as (code, sign), sign(c) = +1."""
    ancestors = []
    a = c
    while a in h.parent:
        a = h.parent[a]
        ancestors.append(a)
    out = []
    for down in _down(h, c):
        plus = [(x, 1) for x in down]
        # up to the root: every code on the way keeps the sign
        out.append(plus + [(x, 1) for x in ancestors])
        # across a lowest common ancestor: the other side has the opposite sign
        below = c
        for k, lca in enumerate(ancestors):
            side = plus + [(x, 1) for x in ancestors[:k]]
            for other in h.children[lca]:
                if other == below:
                    continue
                for path in _down(h, other):
                    out.append(side + [(x, -1) for x in path])
            below = lca
    return out


def hypercube(system: AuditSystem, primary: np.ndarray, required: np.ndarray,
              allowed: np.ndarray, cost: np.ndarray, shape: tuple[int, ...],
              hierarchies: tuple[Hierarchy, ...], start: np.ndarray | None = None,
              certificates: Certificates | None = None, targets: np.ndarray | None = None,
              sweeps: int = 3, max_cubes: int = 8
              ) -> tuple[np.ndarray, Certificates, np.ndarray, dict]:
    """A suppression pattern in which primary cells are proved protected by hypercubes.

    Per primary cell two attacker points are built up, one pushing the cell up and one pushing it
    down, each a sum of hypercube deviations that respects every cell's bounds; both are recorded
    as certificates. Returns the pattern, the certificates, the primary cells no hypercube made
    wide enough within ``max_cubes`` hypercubes (left to the LP-driven repair) and statistics.
    ``targets`` (default: every primary cell) are the cells to protect; ``certificates`` carry
    attacker points found before (they stay feasible: suppression only grows).
    """
    t0 = time.perf_counter()
    values = system.values
    ub = system.ub
    s = primary.copy() if start is None else (start | primary)
    cert = certificates if certificates is not None else Certificates(len(values))
    new_cost = np.where(allowed, cost, np.inf)
    paths = [DimensionPaths(h) for h in hierarchies]
    strides = np.array([int(np.prod(shape[d + 1:])) for d in range(len(shape))], dtype=np.int64)
    if targets is None:
        targets = np.flatnonzero(primary & (required > 0))
    targets = np.asarray(targets, dtype=np.int64)
    # hardest first: the smallest cells need the widest partners
    targets = targets[np.argsort(values[targets], kind="stable")]
    up = np.zeros(len(values))  # the point pushing the current cell up (deviations)
    down = np.zeros(len(values))  # ... and the one pushing it down
    n_cubes = 0
    added = 0
    unresolved = []
    for p in targets:
        p = int(p)
        need = float(required[p])
        if cert.hi[p] - cert.lo[p] >= need - TOL:
            continue
        coords = np.unravel_index(p, shape)
        touched = []
        for _ in range(max_cubes):
            ctx = _Context(p, values, ub, up, down, s, new_cost, cert.hi[p], cert.lo[p], need)
            choice = _choose(coords, paths, strides, ctx, sweeps)
            if choice is None:
                break
            ids, sign, t_plus, t_minus = choice
            added += int((~s[ids]).sum())
            s[ids] = True
            up[ids] += t_plus * sign
            down[ids] -= t_minus * sign
            touched.append(ids)
            n_cubes += 1
            if ctx.width_after(t_plus, t_minus) >= need - TOL:
                break
        if touched:
            ids = np.unique(np.concatenate(touched))
            cert.add(ids, up[ids].copy())
            cert.add(ids, down[ids].copy())
            up[ids] = 0.0
            down[ids] = 0.0
        if cert.hi[p] - cert.lo[p] < need - TOL:
            unresolved.append(p)
    stats = {"partner_choice": "hypercube", "hypercubes": n_cubes, "hypercube_added": added,
             "hypercube_unresolved": len(unresolved),
             "hypercube_seconds": round(time.perf_counter() - t0, 3)}
    return s, cert, np.array(unresolved, dtype=np.int64), stats


class _Context:
    """What scoring a hypercube around ``p`` needs: values, bounds and the two points so far."""

    def __init__(self, p, values, ub, up, down, s, new_cost, hi, lo, need):
        self.p, self.values, self.ub, self.up, self.down = p, values, ub, up, down
        self.s, self.new_cost, self.need = s, new_cost, need
        self.hi, self.lo = float(hi), float(lo)
        self.up_p, self.down_p = float(up[p]), float(down[p])
        self.width_now = max(self.hi, self.up_p) - min(self.lo, self.down_p)

    def width_after(self, t_plus, t_minus):
        return (max(self.hi, self.up_p + t_plus) - min(self.lo, self.down_p - t_minus))


def _corners(p: int, coords: tuple, paths: list[DimensionPaths], strides: np.ndarray,
             pick: list[int], skip: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cell ids and signs of the hypercube's corners (dimension ``skip`` left at p's code)."""
    ids = np.array([p], dtype=np.int64)
    sign = np.ones(1)
    for d, ps in enumerate(paths):
        if d == skip:
            continue
        ci = ps.codes[coords[d]][pick[d]]
        sg = ps.signs[coords[d]][pick[d]]
        ok = ci >= 0
        off = (ci[ok] - coords[d]) * strides[d]
        ids = (ids[:, None] + off[None, :]).reshape(-1)
        sign = (sign[:, None] * sg[ok][None, :]).reshape(-1)
    return ids, sign


def _evaluate(ids: np.ndarray, sign: np.ndarray, valid: np.ndarray, ctx: _Context
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Score, cost, T_plus and T_minus of candidate hypercubes (rows of ``ids``).

    ``T_plus``: how far the up point can still move along the hypercube (every corner within
    its bounds); ``T_minus`` the same for the down point in the opposite direction.
    """
    a = ctx.values[ids]
    room = ctx.ub[ids] - a
    yu = ctx.up[ids]
    yd = ctx.down[ids]
    pos = sign > 0
    t_plus = np.where(valid, np.where(pos, room - yu, a + yu), np.inf).min(axis=1)
    t_minus = np.where(valid, np.where(pos, a + yd, room - yd), np.inf).min(axis=1)
    t_plus = np.maximum(t_plus, 0.0)
    t_minus = np.maximum(t_minus, 0.0)
    c = np.where(valid & ~ctx.s[ids], ctx.new_cost[ids], 0.0).sum(axis=1)
    width = np.maximum(ctx.hi, ctx.up_p + t_plus) - np.minimum(ctx.lo, ctx.down_p - t_minus)
    # cost per unit of the missing width a hypercube supplies (several narrow but cheap
    # hypercubes may beat one wide expensive one: their points add up)
    gain = np.minimum(width - ctx.width_now, ctx.need - ctx.width_now)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(gain > TOL, (c + 1e-6) / gain, np.inf)
    return score, c, t_plus, t_minus


def _path_scores(d: int, coords: tuple, paths: list[DimensionPaths], strides: np.ndarray,
                 base: np.ndarray, bsign: np.ndarray, ctx: _Context) -> np.ndarray:
    """Score of every path of dimension ``d`` combined with the other dimensions' corners."""
    ci = paths[d].codes[coords[d]]
    sg = paths[d].signs[coords[d]]
    valid = np.repeat((ci >= 0)[:, :, None], len(base), axis=2).reshape(len(ci), -1)
    off = np.where(ci >= 0, ci - coords[d], 0) * strides[d]
    ids = (off[:, :, None] + base[None, None, :]).reshape(len(ci), -1)
    sign = (sg[:, :, None] * bsign[None, None, :]).reshape(len(ci), -1)
    return _evaluate(ids, sign, valid, ctx)[0]


def _choose(coords: tuple, paths: list[DimensionPaths], strides: np.ndarray, ctx: _Context,
            sweeps: int):
    """The cheapest wide-enough hypercube around ``p`` found by coordinate descent, or None."""
    p = ctx.p
    k = len(paths)
    pick = [0] * k
    # start: per dimension the cheapest path along p's own line
    line, line_sign = np.array([p], dtype=np.int64), np.ones(1)
    for d in range(k):
        pick[d] = int(np.argmin(_path_scores(d, coords, paths, strides, line, line_sign, ctx)))
    best = np.inf
    for _ in range(sweeps):
        improved = False
        for d in range(k):
            base, bsign = _corners(p, coords, paths, strides, pick, skip=d)
            score = _path_scores(d, coords, paths, strides, base, bsign, ctx)
            j = int(np.argmin(score))
            if score[j] < best - 1e-9:
                best = float(score[j])
                if j != pick[d]:
                    improved = True
                pick[d] = j
        if not improved:
            break
    if not np.isfinite(best):
        return None
    ids, sign = _corners(p, coords, paths, strides, pick)
    _, c, t_plus, t_minus = _evaluate(ids[None, :], sign[None, :], np.ones((1, len(ids)), bool),
                                      ctx)
    if not np.isfinite(c[0]):
        return None
    tp, tm = float(t_plus[0]), float(t_minus[0])
    if ctx.width_after(tp, tm) <= ctx.width_now + TOL:
        return None  # this hypercube adds no width: nothing better was found
    return ids, sign, tp, tm
