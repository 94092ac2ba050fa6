"""Withdrawal reaches the real local CKAN 2.12: the dataset is made private, verified by an
anonymous read-back (package_show refused, not found by search, no file downloadable), through
the worker's job (retried across a CKAN outage) and audited (issue 14)."""

from __future__ import annotations

from pathlib import Path

import ckanapi
import pytest
import requests
from ckan_testlib import TITLE

from publisher import tasks
from publisher import workflow as wf
from publisher.ckan import RetryPolicy, publish_package, withdraw_dataset
from publisher.db import make_engine, session_factory, transaction, upgrade
from publisher.workflow_models import PUBLISHED, PublicationJob, Release, User, utcnow

pytestmark = pytest.mark.ckan
FAST = RetryPolicy(attempts=2, backoff=0.2, read_timeout=60)


def anonymous_state(ckan, name: str, urls: list[str]) -> tuple[str, list[int]]:
    anon = ckanapi.RemoteCKAN(ckan.url)
    try:
        anon.action.package_show(id=name)
        shown = "public"
    except ckanapi.NotAuthorized:
        shown = "not authorized"
    except ckanapi.NotFound:
        shown = "not found"
    return shown, [requests.get(u, timeout=30).status_code for u in urls]


def test_withdraw_makes_the_dataset_private_and_verifies_it_anonymously(
        ckan, series, package_factory):
    pkg = package_factory(series, "1.0.0")
    res = publish_package(pkg, url=ckan.url, token=ckan.token, organization="ashyq-it",
                          policy=FAST)
    urls = [r.url for r in res.resources]
    assert anonymous_state(ckan, res.dataset_name, urls) == ("public", [200] * len(urls))

    messages: list[str] = []
    out = withdraw_dataset(res.dataset_name, url=ckan.url, token=ckan.token,
                           progress=messages.append, policy=FAST)
    assert out.was_public and out.anonymous_verified and out.resources == len(urls)
    shown, codes = anonymous_state(ckan, res.dataset_name, urls)
    assert shown in ("not authorized", "not found")
    assert all(code in (403, 404) for code in codes), codes
    found = ckanapi.RemoteCKAN(ckan.url).action.package_search(fq=f'name:"{res.dataset_name}"')
    assert found["count"] == 0
    # still there for the publisher (private), with its files: nothing is lost
    ds = ckanapi.RemoteCKAN(ckan.url, apikey=ckan.token).action.package_show(id=res.dataset_name)
    assert ds["private"] is True and len(ds["resources"]) == len(urls)
    # idempotent
    again = withdraw_dataset(res.dataset_name, url=ckan.url, token=ckan.token, policy=FAST)
    assert not again.was_public and again.anonymous_verified


@pytest.fixture
def store(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'ashyq.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield url, session_factory(engine)
    engine.dispose()


def _published_release(factory, dataset: str, series: str) -> tuple[int, int]:
    with transaction(factory) as s:
        users = []
        for name, role in (("prep", "preparer"), ("appr", "approver")):
            u = User(username=name, display_name=name, password_hash="", active=True)
            u.set_password(f"{name}-password-1")
            u.set_roles([role])
            s.add(u)
            users.append(u)
        s.flush()
        r = Release(series=series, version="1.0.0", kind="initial", state=PUBLISHED,
                    title=dict(TITLE), spec={}, prepared_by_id=users[0].id, upload_name="t.csv",
                    upload_sha256="", content_rev=1, approved_by_id=users[1].id,
                    approved_rev=1, published_at=utcnow(), published_target="ckan",
                    published_url="x", dataset_name=dataset)
        s.add(r)
        s.flush()
        return r.id, users[1].id


def test_the_worker_withdraws_from_ckan_retrying_through_an_outage(
        ckan, series, package_factory, store, tmp_path):
    url, factory = store
    pkg = package_factory(series, "1.0.0")
    res = publish_package(pkg, url=ckan.url, token=ckan.token, organization="ashyq-it",
                          policy=FAST)
    rid, approver = _published_release(factory, res.dataset_name, series)
    with transaction(factory) as s:
        wf.withdraw(s, s.get(User, approver), s.get(Release, rid), "a confidential cell")
    settings = {"DATABASE_URL": url, "CKAN_URL": ckan.url, "CKAN_API_TOKEN": ckan.token,
                "WORK_DIR": str(tmp_path / "w"), "OUTPUT_DIR": str(tmp_path / "o"),
                "CKAN_RETRY_POLICY": RetryPolicy(attempts=1, connect_timeout=2, read_timeout=10)}
    assert tasks.due_withdrawals(settings) == [rid]

    ckan.stop_web()  # CKAN is down: the job fails, retryable, and stays due
    try:
        with pytest.raises(tasks.RetryableFailure):
            tasks.run_publication(rid, settings)
    finally:
        ckan.restart()
    with factory() as s:
        job = s.scalar(select_job(rid))
        assert (job.status, job.step, job.retryable) == ("failed", "withdraw", True)
    assert tasks.due_withdrawals(settings) == [rid]
    urls = [r.url for r in res.resources]
    assert anonymous_state(ckan, res.dataset_name, urls)[0] == "public"  # not yet withdrawn

    assert tasks.run_publication(rid, settings) == "withdrawn"  # the retry completes it
    shown, codes = anonymous_state(ckan, res.dataset_name, urls)
    assert shown in ("not authorized", "not found") and all(c in (403, 404) for c in codes)
    with factory() as s:
        job = s.scalar(select_job(rid))
        assert job.status == "done" and "anonymous read-back refused" in job.message
        rows = [(a.action, a.reason) for a in wf.audit_rows(s, rid)]
        assert s.get(Release, rid).withdrawn_reason == "a confidential cell"
    assert [a for a, _ in rows][-3:] == ["withdraw", "withdraw_failed", "withdrawn_from_catalogue"]
    assert rows[-1][1] == "a confidential cell"
    assert tasks.due_withdrawals(settings) == []
    assert tasks.run_publication(rid, settings) == "done"


def select_job(rid: int):
    from sqlalchemy import select

    return select(PublicationJob).where(PublicationJob.release_id == rid)
