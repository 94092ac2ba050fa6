"""A toy disclosure method and a toy download format, registered from the test folder alone.

They show the extension points: one module, one registration each; nothing in Ashyq knows their
names. The method rounds every cell to a multiple of ``round_base`` (not a safe method: a toy);
the format writes the table as tab-separated text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from marshmallow import INCLUDE, Schema, fields, validate

from datapackages.formats import DownloadFormat, DownloadTable, register_format, unregister_format
from disclosure.methods import (
    DisclosureMethod,
    MethodNote,
    ProtectContext,
    PublishedFacts,
    register_method,
    unregister_method,
)
from disclosure.protect import FREE, ProtectedTable, published_frame
from disclosure.report import ProtectionReport
from disclosure.spec import LANGUAGES, Dimension, MethodSpec, TableSpec


@dataclass(frozen=True)
class ToySpec(MethodSpec):
    method: ClassVar[str] = "toy-rounding"

    round_base: int = 5


class ToySchema(Schema):
    class Meta:
        unknown = INCLUDE

    round_base = fields.Integer(required=True, strict=True, validate=validate.Range(min=2))


@dataclass(kw_only=True)
class ToyReport(ProtectionReport):
    method: ClassVar[str] = "toy-rounding"

    round_base: int
    cells_changed: int


class ToyRounding(DisclosureMethod):
    name = "toy-rounding"
    label = "toy rounding"
    spec_type = ToySpec
    schema = ToySchema
    report_type = ToyReport
    keys = ("round_base",)

    def build_spec(self, params: dict[str, Any], dimensions: tuple[Dimension, ...],
                   raw: dict[str, Any]) -> ToySpec:
        return ToySpec(round_base=params["round_base"])

    def protect(self, tables, context: ProtectContext):  # noqa: ANN001, ANN201
        out = []
        for t in tables:
            base = t.spec.disclosure.round_base
            values = (np.rint(t.values / base) * base).astype(np.int64)
            conf = np.full(t.n_cells, FREE, dtype="<U1")
            report = ToyReport(cells=int(t.n_cells), round_base=base,
                               cells_changed=int((values != t.values).sum()))
            out.append(ProtectedTable(table=t, published=published_frame(t, conf, values=values),
                                      report=report))
        return out

    def additive(self, report: ProtectionReport) -> bool:
        return False

    def describe(self, spec: TableSpec, report: ProtectionReport | None,
                 facts: PublishedFacts, tr: Any = None) -> MethodNote:
        base = spec.disclosure.round_base
        text = dict.fromkeys(LANGUAGES, f"Toy rounding: every count is rounded to a multiple of "
                                        f"{base}.")
        return MethodNote(parameters={"round_base": base}, text=text)

    def summary(self, report: ProtectionReport) -> str:
        return f"{report.cells} cells, rounded to multiples of {report.round_base}"

    def review(self, report: ProtectionReport) -> dict[str, Any]:
        return {"Rounding base": report.round_base, "Cells changed": report.cells_changed}


class Tsv(DownloadFormat):
    name = "toy-tsv"
    label = "Toy TSV"
    suffix = ".tsv"
    format = "tsv"
    mediatype = "text/tab-separated-values"
    per_language = False

    def title(self, label: str, lang: str, in_lang: str) -> str:
        return f"{label} (TSV)"

    def description(self, lang: str, in_lang: str) -> str:
        return "Tab-separated values"

    def render(self, table: DownloadTable, lang: str) -> bytes:
        cols = [*table.dimensions, "obs_value", "obs_status", "conf_status"]
        lines = ["\t".join(cols)]
        for r in table.rows:
            lines.append("\t".join("" if r[c] is None else str(r[c]) for c in cols))
        return ("\n".join(lines) + "\n").encode("utf-8")


def register() -> None:
    register_method(ToyRounding)
    register_format(Tsv)


def unregister() -> None:
    unregister_method(ToyRounding.name)
    unregister_format(Tsv.name)
