"""The administrator's page of data sources and privacy budgets (SQLite and PostgreSQL): register,
see spent and left per period, change a total with a reason; audited; admins only; bad input
answered in the page's language, never a 500."""

from __future__ import annotations

from sqlalchemy import select

from publisher import budget
from publisher.db import transaction
from publisher.workflow_models import AuditEntry

from .test_ui import client, csrf, login


def test_admin_registers_and_changes_a_source(app, store) -> None:  # noqa: ANN001
    c = client(app)
    login(c, "admin")
    r = c.get("/admin/sources")
    assert r.status_code == 200 and "No data source is registered yet." in r.get_data(True)
    tok = csrf(c, "/admin/sources")
    r = c.post("/admin/sources", data={"csrf_token": tok, "new-source_id": " MVD-Migration ",
                                       "new-total": "3"}, follow_redirects=True)
    page = r.get_data(True)
    assert r.status_code == 200 and "Source mvd-migration registered" in page
    with transaction(store) as s:
        budget.charge(s, source="mvd-migration", period="2025", epsilon=1.25, draw_key="d1")
    page = c.get("/admin/sources").get_data(True)
    assert "2025: 1.25 spent, 1.75 left" in page
    tok = csrf(c, "/admin/sources")
    r = c.post("/admin/sources/mvd-migration/budget",
               data={"csrf_token": tok, "b-mvd-migration-total": "5",
                     "b-mvd-migration-reason": "new policy"}, follow_redirects=True)
    assert "now epsilon 5 per reference period" in r.get_data(True)
    with transaction(store) as s:
        assert budget.get_source(s, "mvd-migration").total == 5.0
        actions = [a.action for a in s.scalars(select(AuditEntry).order_by(AuditEntry.id))
                   if a.action.startswith("source_")]
    assert actions == ["source_added", "source_budget_changed"]


def test_bad_input_is_refused_in_the_pages_language(app, store) -> None:  # noqa: ANN001
    c = app.test_client()
    c.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ru"
    login(c, "admin")
    tok = csrf(c, "/admin/sources")
    r = c.post("/admin/sources", data={"csrf_token": tok, "new-source_id": "bad id!",
                                       "new-total": "2"})
    assert r.status_code == 422 and "Отклонено" in r.get_data(True)
    r = c.post("/admin/sources", data={"csrf_token": tok, "new-source_id": "ok",
                                       "new-total": "-1"})
    assert r.status_code == 422
    c.post("/admin/sources", data={"csrf_token": tok, "new-source_id": "ok", "new-total": "2"})
    r = c.post("/admin/sources", data={"csrf_token": tok, "new-source_id": "OK",
                                       "new-total": "9"})
    assert r.status_code == 409  # the same source spelled differently is not a new budget
    r = c.post("/admin/sources/ok/budget", data={"csrf_token": tok, "b-ok-total": "9",
                                                 "b-ok-reason": ""})
    assert r.status_code == 422  # a change needs a reason
    r = c.post("/admin/sources/nope/budget", data={"csrf_token": tok, "b-nope-total": "9",
                                                   "b-nope-reason": "x"})
    assert r.status_code == 404
    r = c.post("/admin/sources", data={"new-source_id": "x", "new-total": "2"})  # no CSRF
    assert r.status_code in (400, 422)
    with transaction(store) as s:
        assert [x.id for x in budget.sources(s)] == ["ok"] and budget.get_source(s, "ok").total == 2


def test_only_admins(app) -> None:  # noqa: ANN001
    c = client(app)
    assert c.get("/admin/sources").status_code in (302, 401)
    login(c, "appr")
    assert c.get("/admin/sources").status_code == 403
    tok = csrf(c, "/dashboard")
    assert c.post("/admin/sources", data={"csrf_token": tok, "new-source_id": "x",
                                          "new-total": "2"}).status_code == 403
