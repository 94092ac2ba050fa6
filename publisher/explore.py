"""The explorer's engine: pick values, pivot any variable to rows or columns, fold and unfold
hierarchies — over the *protected* table of one published version only.

Pure (numpy/pandas in, dataclasses out; no Flask, DB or files). A published table already holds
every cell and every marginal total, so a view never adds anything up: it *selects* cells of a
dense cube (one axis per dimension, codes in code-list order), which takes microseconds even on a
table of 500,000 cells. Suppressed cells stay suppressed (``NaN`` value, their flag kept); no
value is ever guessed for them. :class:`CubeCache` keeps the cube of each version in memory so a
request does not re-read the table.

A view in a URL (the explorer's address is shareable and restores the view)::

    ?rows=region&cols=sex&c.region=_T,71,7101&c.sex=_T,F,M&c.age=_T&moe=1&chart=bar

``rows``/``cols``: dimensions on each axis (comma-separated, in order); ``c.<dimension>``: the
chosen codes of that dimension (a dimension on no axis has exactly one); ``moe=1`` shows the
margins of error of a noise table; ``chart``: ``bar``, ``line`` or ``none``.
"""

from __future__ import annotations

import io
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from disclosure.errors import R_, AshyqError

TOTAL = "_T"
LANGS = ("kk", "ru", "en")
# conf_status as small integers in the cube (0: no such cell in the table)
MISSING, FREE, PRIMARY, SECONDARY = 0, 1, 2, 3
STATUS_CODE = {"F": FREE, "C": PRIMARY, "D": SECONDARY}
STATUS_LETTER = {FREE: "F", PRIMARY: "C", SECONDARY: "D", MISSING: ""}
CHARTS = ("bar", "line", "none")
RESERVED = {"rows", "cols", "moe", "chart", "lang", "bom"}
MAX_CODES_IN_URL = 5000


class ViewError(AshyqError):
    """A view that cannot be shown as asked (unknown variable or code, a bad layout). ``kind``
    says which; ``http_status`` 400 (the address is wrong, not the data)."""

    http_status = 400
    code = "bad_view"


class ViewTooLarge(AshyqError):
    """A view with more cells than a page shows; ``cells`` and ``limit`` say how many."""

    http_status = 413
    code = "view_too_large"

    def __init__(self, cells: int, limit: int):
        super().__init__(R_("This view has %(cells)s cells; a page shows at most %(limit)s."),
                         cells=f"{cells:,}".replace(",", " "),
                         limit=f"{limit:,}".replace(",", " "))
        self.cells, self.limit = cells, limit


@dataclass(frozen=True)
class Dim:
    """One dimension: codes in code-list order (a parent before its children), parents, levels
    and kk/ru/en labels and title."""

    name: str
    codes: tuple[str, ...]
    parent: dict[str, str]
    labels: dict[str, dict[str, str]]
    title: dict[str, str] = field(default_factory=dict)
    role: str | None = None  # "geo", "time" or None

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {c: i for i, c in enumerate(self.codes)})
        kids: dict[str, list[str]] = {}
        for c in self.codes:
            p = self.parent.get(c, "")
            if p:
                kids.setdefault(p, []).append(c)
        object.__setattr__(self, "children", {k: tuple(v) for k, v in kids.items()})
        level: dict[str, int] = {}
        for c in self.codes:
            p = self.parent.get(c, "")
            level[c] = level.get(p, -1) + 1 if p else 0
        object.__setattr__(self, "level", level)
        # a hierarchy below the first level (flat dimensions get no fold/unfold buttons)
        object.__setattr__(self, "hierarchical", any(v > 1 for v in level.values()))

    index: dict[str, int] = field(init=False, repr=False, compare=False)
    children: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    level: dict[str, int] = field(init=False, repr=False, compare=False)
    hierarchical: bool = field(init=False, repr=False, compare=False)

    def label(self, code: str, lang: str) -> str:
        lab = self.labels.get(code) or {}
        return str(lab.get(lang) or lab.get("en") or code)

    def title_in(self, lang: str) -> str:
        return str(self.title.get(lang) or self.title.get("en") or self.name)

    def top(self) -> tuple[str, ...]:
        """The total and the first level under it (the folded default)."""
        roots = [c for c in self.codes if not self.parent.get(c)]
        out: list[str] = []
        for r in roots:
            out.append(r)
            out.extend(self.children.get(r, ()))
        return tuple(sorted(set(out), key=self.index.__getitem__))

    def descendants(self, code: str) -> set[str]:
        out: set[str] = set()
        stack = list(self.children.get(code, ()))
        while stack:
            c = stack.pop()
            out.add(c)
            stack.extend(self.children.get(c, ()))
        return out


