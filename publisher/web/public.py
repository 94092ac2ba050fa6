"""Public pages (no sign-in): one page per published version — citation (kk/ru/en, CSL-JSON,
BibLaTeX), downloads, method note, CKAN link, correction notice — and one page per series with
every version and what changed.

Only published (or later retired) versions are reachable, and only their protected tables and
packages are served: nothing here reads the uploaded raw table.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, send_file
from flask_babel import get_locale

from disclosure.spec import LANGUAGES

from .. import workflow as wf
from ..workflow_models import WITHDRAWN, Release
from . import present
from .common import db, settings

bp = Blueprint("public", __name__, url_prefix="/v")
LANGS = LANGUAGES


def _lang() -> str:
    return str(get_locale() or "kk")


def descriptor(r: Release) -> dict[str, Any] | None:
    """The published package's ``datapackage.json`` (None before packaging or if unreadable)."""
    if not r.package_path:
        return None
    p = Path(r.package_path) / "datapackage.json"
    try:
        return json.loads(p.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def citations(r: Release, accessed: str) -> dict[str, Any]:
    """Citation text per language, CSL-JSON and BibLaTeX (from the package when there is one)."""
    d = descriptor(r)
    if d is not None:
        try:
            from datapackages import citation as dc

            day = datetime.now(UTC).date()
            return {"text": {lg: dc.citation(d, lg, accessed=day) for lg in LANGS},
                    "csl": dc.csl_json(d, _lang()), "bib": dc.biblatex(d, _lang())}
        except Exception as e:  # noqa: BLE001 - fall back to the page's own form
            current_app.logger.warning("citation from the package failed: %s", type(e).__name__)
    s = settings()
    return {"text": {lg: present.citation_text(r, lg, s, accessed) for lg in LANGS},
            "csl": present.citation_csl(r, s, _lang()), "bib": present.citation_biblatex(r, s, _lang())}


def method_text(r: Release) -> str | None:
    d = descriptor(r)
    if d is None:
        return None
    text = ((d.get("x_method") or {}).get("text") or {})
    return text.get(_lang()) or text.get("en")


def _get(series: str, version: str) -> Release:
    try:
        return wf.public_release(db(), series, version)
    except wf.NotFound:
        abort(404)


@bp.route("/<string:series>")
def series_page(series: str) -> Any:
    versions = wf.public_releases(db(), series)
    if not versions:
        abort(404)
    changes = {r.id: present.diff(r.previous, r) for r in versions}
    return render_template("public_series.html", series=series, versions=versions,
                           changes=changes, lang=_lang())


@bp.route("/<string:series>/<string:version>")
def version_page(series: str, version: str) -> Any:
    r = _get(series, version)
    accessed = datetime.now(UTC).date().isoformat()
    cites = citations(r, accessed)
    newer = [v for v in wf.public_releases(db(), series)
             if wf.parse_version(v.version) > wf.parse_version(r.version)]
    rows, total = present.preview(r, limit=300) if r.state != WITHDRAWN else ([], 0)
    dims = present.dimension_names(r)
    return render_template(
        "public_version.html", r=r, lang=_lang(), cites=cites, rows=rows, total_rows=total,
        dims=dims, codelabels=present.code_labels(r, _lang()),
        dimtitles={d: present.dim_title(r, d, _lang()) for d in dims},
        csl=json.dumps(cites["csl"], indent=2, ensure_ascii=False),
        method=present.method_note(r), method_text=method_text(r),
        chart=present.chart_svg(r, _lang(), suppressed_label="×"),
        has_zip=_zip_path(r) is not None, diff=present.diff(r.previous, r), newer=newer,
        url=present.version_url(settings().get("PUBLIC_BASE_URL", ""), r))


def _zip_path(r: Release) -> Path | None:
    if not r.package_path:
        return None
    p = Path(r.package_path)
    z = p.with_name(p.name + ".zip")
    return z if z.is_file() else None


def _downloadable(r: Release) -> None:
    if r.state == WITHDRAWN:
        abort(410)


@bp.route("/<string:series>/<string:version>/data.csv")
def data_csv(series: str, version: str) -> Any:
    r = _get(series, version)
    _downloadable(r)
    return Response(r.protected_csv or b"", mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename={r.series}-{r.version}.csv"})


@bp.route("/<string:series>/<string:version>/package.zip")
def package_zip(series: str, version: str) -> Any:
    r = _get(series, version)
    _downloadable(r)
    z = _zip_path(r)
    if z is None:
        abort(404)
    return send_file(z, mimetype="application/zip", as_attachment=True,
                     download_name=f"{r.series}-{r.version}.zip")


@bp.route("/<string:series>/<string:version>/citation.json")
def citation_json(series: str, version: str) -> Any:
    r = _get(series, version)
    return Response(json.dumps(citations(r, "")["csl"], ensure_ascii=False, indent=2),
                    mimetype="application/vnd.citationstyles.csl+json")


@bp.route("/<string:series>/<string:version>/citation.bib")
def citation_bib(series: str, version: str) -> Any:
    r = _get(series, version)
    return Response(citations(r, "")["bib"], mimetype="application/x-bibtex; charset=utf-8")
