"""Presenters: escaping in the server-rendered chart and citations, and the version diff."""

from __future__ import annotations

from datetime import UTC, datetime

from publisher.web import present
from publisher.workflow_models import Release

CSV = ("region,sex,obs_value,obs_status,conf_status\n"
       "_T,_T,100,A,F\n_T,F,,Q,D\n_T,M,,Q,D\nR1,_T,60,A,F\nR1,F,,Q,C\nR1,M,,Q,D\n"
       "R2,_T,40,A,F\nR2,F,38,A,F\nR2,M,2,A,F\n")
SPEC = {"dimensions": [
    {"name": "region", "hierarchy": {"_T": ["R1", "R2"]},
     "labels": {"R1": {"en": "<b>North</b> & co"}}, "title": {"en": "Region <i>"}},
    {"name": "sex", "codes": ["F", "M"]}]}


def _release(csv: str = CSV, version: str = "1.0.0", title: str = "T & <b>x</b>") -> Release:
    return Release(series="s", version=version, kind="initial", state="published",
                   title={"en": title}, spec=SPEC, protected_csv=csv.encode(),
                   created_at=datetime(2026, 1, 2, tzinfo=UTC),
                   published_at=datetime(2026, 1, 3, tzinfo=UTC))


def test_chart_escapes_labels_and_marks_suppressed_bars():
    svg = str(present.chart_svg(_release(), "en", suppressed_label="<hidden>"))
    assert "<b>" not in svg and "&lt;b&gt;North&lt;/b&gt; &amp; co" in svg
    assert "&lt;hidden&gt;" not in svg  # R1 total is free; nothing suppressed at this level
    csv = CSV.replace("R1,_T,60,A,F", "R1,_T,,Q,D")
    svg = str(present.chart_svg(_release(csv), "en", suppressed_label="<hidden>"))
    assert "bar-suppressed" in svg and "&lt;hidden&gt;" in svg


def test_preview_marks_primary_and_secondary():
    rows, total = present.preview(_release(), only_suppressed=True)
    assert total == 4
    assert {(r["codes"]["region"], r["codes"]["sex"]): r["mark"] for r in rows}[("R1", "F")] == "primary"
    assert all(r["obs_value"] is None for r in rows)


def test_diff_counts_changed_cells():
    new = _release(CSV.replace("R2,F,38,A,F", "R2,F,39,A,F").replace("R2,_T,40", "R2,_T,41")
                   .replace("_T,_T,100", "_T,_T,101"), "1.0.1")
    d = present.diff(_release(), new)
    assert d["changed_count"] == 3 and d["added"] == 0 and d["removed"] == 0
    assert {"codes": {"region": "R2", "sex": "F"}, "before": 38, "after": 39,
            "status_before": "F", "status_after": "F"} in d["changed"]
    assert present.diff(None, new) is None


def test_citations_escape_and_carry_the_version():
    r = _release(title="Migrants {100%} & $ _x_")
    settings = {"PUBLIC_BASE_URL": "https://stat.example/", "PUBLISHER_NAME": {"en": "Office"}}
    bib = present.citation_biblatex(r, settings)
    assert r"Migrants \{100\%\} \& \$ \_x\_" in bib and "version = {1.0.0}" in bib
    assert "url = {https://stat.example/v/s/1.0.0}" in bib
    text = present.citation_text(r, "en", settings, "2026-02-01")
    assert text.startswith("Migrants {100%} & $ _x_ (2026). Version 1.0.0. Office.") and "author" not in bib
    assert "year = {2026}" in bib and "author" not in present.citation_csl(r, settings)
    assert present.citation_csl(r, settings)["issued"] == {"date-parts": [[2026, 1, 3]]}
