"""Downloads besides the CSV: XLSX (labels in one language, flags in their own columns) and
JSON-stat 2.0, both byte-reproducible for the same input.

XLSX: every text cell is written as a string cell (``t="s"``/inline string), never a formula,
whatever it starts with (``=cmd|...``, ``+``, ``-``, ``@``). openpyxl stamps the save time into
``docProps/core.xml`` and each zip entry; :func:`write_xlsx` re-packs the file with the release's
``created`` time instead, so the same input gives the same bytes.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Font

from .codelists import CodeList

SHEET = {"data": {"kk": "Деректер", "ru": "Данные", "en": "Data"},
         "notes": {"kk": "Әдіснама", "ru": "Методология", "en": "Method"}}
COLUMN = {
    "code": {"kk": "коды", "ru": "код", "en": "code"},
    "value": {"kk": "Мәні", "ru": "Значение", "en": "Value"},
    "flag": {"kk": "Белгі мағынасы", "ru": "Значение отметки", "en": "Flag meaning"},
}
NOTE_KEYS = {
    "title": {"kk": "Атауы", "ru": "Название", "en": "Title"},
    "version": {"kk": "Нұсқа", "ru": "Версия", "en": "Version"},
    "created": {"kk": "Жасалған күні", "ru": "Дата создания", "en": "Created"},
    "license": {"kk": "Лицензия", "ru": "Лицензия", "en": "Licence"},
    "method": {"kk": "Қорғау әдісі", "ru": "Метод защиты", "en": "Protection method"},
    "flags": {"kk": "Белгілер", "ru": "Отметки", "en": "Flags"},
    "citation": {"kk": "Сілтеме жасау үлгісі", "ru": "Как цитировать", "en": "How to cite"},
    "description": {"kk": "Сипаттамасы", "ru": "Описание", "en": "Description"},
}


@dataclass(frozen=True)
class TableText:
    """Everything the downloads need besides the cells, already checked and translated."""

    title: dict[str, str]
    description: dict[str, str]
    version: str
    created: datetime
    license: str
    dimension_titles: dict[str, dict[str, str]]
    measure_title: dict[str, str]
    method_text: dict[str, str]
    flags: dict[str, dict[str, dict[str, str]]]
    citation: dict[str, str]
    source: dict[str, str]  # the publisher's name


def _text_cell(ws: Any, row: int, col: int, value: str) -> Cell:
    """A string cell, never a formula, even when ``value`` starts with '='."""
    cell = ws.cell(row=row, column=col)
    cell.value = value
    cell.data_type = "s"
    return cell


def write_xlsx(rows: list[dict[str, Any]], dims: list[str], codelists: dict[str, CodeList],
               text: TableText, lang: str, *, moe: bool = False) -> bytes:
    """The table as an XLSX workbook in ``lang``: a data sheet and a method sheet."""
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET["data"][lang]
    _text_cell(ws, 1, 1, text.title[lang]).font = Font(bold=True)
    _text_cell(ws, 2, 1, text.citation[lang])
    header: list[str] = []
    for d in dims:
        t = text.dimension_titles[d][lang]
        header += [f"{t} ({COLUMN['code'][lang]})", t]
    header += [text.measure_title[lang]]
    if moe:
        header += ["obs_moe"]
    header += ["obs_status", "conf_status", COLUMN["flag"][lang]]
    hr = 4
    for j, h in enumerate(header, start=1):
        _text_cell(ws, hr, j, h).font = Font(bold=True)
    for i, r in enumerate(rows, start=hr + 1):
        j = 1
        for d in dims:
            _text_cell(ws, i, j, r[d])
            _text_cell(ws, i, j + 1, codelists[d].labels[r[d]][lang])
            j += 2
        if r["obs_value"] is not None:
            ws.cell(row=i, column=j, value=int(r["obs_value"]))
        j += 1
        if moe:
            if r.get("obs_moe") is not None:
                ws.cell(row=i, column=j, value=float(r["obs_moe"]))
            j += 1
        _text_cell(ws, i, j, r["obs_status"])
        _text_cell(ws, i, j + 1, r["conf_status"])
        meaning = text.flags["conf_status"][r["conf_status"]][lang]
        if r["obs_status"] != "A":
            meaning = f"{text.flags['obs_status'][r['obs_status']][lang]}; {meaning}"
        _text_cell(ws, i, j + 2, meaning)
    ws.freeze_panes = ws.cell(row=hr + 1, column=1)

    notes = wb.create_sheet(SHEET["notes"][lang])
    lines: list[tuple[str, str]] = [
        (NOTE_KEYS["title"][lang], text.title[lang]),
        (NOTE_KEYS["description"][lang], text.description[lang]),
        (NOTE_KEYS["version"][lang], text.version),
        (NOTE_KEYS["created"][lang], text.created.strftime("%Y-%m-%dT%H:%M:%SZ")),
        (NOTE_KEYS["license"][lang], text.license),
        (NOTE_KEYS["method"][lang], text.method_text[lang]),
    ]
    for col, codes in text.flags.items():
        for code, lab in codes.items():
            lines.append((f"{NOTE_KEYS['flags'][lang]}: {col} = {code}", lab[lang]))
    lines.append((NOTE_KEYS["citation"][lang], text.citation[lang]))
    for i, (k, v) in enumerate(lines, start=1):
        _text_cell(notes, i, 1, k).font = Font(bold=True)
        _text_cell(notes, i, 2, v)
    notes.column_dimensions["A"].width = 30
    notes.column_dimensions["B"].width = 100

    stamp = text.created.strftime("%Y-%m-%dT%H:%M:%SZ")
    wb.properties.creator = text.source[lang]
    wb.properties.title = text.title[lang]
    wb.properties.language = lang
    wb.properties.created = text.created.replace(tzinfo=None)
    buf = io.BytesIO()
    wb.save(buf)
    return _repack(buf.getvalue(), text.created, stamp)


def _repack(data: bytes, when: datetime, stamp: str) -> bytes:
    """Re-zip with fixed entry times and the release time as ``dcterms:modified``."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    dt = _zip_time(when)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                              rb"\g<1>" + stamp.encode() + rb"\g<2>", body)
            zi = zipfile.ZipInfo(info.filename, date_time=dt)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            z.writestr(zi, body)
    return out.getvalue()


