"""XLSX download a person can read and print: a crosstab per language, notes on the second sheet.

The first sheet is the table as a statistics office prints it: the smallest dimensions across
(at most :data:`MAX_COLUMNS` columns), the others down, labels in the workbook's language with
hierarchy levels indented, totals named, a suppressed cell shown as :data:`SYMBOL` with a
footnote, header rows and label columns repeated on every printed page, fit to the page width
(A4). A method with its own columns (``obs_moe`` for noise) gets one more crosstab of it. The
notes sheet gives title, description, unit, reference period, source, contact, version, licence,
method, flags and citation. The long format (one row per cell, with flags) is the CSV.

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
    "unit": N_("Unit"),
    "period": N_("Reference period"),
    "source": N_("Source"),
    "contact": N_("Contact"),
    "symbol": N_("Symbol"),
    "long": N_("One row per cell"),
    "next": N_("Next release"),
}
LONG_FORMAT = N_("The same table with one row per cell, codes and flags, is the CSV file of the "
                 "data package.")


_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
#: what a suppressed cell shows in the crosstab (the footnote says why)
SYMBOL = "x"
#: the most value columns the crosstab puts across before a dimension goes down instead
MAX_COLUMNS = 16
MAX_INDENT = 6
# cellXfs indexes in styles.xml
BOLD, TEXT, SYMBOL_STYLE, HEAD, NUMBER = 1, 2, 3, 4, 5
INDENT0 = 6  # INDENT0 + k: a text label indented k levels (k <= MAX_INDENT)
_STYLES = (
    f'{_XML}<styleSheet xmlns="{_NS}">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="#,##0"/></numFmts>'
    '<fonts count="2"><font><sz val="10"/><name val="Calibri"/></font>'
    '<font><b/><sz val="10"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border>'
    '<border><left/><right/><top/><bottom style="thin"/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    f'<cellXfs count="{INDENT0 + MAX_INDENT + 1}">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="49" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1" '
    'applyNumberFormat="1"/>'
    '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" '
    'applyAlignment="1"><alignment horizontal="right"/></xf>'
    '<xf numFmtId="49" fontId="1" fillId="0" borderId="1" xfId="0" applyFont="1" '
    'applyBorder="1" applyNumberFormat="1" applyAlignment="1">'
    '<alignment horizontal="center" vertical="bottom" wrapText="1"/></xf>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    + "".join('<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" '
              f'applyNumberFormat="1" applyAlignment="1"><alignment indent="{k}"/></xf>'
              for k in range(MAX_INDENT + 1))
    + '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
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
        self.merges: list[str] = []  # "C4:G4"

    def row(self, r: int, cells: list[Any], style: int = TEXT,
            styles: list[int | None] | None = None) -> None:
        """Row ``r``: text cells in ``style`` (or ``styles[j]`` where given), numbers as numbers."""
        parts = []
        for j, v in enumerate(cells):
            if v is None:
                continue
            st = styles[j] if styles is not None and j < len(styles) and styles[j] is not None \
                else style
            ref = f"{_COLS[j] if j < len(_COLS) else _col(j + 1)}{r}"
            if isinstance(v, _Text):
                parts.append(f'<c r="{ref}" s="{st}" t="inlineStr">{v.xml}</c>')
            elif isinstance(v, bool) or not isinstance(v, int | float):
                parts.append(f'<c r="{ref}" s="{st}" t="inlineStr">{_Text(str(v)).xml}</c>')
            elif styles is not None:
                parts.append(f'<c r="{ref}" s="{st}"><v>{v!r}</v></c>')
            else:
                parts.append(f'<c r="{ref}"><v>{v!r}</v></c>')
        self.rows.append(f'<row r="{r}">{"".join(parts)}</row>')

    def xml(self, freeze_below: int | None = None, freeze_right_of: int = 0, *,
            landscape: bool = False, fit_width: bool = False) -> bytes:
        view = ""
        if freeze_below or freeze_right_of:
            y, x = freeze_below or 0, freeze_right_of
            top = f"{_col(x + 1)}{y + 1}"
            pane = "bottomRight" if x and y else ("bottomLeft" if y else "topRight")
            view = ('<sheetViews><sheetView workbookViewId="0"><pane'
                    + (f' xSplit="{x}"' if x else "") + (f' ySplit="{y}"' if y else "")
                    + f' topLeftCell="{top}" activePane="{pane}" state="frozen"/>'
                    '</sheetView></sheetViews>')
        pr = '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>' if fit_width else ""
        cols = ""
        if self.widths:
            cols = "<cols>" + "".join(f'<col min="{j}" max="{j}" width="{w:g}" customWidth="1"/>'
                                      for j, w in sorted(self.widths.items())) + "</cols>"
        page = ('<pageMargins left="0.4" right="0.4" top="0.5" bottom="0.5" header="0.3" '
                'footer="0.3"/><pageSetup paperSize="9" orientation="'
                + ("landscape" if landscape else "portrait") + '"'
                + (' fitToWidth="1" fitToHeight="0"' if fit_width else "") + "/>"
                '<headerFooter><oddFooter>&amp;C&amp;P / &amp;N</oddFooter></headerFooter>')
        merges = ""
        if self.merges:
            merges = (f'<mergeCells count="{len(self.merges)}">'
                      + "".join(f'<mergeCell ref="{m}"/>' for m in self.merges) + "</mergeCells>")
        return (f'{_XML}<worksheet xmlns="{_NS}" xmlns:r="{_REL}">{pr}{view}{cols}<sheetData>'
                + "".join(self.rows) + f"</sheetData>{merges}{page}</worksheet>").encode("utf-8")


def _xlsx(sheets: list[tuple[str, bytes]], *, title: str, creator: str, lang: str,
          when: datetime, print_titles: dict[int, str] | None = None) -> bytes:
    """Zip the parts of a workbook with fixed entry times (same input, same bytes).

    ``print_titles``: sheet index -> the rows/columns repeated on every printed page
    (e.g. ``$A:$B,$1:$5``)."""
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
          + "</sheets>"
          + ("<definedNames>" + "".join(
              f'<definedName name="_xlnm.Print_Titles" localSheetId="{i}">'
              + ",".join(f"'{_esc(sheets[i][0])}'!{part}" for part in ref.split(","))
              + "</definedName>" for i, ref in sorted(print_titles.items()))
             + "</definedNames>" if print_titles else "")
          + "</workbook>")
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


def layout(dims: list[str], codelists: dict[str, CodeList]) -> tuple[list[str], list[str]]:
    """(dimensions down, dimensions across) of the crosstab: the smallest dimensions across while
    their codes multiply to at most :data:`MAX_COLUMNS` (geography always down), the rest down,
    each in the spec's order."""
    from . import dimension_role

    if len(dims) == 1:
        return list(dims), []
    across: list[str] = []
    n = 1
    for d in sorted(dims, key=lambda d: (len(codelists[d].codes), dims.index(d))):
        if len(across) == len(dims) - 1 or dimension_role(d, codelists[d]) == "geo":
            continue
        if n * len(codelists[d].codes) > MAX_COLUMNS and across:
            break
        if n * len(codelists[d].codes) > MAX_COLUMNS * 2:
            break
        across.append(d)
        n *= len(codelists[d].codes)
    if not across:  # every small dimension is geography: put the smallest one across anyway
        across = [min(dims, key=lambda d: len(codelists[d].codes))]
    return [d for d in dims if d not in across], [d for d in dims if d in across]


