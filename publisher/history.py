"""The publication history of a data source, read from the store.

The attacker holds every table of a source that was ever made public or is about to be: releases
published (and later superseded, corrected or withdrawn — a withdrawn file was downloadable),
approved or scheduled for publication, and answers to data requests delivered privately. This
module turns those into :class:`disclosure.history.PublishedTable` for the protection of a new
table of the same source (``spec.metadata.source_id``, compared in its registered form), and tells
whether a protected release's audit still covers its source's history when it is approved.

Releases protected with a noise method are not part of a suppression history: their published
values are noisy, not the raw counts, so they are neither known constants nor suppressed
unknowns of the joint system. What the report says about them is the method's business.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from disclosure.errors import AshyqError
from disclosure.history import PublishedTable
from disclosure.methods import get_method
from disclosure.spec import TableSpec
from disclosure.table import read_cells

from .budget import normalise_source_id
from .specs import spec_from_mapping
from .workflow_models import (
    APPROVED,
    CORRECTED,
    PUBLISHED,
    SCHEDULED,
    SUPERSEDED,
    WITHDRAWN,
    Release,
)

#: states of a release whose table the attacker holds (or will hold without a further review)
HELD_STATES = (APPROVED, SCHEDULED, PUBLISHED, SUPERSEDED, CORRECTED)


class HistoryReadError(AshyqError):
    """A release of the history cannot be read back (its stored tables do not fit its spec)."""


def source_key(spec: TableSpec | dict[str, Any]) -> str | None:
    """The registered form of a spec's ``source_id`` (None when it has none or it is no slug)."""
    if isinstance(spec, TableSpec):
        raw = spec.metadata.get("source_id")
    else:
        raw = (spec or {}).get("source_id")
    if raw is None:
        return None
    try:
        return normalise_source_id(raw)
    except ValueError:
        return None


def _spec(r: Release) -> TableSpec:
    return spec_from_mapping(r.spec, source=f"{r.series} {r.version}")


def is_held(r: Release) -> bool:
    """True when the attacker holds (or will hold) the table of release ``r``."""
    if r.state in HELD_STATES:
        return True
    return r.state == WITHDRAWN and r.published_at is not None


def _links_history(spec: TableSpec) -> bool:
    method = get_method(spec.disclosure.method)
    return bool(getattr(method, "history", False))


def held_releases(session: Session, source_id: str, *, exclude_id: int | None = None
                  ) -> list[Release]:
    """The releases of ``source_id`` the attacker holds, oldest first (private answers to data
    requests included)."""
    rows = session.scalars(select(Release).order_by(Release.id)).all()
    out = [r for r in rows if r.id != exclude_id and is_held(r) and source_key(r.spec) == source_id]
    seen = {r.id for r in out}
    for r in _private_answers(session, source_id):
        if r.id not in seen and r.id != exclude_id:
            out.append(r)
            seen.add(r.id)
    return out


def _private_answers(session: Session, source_id: str) -> Iterable[Release]:
    try:
        from .requests import private_answers_for_source
    except ImportError:  # the data-request module is optional
        return []
    return private_answers_for_source(session, source_id)


def published_table(spec: TableSpec, raw: pd.DataFrame, protected: pd.DataFrame, *,
                    source: str, raw_source: str | None = None) -> PublishedTable:
    """A table already published, from its spec, the office's raw input and the protected table
    it was published as. Its free values must equal the raw input's and its primary cells must be
    suppressed (otherwise the output was not made from this input with this spec). ``source``
    names the protected table in messages, ``raw_source`` the raw input."""
    from disclosure.primary import primary_mask

    raw_source = raw_source or source
    table = read_cells(raw, spec, raw_source)
    dims = list(spec.dimension_names)
    status = np.full(table.n_cells, "F", dtype="<U1")
    if hasattr(spec.disclosure, "min_frequency"):
        prim, _ = primary_mask(table, spec.disclosure)
    else:
        prim = np.zeros(table.n_cells, dtype=bool)
    cols = [protected[d].astype(str).str.strip().to_numpy() for d in dims]
    conf = protected["conf_status"].astype(str).str.strip().to_numpy()
    obs = protected[spec.measure].astype(str).str.strip().to_numpy()
    for r in range(len(protected)):
        cell = table.cell_id({d: c[r] for d, c in zip(dims, cols, strict=True)})
        status[cell] = conf[r]
        if conf[r] == "F" and int(obs[r]) != int(table.values[cell]):
            raise HistoryReadError(f"the published value does not match the raw input {raw_source} "
                                   "(the output was not made from this input)", source=source,
                                   row=r + 2, column=spec.measure)
        if conf[r] == "F" and prim[cell]:
            raise HistoryReadError(f"a cell that spec {spec.id} makes primary-sensitive is "
                                   "published (the output was not protected with this spec)",
                                   source=source, row=r + 2, column="conf_status")
    return PublishedTable(table=table, conf_status=status, source=source)


