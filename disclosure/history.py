"""Publication history: what is already public, and how a new table links to it.

The attacker holds every table already published (or approved for publication) from the same
data source (spec ``source_id``). A :class:`PublishedTable` is such a table: its raw counts (the
office's input, a :class:`~disclosure.table.CellTable`), its published status per cell (the
``conf_status`` column it was published with: ``F`` free, ``C`` primary, ``D`` secondary) and its
spec (``id``, ``version``, ``reference_period``, ``measure_type``, ``source_id``). Its pattern is
fixed: free cells are known constants, suppressed cells unknowns, and neither can change state.

:func:`link_history` ties the new table(s) and the published ones into ONE joint system for
:func:`disclosure.linked.build_problem` (a :class:`~disclosure.linked.TableLinks`):

* **Other tables of the same source and period** share cells by codes, exactly as ``--link`` does
  (one *group*; ``build_problem`` merges cells by their non-total codes within a group).
* **Versions of one table** (same ``id``, lower semantic version, same period): a cell with the
  same codes and the same raw value in both versions is ONE unknown; a changed cell is two
  (``build_problem`` splits a cell whose value differs between two tables of one series).
* **Periods** (ISO 8601 ``reference_period``: ``2024``, ``2024-Q1``, ``2024-01``, ``2024-01-15``,
  or an interval ``START/END`` of two of those):

  - ``measure_type: stock`` (the value at the end of the period): tables whose periods end on the
    same day are one group, so the quarter's cell IS its last month's cell (one unknown; their raw
    values must agree);
  - ``measure_type: flow`` (a longer period is the sum of the periods it contains): for a period
    ``P`` the published periods of the source inside it that are not inside another one (its
    largest published sub-periods) give, per cell, ``x_P = sum of x_sub``. When they tile ``P``
    exactly this is an equality. When they do not (a *partial* partition, e.g. two months of a
    quarter), the attacker still knows ``x_P = sum of the published sub-periods + r`` with an
    unknown remainder ``r >= 0`` (flows are counts), so a never-published remainder cell is added
    per cell; no unpublished period is invented otherwise. Two flow periods that overlap without
    one containing the other are refused (no relation is modelled for them).

  ``measure_type`` is required when a source has tables of several periods.

Tables of another source are not linked to the new table (nothing ties them), and are reported
as such. Pure: no files, no network.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

import numpy as np

from .errors import R_, AshyqError
from .linked import SumLink, TableLinks
from .spec import TOTAL, TableSpec, parse_semver
from .table import CellTable

#: the factor applied to the suppression cost of a cell suppressed in the previous version
#: (a correction keeps its previous pattern wherever it can)
PREVIOUS_PATTERN_COST = 0.01


class HistoryError(AshyqError):
    """A publication history that cannot be linked (bad period, versions, measure type)."""


# -- periods ----------------------------------------------------------------------------------

_PERIOD = re.compile(r"^(\d{4})(?:-(?:Q([1-4])|(\d{2})(?:-(\d{2}))?))?$")
KINDS = ("year", "quarter", "month", "day", "interval")


@dataclass(frozen=True)
class Period:
    """A calendar period: first and last day (inclusive), and the ISO 8601 text it came from."""

    start: date
    end: date
    text: str
    kind: str

    def contains(self, other: Period) -> bool:
        """True when ``other`` lies inside this period and is not the same period."""
        return (self.start <= other.start and other.end <= self.end
                and (self.start, self.end) != (other.start, other.end))

    def overlaps(self, other: Period) -> bool:
        return self.start <= other.end and other.start <= self.end

    def same_span(self, other: Period) -> bool:
        return (self.start, self.end) == (other.start, other.end)


def _one(text: str) -> Period | None:
    m = _PERIOD.match(text)
    if not m:
        return None
    y, q, mo, d = m.groups()
    year = int(y)
    try:
        if q:
            first = 3 * (int(q) - 1) + 1
            return Period(date(year, first, 1),
                          date(year, first + 2, calendar.monthrange(year, first + 2)[1]),
                          text, "quarter")
        if mo and d:
            day = date(year, int(mo), int(d))
            return Period(day, day, text, "day")
        if mo:
            month = int(mo)
            return Period(date(year, month, 1),
                          date(year, month, calendar.monthrange(year, month)[1]), text, "month")
        return Period(date(year, 1, 1), date(year, 12, 31), text, "year")
    except ValueError:
        return None


def parse_period(text: str, *, source: str | None = None) -> Period:
    """An ISO 8601 period: ``2024``, ``2024-Q1``, ``2024-01``, ``2024-01-15`` or ``A/B``.

    Raises :class:`HistoryError` naming the key ``reference_period`` for anything else.
    """
    s = str(text).strip()
    if "/" in s:
        a, _, b = s.partition("/")
        pa, pb = _one(a.strip()), _one(b.strip())
        if pa and pb and pa.start <= pb.end:
            return Period(pa.start, pb.end, s, "interval")
    else:
        p = _one(s)
        if p:
            return p
    raise HistoryError(R_("key reference_period: %(s)s is not an ISO 8601 period (give 2024, 2024-Q1, 2024-01, 2024-01-15, or START/END of two of those)"),
                       source=source, s=repr(s[:40]))


def period_of(spec: TableSpec, *, source: str | None = None) -> Period | None:
    """The spec's ``reference_period`` as a :class:`Period` (None when the spec has none).

    A text per language is accepted when one of its texts is an ISO 8601 period (the others may
    be words for it); otherwise refused naming the key.
    """
    raw = spec.metadata.get("reference_period")
    if raw is None or raw == "":
        return None
    src = source or f"spec {spec.id}"
    if isinstance(raw, dict):
        for v in raw.values():
            try:
                return parse_period(str(v), source=src)
            except HistoryError:
                continue
        raise HistoryError(R_("key reference_period: none of its texts is an ISO 8601 period "
                           "(give 2024, 2024-Q1, 2024-01 or 2024-01-15)"), source=src)
    return parse_period(str(raw), source=src)


# -- published tables ---------------------------------------------------------------------------

@dataclass
class PublishedTable:
    """A table already public: raw counts, the fixed published status per cell, and its spec.

    ``conf_status`` holds ``F``/``C``/``D`` per cell of ``table`` (flat, C order, every cell);
    ``source`` names where it came from (a file, a release) in messages.
    """

    table: CellTable
    conf_status: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        cs = np.asarray(self.conf_status).astype("<U1")
        if cs.shape != (self.table.n_cells,):
            raise HistoryError(R_("the published status has %(size)s cells, the table %(n_cells)s"), source=self.where, size=cs.size, n_cells=self.table.n_cells)
        bad = ~np.isin(cs, ("F", "C", "D"))
        if bad.any():
            raise HistoryError(R_("conf_status %(cs)s is not F, C or D"),
                               source=self.where, cs=repr(cs[bad][0]))
        self.conf_status = cs

    @property
    def spec(self) -> TableSpec:
        return self.table.spec

    @property
    def where(self) -> str:
        return self.source or f"published table {self.spec.id} {self.spec.version}"

    @property
    def suppressed(self) -> np.ndarray:
        return self.conf_status != "F"

    @property
    def primary(self) -> np.ndarray:
        return self.conf_status == "C"

    @property
    def label(self) -> str:
        return f"{self.spec.id} {self.spec.version}"


def source_of(spec: TableSpec) -> str:
    """The data source a table comes from (``source_id``; empty when the spec names none)."""
    return str(spec.metadata.get("source_id") or "")


@dataclass
class History:
    """The joint system's links plus what the report says about them."""

    links: TableLinks
    tables: list[CellTable]  # the new tables first (their order), then the linked published ones
    published: list[PublishedTable]  # the linked published tables, in ``tables`` order
    covered: list[dict]
    ignored: list[dict]
    previous: list[PublishedTable | None]  # per new table: its previous version, if published
    relations_used: list[str]

    def attacker_model(self) -> str:
        """The attacker model in English: the published set and the relations used."""
        if not self.covered:
            base = ("The attacker holds this release's tables only: no earlier publication of "
                    "the source was given.")
        else:
            names = "; ".join(f"{c['id']} {c['version']}"
                              + (f" ({c['reference_period']})" if c["reference_period"] else "")
                              for c in self.covered)
            base = (f"The attacker holds this release and every earlier publication given for "
                    f"its source ({len(self.covered)} table(s): {names}): their published "
                    "values are known constants, their suppressed cells unknowns, their "
                    "patterns fixed.")
        rel = (" Relations used: every table's additive relations (each total = the sum of its "
               "parts); " + "; ".join(self.relations_used) + "." if self.relations_used else
               " Relations used: every table's additive relations (each total = the sum of its "
               "parts).")
        tail = (" Each cell lies in 0 <= x <= the grand total of its table; the attacker solves "
                "linear programs over real numbers. Not modelled: tables not handed in, "
                "publications of other sources, knowledge from outside the published tables, "
                "integrality of counts.")
        if self.ignored:
            tail += (" Given but not linked (another source): "
                     + ", ".join(f"{c['id']} {c['version']}" for c in self.ignored) + ".")
        return base + rel + tail


