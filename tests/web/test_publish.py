"""Background publishing: the Huey task, resumability, progress, and the public pages it feeds."""

from __future__ import annotations

import html
import os
import re
from datetime import timedelta

import pytest
from huey import SqliteHuey
from sqlalchemy import select, update

from publisher import service, tasks
from publisher.db import transaction
from publisher.workflow_models import AuditEntry, PublicationJob, Release, utcnow

from .conftest import TABLE, bearer
from .test_api import LEAK_SPEC, LEAK_TABLE, _create


def _approved(c, tokens, spec=None, table=None) -> int:
    kw = {} if spec is None else {"spec": spec, "table": table}
    rid = _create(c, tokens["prep"], **kw).get_json()["id"]
    c.post(f"/api/releases/{rid}/submit", json={}, headers=bearer(tokens["prep"]))
    c.post(f"/api/releases/{rid}/approve", json={}, headers=bearer(tokens["appr"]))
    return rid


def _scheduled(c, tokens, embargo_at: str | None = None) -> int:
    """An approved release, scheduled by the approver (now, or at ``embargo_at``)."""
    rid = _approved(c, tokens)
    body = {} if embargo_at is None else {"embargo_at": embargo_at}
    c.post(f"/api/releases/{rid}/schedule", json=body, headers=bearer(tokens["appr"]))
    return rid


@pytest.fixture
def publishing_app(app):
    app.config["PUBLISH_ENQUEUE"] = True
    tasks.huey.immediate = True
    tasks.configure(app.config)
    return app


def test_schedule_now_publishes_in_the_background(publishing_app, store, tokens, tmp_path):
    app = publishing_app
    c = app.test_client()
    rid = _approved(c, tokens, LEAK_SPEC, LEAK_TABLE)
    r = c.post(f"/api/releases/{rid}/schedule", json={}, headers=bearer(tokens["appr"]))
    assert r.status_code == 200
    rel = c.get(f"/api/releases/{rid}", headers=bearer(tokens["appr"])).get_json()
    assert rel["state"] == "published", c.get(f"/api/releases/{rid}/progress",
                                              headers=bearer(tokens["appr"])).get_json()
    p = c.get(f"/api/releases/{rid}/progress", headers=bearer(tokens["appr"])).get_json()
    assert p["status"] == "done" and p["percent"] == 100
    out = tmp_path / "out" / "leak-test" / "1.0.0"
    assert (out / "datapackage.json").is_file()

    page = c.get("/v/leak-test/1.0.0?lang=en")
    text = html.unescape(page.get_data(as_text=True))
    assert page.status_code == 200
    assert "How to cite" in text and "@dataset" in text and '"type": "dataset"' in text
    assert 'href="/v/leak-test/1.0.0/data.csv"' in text and "package.zip" in text
    for lang, word in (("kk", "Қалай сілтеме"), ("ru", "Как цитировать")):
        assert word in c.get(f"/v/leak-test/1.0.0?lang={lang}").get_data(as_text=True)
    assert c.get("/v/leak-test/1.0.0/package.zip").status_code == 200
    assert c.get("/v/leak-test/1.0.0/citation.bib").status_code == 200
    data = c.get("/v/leak-test/1.0.0/data.csv").get_data(as_text=True)
    assert data.splitlines()[0].endswith("obs_value,obs_status,conf_status")
    # a suppressed cell's true value is absent from every public response
    paths = ["/v/leak-test", "/v/leak-test/1.0.0", "/v/leak-test/1.0.0/data.csv",
             "/v/leak-test/1.0.0/citation.json", "/v/leak-test/1.0.0/citation.bib",
             "/api/public/series/leak-test", "/api/public/series/leak-test/1.0.0",
             "/api/public/series/leak-test/1.0.0/cells"]
    for path in paths:
        for lang in ("kk", "ru", "en"):
            body = c.get(f"{path}?lang={lang}").get_data(as_text=True)
            assert not re.search(r"(?<![\w.])(87|93)(?![\w.])", body), path
    import zipfile

    z = tmp_path / "out" / "leak-test" / "1.0.0" / "leak-test-1.0.0.zip"
    with zipfile.ZipFile(z) as zf:
        for name in zf.namelist():
            if name.endswith((".csv", ".json")):
                body = zf.read(name).decode("utf-8", "replace")
                assert not re.search(r"(?<![\w.])(87|93)(?![\w.])", body), name


