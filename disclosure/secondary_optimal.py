"""Optimal secondary suppression: Fischetti–Salazar MILP with cuts from the attacker LP (HiGHS).

Binary ``z_i`` (1 = suppress) for every cell that may be suppressed, primaries fixed to 1, cells
that must be published fixed to 0; minimise ``sum cost_i z_i``. Constraints:

* relation constraints: in every relation, a suppressed cell needs another suppressed cell
  (``z_j <= sum_{k != j} z_k``; for a primary ``sum_{k != p} z_k >= 1``) — without it the cell is
  exactly computable, so an optimal pattern satisfies them anyway;
* protection cuts, generated lazily: the master pattern is audited with the attacker LPs; for a
  primary ``p`` whose interval is narrower than its level ``L`` the duals of its two LPs give
  ``sum_i (g_up_i + g_down_i) z_i >= L`` (valid for every pattern, see :mod:`disclosure.audit`),
  and the master is solved again, until the master's pattern passes the audit.

The run starts from the heuristic method's pattern (the same pattern ``secondary: heuristic``
gives), handed to HiGHS as the incumbent, and keeps it unless a cheaper protected pattern is
found: the result is never worse than the heuristic's. Large tables are decomposed like
tau-Argus' modular method: the cells under each top-level code of a hierarchical dimension form
a block, optimised one block at a time with the rest of the pattern fixed (cuts stay valid
because they are built on the whole table's LPs).

Deterministic: the search is bounded by work, not time — ``work_limit`` branch-and-bound nodes
over all MILP solves (HiGHS ``mip_max_nodes``, single-threaded, fixed seed) and ``max_iter`` cut
rounds per block — so the same input gives the same pattern under any load. ``time_limit``
(seconds, default none) is only an outer safety stop; when it strikes, the result is the
heuristic method's pattern for the whole table (itself deterministic), and ``fallback`` says so.

The lower bound is the dual bound of the last MILP (a relaxation: only some cuts); the gap
``(cost - bound) / cost`` is over the secondary cells' cost and is a bound for the whole table
when it is one block (``scope: table``), else per block with the rest fixed (``scope: blocks``).
"""

from __future__ import annotations

import time

import highspy
import numpy as np
import scipy.sparse as sp

from .audit import TOL, Attacker, AuditSystem, _new_highs
from .secondary_heuristic import RelationIndex, heuristic
from .table import CellTable

#: tables up to this many cells are one block (a lower bound for the whole table)
BLOCK_THRESHOLD = 6000
#: branch-and-bound nodes over all MILP solves of one run (the work limit)
DEFAULT_WORK_LIMIT = 200
#: work charged for one MILP solve at least (its root node: presolve, cuts, heuristics)
MIN_NODES_PER_SOLVE = 10
#: relative MIP gap at which a block counts as solved
MIP_GAP = 1e-4


def optimal(system: AuditSystem, primary: np.ndarray, required: np.ndarray, allowed: np.ndarray,
            cost: np.ndarray, time_limit: float | None = None,
            tables: list[CellTable] | None = None, cell_maps: list[np.ndarray] | None = None,
            max_iter: int = 60, skip: np.ndarray | None = None, work_limit: int | None = None,
            shape: tuple[int, ...] | None = None, hierarchies: tuple | None = None
            ) -> tuple[np.ndarray, dict]:
    """A protected pattern of least suppression cost, within ``work_limit`` B&B nodes.

    ``primary``: cells suppressed whatever happens (see the heuristic); ``skip``: suppressed
    cells that need no partner in a relation (an earlier release's, see the heuristic);
    ``time_limit``: see the module docstring (None: no clock at all). ``details['optimality']``
    holds the relative gap; absolute costs and bounds are returned only under ``_costs``."""
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + time_limit
    nodes_total = DEFAULT_WORK_LIMIT if work_limit is None else int(work_limit)
    s_h, hstats = heuristic(system, primary, required, allowed, cost, skip=skip, shape=shape,
                            hierarchies=hierarchies)
    hstats.pop("_certificates", None)
    s = s_h.copy()
    start_cost = float(cost[s].sum())
    idx = RelationIndex(system.relations)
    blocks = _blocks(len(system.values), tables, cell_maps)
    pool: list[tuple[np.ndarray, np.ndarray, float]] = []
    details: dict = {"heuristic_start": {"cells": int(s.sum()), "pruned": hstats.get("pruned", 0)},
                     "blocks": len(blocks), "blocks_done": 0, "iterations": 0, "cuts": 0,
                     "nodes": 0, "work_limit": nodes_total, "milp_seconds": 0.0,
                     "proven_optimal_blocks": 0}
    _seed_cuts(system, s, primary, required, pool)
    worst_gap = 0.0
    lb_total = 0.0
    sec_cost = 0.0
    timed_out = False
    for bi, b in enumerate(blocks):
        # share the nodes left between the blocks still to do (a count: deterministic)
        left = nodes_total - details["nodes"]
        budget = max(1, int(left / (len(blocks) - bi) * (1.5 if bi < len(blocks) - 1 else 1)))
        res = _optimise_block(system, idx, s, b, primary, required, allowed, cost, pool,
                              budget, deadline, details, max_iter, skip=skip)
        if res is None:  # the outer time limit struck
            timed_out = True
            break
        proven, lb, block_cost = res
        details["blocks_done"] += 1
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
        "better_than_heuristic": float(cost[s].sum()) < start_cost - 1e-9}
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


