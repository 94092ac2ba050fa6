"""The review page's summary in the reader's language: what the method did and with which
parameters, the audit, the solver's outcome, the suppression rate by dimension and level, the
column titles and flag meanings, the report's warnings, and the publication history the audit
covered with the attacker model in words (:class:`Coverage`).

Everything comes from the typed report (through the method's ``review`` hook, so nothing here
branches on a method's name) and the *protected* table; the raw upload is never read. Numbers
are formatted for the reader's locale (``1 053`` in kk/ru, ``1,053`` in en).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from flask_babel import format_decimal, format_percent, get_translations, gettext

from datapackages.flags import FIELD_TEXT, FLAG_LABELS
from datapackages.i18n import tr
from datapackages.text import DIMENSION_TITLES, MEASURE_TITLE
from disclosure.errors import R_, AshyqError, Phrase, Word, fill
from disclosure.methods import get_method
from disclosure.report import report_from_dict

from ..workflow_models import PUBLIC_STATES, Release
from . import present

TOTAL = "_T"
SUPPRESSED = "Q"  # obs_status of a suppressed cell (SDMX CL_OBS_STATUS)

# The report's warnings (stored in English) as templates of the catalogue.
_WARNINGS = tuple((re.compile(p), t) for p, t in (
    (r"^(?P<n>\d+) inner cell\(s\) absent from the input were taken as zero \(missing: zero\): "
     r"(?P<cells>.*)$",
     R_("%(n)s inner cell(s) absent from the input were taken as zero (missing: zero): "
        "%(cells)s")),
    (r"^the (?P<method>\w+) pattern failed the audit for (?P<n>\d+) primary cell\(s\); "
     r"repaired by further suppression$",
     R_("the %(method)s pattern failed the audit for %(n)s primary cell(s); repaired by further "
        "suppression")),
    (r"^certificates from secondary suppression failed verification; the audit recomputed every "
     r"interval$",
     R_("certificates from secondary suppression failed verification; the audit recomputed "
        "every interval")),
))


@dataclass
class Rate:
    """Suppressed cells of one level of one dimension (or of the whole table)."""

    label: str
    suppressed: int
    cells: int

    def text(self) -> str:
        return gettext("%(suppressed)s of %(cells)s cells, %(percent)s",
                       suppressed=format_decimal(self.suppressed),
                       cells=format_decimal(self.cells),
                       percent=format_percent(self.suppressed / self.cells if self.cells else 0))


@dataclass
class Review:
    """What the review page shows above the table (all texts in the reader's language)."""

    method: str = ""
    figures: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    absent: str = ""  # the warning that inner cells absent from the input were taken as zero
    suppresses: bool = False  # the method suppresses cells (legend, "show only suppressed")
    overall: Rate | None = None
    rates: list[tuple[str, list[Rate]]] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    flags: dict[str, dict[str, str]] = field(default_factory=dict)
    coverage: Coverage | None = None  # None: the method does not protect against a history


@dataclass
class CoveredRelease:
    """An earlier release of the source that the attacker audit covered."""

    title: str
    version: str
    period: str
    state: str = ""  # the release's state in the reader's language ("" when not in the store)
    url: str | None = None  # its review page
    public_url: str | None = None  # its public page, when it was published


@dataclass
class Coverage:
    """What the attacker audit assumed the attacker holds, in the reader's language."""

    source: str | None
    releases: list[CoveredRelease] = field(default_factory=list)
    model: list[str] = field(default_factory=list)  # paragraphs: what the attacker holds, how
    not_covered: str = ""
    flips: str = ""  # cells that changed state against the previous version


# The attacker model in words (disclosure.history.History.attacker_model is the report's English).
_HOLDS = R_("The audit assumes that an attacker holds every version, every reference period and "
            "every table of the source %(source)s that was published, approved or scheduled for "
            "publication, and every answer from it delivered privately on request: their "
            "published values are known, their suppressed cells unknown, and their patterns "
            "cannot be changed.")
_NO_SOURCE = R_("The table names no data source (source_id): the audit assumes that an attacker "
                "holds this release's tables only.")
_NONE_HELD = R_("No earlier release of the source was held when this table was protected: the "
                "audit covered this release alone.")
_RELATIONS = R_("The attacker combines the tables through every relation between them: a total "
                "is the sum of its parts, a flow for a longer period is the sum of the flows of "
                "the periods inside it, a stock at the end of a period is the stock at the end "
                "of its last sub-period, and a cell unchanged between two versions is one "
                "unknown. The attacker solves linear programs; every primary cell was proven to "
                "keep an interval at least as wide as its protection level.")
_NOT_COVERED = R_("Not covered: tables of other sources, a person's contributions across sources "
                  "(one person counted in the tables of several sources), and knowledge from "
                  "outside the published tables.")
_FLIPS = R_("Cells that changed state (published or suppressed) against the previous version "
            "%(version)s: %(n)s")


def coverage(release: Release, rep: Any, lang: str) -> Coverage:
    """The releases the audit of ``release`` covered (from its report's ``covered`` list, with
    titles and links from the store) and the attacker model, in ``lang``."""
    from flask import url_for
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    source = (release.spec or {}).get("source_id") or None
    out = Coverage(source=str(source) if source else None)
    session = object_session(release)
    for c in getattr(rep, "covered", None) or []:
        series, version = str(c.get("id") or ""), str(c.get("version") or "")
        row = None
        if session is not None:
            row = session.scalars(select(Release).where(
                Release.series == series, Release.version == version,
                Release.id != release.id).order_by(Release.id.desc())).first()
        item = CoveredRelease(title=row.title_in(lang) if row is not None else series,
                              version=version, period=str(c.get("reference_period") or ""))
        if row is not None:
            from .labels import STATE, t

            item.state = t(STATE, row.state)
            item.url = url_for("ui.release", release_id=row.id)
            if row.state in PUBLIC_STATES and row.published_at is not None:
                item.public_url = url_for("public.version_page", series=series, version=version)
        out.releases.append(item)
    if out.source is None:
        out.model.append(gettext(_NO_SOURCE))
    else:
        out.model.append(gettext(_HOLDS, source=out.source))
        if not out.releases:
            out.model.append(gettext(_NONE_HELD))
    out.model.append(gettext(_RELATIONS))
    out.not_covered = gettext(_NOT_COVERED)
    flips, previous = getattr(rep, "flips", None), getattr(rep, "previous_version", None)
    if flips is not None and previous:
        out.flips = gettext(_FLIPS, version=previous, n=format_decimal(flips))
    return out


def shown(value: Any) -> str:
    """A figure's value in the reader's language: words and phrases translated, numbers
    formatted for the locale, anything else as it is."""
    if isinstance(value, Word):
        return gettext(value)
    if isinstance(value, Phrase):
        return fill(value.template, value.params, _gettext)
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, int):
        return format_decimal(value)
    return str(value)