def _ver(spec: TableSpec, src: str) -> tuple:
    try:
        return parse_semver(spec.version)
    except ValueError:
        raise HistoryError(R_("key version: %(version)s is not a semantic version"),
                           source=src, version=repr(spec.version[:40])) from None


def link_history(tables: list[CellTable], published: list[PublishedTable]) -> History:
    """The links of the new ``tables`` (one release) to the ``published`` ones.

    Raises :class:`HistoryError` (one line, naming the file or spec and the key) for a period that
    is not ISO 8601, a source with several periods and no ``measure_type``, flow periods that
    overlap without nesting, a published table of the same ``id`` whose version is not lower than
    the new one's, or the same published table given twice.
    """
    if not tables:
        raise ValueError("no tables to protect")
    srcs = {source_of(t.spec) for t in tables}
    new_where = [f"spec {t.spec.id}" for t in tables]
    linked: list[PublishedTable] = []
    ignored: list[dict] = []
    for p in published:
        if source_of(p.spec) in srcs or p.spec.id in {t.spec.id for t in tables}:
            linked.append(p)
        else:
            ignored.append(_describe(p))
    # versions: a published table of the same id must have a lower version; no duplicates
    seen: dict[tuple[str, str], str] = {}
    for p in linked:
        key = (p.spec.id, p.spec.version)
        if key in seen:
            raise HistoryError(R_("key version: %(label)s is given twice (also %(seen)s)"),
                               source=p.where, label=p.label, seen=seen[key])
        seen[key] = p.where
        for t, w in zip(tables, new_where, strict=True):
            if p.spec.id == t.spec.id and _ver(p.spec, p.where) >= _ver(t.spec, w):
                raise HistoryError(
                    R_("key version: the published version %(version)s of %(id)s is not lower than the version protected now (%(version2)s)"),
                    source=p.where, version=p.spec.version, id=repr(p.spec.id), version2=t.spec.version)
    linked.sort(key=lambda p: (p.spec.id, _ver(p.spec, p.where)))  # oldest version first
    every = list(tables) + [p.table for p in linked]
    wheres = new_where + [p.where for p in linked]
    periods = [period_of(t.spec, source=w) for t, w in zip(every, wheres, strict=True)]
    sources = [source_of(t.spec) for t in every]
    # a source (or a series without source_id) with several periods needs measure_type
    measure: list[str] = []
    for i, t in enumerate(every):
        same = [j for j in range(len(every)) if sources[j] == sources[i]]
        spans = {None if periods[j] is None else (periods[j].start, periods[j].end) for j in same}
        mt = str(t.spec.metadata.get("measure_type") or "")
        if len(spans) > 1:
            if None in spans:
                j = next(j for j in same if periods[j] is None)
                raise HistoryError(R_("key reference_period: missing, while other tables of the source %(value)s have one"),
                                   source=wheres[j], value=repr(sources[i] or '(unnamed)'))
            if not mt:
                raise HistoryError(R_("key measure_type: required (flow or stock): the source %(value)s has tables of several periods"), source=wheres[i], value=repr(sources[i] or '(unnamed)'))
        measure.append(mt)
    groups: list[str] = []
    for i in range(len(every)):
        p = periods[i]
        if p is None:
            span = "-"
        elif measure[i] == "stock":
            span = f"end {p.end.isoformat()}"
        else:
            span = f"{p.start.isoformat()}..{p.end.isoformat()}"
        groups.append(f"{sources[i]}|{measure[i]}|{span}")
    relations_used: list[str] = []
    # versions
    if any(p.spec.id == t.spec.id for p in linked for t in tables):
        relations_used.append("a cell with the same codes and the same raw value in two versions "
                              "of one table is one unknown, a changed cell two")
    if len(set(groups)) < len(groups):
        relations_used.append("tables of one source and period share a cell when their "
                              "non-total codes agree (as --link)")
    # flows: x_P = sum of P's largest published sub-periods (+ a remainder when they do not tile)
    sums: list[SumLink] = []
    flow_groups: dict[str, Period] = {}
    for i in range(len(every)):
        if measure[i] == "flow" and periods[i] is not None:
            flow_groups.setdefault(groups[i], periods[i])
    for g, p in flow_groups.items():
        src = g.split("|", 1)[0]
        inside = []
        for g2, q in flow_groups.items():
            if g2 == g or g2.split("|", 1)[0] != src:
                continue
            if p.contains(q):
                inside.append((g2, q))
            elif p.overlaps(q) and not q.contains(p):
                i = groups.index(g2)
                raise HistoryError(R_("key reference_period: the flow periods %(text)s and %(text2)s of source %(value)s overlap without one containing the other"), source=wheres[i], text=repr(q.text), text2=repr(p.text), value=repr(src or '(unnamed)'))
        top = [(g2, q) for g2, q in inside
               if not any(r.contains(q) for _, r in inside)]
        if not top:
            continue
        top.sort(key=lambda x: x[1].start)
        days = sum((q.end - q.start).days + 1 for _, q in top)
        complete = days == (p.end - p.start).days + 1
        sums.append(SumLink(total=g, parts=[g2 for g2, _ in top], complete=complete,
                            label=p.text, part_labels=[q.text for _, q in top]))
    if sums:
        full = [s for s in sums if s.complete]
        part = [s for s in sums if not s.complete]
        if full:
            relations_used.append("flows: a period's cell equals the sum of the same cell in the "
                                  "published periods that tile it ("
                                  + ", ".join(f"{s.label} = {' + '.join(s.part_labels)}"
                                              for s in full[:6])
                                  + (", ..." if len(full) > 6 else "") + ")")
        if part:
            relations_used.append("flows: where the published sub-periods do not tile a period, "
                                  "its cell equals their sum plus an unknown non-negative "
                                  "remainder (" + ", ".join(
                                      f"{s.label} >= {' + '.join(s.part_labels)}"
                                      for s in part[:6]) + (", ..." if len(part) > 6 else "")
                                  + ")")
    if any(m == "stock" for m in measure) and len({periods[i] for i in range(len(every))
                                                    if measure[i] == "stock"}) > 1:
        relations_used.append("stocks: the value at the end of a period is the value at the end "
                              "of its last sub-period (one unknown)")
    fixed: list[np.ndarray | None] = [None] * len(tables) + [p.suppressed for p in linked]
    primary: list[np.ndarray | None] = [None] * len(tables) + [p.primary for p in linked]
    series = [t.spec.id for t in every]
    owners = [None] * len(tables) + [
        p.label + (f" ({periods[len(tables) + k].text})" if periods[len(tables) + k] else "")
        for k, p in enumerate(linked)]
    # a correction keeps the previous version's pattern: cheap to suppress again
    previous: list[PublishedTable | None] = []
    prefer: list[np.ndarray | None] = []
    for t in tables:
        prev = [p for p in linked if p.spec.id == t.spec.id]
        prev.sort(key=lambda p: _ver(p.spec, p.where))
        pv = prev[-1] if prev else None
        previous.append(pv)
        prefer.append(None if pv is None else previous_suppressed(t, pv))
    prefer += [None] * len(linked)
    links = TableLinks(groups=groups, series=series, fixed=fixed, fixed_primary=primary,
                       sums=sums, owners=owners, prefer=prefer,
                       prefer_factor=PREVIOUS_PATTERN_COST)
    return History(links=links, tables=every, published=linked,
                   covered=[_describe(p) for p in linked], ignored=ignored, previous=previous,
                   relations_used=relations_used)


