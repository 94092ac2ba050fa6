"""Downloads of one explorer view, exactly as shown: CSV (labels and codes, optional UTF-8 BOM for
Excel), XLSX (the crosstab with its header rows repeated on every printed page, footnotes, unit,
reference period, source and citation) and JSON-stat 2.0.

Built from a :class:`publisher.explore.Grid` of the protected table: a suppressed cell is an
empty value with its flag, never a number.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

from ..explore import FREE, PRIMARY, SECONDARY, STATUS_LETTER, Cube, Grid

SUPPRESSED_MARK = "×"


@dataclass
class ViewText:
    """The words around a view, in the reader's language."""

    lang: str
    title: str
    value: str            # column heading of the values ("Value")
    moe: str              # heading of the margin of error
    status: str           # heading of the flag
    code: str             # "code" (suffix of a code column)
    unit: str = ""
    period: str = ""
    source: str = ""
    citation: str = ""
    licence: str = ""
    url: str = ""
    labels: dict[str, str] = field(default_factory=dict)    # "Unit", "Reference period", ...
    footnotes: dict[str, str] = field(default_factory=dict)  # "C"/"D"/"moe" -> text


def _num(v: float) -> float | int | None:
    if v != v:  # NaN
        return None
    return int(v) if float(v).is_integer() else v


def _dims_in_order(cube: Cube, grid: Grid) -> list[str]:
    v = grid.view
    return list(v.rows + v.cols + v.filters)


def to_csv(cube: Cube, grid: Grid, text: ViewText, *, bom: bool = False) -> bytes:
    """Long CSV: per dimension its label and its code, then the value, the flag (conf_status)
    and, when shown, the margin of error."""
    v = grid.view
    dims = _dims_in_order(cube, grid)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    header = []
    for d in dims:
        t = cube.dim(d).title_in(text.lang)
        header += [t, f"{t} ({text.code})"]
    header += [text.value, text.status]
    if grid.moe is not None:
        header.append(text.moe)
    w.writerow([_safe(h) for h in header])

    def parts(names: tuple[str, ...], key: tuple[str, ...]) -> list[str]:
        out_: list[str] = []
        for d, code in zip(names, key, strict=True):
            out_ += [_safe(cube.dim(d).label(code, text.lang)), code]
        return out_

    row_parts = [parts(v.rows, k) for k in grid.row_keys]
    col_parts = [parts(v.cols, k) for k in grid.col_keys]
    tail = parts(v.filters, tuple(v.select[d][0] for d in v.filters))
    values, status = grid.value.tolist(), grid.status.tolist()
    moes = grid.moe.tolist() if grid.moe is not None else None
    rows = []
    for i, rp in enumerate(row_parts):
        for j, cp in enumerate(col_parts):
            s, val = status[i][j], values[i][j]
            row = [*rp, *cp, *tail, _num(val) if s == FREE else "", STATUS_LETTER.get(s, "")]
            if moes is not None:
                m = moes[i][j]
                row.append("" if m != m else _num(m))
            rows.append(row)
    w.writerows(rows)
    data = out.getvalue().encode("utf-8")
    return (b"\xef\xbb\xbf" + data) if bom else data


def _safe(s: str) -> str:
    """A label a spreadsheet must not run as a formula."""
    s = str(s)
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def _header_rows(cube: Cube, grid: Grid, lang: str) -> list[list[str]]:
    """One row per column dimension: the label of each column's code at that level."""
    v = grid.view
    rows = []
    for k, d in enumerate(v.cols):
        dim = cube.dim(d)
        rows.append([dim.label(ck[k], lang) for ck in grid.col_keys])
    return rows


