"""Fast secondary suppression: singleton repair plus cuts from the attacker LP.

1. Singleton repair: a relation with exactly one suppressed cell discloses it, so for every such
   relation the cheapest other cell is suppressed, preferring cells whose other relations already
   hold a suppressed cell (each relation it would newly open costs another partner later).
   Repeated until no relation holds exactly one suppressed cell.
2. Attacker check: the audit LPs of the primary cells not yet certified. Adding suppressions only
   widens intervals (the attacker's polytope grows), so a primary certified once stays protected
   and only failing ones are re-checked.
3. Repair: for a failing primary, the duals of its two attacker LPs give a Fischetti–Salazar cut
   ``sum g_i z_i >= L`` (see :mod:`disclosure.audit`); published cells with ``g_i > 0`` are added
   cheapest-per-unit-of-missing-width first until the cut is met, then back to 1. With a
   publication history, a primary failing a second time is checked on its block LP (its own
   table and the new one); if the block is short, it is repaired cut after cut on one kept
   model of its whole joint component (:meth:`~disclosure.audit.Attacker.repair_model`: the new
   table's publishable cells are columns fixed at their values, a suppression frees one), so
   the cuts see the other tables' suppressed cells, and the LPs are warm-started instead of one
   heuristic round per cut (12 months + year: 2,052 annual secondaries instead of 3,362;
   benchmarks/results_history.md).
4. Large tables (one table of at least ``HYPERCUBE_MIN_CELLS`` cells): instead of step 3, the
   primaries the first LP round left unprotected get hypercubes
   (:mod:`disclosure.secondary_hypercube`): protection proved by construction, no LP. Step 3 in
   a suppressed component of 10^5 cells needs rounds of LPs that do not finish in minutes; the
   hypercubes finish in seconds at the price of more suppression (figures in the README).

The result always passes the audit (the loop ends only when no primary fails); if no candidate
is left for a failing primary (everything else must be published), :class:`ProtectionImpossible`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from .audit import TOL, Attacker, AuditSystem, Certificates, _RepairModel
from .errors import R_
from .primary import ProtectionImpossible
from .secondary_hypercube import HYPERCUBE_MIN_CELLS, hypercube

log = logging.getLogger(__name__)

#: work limits of the pruning step (counts, so the result does not depend on the machine's
#: load; see :func:`prune`): attacker LPs, and LPs weighted by their model's cells (the time of
#: a warm-started LP grows about linearly with its component; 1e6 is about 5 s on this machine)
PRUNE_MAX_LPS = 200_000
PRUNE_MAX_WORK = 1_000_000
#: attacker points kept per component while pruning
PRUNE_POOL = 256
#: seconds of work between two progress calls while pruning (how often, never what)
PROGRESS_EVERY = 0.5


class RelationIndex:
    """Rows <-> cells incidence of the relations, and suppressed counts per row."""

    def __init__(self, relations: sp.csr_matrix):
        a = relations.copy().tocsr()
        a.data = np.ones_like(a.data, dtype=np.int32)
        self.rows = a
        self.cols = a.tocsc()

    def counts(self, s: np.ndarray) -> np.ndarray:
        return np.asarray(self.rows @ s.astype(np.int32)).ravel()


def singleton_repair(idx: RelationIndex, s: np.ndarray, allowed: np.ndarray, cost: np.ndarray,
                     penalty: float, skip: np.ndarray | None = None) -> int:
    """Suppress partners until no relation holds exactly one suppressed cell. Returns # added.

    A candidate's score is its cost plus ``penalty`` times what closing the relations it newly
    opens would cost (for each of its other relations with no suppressed cell yet: the cheapest
    other publishable cell of that relation) — a one-step look-ahead. A relation whose lone
    suppressed cell is in ``skip`` (an earlier release's cell that needs no protection) and that
    has no publishable cell left is left alone.
    """
    rows, cols = idx.rows, idx.cols
    count = idx.counts(s)
    queue = list(np.flatnonzero(count == 1))
    added = 0
    cache: dict[int, tuple[float, int, float]] = {}

    def cheapest(r: int) -> tuple[float, int, float]:
        hit = cache.get(r)
        if hit is None:
            cells = rows.indices[rows.indptr[r]:rows.indptr[r + 1]]
            cand = cells[~s[cells] & allowed[cells]]
            if len(cand) == 0:
                hit = (np.inf, -1, np.inf)
            elif len(cand) == 1:
                hit = (float(cost[cand[0]]), int(cand[0]), np.inf)
            else:
                c = cost[cand]
                k = np.argpartition(c, 1)[:2]
                if c[k[0]] > c[k[1]]:
                    k = k[::-1]
                hit = (float(c[k[0]]), int(cand[k[0]]), float(c[k[1]]))
            cache[r] = hit
        return hit

    while queue:
        r = queue.pop()
        if count[r] != 1:
            continue
        cells = rows.indices[rows.indptr[r]:rows.indptr[r + 1]]
        cand = cells[~s[cells] & allowed[cells]]
        if len(cand) == 0:
            only = cells[s[cells]]
            if skip is not None and skip[only[0]]:
                continue
            err = ProtectionImpossible(
                R_("the cell %(cell)s is the only suppressed cell of a relation whose other cells "
                   "must all be published%(blame)s"), cell="?", blame="")
            err.cell = int(only[0])
            raise err
        score = cost[cand].copy()
        if penalty > 0:
            for k, j in enumerate(cand):
                rj = cols.indices[cols.indptr[j]:cols.indptr[j + 1]]
                for q in rj[count[rj] == 0]:
                    m1, a1, m2 = cheapest(int(q))
                    score[k] += penalty * min(m2 if a1 == j else m1, 1e12)
        j = int(cand[np.argmin(score)])
        s[j] = True
        added += 1
        rj = cols.indices[cols.indptr[j]:cols.indptr[j + 1]]
        count[rj] += 1
        for q in rj:
            cache.pop(int(q), None)
            if count[q] == 1:
                queue.append(int(q))
    return added


def heuristic(system: AuditSystem, primary: np.ndarray, required: np.ndarray,
              allowed: np.ndarray, cost: np.ndarray, start: np.ndarray | None = None,
              prune_seconds: float = 2.0, variants: bool | None = None,
              shape: tuple[int, ...] | None = None, hierarchies: tuple | None = None,
              skip: np.ndarray | None = None, prune_lps: int | None = None,
              progress: Callable[..., None] | None = None) -> tuple[np.ndarray, dict]:
    """A suppression pattern (bool mask) protecting every primary cell; and run statistics.

    ``primary`` are the cells suppressed whatever happens (with publication history also the
    earlier releases' suppressed cells); only cells with ``required > 0`` are protected;
    ``skip``: see :func:`singleton_repair`.

    On small problems (or with ``variants=True``) the partner choice is run with three penalty
    weights and the cheapest protected pattern is kept. Afterwards secondary cells are dropped
    again, most expensive first, while the pattern still passes the audit (:func:`prune`).

    Deterministic: no decision depends on the clock. ``prune_seconds`` is kept for callers only
    as a switch (``0`` = no pruning; any other value = prune); the pruning's work is bounded by
    ``prune_lps`` attacker LPs (default :data:`PRUNE_MAX_LPS`), so the same input gives the same
    pattern on a loaded machine as on an idle one.

    ``progress`` (optional): called as ``progress("secondary", primaries_left=n)`` after each
    attacker round (``n``: primaries still failing) and at most every
    :data:`PROGRESS_EVERY` seconds while pruning; it never changes what is computed.
    """
    t0 = time.perf_counter()
    idx = RelationIndex(system.relations)
    if variants is None:
        variants = len(system.values) <= 5000
    weights = (1.0, 0.5, 0.0, 2.0) if variants else (1.0,)
    best: tuple[float, np.ndarray, dict] | None = None
    for w in weights:
        s, stats = _protect(system, idx, primary, required, allowed, cost, start, w, shape,
                             hierarchies=hierarchies, skip=skip, progress=progress)
        c = float(cost[s].sum())
        if best is None or c < best[0]:
            best = (c, s, stats | {"penalty": w})
    assert best is not None
    s, stats = best[1], best[2]
    if prune_seconds > 0:
        stats.update(prune(system, idx, s, primary, required, cost,
                           PRUNE_MAX_LPS if prune_lps is None else prune_lps,
                           progress=progress))
    else:
        stats["pruned"] = 0

    stats["seconds"] = round(time.perf_counter() - t0, 3)  # reported only, never decides
    return s, stats


def prune(system: AuditSystem, idx: RelationIndex, s: np.ndarray, primary: np.ndarray,
          required: np.ndarray, cost: np.ndarray, max_lps: int | None = PRUNE_MAX_LPS,
          max_work: int | None = PRUNE_MAX_WORK,
          progress: Callable[..., None] | None = None) -> dict:
    """Drop secondary cells (most expensive first) whose removal keeps every primary protected.

    Deterministic: the work is bounded by ``max_lps`` attacker LPs (a count, not a clock), so the
    same input gives the same pattern under any machine load (``max_work``: LPs weighted by the
    cells of their model).

    Removing a cell only shrinks the attacker polytope of its own component, so only that
    component's primaries are re-checked, on the component's model with the cell held at its
    value (warm-started). Each component keeps a pool of the last attacker points found (feasible
    deviation vectors); a point that leaves the removed cell unchanged stays feasible once the
    cell is published, so a primary whose interval such points already prove wide enough needs
    no LP, and only a missing direction is solved. A removal that would leave a relation with a
    single suppressed cell is not tried. Returns statistics (``pruned``: cells dropped;
    ``prune_tried``; ``prune_lps``; ``prune_stopped``: the LP budget ran out first).
    """
    order = np.flatnonzero(s & ~primary)
    order = order[np.argsort(-cost[order], kind="stable")]
    stats = {"pruned": 0, "prune_tried": 0, "prune_lps": 0, "prune_work": 0,
             "prune_stopped": False}
    if len(order) == 0:
        return stats
    # The components of the pattern before pruning: removals only split them, and a removed cell
    # stays in its model as a column fixed at its value, so every model stays exact.
    att = Attacker(system, s)
    pools: dict[int, np.ndarray] = {}
    s32 = s.astype(np.int32)
    last = time.perf_counter()
    for j in order:
        j = int(j)
        if progress is not None and time.perf_counter() - last >= PROGRESS_EVERY:
            last = time.perf_counter()  # how often someone hears of it, never a decision
            progress("secondary", primaries_left=0)
        if ((max_lps is not None and stats["prune_lps"] >= max_lps)
                or (max_work is not None and stats["prune_work"] >= max_work)):
            stats["prune_stopped"] = True
            break
        rj = idx.cols.indices[idx.cols.indptr[j]:idx.cols.indptr[j + 1]]
        cnt = np.asarray(idx.rows[rj] @ s32).ravel()
        if np.any(cnt == 2):
            continue
        k = int(att.comp_of[j])
        if k < 0 or not att.is_exact(j):
            continue  # large component: intervals are certified, not exact; keep the cell
        members = att.comp_cells[k]
        targets = members[primary[members] & (required[members] > 0)]
        stats["prune_tried"] += 1
        mdl = att._model(k)
        pj = mdl.pos[j]
        mdl.h.changeColBounds(pj, 0.0, 0.0)
        pool = pools.get(k, np.zeros((0, len(mdl.cells))))
        usable = pool[np.abs(pool[:, pj]) <= 1e-9]
        tpos = np.array([mdl.pos[int(p)] for p in targets], dtype=np.int64)
        if len(usable):
            ups = np.maximum(usable[:, tpos].max(axis=0), 0.0)
            downs = np.maximum(-usable[:, tpos].min(axis=0), 0.0)
        else:
            ups = downs = np.zeros(len(targets))
        need = np.maximum(required[targets], TOL) - TOL
        new_points = []
        ok = True
        # the primaries the pool does not prove; those sharing a relation with j first (the
        # likeliest to fail), then in cell order
        open_ = np.flatnonzero(ups + downs < need)
        near = np.isin(targets[open_], idx.rows[rj].indices)
        for t in open_[np.argsort(~near, kind="stable")]:
            p = int(targets[t])
            up, down = float(ups[t]), float(downs[t])
            for sense in (+1, -1):
                if up + down >= need[t]:
                    break
                val, _ = mdl.solve(p, sense)
                stats["prune_lps"] += 1
                stats["prune_work"] += len(mdl.cells)
                if sense > 0:
                    up = val
                else:
                    down = val
                if mdl.x is not None:
                    new_points.append(mdl.x.copy())
            if up + down < need[t]:
                ok = False
                break
        if new_points:
            # points of a rejected trial are feasible before the removal too
            pool = np.vstack([pool, np.array(new_points)])[-PRUNE_POOL:]
        if ok:
            stats["pruned"] += 1
            s[j] = False
            s32[j] = 0
            pool = pool[np.abs(pool[:, pj]) <= 1e-9]  # points moving j are no longer feasible
        else:
            mdl.h.changeColBounds(pj, float(mdl.lo[pj]), float(mdl.hi[pj]))
        pools[k] = pool
    return stats


def _greedy(g: dict[int, float], deficit: float, s: np.ndarray, allowed: np.ndarray,
            cost: np.ndarray, chosen: set[int]) -> list[int]:
    """Cells meeting a cut ``sum g_i z_i >= deficit``, cheapest per unit of missing width first
    (only publishable cells not chosen yet)."""
    cand = [(i, gi) for i, gi in g.items() if not s[i] and allowed[i] and i not in chosen]
    out = []
    while deficit > TOL and cand:
        k = min(range(len(cand)), key=lambda c: cost[cand[c][0]] / min(cand[c][1], deficit))
        i, gi = cand.pop(k)
        out.append(i)
        deficit -= gi
    return out


def _repair_on_model(att: Attacker, mdl: _RepairModel, p: int, required: float, s: np.ndarray,
                     allowed: np.ndarray, cost: np.ndarray, chosen: set[int],
                     idx: RelationIndex, penalty: float, skip: np.ndarray | None) -> int:
    """Repair primary ``p`` cut after cut on a repair model (:meth:`Attacker.repair_model`):
    solve, cut, suppress (with the partners singleton repair adds), solve again on the same
    warm-started model until the interval is wide enough or the cut offers nothing. Adds to
    ``chosen``; returns the LPs solved, negated when the cut had nothing to give (the joint
    component's own LPs decide in the next round)."""
    need = max(required, TOL) - TOL
    mdl.free(list(chosen))
    lps = 0
    cert = att.cert
    for _ in range(REPAIR_CUTS):
        # points found for the primaries repaired before (feasible once ``chosen`` is
        # suppressed) may already prove it
        if cert.hi[p] - cert.lo[p] >= need:
            return lps
        up, du = mdl.solve(p, +1)
        cert.add(mdl.cells, mdl.x)
        lps += 1
        if cert.hi[p] - cert.lo[p] >= need:
            return lps
        down, dd = mdl.solve(p, -1)
        cert.add(mdl.cells, mdl.x)
        lps += 1
        if up + down >= need:
            return lps
        g: dict[int, float] = {}
        for sense, duals in ((+1, du), (-1, dd)):
            for i, gi in att.cut(p, sense, duals, mdl.rows).items():
                g[i] = g.get(i, 0.0) + gi
        new = _greedy(g, required - (up + down), s, allowed, cost, chosen)
        if not new:
            return lps if any(i in chosen for i in g) else -lps
        trial = s.copy()
        trial[list(chosen)] = True
        trial[new] = True
        singleton_repair(idx, trial, allowed, cost, penalty, skip)
        new = [int(i) for i in np.flatnonzero(trial & ~s) if int(i) not in chosen]
        chosen.update(new)
        mdl.free(new)
    return lps


#: cuts per primary and round on a repair model (each: one warm-started LP pair)
REPAIR_CUTS = 50


def _protect(system: AuditSystem, idx: RelationIndex, primary: np.ndarray, required: np.ndarray,
             allowed: np.ndarray, cost: np.ndarray, start: np.ndarray | None, penalty: float,
             shape: tuple[int, ...] | None = None, max_rounds: int = 200,
             hierarchies: tuple | None = None, skip: np.ndarray | None = None,
             progress: Callable[..., None] | None = None) -> tuple[np.ndarray, dict]:
    s = primary.copy() if start is None else (start | primary)
    stats = {"singleton_added": 0, "cut_added": 0, "rounds": 0, "lps": 0}
    cert = Certificates(len(s))  # points stay feasible as cells are added
    fails = np.zeros(len(s), dtype=np.int32)  # column generation only for repeat failures
    # history: a repeat failure is first checked on its block LP, then repaired on the repair
    # model; a primary whose cut there offers nothing to suppress goes on to the exact LPs
    full = np.zeros(len(s), dtype=bool)
    repairs: list = []  # history: repair models, kept while the pattern grows
    stats["singleton_added"] += singleton_repair(idx, s, allowed, cost, penalty, skip)
    pending = np.flatnonzero(primary & (required > 0))
    use_cubes = hierarchies is not None and shape is not None and len(s) >= HYPERCUBE_MIN_CELLS
    for rnd in range(max_rounds):
        stats["rounds"] = rnd + 1
        att = Attacker(system, s, cert, need=required, shape=shape)
        stats["lps"] += att.prime(pending, required)
        failing = []
        for p in pending:
            p = int(p)
            if cert.hi[p] - cert.lo[p] >= max(required[p], TOL) - TOL:
                continue  # a feasible point already shows it wide enough: no LP pair needed
            lo, hi, duals = att.bounds(p, float(required[p]), deep=fails[p] >= 2,
                                       block=not full[p])
            stats["lps"] += 2
            width = hi - lo
            if width < max(required[p], TOL) - TOL:
                failing.append((p, width, duals))
                fails[p] += 1
        log.debug("heuristic round %d: %d checked, %d failing, %d suppressed, %d LPs",
                  rnd + 1, len(pending), len(failing), int(s.sum()), stats["lps"])
        if progress is not None:
            progress("secondary", primaries_left=len(failing))
        if not failing:
            break
        pending = np.array([f[0] for f in failing], dtype=np.int64)
        if use_cubes:
            # Large table (>= HYPERCUBE_MIN_CELLS cells): the primaries this LP round found
            # unprotected get hypercubes (protection proved by construction, no LP), which is
            # much faster than LP-driven repair in a suppressed component of 10^5 cells; only
            # those still short are checked by LP again in the next round and, if they fail
            # there, repaired by cuts (the hypercube stage runs once, so the loop cannot stall).
            use_cubes = False
            s, cert, pending, hs = hypercube(system, primary, required, allowed, cost, shape,
                                             hierarchies, start=s, certificates=cert,
                                             targets=pending)
            stats.update(hs)
            if len(pending) == 0:
                break
            continue
        chosen: set[int] = set()
        for p, width, duals in failing:
            if duals.get("block"):
                # only a large component of a history has blocks, so it has a repair model
                mdl = att.repair_model(p, allowed, repairs)
                got = _repair_on_model(att, mdl, p, float(required[p]), s, allowed, cost,
                                       chosen, idx, penalty, skip)
                stats["lps"] += abs(got)
                if got < 0:
                    full[p] = True  # the cut has nothing left to give: joint LPs next round
                continue
            g: dict[int, float] = {}
            for sense, key in ((+1, "up"), (-1, "down")):
                for i, gi in att.cut(p, sense, duals[key], duals.get(f"rows_{key}", duals["rows"])).items():
                    g[i] = g.get(i, 0.0) + gi
            deficit = required[p] - width
            cand = [(i, gi) for i, gi in g.items() if not s[i] and allowed[i] and i not in chosen]
            if not cand and not duals["exact"] and duals["rows"] is not None:
                # The local LP's cut points only at suppressed cells outside its neighbourhood:
                # widen the structure with the cheapest publishable cell of its relations.
                rows = idx.rows[duals["rows"]]
                near = np.unique(rows.indices)
                near = near[~s[near] & allowed[near]]
                near = [int(i) for i in near if int(i) not in chosen]
                if near:
                    i = min(near, key=lambda c: cost[c])
                    chosen.add(i)
                    stats["widened"] = stats.get("widened", 0) + 1
                    continue
            if not cand and not duals["exact"]:
                # a restriction's verdict proves no impossibility: the next round checks this
                # primary deeper (block, then the exact LP of its component), which decides
                continue
            if not cand and not any(i in chosen for i in g):
                err = ProtectionImpossible(
                    R_("the primary cell %(cell)s cannot be protected: every cell that could "
                       "hide it must be published%(blame)s"), cell="?", blame="")
                err.cell = p
                raise err
            chosen.update(_greedy(g, deficit, s, allowed, cost, chosen))
        for i in chosen:
            s[i] = True
        stats["cut_added"] += len(chosen)
        stats["singleton_added"] += singleton_repair(idx, s, allowed, cost, penalty, skip)
    else:
        raise RuntimeError("secondary suppression did not converge")  # pragma: no cover
    stats["_certificates"] = cert
    return s, stats
