"""The cells endpoints: the JSON written without marshmallow is exactly the documented shape
and what :func:`publisher.web.present.cell_rows` gives; pages (``offset``, ``limit``) are slices of
the whole table; bad page arguments are refused (422)."""

from __future__ import annotations

import json

from publisher import workflow as wf
from publisher.db import transaction
from publisher.web import present
from publisher.web.api import _cell_fragments
from publisher.workflow_models import Release

from .conftest import SPEC, TABLE, bearer

NOISE_CSV = (
    b"region,sex,obs_value,obs_status,conf_status,obs_moe\n"
    b"_T,_T,120,A,F,4.5\n_T,F,,Q,C,\nR01,M,7.0,A,F,3\n"
)


def _published(app, store, tokens):  # noqa: ANN001, ANN202
    c = app.test_client()
    rid = c.post("/api/releases", json={"spec": SPEC, "table_csv": TABLE},
                 headers=bearer(tokens["prep"])).get_json()["id"]
    c.post(f"/api/releases/{rid}/submit", json={}, headers=bearer(tokens["prep"]))
    c.post(f"/api/releases/{rid}/approve", json={}, headers=bearer(tokens["appr"]))
    c.post(f"/api/releases/{rid}/schedule", json={}, headers=bearer(tokens["appr"]))
    with transaction(store) as s:
        wf.mark_published(s, s.get(Release, rid), url="http://ckan.example/dataset/x",
                          target="ckan", dataset_name="x")
    return c, rid


def test_cells_are_what_cell_rows_gives(app, store, tokens):
    c, rid = _published(app, store, tokens)
    body = c.get("/api/public/series/test-series/1.0.0/cells").get_json()
    with transaction(store) as s:
        expected = present.cell_rows(s.get(Release, rid))
    assert body["cells"] == expected and body["total"] == len(expected) == 21
    assert (body["series"], body["version"], body["dimensions"]) == (
        "test-series", "1.0.0", ["region", "sex"])
    assert (body["offset"], body["limit"]) == (0, None)
    suppressed = [x for x in body["cells"] if x["conf_status"] in ("C", "D")]
    assert suppressed and all(x["obs_value"] is None for x in suppressed)
    private = c.get(f"/api/releases/{rid}/cells", headers=bearer(tokens["appr"])).get_json()
    assert private == body


def test_a_page_is_a_slice_of_the_table(app, store, tokens):
    c, rid = _published(app, store, tokens)
    path = "/api/public/series/test-series/1.0.0/cells"
    whole = c.get(path).get_json()["cells"]
    page = c.get(path + "?offset=5&limit=4").get_json()
    assert page["cells"] == whole[5:9] and (page["total"], page["offset"], page["limit"]) == (
        21, 5, 4)
    assert c.get(path + "?offset=20&limit=4").get_json()["cells"] == whole[20:]
    assert c.get(path + "?offset=99").get_json()["cells"] == []
    for bad in ("?limit=0", "?offset=-1", "?limit=x", "?offset=1e3"):
        r = c.get(path + bad)
        assert r.status_code == 422 and r.get_json()["code"] == "validation_error", bad
    r = c.get(f"/api/releases/{rid}/cells?offset=2&limit=1", headers=bearer(tokens["prep"]))
    assert r.get_json()["cells"] == whole[2:3]


def test_noise_margins_and_numbers_as_cell_rows_has_them():
    spec = {"dimensions": [{"name": "region"}, {"name": "sex"}]}
    fragments = _cell_fragments(NOISE_CSV, ("region", "sex"))
    cells = [json.loads(f) for f in fragments]
    assert cells == present.cell_rows(Release(spec=spec, protected_csv=NOISE_CSV))
    assert [x["obs_value"] for x in cells] == [120, None, 7]
    assert [x["obs_moe"] for x in cells] == [4.5, None, 3]
    assert isinstance(cells[2]["obs_value"], int)


def test_openapi_documents_the_page_arguments(app):
    doc = app.test_client().get("/api/openapi.json").get_json()
    for path in ("/api/public/series/{series}/{version}/cells",
                 "/api/releases/{release_id}/cells"):
        op = doc["paths"][path]["get"]
        assert {p["name"] for p in op["parameters"] if p["in"] == "query"} == {"offset", "limit"}
        assert "422" in op["responses"]
    props = doc["components"]["schemas"]["Cells"]["properties"]
    assert {"total", "offset", "limit", "cells"} <= set(props)
