"""PC-Axis (PX) download, the format PxWeb serves: one file per language.

Follows the PX file format specification (AXIS-VERSION 2013, Statistics Sweden / PX-tools):
``KEYWORD[("sub key")]=value(s);`` records, the mandatory keywords (``MATRIX``,
``SUBJECT-CODE``, ``SUBJECT-AREA``, ``CONTENTS``, ``TITLE``, ``UNITS``, ``STUB``, ``HEADING``,
``VALUES``, ``DECIMALS``, ``DATA`` last) and ``CODEPAGE="utf-8"`` with a UTF-8 file (eleven Kazakh
letters exist in no ANSI code page). Every dimension
is a variable with its labels (``VALUES``) and codes (``CODES``); the last one is the
``HEADING``, the others the ``STUB``; ``DATA`` lists the cells with the stub's first variable
varying slowest. A suppressed cell is written as ``".."`` (the PX symbol for missing data,
shown as ``DATASYMBOL2``) and a ``NOTEX`` footnote (shown with the table) says what it means.

One file per language rather than one multilingual file (``LANGUAGES=`` and
``KEYWORD[lang]=``): a multilingual file names the variables by their default-language text in
every translated keyword, and readers differ in how they pair the translations (some by keyword
order), while a single-language file opens the same in every PX reader, like the XLSX and
JSON-stat downloads, one per language. Texts are plain: ``"`` becomes ``'`` (PX values cannot
hold a quotation mark), long texts are split into quoted records of at most 256 characters.
"""

from __future__ import annotations

from ..i18n import N_, tr
from ..text import LANGUAGE_IN
from . import DownloadFormat, DownloadTable, iso_period, register_format

SUBJECT = N_("Migration")
# TRANSLATORS: the footnote of a PX table; '..' is the symbol of a suppressed cell
SUPPRESSED = N_("'..' = suppressed for confidentiality: conf_status C (primary suppression) "
                "or D (secondary suppression, to protect primary cells).")
_MAX = 256


def _q(s: str) -> str:
    return '"' + str(s).replace('"', "'").replace("\r", " ").replace("\n", " ") + '"'


def _long(s: str) -> str:
    """A long text as quoted records of at most 256 characters, one per line."""
    s = str(s).replace('"', "'").replace("\r", " ").replace("\n", "#")
    parts = [s[i:i + _MAX - 2] for i in range(0, len(s), _MAX - 2)] or [""]
    return "\n".join(f'"{p}"' for p in parts)


def _list(values: list[str]) -> str:
    """Quoted values separated by commas, a new line after a comma when a line gets long."""
    lines, line = [], ""
    for v in (_q(x) for x in values):
        if line and len(line) + len(v) + 1 > 200:
            lines.append(line + ",")
            line = v
        else:
            line = f"{line},{v}" if line else v
    lines.append(line)
    return "\n".join(lines)


def write_px(table: DownloadTable, lang: str) -> bytes:
    """The table as a PX file in ``lang`` (see the module docstring)."""
    text, dims, cls = table.text, table.dimensions, table.codelists
    stamp = text.created.strftime("%Y%m%d %H:%M")
    names = {d: text.dimension_titles[d][lang].replace('"', "'") for d in dims}
    out = [
        'AXIS-VERSION="2013";',
        'CODEPAGE="utf-8";',
        f'LANGUAGE="{lang}";',
        f'CREATION-DATE="{stamp}";',
        "DECIMALS=0;",
        "SHOWDECIMALS=0;",
        f"MATRIX={_q((text.series or 'table').replace('-', '_')[:64])};",
        'SUBJECT-CODE="MIGR";',
        f"SUBJECT-AREA={_q(tr(SUBJECT)[lang])};",
        f"CONTENTS={_q(text.title[lang])};",
        f"TITLE={_q(text.title[lang])};",
        f"UNITS={_q(text.unit.get(lang) or '-')};",
        f"STUB={_list([names[d] for d in dims[:-1]])};" if len(dims) > 1 else "",
        f"HEADING={_q(names[dims[-1]])};",
    ]
    for d in dims:
        cl = cls[d]
        out.append(f"VALUES({_q(names[d])})={_list([cl.labels[c][lang] for c in cl.codes])};")
    for d in dims:
        out.append(f"CODES({_q(names[d])})={_list(list(cls[d].codes))};")
    out.append(f'LAST-UPDATED="{stamp}";')
    out.append(f"SOURCE={_q(text.source[lang])};")
    if text.contact:
        out.append(f"CONTACT={_q(text.contact['name'][lang] + ', ' + text.contact['email'])};")
    period = iso_period(text)
    if text.reference_period:
        out.append(f"REFPERIOD={_q(period or text.reference_period[lang])};")
    suppressed = any(r["conf_status"] != "F" for r in table.rows)
    if suppressed:
        out.append(f"NOTEX=\n{_long(tr(SUPPRESSED)[lang])};")
    out.append(f"NOTE=\n{_long(text.method_text[lang])};")
    if suppressed:
        out.append('DATASYMBOL2="..";')
    out.append(f"DESCRIPTION={_q(text.title[lang])};")
    # DATA: the dense cube in the order of the dimensions (the heading varies fastest).
    index = {d: {c: i for i, c in enumerate(cls[d].codes)} for d in dims}
    size = [len(cls[d].codes) for d in dims]
    n = 1
    for s in size:
        n *= s
    cells = ['".."'] * n  # a cell missing from the table cannot happen (checked before)
    for r in table.rows:
        k = 0
        for d, s in zip(dims, size, strict=True):
            k = k * s + index[d][r[d]]
        cells[k] = '".."' if r["obs_value"] is None else str(int(r["obs_value"]))
    width = size[-1]
    rows = [" ".join(cells[i:i + width]) + " " for i in range(0, n, width)]
    out.append("DATA=\n" + "\n".join(rows) + ";")
    return ("\n".join(x for x in out if x) + "\n").encode("utf-8")


@register_format
class Px(DownloadFormat):
    name = "px"
    label = "PC-Axis"
    suffix = ".px"
    format = "px"
    mediatype = "text/x-pcaxis"

    def title(self, label: str, lang: str, in_lang: str) -> str:
        return tr("%(title)s (PC-Axis, %(language)s)", title=label,
                  language=tr(LANGUAGE_IN[lang]))[in_lang]

    def description(self, lang: str, in_lang: str) -> str:
        return tr("The table as a PC-Axis (PX) file as PxWeb serves it, labels in "
                  "%(language)s; '..' marks a suppressed cell.",
                  language=tr(LANGUAGE_IN[lang]))[in_lang]

    def render(self, table: DownloadTable, lang: str) -> bytes:
        return write_px(table, lang)
