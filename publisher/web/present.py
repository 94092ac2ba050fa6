"""Presenting a release to people: the protected table with marks, the main marginal as an SVG
bar chart, the difference against the previous version, citations and the method note.

Everything here works from the *protected* table (``Release.protected_csv``) and the report; the
uploaded raw table is never read, so nothing shown can reveal a suppressed cell's value.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd
from markupsafe import Markup, escape

from disclosure.errors import AshyqError
from disclosure.methods import get_method, method_of
from disclosure.report import report_from_dict
from disclosure.spec_schema import spec_from_mapping

from ..workflow_models import Release, as_utc

TOTAL = "_T"
FLAG_COLUMNS = ("obs_status", "conf_status")
MARK = {"C": "primary", "D": "secondary"}


def protected_frame(release: Release) -> pd.DataFrame:
    if not release.protected_csv:
        return pd.DataFrame()
    return pd.read_csv(io.BytesIO(release.protected_csv), dtype=str, keep_default_na=False,
                       na_filter=False)


def dimension_names(release: Release) -> list[str]:
    return [str(d.get("name")) for d in (release.spec or {}).get("dimensions", [])]


def _num(v: str) -> int | float | None:
    if v == "" or v is None:
        return None
    try:
        f = float(v)
    except ValueError:
        return None
    return int(f) if f.is_integer() else f


def cell_rows(release: Release) -> list[dict[str, Any]]:
    """Every published cell as a dict: codes, ``obs_value`` (None where suppressed), flags."""
    df = protected_frame(release)
    dims = dimension_names(release)
    out = []
    for rec in df.to_dict(orient="records"):
        row: dict[str, Any] = {"codes": {d: rec.get(d, "") for d in dims},
                               "obs_value": _num(rec.get("obs_value", "")),
                               "obs_status": rec.get("obs_status", ""),
                               "conf_status": rec.get("conf_status", "")}
        if "obs_moe" in rec:
            row["obs_moe"] = _num(rec["obs_moe"])
        out.append(row)
    return out


def label(release: Release, dim: str, code: str, lang: str) -> str:
    """The label of ``code`` of ``dim`` in ``lang`` (from the release's code lists), else the code."""
    lab = (codelists(release).get(dim) or {}).get("labels", {}).get(code) or {}
    return str(lab.get(lang) or lab.get("en") or code)


def code_labels(release: Release, lang: str) -> dict[str, dict[str, str]]:
    """Per dimension, the label of each code in ``lang`` (code -> label): from the published
    package's code lists (``codelists/<dimension>.csv``) when the release has one, else from the
    spec's ``codelist:`` and inline ``labels:`` (what the package will publish)."""
    out: dict[str, dict[str, str]] = {}
    for dim, cl in codelists(release).items():
        out[dim] = {code: str(t.get(lang) or t.get("en") or code)
                    for code, t in cl["labels"].items()}
    return out


_CODELIST_CACHE: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}


def codelists(release: Release) -> dict[str, dict[str, Any]]:
    """Per dimension (in spec order): ``codes`` (code-list order, a parent before its children),
    ``parent`` (code -> parent code) and ``labels`` (code -> {kk, ru, en})."""
    key = (release.id, release.package_path, release.content_rev,
           json.dumps(release.spec or {}, sort_keys=True, default=str))
    hit = _CODELIST_CACHE.get(key)
    if hit is not None:
        return hit
    out = _package_codelists(release) or _spec_codelists(release)
    if len(_CODELIST_CACHE) > 256:
        _CODELIST_CACHE.clear()
    _CODELIST_CACHE[key] = out
    return out


