"""The suppression problem over one table or several linked tables.

Cells of different tables are the same cell when their non-total codes agree, a dimension absent
from a table counting as its total ``_T`` (region × sex cell (R01, sex=_T) is the region × age cell
(R01, age=_T)). The problem numbers every distinct cell once; the relations are the union of every
table's additive relations (duplicates dropped), so the attacker audit runs on all published tables
together and a shared cell is suppressed in all tables or none.

With :class:`TableLinks` (the publication history, built by :mod:`disclosure.history`) the same
builder makes the joint system of a new release and the tables already published: cells merge
by codes only within one *group* (one source and period), a cell whose value differs between two
tables of one series (two versions) is two cells, flow periods add sum relations, and the
published tables' patterns are fixed (their cells can never change state).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .audit import required_width
from .errors import R_, Word
from .primary import must_publish_mask, primary_mask
from .spec import TOTAL
from .table import CellTable, InputError


@dataclass
class SumLink:
    """Per cell shared by codes: the cell of group ``total`` = the sum of the same cell in the
    groups ``parts`` (flows of a period and of the periods inside it). When ``complete`` is
    false the parts do not tile the total's period: a never-published remainder cell (an
    unknown ``>= 0``) closes the relation."""

    total: str
    parts: list[str]
    complete: bool
    label: str = ""
    part_labels: list[str] = field(default_factory=list)


@dataclass
class TableLinks:
    """How the tables handed to :func:`build_problem` tie together beyond shared codes.

    Per table (same order as the tables): ``groups`` (cells merge by codes only within one
    group), ``series`` (a cell whose raw value differs between two tables of one series is two
    cells instead of an error), ``fixed`` (None: the pattern is chosen; else the suppressed mask
    of a published table, fixed), ``fixed_primary`` (its primary cells, protected too),
    ``owners`` (a published table's label for messages), ``prefer`` (cells made cheap to
    suppress, cost times ``prefer_factor``). ``sums``: flow relations between groups.
    """

    groups: list[str]
    series: list[str]
    fixed: list[np.ndarray | None]
    fixed_primary: list[np.ndarray | None] = field(default_factory=list)
    sums: list[SumLink] = field(default_factory=list)
    owners: list[str | None] = field(default_factory=list)
    prefer: list[np.ndarray | None] = field(default_factory=list)
    prefer_factor: float = 0.01


@dataclass
class SuppressionProblem:
    """Every distinct cell of the release, with what secondary suppression needs to know.

    ``cell_maps[t][i]`` is the problem cell of table ``t``'s cell ``i``.
    """

    tables: list[CellTable]
    cell_maps: list[np.ndarray]
    values: np.ndarray  # int64 per problem cell
    relations: sp.csr_matrix
    primary: np.ndarray  # bool
    forbidden: np.ndarray  # bool: must publish, never suppressed
    required: np.ndarray  # protection level (interval width) per cell, 0 if not primary
    cost: np.ndarray  # float, what secondary suppression minimises
    by_rule: dict[str, int]
    ub: float | np.ndarray
    #: cells whose state cannot change (published tables' cells, remainder cells)
    fixed: np.ndarray | None = None
    #: fixed cells that are suppressed (unknown to the attacker)
    fixed_suppressed: np.ndarray | None = None
    #: per cell, the index of the first fixed table holding it (-1: none)
    owner: np.ndarray | None = None
    #: how many of ``tables`` (the first ones) are protected now; the rest are published
    n_new: int | None = None
    links: TableLinks | None = None

    def __post_init__(self) -> None:
        n = len(self.values)
        if self.fixed is None:
            self.fixed = np.zeros(n, dtype=bool)
        if self.fixed_suppressed is None:
            self.fixed_suppressed = np.zeros(n, dtype=bool)
        if self.owner is None:
            self.owner = np.full(n, -1, dtype=np.int64)
        if self.n_new is None:
            self.n_new = len(self.tables)

    @property
    def allowed(self) -> np.ndarray:
        """Cells secondary suppression may choose: not 'must publish', not fixed."""
        return ~self.forbidden & ~self.fixed

    @property
    def must(self) -> np.ndarray:
        """Cells suppressed whatever the pattern: primaries and fixed suppressed cells."""
        return self.primary | self.fixed_suppressed

    def table_of(self, cell: int) -> int | None:
        """Index of the first table holding a problem cell (None for a remainder cell)."""
        for ti, m in enumerate(self.cell_maps):
            if np.any(m == cell):
                return ti
        return None

    @property
    def n(self) -> int:
        return len(self.values)

    def codes_of(self, cell: int) -> dict[str, str]:
        """Codes of a problem cell (non-total codes only, merged over the tables)."""
        for t, m in zip(self.tables, self.cell_maps, strict=True):
            hit = np.flatnonzero(m == cell)
            if len(hit):
                return {d: c for d, c in t.codes_of(int(hit[0])).items() if c != TOTAL}
        return {"remainder": str(cell)}


def _label(codes: dict[str, str]) -> str:
    return ", ".join(f"{d}={c}" for d, c in codes.items()) or "grand total"


def cell_costs(values: np.ndarray, kind: str, tables: list | None = None) -> np.ndarray:
    """Cost of suppressing each cell (what secondary suppression minimises).

    ``value+count`` (default): the count plus a per-cell cost ``c`` = the mean inner-cell count
    of the tables (at least 1): a suppressed cell costs its value plus what a typical cell
    holds, so a zero cell is never free and the objective counts cells as well as value.
    ``value``: the count plus one (a zero cell costs as much as a count of one; among patterns of
    equal value the one with fewer cells wins). ``count``: one per cell, ties broken by value.
    """
    v = values.astype(np.float64)
    if kind == "count":
        return 1.0 + v / (v.sum() + 1.0)
    if kind == "value+count":
        return v + per_cell_cost(tables)
    return v + 1.0


def per_cell_cost(tables: list | None) -> float:
    """``c`` of the ``value+count`` cost: the mean count of the inner cells (at least 1)."""
    total, n = 0.0, 0
    for t in tables or ():
        inner = t.inner_mask
        total += float(np.asarray(t.values, dtype=np.float64)[inner].sum())
        n += int(inner.sum())
    return max(1.0, total / n) if n else 1.0


def build_problem(tables: list[CellTable], links: TableLinks | None = None) -> SuppressionProblem:
    """Number the distinct cells of the tables and gather relations, primaries and costs.

    Raises :class:`InputError` naming the cell when two tables give a shared cell different counts.
    With ``links`` (see :class:`TableLinks`) the fixed tables come after the tables protected now.
    """
    if not tables:
        raise ValueError("no tables to protect")
    if links is not None:
        return _build_linked(tables, links)
    keys: dict[tuple, int] = {}
    vals: list[int] = []
    maps: list[np.ndarray] = []
    for t in tables:
        if len(tables) == 1:
            m = np.arange(t.n_cells, dtype=np.int64)
            vals = list(t.values)
            maps.append(m)
            break
        names = [h.name for h in t.hierarchies]
        codes = [np.asarray(h.codes, dtype=object) for h in t.hierarchies]
        grids = t.code_arrays()
        m = np.empty(t.n_cells, dtype=np.int64)
        for i in range(t.n_cells):
            key = tuple(sorted((names[d], codes[d][grids[d][i]]) for d in range(len(names))
                               if codes[d][grids[d][i]] != TOTAL))
            j = keys.get(key)
            v = int(t.values[i])
            if j is None:
                j = len(vals)
                keys[key] = j
                vals.append(v)
            elif vals[j] != v:
                raise InputError(
                    R_("linked tables disagree on the shared cell (%(key)s): table %(id)s gives a different count than an earlier table"),
                    source=t.spec.id,
                 key=_label(dict(key)), id=repr(t.spec.id))
            m[i] = j
        maps.append(m)
    values = np.asarray(vals, dtype=np.int64)
    n = len(values)

    rel_parts = []
    for t, m in zip(tables, maps, strict=True):
        c = t.relations.tocoo()
        rel_parts.append(sp.csr_matrix((c.data.astype(np.int8), (c.row, m[c.col])),
                                       shape=(c.shape[0], n)))
    rel = sp.vstack(rel_parts).tocsr() if len(rel_parts) > 1 else rel_parts[0]
    if len(tables) > 1:
        rel = _unique_rows(rel)

    primary = np.zeros(n, dtype=bool)
    forbidden = np.zeros(n, dtype=bool)
    required = np.zeros(n, dtype=np.float64)
    by_rule: dict[str, int] = {}
    for t, m in zip(tables, maps, strict=True):
        rules = t.spec.disclosure
        mask, rules_count = primary_mask(t, rules)
        for k, v in rules_count.items():
            by_rule[k] = by_rule.get(k, 0) + v
        primary[m[mask]] = True
        forbidden[m[must_publish_mask(t, rules)]] = True
        pl = rules.protection_level
        kind, level = (pl.kind, pl.value) if pl else ("absolute", float(rules.min_frequency or 1))
        req = required_width(t.values, mask, kind, level)
        np.maximum.at(required, m, req)
    clash = np.flatnonzero(primary & forbidden)
    if len(clash):
        from .primary import ProtectionImpossible

        raise ProtectionImpossible(
            R_("cell (%(cell)s) is marked 'must publish' in one table but is primary-sensitive in a "
               "linked table"), cell=_label(_codes(tables, maps, int(clash[0]))))
    cost_kind = tables[0].spec.disclosure.cost
    return SuppressionProblem(
        tables=tables, cell_maps=maps, values=values, relations=rel, primary=primary,
        forbidden=forbidden, required=required,
        cost=cell_costs(values, cost_kind, tables),
        by_rule=by_rule, ub=float(values.max()) if n else 0.0,
    )


def _codes(tables: list[CellTable], maps: list[np.ndarray], cell: int) -> dict[str, str]:
    for t, m in zip(tables, maps, strict=True):
        hit = np.flatnonzero(m == cell)
        if len(hit):
            return {d: c for d, c in t.codes_of(int(hit[0])).items() if c != TOTAL}
    return {}


def _unique_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    """Drop duplicate relations (the same parent = sum of children stated by two tables)."""
    seen: set[bytes] = set()
    keep = []
    for r in range(m.shape[0]):
        s, e = m.indptr[r], m.indptr[r + 1]
        idx = m.indices[s:e]
        order = np.argsort(idx)
        key = idx[order].tobytes() + m.data[s:e][order].tobytes()
        if key not in seen:
            seen.add(key)
            keep.append(r)
    return m[keep]


def _cell_keys(t: CellTable) -> list[tuple]:
    """Per cell of ``t``: its non-total codes, sorted by dimension name (the cell's identity)."""
    names = [h.name for h in t.hierarchies]
    codes = [np.asarray(h.codes, dtype=object) for h in t.hierarchies]
    grids = t.code_arrays()
    cols = [codes[d][grids[d]] for d in range(len(names))]
    order = sorted(range(len(names)), key=lambda d: names[d])
    return [tuple((names[d], cols[d][i]) for d in order if cols[d][i] != TOTAL)
            for i in range(t.n_cells)]


def _build_linked(tables: list[CellTable], links: TableLinks) -> SuppressionProblem:
    """The joint system of the tables protected now (``links.fixed[i]`` None, first) and the
    published ones (fixed patterns); see :class:`TableLinks`."""
    from .primary import ProtectionImpossible

    nt = len(tables)
    fixed_of = links.fixed
    n_new = sum(1 for f in fixed_of if f is None)
    if any(f is None for f in fixed_of[n_new:]) or n_new == 0:
        raise ValueError("the tables protected now come first, then the published ones")
    owners = links.owners or [None] * nt
    order = list(range(n_new, nt)) + list(range(n_new))  # published first, oldest first
    cands: dict[tuple, list[int]] = {}
    vals: list[int] = []
    series_of: list[set[str]] = []
    maps: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * nt
    for ti in order:
        t = tables[ti]
        g, ser = links.groups[ti], links.series[ti]
        m = np.empty(t.n_cells, dtype=np.int64)
        for i, key in enumerate(_cell_keys(t)):
            v = int(t.values[i])
            lst = cands.get((g, key))
            j = None
            if lst is None:
                lst = cands[(g, key)] = []
            else:
                j = next((c for c in reversed(lst) if vals[c] == v), None)
                if j is None and not any(ser in series_of[c] for c in lst):
                    raise InputError(
                        R_("tables of one source and period disagree on the shared cell (%(key)s): table %(id)s gives a different count than %(series_of)s"), source=t.spec.id, key=_label(dict(key)), id=repr(t.spec.id), series_of=', '.join(sorted(series_of[lst[-1]])))
            if j is None:
                j = len(vals)
                vals.append(v)
                series_of.append(set())
                lst.append(j)
            series_of[j].add(ser)
            m[i] = j
        maps[ti] = m
    # flow relations between groups; a remainder cell where the parts do not tile the period
    sum_rows: list[tuple[list[int], list[int]]] = []  # (cells, coefficients)
    remainder_of: list[int] = []  # per remainder cell: its total cell
    by_group: dict[str, dict[tuple, list[int]]] = {}
    for (g, key), lst in cands.items():
        by_group.setdefault(g, {})[key] = lst
    for link in links.sums:
        tot = by_group.get(link.total, {})
        parts = [by_group.get(g, {}) for g in link.parts]
        for key, tlist in tot.items():
            plists = [p[key] for p in parts if key in p]
            if not plists:
                continue
            complete = link.complete and len(plists) == len(parts)
            if complete:
                combos = _combos(plists)
                hit = False
                for c_t in tlist:
                    for combo in combos:
                        if vals[c_t] == sum(vals[c] for c in combo):
                            sum_rows.append(([c_t, *combo], [1] + [-1] * len(combo)))
                            hit = True
                if not hit:
                    raise InputError(
                        R_("the flow of period %(label)s at (%(key)s) is not the sum of its sub-periods (%(part_labels)s)"),
                        source=next(iter(series_of[tlist[-1]])), label=link.label, key=_label(dict(key)), part_labels=' + '.join(link.part_labels))
            else:
                c_t = tlist[-1]
                combo = [pl[-1] for pl in plists]
                rest = vals[c_t] - sum(vals[c] for c in combo)
                if rest < 0:
                    if any(len(pl) > 1 for pl in (tlist, *plists)):
                        continue  # versions disagree: no relation known to hold
                    raise InputError(
                        R_("the flow of period %(label)s at (%(key)s) is smaller than the sum of its published sub-periods"), source=next(iter(
                            series_of[c_t])), label=link.label, key=_label(dict(key)))
                r = len(vals)
                vals.append(rest)
                series_of.append(set())
                remainder_of.append(c_t)
                sum_rows.append(([c_t, *combo, r], [1] + [-1] * len(combo) + [-1]))
    values = np.asarray(vals, dtype=np.int64)
    n = len(values)
    rel_parts = []
    for t, m in zip(tables, maps, strict=True):
        c = t.relations.tocoo()
        rel_parts.append(sp.csr_matrix((c.data.astype(np.int8), (c.row, m[c.col])),
                                       shape=(c.shape[0], n)))
    if sum_rows:
        r_i = np.concatenate([np.full(len(cs), k) for k, (cs, _) in enumerate(sum_rows)])
        r_j = np.concatenate([np.asarray(cs) for cs, _ in sum_rows])
        r_v = np.concatenate([np.asarray(vs) for _, vs in sum_rows]).astype(np.int8)
        rel_parts.append(sp.csr_matrix((r_v, (r_i, r_j)), shape=(len(sum_rows), n)))
    rel = _unique_rows(sp.vstack(rel_parts).tocsr())

    # per-cell bound: the grand total of each table holding it (the smallest)
    ub = np.full(n, np.inf)
    for t, m in zip(tables, maps, strict=True):
        np.minimum.at(ub, m, float(t.values.max()) if t.n_cells else 0.0)
    n_rem = len(remainder_of)
    if n_rem:
        ub[n - n_rem:] = ub[np.asarray(remainder_of)]
    ub = np.where(np.isfinite(ub), ub, float(values.max()) if n else 0.0)

    primary = np.zeros(n, dtype=bool)
    forbidden = np.zeros(n, dtype=bool)
    required = np.zeros(n, dtype=np.float64)
    fixed = np.zeros(n, dtype=bool)
    known = np.zeros(n, dtype=bool)  # published free by some fixed table
    owner = np.full(n, -1, dtype=np.int64)
    by_rule: dict[str, int] = {}
    for ti, (t, m) in enumerate(zip(tables, maps, strict=True)):
        rules = t.spec.disclosure
        if fixed_of[ti] is None:
            mask, counts = primary_mask(t, rules)
            for k, v in counts.items():
                by_rule[k] = by_rule.get(k, 0) + v
            forbidden[m[must_publish_mask(t, rules)]] = True
        else:
            sup = np.asarray(fixed_of[ti], dtype=bool)
            fp = links.fixed_primary[ti] if links.fixed_primary else None
            mask = np.asarray(fp, dtype=bool) if fp is not None else np.zeros(t.n_cells, bool)
            fixed[m] = True
            known[m[~sup]] = True
            fresh = owner[m] < 0
            owner[m[fresh]] = ti
        primary[m[mask]] = True
        pl = getattr(rules, "protection_level", None)
        mf = getattr(rules, "min_frequency", None)
        kind, level = (pl.kind, pl.value) if pl else ("absolute", float(mf or 1))
        np.maximum.at(required, m, required_width(t.values, mask, kind, level))
    if n_rem:
        fixed[n - n_rem:] = True
    fixed_suppressed = fixed & ~known
    # a published free cell's owner is the first table publishing it free
    free_owner = np.zeros(n, dtype=bool)
    for ti in range(n_new, nt):
        pub = maps[ti][~np.asarray(fixed_of[ti], dtype=bool)]
        take = pub[~free_owner[pub]]
        owner[take] = ti
        free_owner[take] = True

    def release(cell: int) -> str | Word:
        ti = int(owner[cell])
        return (owners[ti] or tables[ti].spec.id) if ti >= 0 else Word(R_("an earlier release"))

    def where(cell: int) -> str:
        return _label(_codes(tables, maps, cell))

    for bad, why in (
        (primary & known,
         R_("cell (%(cell)s) is primary-sensitive but the earlier release %(release)s publishes "
            "it; protecting it would need a change in that release")),
        (forbidden & fixed_suppressed,
         R_("cell (%(cell)s) is marked 'must publish' but the earlier release %(release)s "
            "suppresses it; publishing it now would disclose that release's hidden cell")),
        (primary & forbidden,
         R_("cell (%(cell)s) is marked 'must publish' in one table but is primary-sensitive in a "
            "linked table")),
    ):
        hit = np.flatnonzero(bad)
        if len(hit):
            c = int(hit[0])
            raise ProtectionImpossible(why, cell=where(c), release=release(c))
    cost_kind = getattr(tables[0].spec.disclosure, "cost", "value+count")
    cost = cell_costs(values, cost_kind, tables[:n_new])
    for ti, pref in enumerate(links.prefer or []):
        if pref is not None and fixed_of[ti] is None:
            cells = np.unique(maps[ti][np.asarray(pref, dtype=bool)])
            cells = cells[~fixed[cells]]
            cost[cells] *= links.prefer_factor
    return SuppressionProblem(
        tables=tables, cell_maps=maps, values=values, relations=rel, primary=primary,
        forbidden=forbidden, required=required, cost=cost, by_rule=by_rule, ub=ub,
        fixed=fixed, fixed_suppressed=fixed_suppressed, owner=owner, n_new=n_new, links=links)


def _combos(lists: list[list[int]], cap: int = 64) -> list[list[int]]:
    out: list[list[int]] = [[]]
    for lst in lists:
        out = [[*o, c] for o in out for c in lst][:cap]
    return out
