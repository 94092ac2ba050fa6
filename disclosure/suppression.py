"""Cell suppression: primary rules, secondary suppression and the attacker audit.

``protect_suppression(tables)`` protects one table or several linked tables (cells shared by
tables are suppressed in all or none, see :mod:`disclosure.linked`):

1. primary suppression (:mod:`disclosure.primary`);
2. secondary suppression by the spec's method: ``heuristic``
   (:mod:`disclosure.secondary_heuristic`), ``optimal`` (:mod:`disclosure.secondary_optimal`,
   falling back to the heuristic pattern when its time limit runs out, said in the report) or
   ``none``;
3. the attacker audit (:mod:`disclosure.audit`) on the final pattern over the union of all
   relations. A pattern that fails is repaired by further suppression; one that still fails is
   never returned (``ProtectionImpossible``).

Guarantee of a returned pattern: every primary cell's attacker interval (LP bounds given every
published value, every additive relation and ``0 <= x <= largest grand total``) is at least its
protection level wide (``min_frequency`` by default). The public frame never holds the value of a
suppressed cell; the report holds intervals, never values of suppressed cells.
"""

from __future__ import annotations

import time

import numpy as np

from .audit import TOL, Attacker, AuditSystem, Certificates, audit
from .linked import SuppressionProblem, build_problem
from .primary import ProtectionImpossible
from .protect import FREE, PRIMARY, SECONDARY, ProtectedTable, published_frame
from .secondary_heuristic import heuristic
from .spec import TOTAL
from .table import CellTable


def protect_suppression(tables: list[CellTable]) -> list[ProtectedTable]:
    """Protect the tables together; one :class:`ProtectedTable` per input table, same order.

    Raises :class:`ProtectionImpossible` (naming the cell) when the cells that must be published
    leave a primary cell unprotectable; ``InputError`` when linked tables disagree on a cell.
    """
    prob = build_problem(tables)
    try:
        return _protect(prob, tables)
    except ProtectionImpossible as e:
        cell = getattr(e, "cell", None)
        if cell is None:
            raise
        raise ProtectionImpossible(str(e).format(cell=f"({_label(prob.codes_of(cell))})")) from None