@dataclass
class Cube:
    """Every cell of one protected table as dense arrays, one axis per dimension."""

    dims: tuple[Dim, ...]
    value: np.ndarray   # float64, NaN where suppressed or absent
    status: np.ndarray  # int8: MISSING, FREE, PRIMARY, SECONDARY
    moe: np.ndarray | None = None  # float64 margins of error (noise tables)
    cells: int = 0      # cells present in the table

    def dim(self, name: str) -> Dim:
        for d in self.dims:
            if d.name == name:
                return d
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dims)

    @property
    def nbytes(self) -> int:
        return int(self.value.nbytes + self.status.nbytes + (self.moe.nbytes if self.moe is not None else 0))


def build_cube(csv_bytes: bytes, dims: Iterable[Dim], *, measure: str = "obs_value") -> Cube:
    """The cube of a protected CSV (dimension columns, ``obs_value``, ``obs_status``,
    ``conf_status``[, ``obs_moe``]). Rows whose codes are not in the code lists are dropped."""
    dims = tuple(dims)
    names = [d.name for d in dims]
    df = pd.read_csv(io.BytesIO(csv_bytes), dtype={n: str for n in names} | {"conf_status": str},
                     keep_default_na=False, na_values={measure: [""], "obs_moe": [""]})
    shape = tuple(len(d.codes) for d in dims)
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    codes = []
    keep = np.ones(len(df), dtype=bool)
    for d in dims:
        cat = pd.Categorical(df[d.name].str.strip(), categories=list(d.codes)).codes
        keep &= cat >= 0
        codes.append(cat)
    flat = np.ravel_multi_index([c[keep] for c in codes], shape) if dims else np.zeros(
        int(keep.sum()), dtype=np.int64)
    value = np.full(size, np.nan)
    status = np.zeros(size, dtype=np.int8)
    vals = pd.to_numeric(df[measure], errors="coerce").to_numpy(dtype=float)[keep]
    conf = df["conf_status"].str.strip().map(STATUS_CODE).fillna(FREE).to_numpy(dtype=np.int8)[keep]
    # a value is published only where the cell is free: never trust a number in a suppressed row
    vals = np.where(conf == FREE, vals, np.nan)
    value[flat] = vals
    status[flat] = conf
    moe = None
    if "obs_moe" in df.columns:
        moe = np.full(size, np.nan)
        moe[flat] = pd.to_numeric(df["obs_moe"], errors="coerce").to_numpy(dtype=float)[keep]
        moe = moe.reshape(shape)
    return Cube(dims=dims, value=value.reshape(shape), status=status.reshape(shape), moe=moe,
                cells=int(keep.sum()))


@dataclass(frozen=True)
class View:
    """What the reader asked to see: dimensions on rows and columns, chosen codes of each."""

    rows: tuple[str, ...]
    cols: tuple[str, ...]
    select: dict[str, tuple[str, ...]]
    moe: bool = False
    chart: str = "bar"

    @property
    def filters(self) -> tuple[str, ...]:
        return tuple(d for d in self.select if d not in self.rows and d not in self.cols)

    def n_cells(self) -> int:
        n = 1
        for d in self.rows + self.cols:
            n *= len(self.select[d])
        return n

    def query(self, **changes: Any) -> dict[str, str]:
        """The URL query of this view (``changes`` as for :func:`dataclasses.replace`)."""
        v = replace(self, **changes) if changes else self
        q = {"rows": ",".join(v.rows), "cols": ",".join(v.cols)}
        for d, codes in v.select.items():
            q[f"c.{d}"] = ",".join(codes)
        if v.moe:
            q["moe"] = "1"
        if v.chart != "bar":
            q["chart"] = v.chart
        return q


