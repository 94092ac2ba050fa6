"""Public pages (no sign-in): the catalogue at ``/`` (search and filters over every published
series), the release calendar, one page per series (its versions and, for periodic series, a
time-series chart) and one page per published version: citation (kk/ru/en, CSL-JSON, BibLaTeX),
downloads, method note, CKAN link, correction notice, what changed — and the **explorer**: pick
values by label, pivot any variable to rows or columns, fold and unfold hierarchies, a chart and a
tile map of the view, and the view's own downloads (CSV, XLSX, JSON-stat).

Only published (or later retired) versions are reachable, and only their protected tables and
packages are served: nothing here reads the uploaded raw table. An unknown series and a series
still under embargo get the same answer. The calendar shows scheduled releases by title and date
only.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import select

from datapackages.formats import GEO_NAMES
from disclosure.errors import AshyqError
from disclosure.spec import LANGUAGES

from .. import explore as ex
from .. import workflow as wf
from ..workflow_models import PUBLIC_STATES, SCHEDULED, WITHDRAWN, Release, utcnow
from . import charts, present
from . import view_downloads as vd
from .common import db, settings

bp = Blueprint("public", __name__, url_prefix="/v")
catalogue_bp = Blueprint("catalogue", __name__)
LANGS = LANGUAGES
PAGE_MAX_CELLS = 5_000        # cells a page renders in its grid
DOWNLOAD_MAX_CELLS = 1_000_000  # cells a view download may hold (CSV, JSON-stat)
XLSX_MAX_CELLS = 200_000  # an XLSX crosstab (Excel's own limit is 16,384 columns)
CHART_MAX_CATEGORIES = 60
CHART_MAX_SERIES = 8


def _lang() -> str:
    return str(get_locale() or "kk")


def _t(texts: Any, lang: str, default: str = "") -> str:
    if isinstance(texts, dict):
        return str(texts.get(lang) or texts.get("en") or next(iter(texts.values()), default))
    return str(texts) if texts else default


# -- the package ---------------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _read_descriptor(path: str, mtime: float) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError):
        return None


def descriptor(r: Release) -> dict[str, Any] | None:
    """The published package's ``datapackage.json`` (None before packaging or if unreadable)."""
    if not r.package_path:
        return None
    p = Path(r.package_path) / "datapackage.json"
    try:
        return _read_descriptor(str(p), p.stat().st_mtime)
    except OSError:
        return None


def citations(r: Release, accessed: str) -> dict[str, Any]:
    """Citation text per language, CSL-JSON and BibLaTeX (from the package when there is one)."""
    d = descriptor(r)
    if d is not None:
        try:
            # (``datapackages.citation`` is the function, not its module, at the package level)
            from datapackages import biblatex, citation, csl_json

            day = datetime.now(UTC).date()
            return {"text": {lg: citation(d, lg, accessed=day) for lg in LANGS},
                    "csl": csl_json(d, _lang()), "bib": biblatex(d, _lang())}
        except Exception as e:  # noqa: BLE001 - fall back to the page's own form
            current_app.logger.warning("citation from the package failed: %s", type(e).__name__,
                                       exc_info=current_app.debug or current_app.testing)
    s = settings()
    return {"text": {lg: present.citation_text(r, lg, s, accessed) for lg in LANGS},
            "csl": present.citation_csl(r, s, _lang()), "bib": present.citation_biblatex(r, s, _lang())}


def method_text(r: Release) -> str | None:
    d = descriptor(r)
    if d is None:
        return None
    text = ((d.get("x_method") or {}).get("text") or {})
    return text.get(_lang()) or text.get("en")