def _protect(prob: SuppressionProblem, tables: list[CellTable]) -> list[ProtectedTable]:
    t0 = time.perf_counter()
    rules = tables[0].spec.disclosure
    method = rules.secondary
    system = AuditSystem.build(prob.values, prob.relations, prob.ub)
    allowed = ~prob.forbidden
    warnings: list[str] = []
    fallbacks: list[str] = []
    details: dict = {}
    cert = Certificates(prob.n)
    shape = tables[0].shape if len(tables) == 1 else None
    hierarchies = tables[0].hierarchies if len(tables) == 1 else None
    if method == "none":
        s = prob.primary.copy()
    elif method == "heuristic":
        s, details = heuristic(system, prob.primary, prob.required, allowed, prob.cost,
                               shape=shape, hierarchies=hierarchies)
        cert = details.pop("_certificates")
    elif method == "optimal":
        from .secondary_optimal import optimal

        s, details = optimal(system, prob.primary, prob.required, allowed, prob.cost,
                             time_limit=rules.time_limit, tables=tables, cell_maps=prob.cell_maps)
        if details.get("fallback"):
            fallbacks.append(details["fallback"])
    else:  # pragma: no cover - the spec schema refuses other values
        raise ValueError(f"unknown secondary method {method!r}")

    # A secondary cell the attacker computes exactly hides nothing: publishing it does not change
    # the attacker's polytope, so it is released (published) and only counted in the report.
    wasted, unproven = wasted_secondaries(system, s, prob.primary, cert)
    if wasted:
        s = s.copy()
        s[wasted] = False
        details = details | {"wasted_secondary_released": len(wasted)}
    # Certificates from secondary suppression are re-checked against the final pattern before
    # they count (verify drops them all if any point is not attacker-feasible).
    if not cert.verify(system, s):
        warnings.append("certificates from secondary suppression failed verification; "
                        "the audit recomputed every interval")
    result = audit(system, s, prob.required,
                   attacker=Attacker(system, s, cert, need=prob.required, shape=shape))
    if result.failing and method != "none":
        # Never return a failing pattern: repair with the heuristic from the current pattern.
        warnings.append(f"the {method} pattern failed the audit for {len(result.failing)} primary "
                        "cell(s); repaired by further suppression")
        s, rep = heuristic(system, prob.primary, prob.required, allowed, prob.cost, start=s,
                           prune_seconds=0.0, variants=False, shape=shape,
                           hierarchies=hierarchies)
        cert = rep.pop("_certificates")
        cert.verify(system, s)
        result = audit(system, s, prob.required,
                       attacker=Attacker(system, s, cert, need=prob.required, shape=shape))
    if result.failing:
        first = prob.codes_of(result.failing[0])
        raise ProtectionImpossible(
            f"{len(result.failing)} primary cell(s) are not protected by the pattern "
            f"(first: {_label(first)}); "
            + ("secondary suppression is 'none': choose 'heuristic' or 'optimal'"
               if method == "none" else "protection is impossible with the cells that must be published"))
    seconds = time.perf_counter() - t0
    if unproven:
        details = details | {"secondary_not_shown_movable": unproven}

    out = []
    for ti, (t, m) in enumerate(zip(tables, prob.cell_maps, strict=True)):
        status = np.full(t.n_cells, FREE, dtype=object)
        status[s[m] & ~prob.primary[m]] = SECONDARY
        status[prob.primary[m]] = PRIMARY
        status = status.astype("<U1")
        report = _report(prob, ti, s, result, wasted, method, details, seconds,
                         warnings, fallbacks)
        out.append(ProtectedTable(table=t, published=published_frame(t, status), report=report))
    return out


def wasted_secondaries(system: AuditSystem, s: np.ndarray, primary: np.ndarray,
                       cert: Certificates | None = None) -> tuple[list[int], int]:
    """Secondary cells the attacker computes exactly (suppressed for nothing).

    Exact in small components. In large components a cell is cleared when a certificate point
    moves it; the others are counted as "not shown to be movable" (second value) and kept.
    """
    sec = np.flatnonzero(s & ~primary)
    if len(sec) == 0:
        return [], 0
    att = Attacker(system, s, cert)
    att.prime(sec, np.full(len(system.values), TOL * 2))
    out = []
    unproven = 0
    for j in sec:
        j = int(j)
        lo, hi, info = att.bounds(j, TOL * 2, deep=False)
        if hi - lo < TOL:
            if info["exact"]:
                out.append(j)
            else:
                unproven += 1
    return out, unproven


def _label(codes: dict[str, str]) -> str:
    return ", ".join(f"{d}={c}" for d, c in codes.items()) or "grand total"


