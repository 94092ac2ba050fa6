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

The run starts from the heuristic pattern (so it is never worse and an interrupted run still
returns a protected pattern). Large tables are decomposed like tau-Argus' modular method: the
cells under each top-level code of a hierarchical dimension form a block, optimised one block at
a time with the rest of the pattern fixed (cuts stay valid because they are built on the whole
table's LPs). When ``time_limit`` runs out, the blocks not yet optimised keep the heuristic
pattern and the report says so (``fallback``).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from .audit import TOL, Attacker, AuditSystem
from .secondary_heuristic import RelationIndex, heuristic
from .table import CellTable

BLOCK_THRESHOLD = 3000


def optimal(system: AuditSystem, primary: np.ndarray, required: np.ndarray, allowed: np.ndarray,
            cost: np.ndarray, time_limit: float = 20.0, tables: list[CellTable] | None = None,
            cell_maps: list[np.ndarray] | None = None, max_iter: int = 60
            ) -> tuple[np.ndarray, dict]:
    """A protected pattern minimising the suppression cost (within ``time_limit`` seconds)."""
    t0 = time.perf_counter()
    deadline = t0 + time_limit
    s, hstats = heuristic(system, primary, required, allowed, cost, prune_seconds=0.0)
    hstats.pop("_certificates", None)
    start_cost = float(cost[s].sum())
    idx = RelationIndex(system.relations)
    blocks = _blocks(len(system.values), tables, cell_maps)
    pool: list[tuple[np.ndarray, np.ndarray, float]] = []
    details: dict = {"heuristic_start": {"cells": int(s.sum()), "cost": round(start_cost, 3)},
                     "blocks": len(blocks), "blocks_done": 0, "iterations": 0, "cuts": 0,
                     "milp_seconds": 0.0, "proven_optimal_blocks": 0}
    _seed_cuts(system, s, primary, required, pool)
    timed_out = False
    gap = 1e-6 if len(blocks) == 1 else 1e-3
    for bi, b in enumerate(blocks):
        now = time.perf_counter()
        if now > deadline:
            timed_out = True
            break
        # share the remaining time between the blocks still to do
        block_deadline = min(deadline, now + (deadline - now) / (len(blocks) - bi) * 1.5)
        done, optimal_block = _optimise_block(system, idx, s, b, primary, required, allowed, cost,
                                              pool, block_deadline, details, max_iter, gap)
        details["blocks_done"] += int(done)
        details["proven_optimal_blocks"] += int(optimal_block)
        if not done:
            timed_out = True
    details["cuts"] = len(pool)
    details["cost"] = round(float(cost[s].sum()), 3)
    details["seconds"] = round(time.perf_counter() - t0, 3)
    details["milp_seconds"] = round(details["milp_seconds"], 3)
    if timed_out:
        details["fallback"] = (
            f"optimal: the time limit of {time_limit:g} s cut the search short; "
            f"{details['blocks_done']} of {len(blocks)} block(s) were optimised, the others keep "
            "the heuristic pattern")
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
                    cost: np.ndarray, pool: list, deadline: float, details: dict,
                    max_iter: int, gap: float = 1e-6) -> tuple[bool, bool]:
    """Optimise the pattern on one block (in place). Returns (finished, proven optimal)."""
    var_cells = block[allowed[block] & ~primary[block]]
    if len(var_cells) == 0:
        return True, True
    nv = len(var_cells)
    pos = np.full(len(s), -1, dtype=np.int64)
    pos[var_cells] = np.arange(nv)
    rel_a, rel_lb = _relation_rows(idx, s, var_cells, pos, primary)
    targets = np.flatnonzero(primary & (required > 0))
    for _ in range(max_iter):
        remaining = deadline - time.perf_counter()
        if remaining <= 0.05:
            return False, False
        cut_a, cut_lb = _cut_rows(pool, s, pos, nv)
        a = sp.vstack([rel_a, cut_a]).tocsr() if cut_a is not None else rel_a
        lb = np.concatenate([rel_lb, cut_lb]) if cut_a is not None else rel_lb
        t1 = time.perf_counter()
        res = milp(c=cost[var_cells], integrality=np.ones(nv), bounds=Bounds(0, 1),
                   constraints=[LinearConstraint(a, lb, np.inf)] if a.shape[0] else [],
                   options={"time_limit": max(remaining, 0.05), "disp": False,
                            "mip_rel_gap": gap})
        details["milp_seconds"] += time.perf_counter() - t1
        details["iterations"] += 1
        if res.x is None:
            return False, False
        z = res.x > 0.5
        trial = s.copy()
        trial[var_cells] = z
        if float(cost[trial].sum()) >= float(cost[s].sum()) - 1e-9:
            return True, res.status == 0  # the current pattern is already optimal on this block
        att = Attacker(system, trial)
        touched = set(att.comp_of[var_cells[z]].tolist()) | set(att.comp_of[block[primary[block]]].tolist())
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
            s[var_cells] = z
            return True, res.status == 0
    return False, False


def _relation_rows(idx: RelationIndex, s: np.ndarray, var_cells: np.ndarray, pos: np.ndarray,
                   primary: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
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
            elif s[j]:
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