def _frame(data: bytes) -> pd.DataFrame:
    df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_filter=False,
                     encoding="utf-8-sig")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def release_table(r: Release) -> PublishedTable:
    """The :class:`PublishedTable` of a stored release (raw upload + protected table)."""
    name = f"{r.series} {r.version}"
    if not r.upload_bytes or not r.protected_csv:
        raise HistoryReadError("the release holds no protected table", source=name)
    return published_table(_spec(r), _frame(r.upload_bytes), _frame(r.protected_csv),
                           source=f"{name} (published table)", raw_source=f"{name} (input)")


@dataclass(frozen=True)
class SourceHistory:
    """What the attacker holds of one source, for the protection of a new table."""

    source_id: str | None
    tables: list[PublishedTable]
    releases: list[tuple[str, str]]  # (series, version) of each table, same order
    left_out: list[tuple[str, str, str]]  # (series, version, why) held but not linked


def history_for(session: Session, spec: TableSpec, *,
                exclude_ids: Iterable[int | None] = ()) -> SourceHistory:
    """Every held table of ``spec``'s source that a suppression history links (see module doc),
    without the releases ``exclude_ids`` (those being protected).

    A spec without ``source_id`` has no history (nothing ties it to another table)."""
    sid = source_key(spec)
    if sid is None or not _links_history(spec):
        return SourceHistory(sid, [], [], [])
    skip = {i for i in exclude_ids if i is not None}
    tables, names, left = [], [], []
    for r in held_releases(session, sid):
        if r.id in skip:
            continue
        if not _links_history(_spec(r)):
            left.append((r.series, r.version, "noise"))
            continue
        tables.append(release_table(r))
        names.append((r.series, r.version))
    return SourceHistory(sid, tables, names, left)


def published_for(session: Session, specs: Iterable[TableSpec], *,
                  exclude_ids: Iterable[int | None] = ()) -> list[PublishedTable]:
    """The history the protection of ``specs`` (one release, or tables protected together)
    runs against: the union of each spec's :func:`history_for`, each held table once."""
    skip = list(exclude_ids)
    out: list[PublishedTable] = []
    seen: set[tuple[str, str]] = set()
    sources: set[tuple[str | None, bool]] = set()
    for spec in specs:
        key = (source_key(spec), _links_history(spec))
        if key in sources:
            continue  # tables of one source share its history: read it once
        sources.add(key)
        h = history_for(session, spec, exclude_ids=skip)
        for name, table in zip(h.releases, h.tables, strict=True):
            if name not in seen:
                seen.add(name)
                out.append(table)
    return out


def uncovered(session: Session, release: Release) -> list[Release]:
    """Held releases of ``release``'s source that its protection did not cover.

    A release protected before another table of its source was approved or published was proven
    safe without that table; approving it would publish a pattern never audited against it. The
    caller refuses the approval (or re-protects) while this list is not empty."""
    spec = _spec(release)
    sid = source_key(spec)
    if sid is None or not _links_history(spec):
        return []
    covered = {(c.get("id"), c.get("version"))
               for c in ((release.report or {}).get("covered") or [])}
    from .workflow import linked_partners  # tables protected together with it: one system

    together = {p.id for p in linked_partners(session, release)}
    linked = set((release.report or {}).get("linked_tables") or [])
    out = []
    for r in held_releases(session, sid, exclude_id=release.id):
        mutual = (r.series in linked
                  and release.series in ((r.report or {}).get("linked_tables") or []))
        if r.id in together or mutual:
            continue
        other = _spec(r)
        if _links_history(other) and (other.id, other.version) not in covered:
            out.append(r)
    return out


__all__ = ["HELD_STATES", "HistoryReadError", "SourceHistory", "held_releases", "history_for",
           "is_held", "published_for", "published_table", "release_table", "source_key",
           "uncovered"]
