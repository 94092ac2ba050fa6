"""Building one release's Frictionless Data Package from a protected table and its spec.

:func:`package_table` reads and checks the protected CSV (:mod:`datapackages.protected`),
gathers the release metadata from the spec (keys listed in
:data:`disclosure.spec_schema.METADATA_KEYS`, all text checked
by :mod:`datapackages.text`), writes into a temporary folder beside ``out_dir``:

- ``datapackage.json`` (v1-compatible; validates in frictionless 5 and datapackage-js 1.1),
- ``data/<id>.csv`` (every cell, flags in ``obs_status`` / ``conf_status``),
- ``codelists/<dimension>.csv`` and ``flags/<column>.csv`` (kk/ru/en labels, foreign keys),
- ``downloads/<id>-<lang>.xlsx`` and ``downloads/<id>-<lang>.stat.json`` (JSON-stat 2.0),
- every registered download format under ``downloads/`` (PC-Axis, SDMX-CSV and the SDMX-ML
  structure message besides XLSX and JSON-stat: :mod:`datapackages.formats`),
- ``citation/citation.txt``, ``citation/citation.csl.json``, ``citation/citation.bib``,
- ``dcat.ttl`` (DCAT-AP 3.0, :mod:`datapackages.dcat`),

validates it with frictionless (schema, types, keys, foreign keys, hashes, plus a row rule that
no suppressed cell carries a value), zips it reproducibly and only then moves folder and zip into
place. On any error a :class:`PackageError` is raised and nothing is left at ``out_dir``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from disclosure.methods import DisclosureMethod, PublishedFacts, method_of
from disclosure.report import ProtectionReport, ReportError, report_from_dict
from disclosure.spec import TableSpec, parse_semver

from . import citation as cite
from . import dcat
from .codelists import CodeList, build_codelist
from .dcat import contact_point
from .errors import R_, PackageError, Phrase, Word
from .flags import FIELD_TEXT, flag_meanings
from .formats import DownloadTable, TableText, dumps, formats
from .i18n import N_, tr
from .protected import ProtectedRows, read_protected
from .text import (
    DIMENSION_TITLES,
    LANGUAGE_IN,
    LANGUAGES,
    LONG,
    MEASURE_TITLE,
    UNIT,
    Languages,
    clean,
    clean_email,
    clean_url,
)

LICENSES = {
    "CC-BY-4.0": ("https://creativecommons.org/licenses/by/4.0/",
                  "Creative Commons Attribution 4.0"),
    "CC0-1.0": ("https://creativecommons.org/publicdomain/zero/1.0/", "CC0 1.0"),
    "ODC-BY-1.0": ("https://opendatacommons.org/licenses/by/1-0/",
                   "Open Data Commons Attribution License 1.0"),
    "ODbL-1.0": ("https://opendatacommons.org/licenses/odbl/1-0/",
                 "Open Data Commons Open Database License 1.0"),
}
ROLES = ("author", "publisher", "maintainer", "wrangler", "contributor")
# Built-in texts: msgids of the package-text catalogue (datapackages.i18n), rendered with tr.
DEFAULT_PUBLISHER = N_("Statistical office")
DEFAULT_KEYWORDS = (N_("migration"), N_("statistics"))
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass
class PackageResult:
    """A written package: folder, zip, its descriptor and the zip's sha256 (hex)."""

    path: Path
    zip_path: Path
    descriptor: dict
    sha256: str
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase


# ----------------------------------------------------------------------------- versions

def check_version(version: str, previous: str | None, source: str) -> None:
    try:
        new = parse_semver(version)
    except ValueError:
        raise PackageError(R_("version %(version)s is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.2.0)"), source=source, version=repr(str(version)[:40])) from None
    if previous is None:
        return
    try:
        old = parse_semver(previous)
    except ValueError:
        raise PackageError(R_("previous version %(previous)s is not a semantic version"),
                           source=source, previous=repr(str(previous)[:40])) from None
    if new == old:
        raise PackageError(R_("version %(version)s is already published; a published version is immutable, give a higher version"), source=source, version=version)
    if new < old:
        raise PackageError(R_("version %(version)s goes backwards (previous version %(previous)s)"),
                           source=source, version=version, previous=previous)


# ----------------------------------------------------------------------------- metadata

def _created(created: datetime | None, metadata: dict, source: str) -> datetime:
    """Release time: the argument, else spec ``created``, else SOURCE_DATE_EPOCH, else now."""
    if created is None and metadata.get("created") is not None:
        raw = metadata["created"]
        if isinstance(raw, datetime):
            created = raw
        else:
            try:
                created = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
            except ValueError:
                raise PackageError(R_("created: not an RFC 3339 date-time"), source=source) from None
    if created is None and os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        created = datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), tz=UTC)
    if created is None:
        created = datetime.now(tz=UTC)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return created.astimezone(UTC).replace(microsecond=0)


