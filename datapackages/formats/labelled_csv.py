"""CSV with labels, one per language, for spreadsheets: ``downloads/<id>-<lang>.csv``.

The package's main CSV (``data/<id>.csv``) holds codes and flags only, as machines want it. This
one adds, per dimension, the label in the file's language beside the code, names the columns in
that language, and explains each cell's flags in words. It is UTF-8 with a byte-order mark, so
Excel opens Kazakh and Russian text right (no cp1251 mojibake: 11 Kazakh letters do not exist in
cp1251), comma-separated, one row per cell. Every text cell passes :func:`~datapackages.text.csv_safe`
(nothing a spreadsheet would run as a formula).
"""

from __future__ import annotations

import csv
import io

from ..i18n import tr
from ..text import LANGUAGE_IN, csv_safe
from . import DownloadFormat, DownloadTable, register_format
from .xlsx import COLUMN

BOM = "\ufeff"


def write_labelled_csv(table: DownloadTable, lang: str) -> bytes:
    text, dims = table.text, table.dimensions
    code_word, flag_word = tr(COLUMN["code"])[lang], tr(COLUMN["flag"])[lang]
    header: list[str] = []
    for d in dims:
        t = text.dimension_titles[d][lang]
        header += [f"{t} ({code_word})", t]
    header.append(text.measure_title[lang])
    header += [(table.extra_titles.get(c) or {}).get(lang) or c for c in table.extra_columns]
    header += ["obs_status", "conf_status", flag_word]
    labels = {d: {c: csv_safe(table.codelists[d].labels[c][lang]) for c in table.codelists[d].codes}
              for d in dims}
    flags = text.flags
    meaning: dict[tuple[str, str], str] = {}
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([csv_safe(h) for h in header])
    for r in table.rows:
        row: list[object] = []
        for d in dims:
            row += [r[d], labels[d][r[d]]]
        row.append("" if r["obs_value"] is None else r["obs_value"])
        row += ["" if r.get(c) is None else r[c] for c in table.extra_columns]
        key = (r["obs_status"], r["conf_status"])
        if key not in meaning:
            m = flags["conf_status"][key[1]][lang]
            if key[0] != "A":
                m = f"{flags['obs_status'][key[0]][lang]}; {m}"
            meaning[key] = csv_safe(m)
        row += [key[0], key[1], meaning[key]]
        w.writerow(row)
    return (BOM + out.getvalue()).encode("utf-8")


@register_format
class LabelledCsv(DownloadFormat):
    name = "csv-labels"
    label = "CSV"
    suffix = ".csv"
    format = "csv"
    mediatype = "text/csv"

    def title(self, label: str, lang: str, in_lang: str) -> str:
        return tr("%(title)s (CSV with labels, %(language)s)", title=label,
                  language=tr(LANGUAGE_IN[lang]))[in_lang]

    def description(self, lang: str, in_lang: str) -> str:
        return tr("One row per cell with the labels in %(language)s beside the codes and the "
                  "flags in words; UTF-8 with a byte-order mark, so Excel shows the letters "
                  "right.", language=tr(LANGUAGE_IN[lang]))[in_lang]

    def render(self, table: DownloadTable, lang: str) -> bytes:
        return write_labelled_csv(table, lang)