def facts(r: Release, lang: str) -> dict[str, Any]:
    """What a reader needs beside the numbers: description, licence, reference period, unit,
    source, keywords — from the package, else from the spec."""
    d = descriptor(r) or {}
    spec = r.spec or {}
    tr = d.get("x_translations") or {}
    ref = d.get("x_reference_metadata") or {}
    lic = (d.get("licenses") or [{}])[0] if d.get("licenses") else {}
    period = _t(ref.get("reference_period"), lang) or str(spec.get("reference_period") or "")
    return {
        "description": _t(tr.get("description"), lang) or _t(spec.get("description"), lang),
        "licence": lic.get("title") or lic.get("name") or str(spec.get("license") or ""),
        "licence_url": lic.get("path") if str(lic.get("path", "")).startswith("https://") else "",
        "period": period,
        "unit": _t(ref.get("unit_of_measure"), lang) or _t(spec.get("unit"), lang),
        "source": str(spec.get("source_id") or ""),
        "keywords": [str(k) for k in (spec.get("keywords") or [])],
        "publisher": _t(((d.get("contributors") or [{}])[0].get("x_translations") or {}).get("title"),
                        lang) if d.get("contributors") else "",
        "synthetic": bool(spec.get("synthetic") or d.get("x_synthetic")),
    }


def _dim_titles(r: Release) -> dict[str, dict[str, str]]:
    d = descriptor(r) or {}
    out: dict[str, dict[str, str]] = {}
    for res in (d.get("resources") or [])[:1]:
        for f in (res.get("schema") or {}).get("fields") or []:
            t = (f.get("x_translations") or {}).get("title")
            if isinstance(t, dict):
                out[str(f.get("name"))] = {k: str(v) for k, v in t.items()}
    for dim in (r.spec or {}).get("dimensions", []):
        name = str(dim.get("name"))
        if name not in out and isinstance(dim.get("title"), dict):
            out[name] = {k: str(v) for k, v in dim["title"].items()}
    return out


def cube(r: Release) -> ex.Cube:
    """The explorer's cube of a published version, built once per version and kept in memory
    (the protected table only; the raw upload is never read)."""
    # a published table never changes; the times tell apart stores that reuse an id
    key = (r.id, r.series, r.version, r.content_rev, r.package_sha256 or "",
           str(r.created_at), str(r.published_at))

    def build() -> ex.Cube:
        lists = present.codelists(r)
        titles = _dim_titles(r)
        dims = []
        for name in present.dimension_names(r):
            cl = lists.get(name) or {"codes": [], "parent": {}, "labels": {}}
            role = "geo" if name.lower() in GEO_NAMES else None
            dims.append(ex.Dim(name=name, codes=tuple(cl["codes"]), parent=dict(cl["parent"]),
                               labels=dict(cl["labels"]), title=titles.get(name, {}), role=role))
        body = db().scalar(select(Release.protected_csv).where(Release.id == r.id)) or b""
        # a copy of the arrays on disk, named by the table's own hash: another worker process
        # or a restart skips parsing the CSV, and a different table can never match
        layout = json.dumps([[d.name, d.codes] for d in dims]).encode()
        digest = hashlib.sha256(body + b"\0" + layout).hexdigest()[:32]
        saved = Path(settings().get("WORK_DIR") or "instance/work") / "explore" / f"{digest}.npz"
        hit = ex.load_arrays(saved, dims)
        if hit is not None:
            return hit
        measure = str((r.spec or {}).get("measure") or "obs_value")
        built = ex.build_cube(body, dims, measure=measure)
        try:
            ex.save_arrays(built, saved)
        except OSError as e:
            current_app.logger.warning("explorer cache not written: %s", type(e).__name__)
        return built

    return ex.CACHE.get(key, build)


_DIFFS: dict[tuple[Any, ...], dict[str, Any] | None] = {}


