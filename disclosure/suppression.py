"""Cell suppression: primary rules, secondary suppression and the attacker audit.

``protect_suppression(tables)`` protects one table or several linked tables (cells shared by
tables are suppressed in all or none, see :mod:`disclosure.linked`):

1. primary suppression (:mod:`disclosure.primary`);
2. secondary suppression by the spec's method: ``heuristic``
   (:mod:`disclosure.secondary_heuristic`), ``optimal`` (:mod:`disclosure.secondary_optimal`,
   falling back to the heuristic pattern when its time limit runs out, said in the report) or
   ``none``. With ``zero_secondary: avoid`` (the default) zero cells are not candidates: a
   suppressed zero sits at its lower bound and hides little, while the reader loses a published
   cell; only when the primaries cannot be protected without them are they allowed (a warning
   in the report says so). ``allow`` makes them candidates at their cost;
3. the attacker audit (:mod:`disclosure.audit`) on the final pattern over the union of all
   relations. A pattern that fails is repaired by further suppression; one that still fails is
   never returned (``ProtectionImpossible``).

With ``published=[...]`` (:class:`disclosure.history.PublishedTable`: tables of the same source
already public) every step runs on the joint system of the new tables and the published ones
(:func:`disclosure.history.link_history`): the published tables' free cells are known constants,
their suppressed cells unknowns, their patterns fixed (only the new tables' cells may become
secondary suppressions), and the audit checks every primary of the new tables and every
published primary the new tables can reach. A primary that only a change in an earlier release
could protect is refused (``ProtectionImpossible`` naming the cell and that release).

Guarantee of a returned pattern: every primary cell's attacker interval (LP bounds given every
published value, every additive relation and ``0 <= x <= largest grand total``) is at least its
protection level wide (``min_frequency`` by default). The public frame never holds the value of a
suppressed cell; the report holds intervals, never values of suppressed cells.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .audit import TOL, Attacker, AuditSystem, Certificates, audit
from .errors import R_, Phrase
from .linked import SuppressionProblem, build_problem
from .methods.suppression import (
    AuditResult,
    LevelParameters,
    Optimality,
    PrimaryCells,
    SecondaryCells,
    SuppressedCells,
    SuppressionParameters,
    SuppressionReport,
)
from .primary import ProtectionImpossible
from .protect import FREE, PRIMARY, SECONDARY, ProtectedTable, published_frame
from .secondary_heuristic import heuristic
from .spec import TOTAL
from .table import CellTable

#: the cost rules in words (disclosure.linked.cell_costs), for the report
COST_RULES = {
    "value+count": "value plus a per-cell cost equal to the mean inner-cell count (at least 1): "
                   "a zero cell is never free",
    "value": "value plus 1",
    "count": "one per cell, ties broken by value",
}


def protect_suppression(tables: list[CellTable], published: list | None = None,
                        progress: Callable[..., None] | None = None) -> list[ProtectedTable]:
    """Protect the tables together; one :class:`ProtectedTable` per input table, same order.

    ``published``: :class:`~disclosure.history.PublishedTable` s already public (fixed patterns,
    known to the attacker), see the module docstring. ``progress`` (optional, pure callable):
    hears ``progress(phase, primaries_left=n)`` while the run goes on — phases ``primary``,
    ``secondary`` (per heuristic round, and at most every half second of pruning),
    ``optimising`` (the optimal method's rounds) and ``audit``; None: no calls.

    Raises :class:`ProtectionImpossible` (naming the cell) when the cells that must be published
    (or were published earlier) leave a primary cell unprotectable; ``InputError`` when linked
    tables disagree on a cell; ``HistoryError`` for a history that cannot be linked.
    """
    hist = None
    if published:
        from .history import link_history

        hist = link_history(tables, list(published))
    if hist is not None and hist.published:
        prob = build_problem(hist.tables, hist.links)
    else:
        prob = build_problem(tables)
    try:
        return _protect(prob, tables, hist, progress)
    except ProtectionImpossible as e:
        cell = getattr(e, "cell", None)
        if cell is None:
            raise
        blame = _blame(prob, cell) if prob.n_new < len(prob.tables) else ""
        raise ProtectionImpossible(e.template, **(e.params | {"cell": _where(prob, cell),
                                                               "blame": blame})) from None


def _where(prob: SuppressionProblem, cell: int, paren: bool = True) -> str | Phrase:
    """``(codes)``, plus the earlier release holding the cell when it is not a new table's."""
    ti = prob.table_of(cell)
    label = _label(prob.codes_of(cell))
    if paren:
        label = f"({label})"
    if ti is not None and ti >= prob.n_new and prob.links is not None:
        owner = (prob.links.owners or [None] * len(prob.tables))[ti]
        return Phrase(R_("%(cell)s of the earlier release %(release)s"), cell=label,
                      release=owner or prob.tables[ti].spec.id)
    return label


def _blame(prob: SuppressionProblem, cell: int) -> str | Phrase:
    """Which earlier release pins ``cell``: the published cells in the attacker's cut when every
    cell the new tables may suppress is suppressed (so only a change there could help)."""
    system = AuditSystem.build(prob.values, prob.relations, prob.ub)
    s_max = prob.allowed | prob.must
    if not s_max[cell]:
        return ""
    att = Attacker(system, s_max)
    lo, hi, info = att.bounds(cell, float(prob.required[cell]))
    if hi - lo >= max(prob.required[cell], TOL) - TOL:
        return ""
    pins: set[int] = set()
    for sense, key in ((+1, "up"), (-1, "down")):
        g = att.cut(cell, sense, info.get(key), info.get(f"rows_{key}", info.get("rows")))
        pins |= {i for i in g if not s_max[i]}
    owners = prob.links.owners if prob.links is not None else []
    names = sorted({owners[int(prob.owner[i])] or prob.tables[int(prob.owner[i])].spec.id
                    for i in pins if prob.owner[i] >= 0})
    if not names:
        return ""
    return Phrase(R_("; the earlier release %(releases)s publishes cells that pin it even with "
                     "every cell of this release suppressed: protecting it would need a change "
                     "in that release"), releases=", ".join(names))


def _in_reach(prob: SuppressionProblem, system: AuditSystem) -> np.ndarray:
    """Cells whose attacker interval the new tables can change: suppressed components (with
    every choosable cell suppressed) that meet a relation holding a cell of a new table."""
    n = prob.n
    new = np.zeros(n, dtype=bool)
    for m in prob.cell_maps[:prob.n_new]:
        new[m] = True
    rel = abs(system.relations)
    rows_new = np.asarray(rel @ new.astype(np.float64)).ravel() > 0
    att = Attacker(system, prob.allowed | prob.must)
    out = np.zeros(n, dtype=bool)
    for k, cells in enumerate(att.comp_cells):
        if rows_new[att.row_ids[att.comp_rows[k]]].any():
            out[cells] = True
    return out


def _determined(system: AuditSystem, must: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Choosable cells the attacker computes from published cells alone (e.g. a quarter's flow
    whose months are all published): suppressing them hides nothing, so they stay published.

    Propagated: a relation whose cells are all known but one determines that one."""
    known = ~must & ~allowed  # published by an earlier release, or 'must publish'
    out = np.zeros(len(known), dtype=bool)
    rel = abs(system.relations).tocsr()
    rel.data[:] = 1.0
    while True:
        unknown = np.asarray(rel @ (~known).astype(np.float64)).ravel()
        rows = np.flatnonzero(unknown == 1)
        if not len(rows):
            return out
        sub = rel[rows]
        cells = sub.indices[~known[sub.indices]]
        new = np.unique(cells[allowed[cells] & ~out[cells]])
        if not len(new):
            return out
        out[new] = True
        known[new] = True


def _protect(prob: SuppressionProblem, tables: list[CellTable], hist=None,  # noqa: ANN001
             progress: Callable[..., None] | None = None) -> list[ProtectedTable]:
    t0 = time.perf_counter()
    rules = tables[0].spec.disclosure
    method = rules.secondary
    n_primary = int((prob.primary & (prob.required > 0)).sum())
    if progress is not None:
        progress("primary", primaries_left=n_primary)
    # With a history, block LPs (one published table's cells, the others held) certify many
    # primaries at once; every point they give is re-verified on the joint system.
    system = AuditSystem.build(prob.values, prob.relations, prob.ub,
                               blocks=prob.owner if prob.n_new < len(prob.tables) else None)
    allowed = prob.allowed
    must = prob.must  # primaries and the published tables' suppressed cells (fixed)
    required = prob.required
    history = prob.n_new < len(prob.tables)
    skip = None
    if history:
        # Published primaries the new tables cannot reach keep the interval the earlier releases
        # gave them; the others are protected (and audited) like the new tables' primaries.
        new = np.zeros(prob.n, dtype=bool)
        for m in prob.cell_maps[:prob.n_new]:
            new[m] = True
        required = np.where(new | _in_reach(prob, system), required, 0.0)
        allowed = allowed & ~_determined(system, must, allowed)
        # a published suppressed cell left alone in a relation is the earlier releases' doing;
        # it needs no partner unless it is a primary to protect
        skip = prob.fixed_suppressed & (required == 0)
    warnings: list[str] = []
    fallbacks: list[str] = []
    details: dict = {}
    cert = Certificates(prob.n)
    single = len(tables) == 1 and not history
    shape = tables[0].shape if single else None
    hierarchies = tables[0].hierarchies if single else None
    zero_rule = getattr(rules, "zero_secondary", "avoid")
    zero_cells = (prob.values == 0) & ~must
    use = allowed & ~zero_cells if zero_rule == "avoid" and method != "none" else allowed

    def secondary(use: np.ndarray) -> tuple[np.ndarray, dict, Certificates]:
        if method == "none":
            return must.copy(), {}, Certificates(prob.n)
        if method == "heuristic":
            s, details = heuristic(system, must, required, use, prob.cost,
                                   shape=shape, hierarchies=hierarchies, skip=skip,
                                   progress=progress)
            return s, details, details.pop("_certificates")
        if method == "optimal":
            from .secondary_optimal import optimal

            s, details = optimal(system, must, required, use, prob.cost,
                                 time_limit=rules.time_limit, tables=prob.tables,
                                 cell_maps=prob.cell_maps, skip=skip,
                                 work_limit=getattr(rules, "work_limit", None),
                                 shape=shape, hierarchies=hierarchies, progress=progress)
            details.pop("_costs", None)  # sums of raw values: never in a report
            return s, details, Certificates(prob.n)
        raise ValueError(f"unknown secondary method {method!r}")  # pragma: no cover

    try:
        s, details, cert = secondary(use)
    except ProtectionImpossible:
        if use is allowed:
            raise
        # the primaries cannot be protected without zero cells: allow them, and say so
        use = allowed
        s, details, cert = secondary(use)
        warnings.append("zero cells are avoided as secondary suppressions, but the primary "
                        "cells could not be protected without them: zero cells were allowed")
    allowed = use
    if details.get("fallback"):
        fallbacks.append(details["fallback"])

    # A secondary cell the attacker computes exactly hides nothing: publishing it does not change
    # the attacker's polytope, so it is released (published) and only counted in the report.
    cert.keep_feasible(s)  # points found before pruning may move a cell now published
    wasted, unproven = wasted_secondaries(system, s, must, cert)
    if wasted:
        s = s.copy()
        s[wasted] = False
        details = details | {"wasted_secondary_released": len(wasted)}
    # Certificates from secondary suppression are re-checked against the final pattern before
    # they count (verify drops them all if any point is not attacker-feasible).
    if not cert.verify(system, s):
        warnings.append("certificates from secondary suppression failed verification; "
                        "the audit recomputed every interval")
    if progress is not None:
        progress("audit", primaries_left=0)
    result = audit(system, s, required,
                   attacker=Attacker(system, s, cert, need=required, shape=shape))
    if result.failing and method != "none":
        # Never return a failing pattern: repair with the heuristic from the current pattern.
        warnings.append(f"the {method} pattern failed the audit for {len(result.failing)} primary "
                        "cell(s); repaired by further suppression")
        s, rep = heuristic(system, must, required, allowed, prob.cost, start=s,
                           prune_seconds=0.0, variants=False, shape=shape,
                           hierarchies=hierarchies, skip=skip)
        cert = rep.pop("_certificates")
        cert.verify(system, s)
        result = audit(system, s, required,
                       attacker=Attacker(system, s, cert, need=required, shape=shape))
    if result.failing:
        first = int(result.failing[0])
        params = {"failing": len(result.failing), "cell": _where(prob, first, paren=False),
                  "blame": _blame(prob, first) if history else ""}
        if method == "none":
            raise ProtectionImpossible(
                R_("%(failing)s primary cell(s) are not protected by the pattern (first: "
                   "%(cell)s); secondary suppression is 'none': choose 'heuristic' or "
                   "'optimal'%(blame)s"), **params)
        raise ProtectionImpossible(
            R_("%(failing)s primary cell(s) are not protected by the pattern (first: %(cell)s); "
               "protection is impossible with the cells that must be published%(blame)s"),
            **params)
    seconds = time.perf_counter() - t0
    if unproven:
        details = details | {"secondary_not_shown_movable": unproven}

    if history:
        new = np.zeros(prob.n, dtype=bool)
        for m in prob.cell_maps[:prob.n_new]:
            new[m] = True
        details = details | {"published_primaries_checked":
                             sum(1 for p in result.lower if not new[p])}
    out = []
    for ti, (t, m) in enumerate(zip(tables, prob.cell_maps[:len(tables)], strict=True)):
        status = np.full(t.n_cells, FREE, dtype=object)
        status[s[m] & ~prob.primary[m]] = SECONDARY
        status[prob.primary[m]] = PRIMARY
        status = status.astype("<U1")
        report = _report(prob, ti, s, result, wasted, method, details, seconds,
                         warnings, fallbacks)
        _history_fields(report, hist, ti, t, status)
        out.append(ProtectedTable(table=t, published=published_frame(t, status), report=report))
    return out


def _history_fields(report: SuppressionReport, hist, ti: int, t: CellTable,  # noqa: ANN001
                    status: np.ndarray) -> None:
    """The report's publication-history fields: what the audit covered, flips, the model."""
    if hist is None:
        return
    from .history import count_flips

    report.covered = list(hist.covered)
    report.attacker_model = hist.attacker_model()
    prev = hist.previous[ti]
    if prev is not None:
        report.flips = count_flips(t, status != FREE, prev)
        report.previous_version = prev.spec.version


def wasted_secondaries(system: AuditSystem, s: np.ndarray, primary: np.ndarray,
                       cert: Certificates | None = None) -> tuple[list[int], int]:
    """Secondary cells the attacker computes exactly (suppressed for nothing).

    Exact in small components. In large components a cell is cleared when a certificate point
    moves it; the others are counted as "not shown to be movable" (second value) and kept.

    Most secondaries move: a few LP pairs with random-sign objectives over a component's open
    secondaries (and every optimal point found on the way) show that at once, so the per-cell
    LP pair runs only for the few cells no point has moved yet. A point only ever keeps a cell
    suppressed; a cell is released only by its own exact LP pair.
    """
    sec = np.flatnonzero(s & ~primary)
    if len(sec) == 0:
        return [], 0
    att = Attacker(system, s, cert)
    att.prime(sec, np.full(len(system.values), TOL * 2))
    cert = att.cert
    rng = np.random.default_rng(0)  # deterministic: same pattern, same answer
    for k in np.unique(att.comp_of[sec]):
        if not att.is_exact(int(att.comp_cells[k][0])):
            continue
        cells = att.comp_cells[k]
        tk = sec[att.comp_of[sec] == k]
        mdl = att._model(int(k))
        for _ in range(WASTED_ROUNDS):
            open_ = tk[cert.hi[tk] - cert.lo[tk] < TOL]
            if len(open_) < 2:
                break
            w = np.zeros(len(cells))
            w[np.searchsorted(cells, open_)] = np.where(rng.random(len(open_)) < 0.5, -1.0, 1.0)
            for x in mdl.solve_batch(w):
                cert.add(cells, x)
            if np.count_nonzero(cert.hi[open_] - cert.lo[open_] < TOL) > 0.9 * len(open_):
                break  # this round moved few: the per-cell LPs are as cheap
    out = []
    unproven = 0
    for j in sec:
        j = int(j)
        if cert.hi[j] - cert.lo[j] >= TOL:
            continue  # a feasible point moves it: it hides something
        if att.is_exact(j):
            mdl = att._model(int(att.comp_of[j]))
            up, _ = mdl.solve(j, +1)
            cert.add(mdl.cells, mdl.x)
            if up >= TOL:
                continue
            down, _ = mdl.solve(j, -1)
            cert.add(mdl.cells, mdl.x)
            if up + down < TOL:
                out.append(j)
            continue
        lo, hi, info = att.bounds(j, TOL * 2, deep=False)
        if hi - lo < TOL:
            unproven += 1
    return out, unproven


#: random-direction LP pairs per small component before the per-cell LPs of wasted_secondaries
WASTED_ROUNDS = 8


def _label(codes: dict[str, str]) -> str:
    return ", ".join(f"{d}={c}" for d, c in codes.items()) or "grand total"


def _report(prob: SuppressionProblem, ti: int, s: np.ndarray, result, wasted: list[int],
            method: str, details: dict, seconds: float, warnings: list[str],
            fallbacks: list[str]) -> SuppressionReport:
    t = prob.tables[ti]
    m = prob.cell_maps[ti]
    rules = t.spec.disclosure
    sup = s[m]
    prim = prob.primary[m]
    sec = sup & ~prim
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
    linked = ([x.spec.id for x in prob.tables[:prob.n_new]] if prob.n_new > 1 else [])
    rep = SuppressionReport(
        parameters=SuppressionParameters(
            min_frequency=rules.min_frequency, zero_policy=rules.zero_policy,
            zero_secondary=getattr(rules, "zero_secondary", "avoid"),
            secondary=method, cost=rules.cost,
            protection_level=LevelParameters(kind=level["kind"], value=level["value"]),
            time_limit=rules.time_limit,
            work_limit=getattr(rules, "work_limit", None),
            cost_rule=COST_RULES.get(rules.cost, rules.cost),
            protection_rule="sliding: attacker interval width >= protection level "
                            "(LP bounds, all published cells and relations, 0 <= x <= "
                            "largest grand total)",
            confidential=[dict(c) for c in rules.confidential],
            must_publish=[dict(c) for c in rules.must_publish],
        ),
        cells=int(t.n_cells),
        primary=PrimaryCells(cells=int(prim.sum()), by_rule=_by_rule(t, prob, m)),
        secondary=SecondaryCells(cells=int(sec.sum()), applied=method != "none"),
        suppressed=SuppressedCells(cells=int(sup.sum()),
                                   marginal=int((sup & ~t.inner_mask).sum())),
        by_dimension=by_dim,
        audit=AuditResult(
            passed=not result.failing,
            primary_cells_checked=len(intervals),
            exact=sum(1 for x in intervals if x["width"] is not None and x["width"] < TOL),
            narrow=len(result.failing),
            min_width=min((x["width"] for x in intervals if x["width"] is not None),
                          default=None),
            intervals=intervals,
            # after the release of exactly computable secondaries none is left (the attacker's
            # polytope is unchanged by publishing a cell it already knows)
            wasted_secondary=[],
            wasted_secondary_released=released,
            intervals_kind=("exact" if not n_cert else
                            f"exact for {len(intervals) - n_cert} cells; certified inner "
                            f"bounds for {n_cert} cells in large components (the attacker's "
                            "interval contains them)"),
            mode="exact" if not n_cert else "certified",
            components=int(result.components), largest_component=int(result.largest_component),
            lps=int(result.lps), seconds=round(result.seconds, 3),
        ),
        details={k: v for k, v in details.items()
                 if k not in ("fallback", "optimality") and not k.startswith("_")},
        optimality=(Optimality(**details["optimality"]) if details.get("optimality")
                    else None),
        seconds=round(seconds, 3),
        fallbacks=fallbacks,
        warnings=warnings,
    )
    if linked:
        rep.linked_tables = linked
        rep.linked_total = {"cells": int(prob.n), "suppressed": int(s.sum())}
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
