"""Reading and checking a protected table (the CSV ``publisher protect`` writes) against its spec.

Guarantees when :func:`read_protected` returns: the columns are exactly the dimensions,
``obs_value``, ``obs_status``, ``conf_status`` (and ``obs_moe`` for noise tables); every cell of
the table is present once (totals included); codes and flags are valid; the confidentiality check
holds (no value in a suppressed cell, a value in every free cell, ``obs_status`` Q exactly where
suppressed); and the published free cells add up wherever a total and all its parts are free.
Errors name file, row (header = row 1), column and reason, and never quote a cell's value.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from disclosure.methods import method_of, methods
from disclosure.spec import TableSpec
from disclosure.table import CellTable

from .errors import R_, PackageError, Word

_INT = re.compile(r"^-?\d{1,16}$")
_NUM = re.compile(r"^\d{1,16}(\.\d{1,16})?([eE][+-]?\d{1,3})?$")
MAX_BYTES = 512 * 1024 * 1024


@dataclass
class ProtectedRows:
    """The checked cells in publication order (hierarchy order, C order over dimensions)."""

    columns: list[str]
    rows: list[dict[str, Any]]  # obs_value: int | None; obs_moe: str (as given) | None
    counts: dict[str, int]  # cells, C, D
    additive: bool


def reserved_columns() -> tuple[str, ...]:
    """Names no dimension may take: the measure, the flags and every method's own columns."""
    return ("obs_value", "obs_status", "conf_status",
            *(c.name for m in methods() for c in m.columns))


def columns_for(spec: TableSpec) -> list[str]:
    clash = [d for d in spec.dimension_names if d in reserved_columns()]
    if clash:
        raise PackageError(R_("dimension %(name)s has the name of a published column; rename it"),
                           source=f"spec {spec.id}", name=repr(clash[0]))
    cols = [*spec.dimension_names, "obs_value", "obs_status", "conf_status"]
    cols += [c.name for c in method_of(spec).columns]
    return cols