def _zip_time(when: datetime) -> tuple[int, int, int, int, int, int]:
    if when.year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return (when.year, when.month, when.day, when.hour, when.minute, when.second - when.second % 2)


def jsonstat(rows: list[dict[str, Any]], dims: list[str], codelists: dict[str, CodeList],
             text: TableText, lang: str, *, moe: bool = False) -> dict:
    """The table as a JSON-stat 2.0 dataset in ``lang``.

    ``value`` is dense in row-major order of ``id``; suppressed cells are ``null`` and their
    ``status`` is the CL_CONF_STATUS code (``C`` / ``D``). Both flag columns (and ``obs_moe``
    for noise tables) are kept in ``extension`` with the meaning of each flag.
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
    moes: list[float | None] = [None] * n
    for r in rows:
        k = 0
        for d, s in zip(dims, size, strict=True):
            k = k * s + index[d][r[d]]
        value[k] = None if r["obs_value"] is None else int(r["obs_value"])
        obs_status[k] = r["obs_status"]
        conf_status[k] = r["conf_status"]
        if r["conf_status"] != "F":
            status[str(k)] = r["conf_status"]
        if moe:
            moes[k] = r.get("obs_moe")
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
    for d in dims:
        if d in ("region", "ref_area", "country", "citizenship"):
            role.setdefault("geo", []).append(d)
        elif d in ("year", "time_period", "time", "period"):
            role.setdefault("time", []).append(d)
    ext: dict[str, Any] = {"obs_status": obs_status, "conf_status": conf_status,
                           "flags": {col: {c: lab[lang] for c, lab in codes.items()}
                                     for col, codes in text.flags.items()},
                           "version": text.version, "license": text.license,
                           "citation": text.citation[lang], "language": lang}
    if moe:
        ext["obs_moe"] = moes
    out: dict[str, Any] = {
        "version": "2.0",
        "class": "dataset",
        "label": text.title[lang],
        "source": text.source[lang],
        "updated": text.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "id": list(dims),
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


def dumps(obj: Any) -> bytes:
    """Stable JSON bytes (UTF-8, sorted keys off: insertion order is already fixed)."""
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
