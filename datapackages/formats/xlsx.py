"""XLSX download: labels in one language, flags in their own columns, the method on sheet two.

Written directly as SpreadsheetML (fast, and fully under control): every text is an inline
string in a text-formatted cell, and no formula element is ever written, so a label like
``=cmd|' /C calc'!A0`` stays text. Zip entries and document properties carry the release's
``created`` time, so the same input gives the same bytes.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from typing import Any

from ..codelists import CodeList
from ..i18n import N_, tr
from ..text import LANGUAGE_IN
from . import DownloadFormat, DownloadTable, TableText, register_format

# Headings, msgids of the package-text catalogue (datapackages.i18n), rendered with tr.
SHEET = {"data": N_("Data"),
         # TRANSLATORS: the name of the XLSX sheet with the method notes
         "notes": N_("Method")}
COLUMN = {
    # TRANSLATORS: lower case, in a column heading "Region (code)"
    "code": N_("code"),
    "value": N_("Value"),
    "flag": N_("Flag meaning"),
}
NOTE_KEYS = {
    "title": N_("Title"),
    "version": N_("Version"),
    "created": N_("Created"),
    "license": N_("Licence"),
    "method": N_("Protection method"),
    "flags": N_("Flags"),
    "citation": N_("How to cite"),
    "description": N_("Description"),
}


_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
BOLD, TEXT = 1, 2  # cellXfs indexes in styles.xml: bold text, plain text ("@" format)
_STYLES = (
    f'{_XML}<styleSheet xmlns="{_NS}">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="49" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1" '
    'applyNumberFormat="1"/>'
    '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
    '</cellStyles></styleSheet>')


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _col(j: int) -> str:
    out = ""
    while j:
        j, r = divmod(j - 1, 26)
        out = chr(65 + r) + out
    return out




class _Text:
    """A string escaped once for reuse in many cells (labels repeat on every row)."""

    __slots__ = ("xml",)

    def __init__(self, s: str) -> None:
        self.xml = f'<is><t xml:space="preserve">{_esc(s)}</t></is>'


_COLS = [_col(j) for j in range(1, 65)]


class _Sheet:
    """One worksheet as SpreadsheetML text. Strings are inline strings (``t="inlineStr"``) in a
    text-formatted cell; no formula element (``<f>``) is ever written."""

    def __init__(self) -> None:
        self.rows: list[str] = []
        self.widths: dict[int, float] = {}

    def row(self, r: int, cells: list[Any], style: int = TEXT) -> None:
        parts = []
        for j, v in enumerate(cells):
            if v is None:
                continue
            ref = f"{_COLS[j] if j < len(_COLS) else _col(j + 1)}{r}"
            if isinstance(v, _Text):
                parts.append(f'<c r="{ref}" s="{style}" t="inlineStr">{v.xml}</c>')
            elif isinstance(v, bool) or not isinstance(v, int | float):
                parts.append(f'<c r="{ref}" s="{style}" t="inlineStr">{_Text(str(v)).xml}</c>')
            else:
                parts.append(f'<c r="{ref}"><v>{v!r}</v></c>')
        self.rows.append(f'<row r="{r}">{"".join(parts)}</row>')

    def xml(self, freeze_below: int | None = None) -> bytes:
        view = ""
        if freeze_below:
            view = (f'<sheetViews><sheetView workbookViewId="0"><pane ySplit="{freeze_below}" '
                    f'topLeftCell="A{freeze_below + 1}" activePane="bottomLeft" state="frozen"/>'
                    '</sheetView></sheetViews>')
        cols = ""
        if self.widths:
            cols = "<cols>" + "".join(f'<col min="{j}" max="{j}" width="{w:g}" customWidth="1"/>'
                                      for j, w in sorted(self.widths.items())) + "</cols>"
        return (f'{_XML}<worksheet xmlns="{_NS}" xmlns:r="{_REL}">{view}{cols}<sheetData>'
                + "".join(self.rows) + "</sheetData></worksheet>").encode("utf-8")


def _xlsx(sheets: list[tuple[str, bytes]], *, title: str, creator: str, lang: str,
          when: datetime) -> bytes:
    """Zip the parts of a workbook with fixed entry times (same input, same bytes)."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    n = len(sheets)
    ct = (f'{_XML}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
          '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
          'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
          '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
          'officedocument.spreadsheetml.sheet.main+xml"/>'
          + "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
                    'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                    for i in range(1, n + 1))
          + '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-'
          'officedocument.spreadsheetml.styles+xml"/><Override PartName="/docProps/core.xml" '
          'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
          '<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-'
          'officedocument.extended-properties+xml"/></Types>')
    rels = (f'{_XML}<Relationships xmlns="{_PKG_REL}">'
            f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
            'relationships/metadata/core-properties" Target="docProps/core.xml"/>'
            f'<Relationship Id="rId3" Type="{_REL}/extended-properties" '
            'Target="docProps/app.xml"/></Relationships>')
    wb = (f'{_XML}<workbook xmlns="{_NS}" xmlns:r="{_REL}"><sheets>'
          + "".join(f'<sheet name="{_esc(name)}" sheetId="{i}" r:id="rId{i}"/>'
                    for i, (name, _) in enumerate(sheets, start=1))
          + "</sheets></workbook>")
    wb_rels = (f'{_XML}<Relationships xmlns="{_PKG_REL}">'
               + "".join(f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" '
                         f'Target="worksheets/sheet{i}.xml"/>' for i in range(1, n + 1))
               + f'<Relationship Id="rId{n + 1}" Type="{_REL}/styles" Target="styles.xml"/>'
               "</Relationships>")
    core = (f'{_XML}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
            'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<dc:title>{_esc(title)}</dc:title><dc:creator>{_esc(creator)}</dc:creator>"
            f"<dc:language>{lang}</dc:language>"
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified>'
            "</cp:coreProperties>")
    app = (f'{_XML}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
           'extended-properties"><Application>Ashyq</Application></Properties>')
    parts = [("[Content_Types].xml", ct.encode()), ("_rels/.rels", rels.encode()),
             ("docProps/app.xml", app.encode()), ("docProps/core.xml", core.encode()),
             ("xl/workbook.xml", wb.encode()), ("xl/_rels/workbook.xml.rels", wb_rels.encode()),
             ("xl/styles.xml", _STYLES.encode())]
    parts += [(f"xl/worksheets/sheet{i}.xml", body) for i, (_, body) in enumerate(sheets, 1)]
    out = io.BytesIO()
    dt = _zip_time(when)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, body in parts:
            zi = zipfile.ZipInfo(name, date_time=dt)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            z.writestr(zi, body)
    return out.getvalue()


