"""The suppression problem over one table or several linked tables.

Cells of different tables are the same cell when their non-total codes agree, a dimension absent
from a table counting as its total ``_T`` (region × sex cell (R01, sex=_T) is the region × age cell
(R01, age=_T)). The problem numbers every distinct cell once; the relations are the union of every
table's additive relations (duplicates dropped), so the attacker audit runs on all published tables
together and a shared cell is suppressed in all tables or none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .audit import required_width
from .primary import must_publish_mask, primary_mask
from .spec import TOTAL
from .table import CellTable, InputError


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
    ub: float

    @property
    def n(self) -> int:
        return len(self.values)

    def codes_of(self, cell: int) -> dict[str, str]:
        """Codes of a problem cell (non-total codes only, merged over the tables)."""
        for t, m in zip(self.tables, self.cell_maps, strict=True):
            hit = np.flatnonzero(m == cell)
            if len(hit):
                return {d: c for d, c in t.codes_of(int(hit[0])).items() if c != TOTAL}
        raise KeyError(cell)


def _label(codes: dict[str, str]) -> str:
    return ", ".join(f"{d}={c}" for d, c in codes.items()) or "grand total"


def cell_costs(values: np.ndarray, kind: str) -> np.ndarray:
    """Cost of suppressing each cell.

    ``value``: the count plus one, so that among patterns of equal value the one with fewer cells
    wins and a zero cell is not free. ``count``: one per cell, ties broken by value.
    """
    v = values.astype(np.float64)
    if kind == "count":
        return 1.0 + v / (v.sum() + 1.0)
    return v + 1.0


def build_problem(tables: list[CellTable]) -> SuppressionProblem:
    """Number the distinct cells of the tables and gather relations, primaries and costs.

    Raises :class:`InputError` naming the cell when two tables give a shared cell different counts.
    """
    if not tables:
        raise ValueError("no tables to protect")
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
                    f"linked tables disagree on the shared cell ({_label(dict(key))}): "
                    f"table {t.spec.id!r} gives a different count than an earlier table",
                    source=t.spec.id,
                )
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
            f"cell ({_label(_codes(tables, maps, int(clash[0])))}) is marked 'must publish' in one "
            "table but is primary-sensitive in a linked table")
    cost_kind = tables[0].spec.disclosure.cost
    return SuppressionProblem(
        tables=tables, cell_maps=maps, values=values, relations=rel, primary=primary,
        forbidden=forbidden, required=required, cost=cell_costs(values, cost_kind),
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
