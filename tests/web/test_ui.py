"""The web UI: sign-in, CSRF, uploads, the review page, roles, attacks, languages."""

from __future__ import annotations

import io
import re

import pytest

from publisher import workflow as wf
from publisher.db import transaction
from publisher.workflow_models import Release, User

from .conftest import SETTINGS, SPEC, TABLE, upload

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def client(app):  # noqa: ANN001, ANN201
    """A browser that prefers English (the default language is Kazakh)."""
    c = app.test_client()
    c.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return c


def csrf(client, path="/login") -> str:
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def login(client, username: str):
    return client.post("/login", data={"username": username, "password": f"{username}-password-1",
                                       "csrf_token": csrf(client)})


def _spec_yaml(spec=SPEC) -> bytes:
    import yaml

    return yaml.safe_dump(spec, allow_unicode=True).encode()


def _upload(client, spec=SPEC, table=TABLE, name="table.csv"):
    token = csrf(client, "/releases/new")
    return client.post("/releases/new", data={
        "csrf_token": token, "kind": "initial", "previous_id": "", "method": "suppression",
        "secondary": "optimal",
        "table": (io.BytesIO(table.encode()), name),
        "spec_file": (io.BytesIO(_spec_yaml(spec)), "spec.yaml"),
    }, content_type="multipart/form-data")


def test_sign_in_and_out(app):
    c = client(app)
    assert c.get("/dashboard").status_code == 302
    r = login(c, "prep")
    assert r.status_code == 302 and r.headers["Location"].endswith("/dashboard")
    assert "prep" in c.get("/dashboard").get_data(as_text=True)
    c.post("/logout", data={"csrf_token": csrf(c, "/dashboard")})
    assert c.get("/dashboard").status_code == 302


def test_wrong_password_is_rate_limited(app):
    # 3 free failures, then a doubling back-off (1 s after the 4th): never a lock-out
    # (tests/web/test_security.py has the rest).
    import time

    c = client(app)
    for _ in range(4):
        r = c.post("/login", data={"username": "appr", "password": "nope-nope-nope",
                                   "csrf_token": csrf(c)})
        assert r.status_code == 401
    r = login(c, "appr")  # right password, but too soon
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 30
    assert c.get("/dashboard").status_code == 302
    time.sleep(int(r.headers["Retry-After"]) + 0.1)
    assert login(c, "appr").status_code == 302  # after the short wait the right one works


def test_forged_csrf_token_is_refused(app):
    c = client(app)
    r = c.post("/login", data={"username": "prep", "password": "prep-password-1",
                               "csrf_token": "forged"})
    assert r.status_code == 400 and "security token" in r.get_data(as_text=True)
    login(c, "prep")
    r = c.post("/releases/new", data={"csrf_token": "forged"})
    assert r.status_code == 400
    r = c.post("/logout", data={})
    assert r.status_code == 400


def test_upload_and_review_page_marks_suppressed_cells(app):
    c = client(app)
    login(c, "prep")
    r = _upload(c)
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    page = c.get(r.headers["Location"]).get_data(as_text=True)
    assert "× P" in page and "mark-primary" in page
    assert "primary suppression" in page and "secondary suppression" in page  # legend
    assert "<svg" in page and 'id="report"' in page and 'id="history"' in page
    assert 'id="submit-release"' in page


def test_script_in_title_is_refused_and_script_in_text_is_escaped(app, store):
    c = client(app)
    login(c, "prep")
    spec = {**SPEC, "title": {"kk": "<script>alert(1)</script>", "ru": "x", "en": "y"}}
    r = _upload(c, spec=spec)
    page = r.get_data(as_text=True)
    assert r.status_code == 422 and "looks like HTML/script markup" in page
    assert "<script>alert(1)</script>" not in page
    with store() as s:
        assert s.query(Release).count() == 0
    rid = int(_upload(c).headers["Location"].rsplit("/", 1)[1])
    c.post(f"/releases/{rid}/submit", data={"csrf_token": csrf(c, f"/releases/{rid}"),
                                            "comment": "<script>alert(1)</script>"})
    a = client(app)
    login(a, "admin")
    for path in (f"/releases/{rid}", "/admin/audit"):
        page = a.get(path).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_formula_in_upload_is_refused_as_text(app, store):
    c = client(app)
    login(c, "prep")
    evil = TABLE + "=cmd|' /C calc'!A0,F,4\n"
    r = _upload(c, table=evil)
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "is not a code of dimension" in page
    assert "=cmd|&#39; /C calc&#39;!A0" in page or "=cmd|&#x27; /C calc&#x27;!A0" in page
    with store() as s:
        assert s.query(Release).count() == 0