def write_xlsx(rows: list[dict[str, Any]], dims: list[str], codelists: dict[str, CodeList],
               text: TableText, lang: str, *, extra: tuple[str, ...] = ()) -> bytes:
    """The table as an XLSX workbook in ``lang``: a data sheet and a method sheet.

    Data sheet: title, citation, then one row per cell with code and label of each dimension,
    the value (empty where suppressed), the method's own columns (``obs_moe`` for noise), both flags and the flags'
    meaning. Every text is a text cell, never a formula.
    """
    code_word, flag_word = tr(COLUMN["code"])[lang], tr(COLUMN["flag"])[lang]
    key = {k: tr(v)[lang] for k, v in NOTE_KEYS.items()}
    data = _Sheet()
    data.row(1, [text.title[lang]], BOLD)
    data.row(2, [text.citation[lang]])
    header: list[str] = []
    for d in dims:
        t = text.dimension_titles[d][lang]
        header += [f"{t} ({code_word})", t]
    header += [text.measure_title[lang]]
    header += list(extra)
    header += ["obs_status", "conf_status", flag_word]
    hr = 4
    data.row(hr, header, BOLD)
    flags = text.flags
    code_cells = {d: {c: (_Text(c), _Text(codelists[d].labels[c][lang]))
                      for c in codelists[d].codes} for d in dims}
    flag_cells: dict[tuple[str, str], tuple[_Text, _Text, _Text]] = {}
    for obs in flags["obs_status"]:
        for conf in flags["conf_status"]:
            meaning = flags["conf_status"][conf][lang]
            if obs != "A":
                meaning = f"{flags['obs_status'][obs][lang]}; {meaning}"
            flag_cells[(obs, conf)] = (_Text(obs), _Text(conf), _Text(meaning))
    for i, r in enumerate(rows, start=hr + 1):
        cells: list[Any] = []
        for d in dims:
            cells += code_cells[d][r[d]]
        cells.append(None if r["obs_value"] is None else int(r["obs_value"]))
        for col in extra:
            m = r.get(col)
            cells.append(None if m is None else float(m))
        cells += flag_cells[(r["obs_status"], r["conf_status"])]
        data.row(i, cells)
    for j in range(1, len(header) + 1):
        data.widths[j] = 18

    notes = _Sheet()
    lines: list[tuple[str, str]] = [
        (key["title"], text.title[lang]),
        (key["description"], text.description[lang]),
        (key["version"], text.version),
        (key["created"], text.created.strftime("%Y-%m-%dT%H:%M:%SZ")),
        (key["license"], text.license),
        (key["method"], text.method_text[lang]),
    ]
    for col, codes in flags.items():
        for code, lab in codes.items():
            lines.append((f"{key['flags']}: {col} = {code}", lab[lang]))
    lines.append((key["citation"], text.citation[lang]))
    for i, (k, v) in enumerate(lines, start=1):
        notes.row(i, [k, v])
    notes.widths = {1: 30, 2: 100}
    return _xlsx([(tr(SHEET["data"])[lang], data.xml(freeze_below=hr)),
                  (tr(SHEET["notes"])[lang], notes.xml())],
                 title=text.title[lang], creator=text.source[lang], lang=lang, when=text.created)


def _zip_time(when: datetime) -> tuple[int, int, int, int, int, int]:
    if when.year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return (when.year, when.month, when.day, when.hour, when.minute, when.second - when.second % 2)


@register_format
class Xlsx(DownloadFormat):
    name = "xlsx"
    label = "XLSX"
    suffix = ".xlsx"
    format = "xlsx"
    mediatype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    def title(self, label: str, lang: str, in_lang: str) -> str:
        return tr("%(title)s (XLSX, %(language)s)", title=label,
                  language=tr(LANGUAGE_IN[lang]))[in_lang]

    def description(self, lang: str, in_lang: str) -> str:
        return tr("The table as Excel, labels in %(language)s; flags in their own columns, the "
                  "method on the second sheet.", language=tr(LANGUAGE_IN[lang]))[in_lang]

    def render(self, table: DownloadTable, lang: str) -> bytes:
        return write_xlsx(table.rows, table.dimensions, table.codelists, table.text, lang,
                          extra=table.extra_columns)