def read_protected(spec: TableSpec, source: Path | str | bytes, *, name: str | None = None,
                   check_additivity: bool = True) -> ProtectedRows:
    """Read and check ``source``: a CSV file, or the CSV's bytes (``name`` names them in
    messages; it defaults to the path, or "protected table"). Raise :class:`PackageError` at the
    first problem."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        src = name or "protected table"
        if len(data) > MAX_BYTES:
            raise PackageError(R_("is larger than %(max_bytes)s MiB"), source=src, max_bytes=MAX_BYTES // 2**20)

        def text() -> IO[str]:
            return io.StringIO(data.decode("utf-8-sig"), newline="")
    else:
        path = Path(source)
        src = name or str(path)
        if not path.is_file():
            raise PackageError(R_("no such file"), source=src)
        if path.stat().st_size > MAX_BYTES:
            raise PackageError(R_("file is larger than %(max_bytes)s MiB"), source=src, max_bytes=MAX_BYTES // 2**20)

        def text() -> IO[str]:
            return path.open(encoding="utf-8-sig", newline="")
    try:
        with text() as fh:
            raw = list(csv.reader(fh, strict=True))
    except UnicodeDecodeError as e:
        raise PackageError(R_("is not UTF-8 text"), source=src) from e
    except csv.Error as e:
        raise PackageError(R_("is not valid CSV (%(detail)s)"), source=src, detail=str(e)) from e
    if not raw:
        raise PackageError(R_("is empty (no header)"), source=src, row=1)
    header = [h.strip() for h in raw[0]]
    expected = columns_for(spec)
    for c in expected:
        if c not in header:
            raise PackageError(R_("missing column %(name)s (expected: %(expected)s)"),
                               source=src, row=1, column=c, name=repr(c), expected=', '.join(expected))
    for c in header:
        if c not in expected:
            raise PackageError(R_("unexpected column %(name)s (expected: %(expected)s)"),
                               source=src, row=1, column=c[:60], name=repr(c[:60]), expected=', '.join(expected))
    if len(set(header)) != len(header):
        dup = next(c for c in header if header.count(c) > 1)
        raise PackageError(R_("column %(name)s appears twice"), source=src, row=1, column=dup, name=repr(dup))
    pos = {c: header.index(c) for c in expected}

    method_impl = method_of(spec)
    method = method_impl.label
    flags = method_impl.flags
    extra = method_impl.columns
    dims = list(spec.dimension_names)
    hs = [d.hierarchy for d in spec.dimensions]
    index = [{c: i for i, c in enumerate(h.codes)} for h in hs]
    shape = tuple(len(h.codes) for h in hs)
    n_cells = int(np.prod(shape))
    seen = np.full(n_cells, -1, dtype=np.int64)
    values = np.zeros(n_cells, dtype=np.int64)
    free = np.zeros(n_cells, dtype=bool)
    by_cell: list[dict[str, Any] | None] = [None] * n_cells
    counts = {"cells": n_cells, "C": 0, "D": 0}

    for i, r in enumerate(raw[1:], start=2):
        if not r or (len(r) == 1 and not r[0].strip()):
            raise PackageError(R_("blank line"), source=src, row=i)
        if len(r) != len(header):
            raise PackageError(R_("has %(cells)s cells, the header has %(header)s"),
                               source=src, row=i, cells=len(r), header=len(header))
        cell = [r[pos[c]].strip() for c in expected]
        rec = dict(zip(expected, cell, strict=True))
        idx = []
        for d, ix in zip(dims, index, strict=True):
            code = rec[d]
            if code not in ix:
                if not code:
                    raise PackageError(R_("is empty"), source=src, row=i, column=d)
                raise PackageError(R_("%(value)s is not a code of dimension %(dimension)s"),
                                   source=src, row=i, column=d, value=repr(code[:40]),
                                   dimension=repr(d))
            idx.append(ix[code])
        k = int(np.ravel_multi_index(idx, shape))
        if seen[k] >= 0:
            raise PackageError(R_("duplicate cell (%(codes)s); first given at row %(first_row)s"), source=src, row=i, codes=', '.join(f'{d}={rec[d]}' for d in dims), first_row=seen[k])
        seen[k] = i
        for col in ("obs_status", "conf_status"):
            if rec[col] not in flags[col]:
                raise PackageError(R_("flag %(flag)s is not allowed for a %(method)s table (allowed: %(flags)s)"), source=src, row=i,
                                   column=col, flag=repr(rec[col][:10]), method=Word(method), flags=', '.join(flags[col]))
        conf = rec["conf_status"]
        v = rec["obs_value"]
        if conf == "F":
            if v == "":
                raise PackageError(R_("a free cell (conf_status F) has no value; a free cell must "
                                   "carry its value"), source=src, row=i, column="obs_value")
            if not _INT.match(v):
                raise PackageError(R_("the value is not a whole number"), source=src, row=i,
                                   column="obs_value")
            val = int(v)
            if val < 0 and not method_impl.negative_values:
                raise PackageError(R_("the value is negative"), source=src, row=i, column="obs_value")
            if rec["obs_status"] != "A":
                raise PackageError(R_("a free cell must have obs_status A, not %(flag)s"),
                                   source=src, row=i, column="obs_status", flag=repr(rec['obs_status']))
            values[k] = val
            free[k] = True
        else:
            if v != "":
                # Never echo the value: it is the raw count of a confidential cell.
                raise PackageError(R_("a suppressed cell (conf_status %(conf)s) carries a value; refusing to package a leaked cell"), source=src, row=i,
                                   column="obs_value", conf=conf)
            if rec["obs_status"] != "Q":
                raise PackageError(R_("a suppressed cell must have obs_status Q, not %(flag)s"), source=src, row=i, column="obs_status", flag=repr(rec['obs_status']))
            counts[conf] += 1
            val = None
        out = {d: rec[d] for d in dims}
        out.update(obs_value=val, obs_status=rec["obs_status"], conf_status=conf)
        for col in extra:
            m = rec[col.name]
            if (conf == "F" or m) and (not _NUM.match(m) or not math.isfinite(float(m))):
                raise PackageError(R_("%(title)s: not a non-negative number"),
                                   source=src, row=i, column=col.name, title=Word(col.title.lower()))
            out[col.name] = m or None
        by_cell[k] = out

    missing = np.flatnonzero(seen < 0)
    if len(missing):
        codes = np.unravel_index(int(missing[0]), shape)
        what = ", ".join(f"{d}={h.codes[j]}" for d, h, j in zip(dims, hs, codes, strict=True))
        raise PackageError(R_("%(missing)s cell(s) missing, first (%(codes)s); a published table holds every cell, totals included"), source=src, missing=len(missing), codes=what)

    if check_additivity:
        _check_additive(spec, values, free, seen, src)
    rows = [r for r in by_cell if r is not None]
    return ProtectedRows(columns=expected, rows=rows, counts=counts, additive=check_additivity)


def _check_additive(spec: TableSpec, values: np.ndarray, free: np.ndarray, seen: np.ndarray,
                    src: str) -> None:
    """Where a total and all its parts are published, the total must equal their sum."""
    rel = CellTable(spec=spec, values=values).relations
    absrel = abs(rel)
    hidden = absrel @ (~free).astype(np.int64)
    resid = rel @ values
    bad = np.flatnonzero((hidden == 0) & (resid != 0))
    if len(bad):
        row = rel.getrow(int(bad[0]))
        parent = int(row.indices[row.data == 1][0])
        codes = CellTable(spec=spec, values=values).codes_of(parent)
        what = ", ".join(f"{d}={c}" for d, c in codes.items())
        if len(bad) > 1:
            raise PackageError(R_("the total (%(codes)s) does not equal the sum of its published "
                                  "parts (%(more)s more relation(s) fail too)"), source=src,
                               row=int(seen[parent]), column="obs_value", codes=what,
                               more=len(bad) - 1)
        raise PackageError(R_("the total (%(codes)s) does not equal the sum of its published parts"),
                           source=src, row=int(seen[parent]), column="obs_value", codes=what)
