"""Protection as a background job: the web request only validates and queues; the worker protects
in a child process with a time and a memory limit, with progress, cancel and a heartbeat; limits
refused at upload; the new-release form keeps its files after a refusal and takes linked tables.
"""

from __future__ import annotations

import io
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from sqlalchemy import select, update

from publisher import tasks
from publisher import workflow as wf
from publisher.db import transaction
from publisher.job_models import HeldUpload, ProtectionJob
from publisher.workflow_models import AuditEntry, Release, User, utcnow

from .conftest import SECRET_CELLS, SPEC, TABLE, bearer
from .test_ui import client, csrf, login

ROOT = Path(__file__).resolve().parents[2]


def _slow(n: int = 100, seed: int = 1) -> tuple[dict[str, Any], str]:
    """A table whose optimal secondary suppression takes several seconds here (~15 s)."""
    rnd = random.Random(seed)
    codes = [f"C{i:04d}" for i in range(n)]
    spec = {"id": f"slow-{n}", "version": "1.0.0",
            "title": {"kk": "Баяу кесте", "ru": "Медленная таблица", "en": "Slow table"},
            "dimensions": [{"name": "country", "codes": codes},
                           {"name": "sex", "codes": ["F", "M"]},
                           {"name": "age", "codes": ["A1", "A2", "A3"]}],
            "disclosure": {"min_frequency": 5, "secondary": "optimal"}}
    rows = ["country,sex,age,obs_value"]
    rows += [f"{c},{s},{a},{rnd.choice([0, 1, 2, 3, 4, 6, 8, 12, 20, 40])}"
             for c in codes for s in ("F", "M") for a in ("A1", "A2", "A3")]
    return spec, "\n".join(rows) + "\n"


@pytest.fixture
def make_app(db_url: str, tmp_path: Path, store, users):  # noqa: ANN001, ANN201
    """An app with settings of the test's choice (queued jobs are not run unless asked)."""
    from publisher.app import create_app

    made = []

    def make(**overrides: Any):  # noqa: ANN202
        app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": True,
                          "HUEY_IMMEDIATE": True, "PUBLISH_ENQUEUE": False,
                          "PROTECT_ENQUEUE": False,
                          "WORK_DIR": str(tmp_path / "work"), "OUTPUT_DIR": str(tmp_path / "out"),
                          "CKAN_URL": None, "CKAN_API_TOKEN": None, **overrides})
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["ashyq.engine"].dispose()