def version_diff(r: Release) -> dict[str, Any] | None:
    """What changed against the previous version: from the two cached cubes when their code lists
    agree (fast on large tables), else row by row (:func:`present.diff`); kept per version pair."""
    prev = r.previous
    if prev is None:
        return None
    key = (prev.id, prev.content_rev, prev.state, r.id, r.content_rev, r.state)
    if key in _DIFFS:
        return _DIFFS[key]
    out = None
    if present.dimension_names(prev) == present.dimension_names(r) and prev.state in PUBLIC_STATES:
        out = ex.diff(cube(prev), cube(r))
        if out is not None:
            out["previous_version"] = prev.version
    if out is None:
        out = present.diff(prev, r)
    if out is not None and WITHDRAWN in (prev.state, r.state):
        # a withdrawn version's values are not served again, not even as "before"/"after"
        out = {**out, "changed": []}
    if len(_DIFFS) > 256:
        _DIFFS.clear()
    _DIFFS[key] = out
    return out


# -- errors --------------------------------------------------------------------------------------

def _problem(status: int, message: str, *, back: str | None = None, back_label: str = "") -> Any:
    return render_template("public_error.html", status=status, message=message, back=back,
                           back_label=back_label), status


def _no_series(series: str) -> Any:
    # the same answer for a series that does not exist and one still under embargo
    return _problem(404, _("There is no published series %(series)s.", series=series[:100]))


def _no_version(series: str, version: str) -> Any:
    return _problem(404, _("There is no published version %(version)s of %(series)s.",
                           version=version[:64], series=series[:100]),
                    back=url_for("catalogue.catalogue"), back_label=_("Back to the catalogue"))


def _get(series: str, version: str) -> Release | None:
    try:
        return wf.public_release(db(), series, version)
    except wf.NotFound:
        return None


def _withdrawn(r: Release) -> Any:
    return _problem(410, _("This version was withdrawn. Do not use it."),
                    back=url_for("public.version_page", series=r.series, version=r.version),
                    back_label=_("Back to the version page"))


# -- the catalogue -------------------------------------------------------------------------------

def _latest_by_series() -> list[tuple[Release, int]]:
    """(the latest public version, number of public versions) of every series; a series whose
    versions are all withdrawn still shows its latest one."""
    rows = db().scalars(select(Release).where(Release.state.in_(PUBLIC_STATES))).all()
    by: dict[str, list[Release]] = {}
    for r in rows:
        by.setdefault(r.series, []).append(r)
    out = []
    for versions in by.values():
        versions.sort(key=lambda v: wf.parse_version(v.version), reverse=True)
        live = [v for v in versions if v.state != WITHDRAWN]
        out.append(((live or versions)[0], len(versions)))
    out.sort(key=lambda e: e[0].published_at or utcnow(), reverse=True)
    return out


def _search_text(r: Release) -> str:
    spec = r.spec or {}
    parts = [r.series, str(spec.get("source_id") or ""), str(spec.get("reference_period") or "")]
    for texts in (r.title, spec.get("title"), spec.get("description")):
        if isinstance(texts, dict):
            parts += [str(v) for v in texts.values()]
        elif texts:
            parts.append(str(texts))
    parts += [str(k) for k in spec.get("keywords") or []]
    for d in spec.get("dimensions") or []:
        if isinstance(d.get("title"), dict):
            parts += [str(v) for v in d["title"].values()]
    return " ".join(parts).casefold()


@catalogue_bp.route("/")
def catalogue() -> Any:
    lang = _lang()
    q = (request.args.get("q") or "").strip()[:200]
    topic = (request.args.get("topic") or "").strip()[:100]
    source = (request.args.get("source") or "").strip()[:100]
    period = (request.args.get("period") or "").strip()[:40]
    entries = _latest_by_series()
    topics = sorted({str(k) for r, _n in entries for k in (r.spec or {}).get("keywords") or []})
    sources = sorted({str((r.spec or {}).get("source_id")) for r, _n in entries
                      if (r.spec or {}).get("source_id")})
    periods = sorted({str((r.spec or {}).get("reference_period")) for r, _n in entries
                      if (r.spec or {}).get("reference_period")}, reverse=True)
    words = q.casefold().split()
    shown = []
    for r, n in entries:
        spec = r.spec or {}
        if words and not all(w in _search_text(r) for w in words):
            continue
        if topic and topic not in [str(k) for k in spec.get("keywords") or []]:
            continue
        if source and source != str(spec.get("source_id") or ""):
            continue
        if period and period != str(spec.get("reference_period") or ""):
            continue
        shown.append((r, n, facts(r, lang)))
    return render_template("public_catalogue.html", entries=shown, total=len(entries), q=q,
                           topic=topic, source=source, period=period, topics=topics,
                           sources=sources, periods=periods, lang=lang)