def _gettext(text: str) -> str:
    return gettext(text)


_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")
MIN_LITERAL = 8  # letters a template must have outside its placeholders to be matched


@cache
def _compiled(template: str) -> re.Pattern[str] | None:
    parts, seen, pos, letters = [], set(), 0, 0
    for m in _PLACEHOLDER.finditer(template):
        literal = template[pos:m.start()]
        letters += sum(ch.isalpha() for ch in literal)
        parts.append(re.escape(literal))
        if m.group(0) == "%%":
            parts.append("%")
        elif m.group(1) in seen:
            parts.append(f"(?P={m.group(1)})")
        else:
            seen.add(m.group(1))
            parts.append(f"(?P<{m.group(1)}>.+?)")
        pos = m.end()
    literal = template[pos:]
    letters += sum(ch.isalpha() for ch in literal)
    parts.append(re.escape(literal))
    return re.compile("^" + "".join(parts) + "$", re.S) if letters >= MIN_LITERAL else None


def _templates() -> list[str]:
    """The catalogue's templates with placeholders, the most specific first."""
    ids = [k for k in getattr(get_translations(), "_catalog", {}) if isinstance(k, str) and "%(" in k]
    return sorted(ids, key=lambda t: -len(_PLACEHOLDER.sub("", t)))


def line_in_language(text: str) -> str:
    """A line stored in English (a worker's progress, a refusal kept as text) in the reader's
    language: the catalogue's template it was made from, translated and filled with the values
    taken out of it (values themselves are translated where they are a msgid); as stored when
    no template matches."""
    text = str(text or "")
    if not text:
        return text
    whole = gettext(text)
    if whole != text:
        return whole
    for template in _templates():
        pattern = _compiled(template)
        m = pattern.match(text) if pattern else None
        if m:
            params = {k: Word(v) for k, v in m.groupdict().items()}
            return shown(Phrase(template, **params))
    return text