def to_xlsx(cube: Cube, grid: Grid, text: ViewText) -> bytes:
    """The crosstab as shown; header rows repeat on every printed page; suppressed cells show
    the mark with a footnote."""
    import xlsxwriter

    v = grid.view
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False,
                                   "strings_to_urls": False, "strings_to_numbers": False})
    ws = wb.add_worksheet(text.title[:28].translate(str.maketrans("[]:*?/\\", "       ")) or "view")
    bold = wb.add_format({"bold": True})
    head = wb.add_format({"bold": True, "bottom": 1, "text_wrap": True, "valign": "top"})
    num = wb.add_format({"num_format": "#,##0"})
    mark = wb.add_format({"align": "right", "font_color": "#8b1a1a"})
    small = wb.add_format({"italic": True, "font_color": "#4a5568"})
    title_fmt = wb.add_format({"bold": True, "font_size": 13})
    r = 0
    ws.write_string(r, 0, text.title, title_fmt)
    r += 1
    for key, val in (("unit", text.unit), ("period", text.period)):
        if val:
            ws.write_string(r, 0, f"{text.labels.get(key, key)}: {val}", small)
            r += 1
    for d in v.filters:
        dim = cube.dim(d)
        ws.write_string(r, 0, f"{dim.title_in(text.lang)}: {dim.label(v.select[d][0], text.lang)}",
                        small)
        r += 1
    r += 1
    first_header = r
    nrow_dims = max(len(v.rows), 1)
    headers = _header_rows(cube, grid, text.lang)
    per_col = 2 if grid.moe is not None else 1
    for k, hr in enumerate(headers):
        for i, d in enumerate(v.rows):
            ws.write_string(r, i, cube.dim(d).title_in(text.lang) if k == len(headers) - 1 else "",
                            head)
        for j, labtext in enumerate(hr):
            ws.write_string(r, nrow_dims + j * per_col, labtext, head)
            if per_col == 2:
                ws.write_string(r, nrow_dims + j * per_col + 1, f"± {text.moe}" if k == len(headers) - 1 else "", head)
        r += 1
    if not headers:  # no column dimension: one column of values
        for i, d in enumerate(v.rows):
            ws.write_string(r, i, cube.dim(d).title_in(text.lang), head)
        ws.write_string(r, nrow_dims, text.value, head)
        if per_col == 2:
            ws.write_string(r, nrow_dims + 1, f"± {text.moe}", head)
        r += 1
    last_header = r - 1
    used = set()
    for i, rk in enumerate(grid.row_keys):
        for k, d in enumerate(v.rows):
            dim = cube.dim(d)
            indent = "  " * max(dim.level.get(rk[k], 0) - 1, 0) if dim.hierarchical else ""
            ws.write_string(r, k, indent + dim.label(rk[k], text.lang))
        for j in range(len(grid.col_keys)):
            status = int(grid.status[i, j])
            col = nrow_dims + j * per_col
            if status == FREE and not math.isnan(grid.value[i, j]):
                ws.write_number(r, col, float(grid.value[i, j]), num)
            else:
                letter = STATUS_LETTER.get(status, "")
                used.add(letter)
                ws.write_string(r, col, f"{SUPPRESSED_MARK} {letter}".strip(), mark)
            if per_col == 2 and grid.moe is not None and not math.isnan(grid.moe[i, j]):
                ws.write_number(r, col + 1, float(grid.moe[i, j]), num)
        r += 1
    r += 1
    for letter in ("C", "D"):
        if letter in used and text.footnotes.get(letter):
            ws.write_string(r, 0, f"{SUPPRESSED_MARK} {letter}: {text.footnotes[letter]}")
            r += 1
    if grid.moe is not None and text.footnotes.get("moe"):
        ws.write_string(r, 0, text.footnotes["moe"])
        r += 1
    for key, val in (("source", text.source), ("licence", text.licence),
                     ("citation", text.citation), ("url", text.url)):
        if val:
            ws.write_string(r, 0, f"{text.labels.get(key, key)}: {val}", bold if key == "citation" else None)
            r += 1
    ws.repeat_rows(first_header, last_header)
    if v.rows:
        ws.repeat_columns(0, nrow_dims - 1)
    ws.freeze_panes(last_header + 1, nrow_dims)
    ws.set_column(0, nrow_dims - 1, 28)
    ws.set_column(nrow_dims, nrow_dims + max(len(grid.col_keys) * per_col, 1), 12)
    ws.fit_to_pages(1, 0)
    ws.set_landscape()
    wb.set_properties({"title": text.title, "comments": text.citation})
    wb.close()
    return buf.getvalue()


def to_jsonstat(cube: Cube, grid: Grid, text: ViewText) -> bytes:
    """JSON-stat 2.0 dataset of the view: every dimension (those on no axis with one category),
    ``value`` null and ``status`` C/D where suppressed."""
    v = grid.view
    dims = _dims_in_order(cube, grid)
    size = [len(v.select[d]) for d in dims]
    dimension: dict[str, Any] = {}
    for d in dims:
        dim = cube.dim(d)
        codes = list(v.select[d])
        cat: dict[str, Any] = {"index": codes,
                               "label": {c: dim.label(c, text.lang) for c in codes}}
        kids = {c: [k for k in dim.children.get(c, ()) if k in v.select[d]] for c in codes}
        kids = {c: k for c, k in kids.items() if k}
        if kids:
            cat["child"] = kids
        dimension[d] = {"label": dim.title_in(text.lang), "category": cat}
    # values in row-major order of ``dims``: rows, then columns, then the one-value filters
    values: list[Any] = []
    status: dict[str, str] = {}
    for i in range(len(grid.row_keys)):
        for j in range(len(grid.col_keys)):
            s = int(grid.status[i, j])
            n = len(values)
            if s == FREE and not math.isnan(grid.value[i, j]):
                values.append(_num(float(grid.value[i, j])))
            else:
                values.append(None)
                if s in (PRIMARY, SECONDARY):
                    status[str(n)] = STATUS_LETTER[s]
    doc: dict[str, Any] = {
        "version": "2.0", "class": "dataset", "label": text.title, "id": dims, "size": size,
        "dimension": dimension, "value": values}
    roles = {}
    for d in dims:
        role = cube.dim(d).role
        if role:
            roles.setdefault(role, []).append(d)
    if roles:
        doc["role"] = roles
    if status:
        doc["status"] = status
    notes = [f"{SUPPRESSED_MARK} {k}: {t}" for k, t in text.footnotes.items() if k in ("C", "D")]
    if text.citation:
        notes.append(text.citation)
    if notes:
        doc["note"] = notes
    if text.source:
        doc["source"] = text.source
    if text.url:
        doc["href"] = text.url
    ext: dict[str, Any] = {"lang": text.lang}
    if text.unit:
        ext["unit"] = text.unit
    if text.period:
        ext["reference_period"] = text.period
    if text.licence:
        ext["license"] = text.licence
    if grid.moe is not None:
        ext["obs_moe"] = [None if math.isnan(m) else _num(float(m)) for m in grid.moe.ravel()]
    doc["extension"] = ext
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")