def _names(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def default_view(cube: Cube) -> View:
    """The first dimension in rows, the last in columns (folded to the first level), every other
    dimension at its total."""
    names = cube.names
    rows = names[:1]
    cols = names[-1:] if len(names) > 1 else ()
    select = {}
    for d in cube.dims:
        if d.name in rows or d.name in cols:
            select[d.name] = d.top()
        else:
            select[d.name] = (TOTAL,) if TOTAL in d.index else d.codes[:1]
    return View(rows=rows, cols=cols, select=select)


def parse_view(cube: Cube, args: Mapping[str, Any], lang: str = "en") -> View:
    """The view an explorer URL asks for; :class:`ViewError` names an unknown variable or code
    (variables by their title in ``lang``; nothing of the table's values)."""
    base = default_view(cube)
    known = set(cube.names)
    for key in args:
        if key.startswith("c.") and key[2:] not in known:
            raise ViewError(R_("There is no variable %(name)s in this table."), name=repr(key[2:64]))
    given_axes = "rows" in args or "cols" in args
    rows = tuple(_names(args.get("rows"))) if given_axes else base.rows
    cols = tuple(_names(args.get("cols"))) if given_axes else base.cols
    for name in rows + cols:
        if name not in known:
            raise ViewError(R_("There is no variable %(name)s in this table."), name=repr(name[:64]))
    if len(set(rows + cols)) != len(rows + cols):
        raise ViewError(R_("A variable can be in the rows or in the columns, not in both."))
    select: dict[str, tuple[str, ...]] = {}
    for d in cube.dims:
        raw = args.get(f"c.{d.name}")
        on_axis = d.name in rows or d.name in cols
        if raw is None:
            if on_axis:
                select[d.name] = d.top()
            else:
                select[d.name] = base.select[d.name] if d.name in base.filters else (
                    (TOTAL,) if TOTAL in d.index else d.codes[:1])
            continue
        codes = _names(raw)[:MAX_CODES_IN_URL]
        if not codes:
            raise ViewError(R_("Choose at least one value of %(dim)s."), dim=d.title_in(lang))
        for c in codes:
            if c not in d.index:
                raise ViewError(R_("%(dim)s has no code %(code)s."), dim=d.title_in(lang),
                                code=repr(c[:64]))
        # code-list order, each code once: a hierarchy always reads parent before children
        ordered = tuple(sorted(set(codes), key=d.index.__getitem__))
        if not on_axis and len(ordered) > 1:
            raise ViewError(R_("Put %(dim)s in the rows or the columns to show several of its "
                               "values."), dim=d.title_in(lang))
        select[d.name] = ordered
    moe = str(args.get("moe", "")) in ("1", "true", "on") and cube.moe is not None
    chart = str(args.get("chart") or "bar")
    if chart not in CHARTS:
        raise ViewError(R_("Unknown chart type %(chart)s (bar, line or none)."),
                        chart=repr(chart[:20]))
    return View(rows=rows, cols=cols, select=select, moe=moe, chart=chart)


def toggled(view: View, cube: Cube, dim: str, code: str) -> View:
    """The view with ``code``'s children shown (unfold) or its descendants hidden (fold)."""
    d = cube.dim(dim)
    chosen = set(view.select[dim])
    below = d.descendants(code)
    if chosen & below:
        chosen -= below
    else:
        chosen |= set(d.children.get(code, ()))
    ordered = tuple(sorted(chosen, key=d.index.__getitem__))
    return replace(view, select={**view.select, dim: ordered})


def can_unfold(d: Dim, code: str) -> bool:
    """Whether a row or column of ``code`` gets a fold/unfold button (hierarchies only)."""
    return d.hierarchical and bool(d.children.get(code))


@dataclass
class Grid:
    """One view's cells as a crosstab: ``value``/``status``/``moe`` are (rows, columns)."""

    view: View
    row_keys: list[tuple[str, ...]]
    col_keys: list[tuple[str, ...]]
    value: np.ndarray
    status: np.ndarray
    moe: np.ndarray | None

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.row_keys), len(self.col_keys)

    def cells(self) -> Iterable[tuple[tuple[str, ...], tuple[str, ...], float, int, float | None]]:
        """(row codes, column codes, value, status, moe) for every cell, row by row."""
        for i, rk in enumerate(self.row_keys):
            for j, ck in enumerate(self.col_keys):
                m = None if self.moe is None else float(self.moe[i, j])
                yield rk, ck, float(self.value[i, j]), int(self.status[i, j]), m


def compute(cube: Cube, view: View, *, max_cells: int | None = None) -> Grid:
    """The crosstab of ``view``: a selection of the cube (no sums: every total is published)."""
    n = view.n_cells()
    if max_cells is not None and n > max_cells:
        raise ViewTooLarge(n, max_cells)
    idx = [np.array([d.index[c] for c in view.select[d.name]], dtype=np.intp) for d in cube.dims]
    order = [cube.names.index(n) for n in view.rows + view.cols + view.filters]
    sub_ix = np.ix_(*idx)

    def take(a: np.ndarray) -> np.ndarray:
        s = a[sub_ix].transpose(order)
        r = int(np.prod([len(view.select[d]) for d in view.rows], dtype=np.int64))
        return s.reshape(r, -1)

    row_keys = list(itertools.product(*[view.select[d] for d in view.rows])) or [()]
    col_keys = list(itertools.product(*[view.select[d] for d in view.cols])) or [()]
    return Grid(view=view, row_keys=row_keys, col_keys=col_keys, value=take(cube.value),
                status=take(cube.status),
                moe=take(cube.moe) if (cube.moe is not None and view.moe) else None)