def _optimise_block(system: AuditSystem, idx: RelationIndex, s: np.ndarray, block: np.ndarray,
                    primary: np.ndarray, required: np.ndarray, allowed: np.ndarray,
                    cost: np.ndarray, pool: list, budget: int, deadline: float | None,
                    details: dict, max_iter: int, skip: np.ndarray | None = None
                    ) -> tuple[bool, float, float] | None:
    """Optimise the pattern on one block (in place) within ``budget`` B&B nodes.

    Returns (proven optimal, lower bound of the block's variable cost, its cost in the final
    pattern), or None when the outer ``deadline`` struck (``s`` then unspecified)."""
    var_cells = block[allowed[block] & ~primary[block]]
    if len(var_cells) == 0:
        return True, 0.0, 0.0
    nv = len(var_cells)
    c = cost[var_cells]
    pos = np.full(len(s), -1, dtype=np.int64)
    pos[var_cells] = np.arange(nv)
    rel_a, rel_lb = _relation_rows(idx, s, var_cells, pos, primary, skip)
    targets = np.flatnonzero(primary & (required > 0))
    lb = 0.0
    proven = False
    used = 0
    for _ in range(max_iter):
        if budget - used <= 0:
            break
        if deadline is not None and time.perf_counter() > deadline:
            return None
        cut_a, cut_lb = _cut_rows(pool, s, pos, nv)
        a = sp.vstack([rel_a, cut_a]).tocsr() if cut_a is not None else rel_a
        lbs = np.concatenate([rel_lb, cut_lb]) if cut_a is not None else rel_lb
        t1 = time.perf_counter()
        z, status, bound, nodes = _milp(c, a, lbs, s[var_cells], budget - used, deadline)
        details["milp_seconds"] += time.perf_counter() - t1
        details["iterations"] += 1
        details["nodes"] += nodes
        used += max(nodes, MIN_NODES_PER_SOLVE)
        if status == "time":
            return None
        lb = max(lb, bound)
        current = float(c[s[var_cells]].sum())
        if z is None:
            break
        if float(c[z].sum()) >= current - 1e-9:
            # the current pattern is the best of the relaxation (up to the MIP gap)
            proven = status == "optimal"
            break
        trial = s.copy()
        trial[var_cells] = z
        att = Attacker(system, trial)
        touched = set(att.comp_of[var_cells[z]].tolist()) | set(
            att.comp_of[block[primary[block]]].tolist())
        touched.discard(-1)
        new = 0
        for p in targets:
            p = int(p)
            if att.comp_of[p] not in touched:
                continue
            lo, hi, duals = att.bounds(p, float(required[p]))
            if hi - lo < max(required[p], TOL) - TOL:
                _add_cut(pool, _cut_from(att, p, duals), float(required[p]))
                new += 1
        if new == 0:
            s[var_cells] = z  # protected and cheaper: the new incumbent
            proven = status == "optimal"
            break
    block_cost = float(c[s[var_cells]].sum())
    if proven:
        lb = max(lb, block_cost * (1 - MIP_GAP))
    return proven, min(lb, block_cost), block_cost


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