def _product(lists: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    import itertools

    return [tuple(p) for p in itertools.product(*lists)] if lists else [()]


def _crosstab(rows: list[dict[str, Any]], dims: list[str], codelists: dict[str, CodeList],
              text: TableText, lang: str, *, value: str, heading: str) -> tuple[bytes, str]:
    """One crosstab sheet of column ``value`` (``obs_value`` or a method's column) and the
    rows/columns to repeat on every printed page."""
    down, across = layout(dims, codelists)
    cell = {tuple(r[d] for d in dims): r for r in rows}
    row_keys = _product([codelists[d].codes for d in down])
    col_keys = _product([codelists[d].codes for d in across])
    lab = {d: {c: codelists[d].labels[c][lang] for c in codelists[d].codes} for d in dims}
    level = {d: codelists[d].level for d in dims}
    nl = len(down)
    sh = _Sheet()
    sh.row(1, [text.title[lang]], BOLD)
    sub = [heading]
    if text.unit.get(lang):
        sub.append(f"{tr(NOTE_KEYS['unit'])[lang]}: {text.unit[lang]}")
    if text.reference_period:
        sub.append(f"{tr(NOTE_KEYS['period'])[lang]}: {text.reference_period[lang]}")
    sh.row(2, [" · ".join(sub)])
    r = 4
    heads: list[list[Any]] = []
    for k, d in enumerate(across):  # one header row per dimension across, outer first
        cells: list[Any] = [None] * (nl + len(col_keys))
        j = 0
        while j < len(col_keys):
            span = 1
            while (j + span < len(col_keys)
                   and col_keys[j + span][: k + 1] == col_keys[j][: k + 1]):
                span += 1
            cells[nl + j] = lab[d][col_keys[j][k]]
            if span > 1:
                sh.merges.append(f"{_col(nl + j + 1)}{r + k}:{_col(nl + j + span)}{r + k}")
            j += span
        heads.append(cells)
        if nl:  # the dimension's name left of its codes
            cells[nl - 1] = text.dimension_titles[d][lang]
    # a last header row names the dimensions down (over the label columns)
    heads.append([text.dimension_titles[d][lang] for d in down]
                 + ([None] * len(col_keys) if across else [heading]))
    for cells in heads:
        sh.row(r, cells, HEAD)
        r += 1
    head_end = r - 1
    used: set[str] = set()
    prev: tuple[str, ...] = ()
    for key in row_keys:
        cells = []
        styles: list[int | None] = []
        for i, (d, c) in enumerate(zip(down, key, strict=True)):
            changed = key[: i + 1] != prev[: i + 1]
            cells.append(lab[d][c] if changed else None)
            styles.append(INDENT0 + min(level[d].get(c, 0), MAX_INDENT))
        for ck in col_keys:
            codes = dict(zip(down, key, strict=True)) | dict(zip(across, ck, strict=True))
            row = cell.get(tuple(codes[d] for d in dims))
            v = None if row is None else row.get(value)
            if row is not None and v is None and row["conf_status"] != "F":
                cells.append(SYMBOL)
                styles.append(SYMBOL_STYLE)
                used.add(row["conf_status"])
            else:
                cells.append(None if v is None else (int(v) if float(v).is_integer() else float(v)))
                styles.append(NUMBER)
        sh.row(r, cells, styles=styles)
        prev = key
        r += 1
    r += 1
    flags = text.flags
    if used:
        sup = flags["obs_status"].get("Q", {}).get(lang)
        meanings = "; ".join(flags["conf_status"][c][lang] for c in sorted(used))
        sh.row(r, [f"{SYMBOL} — {sup}: {meanings}" if sup else f"{SYMBOL} — {meanings}"])
        r += 1
    sh.row(r, [f"{tr(NOTE_KEYS['source'])[lang]}: {text.source[lang]}"])
    sh.row(r + 1, [f"{tr(NOTE_KEYS['citation'])[lang]}: {text.citation[lang]}"])
    for i, d in enumerate(down, start=1):
        longest = max(len(v) + 2 * level[d].get(c, 0) for c, v in lab[d].items())
        sh.widths[i] = float(min(max(longest + 2, 10), 42))
    for j in range(nl + 1, nl + len(col_keys) + 1):
        sh.widths[j] = 11
    body = sh.xml(freeze_below=head_end, freeze_right_of=nl,
                  landscape=nl + len(col_keys) > 8, fit_width=True)
    titles = (f"$A:${_col(nl)}," if nl else "") + f"$4:${head_end}"
    return body, titles


def write_xlsx(rows: list[dict[str, Any]], dims: list[str], codelists: dict[str, CodeList],
               text: TableText, lang: str, *, extra: tuple[str, ...] = (),
               extra_titles: dict[str, dict[str, str]] | None = None) -> bytes:
    """The table as an XLSX workbook in ``lang``: the crosstab (and one per method column, e.g.
    the margins of error), then the notes. Every text is a text cell, never a formula."""
    key = {k: tr(v)[lang] for k, v in NOTE_KEYS.items()}
    sheets: list[tuple[str, bytes]] = []
    titles: dict[int, str] = {}
    body, ref = _crosstab(rows, dims, codelists, text, lang, value="obs_value",
                          heading=text.measure_title[lang])
    sheets.append((tr(SHEET["data"])[lang], body))
    titles[0] = ref
    for col in extra:
        name = (extra_titles or {}).get(col, {}).get(lang) or col
        body, ref = _crosstab(rows, dims, codelists, text, lang, value=col, heading=name)
        titles[len(sheets)] = ref
        sheets.append((_sheet_name(name), body))

    notes = _Sheet()
    lines: list[tuple[str, str]] = [
        (key["title"], text.title[lang]),
        (key["description"], text.description[lang]),
    ]
    if text.unit.get(lang):
        lines.append((key["unit"], text.unit[lang]))
    if text.reference_period:
        lines.append((key["period"], text.reference_period[lang]))
    lines.append((key["source"], text.source[lang]))
    if text.contact:
        name = text.contact.get("name")
        if isinstance(name, dict):
            name = name.get(lang) or next(iter(name.values()), "")
        lines.append((key["contact"], ", ".join(str(v) for v in (name, text.contact.get("email"))
                                                 if v)))
    if text.next_release:
        lines.append((key["next"], text.next_release))
    lines += [
        (key["version"], text.version),
        (key["created"], text.created.strftime("%Y-%m-%dT%H:%M:%SZ")),
        (key["license"], text.license),
        (key["method"], text.method_text[lang]),
    ]
    lines.append((key["symbol"], f"{SYMBOL}: {text.flags['obs_status'].get('Q', {}).get(lang, '')}"))
    for col, codes in text.flags.items():
        for code, lab in codes.items():
            lines.append((f"{key['flags']}: {col} = {code}", lab[lang]))
    lines.append((key["long"], tr(LONG_FORMAT)[lang]))
    lines.append((key["citation"], text.citation[lang]))
    for i, (k, v) in enumerate(lines, start=1):
        notes.row(i, [k, v])
    notes.widths = {1: 30, 2: 100}
    sheets.append((tr(SHEET["notes"])[lang], notes.xml(fit_width=True)))
    return _xlsx(sheets, title=text.title[lang], creator=text.source[lang], lang=lang,
                 when=text.created, print_titles=titles)


def _sheet_name(name: str) -> str:
    """A valid sheet name (at most 31 characters, none of []:*?/\\)."""
    clean = "".join(" " if ch in "[]:*?/\\" else ch for ch in name).strip() or "Sheet"
    return clean[:31]


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
        return tr("The table as Excel, ready to print: a crosstab with labels in %(language)s, "
                  "suppressed cells marked, notes and method on the last sheet.",
                  language=tr(LANGUAGE_IN[lang]))[in_lang]

    def render(self, table: DownloadTable, lang: str) -> bytes:
        return write_xlsx(table.rows, table.dimensions, table.codelists, table.text, lang,
                          extra=table.extra_columns, extra_titles=table.extra_titles)