@catalogue_bp.route("/calendar")
def calendar() -> Any:
    """Scheduled releases (title and date only, never data) and the latest publications."""
    now = utcnow()
    upcoming = db().execute(
        select(Release.title, Release.embargo_at).where(
            Release.state == SCHEDULED, Release.embargo_at.is_not(None),
            Release.embargo_at > now).order_by(Release.embargo_at)).all()
    recent = db().scalars(select(Release).where(Release.state.in_(PUBLIC_STATES),
                                                Release.published_at.is_not(None))
                          .order_by(Release.published_at.desc()).limit(20)).all()
    return render_template("public_calendar.html", upcoming=upcoming, recent=recent,
                           lang=_lang(), now=now)


@bp.route("")
@bp.route("/")
def index() -> Any:
    return redirect(url_for("catalogue.catalogue"))


# -- a series ------------------------------------------------------------------------------------

def timeseries(versions: list[Release], lang: str) -> tuple[Markup, list[dict[str, Any]]]:
    """The grand total per reference period (the newest live version of each period): an SVG
    line chart when there are two periods or more, and its points."""
    by_period: dict[str, Release] = {}
    for v in versions:  # newest first
        p = str((v.spec or {}).get("reference_period") or "")
        if v.state != WITHDRAWN and p and p not in by_period:
            by_period[p] = v
    if len(by_period) < 2:
        return Markup(""), []
    points = []
    for p in sorted(by_period):
        v = by_period[p]
        value, status = ex.cell(cube(v), {})
        points.append({"period": p, "version": v.version,
                       "value": None if status != ex.FREE or math.isnan(value) else value,
                       "status": ex.STATUS_LETTER.get(status, "")})
    svg = charts.line_chart([pt["period"] for pt in points],
                            [charts.Series(_("Total"), [pt["value"] for pt in points])],
                            title=_("Total by reference period"),
                            desc=_("The grand total of each reference period."))
    return svg, points


@bp.route("/<string:series>")
def series_page(series: str) -> Any:
    versions = wf.public_releases(db(), series)
    if not versions:
        return _no_series(series)
    lang = _lang()
    changes = {r.id: version_diff(r) for r in versions}
    live = [v for v in versions if v.state != WITHDRAWN]
    latest = (live or versions)[0]
    chart, points = timeseries(versions, lang)
    return render_template("public_series.html", series=series, versions=versions,
                           changes=changes, lang=lang, latest=latest, facts=facts(latest, lang),
                           chart=chart, points=points, fmt=charts.fmt)


# -- a version and its explorer ------------------------------------------------------------------

def _form_to_view(c: ex.Cube) -> dict[str, str]:
    """The canonical view query from the explorer's form (places and ticked values): a filter
    with several values ticked moves to the rows, as in PxWeb."""
    args = request.args
    rows, cols = [], []
    select_: dict[str, str] = {}
    for d in c.dims:
        place = args.get(f"place.{d.name}", "")
        codes = [x for x in args.getlist(f"c.{d.name}") if x]
        if place == "filter" and len(codes) > 1:
            place = "rows"
        if place == "rows":
            rows.append(d.name)
        elif place == "cols":
            cols.append(d.name)
        if codes:
            select_[f"c.{d.name}"] = ",".join(codes)
    q = {"rows": ",".join(rows), "cols": ",".join(cols), **select_}
    for key in ("moe", "chart"):
        if args.get(key):
            q[key] = args[key]
    return q