def _protection_processes(parent: int) -> list[int]:
    """Protection processes (``child_main``) started by the process ``parent``."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if b"child_main" not in (d / "cmdline").read_bytes():
                continue
            env = (d / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"ASHYQ_PROTECT_PARENT={parent}".encode() in env:
            found.append(int(d.name))
    return found


def _yaml(spec: dict[str, Any]) -> bytes:
    return yaml.safe_dump(spec, allow_unicode=True).encode()


def _post_new(c, spec=SPEC, table=TABLE, name="table.csv", extra=None):  # noqa: ANN001, ANN202
    data = {"csrf_token": csrf(c, "/releases/new"), "kind": "initial", "previous_id": "",
            "method": "suppression", "secondary": "optimal"}
    if table is not None:
        data["table"] = (io.BytesIO(table.encode()), name)
    if spec is not None:
        data["spec_file"] = (io.BytesIO(_yaml(spec)), "spec.yaml")
    data.update(extra or {})
    return c.post("/releases/new", data=data, content_type="multipart/form-data")


def _job(store, rid: int) -> ProtectionJob:  # noqa: ANN001
    with store() as s:
        job = wf.protection_job(s, s.get(Release, rid))
        s.expunge(job)
        return job


def _create_api(c, token: str, spec=SPEC, table=TABLE, **extra):  # noqa: ANN001, ANN202
    return c.post("/api/releases", json={"spec": spec, "table_csv": table, **extra},
                  headers=bearer(token))


# -- the request validates and queues; the worker protects -------------------------------------------

def test_upload_queues_a_job_that_the_worker_runs(make_app, store):
    app = make_app()
    c = client(app)
    login(c, "prep")
    r = _post_new(c)
    assert r.status_code == 302, r.get_data(as_text=True)[-2000:]
    rid = int(r.headers["Location"].rsplit("/", 1)[1])
    with store() as s:
        rel = s.get(Release, rid)
        assert rel.state == "draft" and rel.protected_csv is None and rel.report is None
    job = _job(store, rid)
    assert job.status == "pending" and job.attempts == 0
    # the release page: a progress bar (role, value), a cancel button, a refresh without JS
    page = c.get(f"/releases/{rid}").get_data(as_text=True)
    assert 'role="progressbar"' in page and 'aria-valuenow="0"' in page
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in page
    assert 'id="cancel-protection"' in page and "protect.js" in page
    p = c.get(f"/releases/{rid}/protection.json").get_json()
    assert p["status"] == "pending" and p["status_label"] == "waiting for the worker"

    assert tasks.run_protection(job.id, dict(app.config)) == "done"
    with store() as s:
        rel = s.get(Release, rid)
        assert rel.state == "protected" and rel.report["method"] == "suppression"
        out = pd.read_csv(io.BytesIO(rel.protected_csv), dtype=str, keep_default_na=False)
        for (reg, sex), _ in SECRET_CELLS.items():  # the primaries are suppressed
            row = out[(out.region == reg) & (out.sex == sex)].iloc[0]
            assert row.conf_status == "C" and row.obs_value == ""
        actions = [a.action for a in s.scalars(select(AuditEntry).where(
            AuditEntry.release_id == rid).order_by(AuditEntry.id))]
        assert actions == ["create", "protect_queued", "protect"]
    p = c.get(f"/releases/{rid}/protection.json").get_json()
    assert p["status"] == "done" and p["percent"] == 100 and p["phase"] == "done"
    assert p["cells"] == 21 and p["primaries"] == 2 and p["primaries_left"] == 0
    page = c.get(f"/releases/{rid}").get_data(as_text=True)
    assert 'id="protection"' not in page and 'id="submit-release"' in page
    # a second run of the same job does nothing (claimed once)
    assert tasks.run_protection(job.id, dict(app.config)) == "busy"


def test_huey_immediate_mode_protects_at_once_over_the_api(make_app, tokens):
    app = make_app(PROTECT_ENQUEUE=True)
    c = app.test_client()
    r = _create_api(c, tokens["prep"])
    assert r.status_code == 201, r.get_json()
    rel = r.get_json()
    assert rel["state"] == "protected" and rel["protection"]["status"] == "done"
    p = c.get(f"/api/releases/{rel['id']}/protection", headers=bearer(tokens["prep"])).get_json()
    assert p["status"] == "done" and p["cells"] == 21 and p["primaries_left"] == 0
    # another preparer's draft is not found, nor its progress
    r = c.get(f"/api/releases/{rel['id']}/protection", headers=bearer(tokens["prep2"]))
    assert r.status_code == 404


def test_progress_callback_of_the_disclosure_methods():
    from disclosure.methods import ProtectContext
    from disclosure.protect import protect
    from disclosure.table import read_cells
    from publisher.specs import spec_from_mapping

    spec = spec_from_mapping(SPEC, source="spec")
    table = read_cells(pd.read_csv(io.StringIO(TABLE), dtype=str), spec, "t.csv")
    seen: list[tuple[str, dict[str, int]]] = []
    pt = protect(table, context=ProtectContext(progress=lambda phase, **f: seen.append((phase, f))))
    phases = [p for p, _ in seen]
    assert phases[0] == "secondary" and phases[-1] == "audited"
    assert set(phases) <= {"primary", "secondary", "optimising", "audit", "audited"}
    assert "audit" in phases  # reported from inside the solver, before the final audit
    primaries = int((pt.published.conf_status == "C").sum())
    assert seen[0][1] == {"cells": 21, "primaries": primaries, "primaries_left": primaries}
    lefts = [f["primaries_left"] for _, f in seen if "primaries_left" in f]
    assert all(0 <= n <= primaries for n in lefts) and lefts[-1] == 0
    assert all(f.get("cells") == 21 and f.get("primaries") == primaries for _, f in seen)
    noise = spec_from_mapping({**SPEC, "disclosure": {"noise": {"mechanism": "geometric",
                                                               "epsilon": 1.0}}}, source="spec")
    seen.clear()
    protect(read_cells(pd.read_csv(io.StringIO(TABLE), dtype=str), noise, "t.csv"),
            context=ProtectContext(progress=lambda phase, **f: seen.append((phase, f)), rng=1))
    assert [p for p, _ in seen] == ["noise", "noised"] and seen[0][1] == {"cells": 21}


# -- cancel ------------------------------------------------------------------------------------------

def _run_in_thread(job_id: int, settings: dict[str, Any]) -> tuple[threading.Thread, list[str]]:
    out: list[str] = []
    t = threading.Thread(target=lambda: out.append(tasks.run_protection(job_id, settings)))
    t.start()
    return t, out


def _wait_for(store, rid: int, cond, timeout: float = 30.0) -> ProtectionJob:  # noqa: ANN001
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = _job(store, rid)
        if cond(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"the job did not get there: {job.status} {job.phase}")


def test_cancel_kills_the_running_protection_and_leaves_a_draft(make_app, store, tokens):
    app = make_app(PROTECT_HEARTBEAT=0.5)
    c = app.test_client()
    spec, table = _slow()
    r = _create_api(c, tokens["prep"], spec=spec, table=table)
    assert r.status_code == 201, r.get_json()
    rid = r.get_json()["id"]
    assert r.get_json()["state"] == "draft"
    job = _job(store, rid)
    t, result = _run_in_thread(job.id, dict(app.config))
    running = _wait_for(store, rid, lambda j: j.phase == "secondary")
    assert running.status == "running" and running.cells == 101 * 3 * 4
    assert running.primaries and 0 <= running.primaries_left <= running.primaries
    # a preparer who is not a contributor cannot cancel it
    assert c.post(f"/api/releases/{rid}/protection/cancel",
                  headers=bearer(tokens["prep2"])).status_code == 404
    asked = time.monotonic()
    r = c.post(f"/api/releases/{rid}/protection/cancel", headers=bearer(tokens["prep"]))
    assert r.status_code == 200 and r.get_json()["cancel_requested"] is True
    t.join(timeout=30)
    assert not t.is_alive() and result == ["cancelled"]
    assert time.monotonic() - asked < 5, "the child was not stopped at once"
    with store() as s:
        rel = s.get(Release, rid)
        assert rel.state == "draft" and rel.protected_csv is None and rel.report is None
    p = c.get(f"/api/releases/{rid}/protection", headers=bearer(tokens["prep"])).get_json()
    assert p["status"] == "cancelled" and p["error_code"] == "cancelled"
    # nothing is running any more: no protection process is left behind
    assert _protection_processes(os.getpid()) == []
    # cancelling again is refused; protecting again is possible
    r = c.post(f"/api/releases/{rid}/protection/cancel", headers=bearer(tokens["prep"]))
    assert r.status_code == 409
    r = c.post(f"/api/releases/{rid}/protection/retry", headers=bearer(tokens["prep"]))
    assert r.status_code == 202 and r.get_json()["status"] == "pending"


def test_cancel_in_the_ui_before_the_worker_starts(make_app, store):
    app = make_app()
    c = client(app)
    login(c, "prep")
    rid = int(_post_new(c).headers["Location"].rsplit("/", 1)[1])
    job = _job(store, rid)
    r = c.post(f"/releases/{rid}/protection/cancel",
               data={"csrf_token": csrf(c, f"/releases/{rid}")}, follow_redirects=True)
    page = r.get_data(as_text=True)
    assert "The protection is being cancelled" in page and 'id="retry-protection"' in page
    assert tasks.run_protection(job.id, dict(app.config)) == "busy"
    assert _job(store, rid).status == "cancelled"
    # protect again from the page: queued, and the worker protects it
    r = c.post(f"/releases/{rid}/protection/retry",
               data={"csrf_token": csrf(c, f"/releases/{rid}")})
    assert r.status_code == 302
    job = _job(store, rid)
    assert job.status == "pending"
    assert tasks.run_protection(job.id, dict(app.config)) == "done"


# -- limits ------------------------------------------------------------------------------------------

def test_time_limit_stops_the_protection_with_a_refusal_naming_it(make_app, store, tokens):
    app = make_app(PROTECT_TIME_LIMIT=3)
    c = app.test_client()
    spec, table = _slow()
    rid = _create_api(c, tokens["prep"], spec=spec, table=table).get_json()["id"]
    started = time.monotonic()
    assert tasks.run_protection(_job(store, rid).id, dict(app.config)) == "failed"
    assert time.monotonic() - started < 15
    p = c.get(f"/api/releases/{rid}/protection", headers=bearer(tokens["prep"])).get_json()
    assert p["status"] == "failed" and p["error_code"] == "time_limit"
    assert "time limit of 3 seconds" in p["error"] and "ASHYQ_PROTECT_TIME_LIMIT" in p["error"]
    with store() as s:
        rel = s.get(Release, rid)
        assert rel.state == "draft" and rel.protected_csv is None
    # the page says so in Russian too
    ui = client(app)
    login(ui, "prep")
    page = ui.get(f"/releases/{rid}?lang=ru").get_data(as_text=True)
    assert "ограничения по времени в 3 секунд" in page and 'id="retry-protection"' in page


def test_memory_limit_stops_the_protection_with_a_refusal_naming_it(make_app, store, tokens):
    app = make_app(PROTECT_MEMORY_MB=200)
    c = app.test_client()
    spec, table = _slow()
    rid = _create_api(c, tokens["prep"], spec=spec, table=table).get_json()["id"]
    result = tasks.run_protection(_job(store, rid).id, dict(app.config))
    p = c.get(f"/api/releases/{rid}/protection", headers=bearer(tokens["prep"])).get_json()
    assert result == "failed" and p["error_code"] == "memory_limit", p
    assert "200 MiB" in p["error"] and "ASHYQ_PROTECT_MEMORY_MB" in p["error"]
    with store() as s:
        assert s.get(Release, rid).state == "draft"


def test_limits_are_refused_at_upload_naming_the_limit(make_app, store, tokens):
    app = make_app(PROTECT_MAX_CODES=4, PROTECT_MAX_CELLS=20)
    c = app.test_client()
    r = _create_api(c, tokens["prep"])  # region has 7 codes with its totals
    assert r.status_code == 422
    msg = r.get_json()["message"]
    assert "dimension region has 7 codes" in msg and "limit of 4 codes per dimension" in msg
    assert "ASHYQ_PROTECT_MAX_CODES" in msg
    app = make_app(PROTECT_MAX_CELLS=20)
    c = app.test_client()
    r = _create_api(c, tokens["prep"])
    assert r.status_code == 422 and "21 cells" in r.get_json()["message"] \
        and "limit of 20 cells per table" in r.get_json()["message"]
    ui = client(app)
    login(ui, "prep")
    r = _post_new(ui)
    assert r.status_code == 422 and "limit of 20 cells per table" in r.get_data(as_text=True)
    with store() as s:  # nothing stored, nothing queued
        assert s.query(Release).count() == 0 and s.query(ProtectionJob).count() == 0


def test_what_the_worker_would_refuse_is_refused_at_upload(make_app, store, tokens):
    app = make_app()
    c = app.test_client()
    cases = [
        (SPEC, TABLE.replace("R01D01,F,40", "R01D01,F,-2"), "negative"),
        (SPEC, TABLE.replace("R02D02,M,48", "R09,M,48"), "is not a code of dimension"),
        ({**SPEC, "disclosure": {"noise": {"mechanism": "geometric", "epsilon": 9}}}, TABLE,
         "epsilon"),
        ({**SPEC, "disclosure": {"noise": {"mechanism": "geometric", "epsilon": 1}}}, TABLE,
         "source_id"),
        ({**SPEC, "title": {"kk": "<b>x</b>", "ru": "x", "en": "x"}}, TABLE, "markup"),
    ]
    for spec, table, words in cases:
        r = _create_api(c, tokens["prep"], spec=spec, table=table)
        assert r.status_code == 422, (words, r.get_json())
        assert words in r.get_json()["message"], (words, r.get_json())
    with store() as s:
        assert s.query(Release).count() == 0 and s.query(ProtectionJob).count() == 0


# -- heartbeat ---------------------------------------------------------------------------------------

def test_a_stale_heartbeat_marks_the_job_failed_and_it_can_run_again(make_app, store):
    app = make_app(PROTECT_STALE_AFTER=5)
    c = client(app)
    login(c, "prep")
    rid = int(_post_new(c).headers["Location"].rsplit("/", 1)[1])
    job = _job(store, rid)
    with transaction(store) as s:  # as a worker killed while running leaves it
        s.execute(update(ProtectionJob).where(ProtectionJob.id == job.id).values(
            status="running", attempts=1, heartbeat_at=utcnow() - timedelta(seconds=30)))
    p = c.get(f"/releases/{rid}/protection.json").get_json()
    assert p["status"] == "failed" and p["error_code"] == "worker_lost"
    assert "heartbeat was lost" in p["reason"]
    page = c.get(f"/releases/{rid}").get_data(as_text=True)
    assert 'id="retry-protection"' in page
    r = c.post(f"/releases/{rid}/protection/retry",
               data={"csrf_token": csrf(c, f"/releases/{rid}")})
    assert r.status_code == 302
    assert tasks.run_protection(_job(store, rid).id, dict(app.config)) == "done"
    with store() as s:
        assert s.get(Release, rid).state == "protected"


def test_a_sigkilled_worker_is_seen_failed_within_seconds(make_app, store, tokens, db_url):
    app = make_app(PROTECT_HEARTBEAT=0.5, PROTECT_STALE_AFTER=3)
    c = app.test_client()
    spec, table = _slow()
    rid = _create_api(c, tokens["prep"], spec=spec, table=table).get_json()["id"]
    job = _job(store, rid)
    code = (f"from publisher import tasks; from publisher.settings import load_settings; "
            f"tasks.run_protection({job.id}, load_settings({{'DATABASE_URL': {db_url!r}, "
            f"'PROTECT_HEARTBEAT': 0.5}}))")
    worker = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        _wait_for(store, rid, lambda j: j.phase == "secondary", timeout=60)
        assert len(_protection_processes(worker.pid)) == 1
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        killed = time.monotonic()
        p = c.get(f"/api/releases/{rid}/protection", headers=bearer(tokens["prep"])).get_json()
        assert p["status"] == "running"  # the heartbeat is still fresh
        while p["status"] == "running" and time.monotonic() - killed < 15:
            time.sleep(0.5)
            p = c.get(f"/api/releases/{rid}/protection",
                      headers=bearer(tokens["prep"])).get_json()
        assert p["status"] == "failed" and p["error_code"] == "worker_lost"
        assert time.monotonic() - killed < 6
        assert _protection_processes(worker.pid) == []  # it died with its worker
    finally:
        if worker.poll() is None:
            worker.kill()


# -- the form ---------------------------------------------------------------------------------------

def test_the_form_keeps_its_files_and_fields_after_a_refusal(make_app, store, users):
    app = make_app()
    c = client(app)
    login(c, "prep")
    bad = TABLE.replace("R01D01,F,40", "R01D01,F,-2")
    r = _post_new(c, table=bad, extra={"notice": "first release of the year"})
    page = r.get_data(as_text=True)
    assert r.status_code == 422 and "negative" in page
    tokens = dict(re.findall(r'name="held_(\w+)" value="([0-9a-f]+)"', page))
    assert set(tokens) == {"table", "spec_file"}
    assert "Kept from your last attempt: spec.yaml" in page and "first release of the year" in page
    # another user cannot use the held files
    other = client(app)
    login(other, "prep2")
    r = _post_new(other, spec=None, table=None,
                  extra={f"held_{k}": v for k, v in tokens.items()})
    assert r.status_code == 422 and "Choose the table file." in r.get_data(as_text=True)
    # a new table, the spec kept from the refused attempt: accepted
    r = _post_new(c, spec=None, extra={"held_spec_file": tokens["spec_file"]})
    assert r.status_code == 302, r.get_data(as_text=True)[-2000:]
    with store() as s:
        rel = s.scalars(select(Release)).one()
        assert rel.series == SPEC["id"] and rel.upload_bytes == TABLE.encode()
        left = s.scalars(select(HeldUpload.token)).all()
        assert tokens["spec_file"] not in left  # used up


def test_the_submit_button_is_disabled_while_submitting(make_app):
    app = make_app()
    c = client(app)
    login(c, "prep")
    page = c.get("/releases/new").get_data(as_text=True)
    assert 'id="upload" data-busy="Uploading and checking…"' in page and "protect.js" in page
    js = c.get("/ui-static/protect.js").get_data(as_text=True)
    assert "button.disabled = true" in js and 'getElementById("new-release")' in js


LINKED_A = {**SPEC, "id": "linked-a"}
LINKED_B = {"id": "linked-b", "version": "1.0.0",
            "title": {"kk": "Байланысқан кесте", "ru": "Связанная таблица", "en": "Linked table"},
            "dimensions": [SPEC["dimensions"][0], {"name": "age", "codes": ["Y0", "Y1"]}],
            "disclosure": {"min_frequency": 5, "secondary": "optimal"}}
TABLE_B = ("region,age,obs_value\nR01D01,Y0,50\nR01D01,Y1,27\nR01D02,Y0,20\nR01D02,Y1,3\n"
           "R02D01,Y0,30\nR02D01,Y1,6\nR02D02,Y0,60\nR02D02,Y1,40\n")


def test_linked_tables_through_the_form_are_protected_together(make_app, store, tmp_path):
    from publisher.service import protect_files

    app = make_app(PROTECT_ENQUEUE=True)  # huey immediate: the job runs within the request
    c = client(app)
    login(c, "prep")
    r = _post_new(c, spec=LINKED_A, extra={
        "link_spec_0": (io.BytesIO(_yaml(LINKED_B)), "b.yaml"),
        "link_table_0": (io.BytesIO(TABLE_B.encode()), "b.csv")})
    assert r.status_code == 302, r.get_data(as_text=True)[-2000:]
    rid = int(r.headers["Location"].rsplit("/", 1)[1])
    with store() as s:
        a = s.get(Release, rid)
        b = s.scalars(select(Release).where(Release.series == "linked-b")).one()
        assert a.state == b.state == "protected"
        pa = pd.read_csv(io.BytesIO(a.protected_csv), dtype=str, keep_default_na=False)
        pb = pd.read_csv(io.BytesIO(b.protected_csv), dtype=str, keep_default_na=False)
        bid = b.id
    # the same pattern as the CLI's --link
    for name, text in (("a.yaml", _yaml(LINKED_A)), ("b.yaml", _yaml(LINKED_B)),
                       ("a.csv", TABLE.encode()), ("b.csv", TABLE_B.encode())):
        (tmp_path / name).write_bytes(text)
    outs = protect_files([(str(tmp_path / "a.yaml"), str(tmp_path / "a.csv"),
                           str(tmp_path / "oa.csv")),
                          (str(tmp_path / "b.yaml"), str(tmp_path / "b.csv"),
                           str(tmp_path / "ob.csv"))], settings=dict(app.config))
    assert list(pa.conf_status) == list(outs[0].published.conf_status.astype(str))
    assert list(pb.conf_status) == list(outs[1].published.conf_status.astype(str))
    # a region total the tables share is suppressed in both or in neither
    ta = pa[pa.sex == "_T"].set_index("region").conf_status
    tb = pb[pb.age == "_T"].set_index("region").conf_status
    assert ((ta != "F") == (tb != "F")).all()
    page = c.get(f"/releases/{rid}").get_data(as_text=True)
    assert 'id="protection"' not in page  # done: the bar is gone
    # a change that breaks a shared cell is refused at upload, not in the worker
    r = c.post(f"/releases/{bid}/change", data={
        "csrf_token": csrf(c, f"/releases/{bid}/change"),
        "table": (io.BytesIO(TABLE_B.replace("R02D02,Y1,40", "R02D02,Y1,41").encode()), "b.csv"),
        "reason": "corrected count"}, content_type="multipart/form-data")
    assert "linked tables disagree on the shared cell" in r.get_data(as_text=True)
    with store() as s:
        assert s.get(Release, bid).state == "protected" and s.get(Release, bid).content_rev == 1
    # changing one protects both again, together
    moved = TABLE_B.replace("R02D02,Y0,60", "R02D02,Y0,59").replace("R02D02,Y1,40", "R02D02,Y1,41")
    r = c.post(f"/releases/{bid}/change", data={
        "csrf_token": csrf(c, f"/releases/{bid}/change"),
        "table": (io.BytesIO(moved.encode()), "b.csv"),
        "reason": "corrected ages"}, content_type="multipart/form-data")
    assert r.status_code == 302, r.get_data(as_text=True)[-2000:]
    with store() as s:
        a, b = s.get(Release, rid), s.get(Release, bid)
        job = wf.protection_job(s, a)
        assert (job.status, job.error_code, job.error) == ("done", None, None), str(job.error)
        assert a.state == b.state == "protected" and a.content_rev == b.content_rev == 2
        job = wf.protection_job(s, a)
        assert [m.id for m, _ in wf.job_releases(s, job)] == [bid, rid]


def test_a_linked_pair_needs_both_files(make_app, store):
    app = make_app()
    c = client(app)
    login(c, "prep")
    r = _post_new(c, spec=LINKED_A, extra={"link_spec_1": (io.BytesIO(_yaml(LINKED_B)),
                                                           "b.yaml")})
    assert r.status_code == 422
    assert "Linked table 2: choose both its spec file and its table file." in r.get_data(
        as_text=True)
    with store() as s:
        assert s.query(Release).count() == 0


def test_user_lookup_for_noise_budget_at_upload(make_app, store, users):
    """A noise release whose source cannot pay is refused at upload, not in the worker."""
    from publisher import budget

    with transaction(store) as s:
        budget.add_source(s, "mvd", 0.5, actor=s.get(User, users["admin"]))
    app = make_app()
    c = client(app)
    login(c, "prep")
    spec = {**SPEC, "source_id": "mvd", "reference_period": "2024",
            "disclosure": {"noise": {"mechanism": "geometric", "epsilon": 1.0}}}
    r = _post_new(c, spec=spec)
    assert r.status_code == 422 and "privacy budget exceeded" in r.get_data(as_text=True)
    with store() as s:
        assert s.query(Release).count() == 0