def warning_text(warning: str) -> str:
    """A report warning in the reader's language (as stored when no template matches)."""
    if isinstance(warning, Phrase):
        return shown(warning)
    for pattern, template in _WARNINGS:
        m = pattern.match(warning)
        if m:
            params = m.groupdict()
            if "method" in params:
                params["method"] = Word({"optimal": R_("optimal"), "heuristic": R_("heuristic"),
                                         "none": R_("not applied")}.get(params["method"],
                                                                         params["method"]))
            return shown(Phrase(template, **params))
    return line_in_language(warning)


def dimension_title(release: Release, dim: str, lang: str) -> str:
    """The dimension's title in ``lang``: the spec's, else the built-in one, else its name."""
    title = present.dim_title(release, dim, lang)
    if title != dim:
        return title
    builtin = DIMENSION_TITLES.get(dim.lower())
    return tr(builtin)[lang] if builtin else dim


def review(release: Release, report: dict[str, Any] | None, lang: str) -> Review:
    """The review summary of ``release`` (``report``: its stored report, raw figures removed)."""
    out = Review()
    rep = None
    if report:
        try:
            rep = report_from_dict(report)
        except AshyqError as e:
            out.warnings.append(gettext("The stored report cannot be read: %(reason)s",
                                        reason=e.localized_reason(_gettext)))
    method = None
    if rep is not None:
        method = get_method(rep.method)
        out.method = gettext(method.label)
        out.figures = [(gettext(label), shown(value))
                       for label, value in method.review(rep).items()]
        if getattr(method, "history", False) and hasattr(rep, "covered"):
            out.coverage = coverage(release, rep, lang)
        for w in rep.warnings:
            if _WARNINGS[0][0].match(str(w)):
                out.absent = warning_text(w)
            else:
                out.warnings.append(warning_text(w))
    flags = dict(method.flags) if method else {"obs_status": ("A", "Q"),
                                                "conf_status": ("F", "C", "D")}
    out.suppresses = SUPPRESSED in flags.get("obs_status", ())
    dims = present.dimension_names(release)
    out.columns = {d: dimension_title(release, d, lang) for d in dims}
    measure = (release.spec or {}).get("measure_title") or {}
    out.columns["obs_value"] = (measure.get(lang) if isinstance(measure, dict) else None) \
        or tr(MEASURE_TITLE)[lang]
    for col in (method.columns if method else ()):
        out.columns[col.name] = tr(col.title)[lang]
    for col in ("obs_status", "conf_status"):
        out.columns[col] = tr(FIELD_TEXT[col])[lang]
        out.flags[col] = {c: tr(FLAG_LABELS[col][c])[lang] for c in flags.get(col, ())
                          if c in FLAG_LABELS.get(col, {})}
    if out.suppresses:
        out.overall, out.rates = _rates(release, lang)
    return out


def _rates(release: Release, lang: str) -> tuple[Rate | None, list[tuple[str, list[Rate]]]]:
    """Suppressed cells of the whole table, and of each level of each dimension (level 0 is the
    dimension's total, level 1 its top codes, ...), from the protected table's flags."""
    df = present.protected_frame(release)
    if df.empty or "obs_status" not in df.columns:
        return None, []
    hidden = df["obs_status"] == SUPPRESSED
    overall = Rate(gettext("All cells"), int(hidden.sum()), len(df))
    lists = present.codelists(release)
    rates = []
    for dim in present.dimension_names(release):
        if dim not in df.columns:
            continue
        parent = (lists.get(dim) or {}).get("parent") or {}
        depth = {code: _depth(code, parent) for code in df[dim].unique()}
        levels = df[dim].map(depth)
        out = []
        for lv in sorted(set(levels)):
            sel = levels == lv
            name = (gettext("total (%(code)s)", code=TOTAL) if lv == 0
                    else gettext("level %(n)s", n=lv))
            out.append(Rate(name, int((hidden & sel).sum()), int(sel.sum())))
        rates.append((dimension_title(release, dim, lang), out))
    return overall, rates


def _depth(code: str, parent: dict[str, str]) -> int:
    if code == TOTAL:
        return 0
    d, seen = 1, {code}
    p = parent.get(code, TOTAL)
    while p and p != TOTAL and p not in seen and d < 64:
        seen.add(p)
        d += 1
        p = parent.get(p, TOTAL)
    return d


__all__ = ["Coverage", "CoveredRelease", "Rate", "Review", "coverage", "dimension_title", "line_in_language", "review", "shown",
           "warning_text"]