def _view_or_error(r: Release, c: ex.Cube) -> ex.View | Any:
    try:
        return ex.parse_view(c, request.args, _lang())
    except ex.ViewError as e:
        return _problem(400, e.localized_reason(_),
                        back=url_for("public.version_page", series=r.series, version=r.version),
                        back_label=_("Show the default view"))


def _status_text() -> dict[str, str]:
    return {"C": _("primary confidential: fewer persons than the threshold, suppressed to "
                   "protect them"),
            "D": _("secondary confidential: suppressed so that a primary cell cannot be worked "
                   "out from the totals"),
            "": _("not in the table")}


def _header_groups(c: ex.Cube, grid: ex.Grid, lang: str) -> list[list[dict[str, Any]]]:
    """Column header rows: per column dimension, runs of equal codes as (label, span)."""
    out = []
    v = grid.view
    for k, d in enumerate(v.cols):
        dim = c.dim(d)
        row: list[dict[str, Any]] = []
        for ck in grid.col_keys:
            key = ck[: k + 1]
            if row and row[-1]["key"] == key:
                row[-1]["span"] += 1
            else:
                row.append({"key": key, "code": ck[k], "label": dim.label(ck[k], lang),
                            "span": 1, "level": dim.level.get(ck[k], 0),
                            "toggle": _toggle(c, v, d, ck[k], lang)})
        out.append(row)
    return out


def _toggle(c: ex.Cube, v: ex.View, dim: str, code: str, lang: str) -> dict[str, Any] | None:
    d = c.dim(dim)
    if not ex.can_unfold(d, code):
        return None
    expanded = bool(set(v.select[dim]) & d.descendants(code))
    nv = ex.toggled(v, c, dim, code)
    r = request.view_args or {}
    return {"expanded": expanded, "label": d.label(code, lang),
            "url": url_for("public.version_page", series=r.get("series"),
                           version=r.get("version"), **nv.query()) + "#explorer"}


def _grid_rows(c: ex.Cube, grid: ex.Grid, lang: str) -> tuple[list[dict[str, Any]], set[str]]:
    v = grid.view
    used: set[str] = set()
    heads_of: list[dict[str, dict[str, Any]]] = []  # per row dimension: code -> its header
    for d in v.rows:
        dim = c.dim(d)
        heads_of.append({code: {"label": dim.label(code, lang), "code": code,
                                "level": dim.level.get(code, 0) if dim.hierarchical else 0,
                                "toggle": _toggle(c, v, d, code, lang)}
                         for code in v.select[d]})
    values, status = grid.value.tolist(), grid.status.tolist()
    moes = grid.moe.tolist() if grid.moe is not None else None
    fmt = charts.fmt
    rows = []
    for i, rk in enumerate(grid.row_keys):
        cells = []
        for j, s in enumerate(status[i]):
            val = values[i][j]
            if s == ex.FREE and val == val:  # not NaN
                moe = None
                if moes is not None and moes[i][j] == moes[i][j]:
                    moe = fmt(moes[i][j])
                cells.append({"text": fmt(val), "moe": moe})
            else:
                letter = ex.STATUS_LETTER.get(s, "")
                used.add(letter)
                cells.append({"suppressed": letter})
        rows.append({"heads": [heads_of[k][code] for k, code in enumerate(rk)], "cells": cells})
    return rows, used


