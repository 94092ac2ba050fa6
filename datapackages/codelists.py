"""Code lists: kk/ru/en labels for the codes of each dimension (see config/codelists/README.md).

Sources, in order of precedence for a code: the spec's inline ``labels``; the dimension's
``codelist`` (a CSV file under ``config/codelists`` or the built-in ``iso3166`` whose names come
from Babel's CLDR data); SDMX special codes (``_T`` total ...); period-like codes (``2023``)
labelled by themselves; and, for a dimension with no code list and no labels at all, the code
itself (recorded as a warning).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from disclosure.spec import TOTAL, Dimension

from .errors import R_, PackageError, Phrase, Word
from .i18n import tr
from .text import LANGUAGES, SPECIAL_CODES, Languages, clean

HEADER = ["code", "parent", "label_kk", "label_ru", "label_en"]
ISO_NAMES = {"iso3166", "country", "countries"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_CODE = re.compile(r"^[A-Za-z0-9_.\-+]{1,64}$")
_PERIOD = re.compile(r"^\d{4}(-(Q[1-4]|S[12]|M?\d{2}|W\d{2}))?$")


@dataclass(frozen=True)
class CodeList:
    """The published code list of one dimension: codes in hierarchy order with labels."""

    dimension: str
    source: str  # "config/codelists/NAME.csv", "iso3166 (CLDR via Babel)", "inline", "codes"
    codes: tuple[str, ...]
    parent: dict[str, str]
    level: dict[str, int]
    labels: dict[str, dict[str, str]]  # code -> {kk, ru, en}


@lru_cache(maxsize=32)
def _read_csv(path: Path) -> dict[str, dict[str, str]]:
    src = str(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
    except UnicodeDecodeError as e:
        raise PackageError(R_("code list is not UTF-8"), source=src) from e
    if not rows or rows[0] != HEADER:
        raise PackageError(R_("code list header must be %(header)s"), source=src, row=1, header=','.join(HEADER))
    out: dict[str, dict[str, str]] = {}
    for i, r in enumerate(rows[1:], start=2):
        if not r:
            continue
        if len(r) != len(HEADER):
            raise PackageError(R_("has %(r)s cells, expected %(header)s"), source=src, row=i, r=len(r), header=len(HEADER))
        code = r[0].strip()
        if code in out:
            raise PackageError(R_("code %(code_name)s is listed twice"), source=src, row=i,
                               column="code", code_name=repr(code[:40]))
        out[code] = {lang: r[2 + j] for j, lang in enumerate(LANGUAGES) if r[2 + j].strip()}
    return out


@lru_cache(maxsize=4)
def _iso3166() -> dict[str, dict[str, str]]:
    from babel import Locale

    names = {lang: Locale.parse(lang).territories for lang in LANGUAGES}
    codes = [c for c in names["en"] if re.fullmatch(r"[A-Z]{2}", c)
             and all(c in names[lang] for lang in LANGUAGES)]
    return {c: {lang: names[lang][c] for lang in LANGUAGES} for c in codes}


def codelist_source(name: str, directory: Path | None = None) -> tuple[str, dict[str, dict[str, str]]]:
    """Labels of a named code list: ``(description of the source, code -> {lang: label})``."""
    if name in ISO_NAMES:
        return "iso3166 (country names from CLDR via Babel)", _iso3166()
    if not _NAME.match(name):
        raise PackageError(R_("code list name %(name)s must be a-z 0-9 - _"), name=repr(name[:40]))
    if directory is None:
        # This package does not know where configuration lives: the caller passes the folder
        # (the application passes its shipped config/codelists).
        raise PackageError(R_("code list %(name)s: no code-list folder given (codelist_dir)"), name=repr(name))
    path = Path(directory) / f"{name}.csv"
    if not path.is_file():
        raise PackageError(R_("code list %(name)s not found (expected %(path)s)"), name=repr(name), path=path)
    return f"config/codelists/{name}.csv", _read_csv(path)


def build_codelist(dim: Dimension, langs: Languages, directory: Path | None = None,
                   warnings: list[str] | None = None) -> CodeList:
    """Labels in kk/ru/en for every code of ``dim``; raises PackageError naming a missing one."""
    h = dim.hierarchy
    listed: dict[str, dict[str, str]] = {}
    source = "codes"
    if dim.codelist:
        source, listed = codelist_source(dim.codelist, directory)
    if dim.labels:
        source = f"{source} + inline labels" if dim.codelist else "inline"
    unlabelled = not dim.codelist and not dim.labels
    labels: dict[str, dict[str, str]] = {}
    self_labelled: list[str] = []
    for code in h.codes:
        if not _CODE.match(code):
            raise PackageError(R_("dimension %(name)s: code %(code_name)s must be 1-64 of A-Z a-z 0-9 _ . - +"), source=langs.source, name=repr(dim.name), code_name=repr(code[:40]))
        key = f"dimensions.{dim.name}.labels.{code}"
        if code in dim.labels:
            raw = dim.labels[code]
        elif code in listed:
            raw = listed[code]
        elif code in SPECIAL_CODES:
            raw = tr(SPECIAL_CODES[code])
        elif unlabelled or (not dim.codelist and _PERIOD.match(code)):
            raw = dict.fromkeys(LANGUAGES, code)
            if unlabelled and not _PERIOD.match(code):
                self_labelled.append(code)
        else:
            where = (Phrase(R_("code list %(name)s"), name=repr(dim.codelist)) if dim.codelist
                     else Word(R_("the spec's labels")))
            raise PackageError(R_("dimension %(name)s: code %(code_name)s has no label in %(where)s"),
                               source=langs.source, name=repr(dim.name), code_name=repr(code), where=where)
        lab = langs.text(raw, key)
        for lang in LANGUAGES:
            lab[lang] = clean(lab[lang], f"{key}.{lang}", source=langs.source)
        labels[code] = lab
    if self_labelled and warnings is not None:
        warnings.append(f"dimension {dim.name!r} has no code list or labels; its codes are their "
                        "own labels")
    parent = {c: (h.parent.get(c, "") if c != TOTAL else "") for c in h.codes}
    return CodeList(dimension=dim.name, source=source, codes=h.codes, parent=parent,
                    level=dict(h.depth), labels=labels)