def cell(cube: Cube, codes: Mapping[str, str]) -> tuple[float, int]:
    """(value, status) of one cell; dimensions not given are at their total."""
    ix = tuple(d.index.get(codes.get(d.name, TOTAL), d.index.get(TOTAL, 0)) for d in cube.dims)
    return float(cube.value[ix]), int(cube.status[ix])


def series_over(cube: Cube, dim: str, codes: Iterable[str], fixed: Mapping[str, str]
                ) -> list[tuple[str, float, int]]:
    """(code, value, status) of ``codes`` of ``dim`` with every other dimension as ``fixed``
    (or its total): e.g. the regions of a map."""
    out = []
    d = cube.dim(dim)
    for c in codes:
        if c in d.index:
            v, s = cell(cube, {**fixed, dim: c})
            out.append((c, v, s))
    return out


def save_arrays(cube: Cube, path: Any) -> None:
    """Write the cube's arrays (published values and flags only) to ``path`` (.npz), atomically."""
    import os
    import tempfile
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            arrays = {"value": cube.value, "status": cube.status,
                      "cells": np.array([cube.cells])}
            if cube.moe is not None:
                arrays["moe"] = cube.moe
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_arrays(path: Any, dims: Iterable[Dim]) -> Cube | None:
    """The cube saved by :func:`save_arrays` for these dimensions, or None when the file is
    missing, unreadable or of another shape."""
    dims = tuple(dims)
    shape = tuple(len(d.codes) for d in dims)
    try:
        with np.load(path, allow_pickle=False) as z:
            value, status = z["value"], z["status"]
            moe = z["moe"] if "moe" in z.files else None
            cells = int(z["cells"][0])
    except (OSError, ValueError, KeyError):
        return None
    if value.shape != shape or status.shape != shape or (moe is not None and moe.shape != shape):
        return None
    return Cube(dims=dims, value=value, status=status.astype(np.int8), moe=moe, cells=cells)


def diff(before: Cube, after: Cube, *, limit: int = 200) -> dict[str, Any] | None:
    """Cell-by-cell difference of two versions with the same dimensions and codes (value or flag
    changed), in the form of :func:`publisher.web.present.diff`; None when the code lists differ
    (the caller then compares the tables row by row)."""
    if before.names != after.names or any(a.codes != b.codes for a, b in
                                          zip(before.dims, after.dims, strict=True)):
        return None
    both = (before.status != MISSING) & (after.status != MISSING)
    same_value = (before.value == after.value) | (np.isnan(before.value) & np.isnan(after.value))
    changed = both & ((before.status != after.status) | ~same_value)
    flat = np.flatnonzero(changed)
    rows = []
    for i in flat[:limit]:
        ix = np.unravel_index(i, after.value.shape)
        b, a = before.value[ix], after.value[ix]
        rows.append({"codes": {d.name: d.codes[k] for d, k in zip(after.dims, ix, strict=True)},
                     "before": None if np.isnan(b) else (int(b) if float(b).is_integer() else float(b)),
                     "after": None if np.isnan(a) else (int(a) if float(a).is_integer() else float(a)),
                     "status_before": STATUS_LETTER[int(before.status[ix])],
                     "status_after": STATUS_LETTER[int(after.status[ix])]})
    return {"schema_changed": False, "added": int(((after.status != MISSING) & (before.status == MISSING)).sum()),
            "removed": int(((before.status != MISSING) & (after.status == MISSING)).sum()),
            "changed_count": int(flat.size), "changed": rows}


class CubeCache:
    """An in-memory LRU of cubes, keyed by what identifies one immutable published table.
    ``maxbytes`` bounds the memory held (the newest cube is always kept)."""

    def __init__(self, maxsize: int = 16, maxbytes: int = 512 * 1024 * 1024):
        self.maxsize, self.maxbytes = maxsize, maxbytes
        self._items: OrderedDict[Any, Cube] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Any, build: Callable[[], Cube]) -> Cube:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
        cube = build()  # outside the lock: a slow build does not stall other versions
        with self._lock:
            self.misses += 1
            self._items[key] = cube
            self._items.move_to_end(key)
            while len(self._items) > 1 and (len(self._items) > self.maxsize or sum(
                    c.nbytes for c in self._items.values()) > self.maxbytes):
                self._items.popitem(last=False)
        return cube

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


CACHE = CubeCache()