def _describe(p: PublishedTable) -> dict:
    per = p.spec.metadata.get("reference_period")
    try:
        text = period_of(p.spec, source=p.where)
        per_text = text.text if text else None
    except HistoryError:
        per_text = str(per) if per is not None else None
    return {"id": p.spec.id, "version": p.spec.version, "reference_period": per_text}


def _key_index(table: CellTable) -> dict[tuple, int]:
    names = [h.name for h in table.hierarchies]
    codes = [np.asarray(h.codes, dtype=object) for h in table.hierarchies]
    grids = table.code_arrays()
    out = {}
    for i in range(table.n_cells):
        out[tuple(sorted((names[d], codes[d][grids[d][i]]) for d in range(len(names))
                         if codes[d][grids[d][i]] != TOTAL))] = i
    return out


def previous_suppressed(table: CellTable, prev: PublishedTable) -> np.ndarray:
    """Cells of ``table`` suppressed in the previous version ``prev`` (matched by codes)."""
    idx = _key_index(prev.table)
    mine = _key_index(table)
    out = np.zeros(table.n_cells, dtype=bool)
    sup = prev.suppressed
    for k, i in mine.items():
        j = idx.get(k)
        if j is not None and sup[j]:
            out[i] = True
    return out


def count_flips(table: CellTable, suppressed: np.ndarray, prev: PublishedTable) -> int:
    """Cells present in both versions whose state (published / suppressed) differs."""
    idx = _key_index(prev.table)
    sup = prev.suppressed
    n = 0
    for k, i in _key_index(table).items():
        j = idx.get(k)
        if j is not None and bool(sup[j]) != bool(suppressed[i]):
            n += 1
    return n


__all__ = ["History", "HistoryError", "Period", "PublishedTable", "count_flips",
           "link_history", "parse_period", "period_of", "previous_suppressed", "source_of"]