def _report(prob: SuppressionProblem, ti: int, s: np.ndarray, result, wasted: list[int],
            method: str, details: dict, seconds: float, warnings: list[str],
            fallbacks: list[str]) -> dict:
    t = prob.tables[ti]
    m = prob.cell_maps[ti]
    rules = t.spec.disclosure
    sup = s[m]
    prim = prob.primary[m]
    sec = sup & ~prim
    vals = t.values
    pl = rules.protection_level
    level = ({"kind": pl.kind, "value": pl.value} if pl
             else {"kind": "absolute", "value": rules.min_frequency})
    by_dim = {}
    grids = t.code_arrays()
    for h, g in zip(t.hierarchies, grids, strict=True):
        depth = np.array([h.depth[c] for c in h.codes])[g]
        levels = []
        for lv in range(h.levels + 1):
            sel = depth == lv
            levels.append({
                "level": lv, "name": "total" if lv == 0 else f"level {lv}",
                "primary": int((prim & sel).sum()), "secondary": int((sec & sel).sum()),
                "value_suppressed": int(vals[sup & sel].sum()),
            })
        by_dim[h.name] = levels
    intervals = []
    for i in np.flatnonzero(prim):
        p = int(m[i])
        codes = t.codes_of(int(i))
        lo, hi = result.lower.get(p), result.upper.get(p)
        intervals.append({
            "cell": codes, "lower": _num(lo), "upper": _num(hi),
            "width": _num(None if lo is None else hi - lo),
            "required_width": _num(prob.required[p]),
        })
    certified = set(result.certified)
    n_cert = sum(1 for i in np.flatnonzero(prim) if int(m[i]) in certified)
    in_table = set(m.tolist())
    released = [{"cell": t.codes_of(int(np.flatnonzero(m == j)[0]))} for j in wasted
                if j in in_table]
    linked = [x.spec.id for x in prob.tables] if len(prob.tables) > 1 else []
    rep = {
        "method": "cell suppression",
        "parameters": {
            "min_frequency": rules.min_frequency, "zero_policy": rules.zero_policy,
            "secondary": method, "cost": rules.cost, "protection_level": level,
            "time_limit": rules.time_limit,
            "protection_rule": "sliding: attacker interval width >= protection level "
                               "(LP bounds, all published cells and relations, 0 <= x <= "
                               "largest grand total)",
            "confidential": [dict(c) for c in rules.confidential],
            "must_publish": [dict(c) for c in rules.must_publish],
        },
        "cells": int(t.n_cells),
        "primary": {"cells": int(prim.sum()), "by_rule": _by_rule(t, prob, m)},
        "secondary": {"cells": int(sec.sum()), "applied": method != "none"},
        "suppressed": {"cells": int(sup.sum()), "value": int(vals[sup].sum()),
                       "primary_value": int(vals[prim].sum()),
                       "secondary_value": int(vals[sec].sum())},
        "value_suppressed": int(vals[sup].sum()),
        "by_dimension": by_dim,
        "audit": {
            "passed": not result.failing,
            "primary_cells_checked": len(intervals),
            "exact": sum(1 for x in intervals if x["width"] is not None and x["width"] < TOL),
            "narrow": len(result.failing),
            "min_width": min((x["width"] for x in intervals if x["width"] is not None),
                             default=None),
            "intervals": intervals,
            # after the release of exactly computable secondaries none is left (the attacker's
            # polytope is unchanged by publishing a cell it already knows)
            "wasted_secondary": [],
            "wasted_secondary_released": released,
            "intervals_kind": ("exact" if not n_cert else
                               f"exact for {len(intervals) - n_cert} cells; certified inner "
                               f"bounds for {n_cert} cells in large components (the attacker's "
                               "interval contains them)"),
            "mode": "exact" if not n_cert else "certified",
            "components": result.components, "largest_component": result.largest_component,
            "lps": result.lps, "seconds": round(result.seconds, 3),
        },
        "details": {k: v for k, v in details.items() if k != "fallback"},
        "seconds": round(seconds, 3),
        "fallbacks": fallbacks,
        "warnings": warnings,
    }
    if linked:
        rep["linked_tables"] = linked
        rep["linked_total"] = {"cells": int(prob.n), "suppressed": int(s.sum()),
                               "value": int(prob.values[s].sum())}
    return rep


def _by_rule(t: CellTable, prob: SuppressionProblem, m: np.ndarray) -> dict[str, int]:
    from .primary import primary_mask

    _, counts = primary_mask(t, t.spec.disclosure)
    linked_only = int((prob.primary[m]).sum()) - int(primary_mask(t, t.spec.disclosure)[0].sum())
    if linked_only:
        counts["linked"] = linked_only
    return counts


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    return round(float(x), 6)


__all__ = ["protect_suppression", "wasted_secondaries", "TOTAL"]
