"""Optimal secondary suppression: Fischetti–Salazar MILP with cuts from the attacker LP (HiGHS).

Binary ``z_i`` (1 = suppress) for every cell that may be suppressed, primaries fixed to 1, cells
that must be published fixed to 0; minimise ``sum cost_i z_i``. Constraints:

* relation constraints: in every relation, a suppressed cell needs another suppressed cell
  (``z_j <= sum_{k != j} z_k``; for a primary ``sum_{k != p} z_k >= 1``) — without it the cell is
  exactly computable, so an optimal pattern satisfies them anyway;
* protection cuts, generated lazily, only for violated primaries: for a primary ``p`` whose
  interval is narrower than its level ``L`` the duals of its two attacker LPs give
  ``sum_i (g_up_i + g_down_i) z_i >= L`` (valid for every pattern, see :mod:`disclosure.audit`;
  coefficients above ``L`` are capped at ``L``, which keeps the cut valid for binaries).

Per block (see below) the search runs in two stages, both on one pool of cuts kept for the
whole run:

1. cut rounds on the LP relaxation (one HiGHS model, cuts added as rows, warm-started): at the
   LP point ``z*`` the attacker LP with each cell's room scaled by ``z*_i``
   (``-a_i z*_i <= y_i <= (ub_i - a_i) z*_i``) gives the cut most violated by the point; when it
   finds none, the point rounded to a pattern is audited and its violated primaries give cuts.
   Every few rounds the rounded point is repaired into a protected pattern by the heuristic
   (partners chosen at costs lowered where the LP suppresses, ``cost * (1 - 0.9 z*)``) and
   pruned; it becomes the incumbent when cheaper. The LP value is a lower bound.
2. the MILP on every cut (HiGHS, presolve on, warm start from the incumbent with
   ``setSolution``, a node limit), only when the LP bound is within :data:`MILP_WINDOW` of the
   incumbent (its root node costs as much as many LP rounds, and branching cannot close a wider
   gap within the node budget); each solution is audited (cuts, repair as above) and the MILP's
   dual bound is a lower bound.

The run starts from the heuristic method's pattern (the same pattern ``secondary: heuristic``
gives) and keeps it unless a cheaper protected pattern is found: the result is never worse than
the heuristic's. Large tables are decomposed like tau-Argus' modular method: the cells under
each top-level code of a hierarchical dimension form a block (a partial problem), optimised one
block at a time with the rest of the pattern fixed (cuts stay valid because they are built on
the whole table's LPs).

Deterministic: the search is bounded by work, not time — ``max_iter`` LP cut rounds and
:data:`MAX_REPAIRS` repairs per block, ``work_limit`` branch-and-bound nodes over all MILP solves
(HiGHS ``mip_max_nodes``, single-threaded, fixed seed) — so the same input gives the same
pattern under any load. ``time_limit`` (seconds, default none) is only an outer safety stop;
when it strikes, the result is the heuristic method's pattern for the whole table (itself
deterministic), and ``fallback`` says so. ``progress`` hears of each round at most every
:data:`PROGRESS_EVERY` seconds (the clock decides only how often someone is told).

The lower bound is the best LP value or MILP dual bound (relaxations: only some cuts); the gap
``(cost - bound) / cost`` is over the secondary cells' cost and is a bound for the whole table
when it is one block (``scope: table``), else per block with the rest fixed (``scope: blocks``).
Both are ratios and sums of raw values: ``details['optimality']`` holds the relative figures for
the protection report's raw-allowed part only; absolute costs are returned under ``_costs``.
``within_tolerance`` says whether the gap is at most :data:`MIP_GAP_TOLERANCE` (the setting the
public text may state).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import highspy
import numpy as np
import scipy.sparse as sp

from .audit import TOL, Attacker, AuditSystem, _new_highs
from .primary import ProtectionImpossible
from .secondary_heuristic import RelationIndex, heuristic, prune
from .table import CellTable

#: tables up to this many cells are one block (a lower bound for the whole table)
BLOCK_THRESHOLD = 6000
#: branch-and-bound nodes over all MILP solves of one run (the work limit)
DEFAULT_WORK_LIMIT = 200
#: work charged for one MILP solve at least (its root node: presolve, cuts, heuristics)
MIN_NODES_PER_SOLVE = 10
#: relative MIP gap at which a block counts as solved (proven optimal)
MIP_GAP = 1e-4
#: the stated MIP gap tolerance: a pattern within it of the lower bound is reported as such
MIP_GAP_TOLERANCE = 0.02
#: cut rounds on the LP relaxation per block (a count: deterministic)
LP_ROUNDS = 12
#: every this many LP rounds (and after the last) the rounded LP point is repaired
REPAIR_EVERY = 6
#: repairs of rounded LP points in one run (each: a heuristic run and its pruning)
MAX_REPAIRS = 4
#: how much the LP point lowers a cell's cost when a repair chooses partners
REPAIR_GUIDE = 0.9
#: the MILP runs only when the LP bound is this close to the incumbent: its root node alone
#: costs many LP rounds, and branching cannot close a wider gap within the node budget
MILP_WINDOW = 0.10
#: attacker LPs of the pruning after each repair of a rounded LP point
REPAIR_PRUNE_LPS = 3000
#: seconds of work between two progress calls (how often, never what is computed)
PROGRESS_EVERY = 0.5


def optimal(system: AuditSystem, primary: np.ndarray, required: np.ndarray, allowed: np.ndarray,
            cost: np.ndarray, time_limit: float | None = None,
            tables: list[CellTable] | None = None, cell_maps: list[np.ndarray] | None = None,
            max_iter: int = LP_ROUNDS, skip: np.ndarray | None = None,
            work_limit: int | None = None, shape: tuple[int, ...] | None = None,
            hierarchies: tuple | None = None, progress: Callable[..., None] | None = None,
            start: tuple[np.ndarray, dict] | None = None) -> tuple[np.ndarray, dict]:
    """A protected pattern of least suppression cost, within ``work_limit`` B&B nodes.

    ``primary``: cells suppressed whatever happens (see the heuristic); ``skip``: suppressed
    cells that need no partner in a relation (an earlier release's, see the heuristic);
    ``time_limit``: see the module docstring (None: no clock at all); ``progress``: called as
    ``progress("optimising", blocks=..., blocks_done=..., primaries_left=0)`` after each LP or
    MILP round (the incumbent always protects every primary); ``start``: the heuristic's
    ``(pattern, statistics)`` when the caller has it already. ``details['optimality']`` holds
    the relative gap; absolute costs and bounds are returned only under ``_costs``."""
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + time_limit
    nodes_total = DEFAULT_WORK_LIMIT if work_limit is None else int(work_limit)
    if start is None:
        s_h, hstats = heuristic(system, primary, required, allowed, cost, skip=skip,
                                shape=shape, hierarchies=hierarchies, progress=progress)
    else:
        s_h, hstats = start[0].copy(), dict(start[1])
    hstats.pop("_certificates", None)
    s = s_h.copy()
    start_cost = float(cost[s].sum())
    idx = RelationIndex(system.relations)
    blocks = _blocks(len(system.values), tables, cell_maps)
    pool: list[tuple[np.ndarray, np.ndarray, float]] = []
    details: dict = {"heuristic_start": {"cells": int(s.sum()), "pruned": hstats.get("pruned", 0)},
                     "blocks": len(blocks), "blocks_done": 0, "blocks_improved": 0,
                     "iterations": 0, "lp_rounds": 0, "repairs": 0, "cuts": 0, "nodes": 0,
                     "work_limit": nodes_total, "milp_seconds": 0.0,
                     "proven_optimal_blocks": 0, "mip_gap_tolerance": MIP_GAP_TOLERANCE}
    _seed_cuts(system, s, primary, required, pool)

    def repair(trial: np.ndarray, in_block: np.ndarray, weight: np.ndarray | None = None
               ) -> np.ndarray:
        """The heuristic's repair of a pattern, adding block cells only, then pruned.

        With ``weight`` (the LP point) partners are chosen at costs lowered where the LP
        suppresses (``cost * (1 - 0.9 z)``); the pruning uses the true costs."""
        fixed = primary | (trial & ~in_block)
        guided = cost if weight is None else cost * (1.0 - REPAIR_GUIDE * weight)
        try:
            out, _ = heuristic(system, fixed, required, allowed & in_block, guided,
                               start=trial, variants=False, shape=shape,
                               hierarchies=hierarchies, skip=skip, prune_seconds=0.0)
        except ProtectionImpossible:
            return s.copy()  # no protected pattern from this start: keep the incumbent
        prune(system, idx, out, fixed, required, cost, REPAIR_PRUNE_LPS)
        return out

    last = [0.0]

    def tick() -> None:
        if progress is None:
            return
        now = time.perf_counter()  # only how often someone hears of it, never a decision
        if now - last[0] >= PROGRESS_EVERY:
            last[0] = now
            progress("optimising", blocks=len(blocks), blocks_done=details["blocks_done"],
                     primaries_left=0)

    worst_gap = 0.0
    lb_total = 0.0
    sec_cost = 0.0
    timed_out = False
    for bi, b in enumerate(blocks):
        # share the nodes left between the blocks still to do (a count: deterministic)
        left = nodes_total - details["nodes"]
        budget = max(1, int(left / (len(blocks) - bi) * (1.5 if bi < len(blocks) - 1 else 1)))
        # LP rounds too are shared: at most twice one block's rounds over all the blocks
        rounds = min(max_iter, max(1, (2 * max_iter - details["lp_rounds"]) // (len(blocks) - bi)))
        before = float(cost[s].sum())
        res = _optimise_block(system, idx, s, b, primary, required, allowed, cost, pool,
                              budget, deadline, details, rounds, skip=skip, repair=repair,
                              tick=tick)
        if res is None:  # the outer time limit struck
            timed_out = True
            break
        proven, lb, block_cost = res
        details["blocks_done"] += 1
        details["blocks_improved"] += int(float(cost[s].sum()) < before - 1e-9)
        details["proven_optimal_blocks"] += int(proven)
        lb_total += lb
        sec_cost += block_cost
        if block_cost > 0:
            worst_gap = max(worst_gap, (block_cost - lb) / block_cost)
    details["cuts"] = len(pool)
    details["seconds"] = round(time.perf_counter() - t0, 3)  # reported only, never decides
    details["milp_seconds"] = round(details["milp_seconds"], 3)
    if timed_out:
        s = s_h
        details["fallback"] = (
            f"optimal: the time limit of {time_limit:g} s struck; the pattern is the heuristic "
            "method's (reproducible with secondary: heuristic)")
        details["optimality"] = None
        return s, details
    one = len(blocks) == 1
    gap = max(0.0, (sec_cost - lb_total) / sec_cost) if one and sec_cost > 0 else worst_gap
    if one and sec_cost <= 0:
        gap = 0.0
    details["optimality"] = {
        "gap": round(gap, 6), "lower_bound_ratio": round(1.0 - gap, 6),
        "proven_optimal": details["proven_optimal_blocks"] == len(blocks),
        "scope": "table" if one else "blocks", "nodes": details["nodes"],
        "iterations": details["iterations"],
        "better_than_heuristic": float(cost[s].sum()) < start_cost - 1e-9,
        "within_tolerance": gap <= MIP_GAP_TOLERANCE + 1e-12,
        "mip_gap_tolerance": MIP_GAP_TOLERANCE, "blocks": len(blocks),
        "blocks_improved": details["blocks_improved"]}
    # absolute figures (sums of raw values): for the caller's own use, never for a report
    fixed = float(cost[s].sum()) - sec_cost if one else None
    details["_costs"] = {"heuristic": start_cost, "final": float(cost[s].sum()),
                         "lower_bound": (fixed + lb_total) if one else None}
    return s, details


def _blocks(n: int, tables: list[CellTable] | None, cell_maps: list[np.ndarray] | None
            ) -> list[np.ndarray]:
    """Cell blocks: the whole problem if small, else one block per top-level code."""
    if n <= BLOCK_THRESHOLD or not tables or cell_maps is None:
        return [np.arange(n)]
    t, m = tables[0], cell_maps[0]
    hs = t.hierarchies
    axis = max(range(len(hs)), key=lambda a: (hs[a].levels > 1, len(hs[a].children.get("_T", ()))))
    h = hs[axis]
    if h.levels < 2:
        return [np.arange(n)]
    top = {}
    for c in h.codes:
        x = c
        while x in h.parent and h.parent[x] != "_T":
            x = h.parent[x]
        top[c] = x
    codes = np.array([top[c] for c in h.codes], dtype=object)[t.code_arrays()[axis]]
    label = np.full(n, "_rest", dtype=object)
    label[m] = codes
    out = []
    for key in list(h.children["_T"]) + ["_T", "_rest"]:
        sel = np.flatnonzero(label == key)
        if len(sel):
            out.append(sel)
    return out


def _cut_from(att: Attacker, p: int, duals: dict) -> dict[int, float]:
    g: dict[int, float] = {}
    for sense, key in ((+1, "up"), (-1, "down")):
        for i, gi in att.cut(p, sense, duals[key], duals.get(f"rows_{key}", duals["rows"])).items():
            g[i] = g.get(i, 0.0) + gi
    return g


def _add_cut(pool: list, g: dict[int, float], rhs: float) -> None:
    if not g:
        return
    idx = np.fromiter(g.keys(), dtype=np.int64, count=len(g))
    val = np.fromiter(g.values(), dtype=np.float64, count=len(g))
    val = np.minimum(val, rhs)  # a coefficient above the right-hand side can be capped
    pool.append((idx, val, float(rhs)))


def _seed_cuts(system: AuditSystem, s: np.ndarray, primary: np.ndarray, required: np.ndarray,
               pool: list) -> None:
    att = Attacker(system, s)
    for p in np.flatnonzero(primary & (required > 0)):
        _, _, duals = att.bounds(int(p), float(required[p]))
        _add_cut(pool, _cut_from(att, int(p), duals), float(required[p]))


class _Relaxation:
    """The LP relaxation of a block's master problem, kept in one HiGHS model: cuts are added
    as rows and each solve warm-starts (dual simplex) from the previous basis."""

    def __init__(self, c: np.ndarray, a: sp.csr_matrix, lbs: np.ndarray):
        self.nv = len(c)
        h = _new_highs()
        for k, v in (("output_flag", False), ("threads", 1), ("random_seed", 0),
                     ("presolve", "off")):
            h.setOptionValue(k, v)
        lp = highspy.HighsLp()
        lp.num_col_ = self.nv
        lp.num_row_ = 0
        lp.col_cost_ = c.astype(np.float64)
        lp.col_lower_ = np.zeros(self.nv)
        lp.col_upper_ = np.ones(self.nv)
        h.passModel(lp)
        self.h = h
        self.add(a, lbs)

    def add(self, a: sp.csr_matrix | None, lbs: np.ndarray) -> None:
        if a is None or a.shape[0] == 0:
            return
        a = a.tocsr()
        self.h.addRows(a.shape[0], lbs.astype(np.float64), np.full(a.shape[0], highspy.kHighsInf),
                       a.nnz, a.indptr[:-1].astype(np.int32), a.indices.astype(np.int32),
                       a.data.astype(np.float64))

    def solve(self) -> tuple[np.ndarray | None, float]:
        h = self.h
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None, 0.0
        z = np.clip(np.asarray(h.getSolution().col_value, dtype=np.float64), 0.0, 1.0)
        return z, float(h.getInfo().objective_function_value)


def _fs_cut(system: AuditSystem, cell: int, sense: int, duals: np.ndarray | None,
            rows: np.ndarray) -> dict[int, float]:
    """The Fischetti–Salazar cut of one attacker LP, with the true values and bounds (also for
    duals of an LP whose bounds were scaled by a fractional pattern)."""
    if duals is None:
        return {}
    d = -(system.relations[rows].T @ duals)
    d[cell] += sense
    nz = np.flatnonzero(np.abs(d) > 1e-9)
    a = system.values[nz]
    g = np.where(d[nz] > 0, d[nz] * (system.ub[nz] - a), -d[nz] * a)
    keep = g > 1e-9
    return {int(i): float(x) for i, x in zip(nz[keep], g[keep], strict=True)}


def _separate(system: AuditSystem, pattern: np.ndarray, weight: np.ndarray | None,
              targets: np.ndarray, required: np.ndarray, pool: list, limit: int | None = None
              ) -> tuple[int, list[int]]:
    """Cuts for the primaries the attacker narrows below their level under ``pattern``.

    ``weight`` (a fractional pattern, or None for an integer one) scales each cell's room to
    move (``-a z <= y <= (ub - a) z``): the LP's duals then give the cut most violated by that
    point. Only violated primaries are separated. Returns (cuts added, primaries violated)."""
    if weight is None:
        att_sys = system
    else:
        w = np.where(pattern, np.maximum(weight, 0.0), 0.0)
        att_sys = AuditSystem(values=system.values * w, relations=system.relations,
                              ub=system.ub * w)
    att = Attacker(att_sys, pattern)
    added = 0
    violated = []
    for p in targets:
        p = int(p)
        if att.comp_of[p] < 0:
            continue
        lo, hi, duals = att.bounds(p, float(required[p]))
        if hi - lo >= max(required[p], TOL) - TOL:
            continue
        violated.append(p)
        g: dict[int, float] = {}
        for sense, key in ((+1, "up"), (-1, "down")):
            rows = duals.get(f"rows_{key}", duals["rows"])
            if rows is None:
                rows = att.row_ids[att.comp_rows[att.comp_of[p]]]
            for i, gi in _fs_cut(system, p, sense, duals[key], rows).items():
                g[i] = g.get(i, 0.0) + gi
        before = len(pool)
        _add_cut(pool, g, float(required[p]))
        added += len(pool) - before
        if limit is not None and added >= limit:
            break
    return added, violated


def _optimise_block(system: AuditSystem, idx: RelationIndex, s: np.ndarray, block: np.ndarray,
                    primary: np.ndarray, required: np.ndarray, allowed: np.ndarray,
                    cost: np.ndarray, pool: list, budget: int, deadline: float | None,
                    details: dict, max_iter: int, skip: np.ndarray | None = None,
                    repair: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                    tick: Callable[[], None] | None = None
                    ) -> tuple[bool, float, float] | None:
    """Optimise the pattern on one block (in place) within ``max_iter`` cut rounds on the LP
    relaxation and ``budget`` B&B nodes of the MILP.

    1. Cut loop on the LP relaxation (warm-started): each round separates, for the primaries
       violated at the LP point, the cuts of the attacker LP with the cells' room scaled by the
       point, and at the point rounded to a pattern the cuts of the plain attacker LP; the
       rounded pattern, repaired by the heuristic and pruned (``repair``), is a candidate
       incumbent. The LP value is a lower bound.
    2. MILP on every cut found (HiGHS, warm-started from the incumbent, node limit): its
       solution is audited (cuts for the violated primaries, repair as above) and its dual
       bound is a lower bound.

    Returns (proven within the MIP gap tolerance, lower bound of the block's variable cost, its
    cost in the final pattern), or None when the outer ``deadline`` struck."""
    var_cells = block[allowed[block] & ~primary[block]]
    if len(var_cells) == 0:
        return True, 0.0, 0.0
    nv = len(var_cells)
    c = cost[var_cells]
    pos = np.full(len(s), -1, dtype=np.int64)
    pos[var_cells] = np.arange(nv)
    rel_a, rel_lb = _relation_rows(idx, s, var_cells, pos, primary, skip)
    fixed_on = s.copy()
    fixed_on[var_cells] = False  # suppressed cells outside the block's variables
    all_targets = np.flatnonzero(primary & (required > 0))
    in_block = np.zeros(len(s), dtype=bool)
    in_block[var_cells] = True
    # the primaries the block's cells can reach first: those of the block and those sharing a
    # relation with a block cell (the others' cuts rarely involve it; a relaxation with fewer
    # cuts still bounds from below, and a pattern is accepted only after all are audited)
    near = in_block.copy()
    near[block] = True
    rows = np.unique(idx.cols[:, var_cells].tocoo().row)
    near[np.unique(idx.rows[rows].indices)] = True
    targets = all_targets[near[all_targets]]
    relax = _Relaxation(c, rel_a, rel_lb)
    used_pool = 0

    def sync() -> None:
        nonlocal used_pool
        a, lbs = _cut_rows(pool[used_pool:], fixed_on, pos, nv)
        relax.add(a, lbs)
        used_pool = len(pool)

    def block_cost(pattern: np.ndarray) -> float:
        return float(c[pattern[var_cells]].sum())

    def offer(z: np.ndarray, violated: list[int], weight: np.ndarray | None = None) -> None:
        """A pattern of the block's variables: the new incumbent if protected and cheaper,
        else repaired by the heuristic first."""
        trial = fixed_on.copy()
        trial[var_cells] = z
        if not violated and len(targets) < len(all_targets):
            _, violated = _separate(system, trial, None, all_targets, required, pool)
        if violated and repair is not None:
            if repairs[0] >= MAX_REPAIRS or details.get("repairs", 0) >= MAX_REPAIRS:
                return  # a repair is a heuristic run: at most MAX_REPAIRS in the whole run
            repairs[0] += 1
            details["repairs"] = details.get("repairs", 0) + 1
            trial = repair(trial, in_block, weight)
        elif violated:
            return
        if block_cost(trial) < block_cost(s) - 1e-9:
            s[var_cells] = trial[var_cells]
            details["improved"] = details.get("improved", 0) + 1

    lb = 0.0
    repairs = [0]
    sync()
    for rnd in range(max_iter):
        if deadline is not None and time.perf_counter() > deadline:
            return None
        z, obj = relax.solve()
        details["lp_rounds"] = details.get("lp_rounds", 0) + 1
        if tick is not None:
            tick()
        if z is None:
            break
        lb = max(lb, obj)
        if lb >= block_cost(s) * (1 - MIP_GAP) - 1e-9:
            break
        weight = fixed_on.astype(np.float64)
        weight[var_cells] = z
        n_frac, _ = _separate(system, weight > 1e-6, weight, targets, required, pool)
        n_int = 0
        repair_round = (rnd + 1) % REPAIR_EVERY == 0 or rnd == max_iter - 1
        if n_frac == 0 or repair_round:
            # the LP point rounded: its own cuts (they move the LP point when the scaled ones
            # find nothing), and a candidate incumbent — as it is when protected, else repaired
            # by the heuristic (partners chosen where the LP suppresses) and pruned
            zr = z > 0.5
            trial = fixed_on | _scatter(len(s), var_cells, zr)
            if block_cost(trial) < block_cost(s) - 1e-9:
                n_int, violated = _separate(system, trial, None, targets, required, pool)
                if not violated or repair_round or n_int == 0:
                    offer(zr, violated, weight if REPAIR_GUIDE > 0 else None)
        sync()
        if n_frac + n_int == 0:
            break  # no violated cut: the relaxation is as tight as these cuts make it
    # the MILP on every cut found, from the incumbent, within the node budget
    used = 0
    proven = False
    a0 = rel_a
    if block_cost(s) > 0 and (block_cost(s) - lb) / block_cost(s) > MILP_WINDOW:
        used = budget  # the relaxation is too far from the incumbent for the MILP to help
        details["milp_skipped"] = details.get("milp_skipped", 0) + 1
    while used < budget:
        if deadline is not None and time.perf_counter() > deadline:
            return None
        cut_a, cut_lb = _cut_rows(pool, fixed_on, pos, nv)
        a = sp.vstack([a0, cut_a]).tocsr() if cut_a is not None else a0
        lbs = np.concatenate([rel_lb, cut_lb]) if cut_a is not None else rel_lb
        t1 = time.perf_counter()
        z, status, bound, nodes = _milp(c, a, lbs, s[var_cells], budget - used, deadline)
        details["milp_seconds"] += time.perf_counter() - t1
        details["iterations"] += 1
        details["nodes"] += nodes
        used += max(nodes, MIN_NODES_PER_SOLVE)
        if tick is not None:
            tick()
        if status == "time":
            return None
        lb = max(lb, bound)
        if z is None:
            break
        if block_cost(fixed_on | _scatter(len(s), var_cells, z)) >= block_cost(s) - 1e-9:
            # the incumbent is the best of the relaxation (within the MIP gap)
            proven = status == "optimal"
            break
        trial = fixed_on.copy()
        trial[var_cells] = z
        _, violated = _separate(system, trial, None, all_targets, required, pool)
        offer(z, violated)
        if not violated:
            proven = status == "optimal"
            break
    cost_s = block_cost(s)
    if proven:
        lb = max(lb, cost_s * (1 - MIP_GAP))
    proven = proven or lb >= cost_s * (1 - MIP_GAP) - 1e-9
    return proven, min(lb, cost_s), cost_s


def _scatter(n: int, cells: np.ndarray, z: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[cells] = z
    return out


def _milp(c: np.ndarray, a: sp.csr_matrix, lbs: np.ndarray, start: np.ndarray, max_nodes: int,
          deadline: float | None) -> tuple[np.ndarray | None, str, float, int]:
    """min c z s.t. a z >= lbs, z binary, from the incumbent ``start`` (HiGHS, deterministic:
    one thread, fixed seed, a node limit). Returns (z or None, status, dual bound, nodes)."""
    nv = len(c)
    h = _new_highs()
    for k, v in (("output_flag", False), ("threads", 1), ("random_seed", 0),
                 ("mip_rel_gap", MIP_GAP), ("mip_max_nodes", int(max_nodes)),
                 ("presolve", "on")):
        h.setOptionValue(k, v)
    if deadline is not None:
        h.setOptionValue("time_limit", max(deadline - time.perf_counter(), 0.01))
    lp = highspy.HighsLp()
    lp.num_col_ = nv
    lp.num_row_ = a.shape[0]
    lp.col_cost_ = c.astype(np.float64)
    lp.col_lower_ = np.zeros(nv)
    lp.col_upper_ = np.ones(nv)
    lp.row_lower_ = lbs.astype(np.float64)
    lp.row_upper_ = np.full(a.shape[0], highspy.kHighsInf)
    m = a.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = m.indptr.astype(np.int32)
    lp.a_matrix_.index_ = m.indices.astype(np.int32)
    lp.a_matrix_.value_ = m.data.astype(np.float64)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * nv
    h.passModel(lp)
    sol = highspy.HighsSolution()
    sol.col_value = start.astype(np.float64).tolist()
    h.setSolution(sol)
    h.run()
    st = h.getModelStatus()
    info = h.getInfo()
    nodes = int(info.mip_node_count)
    bound = float(info.mip_dual_bound)
    if not np.isfinite(bound):
        bound = 0.0
    if st == highspy.HighsModelStatus.kTimeLimit:
        return None, "time", bound, nodes
    status = "optimal" if st == highspy.HighsModelStatus.kOptimal else "limit"
    if info.primal_solution_status != 2:  # no feasible solution known
        return None, status, bound, nodes
    x = np.asarray(h.getSolution().col_value, dtype=np.float64)
    return x > 0.5, status, bound, nodes


def _relation_rows(idx: RelationIndex, s: np.ndarray, var_cells: np.ndarray, pos: np.ndarray,
                   primary: np.ndarray, skip: np.ndarray | None = None
                   ) -> tuple[sp.csr_matrix, np.ndarray]:
    """``sum_{k != j} z_k - z_j >= 0`` (variable j) and ``sum_{k != p} z_k >= 1`` (primary p),
    for the relations touching the block's variables; fixed cells move to the right-hand side."""
    rows = np.unique(idx.cols[:, var_cells].tocoo().row)
    nv = len(var_cells)
    r_i, r_j, r_v, lbs = [], [], [], []
    k = 0
    for r in rows:
        cells = idx.rows.indices[idx.rows.indptr[r]:idx.rows.indptr[r + 1]]
        vpos = pos[cells]
        is_var = vpos >= 0
        fixed_on = int(np.count_nonzero(s[cells] & ~is_var))
        vars_here = vpos[is_var]
        # anchors: each variable cell, and each fixed suppressed cell of the relation
        for j, vj in zip(cells, vpos, strict=True):
            if vj >= 0:
                others = vars_here[vars_here != vj]
                r_i += [k] * (len(others) + 1)
                r_j += list(others) + [vj]
                r_v += [1.0] * len(others) + [-1.0]
                lbs.append(-float(fixed_on))
                k += 1
            elif s[j] and not (skip is not None and skip[j]):
                # fixed suppressed cell: needs another suppressed cell in the relation
                need = 1 - (fixed_on - 1)
                if need > 0 and len(vars_here):
                    r_i += [k] * len(vars_here)
                    r_j += list(vars_here)
                    r_v += [1.0] * len(vars_here)
                    lbs.append(float(need))
                    k += 1
    a = sp.csr_matrix((r_v, (r_i, r_j)), shape=(k, nv))
    return a, np.asarray(lbs, dtype=np.float64)


def _cut_rows(pool: list, s: np.ndarray, pos: np.ndarray, nv: int
              ) -> tuple[sp.csr_matrix | None, np.ndarray]:
    r_i, r_j, r_v, lbs = [], [], [], []
    k = 0
    for cidx, cval, rhs in pool:
        p = pos[cidx]
        inb = p >= 0
        if not inb.any():
            continue
        fixed = float(cval[~inb][s[cidx[~inb]]].sum())
        need = rhs - fixed
        if need <= TOL:
            continue
        r_i.append(np.full(int(inb.sum()), k))
        r_j.append(p[inb])
        r_v.append(np.minimum(cval[inb], need))
        lbs.append(need)
        k += 1
    if k == 0:
        return None, np.zeros(0)
    a = sp.csr_matrix((np.concatenate(r_v), (np.concatenate(r_i), np.concatenate(r_j))),
                      shape=(k, nv))
    return a, np.asarray(lbs)