def _license(metadata: dict, source: str) -> dict:
    raw = metadata.get("license", "CC-BY-4.0")
    if isinstance(raw, str):
        if raw not in LICENSES:
            raise PackageError(R_("license: unknown id %(raw)s; give {name, path, title} or one of %(licenses)s"), source=source, raw=repr(raw[:40]), licenses=', '.join(LICENSES))
        path, title = LICENSES[raw]
        return {"name": raw, "path": path, "title": title}
    if not isinstance(raw, dict) or not (raw.get("name") or raw.get("path")):
        raise PackageError(R_("license: needs a name (Open Definition id) or a path"), source=source)
    out = {}
    if raw.get("name"):
        name = clean(raw["name"], "license.name", source=source, limit=100)
        if not re.match(r"^[-a-zA-Z0-9._]+$", name):
            raise PackageError(R_("license.name: must be an id like CC-BY-4.0"), source=source)
        out["name"] = name
    if raw.get("path"):
        out["path"] = clean_url(raw["path"], "license.path", source=source)
    if raw.get("title"):
        out["title"] = clean(raw["title"], "license.title", source=source)
    return out


def _person(raw: Any, key: str, langs: Languages, source: str, *, neutral: bool = False) -> dict:
    """A contributor or source; with ``neutral`` a plain-string title (a person's name) is the
    same in every language, otherwise a plain string counts as the default language only."""
    if not isinstance(raw, dict) or "title" not in raw:
        raise PackageError(R_("%(key)s: needs a title"), source=source, key=key)
    t = raw["title"]
    if neutral and isinstance(t, str):
        t = dict.fromkeys(LANGUAGES, t)
    title = langs.text(t, f"{key}.title")
    out: dict[str, Any] = {"title": title[langs.default]}
    if raw.get("role") is not None:
        if raw["role"] not in ROLES:
            raise PackageError(R_("%(key)s.role: must be one of %(roles)s"), source=source, key=key, roles=', '.join(ROLES))
        out["role"] = raw["role"]
        out["roles"] = [raw["role"]]
    for k in ("path",):
        if raw.get(k):
            out[k] = clean_url(raw[k], f"{key}.{k}", source=source)
    if raw.get("email"):
        out["email"] = clean_email(raw["email"], f"{key}.email", source=source)
    if raw.get("organization"):
        out["organization"] = clean(raw["organization"], f"{key}.organization", source=source)
    if raw.get("version"):
        out["version"] = clean(str(raw["version"]), f"{key}.version", source=source, limit=100)
    out["x_translations"] = {"title": title}
    return out


def _keywords(metadata: dict, langs: Languages, source: str) -> dict[str, list[str]]:
    if "keywords" in metadata:
        raw = metadata["keywords"]
    else:
        words = [tr(w) for w in DEFAULT_KEYWORDS]
        raw = {lang: [w[lang] for w in words] for lang in LANGUAGES}
    if isinstance(raw, list):  # language-neutral tags: the same in every language
        raw = dict.fromkeys(LANGUAGES, raw)
    if not isinstance(raw, dict):
        raise PackageError(R_("keywords: must be {kk: [..], ru: [..], en: [..]}"), source=source)
    out: dict[str, list[str]] = {}
    for lang in LANGUAGES:
        words = raw.get(lang)
        if words is None:
            if lang not in langs.allow_missing:
                raise PackageError(R_("missing translation: keywords.%(lang)s; give the keywords in every language or set allow_missing_languages"), source=source, lang=lang)
            langs.missing.append(f"keywords.{lang}")
            continue
        if not isinstance(words, list) or len(words) > 50:
            raise PackageError(R_("keywords.%(lang)s: must be a list of at most 50 words"),
                               source=source, lang=lang)
        out[lang] = [clean(w, f"keywords.{lang}.{i}", source=source, limit=100)
                     for i, w in enumerate(words)]
    for lang in LANGUAGES:
        out.setdefault(lang, next(out[lg] for lg in langs.order if lg in out))
    return out


@dataclass
class Meta:
    langs: Languages
    title: dict[str, str]
    description: dict[str, str]
    created: datetime
    license: dict
    keywords: dict[str, list[str]]
    contributors: list[dict]
    sources: list[dict]
    homepage: str | None
    landing_url: str | None
    doi: str | None
    publisher: dict[str, str]
    dim_titles: dict[str, dict[str, str]]
    measure_title: dict[str, str]
    unit: dict[str, str]
    reference: dict[str, dict[str, str]]
    contact: dict[str, Any] | None = None  # the contact point: {name: {kk,ru,en}, email}
    notice: dict[str, str] | None = None  # a correction's or revision's notice, per language


def release_notice(notice: Any, default: str, *, source: str) -> dict[str, str] | None:
    """A release's notice as ``{lang: text}`` (the languages given), checked as plain text; the
    default language's text is required when there is a notice at all."""
    if notice is None or notice == {} or notice == "":
        return None
    if isinstance(notice, str):
        notice = {default: notice}
    if not isinstance(notice, dict):
        raise PackageError(R_("notice: must be a mapping of language to text"), source=source)
    unknown = [k for k in notice if k not in LANGUAGES]
    if unknown:
        raise PackageError(R_("notice: unknown language %(unknown)s (languages: kk, ru, en)"),
                           source=source, unknown=repr(str(unknown[0])[:20]))
    out = {lang: clean(text, f"notice.{lang}", source=source, long=True)
           for lang, text in notice.items() if isinstance(text, str) and text.strip()}
    if default not in out:
        raise PackageError(R_("notice: the text in the default language (%(lang)s) is required; "
                              "the other languages are optional"), source=source, lang=default)
    return out