def test_a_retryable_failure_is_resumed_without_rebuilding(publishing_app, store, tokens,
                                                           monkeypatch):
    app = publishing_app
    app.config["PUBLISH_ENQUEUE"] = False
    c = app.test_client()
    rid = _scheduled(c, tokens)
    calls = {"package": 0}
    real_package, real_publish = service.package_release, service.publish_release

    def counting_package(*a, **kw):
        calls["package"] += 1
        return real_package(*a, **kw)

    def failing_publish(*a, **kw):
        raise service.PublishFailed("CKAN is unavailable (HTTP 503)", retryable=True)

    monkeypatch.setattr(service, "package_release", counting_package)
    monkeypatch.setattr(service, "publish_release", failing_publish)
    with pytest.raises(tasks.RetryableFailure):
        tasks.run_publication(rid, dict(app.config))
    with store() as s:
        assert s.get(Release, rid).state == "scheduled"
        job = s.scalar(select(PublicationJob).where(PublicationJob.release_id == rid))
        assert job.status == "failed" and "503" in job.message and job.retryable
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.release_id == rid)
                        .order_by(AuditEntry.id.desc())) == "publish_failed"
    assert tasks.due_releases(dict(app.config)) == [rid]
    monkeypatch.setattr(service, "publish_release", real_publish)
    assert tasks.run_publication(rid, dict(app.config)) == "published"
    assert calls["package"] == 1  # the package built on the first attempt was reused
    assert tasks.run_publication(rid, dict(app.config)) == "done"  # idempotent
    with store() as s:
        n = s.query(AuditEntry).filter_by(release_id=rid, action="publish").count()
        assert n == 1 and s.get(Release, rid).state == "published"


def test_embargo_is_respected_and_lost_tasks_are_swept_up(publishing_app, store, tokens,
                                                         tmp_path):
    app = publishing_app
    app.config["PUBLISH_ENQUEUE"] = False
    c = app.test_client()
    rid = _scheduled(c, tokens, embargo_at=(utcnow() + timedelta(hours=1)).isoformat())
    settings = dict(app.config)
    assert tasks.run_publication(rid, settings) == "not_due"
    assert tasks.due_releases(settings) == []

    # A real SQLite queue: the task is enqueued, then the worker dies holding it.
    queue = SqliteHuey("test", filename=str(tmp_path / "huey.db"))
    publish = queue.task(retries=1, retry_delay=0)(tasks.run_publication)
    publish(rid, settings)
    assert queue.pending_count() == 1
    lost = queue.dequeue()
    assert lost is not None and queue.pending_count() == 0
    with transaction(store) as s:  # the embargo passes
        s.execute(update(Release).where(Release.id == rid)
                  .values(embargo_at=utcnow() - timedelta(seconds=1)))
    # The periodic sweep finds it and a restarted worker runs it.
    assert tasks.due_releases(settings) == [rid]
    publish(rid, settings)
    task = queue.dequeue()
    queue.execute(task)
    with store() as s:
        assert s.get(Release, rid).state == "published"


def test_one_worker_at_a_time_and_stale_jobs_are_taken_over(publishing_app, store, tokens):
    app = publishing_app
    app.config["PUBLISH_ENQUEUE"] = False
    c = app.test_client()
    rid = _scheduled(c, tokens)
    settings = dict(app.config)
    with transaction(store) as s:
        s.execute(update(PublicationJob).where(PublicationJob.release_id == rid)
                  .values(status="running", updated_at=utcnow()))
    assert tasks.run_publication(rid, settings) == "busy"
    with transaction(store) as s:
        s.execute(update(PublicationJob).where(PublicationJob.release_id == rid)
                  .values(updated_at=utcnow() - timedelta(hours=1)))
    assert tasks.due_releases(settings) == [rid]
    assert tasks.run_publication(rid, settings) == "published"