def _view_chart(c: ex.Cube, grid: ex.Grid, lang: str) -> tuple[Markup, bool]:
    """The chart of the view and whether it was cut to its first rows/columns."""
    v = grid.view
    if v.chart == "none":
        return Markup(""), False

    def key_label(dims: tuple[str, ...], key: tuple[str, ...]) -> str:
        return " · ".join(c.dim(d).label(code, lang) for d, code in zip(dims, key, strict=True)) \
            or _("Value")

    rk = grid.row_keys
    ck = grid.col_keys
    vals = [[None if int(grid.status[i, j]) != ex.FREE or math.isnan(grid.value[i, j])
             else float(grid.value[i, j]) for j in range(len(ck))] for i in range(len(rk))]
    title = _("Chart of the view")
    mark = "×"
    if v.chart == "line":
        cats = [key_label(v.cols, k) for k in ck][:CHART_MAX_CATEGORIES]
        series = [charts.Series(key_label(v.rows, rk[i]), vals[i][:len(cats)])
                  for i in range(min(len(rk), CHART_MAX_SERIES))]
        cut = len(rk) > CHART_MAX_SERIES or len(ck) > CHART_MAX_CATEGORIES
        return charts.line_chart(cats, series, title=title, suppressed_mark=mark,
                                 desc=_("× marks a suppressed value.")), cut
    cats = [key_label(v.rows, k) for k in rk][:CHART_MAX_CATEGORIES]
    series = [charts.Series(key_label(v.cols, ck[j]), [vals[i][j] for i in range(len(cats))])
              for j in range(min(len(ck), CHART_MAX_SERIES))]
    cut = len(ck) > CHART_MAX_SERIES or len(rk) > CHART_MAX_CATEGORIES
    return charts.bar_chart(cats, series, title=title, suppressed_mark=mark,
                            desc=_("× marks a suppressed value.")), cut


def _map(c: ex.Cube, v: ex.View, lang: str) -> dict[str, Any] | None:
    """The tile map of the first geographic dimension whose codes are Kazakhstan's regions,
    with every other dimension at its first chosen value."""
    geo = next((d for d in c.dims if d.role == "geo" and charts.TILE_CODES & set(d.codes)), None)
    if geo is None:
        return None
    fixed = {d: v.select[d][0] for d in v.select if d != geo.name}
    cells = {}
    for code, value, status in ex.series_over(c, geo.name, sorted(charts.TILE_CODES), fixed):
        if status == ex.MISSING:
            continue
        cells[code] = (value, status != ex.FREE or math.isnan(value))
    caption = "; ".join(f"{c.dim(d).title_in(lang)}: {c.dim(d).label(code, lang)}"
                        for d, code in fixed.items())
    svg = charts.tile_map(cells, lang, title=_("Map of the regions"),
                          desc=caption, suppressed_text=_("suppressed"),
                          no_data_text=_("not in this table"))
    rows = [{"name": t.names.get(lang) or t.names["en"], "code": t.code,
             "value": charts.fmt(cells[t.code][0]) if t.code in cells and not cells[t.code][1] else None,
             "suppressed": t.code in cells and cells[t.code][1]}
            for t in charts.KZ_TILES if t.code in cells]
    return {"svg": svg, "caption": caption, "dim": geo.title_in(lang), "rows": rows}


def _diff_rows(r: Release, diff: dict[str, Any] | None, lang: str) -> list[dict[str, Any]]:
    if not diff or diff.get("schema_changed"):
        return []
    labels = present.code_labels(r, lang)
    titles = _dim_titles(r)
    out = []
    for ch in diff.get("changed", []):
        out.append({
            "cell": "; ".join(f"{_t(titles.get(d), lang, d)}: {labels.get(d, {}).get(code, code)}"
                              for d, code in ch["codes"].items()),
            "before": charts.fmt(ch["before"]) if ch["before"] is not None else "×",
            "after": charts.fmt(ch["after"]) if ch["after"] is not None else "×",
            "status_before": ch["status_before"], "status_after": ch["status_after"]})
    return out