#: a text written like a period code (digits, Q/S/W/M/T, separators, no space), not in words
_CODE_LIKE = re.compile(r"^(?=.*\d)[0-9QSWMT/:.+\-]+$")
#: SDMX reporting periods besides ISO 8601 calendar dates: half-years and ISO weeks
_SDMX_PERIOD = re.compile(r"^\d{4}-(S[12]|W(0[1-9]|[1-4]\d|5[0-3]))$")


def _iso_period(text: str) -> bool:
    """Whether ``text`` is an ISO 8601 period as :func:`disclosure.history.parse_period` reads
    it (``2024``, ``2024-Q1``, ``2024-01``, ``2024-01-15``, ``START/END``), or an SDMX
    half-year or week (``2024-S1``, ``2024-W05``)."""
    from disclosure.history import HistoryError, parse_period

    if _SDMX_PERIOD.match(text):
        return True
    try:
        parse_period(text)
    except HistoryError:
        return False
    return True


def reference_period(raw: Any, langs: Languages, source: str) -> dict[str, str]:
    """The spec's ``reference_period`` in kk/ru/en, refused unless it is a period.

    A plain string (or a year as a number) is the period code of every language and must be an
    ISO 8601 period. A text per language may name the period in words (``Year 2023``); a text
    written like a code (``2023-2024``, ``2024-13``) must be one, and the languages that give a
    code must give the same one. A refusal names the key and the language.
    """
    if isinstance(raw, str | int) and not isinstance(raw, bool):
        code = str(raw).strip()
        if not _iso_period(code):
            raise PackageError(R_("key reference_period: %(s)s is not an ISO 8601 period (give 2024, 2024-Q1, 2024-01, 2024-01-15, or START/END of two of those)"), source=source, s=repr(code[:40]))
        return dict.fromkeys(LANGUAGES, code)
    text = langs.text(raw, "reference_period")
    codes: dict[str, str] = {}
    for lang in langs.order:
        value = text[lang].strip()
        if not _CODE_LIKE.match(value):
            continue  # the period in words
        if not _iso_period(value):
            raise PackageError(R_("key reference_period.%(lang)s: %(s)s is written like a period code but is not an ISO 8601 period (give 2024, 2024-Q1, 2024-01, 2024-01-15, START/END of two of those, or the period in words)"), source=source, lang=lang, s=repr(value[:40]))
        codes[lang] = value
    la, a = next(iter(codes.items()), ("", ""))
    lb, b = next(((lg, c) for lg, c in codes.items() if c != a), ("", ""))
    if lb:
        raise PackageError(R_("key reference_period: the languages give different periods (%(a)s in reference_period.%(la)s, %(b)s in reference_period.%(lb)s)"), source=source, a=repr(a), la=la, b=repr(b), lb=lb)
    return text