def _package_codelists(release: Release) -> dict[str, dict[str, Any]] | None:
    import csv
    from pathlib import Path

    if not release.package_path:
        return None
    folder = Path(release.package_path) / "codelists"
    out: dict[str, dict[str, Any]] = {}
    for dim in dimension_names(release):
        path = folder / f"{dim}.csv"
        try:
            with path.open(encoding="utf-8-sig", newline="") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, UnicodeDecodeError, csv.Error):
            return None
        codes, parent, labels = [], {}, {}
        for r in rows:
            code = (r.get("code") or "").strip()
            if not code:
                continue
            codes.append(code)
            parent[code] = (r.get("parent") or "").strip()
            labels[code] = {lg: r[f"label_{lg}"] for lg in ("kk", "ru", "en")
                            if r.get(f"label_{lg}")}
        out[dim] = {"codes": codes, "parent": parent, "labels": labels}
    return out


def _spec_codelists(release: Release) -> dict[str, dict[str, Any]]:
    from datapackages.codelists import codelist_source
    from datapackages.i18n import tr
    from datapackages.text import SPECIAL_CODES

    from ..settings import config_path

    out: dict[str, dict[str, Any]] = {}
    try:
        spec = spec_from_mapping(release.spec or {}, "release spec")
    except AshyqError:
        spec = None
    if spec is None:  # an unreadable spec: codes of the spec as they are, labelled by themselves
        for d in (release.spec or {}).get("dimensions", []):
            labs = {str(c): t for c, t in (d.get("labels") or {}).items() if isinstance(t, dict)}
            out[str(d.get("name"))] = {"codes": list(labs), "parent": {}, "labels": labs}
        return out
    for dim in spec.dimensions:
        listed: dict[str, dict[str, str]] = {}
        if dim.codelist:
            try:
                listed = codelist_source(dim.codelist, config_path("codelists"))[1]
            except AshyqError:
                listed = {}
        labels = {}
        for code in dim.hierarchy.codes:
            lab = dim.labels.get(code) or listed.get(code)
            if not lab and code in SPECIAL_CODES:
                lab = tr(SPECIAL_CODES[code])
            labels[code] = dict(lab) if lab else {}
        parent = {c: dim.hierarchy.parent.get(c, "") for c in dim.hierarchy.codes}
        out[dim.name] = {"codes": list(dim.hierarchy.codes), "parent": parent, "labels": labels}
    return out


def dim_title(release: Release, dim: str, lang: str) -> str:
    for d in (release.spec or {}).get("dimensions", []):
        if d.get("name") == dim:
            t = d.get("title") or {}
            return str(t.get(lang) or t.get("en") or dim)
    return dim


def preview(release: Release, *, limit: int = 500, only_suppressed: bool = False
            ) -> tuple[list[dict[str, Any]], int]:
    """Rows for the review table (the first ``limit``) and the total row count."""
    rows = cell_rows(release)
    if only_suppressed:
        rows = [r for r in rows if r["conf_status"] in MARK]
    for r in rows:
        r["mark"] = MARK.get(r["conf_status"], "")
    return rows[:limit], len(rows)


def main_marginal(release: Release) -> tuple[str, list[tuple[str, int | None, str]]]:
    """The first dimension's top-level codes with every other dimension at its total."""
    dims = dimension_names(release)
    if not dims:
        return "", []
    first = dims[0]
    spec_dim = (release.spec or {}).get("dimensions", [{}])[0]
    top = (spec_dim.get("hierarchy") or {}).get(TOTAL) or spec_dim.get("codes") or []
    top = [str(c) for c in top]
    df = protected_frame(release)
    if df.empty:
        return first, []
    mask = pd.Series(True, index=df.index)
    for d in dims[1:]:
        mask &= df[d] == TOTAL
    sub = df[mask].set_index(first)
    bars = []
    for code in top:
        if code in sub.index:
            rec = sub.loc[code]
            bars.append((code, _num(rec["obs_value"]), str(rec["conf_status"])))
    return first, bars