@bp.route("/<string:series>/<string:version>")
def version_page(series: str, version: str) -> Any:
    r = _get(series, version)
    if r is None:
        return _no_version(series, version)
    lang = _lang()
    explorer: dict[str, Any] | None = None
    status = 200
    if r.state != WITHDRAWN:
        c = cube(r)
        if "apply" in request.args:
            return redirect(url_for("public.version_page", series=series, version=version,
                                    **_form_to_view(c)) + "#explorer")
        view = _view_or_error(r, c)
        if not isinstance(view, ex.View):
            return view
        chosen = {d: set(codes) for d, codes in view.select.items()}
        form = [{"name": d.name, "title": d.title_in(lang),
                 "place": "rows" if d.name in view.rows else (
                     "cols" if d.name in view.cols else "filter"),
                 "codes": [(code, d.label(code, lang), d.level[code] if d.hierarchical else 0,
                            code in chosen[d.name]) for code in d.codes]} for d in c.dims]
        explorer = {"cube": c, "view": view, "form": form, "fmt": charts.fmt,
                    "status_text": _status_text(), "lang": lang,
                    "query": view.query(),
                    "swap": view.query(rows=view.cols, cols=view.rows),
                    "has_moe": c.moe is not None}
        try:
            grid = ex.compute(c, view, max_cells=PAGE_MAX_CELLS)
        except ex.ViewTooLarge as e:
            explorer["too_large"] = e.localized_reason(_)
            explorer["too_large_cells"] = e.cells
            explorer["downloadable"] = e.cells <= DOWNLOAD_MAX_CELLS
        else:
            rows, used = _grid_rows(c, grid, lang)
            chart, cut = _view_chart(c, grid, lang)
            explorer.update(grid=grid, headers=_header_groups(c, grid, lang), rows=rows,
                            used=sorted(used), chart=chart, chart_cut=cut,
                            map=_map(c, view, lang))
    accessed = datetime.now(UTC).date().isoformat()
    cites = citations(r, accessed)
    newer = [v for v in wf.public_releases(db(), series)
             if wf.parse_version(v.version) > wf.parse_version(r.version)]
    diff = version_diff(r)
    return render_template(
        "public_version.html", r=r, lang=lang, cites=cites, ex=explorer, facts=facts(r, lang),
        csl=json.dumps(cites["csl"], indent=2, ensure_ascii=False),
        method=_method_note(r), method_text=method_text(r),
        has_zip=_zip_path(r) is not None, diff=diff, diff_rows=_diff_rows(r, diff, lang),
        newer=newer, url=present.version_url(settings().get("PUBLIC_BASE_URL", ""), r)), status


_NOTES: dict[tuple[Any, ...], dict[str, Any]] = {}


def _method_note(r: Release) -> dict[str, Any]:
    """:func:`present.method_note` once per version (it validates the whole spec)."""
    key = (r.id, r.content_rev, str(r.created_at))
    if key not in _NOTES:
        if len(_NOTES) > 256:
            _NOTES.clear()
        _NOTES[key] = present.method_note(r)
    return _NOTES[key]


VIEW_FORMATS = {"csv": ("text/csv; charset=utf-8", ".csv"),
                "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                         ".xlsx"),
                "json": ("application/json; charset=utf-8", ".stat.json")}


def _view_text(r: Release, lang: str) -> vd.ViewText:
    f = facts(r, lang)
    cites = citations(r, datetime.now(UTC).date().isoformat())
    st = _status_text()
    return vd.ViewText(
        lang=lang, title=r.title_in(lang), value=_("Value"), moe=_("margin of error (%(level)s%%)", level=95),
        status=_("Flag"), code=_("code"), unit=f["unit"], period=f["period"],
        source=f["publisher"] or f["source"], citation=cites["text"].get(lang, ""),
        licence=f["licence"], url=present.version_url(settings().get("PUBLIC_BASE_URL", ""), r),
        labels={"unit": _("Unit"), "period": _("Reference period"), "source": _("Source"),
                "licence": _("Licence"), "citation": _("How to cite"), "url": _("Stable address")},
        footnotes={"C": st["C"], "D": st["D"],
                   "moe": _("± is the %(level)s%% margin of error of the noisy value.", level=95)})