def gather_metadata(spec: TableSpec, *, source: str, created: datetime | None,
                    landing_url: str | None, publisher_name: dict[str, str] | None,
                    warnings: list[str]) -> Meta:
    """Every text of the release, checked and in kk/ru/en (or refused)."""
    md = spec.metadata or {}
    if not isinstance(md, dict):
        raise PackageError(R_("metadata must be a mapping"), source=source)
    langs = Languages.from_metadata(md, source)
    title = langs.text(spec.title or None, "title")
    desc_raw = spec.description or md.get("description") or None
    description = langs.text(desc_raw, "description", long=True) if desc_raw else None

    pub = md.get("publisher") or {}
    if not isinstance(pub, dict):
        raise PackageError(R_("publisher: must be {name: {kk,ru,en}, path, email}"), source=source)
    if publisher_name:
        publisher = langs.text(publisher_name, "publisher_name")
    elif pub.get("name"):
        publisher = langs.text(pub["name"], "publisher.name")
    else:
        publisher = tr(DEFAULT_PUBLISHER)
        warnings.append("no publisher given (spec 'publisher.name' or publisher_name): the "
                        "citation names a generic 'Statistical office'")

    contributors: list[dict] = []
    raw_c = md.get("contributors") or []
    if not isinstance(raw_c, list) or len(raw_c) > 100:
        raise PackageError(R_("contributors: must be a list (at most 100)"), source=source)
    for i, c in enumerate(raw_c):
        contributors.append(_person(c, f"contributors.{i}", langs, source, neutral=True))
    if not any(c.get("role") == "publisher" for c in contributors):
        p: dict[str, Any] = {"title": publisher, "role": "publisher"}
        if pub.get("path"):
            p["path"] = pub["path"]
        if pub.get("email"):
            p["email"] = pub["email"]
        contributors.insert(0, _person(p, "publisher", langs, source))
    sources = []
    raw_s = md.get("sources") or []
    if not isinstance(raw_s, list) or len(raw_s) > 100:
        raise PackageError(R_("sources: must be a list (at most 100)"), source=source)
    for i, s in enumerate(raw_s):
        sources.append(_person(s, f"sources.{i}", langs, source))

    if landing_url is not None:
        landing_url = clean_url(landing_url, "landing_url", source=source)
    homepage = md.get("homepage")
    homepage = clean_url(homepage, "homepage", source=source) if homepage else landing_url
    doi = md.get("doi")
    if doi is not None:
        doi = str(doi).strip().removeprefix("https://doi.org/")
        if not re.match(r"^10\.\d{4,9}/[-._;()/:A-Za-z0-9]{1,200}$", doi):
            raise PackageError(R_("doi: must look like 10.1234/abc"), source=source)

    dim_titles = {}
    for d in spec.dimensions:
        builtin = DIMENSION_TITLES.get(d.name.lower())
        fallback = tr(builtin) if builtin else None
        if not d.title and fallback is None:
            fallback = dict.fromkeys(LANGUAGES, d.name)
            warnings.append(f"dimension {d.name!r} has no title; its name is used")
        dim_titles[d.name] = langs.text(d.title or None, f"dimensions.{d.name}.title",
                                        fallback=fallback)
    measure_title = langs.text(md.get("measure_title"), "measure_title",
                               fallback=tr(MEASURE_TITLE))
    if md.get("unit") is None and md.get("measure_title") is not None:
        # the built-in unit (persons) belongs to the built-in measure (number of persons)
        raise PackageError(R_("key %(key)s: missing; the spec gives its own %(measure)s, so give the unit of that measure in kk, ru and en (the built-in unit, persons, fits only the built-in measure, the number of persons)"), source=source, key="unit", measure="measure_title")
    unit = langs.text(md.get("unit"), "unit", fallback=tr(UNIT))
    reference: dict[str, dict[str, str]] = {"unit_of_measure": unit}
    period = md.get("reference_period")
    if period is not None:
        reference["reference_period"] = reference_period(period, langs, source)
    if md.get("next_release"):  # ISO date, the same in every language
        reference["next_release"] = dict.fromkeys(LANGUAGES, str(md["next_release"]))
    extra = md.get("reference_metadata") or {}
    if not isinstance(extra, dict) or len(extra) > 40:
        raise PackageError(R_("reference_metadata: must be a mapping of at most 40 notes"),
                           source=source)
    for k, v in extra.items():
        if not re.match(r"^[a-z][a-z0-9_]{0,40}$", str(k)):
            raise PackageError(R_("reference_metadata: key %(k)s must be a-z 0-9 _"),
                               source=source, k=repr(str(k)[:40]))
        reference[k] = langs.text(v, f"reference_metadata.{k}", long=True)
    return Meta(
        langs=langs, title=title, description=description or {},
        created=_created(created, md, source), license=_license(md, source),
        keywords=_keywords(md, langs, source), contributors=contributors, sources=sources,
        homepage=homepage, landing_url=landing_url, doi=doi, publisher=publisher,
        dim_titles=dim_titles, measure_title=measure_title, unit=unit, reference=reference,
        contact=contact_point(md, langs, publisher, source),
    )


# ----------------------------------------------------------------------------- files

def _csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    """CSV of text cells; a cell a spreadsheet would run as a formula is neutralised
    (:func:`datapackages.text.csv_safe`; numbers such as a negative ``obs_value`` stay numbers).
    Hashes and sizes are taken from these bytes, so the descriptor matches them."""
    from .text import csv_safe

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows([csv_safe(c) for c in row] for row in rows)
    return buf.getvalue().encode("utf-8")


def _resource(name: str, path: str, body: bytes, fmt: str, mediatype: str, title: dict[str, str],
              description: dict[str, str], default: str, *, tabular: bool,
              schema: dict | None = None, extra: dict | None = None) -> dict:
    r: dict[str, Any] = {
        "name": name,
        "path": path,
        "profile": "tabular-data-resource" if tabular else "data-resource",
    }
    if not tabular:
        r["type"] = "file"  # frictionless 5: check bytes and hash, do not parse as a table
    r.update({
        "title": title[default], "description": description[default],
        "format": fmt, "mediatype": mediatype, "encoding": "utf-8",
        "bytes": len(body), "hash": "sha256:" + hashlib.sha256(body).hexdigest(),
    })
    if schema is not None:
        r["schema"] = schema
    r["x_translations"] = {"title": title, "description": description}
    if extra:
        r.update(extra)
    return r


def _field(name: str, ftype: str, title: dict[str, str], default: str,
           description: dict[str, str] | None = None, constraints: dict | None = None) -> dict:
    f: dict[str, Any] = {"name": name, "type": ftype, "title": title[default]}
    if description:
        f["description"] = description[default]
    if constraints:
        f["constraints"] = constraints
    translations: dict[str, Any] = {"title": title}
    if description:
        translations["description"] = description
    f["x_translations"] = translations
    return f


def _resource_name(base: str, taken: set[str]) -> str:
    name = re.sub(r"[^a-z0-9._-]", "-", base.lower())
    out, n = name, 2
    while out in taken:
        out, n = f"{name}-{n}", n + 1
    taken.add(out)
    return out


def _per_lang(fn: Any) -> dict[str, str]:
    return {lang: fn(lang) for lang in LANGUAGES}


# ----------------------------------------------------------------------------- main