def test_preparer_cannot_approve_via_the_form(app, store, users):
    c = client(app)
    login(c, "both")
    rid = int(_upload(c).headers["Location"].rsplit("/", 1)[1])
    tok = csrf(c, f"/releases/{rid}")
    c.post(f"/releases/{rid}/submit", data={"csrf_token": tok})
    r = c.post(f"/releases/{rid}/approve", data={"csrf_token": tok}, follow_redirects=True)
    assert "another approver" in r.get_data(as_text=True)
    with store() as s:
        assert s.get(Release, rid).state == "submitted"
    c2 = client(app)
    login(c2, "prep2")
    r = c2.post(f"/releases/{rid}/approve", data={"csrf_token": csrf(c2, "/dashboard")},
                follow_redirects=True)
    assert "needs the role approver" in r.get_data(as_text=True)


def test_someone_elses_draft_page_is_404(app, users):
    c = client(app)
    login(c, "prep")
    rid = int(_upload(c).headers["Location"].rsplit("/", 1)[1])
    c2 = client(app)
    login(c2, "prep2")
    assert c2.get(f"/releases/{rid}").status_code == 404
    assert c2.get(f"/releases/{rid}/progress.json").status_code == 404
    r = c2.post(f"/releases/{rid}/submit", data={"csrf_token": csrf(c2, "/dashboard")})
    assert r.status_code == 404


def test_200_mb_upload_gets_a_clear_413(app):
    c = client(app)
    login(c, "prep")
    r = c.post("/releases/new", data=io.BytesIO(b"x"), content_type="multipart/form-data; boundary=x",
               environ_overrides={"CONTENT_LENGTH": str(200 * 1024 * 1024)})
    assert r.status_code == 413
    assert "larger than the limit of 50" in r.get_data(as_text=True)


def test_review_flow_through_the_ui(app, store):
    c = client(app)
    login(c, "prep")
    rid = int(_upload(c).headers["Location"].rsplit("/", 1)[1])
    c.post(f"/releases/{rid}/submit", data={"csrf_token": csrf(c, f"/releases/{rid}"),
                                            "comment": "please review"})
    a = client(app)
    login(a, "appr")
    todo = a.get("/dashboard").get_data(as_text=True)
    assert 'id="todo"' in todo and "review it" in todo
    page = a.get(f"/releases/{rid}").get_data(as_text=True)
    assert 'id="approve-release"' in page
    tok = csrf(a, f"/releases/{rid}")
    r = a.post(f"/releases/{rid}/send-back", data={"csrf_token": tok, "comment": ""},
               follow_redirects=True)
    assert "give a comment" in r.get_data(as_text=True)
    a.post(f"/releases/{rid}/approve", data={"csrf_token": tok, "comment": "fine"})
    r = a.post(f"/releases/{rid}/schedule", data={"csrf_token": tok,
                                                   "embargo_at": "2099-01-01T09:00"},
               follow_redirects=True)
    assert "2099-01-01 09:00" in r.get_data(as_text=True)
    with store() as s:
        rel = s.get(Release, rid)
        assert rel.state == "scheduled" and rel.approved_by.username == "appr"


def test_change_after_approval_voids_it_in_the_ui(app, store):
    c = client(app)
    login(c, "prep")
    rid = int(_upload(c).headers["Location"].rsplit("/", 1)[1])
    with transaction(store) as s:
        r = s.get(Release, rid)
        wf.submit(s, r.prepared_by, r)
        wf.approve(s, s.query(User).filter_by(username="appr").one(), r)
    tok = csrf(c, f"/releases/{rid}/change")
    r = c.post(f"/releases/{rid}/change", data={
        "csrf_token": tok, "reason": "fix", "table": (io.BytesIO(TABLE.replace("40", "44").encode()), "t.csv")},
        content_type="multipart/form-data")
    assert r.status_code == 302
    with store() as s:
        rel = s.get(Release, rid)
        assert rel.state == "protected" and rel.approved_by_id is None


@pytest.mark.parametrize("lang,word", [("kk", "Шығу"), ("ru", "Выйти"), ("en", "Sign out")])
def test_language_picker(app, lang, word):
    c = client(app)
    login(c, "prep")
    page = c.get(f"/dashboard?lang={lang}").get_data(as_text=True)
    assert f'<html lang="{lang}">' in page and word in page
    assert f'<html lang="{lang}">' in c.get("/dashboard").get_data(as_text=True)  # remembered


def test_admin_pages(app, store, users):
    with transaction(store) as s:
        wf.create_release(s, s.get(User, users["prep"]), SPEC, upload(), settings=SETTINGS)
    c = client(app)
    login(c, "prep")
    assert c.get("/admin/audit").status_code == 403
    c = client(app)
    login(c, "admin")
    page = c.get("/admin/audit?lang=en").get_data(as_text=True)
    assert "protect" in page and "Hash chain verified: 2 rows intact." in page
    r = c.get("/admin/audit.csv")
    assert r.status_code == 200 and r.get_data(as_text=True).startswith("id,at,actor")
    tok = csrf(c, "/admin/users")
    r = c.post("/admin/users", data={"csrf_token": tok, "username": "reviewer2",
                                     "display_name": "R", "password": "long-enough-pw",
                                     "roles": ["approver"]})
    assert r.status_code == 302
    with store() as s:
        assert s.query(User).filter_by(username="reviewer2").one().roles == {"approver"}


