"""The correction form: it keeps the previous version's spec as its spec file, takes the notice
in the default language and, optionally, the other two; the release stores all three."""

from __future__ import annotations

import io
import re
from datetime import timedelta

from publisher import workflow as wf
from publisher.db import transaction
from publisher.workflow_models import Release, User, utcnow

from .conftest import SETTINGS, SPEC, TABLE, upload
from .test_ui import client, csrf, login


def _published(store, users) -> int:  # noqa: ANN001
    with transaction(store) as s:
        r = wf.create_release(s, s.get(User, users["prep"]), SPEC, upload(), settings=SETTINGS)
        rid = r.id
    for fn, who, args in ((wf.submit, "prep", ()), (wf.approve, "appr", ()),
                          (wf.schedule, "appr", (utcnow() - timedelta(seconds=1),))):
        with transaction(store) as s:
            fn(s, s.get(User, users[who]), s.get(Release, rid), *args)
    with transaction(store) as s:
        wf.mark_published(s, s.get(Release, rid), url="file:///x", target="local",
                          dataset_name="x")
    return rid


def test_correction_form_keeps_the_previous_spec_and_takes_three_notices(app, store, users):  # noqa: ANN001
    rid = _published(store, users)
    c = client(app)
    login(c, "prep")
    page = c.get(f"/releases/new?previous={rid}&kind=correction").get_data(True)
    held = re.search(r'name="held_spec_file" value="([0-9a-f]+)"', page)
    assert held and "test-series-1.0.0.yaml" in page
    assert 'name="notice_ru"' in page and 'name="notice_en"' in page
    assert 'name="notice_kk"' not in page  # the default language's is the main notice field
    r = c.post("/releases/new", data={
        "csrf_token": csrf(c, "/releases/new"), "kind": "correction", "previous_id": str(rid),
        "method": "suppression", "secondary": "optimal", "held_spec_file": held.group(1),
        "notice": "R02D01 M қате саналған", "notice_ru": "R02D01 M посчитан неверно",
        "notice_en": "R02D01 M was miscounted",
        "table": (io.BytesIO(TABLE.replace("33", "34").encode()), "table.csv"),
    }, content_type="multipart/form-data")
    assert r.status_code in (302, 303), r.get_data(True)[:2000]
    with store() as s:
        c2 = s.query(Release).filter(Release.kind == "correction").one()
        assert c2.version == "1.0.1"
        assert c2.notices == {"kk": "R02D01 M қате саналған", "ru": "R02D01 M посчитан неверно",
                              "en": "R02D01 M was miscounted"}
        assert c2.notice_in("ru") == "R02D01 M посчитан неверно"
        assert c2.spec["dimensions"] == SPEC["dimensions"]


def test_a_correction_without_the_default_notice_is_refused_and_keeps_the_form(app, store, users):  # noqa: ANN001
    rid = _published(store, users)
    c = app.test_client()
    c.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ru"
    login(c, "prep")
    page = c.get(f"/releases/new?previous={rid}&kind=correction").get_data(True)
    held = re.search(r'name="held_spec_file" value="([0-9a-f]+)"', page).group(1)
    r = c.post("/releases/new", data={
        "csrf_token": csrf(c, "/releases/new"), "kind": "correction", "previous_id": str(rid),
        "method": "suppression", "secondary": "optimal", "held_spec_file": held,
        "notice_ru": "только по-русски",
        "table": (io.BytesIO(TABLE.encode()), "table.csv"),
    }, content_type="multipart/form-data")
    text = r.get_data(True)
    assert r.status_code == 422 and "Отклонено" in text
    assert "только по-русски" in text  # what was typed is kept
    with store() as s:
        assert s.query(Release).filter(Release.kind == "correction").count() == 0