def package_table(spec: TableSpec, protected_csv: Path | str | bytes, out_dir: Path, *,
                  report: dict | None = None, previous_version: str | None = None,
                  landing_url: str | None = None, created: datetime | None = None,
                  publisher_name: dict[str, str] | None = None,
                  codelist_dir: Path | None = None, name: str | None = None,
                  notice: dict[str, str] | None = None) -> PackageResult:
    """Check, build, validate and write the data package of one protected table.

    Writes ``out_dir`` (replacing an earlier package there, never another kind of folder) and
    ``out_dir`` + ``.zip``. Same inputs (including ``created``) give the same zip bytes.
    Raises :class:`PackageError` (one line: file, row, column, reason); then nothing is written.
    ``protected_csv`` is the protected table's CSV file or its bytes (``name`` names it in
    messages). ``notice``: the notice of a correction or revision, ``{lang: text}``, required
    in the default language; a language without its own text shows the default language's
    (``x_release.notice``, with ``notice_languages`` naming the languages written for it).
    """
    if isinstance(protected_csv, str | Path):
        protected_csv = Path(protected_csv)
        name = name or str(protected_csv)
    else:
        protected_csv = bytes(protected_csv)
        name = name or "protected table"
    out_dir = Path(out_dir).resolve()
    source = f"spec {spec.id}"
    warnings: list[str] = []
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    check_version(spec.version, previous_version, source)
    impl = method_of(spec)
    rep = None if report is None else _typed_report(report, impl, source)
    meta = gather_metadata(spec, source=source, created=created, landing_url=landing_url,
                           publisher_name=publisher_name, warnings=warnings)
    meta.notice = release_notice(notice, meta.langs.default, source=source)
    additive = impl.additive(rep) if rep is not None else True
    warnings.extend(impl.package_warnings(rep) if rep is not None else [])
    table = read_protected(spec, protected_csv, name=name, check_additivity=additive)
    non_negative = all(r["obs_value"] is None or r["obs_value"] >= 0 for r in table.rows)
    facts = PublishedFacts(cells=table.counts["cells"], primary=table.counts["C"],
                           secondary=table.counts["D"], non_negative=non_negative,
                           additive=additive)
    if rep is not None:
        problem = impl.check_published(rep, facts)
        if problem:
            raise PackageError(R_("%(problem)s; refusing to package the table"), source=name,
                               problem=problem if isinstance(problem, Phrase) else Word(problem))
    codelists = {d.name: build_codelist(d, meta.langs, codelist_dir, warnings)
                 for d in spec.dimensions}
    method = method_block(spec, rep, facts)
    method["text"] = {lang: clean(method["text"][lang], f"method.text.{lang}", source=source,
                                  long=True, limit=4 * LONG) for lang in LANGUAGES}
    method["parameters"]["additive"] = additive
    if not meta.description:
        meta.description = {lang: f"{meta.title[lang]}. {method['text'][lang]}"
                            for lang in LANGUAGES}
    meta.reference["confidentiality_data_treatment"] = method["text"]
    timings["check"] = time.perf_counter() - t0

    if out_dir.exists() and not (out_dir.is_dir() and (
            not any(out_dir.iterdir()) or (out_dir / "datapackage.json").is_file())):
        raise PackageError(R_("exists and is not an earlier data package; refusing to replace it"),
                           source=str(out_dir))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    zip_path = out_dir.with_name(out_dir.name + ".zip")
    zip_tmp = out_dir.with_name(f".{out_dir.name}.zip.{uuid.uuid4().hex[:8]}.tmp")
    try:
        files, descriptor = _write_all(spec, table, codelists, method, meta, tmp,
                                       previous_version, timings)
        t = time.perf_counter()
        _validate(tmp / "datapackage.json", spec.id, source)
        timings["validate"] = time.perf_counter() - t
        t = time.perf_counter()
        zip_bytes = _zip(tmp, files, meta.created)
        timings["zip"] = time.perf_counter() - t
        zip_tmp.write_bytes(zip_bytes)
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
            out_dir.rename(old)
        try:
            tmp.rename(out_dir)
        except OSError:
            if old is not None:
                old.rename(out_dir)
            raise
        os.replace(zip_tmp, zip_path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        zip_tmp.unlink(missing_ok=True)
        raise
    if meta.langs.missing:
        warnings.append("translations filled from another language (allowed by the spec): "
                        + ", ".join(meta.langs.missing))
    return PackageResult(path=out_dir, zip_path=zip_path, descriptor=descriptor,
                         sha256=hashlib.sha256(zip_bytes).hexdigest(), files=files,
                         warnings=warnings, timings=timings)


def _typed_report(report: dict | ProtectionReport, method: DisclosureMethod,
                  source: str) -> ProtectionReport:
    """The typed report of a JSON report, which must be of the spec's method."""
    try:
        rep = report_from_dict(report)
    except ReportError as e:
        raise PackageError(R_("the protection report does not fit: %(reason_name)s"),
                           source=source, reason_name=e.reason) from None
    if rep.method != method.name:
        raise PackageError(R_("the protection report is of method %(method)s but the spec asks for %(name)s"), source=source, method=repr(rep.method), name=repr(method.name))
    return rep


def method_block(spec: TableSpec, report: ProtectionReport | None,
                 facts: PublishedFacts) -> dict[str, Any]:
    """The package's ``x_method``: the method's own note, its flags with their meanings."""
    impl = method_of(spec)
    note = impl.describe(spec, report, facts, tr)
    out: dict[str, Any] = {"method": impl.name, "parameters": dict(note.parameters)}
    if note.cells is not None:
        out["cells"] = note.cells
    out["text"] = note.text
    out["flags"] = flag_meanings(impl.flags)
    if note.audit is not None:
        out["audit"] = note.audit
    return out


def _write_all(spec: TableSpec, table: ProtectedRows, codelists: dict[str, CodeList],
               method: dict, meta: Meta, tmp: Path, previous_version: str | None,
               timings: dict[str, float]) -> tuple[list[str], dict]:
    t0 = time.perf_counter()
    default = meta.langs.default
    dims = list(spec.dimension_names)
    impl = method_of(spec)
    extra = impl.columns
    suppresses = any(c != "A" for c in impl.flags.get("obs_status", ()))
    files: dict[str, bytes] = {}
    resources: list[dict] = []
    taken: set[str] = {spec.id}

    # Code lists and flag lists first: the data's foreign keys point at them.
    fk: list[dict] = []
    cl_resources = []
    for d in dims:
        cl = codelists[d]
        name = _resource_name(f"codelist-{d}", taken)
        path = f"codelists/{d}.csv"
        body = _csv_bytes(["code", "parent", "level", "label_kk", "label_ru", "label_en"], [
            [c, cl.parent[c], str(cl.level[c]), *(cl.labels[c][lg] for lg in LANGUAGES)]
            for c in cl.codes])
        files[path] = body
        dt = meta.dim_titles[d]
        schema = {
            "fields": [
                _field("code", "string", tr("Code"), default,
                       constraints={"required": True, "unique": True}),
                _field("parent", "string", tr("Parent code"), default),
                _field("level", "integer", tr("Level"),
                       default, constraints={"required": True, "minimum": 0}),
                *(_field(f"label_{lg}", "string",
                         tr("Label (%(language)s)", language=tr(LANGUAGE_IN[lg])),
                         default, constraints={"required": True}) for lg in LANGUAGES),
            ],
            "missingValues": [""],
            "primaryKey": ["code"],
            "foreignKeys": [{"fields": ["parent"], "reference": {"resource": "",
                                                                 "fields": ["code"]}}],
        }
        cl_resources.append(_resource(
            name, path, body, "csv", "text/csv",
            tr("Code list: %(dimension)s", dimension=dt),
            tr("Codes of the dimension “%(dimension)s” and their labels in Kazakh, Russian and "
               "English.", dimension=dt),
            default, tabular=True, schema=schema, extra={"x_codelist_source": cl.source}))
        fk.append({"fields": [d], "reference": {"resource": name, "fields": ["code"]}})
    flag_resources = []
    for col, codes in impl.flags.items():
        name = _resource_name(f"flags-{col.replace('_', '-')}", taken)
        path = f"flags/{col}.csv"
        body = _csv_bytes(["code", "label_kk", "label_ru", "label_en"], [
            [c, *(method["flags"][col][c][lg] for lg in LANGUAGES)] for c in codes])
        files[path] = body
        ft = tr(FIELD_TEXT[col])
        schema = {
            "fields": [
                _field("code", "string", tr("Code"), default,
                       constraints={"required": True, "unique": True}),
                *(_field(f"label_{lg}", "string",
                         tr("Meaning (%(language)s)", language=tr(LANGUAGE_IN[lg])),
                         default, constraints={"required": True}) for lg in LANGUAGES),
            ],
            "missingValues": [""],
            "primaryKey": ["code"],
        }
        flag_resources.append(_resource(
            name, path, body, "csv", "text/csv", ft,
            tr("Meaning of the flags: %(column)s", column=ft),
            default, tabular=True, schema=schema))
        fk.append({"fields": [col], "reference": {"resource": name, "fields": ["code"]}})

    # The data table.
    data_path = f"data/{spec.id}.csv"
    cols = table.columns
    order = [*dims, "obs_value", "obs_status", "conf_status", *(c.name for c in extra)]
    assert sorted(order) == sorted(cols)
    body = _csv_bytes(order, [[("" if r[c] is None else str(r[c])) for c in order]
                              for r in table.rows])
    files[data_path] = body
    any_negative = any(r["obs_value"] is not None and r["obs_value"] < 0 for r in table.rows)
    value_constraints = {} if any_negative else {"minimum": 0}
    flag_note = tr("An empty value is a cell suppressed for confidentiality (conf_status C or D).")
    unit_note = tr("Unit of measure: %(unit)s.", unit=meta.unit)
    obs_desc = {lg: unit_note[lg] + (" " + flag_note[lg] if suppresses else "")
                for lg in LANGUAGES}
    fields = [
        _field(d, "string", meta.dim_titles[d], default,
               tr("Code; labels: %(path)s", path="codelists/" + d + ".csv"),
               constraints={"required": True})
        for d in dims
    ]
    fields.append(_field("obs_value", "integer", meta.measure_title, default, obs_desc,
                         constraints=value_constraints or None))
    for col in ("obs_status", "conf_status"):
        meanings = {lg: "; ".join(f"{c} = {method['flags'][col][c][lg]}"
                                  for c in impl.flags[col]) for lg in LANGUAGES}
        fields.append(_field(col, "string", tr(FIELD_TEXT[col]), default, meanings,
                             constraints={"required": True,
                                          "enum": list(impl.flags[col])}))
    for c in extra:
        cons: dict[str, Any] = {"required": True}
        if c.minimum is not None:
            cons["minimum"] = c.minimum
        fields.append(_field(c.name, c.type, tr(c.title), default, method["text"],
                             constraints=cons))
    data_schema = {"fields": fields, "missingValues": [""], "primaryKey": dims,
                   "foreignKeys": fk}
    data_title = meta.title
    data_desc = tr("%(title)s. One row per cell (totals included). %(method)s",
                   title=meta.title, method=method["text"])
    data_res = _resource(spec.id, data_path, body, "csv", "text/csv", data_title, data_desc,
                         default, tabular=True, schema=data_schema)
    resources.append(data_res)
    resources += cl_resources + flag_resources

    # Base descriptor: everything the citations read.
    ident = (f"https://doi.org/{meta.doi}" if meta.doi else
             meta.landing_url or
             "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"ashyq:{spec.id}:{spec.version}")))
    descriptor: dict[str, Any] = {
        "name": spec.id,
        "id": ident,
        "title": meta.title[default],
        "description": meta.description[default],
        "version": spec.version,
        "created": meta.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "languages": list(meta.langs.order),
        "licenses": [meta.license],
        "contributors": meta.contributors,
    }
    if meta.keywords[default]:  # v1 requires a non-empty list when present
        descriptor["keywords"] = meta.keywords[default]
    if meta.sources:
        descriptor["sources"] = meta.sources
    if meta.homepage:
        descriptor["homepage"] = meta.homepage
    descriptor["x_translations"] = {"title": meta.title, "description": meta.description,
                                    "keywords": meta.keywords}
    if meta.landing_url:
        descriptor["x_landing_url"] = meta.landing_url
    release: dict[str, Any] = {"version": spec.version, "series": spec.id}
    if previous_version:
        release["previous_version"] = previous_version
    if meta.notice:
        release["notice"] = {lang: meta.notice.get(lang) or meta.notice[default]
                             for lang in LANGUAGES}
        release["notice_languages"] = [lang for lang in LANGUAGES if meta.notice.get(lang)]
    if "next_release" in meta.reference:
        release["next_release"] = meta.reference["next_release"][default]
    descriptor["x_release"] = release
    descriptor["x_method"] = method
    descriptor["x_reference_metadata"] = meta.reference
    if meta.contact:
        descriptor["x_contact_point"] = meta.contact
    if meta.langs.missing:
        descriptor["x_missing_translations"] = list(meta.langs.missing)
    if (spec.metadata or {}).get("synthetic") is True:
        descriptor["x_synthetic"] = True  # made-up data for demonstration, not about people

    citations = {lg: cite.citation(descriptor, lg) for lg in LANGUAGES}
    descriptor["x_citation"] = {"text": citations, "csl_json": "citation/citation.csl.json",
                                "biblatex": "citation/citation.bib"}

    # Downloads.
    text = TableText(title=meta.title, description=meta.description, version=spec.version,
                     created=meta.created, license=meta.license.get("title") or
                     meta.license.get("name") or meta.license.get("path", ""),
                     dimension_titles=meta.dim_titles, measure_title=meta.measure_title,
                     method_text=method["text"], flags=method["flags"], citation=citations,
                     source=meta.publisher, series=spec.id, unit=meta.unit,
                     reference_period=meta.reference.get("reference_period"),
                     contact=meta.contact, default_language=default,
                     next_release=(meta.reference.get("next_release") or {}).get(default))
    timings["csv"] = time.perf_counter() - t0
    download = DownloadTable(rows=table.rows, dimensions=dims, codelists=codelists, text=text,
                             extra_columns=tuple(c.name for c in extra),
                             extra_titles={c.name: tr(c.title) for c in extra})
    for fmt in formats():
        t0 = time.perf_counter()
        for lg in (LANGUAGES if fmt.per_language else (default,)):
            path = (f"downloads/{spec.id}-{lg}{fmt.suffix}" if fmt.per_language
                    else f"downloads/{spec.id}{fmt.suffix}")
            body = fmt.render(download, lg)
            files[path] = body
            name = f"{spec.id}-{fmt.name}-{lg}" if fmt.per_language else f"{spec.id}-{fmt.name}"
            resources.append(_resource(
                _resource_name(name, taken), path, body, fmt.format, fmt.mediatype,
                _per_lang(lambda x, lg=lg, fmt=fmt: fmt.title(meta.title[x], lg, x)),
                _per_lang(lambda x, lg=lg, fmt=fmt: fmt.description(lg, x)),
                default, tabular=False,
                extra={"x_language": lg} if fmt.per_language else None))
        timings[fmt.name] = time.perf_counter() - t0
    # Citations.
    txt = "".join(f"[{lg}] {citations[lg]}\n" for lg in meta.langs.order).encode("utf-8")
    csl = dumps([cite.csl_json(descriptor, lg) for lg in meta.langs.order])
    bib = "\n".join(cite.biblatex(descriptor, lg) for lg in meta.langs.order).encode("utf-8")
    for path, body, fmt, mt, what in (
            ("citation/citation.txt", txt, "txt", "text/plain", "DataCite"),
            ("citation/citation.csl.json", csl, "json", "application/vnd.citationstyles.csl+json",
             "CSL-JSON"),
            ("citation/citation.bib", bib, "bib", "application/x-bibtex", "BibLaTeX")):
        files[path] = body
        resources.append(_resource(
            _resource_name(f"citation-{fmt}", taken), path, body, fmt, mt,
            tr("How to cite (%(format)s)", format=what),
            tr("Citation of this version as %(format)s (Kazakh, Russian, English).",
               format=what),
            default, tabular=False))

    # DCAT-AP metadata of this version: every resource above as a distribution.
    descriptor["resources"] = resources
    body = dcat.dcat_turtle(descriptor)
    files[dcat.PATH] = body
    resources.append(_resource(_resource_name("dcat", taken), dcat.PATH, body, "ttl",
                               "text/turtle", *dcat.dcat_resource_text(), default,
                               tabular=False))
    files["datapackage.json"] = dumps(descriptor)
    for path, body in files.items():
        p = tmp / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body)
    return sorted(files), json.loads(files["datapackage.json"])


PROFILES = Path(__file__).resolve().parent / "profiles"


@lru_cache(maxsize=4)
def _profile(name: str) -> Any:
    import jsonschema

    schema = json.loads((PROFILES / f"{name}.json").read_text(encoding="utf-8"))
    return jsonschema.Draft4Validator(schema)


def check_v1_profiles(descriptor: dict, source: str) -> None:
    """The descriptor and each resource against the Data Package v1 JSON Schema profiles, so v1
    tools (datapackage-js) accept what frictionless 5 accepts."""
    checks: list[tuple[str, str | Phrase, dict]] = [
        ("data-package", "datapackage.json", descriptor)]
    for r in descriptor.get("resources", []):
        checks.append((r.get("profile", "data-resource"),
                       Phrase(R_("resource %(name)s"), name=r.get("name")), r))
    for profile, what, obj in checks:
        err = next(iter(_profile(profile).iter_errors(obj)), None)
        if err is not None:
            at = "/".join(str(p) for p in err.absolute_path) or "(top)"
            raise PackageError(R_("%(what)s does not fit the Data Package v1 profile %(profile)s at %(at)s: %(message)s"), source=source, what=what, profile=repr(profile), at=at, message=err.message[:200])


def _validate(descriptor_path: Path, data_name: str, source: str) -> None:
    """v1 profiles; frictionless: the whole package (hashes, types, keys); then the
    confidentiality rule."""
    from frictionless import Checklist, Package, checks

    check_v1_profiles(json.loads(descriptor_path.read_text(encoding="utf-8")), source)

    pkg = Package(str(descriptor_path))
    report = pkg.validate()
    if not report.valid:
        err = report.flatten(["type", "rowNumber", "fieldName", "note"])[:1]
        task = next(t for t in report.tasks if not t.valid) if report.tasks else None
        first = (task.errors[0].message if task and task.errors else
                 (report.errors[0].message if report.errors else str(err)))
        raise PackageError(R_("frictionless validation failed: %(first)s"),
                           source=f"{source}: {task.place if task else 'datapackage.json'}", first=first)
    rule = ("(conf_status == 'F' and obs_value != None) or "
            "(conf_status != 'F' and obs_value == None)")
    res = pkg.get_resource(data_name)
    rep = res.validate(checklist=Checklist(checks=[checks.row_constraint(formula=rule)]))
    if not rep.valid:
        e = rep.tasks[0].errors[0]
        raise PackageError(R_("confidentiality check failed: a suppressed cell carries a value or a "
                           "free cell has none"), source=res.path,
                           row=getattr(e, "row_number", None))


def _zip(root: Path, files: list[str], when: datetime) -> bytes:
    """A reproducible zip: ``datapackage.json`` at the root (so ``frictionless`` and
    ``Package("X.zip")`` open it), sorted entries, fixed times and permissions."""
    dt = (when.year, when.month, when.day, when.hour, when.minute, when.second - when.second % 2)
    if when.year < 1980:
        dt = ZIP_EPOCH
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for rel in sorted(files):
            zi = zipfile.ZipInfo(rel, date_time=dt)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            zi.create_system = 3
            z.writestr(zi, (root / rel).read_bytes())
    return buf.getvalue()


# ----------------------------------------------------------------------------- checks

def check_metadata(spec: TableSpec, *, publisher_name: dict[str, str] | None = None) -> list[str]:
    """Check the release metadata of ``spec`` as :func:`package_table` will (texts in kk/ru/en,
    markup and control characters, licence, people, URLs, ...) without building anything.

    Returns the warnings the package would carry; raises :class:`PackageError` (one line) for
    what it would refuse.
    """
    warnings: list[str] = []
    gather_metadata(spec, source=f"spec {spec.id}", created=None, landing_url=None,
                    publisher_name=publisher_name, warnings=warnings)
    return warnings
