"""Issue 14: no figure derived from raw values to anyone, raw inputs only to those who need them
(audited), withdrawals that reach CKAN (worker job, retried), no change once scheduled or while
publishing, one approval / schedule per revision, and no CSV injection."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from publisher import service, tasks
from publisher import workflow as wf
from publisher.ckan import RetryPolicy
from publisher.db import transaction
from publisher.web.exports import audit_csv
from publisher.workflow_models import (
    AuditEntry,
    PublicationJob,
    Release,
    ReleaseDecision,
    User,
    utcnow,
)

from .conftest import SETTINGS, SPEC, TABLE, bearer, issue_token, make_user, upload
from .test_api import LEAK_SPEC, LEAK_TABLE, _create
from .test_ui import login

RAW_KEYS = ("value_suppressed", "primary_value", "secondary_value")


def _walk_keys(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield f"{path}.{k}"
            yield from _walk_keys(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk_keys(v, path + "[]")


def _no_raw_figures(report: dict) -> None:
    keys = set(_walk_keys(report))
    assert not [k for k in keys if k.rsplit(".", 1)[-1] in RAW_KEYS], keys
    # counts only: all cells, and the marginal ones (which cells are marginals is public)
    assert set(report["suppressed"]) <= {"cells", "marginal"}
    if report.get("linked_total"):
        assert set(report["linked_total"]) == {"cells", "suppressed"}


def _new(store, users, who="prep", spec=SPEC, table=TABLE) -> int:
    with transaction(store) as s:
        return wf.create_release(s, s.get(User, users[who]), spec, upload(table),
                                 settings={**SETTINGS, "SECRET_KEY": "k"}).id


def _do(store, fn, user_id, release_id, *args):
    with transaction(store) as s:
        fn(s, s.get(User, user_id), s.get(Release, release_id), *args)


# -- 1. no raw-derived figure, no raw-file hash, raw inputs only to those who need them ----------

def test_report_api_page_and_exports_hold_no_figure_derived_from_raw_values(app, store, tokens):
    c = app.test_client()
    r = _create(c, tokens["prep"], spec=LEAK_SPEC, table=LEAK_TABLE)
    assert r.status_code == 201
    rel = r.get_json()
    rid = rel["id"]
    _no_raw_figures(rel["report"])
    assert rel["report"]["suppressed"]["cells"] >= 2
    assert "upload_sha256" not in rel and "upload_hmac" not in rel
    plain = hashlib.sha256(LEAK_TABLE.encode()).hexdigest()
    c.post(f"/api/releases/{rid}/submit", json={}, headers=bearer(tokens["prep"]))
    c.post(f"/api/releases/{rid}/approve", json={}, headers=bearer(tokens["appr"]))
    bodies = [c.get(f"/api/releases/{rid}", headers=bearer(tokens["appr"])).get_data(as_text=True),
              c.get("/api/releases", headers=bearer(tokens["prep2"])).get_data(as_text=True),
              c.get(f"/api/releases/{rid}/audit", headers=bearer(tokens["appr"])).get_data(
                  as_text=True),
              c.get("/api/audit?format=csv", headers=bearer(tokens["admin"])).get_data(
                  as_text=True),
              c.get("/api/audit", headers=bearer(tokens["admin"])).get_data(as_text=True)]
    login(c, "prep2")  # a preparer who has nothing to do with the release
    page = c.get(f"/releases/{rid}?lang=en").get_data(as_text=True)
    bodies.append(page)
    assert "Value suppressed" not in page and "sha256" not in page
    assert 'id="raw-upload"' not in page  # prep2 may not see the raw table: no link
    for body in bodies:
        assert plain not in body and plain[:16] not in body
        for key in (*RAW_KEYS, "upload_sha256", "upload_hmac"):
            assert key not in body
    # the sum of the suppressed cells' raw values (what primary_value held) is nowhere
    with store() as s:
        prot = s.get(Release, rid).protected_csv.decode()
    raw = {tuple(line.split(",")[:2]): int(line.split(",")[2])
           for line in LEAK_TABLE.splitlines()[1:]}
    hidden = [tuple(line.split(",")[:2]) for line in prot.splitlines()[1:]
              if line.split(",")[3] == "Q" and tuple(line.split(",")[:2]) in raw]
    total = sum(raw[k] for k in hidden)
    assert not re.search(rf"(?<![\w.]){total}(?![\w.])", bodies[0])


def test_reports_stored_before_are_scrubbed_on_output(app, store, tokens, users):
    rid = _new(store, users)
    with transaction(store) as s:
        r = s.get(Release, rid)
        old = json.loads(json.dumps(r.report))
        old["value_suppressed"] = 5
        old["suppressed"].update(value=5, primary_value=5, secondary_value=0)
        old["by_dimension"]["region"][0]["value_suppressed"] = 5
        old["linked_total"] = {"cells": 9, "suppressed": 2, "value": 5}
        r.report = old
        r.upload_sha256 = hashlib.sha256(TABLE.encode()).hexdigest()
        wf.audit(s, s.get(User, users["prep"]), "change", release=r,
                 detail={"upload_sha256": r.upload_sha256, "content_rev": 1})
    c = app.test_client()
    rel = c.get(f"/api/releases/{rid}", headers=bearer(tokens["prep"])).get_json()
    _no_raw_figures(rel["report"])
    audit = c.get(f"/api/releases/{rid}/audit", headers=bearer(tokens["prep"])).get_json()
    assert all("upload_sha256" not in a["detail"] for a in audit)
    with store() as s:
        csv_text = audit_csv(list(wf.audit_rows(s, rid)))
    assert "upload_sha256" not in csv_text
    assert wf.safe_report(None) is None


def test_the_upload_is_kept_with_a_keyed_digest_only(store, users):
    rid = _new(store, users)
    with store() as s:
        r = s.get(Release, rid)
        assert r.upload_sha256 == ""
        assert r.upload_hmac == wf.upload_hmac(TABLE.encode(), "k")
        assert r.upload_hmac != hashlib.sha256(TABLE.encode()).hexdigest()
        details = [a.detail for a in wf.audit_rows(s, rid)]
    assert not any("upload_sha256" in d for d in details)


def test_raw_upload_only_to_preparer_approvers_and_admins_and_every_view_audited(
        app, store, tokens, users):
    users["appr2"] = make_user(store, "appr2", "approver")
    tokens["appr2"] = issue_token(store, users["appr2"])
    c = app.test_client()
    rid = _create(c, tokens["prep"]).get_json()["id"]

    def get(who):
        return c.get(f"/api/releases/{rid}/upload", headers=bearer(tokens[who]))

    def views():
        with store() as s:
            return s.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.release_id == rid, AuditEntry.action == "raw_view"))

    r = get("prep")
    assert r.status_code == 200 and r.get_data(as_text=True) == TABLE
    assert r.headers["Cache-Control"] == "no-store"
    assert views() == 1
    assert get("appr").status_code == 404  # a draft/protected release is not even visible
    c.post(f"/api/releases/{rid}/submit", json={}, headers=bearer(tokens["prep"]))
    assert get("prep2").status_code == 403  # another preparer: not for them
    assert get("appr").status_code == 200  # an approver who may review it
    c.post(f"/api/releases/{rid}/approve", json={}, headers=bearer(tokens["appr"]))
    assert get("appr").status_code == 200  # its approver
    assert get("appr2").status_code == 403  # not its approver
    assert get("admin").status_code == 200
    assert views() == 4
    with store() as s:
        rows = [a for a in wf.audit_rows(s, rid) if a.action == "raw_view"]
    assert [a.actor_name for a in rows] == ["prep", "appr", "appr", "admin"]
    # the UI link, enforced on the server too, and audited
    login(c, "prep2")
    assert c.get(f"/releases/{rid}/upload").status_code == 403
    login(c, "appr")
    page = c.get(f"/releases/{rid}").get_data(as_text=True)
    assert 'id="raw-upload"' in page
    assert c.get(f"/releases/{rid}/upload").get_data(as_text=True) == TABLE
    assert views() == 5


# -- 2. withdrawal reaches the catalogue (the worker's job; real CKAN in tests/integration) ------

def _published(store, users, target="local", dataset="x") -> int:
    rid = _new(store, users)
    _do(store, wf.submit, users["prep"], rid)
    _do(store, wf.approve, users["appr"], rid)
    _do(store, wf.schedule, users["appr"], rid, utcnow() - timedelta(seconds=1))
    with transaction(store) as s:
        wf.mark_published(s, s.get(Release, rid), url="http://ckan.invalid/dataset/" + dataset,
                          target=target, dataset_name=dataset)
    return rid


def test_withdrawn_page_says_why_and_serves_nothing(app, store, users):
    rid = _published(store, users)
    _do(store, wf.withdraw, users["appr"], rid, "a confidential cell was published by mistake")
    c = app.test_client()
    page = c.get("/v/test-series/1.0.0?lang=en").get_data(as_text=True)
    assert "This version was withdrawn" in page
    assert "a confidential cell was published by mistake" in page
    assert c.get("/v/test-series/1.0.0/data.csv").status_code == 410
    pub = c.get("/api/public/series/test-series/1.0.0").get_json()
    assert pub["state"] == "withdrawn" and pub["withdrawn_reason"].startswith("a confidential")
    with store() as s:
        assert not wf.needs_withdrawal(s, s.get(Release, rid))  # local: nothing to do outside


def test_withdrawal_from_ckan_is_a_job_retried_while_ckan_is_down(app, store, users):
    rid = _published(store, users, target="ckan", dataset="test-series-v1-0-0")
    _do(store, wf.withdraw, users["appr"], rid, "wrong figures")
    settings = {**app.config, "CKAN_URL": "http://127.0.0.1:9", "CKAN_API_TOKEN": "t",
                "CKAN_RETRY_POLICY": RetryPolicy(attempts=1, connect_timeout=1)}
    with store() as s:
        assert wf.needs_withdrawal(s, s.get(Release, rid))
    assert tasks.due_withdrawals(settings) == [rid]
    with pytest.raises(tasks.RetryableFailure):
        tasks.run_publication(rid, settings)  # the same task: dispatched to the withdrawal
    with store() as s:
        job = s.scalar(select(PublicationJob).where(PublicationJob.release_id == rid))
        assert (job.status, job.step, job.retryable) == ("failed", "withdraw", True)
        actions = [a.action for a in wf.audit_rows(s, rid)]
    assert actions[-2:] == ["withdraw", "withdraw_failed"]
    assert tasks.due_withdrawals(settings) == [rid]  # the sweep keeps trying


# -- 3. no change once scheduled or publishing; one approval and one schedule per revision ------

def test_change_while_publishing_is_refused_and_the_packaged_revision_is_published(
        app, store, users, monkeypatch, tmp_path):
    rid = _new(store, users)
    _do(store, wf.submit, users["prep"], rid)
    _do(store, wf.approve, users["appr"], rid)
    _do(store, wf.schedule, users["appr"], rid, utcnow() - timedelta(seconds=1))
    seen: list[str] = []
    real = service.publish_release

    def publish_and_meanwhile_change(*a, **kw):
        for fn, args in ((wf.change_release, (None, upload(TABLE.replace("52", "53")))),
                         (wf.unschedule, ("stop",))):
            who = users["prep"] if fn is wf.change_release else users["appr"]
            with pytest.raises(wf.Conflict) as e, transaction(store) as s:
                extra = {"settings": SETTINGS} if fn is wf.change_release else {}
                fn(s, s.get(User, who), s.get(Release, rid), *args, **extra)
            seen.append(e.value.message)
        return real(*a, **kw)

    monkeypatch.setattr(service, "publish_release", publish_and_meanwhile_change)
    settings = {**app.config, "WORK_DIR": str(tmp_path / "w"), "OUTPUT_DIR": str(tmp_path / "o")}
    assert tasks.run_publication(rid, settings) == "published"
    assert seen == ["cannot change a release that is publishing",
                    "publication is running; wait for it to finish or fail"]
    with store() as s:
        r = s.get(Release, rid)
        assert r.state == "published" and r.content_rev == 1


def test_change_of_a_scheduled_release_is_refused_over_http_naming_the_state(app, tokens):
    c = app.test_client()
    rid = _create(c, tokens["prep"]).get_json()["id"]
    c.post(f"/api/releases/{rid}/submit", json={}, headers=bearer(tokens["prep"]))
    c.post(f"/api/releases/{rid}/approve", json={}, headers=bearer(tokens["appr"]))
    c.post(f"/api/releases/{rid}/schedule",
           json={"embargo_at": (utcnow() + timedelta(days=1)).isoformat()},
           headers=bearer(tokens["appr"]))
    r = c.put(f"/api/releases/{rid}", json={"table_csv": TABLE.replace("52", "53")},
              headers=bearer(tokens["prep"]))
    assert r.status_code == 409
    assert r.get_json()["message"] == "cannot change a release that is scheduled"
    # a second schedule of the same revision is refused too
    r = c.post(f"/api/releases/{rid}/schedule", json={}, headers=bearer(tokens["appr"]))
    assert r.status_code == 409


def _race(n, fn):
    barrier = threading.Barrier(n)
    out: list[str] = []
    lock = threading.Lock()

    def run(i):
        barrier.wait()
        try:
            fn(i)
            res = "ok"
        except wf.Conflict as e:
            res = "conflict: " + e.message
        with lock:
            out.append(res)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_parallel_approvals_and_schedules_give_exactly_one_each(store, users):
    approvers = [users["appr"]] + [make_user(store, f"apr{i}", "approver") for i in range(5)]
    rid = _new(store, users)
    _do(store, wf.submit, users["prep"], rid)

    def approve(i):
        with transaction(store) as s:
            wf.approve(s, s.get(User, approvers[i]), s.get(Release, rid), f"ok {i}")

    out = _race(len(approvers), approve)
    assert sorted(out)[-1] == "ok" and out.count("ok") == 1, out
    assert all(o.startswith("conflict: ") for o in out if o != "ok")

    def schedule(i):
        with transaction(store) as s:
            wf.schedule(s, s.get(User, approvers[i]), s.get(Release, rid),
                        utcnow() + timedelta(days=1))

    out2 = _race(len(approvers), schedule)
    assert out2.count("ok") == 1, out2
    with store() as s:
        actions = [a.action for a in wf.audit_rows(s, rid)]
        decisions = s.scalars(select(ReleaseDecision.kind).where(
            ReleaseDecision.release_id == rid)).all()
        r = s.get(Release, rid)
        assert r.state == "scheduled"
    assert actions.count("approve") == 1 and actions.count("schedule") == 1
    assert sorted(decisions) == ["approve", "schedule"]


def test_one_approval_per_revision_is_a_database_constraint(store, users):
    rid = _new(store, users)
    with transaction(store) as s:
        s.add(ReleaseDecision(release_id=rid, content_rev=1, kind="approve", at=utcnow()))
    _do(store, wf.submit, users["prep"], rid)
    with pytest.raises(wf.Conflict) as e:
        _do(store, wf.approve, users["appr"], rid)
    assert e.value.message == "revision 1 of this release is already approved"
    with store() as s:
        assert s.get(Release, rid).state == "submitted"


# -- 4. CSV injection --------------------------------------------------------------------------

def test_csv_safe_neutralises_formulas_but_not_numbers():
    from datapackages.text import csv_safe

    for bad in ("=HYPERLINK(\"http://evil\")", "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx", "=1"):
        assert csv_safe(bad) == "'" + bad
    for fine in ("-3", "+1.5", "2e-05", "-0.25", "R01", "Алматы", "", "'x"):
        assert csv_safe(fine) == fine


def test_audit_export_uses_the_shared_rule(store, users):
    with transaction(store) as s:
        wf.audit(s, s.get(User, users["admin"]), "user_created", reason="=cmd|' /C calc'!A0")
    with store() as s:
        text = audit_csv(list(wf.audit_rows(s)))
    assert "'=cmd|" in text


EVIL = {"F": '=HYPERLINK("http://evil.example","click")', "M": "@SUM(1+1)"}


def test_code_list_labels_are_neutralised_and_the_package_still_validates(store, users,
                                                                          tmp_path):
    from datapackages.text import csv_safe
    from disclosure.spec_schema import spec_from_mapping

    dims = [dict(d) for d in SPEC["dimensions"]]
    dims[1] = {**dims[1], "labels": {c: {"kk": f"+{c}", "ru": f"-{c}+1", "en": EVIL[c]}
                                     for c in ("F", "M")}}
    spec_map = {**SPEC, "id": "csv-injection", "dimensions": dims}
    rid = _new(store, users, spec=spec_map)
    with store() as s:
        r = s.get(Release, rid)
        spec, protected, report = spec_from_mapping(r.spec), r.protected_csv, r.report
    out = tmp_path / "pkg"
    res = service.package_release(spec, protected, out, report=report,
                                  settings={"PUBLIC_BASE_URL": "http://127.0.0.1:5000"})
    descriptor = json.loads((Path(res.path) / "datapackage.json").read_text("utf-8"))
    body = (Path(res.path) / "codelists" / "sex.csv").read_text("utf-8")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert {r["code"]: r["label_en"] for r in rows if r["code"] in EVIL} == {
        c: "'" + v for c, v in EVIL.items()}
    assert {r["label_kk"] for r in rows if r["code"] in EVIL} == {"'+F", "'+M"}
    for text in body.splitlines()[1:]:
        for cell in next(csv.reader([text])):
            assert csv_safe(cell) == cell  # nothing left a spreadsheet would run
    # the data table keeps its numbers (and its codes) as they are
    data = (Path(res.path) / "data" / "csv-injection.csv").read_text("utf-8")
    assert data.replace("\r\n", "\n") == protected.decode("utf-8").replace("\r\n", "\n")
    # the descriptor's hashes and sizes are those of the written bytes
    for res_ in descriptor["resources"]:
        raw = (Path(res.path) / res_["path"]).read_bytes()
        assert res_["hash"] == "sha256:" + hashlib.sha256(raw).hexdigest()
        assert res_["bytes"] == len(raw)
    report = frictionless_cli(Path(res.path) / "datapackage.json")
    assert report["valid"], json.dumps(report)[:2000]


def frictionless_cli(descriptor: Path) -> dict:
    exe = Path(sys.executable).parent / "frictionless"
    out = subprocess.run([str(exe), "validate", "--json", str(descriptor)], capture_output=True,
                         text=True, timeout=300)
    return json.loads(out.stdout)


def test_migration_scrubs_raw_figures_and_plain_hashes_stored_before(db_url):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    from publisher.db import MIGRATIONS, upgrade

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "0003")
    old = {"suppressed": {"cells": 2, "value": 5, "primary_value": 5, "secondary_value": 0},
           "value_suppressed": 5, "by_dimension": {"sex": [{"level": 0, "primary": 1,
                                                            "value_suppressed": 5}]},
           "linked_total": {"cells": 9, "suppressed": 2, "value": 5}}
    engine = create_engine(db_url)
    with engine.begin() as c:
        now = utcnow()
        c.execute(text("insert into app_user (id, username, display_name, password_hash, active,"
                       " created_at) values (1, 'p', '', 'x', true, :now)"), {"now": now})
        c.execute(text(
            "insert into release (id, series, version, kind, state, title, spec, upload_name, "
            "upload_sha256, content_rev, report, prepared_by_id, created_at, updated_at) values "
            "(1, 's', '1.0.0', 'initial', 'protected', '{}', '{}', 't.csv', :h, 1, :rep, 1, "
            ":now, :now)"), {"h": "ab" * 32, "rep": json.dumps(old), "now": now})
    upgrade(db_url)
    with engine.connect() as c:
        rep, digest = c.execute(text("select report, upload_sha256 from release")).one()
    engine.dispose()
    rep = json.loads(rep) if isinstance(rep, str) else rep
    _no_raw_figures(rep)
    assert rep["by_dimension"]["sex"] == [{"level": 0, "primary": 1}] and digest == ""


def test_answers_never_carry_a_width_derived_from_a_raw_value() -> None:
    """Under a percent protection level a primary's required width is p % of its raw value:
    safe_report (every API answer, the review page, exports) drops it."""
    from publisher.workflow import safe_report

    report = {"audit": {"intervals": [{"cell": {"region": "R01D02"}, "lower": 0, "upper": 9,
                                       "width": 9, "required_width": 0.6}]},
              "suppressed": {"cells": 4, "value": 11}}
    out = safe_report(report)
    assert "required_width" not in out["audit"]["intervals"][0]
    assert out["audit"]["intervals"][0]["width"] == 9 and "value" not in out["suppressed"]
