"""The table model: a dense cube of every cell of a count table, marginals included.

A table with dimensions d1..dk, each a :class:`~disclosure.spec.Hierarchy`, has one cell for every
combination of codes (inner codes and totals alike). Cells are numbered in C order over the codes
of each dimension in hierarchy order, so ``values[i]`` is the count of cell ``i`` and
:meth:`CellTable.relations` gives the additive relations ``total - sum(children) = 0``, one per
parent code per combination of the other dimensions' codes.

Input comes in long format (one row per cell: a code column per dimension, then ``obs_value``;
totals, coded ``_T`` or as their parent code, may be included and must then add up);
:func:`read_cells` validates it and raises :class:`InputError` naming the row (frictionless
numbering: the header is row 1), the column and the reason. Errors never quote a count of
another cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import R_, AshyqError, located
from .spec import TOTAL, Hierarchy, TableSpec

__all__ = ["CellTable", "InputError", "located", "read_cells", "aggregate"]


class InputError(AshyqError):
    """Bad input data; carries where (source, row, column) and why."""


ABSENT_LISTED = 20  # absent cells named in a report's warning (all are counted)


@dataclass
class CellTable:
    """Every cell of a table: ``values`` is the flat cube of counts (int64) in C order."""

    spec: TableSpec
    values: np.ndarray
    #: inner cells absent from the input, taken as zero (``missing: zero``): how many, and the
    #: codes of the first few (codes only, never a count)
    absent: int = 0
    absent_cells: tuple[dict[str, str], ...] = ()

    @property
    def hierarchies(self) -> tuple[Hierarchy, ...]:
        return tuple(d.hierarchy for d in self.spec.dimensions)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(h.codes) for h in self.hierarchies)

    @property
    def n_cells(self) -> int:
        return int(np.prod(self.shape))

    @cached_property
    def code_index(self) -> tuple[dict[str, int], ...]:
        return tuple({c: i for i, c in enumerate(h.codes)} for h in self.hierarchies)

    @cached_property
    def inner_mask(self) -> np.ndarray:
        """True for cells whose every code is a leaf (the cells a person is counted in)."""
        masks = [np.array([h.is_leaf(c) for c in h.codes]) for h in self.hierarchies]
        out = masks[0]
        for m in masks[1:]:
            out = np.logical_and.outer(out, m)
        return np.asarray(out).reshape(-1)

    def cell_id(self, codes: dict[str, str]) -> int:
        """Index of the cell with these codes; a dimension left out means its total."""
        idx = []
        for d, ci in zip(self.spec.dimensions, self.code_index, strict=True):
            code = str(codes.get(d.name, TOTAL))
            if code not in ci:
                raise KeyError(f"dimension {d.name!r} has no code {code!r}")
            idx.append(ci[code])
        return int(np.ravel_multi_index(idx, self.shape))

    def codes_of(self, cell: int) -> dict[str, str]:
        idx = np.unravel_index(cell, self.shape)
        return {h.name: h.codes[i] for h, i in zip(self.hierarchies, idx, strict=True)}

    def code_arrays(self) -> list[np.ndarray]:
        """Per dimension, the code index of every cell (flat, C order)."""
        grids = np.indices(self.shape, sparse=False)
        return [g.reshape(-1) for g in grids]

    def frame(self, values: np.ndarray | None = None) -> pd.DataFrame:
        """The long table (one row per cell, every cell) with codes and ``obs_value``."""
        cols = {}
        for h, g in zip(self.hierarchies, self.code_arrays(), strict=True):
            cols[h.name] = pd.Categorical.from_codes(g, categories=list(h.codes))
        df = pd.DataFrame(cols)
        df[self.spec.measure] = self.values if values is None else values
        return df

    @cached_property
    def relations(self) -> sp.csr_matrix:
        """Sparse matrix C with C @ values == 0: one row per (dimension, parent, other codes).

        The parent cell has coefficient +1 and each of its children -1.
        """
        shape = self.shape
        ids = np.arange(self.n_cells, dtype=np.int64).reshape(shape)
        rows_parts, cols_parts, vals_parts = [], [], []
        n_rows = 0
        for axis, h in enumerate(self.hierarchies):
            ci = self.code_index[axis]
            for p in h.parents:
                kids = [ci[c] for c in h.children[p]]
                tot = np.take(ids, ci[p], axis=axis).reshape(-1)
                ch = np.moveaxis(np.take(ids, kids, axis=axis), axis, -1).reshape(-1, len(kids))
                m = tot.shape[0]
                r = np.arange(n_rows, n_rows + m, dtype=np.int64)
                rows_parts += [r, np.repeat(r, len(kids))]
                cols_parts += [tot, ch.reshape(-1)]
                vals_parts += [np.ones(m, dtype=np.int8), -np.ones(m * len(kids), dtype=np.int8)]
                n_rows += m
        rows = np.concatenate(rows_parts)
        cols = np.concatenate(cols_parts)
        vals = np.concatenate(vals_parts)
        return sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, self.n_cells))

    def check_additive(self, values: np.ndarray) -> bool:
        return bool(np.all(self.relations @ values == 0))


def membership(h: Hierarchy) -> np.ndarray:
    """Matrix M (codes × leaves): M[c, l] = 1 if leaf l lies under code c."""
    leaves = h.leaves
    li = {c: i for i, c in enumerate(leaves)}
    m = np.zeros((len(h.codes), len(leaves)), dtype=np.int64)
    for i, c in enumerate(h.codes):
        for leaf in h.leaves_under(c):
            m[i, li[leaf]] = 1
    return m


def aggregate(spec: TableSpec, inner: np.ndarray) -> np.ndarray:
    """Full cube (all codes) from the cube of inner cells (leaves only), summing along each axis."""
    cube = inner
    for axis, d in enumerate(spec.dimensions):
        m = membership(d.hierarchy)
        cube = np.moveaxis(np.tensordot(m, cube, axes=([1], [axis])), 0, axis)
    return cube


def read_cells(df: pd.DataFrame, spec: TableSpec, source: str | None = None) -> CellTable:
    """Validate a long-format table and build every cell of it.

    The frame holds one row per cell: one column per dimension (codes) and the measure. It may
    hold only inner cells (missing inner cells count 0) or totals too, which must then equal the
    sum of their parts. Raises :class:`InputError` at the first problem found.
    """
    dims = list(spec.dimension_names)
    measure = spec.measure
    expected = [*dims, measure]
    cols = [str(c) for c in df.columns]
    for c in expected:
        if c not in cols:
            raise InputError(R_("missing column %(name)s (expected columns: %(expected)s)"),
                             source=source, column=c, name=repr(c), expected=', '.join(expected))
    extra = [c for c in cols if c not in expected]
    if extra:
        raise InputError(R_("unexpected column %(name)s (expected columns: %(expected)s)"),
                         source=source, column=extra[0], name=repr(extra[0]), expected=', '.join(expected))
    if len(df) == 0:
        raise InputError(R_("the table has no rows"), source=source)

    hs = [d.hierarchy for d in spec.dimensions]
    idx = []
    for d, h in zip(dims, hs, strict=True):
        raw = df[d]
        codes = raw.astype("string").str.strip()
        cat = pd.Categorical(codes, categories=list(h.codes))
        bad = np.flatnonzero(cat.codes < 0)
        if len(bad):
            i = int(bad[0])
            val = raw.iloc[i]
            if pd.isna(val) or str(val).strip() == "":
                raise InputError(R_("is empty"), source=source, row=i + 2, column=d)
            raise InputError(R_("%(value)s is not a code of dimension %(dimension)s"), source=source,
                             row=i + 2, column=d, value=repr(str(val)), dimension=repr(d))
        idx.append(cat.codes.astype(np.int64))

    vals = df[measure]
    num = pd.to_numeric(vals.astype("string").str.strip(), errors="coerce")
    bad = np.flatnonzero(num.isna().to_numpy())
    if len(bad):
        i = int(bad[0])
        raw = vals.iloc[i]
        if pd.isna(raw) or str(raw).strip() == "":
            raise InputError(R_("the count is empty"), source=source, row=i + 2, column=measure)
        raise InputError(R_("the count %(value)s is not a number"), source=source, row=i + 2,
                         column=measure, value=repr(str(raw)[:40]))
    arr = num.to_numpy(dtype=float)
    frac = np.flatnonzero(arr != np.floor(arr))
    if len(frac):
        i = int(frac[0])
        raise InputError(R_("the count %(value)s is not a whole number"),
                         source=source, row=i + 2, column=measure, value=repr(str(vals.iloc[i]).strip()))
    neg = np.flatnonzero(arr < 0)
    if len(neg):
        i = int(neg[0])
        raise InputError(R_("the count %(value)s is negative"),
                         source=source, row=i + 2, column=measure, value=repr(str(vals.iloc[i]).strip()))
    if np.any(arr > 2**53):
        i = int(np.flatnonzero(arr > 2**53)[0])
        raise InputError(R_("the count is too large"), source=source, row=i + 2, column=measure)
    counts = arr.astype(np.int64)

    shape = tuple(len(h.codes) for h in hs)
    flat = np.ravel_multi_index(idx, shape)
    order = np.argsort(flat, kind="stable")
    sorted_flat = flat[order]
    dup = np.flatnonzero(sorted_flat[1:] == sorted_flat[:-1])
    if len(dup):
        a, b = sorted(int(x) for x in (order[dup[0]], order[dup[0] + 1]))
        codes = ", ".join(f"{d}={df[d].iloc[b]}" for d in dims)
        raise InputError(R_("duplicate cell (%(codes)s); first given at row %(first_row)s"),
                         source=source, row=b + 2, codes=codes, first_row=a + 2)

    leaf_masks = [np.array([h.is_leaf(c) for c in h.codes]) for h in hs]
    is_inner = np.ones(len(df), dtype=bool)
    for m, ix in zip(leaf_masks, idx, strict=True):
        is_inner &= m[ix]

    leaf_pos = []
    for h in hs:
        pos = np.full(len(h.codes), -1, dtype=np.int64)
        for j, c in enumerate(h.leaves):
            pos[h.codes.index(c)] = j
        leaf_pos.append(pos)
    inner_shape = tuple(len(h.leaves) for h in hs)
    inner = np.zeros(inner_shape, dtype=np.int64)
    sel = np.flatnonzero(is_inner)
    if len(sel) == 0:
        raise InputError(R_("the table has no inner cells (every row is a total)"), source=source)
    where = tuple(lp[ix[sel]] for lp, ix in zip(leaf_pos, idx, strict=True))
    inner[where] = counts[sel]
    given = np.zeros(inner_shape, dtype=bool)
    given[where] = True
    absent = np.flatnonzero(~given.reshape(-1))
    absent_cells = tuple(
        {h.name: h.leaves[j] for h, j in zip(hs, np.unravel_index(int(a), inner_shape),
                                              strict=True)}
        for a in absent[:ABSENT_LISTED])
    if len(absent) and spec.missing == "refuse":
        raise InputError(R_("the cell (%(codes)s) is absent from the table; every inner cell "
                            "must be given (the spec says missing: refuse; missing: zero takes "
                            "an absent cell as 0)"), source=source,
                         codes=", ".join(f"{d}={c}" for d, c in absent_cells[0].items()),
                         absent=len(absent))
    cube = aggregate(spec, inner).reshape(-1)

    tot_rows = np.flatnonzero(~is_inner)
    if len(tot_rows):
        given = counts[tot_rows]
        computed = cube[flat[tot_rows]]
        wrong = np.flatnonzero(given != computed)
        if len(wrong):
            i = int(tot_rows[wrong[0]])
            codes = ", ".join(f"{d}={df[d].iloc[i]}" for d in dims)
            if len(wrong) > 1:
                raise InputError(
                    R_("the total (%(codes)s) does not equal the sum of its parts (%(more)s more "
                       "total(s) do not add up either)"),
                    source=source, row=i + 2, column=measure, codes=codes, more=len(wrong) - 1)
            raise InputError(R_("the total (%(codes)s) does not equal the sum of its parts"),
                             source=source, row=i + 2, column=measure, codes=codes)
    return CellTable(spec=spec, values=cube, absent=len(absent), absent_cells=absent_cells)
