"""Download formats besides the CSV, as plug-ins: one module per format, one registration each.

A format is a :class:`DownloadFormat` that declares its ``name``, file ``suffix``, resource
``format`` and ``mediatype``, whether it is written once per language (``per_language``), its
resource title and description in every language, and ``render(table, lang)`` returning the
file's bytes (byte-reproducible for the same input). It registers itself with
:func:`register_format`; the package builder writes every registered format and lists each file
as a resource of the data package. Built in: XLSX (:mod:`.xlsx`), CSV with labels
(:mod:`.labelled_csv`), JSON-stat 2.0
(:mod:`.jsonstat`), SDMX-CSV 2.0 data and the SDMX-ML 2.1 structure message (:mod:`.sdmx`) and
PC-Axis (:mod:`.px`).

A format that is written once (``per_language = False``) is rendered with the package's default
language and gets every language's text from the :class:`TableText`. ``TableText.series`` (the
spec id), ``version``, ``unit``, ``reference_period`` and ``contact`` let a format name its
structures and fill its metadata; :func:`dimension_role` says which dimension is geography or time.
"""

from __future__ import annotations

import importlib
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from ..codelists import CodeList


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
    series: str = ""  # the spec id (the series all versions share)
    unit: dict[str, str] = field(default_factory=dict)  # unit of measure, kk/ru/en
    reference_period: dict[str, str] | None = None  # kk/ru/en, if the spec gives one
    contact: dict[str, str] | None = None  # {name, email} of the contact point, if any
    default_language: str = "kk"
    next_release: str | None = None  # ISO date of the next version or period, if announced


@dataclass(frozen=True)
class DownloadTable:
    """A checked protected table and everything a download needs to render it."""

    rows: list[dict[str, Any]]
    dimensions: list[str]
    codelists: dict[str, CodeList]
    text: TableText
    extra_columns: tuple[str, ...] = ()  # the method's own columns (e.g. obs_moe)
    extra_titles: dict[str, dict[str, str]] = field(default_factory=dict)  # their kk/ru/en titles


class DownloadFormat:
    """Base of every download format (see the module docstring)."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""  # what a reader calls it, e.g. "JSON-stat 2.0"
    suffix: ClassVar[str] = ""
    format: ClassVar[str] = ""
    mediatype: ClassVar[str] = "application/octet-stream"
    per_language: ClassVar[bool] = True

    def title(self, label: str, lang: str, in_lang: str) -> str:
        """The resource title in ``in_lang`` of the file in ``lang``."""
        return f"{label} ({self.name})"

    def description(self, lang: str, in_lang: str) -> str:
        return self.name

    def render(self, table: DownloadTable, lang: str) -> bytes:
        raise NotImplementedError


#: dimension names that mean a place the cell is about (citizenship or country of birth is a
#: property of a person, not the cell's place: not geography)
GEO_NAMES = frozenset({"region", "ref_area", "geo", "area", "territory", "district", "oblast",
                       "settlement", "locality"})
TIME_NAMES = frozenset({"year", "time_period", "time", "period", "quarter", "month", "date"})
PERIOD = re.compile(r"^\d{4}(-(Q[1-4]|S[12]|M?\d{2}|W\d{2}))?$")


def dimension_role(name: str, codelist: CodeList) -> str | None:
    """``"geo"`` for a dimension of places, ``"time"`` for a dimension of ISO 8601 periods, else
    None. Decided by the dimension's name; a time dimension must also have period codes."""
    n = name.lower()
    if n in GEO_NAMES:
        return "geo"
    if n in TIME_NAMES and all(PERIOD.match(c) for c in codelist.codes if c != "_T"):
        return "time"
    return None


def iso_period(text: TableText) -> str | None:
    """The reference period as an ISO 8601 / SDMX period (``2025``, ``2025-Q1``, ``2025-03``)
    when it is the same such code in every language, else None."""
    rp = text.reference_period
    if not rp:
        return None
    values = set(rp.values())
    if len(values) != 1:
        return None
    v = values.pop().strip()
    return v if PERIOD.match(v) else None


_REGISTRY: dict[str, DownloadFormat] = {}
_loaded = False


def register_format(fmt: DownloadFormat | type[DownloadFormat]) -> Any:
    """Register a download format (an instance or a class; usable as a class decorator)."""
    inst = fmt() if isinstance(fmt, type) else fmt
    if not inst.name or not inst.suffix:
        raise ValueError("a download format needs a name and a file suffix")
    _REGISTRY[inst.name] = inst
    return fmt


def unregister_format(name: str) -> None:
    _REGISTRY.pop(name, None)


_load_lock = threading.RLock()


def formats() -> list[DownloadFormat]:
    """Every registered download format, built-in ones first (loaded once, under a lock, so a
    second thread never sees a half-filled registry)."""
    global _loaded
    if not _loaded:
        with _load_lock:
            if not _loaded:
                for mod in ("xlsx", "labelled_csv", "jsonstat", "sdmx", "px"):
                    importlib.import_module(f"{__name__}.{mod}")
                _loaded = True
    return list(_REGISTRY.values())


def dumps(obj: Any) -> bytes:
    """Stable JSON bytes (UTF-8, sorted keys off: insertion order is already fixed)."""
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