def test_correction_page_shows_notice_and_series_lists_versions(publishing_app, store, tokens):
    app = publishing_app
    c = app.test_client()
    rid = _scheduled(c, tokens)
    r = c.post("/api/releases", json={"spec": {"id": "test-series", **{
        k: v for k, v in __import__("tests.web.conftest", fromlist=["SPEC"]).SPEC.items() if k != "id"}},
        "table_csv": TABLE.replace("R02D02,F,52", "R02D02,F,55"), "kind": "correction",
        "previous_id": rid, "notice": "R02D02 F was 52, is 55"}, headers=bearer(tokens["prep"]))
    assert r.status_code == 201, r.get_json()
    cid = r.get_json()["id"]
    assert r.get_json()["version"] == "1.0.1"
    c.post(f"/api/releases/{cid}/submit", json={}, headers=bearer(tokens["prep"]))
    c.post(f"/api/releases/{cid}/approve", json={}, headers=bearer(tokens["appr"]))
    c.post(f"/api/releases/{cid}/schedule", json={}, headers=bearer(tokens["appr"]))
    series = c.get("/v/test-series?lang=en").get_data(as_text=True)
    assert "1.0.1" in series and "1.0.0" in series and "R02D02 F was 52, is 55" in series
    assert re.search(r"Against 1\.0\.0: [1-9]\d* cells changed, 0 added, 0 removed", series)
    d = c.get(f"/api/releases/{cid}/diff", headers=bearer(tokens["appr"])).get_json()
    total = next(x for x in d["changed"] if x["codes"] == {"region": "_T", "sex": "_T"})
    assert total["after"] - total["before"] == 3
    assert all(x["codes"]["region"] in ("R02D02", "R02", "_T") for x in d["changed"])
    old = c.get("/v/test-series/1.0.0?lang=en").get_data(as_text=True)
    assert "A newer version exists" in old and "this version was corrected" in old
    new = c.get("/v/test-series/1.0.1?lang=en").get_data(as_text=True)
    assert "Correction notice" in new
    # withdrawn: page says so, downloads are gone
    c.post(f"/api/releases/{cid}/withdraw", json={"reason": "wrong source"},
           headers=bearer(tokens["appr"]))
    assert "was withdrawn" in c.get("/v/test-series/1.0.1?lang=en").get_data(as_text=True)
    assert c.get("/v/test-series/1.0.1/data.csv").status_code == 410
    assert c.get("/api/public/series/test-series/1.0.1/cells").status_code == 410
    # unpublished versions are not public
    assert c.get("/v/nope").status_code == 404


def test_redis_queue_when_configured(tmp_path):
    """HUEY_URL selects Redis (the one CKAN uses when the local stack runs)."""
    import socket

    url = os.environ.get("ASHYQ_TEST_REDIS_URL", "redis://127.0.0.1:56379/7")
    host, port = url.split("//")[1].split("/")[0].split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        pytest.skip(f"no Redis at {url} (scripts/ckan-local.sh up starts one)")
    from huey import RedisHuey

    q = tasks.make_huey({"HUEY_URL": url})
    assert isinstance(q, RedisHuey)
    q.flush()

    @q.task()
    def add(a, b):  # noqa: ANN001, ANN202
        return a + b

    res = add(2, 3)
    assert q.pending_count() == 1
    q.execute(q.dequeue())
    assert res.get() == 5
    q.flush()


def test_pre_release_access_is_logged(publishing_app, store, tokens):
    app = publishing_app
    app.config["PUBLISH_ENQUEUE"] = False
    c = app.test_client()
    rid = _scheduled(c, tokens, embargo_at=(utcnow() + timedelta(days=2)).isoformat())
    c.get(f"/api/releases/{rid}/cells", headers=bearer(tokens["prep2"]))
    with store() as s:
        rows = s.query(AuditEntry).filter_by(release_id=rid, action="pre_release_access").all()
        assert [(a.actor_name, a.detail["what"]) for a in rows][-1] == ("prep2", "api:cells")
    assert c.get("/v/test-series/1.0.0").status_code == 404  # embargoed: not public