def test_refusals_are_shown_in_the_readers_language(app):
    c = client(app)
    login(c, "both")
    rid = int(_upload(c).headers["Location"].rsplit("/", 1)[1])
    tok = csrf(c, f"/releases/{rid}")
    c.post(f"/releases/{rid}/submit", data={"csrf_token": tok})
    c.get("/?lang=ru")
    page = c.post(f"/releases/{rid}/approve", data={"csrf_token": tok},
                  follow_redirects=True).get_data(as_text=True)
    assert "его должен утвердить другой утверждающий" in page
    c.get("/?lang=kk")
    page = c.post(f"/releases/{rid}/submit", data={"csrf_token": tok},
                  follow_redirects=True).get_data(as_text=True)
    assert "«тексеруге жіберілді» күйіндегі шығарылымды тексеруге жіберу мүмкін емес" in page


def test_spec_filled_in_the_form(app, store):
    c = client(app)
    login(c, "prep")
    r = c.post("/releases/new", data={
        "csrf_token": csrf(c, "/releases/new"), "kind": "initial", "previous_id": "",
        "series": "form-series", "title_kk": "Кесте", "title_ru": "Таблица", "title_en": "Table",
        "dimensions": "region: _T=R01,R02; R01=R01D01,R01D02; R02=R02D01,R02D02\nsex: F, M",
        "method": "suppression", "min_frequency": "5", "secondary": "heuristic",
        "table": (io.BytesIO(TABLE.encode()), "t.csv")}, content_type="multipart/form-data")
    assert r.status_code == 302, r.get_data(as_text=True)[-3000:]
    with store() as s:
        rel = s.query(Release).filter_by(series="form-series").one()
        assert rel.spec["disclosure"] == {"min_frequency": 5, "secondary": "heuristic"}
        assert rel.spec["dimensions"][0]["hierarchy"]["R02"] == ["R02D01", "R02D02"]
    r = c.post("/releases/new", data={
        "csrf_token": csrf(c, "/releases/new"), "kind": "initial", "previous_id": "",
        "series": "form-series-2", "title_en": "T", "dimensions": "region R01 R02",
        "method": "suppression", "secondary": "optimal",
        "table": (io.BytesIO(TABLE.encode()), "t.csv")}, content_type="multipart/form-data")
    assert r.status_code == 422 and "dimensions, line 1" in r.get_data(as_text=True)


def test_xlsx_formula_stays_text_and_is_refused(app, store):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["region", "sex", "obs_value"])
    for line in TABLE.strip().splitlines()[1:]:
        reg, sex, val = line.split(",")
        ws.append([reg, sex, int(val)])
    ws.append(["=cmd|' /C calc'!A0", "F", 4])
    buf = io.BytesIO()
    wb.save(buf)
    c = client(app)
    login(c, "prep")
    token = csrf(c, "/releases/new")
    r = c.post("/releases/new", data={
        "csrf_token": token, "kind": "initial", "previous_id": "", "method": "suppression",
        "secondary": "optimal", "table": (io.BytesIO(buf.getvalue()), "t.xlsx"),
        "spec_file": (io.BytesIO(_spec_yaml()), "spec.yaml")}, content_type="multipart/form-data")
    page = r.get_data(as_text=True)
    assert r.status_code == 422 and "is not a code of dimension" in page and "=cmd|" in page, \
        re.findall(r"flash error[^<]*</p>|>Refused[^<]*", page)
    # the same workbook without the formula row is accepted (XLSX uploads work)
    ws.delete_rows(ws.max_row)
    buf = io.BytesIO()
    wb.save(buf)
    r = c.post("/releases/new", data={
        "csrf_token": token, "kind": "initial", "previous_id": "", "method": "suppression",
        "secondary": "optimal", "table": (io.BytesIO(buf.getvalue()), "t.xlsx"),
        "spec_file": (io.BytesIO(_spec_yaml()), "spec.yaml")}, content_type="multipart/form-data")
    assert r.status_code == 302, r.get_data(as_text=True)[-2000:]


def test_wrong_passwords_from_one_address_are_rate_limited(app):
    c = client(app)
    assert login(c, "prep").status_code == 302  # prep has signed in from this address before
    c.post("/logout", data={"csrf_token": csrf(c, "/account")})
    for i in range(21):  # 20 free failures per address, then back-off
        r = c.post("/login", data={"username": f"nobody{i}", "password": "wrong-password",
                                   "csrf_token": csrf(c)})
        assert r.status_code == 401
    assert login(c, "prep2").status_code == 429  # new to this address: waits a little
    assert login(c, "prep").status_code == 302  # known here: the noise cannot keep it out
    other = client(app)
    other.environ_base["REMOTE_ADDR"] = "127.0.0.9"
    assert login(other, "prep2").status_code == 302
