"""The release form's "Show accuracy": the expected 95 % margins of error of a noise release per
epsilon and what the draw will spend of its source's budget, from the spec alone (no table read,
nothing drawn, charged or created), in the page's language, without JavaScript."""

from __future__ import annotations

import io
import re

import yaml
from sqlalchemy import func, select

from disclosure.noise import expected_accuracy
from publisher import budget
from publisher.db import transaction
from publisher.specs import spec_from_mapping
from publisher.workflow_models import Release

from .test_ui import client, csrf, login

NOISY = {
    "id": "noisy-form", "version": "1.0.0", "title": {"kk": "Кесте", "ru": "Таблица", "en": "Table"},
    "source_id": "mvd", "reference_period": "2025",
    "dimensions": [{"name": "region", "hierarchy": {"_T": ["A", "B"], "A": ["A1", "A2"],
                                                    "B": ["B1", "B2", "B3"]}},
                   {"name": "sex", "codes": ["F", "M"]}],
    "disclosure": {"noise": {"mechanism": "geometric", "epsilon": 1.5}},
}


def _rows(page: str) -> list[list[str]]:
    body = page.split('<section id="accuracy"', 1)[1].split("</section>", 1)[0]
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)
            for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", body.split("<tbody>")[1], re.S)]


def _show(c, spec: dict | None = None, lang_fields: dict | None = None, **fields):  # noqa: ANN001, ANN003, ANN202
    data = {"csrf_token": csrf(c, "/releases/new"), "kind": "initial", "previous_id": "",
            "method": "noise", "secondary": "optimal", "show_accuracy": "1", **fields}
    if spec is not None:
        data["spec_file"] = (io.BytesIO(yaml.safe_dump(spec, allow_unicode=True).encode()),
                             "spec.yaml")
    return c.post("/releases/new", data=data, content_type="multipart/form-data")


def test_show_accuracy_gives_the_margins_per_epsilon_and_the_spend(app, store) -> None:  # noqa: ANN001
    with transaction(store) as s:
        budget.add_source(s, "mvd", 4.0)
        budget.charge(s, source="mvd", period="2025", epsilon=1.0, draw_key="earlier")
    c = client(app)
    login(c, "prep")
    r = _show(c, NOISY)  # no table chosen: it is not needed, and not read
    page = r.get_data(True)
    assert r.status_code == 200, page
    rows = _rows(page)
    assert [row[0].split(" —")[0] for row in rows] == ["0.5", "1", "1.5", "2"]
    assert "this release" in rows[2][0] and 'aria-current="true"' in page
    spec = spec_from_mapping(NOISY, source="spec")
    for row, eps in zip(rows, (0.5, 1.0, 1.5, 2.0), strict=True):
        acc = {a.level: a for a in expected_accuracy(spec, eps)}
        assert row[1] == f"±{acc['inner'].moe_median}"
        first = sorted({acc["region@1"].moe_median, acc["sex@1"].moe_median})
        assert row[2] == "±" + "–".join(str(x) for x in first)
        assert row[3] == f"±{acc['total'].moe_median}"
    assert ("The draw will spend epsilon 1.5 of the 3 that data source mvd has left for "
            "period 2025 (of 4); 1.5 will be left.") in page
    with transaction(store) as s:  # nothing drawn, charged or created
        assert budget.status(s, "mvd", "2025").spent == 1.0
        assert s.scalar(select(func.count()).select_from(Release)) == 0


def test_the_form_fields_and_the_page_language(app, store) -> None:  # noqa: ANN001
    with transaction(store) as s:
        budget.add_source(s, "mvd", 1.0)
    c = app.test_client()
    c.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ru"
    login(c, "prep")
    r = _show(c, {**NOISY, "disclosure": {"noise": {"mechanism": "geometric",
                                                    "epsilon": 2.5}}})
    page = r.get_data(True)
    assert r.status_code == 200
    assert [row[0].split(" —")[0] for row in _rows(page)] == ["0,5", "1", "2", "2,5"]
    # epsilon 2.5 is more than the 1 that remains: said before anything is drawn
    assert '<strong class="error">' in page
    # the spec filled in the form (no spec file): the epsilon entered is the one marked
    c2 = client(app)
    login(c2, "prep")
    r = _show(c2, None, series="form-noise", title_en="Form",
              dimensions="region: _T=A,B\nsex: F, M", epsilon="0.8")
    page = r.get_data(True)
    assert r.status_code == 200, page
    rows = _rows(page)
    assert [row[0].split(" —")[0] for row in rows] == ["0.5", "0.8", "1", "2"]
    assert "this release" in rows[1][0]
    # a form spec names no source: the page says the draw would be refused, and why
    assert "The draw would be refused" in page and "source_id" in page


def test_a_gaussian_spec_shows_rho_with_its_epsilon_and_a_suppression_spec_no_table(
        app, store) -> None:  # noqa: ANN001
    with transaction(store) as s:
        budget.add_source(s, "zc", 0.5, unit="rho")
    c = client(app)
    login(c, "prep")
    gauss = {**NOISY, "source_id": "zc",
             "disclosure": {"noise": {"mechanism": "gaussian", "rho": 0.05}}}
    page = _show(c, gauss).get_data(True)
    rows = _rows(page)
    assert any(row[0].startswith("0.05 (1.712)") for row in rows)
    assert "epsilon = rho + 2·sqrt(rho·ln(1/delta)), for delta = 1e-6" in page
    assert "The draw will spend rho 0.05 of the 0.5" in page
    supp = {**NOISY, "disclosure": {"min_frequency": 3}}
    r = _show(c, supp)
    assert r.status_code == 200 and 'id="accuracy"' not in r.get_data(True)
    assert "draws no noise" in r.get_data(True)


def test_the_form_offers_both_buttons(app, store) -> None:  # noqa: ANN001
    """"Show accuracy" is a plain submit (no JavaScript needed) beside "Upload and protect"."""
    c = client(app)
    login(c, "prep")
    page = c.get("/releases/new").get_data(True)
    assert 'name="show_accuracy"' in page and 'id="upload"' in page
    assert re.search(r'<button type="submit" name="show_accuracy" value="1" id="show-accuracy" '
                     r'formnovalidate>', page)