def chart_svg(release: Release, lang: str, *, suppressed_label: str) -> Markup:
    """A horizontal bar chart of the main marginal, server-rendered SVG (escaped text)."""
    dim, bars = main_marginal(release)
    if not bars:
        return Markup("")
    width, bar_h, gap, left = 560, 18, 6, 170
    peak = max([v for _, v, _ in bars if v is not None] or [1]) or 1
    height = len(bars) * (bar_h + gap) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             f"<title>{escape(dim_title(release, dim, lang))}</title>"]
    for i, (code, value, _status) in enumerate(bars):
        y = 5 + i * (bar_h + gap)
        name = escape(label(release, dim, code, lang))
        parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" '
                     f'font-size="12">{name}</text>')
        if value is None:
            parts.append(f'<rect x="{left}" y="{y}" width="60" height="{bar_h}" '
                         f'class="bar-suppressed" fill="none" stroke="#a33" stroke-dasharray="3 2"/>')
            parts.append(f'<text x="{left + 66}" y="{y + 13}" font-size="12" fill="#a33">'
                         f"{escape(suppressed_label)}</text>")
        else:
            w = max(1, int((width - left - 70) * value / peak))
            parts.append(f'<rect x="{left}" y="{y}" width="{w}" height="{bar_h}" fill="#2b6cb0"/>')
            parts.append(f'<text x="{left + w + 4}" y="{y + 13}" font-size="12">{value}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def diff(previous: Release | None, release: Release) -> dict[str, Any] | None:
    """Cell-by-cell difference of two protected tables (values and suppression flags)."""
    if previous is None or not previous.protected_csv:
        return None
    dims = dimension_names(release)
    a, b = protected_frame(previous), protected_frame(release)
    prev_dims = dimension_names(previous)
    if prev_dims != dims:
        return {"schema_changed": True, "before": prev_dims, "after": dims, "changed": [],
                "added": 0, "removed": 0, "changed_count": 0}
    cols = [c for c in ("obs_value", "conf_status") if c in a.columns and c in b.columns]
    m = b[dims + cols].merge(a[dims + cols], on=dims, how="outer", suffixes=("_after", "_before"),
                             indicator=True)
    both = m[m["_merge"] == "both"]
    differs = pd.Series(False, index=both.index)
    for c in cols:
        differs |= both[f"{c}_after"] != both[f"{c}_before"]
    changed = []
    for rec in both[differs].head(200).to_dict(orient="records"):
        changed.append({"codes": {d: rec[d] for d in dims},
                        "before": _num(rec.get("obs_value_before", "")),
                        "after": _num(rec.get("obs_value_after", "")),
                        "status_before": rec.get("conf_status_before", ""),
                        "status_after": rec.get("conf_status_after", "")})
    return {"schema_changed": False, "previous_version": previous.version,
            "added": int((m["_merge"] == "left_only").sum()),
            "removed": int((m["_merge"] == "right_only").sum()),
            "changed_count": int(differs.sum()), "changed": changed}


def report_summary(report: dict[str, Any] | None) -> dict[str, Any]:
    """The figures a reviewer looks at first, from the typed disclosure report: the method's
    label, the cell count, the method's own figures (label -> value) and the warnings."""
    if not report:
        return {"figures": {}, "warnings": []}
    try:
        rep = report_from_dict(report)
    except AshyqError as e:
        return {"figures": {}, "warnings": [f"the stored report cannot be read: {e.reason}"]}
    method = get_method(rep.method)
    return {"method": method.label, "cells": rep.cells, "figures": method.review(rep),
            "warnings": list(rep.warnings)}


def moe_summary(release: Release) -> dict[str, Any] | None:
    """Margins of error of a noisy table: smallest, median and largest (95%)."""
    df = protected_frame(release)
    if df.empty or "obs_moe" not in df.columns:
        return None
    vals = pd.to_numeric(df["obs_moe"], errors="coerce").dropna()
    if vals.empty:
        return None
    try:
        rep = report_from_dict(release.report)
    except AshyqError:
        rep = None
    level = getattr(getattr(rep, "uncertainty", None), "level", 0.95)
    return {"min": _num(str(vals.min())), "median": _num(str(vals.median())),
            "max": _num(str(vals.max())), "level": int(round(float(level) * 100))}


def report_json(report: dict[str, Any] | None) -> str:
    return json.dumps(report or {}, indent=2, ensure_ascii=False, default=str)


# -- citation ------------------------------------------------------------------------------------

PUBLISHER_FALLBACK = {"kk": "Ashyq", "ru": "Ashyq", "en": "Ashyq"}
DATASET_WORD = {"kk": "Деректер жиынтығы", "ru": "Набор данных", "en": "Dataset"}
VERSION_WORD = {"kk": "Нұсқа", "ru": "Версия", "en": "Version"}
ACCESSED_WORD = {"kk": "қаралған күні", "ru": "дата обращения", "en": "accessed"}


def version_url(base_url: str, release: Release) -> str:
    return f"{base_url.rstrip('/')}/v/{release.series}/{release.version}"


def _publisher(settings: dict[str, Any], lang: str) -> str:
    p = settings.get("PUBLISHER_NAME") or PUBLISHER_FALLBACK
    return str(p.get(lang) or p.get("en")) if isinstance(p, dict) else str(p)


def citation_text(release: Release, lang: str, settings: dict[str, Any], accessed: str) -> str:
    """DataCite form without a creator (the office is the publisher, not an author):
    Title (Year). Version. Publisher. Dataset. URL, accessed DATE."""
    year = (as_utc(release.published_at) or as_utc(release.created_at)).year
    pub = _publisher(settings, lang)
    return (f"{release.title_in(lang)} ({year}). {VERSION_WORD[lang]} {release.version}. "
            f"{pub}. {DATASET_WORD[lang]}. "
            f"{version_url(settings.get('PUBLIC_BASE_URL', ''), release)}, "
            f"{ACCESSED_WORD[lang]} {accessed}.")


def citation_csl(release: Release, settings: dict[str, Any], lang: str = "en") -> dict[str, Any]:
    when = as_utc(release.published_at) or as_utc(release.created_at)
    pub = _publisher(settings, lang)
    return {"type": "dataset", "id": f"{release.series}-{release.version}",
            "title": release.title_in(lang), "version": release.version, "publisher": pub,
            "issued": {"date-parts": [[when.year, when.month, when.day]]},
            "URL": version_url(settings.get("PUBLIC_BASE_URL", ""), release)}


def _bib_escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in "{}\\":
            out.append("\\" + {"{": "{", "}": "}", "\\": "textbackslash{}"}[ch])
        elif ch in "&%$#_":
            out.append("\\" + ch)
        elif ch in "~^":
            out.append("\\" + {"~": "textasciitilde{}", "^": "textasciicircum{}"}[ch])
        else:
            out.append(ch)
    return "".join(out)


def citation_biblatex(release: Release, settings: dict[str, Any], lang: str = "en") -> str:
    when = as_utc(release.published_at) or as_utc(release.created_at)
    pub = _bib_escape(_publisher(settings, lang))
    key = f"{release.series}-{release.version}".replace(".", "-")
    return (f"@dataset{{{key},\n"
            f"  title = {{{_bib_escape(release.title_in(lang))}}},\n"
            f"  version = {{{release.version}}},\n  publisher = {{{pub}}},\n"
            f"  date = {{{when.date().isoformat()}}},\n  year = {{{when.year}}},\n"
            f"  url = {{{version_url(settings.get('PUBLIC_BASE_URL', ''), release)}}}\n}}")


def method_note(release: Release) -> dict[str, Any]:
    """What protected the table: the method's name, label and public parameters (the template
    words it in the reader's language)."""
    try:
        spec = spec_from_mapping(release.spec or {}, "release spec")
    except AshyqError:
        return {"method": "", "label": "", "parameters": {}}
    method = method_of(spec)
    return {"method": method.name, "label": method.label,
            "parameters": method.public_parameters(spec)}