@bp.route("/<string:series>/<string:version>/view.<string:fmt>")
def view_download(series: str, version: str, fmt: str) -> Any:
    """The current view as CSV (``bom=1``: with a UTF-8 BOM for Excel), XLSX or JSON-stat."""
    r = _get(series, version)
    if r is None:
        return _no_version(series, version)
    if r.state == WITHDRAWN:
        return _withdrawn(r)
    if fmt not in VIEW_FORMATS:
        return _problem(404, _("Unknown download format %(fmt)s (csv, xlsx or json).",
                               fmt=fmt[:20]))
    c = cube(r)
    view = _view_or_error(r, c)
    if not isinstance(view, ex.View):
        return view
    try:
        grid = ex.compute(c, view, max_cells=XLSX_MAX_CELLS if fmt == "xlsx" else DOWNLOAD_MAX_CELLS)
    except ex.ViewTooLarge as e:
        return _problem(413, e.localized_reason(_),
                        back=url_for("public.data_csv", series=series, version=version),
                        back_label=_("Download the whole table (CSV)"))
    lang = _lang()
    if fmt == "xlsx" and len(grid.col_keys) * (2 if grid.moe is not None else 1) + len(view.rows) > 16_384:
        return _problem(413, _("A spreadsheet has at most %(limit)s columns; put fewer values in "
                               "the columns, or download the view as CSV.", limit="16 384"))
    text = _view_text(r, lang)
    if fmt == "csv":
        body = vd.to_csv(c, grid, text, bom=request.args.get("bom") == "1")
    elif fmt == "xlsx":
        body = vd.to_xlsx(c, grid, text)
    else:
        body = vd.to_jsonstat(c, grid, text)
    mimetype, suffix = VIEW_FORMATS[fmt]
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f"attachment; filename={r.series}-{r.version}-view-{lang}{suffix}"})


def _zip_path(r: Release) -> Path | None:
    if not r.package_path:
        return None
    p = Path(r.package_path)
    z = p.with_name(p.name + ".zip")
    return z if z.is_file() else None


@bp.route("/<string:series>/<string:version>/data.csv")
def data_csv(series: str, version: str) -> Any:
    r = _get(series, version)
    if r is None:
        return _no_version(series, version)
    if r.state == WITHDRAWN:
        return _withdrawn(r)
    body = db().scalar(select(Release.protected_csv).where(Release.id == r.id)) or b""
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename={r.series}-{r.version}.csv"})


@bp.route("/<string:series>/<string:version>/package.zip")
def package_zip(series: str, version: str) -> Any:
    r = _get(series, version)
    if r is None:
        return _no_version(series, version)
    if r.state == WITHDRAWN:
        return _withdrawn(r)
    z = _zip_path(r)
    if z is None:
        return _problem(404, _("Not found."))
    return send_file(z, mimetype="application/zip", as_attachment=True,
                     download_name=f"{r.series}-{r.version}.zip")


@bp.route("/<string:series>/<string:version>/citation.json")
def citation_json(series: str, version: str) -> Any:
    r = _get(series, version)
    if r is None:
        return _no_version(series, version)
    return Response(json.dumps(citations(r, "")["csl"], ensure_ascii=False, indent=2),
                    mimetype="application/vnd.citationstyles.csl+json")


@bp.route("/<string:series>/<string:version>/citation.bib")
def citation_bib(series: str, version: str) -> Any:
    r = _get(series, version)
    if r is None:
        return _no_version(series, version)
    return Response(citations(r, "")["bib"], mimetype="application/x-bibtex; charset=utf-8")


@bp.errorhandler(AshyqError)
def _refused(e: AshyqError) -> Any:
    return _problem(e.http_status, e.localized_reason(_))
