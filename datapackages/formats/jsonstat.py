"""JSON-stat 2.0 download (https://json-stat.org/full/): one dataset per language."""

from __future__ import annotations

from typing import Any

from ..codelists import CodeList
from ..i18n import N_, tr
from ..text import LANGUAGE_IN
from . import (
    DownloadFormat,
    DownloadTable,
    TableText,
    dimension_role,
    dumps,
    iso_period,
    register_format,
)

#: the id of the time dimension added from the reference period (SDMX's TIME_PERIOD concept)
TIME_ID = "time_period"
TIME_TITLE = N_("Time period")


def _time_id(dims: list[str]) -> str:
    """:data:`TIME_ID`, or a variant no dimension of the table already has."""
    out, n = TIME_ID, 2
    while out in dims:
        out, n = f"{TIME_ID}_{n}", n + 1
    return out


def jsonstat(rows: list[dict[str, Any]], dims: list[str], codelists: dict[str, CodeList],
             text: TableText, lang: str, *, extra: tuple[str, ...] = ()) -> dict:
    """The table as a JSON-stat 2.0 dataset in ``lang``.

    ``value`` is dense in row-major order of ``id``; suppressed cells are ``null`` and their
    ``status`` is the CL_CONF_STATUS code (``C`` / ``D``). Both flag columns (and the method's own
    columns, such as ``obs_moe``) are kept in ``extension`` with the meaning of each flag, and
    the unit of measure as ``extension.unit`` (a JSON-stat unit object: ``label``, ``decimals``).
    ``role.geo`` lists only dimensions of places, ``role.time`` only dimensions of periods
    (:func:`datapackages.formats.dimension_role`). A table without a period dimension of its own
    whose ``reference_period`` is an ISO 8601 period (``2024``, ``2024-Q1``, ``2024-01``) gets a
    time dimension of one category, :data:`TIME_ID`, the last in ``id`` (size 1, so the order
    of ``value`` is unchanged), labelled in ``lang`` and listed in ``role.time``.
    """
    index = {d: {c: i for i, c in enumerate(codelists[d].codes)} for d in dims}
    size = [len(codelists[d].codes) for d in dims]
    n = 1
    for s in size:
        n *= s
    value: list[int | None] = [None] * n
    status: dict[str, str] = {}
    obs_status: list[str | None] = [None] * n
    conf_status: list[str | None] = [None] * n
    extras: dict[str, list[int | float | None]] = {col: [None] * n for col in extra}
    for r in rows:
        k = 0
        for d, s in zip(dims, size, strict=True):
            k = k * s + index[d][r[d]]
        value[k] = None if r["obs_value"] is None else int(r["obs_value"])
        obs_status[k] = r["obs_status"]
        conf_status[k] = r["conf_status"]
        if r["conf_status"] != "F":
            status[str(k)] = r["conf_status"]
        for col in extra:
            if r.get(col) is not None:
                m = float(r[col])
                extras[col][k] = int(m) if m.is_integer() else m
    dimension: dict[str, Any] = {}
    for d in dims:
        cl = codelists[d]
        cat: dict[str, Any] = {
            "index": list(cl.codes),
            "label": {c: cl.labels[c][lang] for c in cl.codes},
        }
        child: dict[str, list[str]] = {}
        for c in cl.codes:
            p = cl.parent[c]
            if p:
                child.setdefault(p, []).append(c)
        if child:
            cat["child"] = child
        dimension[d] = {"label": text.dimension_titles[d][lang], "category": cat}
    role: dict[str, list[str]] = {}
    for d in dims:  # geography only for places (citizenship is not one), time only for periods
        kind = dimension_role(d, codelists[d])
        if kind:
            role.setdefault(kind, []).append(d)
    ids, size = list(dims), list(size)
    period = None if "time" in role else iso_period(text)
    if period is not None:  # the reference period as a time dimension of one category
        tid = _time_id(ids)
        dimension[tid] = {"label": tr(TIME_TITLE)[lang],
                          "category": {"index": [period], "label": {period: period}}}
        ids.append(tid)
        size.append(1)
        role["time"] = [tid]
    ext: dict[str, Any] = {"obs_status": obs_status, "conf_status": conf_status,
                           "flags": {col: {c: lab[lang] for c, lab in codes.items()}
                                     for col, codes in text.flags.items()},
                           "version": text.version, "license": text.license,
                           "citation": text.citation[lang], "language": lang}
    if text.unit:  # the unit object of JSON-stat 2.0 (there is no metric dimension to carry it)
        ext["unit"] = {"label": text.unit[lang], "decimals": 0}
    if text.reference_period:
        ext["reference_period"] = text.reference_period[lang]
    ext.update(extras)
    out: dict[str, Any] = {
        "version": "2.0",
        "class": "dataset",
        "label": text.title[lang],
        "source": text.source[lang],
        "updated": text.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "id": ids,
        "size": size,
        "dimension": dimension,
        "value": value,
        "note": [text.description[lang], text.method_text[lang]],
        "extension": ext,
    }
    if status:
        out["status"] = status
    if role:
        out["role"] = role
    return out


@register_format
class JsonStat(DownloadFormat):
    name = "jsonstat"
    label = "JSON-stat 2.0"
    suffix = ".stat.json"
    format = "json"
    mediatype = "application/json"

    def title(self, label: str, lang: str, in_lang: str) -> str:
        return tr("%(title)s (JSON-stat 2.0, %(language)s)", title=label,
                  language=tr(LANGUAGE_IN[lang]))[in_lang]

    def description(self, lang: str, in_lang: str) -> str:
        return tr("The table as JSON-stat 2.0, labels in %(language)s.",
                  language=tr(LANGUAGE_IN[lang]))[in_lang]

    def render(self, table: DownloadTable, lang: str) -> bytes:
        return dumps(jsonstat(table.rows, table.dimensions, table.codelists, table.text, lang,
                              extra=table.extra_columns))