def test_noise_release_shows_epsilon_and_margins(app, store, users):
    from publisher import workflow as wf
    from publisher.budget import add_source
    from publisher.workflow_models import User

    from .conftest import SETTINGS, SPEC, upload

    spec = {**SPEC, "id": "noisy", "source_id": "src",  # adapted (issue 13): a registered source
            "disclosure": {"noise": {"mechanism": "geometric", "epsilon": 1.0}}}
    with transaction(store) as s:
        add_source(s, "src", 4.0)
    with transaction(store) as s:
        r = wf.create_release(s, s.get(User, users["prep"]), spec, upload(),
                              settings={**SETTINGS, **{k: app.config[k] for k in (
                                  "DATABASE_URL", "EPSILON_CEILING", "EPSILON_BUDGET")}})
        rid = r.id
    c = app.test_client()
    c.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    from .test_ui import login

    login(c, "prep")
    page = c.get(f"/releases/{rid}").get_data(as_text=True)
    assert "Epsilon" in page and 'id="moe"' in page and "obs_moe" in page
    assert "× P" not in page and "mark-primary" not in page


def test_a_failed_publication_is_retried_by_an_approver(publishing_app, store, tokens,
                                                        monkeypatch):
    app = publishing_app
    c = app.test_client()
    rid = _approved(c, tokens)
    real_publish = service.publish_release

    def refused(*a, **kw):
        raise service.PublishFailed("CKAN refused the organization", retryable=False)

    monkeypatch.setattr(service, "publish_release", refused)
    c.post(f"/api/releases/{rid}/schedule", json={}, headers=bearer(tokens["appr"]))
    p = c.get(f"/api/releases/{rid}/progress", headers=bearer(tokens["appr"])).get_json()
    assert p["status"] == "failed" and "organization" in p["message"] and p["state"] == "scheduled"
    assert tasks.due_releases(dict(app.config)) == []  # not retried automatically
    r = c.post(f"/api/releases/{rid}/retry", json={}, headers=bearer(tokens["prep"]))
    assert r.status_code == 403
    monkeypatch.setattr(service, "publish_release", real_publish)
    r = c.post(f"/api/releases/{rid}/retry", json={"comment": "organization fixed"},
               headers=bearer(tokens["appr"]))
    assert r.status_code == 200
    rel = c.get(f"/api/releases/{rid}", headers=bearer(tokens["appr"])).get_json()
    assert rel["state"] == "published"
    r = c.post(f"/api/releases/{rid}/retry", json={}, headers=bearer(tokens["appr"]))
    assert r.status_code == 409


def test_the_job_packages_from_the_stored_bytes_and_records_in_its_transaction(
        publishing_app, store, tokens, tmp_path, monkeypatch):
    """No temporary CSV: package_release gets the protected table's bytes; the local publication
    is recorded by the job (no migration or engine of its own)."""
    import publisher.db as db
    from publisher.models import LocalPublication

    app = publishing_app
    seen = []
    real_package = service.package_release

    def spy(spec, protected, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        seen.append((type(protected), kw.get("name")))
        return real_package(spec, protected, *a, **kw)

    def refused(*_a, **_kw):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the job ran the migrations")

    monkeypatch.setattr(service, "package_release", spy)
    monkeypatch.setattr(db, "upgrade", refused)
    c = app.test_client()
    rid = _scheduled(c, tokens)
    rel = c.get(f"/api/releases/{rid}", headers=bearer(tokens["appr"])).get_json()
    assert rel["state"] == "published"
    assert seen == [(bytes, f"release {rid} protected table (rev 1)")]
    assert not list((tmp_path / "work").rglob("protected*.csv"))  # the old temporary file
    with store() as s:
        assert [(p.series, p.version) for p in s.query(LocalPublication)] == [("test-series", "1.0.0")]
