"""Background publishing on Huey: SQLite storage (``instance/huey.db``) by default, Redis when the
setting ``HUEY_URL`` is set (e.g. the Redis CKAN uses).

Guarantees:
- A release is published only when :func:`publisher.workflow.check_publishable` passes (scheduled,
  approval covering its current content, embargo passed).
- The run is resumable: each step (package, publish, record) is recorded in ``publication_job``
  and a re-run skips what is done; a job left "running" by a crashed worker is taken over after
  ``STALE_AFTER``. A periodic sweep (every minute) picks up due releases whose task was lost.
- Only one worker runs a release at a time (claimed with a conditional UPDATE).
- Failures keep the release "scheduled" with the reason in the job row ("publish pending");
  retryable failures are retried by Huey with a delay.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from huey import RedisHuey, SqliteHuey, crontab
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from .db import make_engine, session_factory, transaction
from .settings import ROOT, load_settings
from .workflow_models import PUBLISHED, SCHEDULED, PublicationJob, Release, as_utc, utcnow

log = logging.getLogger(__name__)
STALE_AFTER = timedelta(minutes=10)
RETRIES = 5
RETRY_DELAY = 30  # seconds

_settings: dict[str, Any] | None = None
_factories: dict[str, sessionmaker[Session]] = {}


def make_huey(settings: dict[str, Any]) -> SqliteHuey | RedisHuey:
    if settings.get("HUEY_URL"):
        return RedisHuey("ashyq", url=settings["HUEY_URL"])
    path = Path(settings.get("HUEY_SQLITE") or ROOT / "instance" / "huey.db")
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("ashyq", filename=str(path))


def _initial_settings() -> dict[str, Any]:
    try:
        return load_settings()
    except Exception:  # noqa: BLE001 - import must not fail; the worker reports on start
        return {}


huey = make_huey(_initial_settings())


def configure(settings: dict[str, Any]) -> None:
    """Settings the tasks run with (the worker calls this with ``load_settings()``); points the
    queue at the configured storage (Redis ``HUEY_URL`` or the SQLite file ``HUEY_SQLITE``)."""
    global _settings
    _settings = dict(settings)
    wanted = make_huey(settings)
    immediate = bool(settings.get("HUEY_IMMEDIATE"))  # tests: tasks run at once, in memory
    huey.storage_class, huey.storage_kwargs = wanted.storage_class, wanted.storage_kwargs
    if huey.immediate != immediate:
        huey.immediate = immediate  # recreates the storage from the kwargs above
    elif not immediate and (type(wanted.storage) is not type(huey.storage) or getattr(
            wanted.storage, "filename", None) != getattr(huey.storage, "filename", None)):
        huey.storage = wanted.storage


def current_settings() -> dict[str, Any]:
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def _factory(settings: dict[str, Any]) -> sessionmaker[Session]:
    url = settings["DATABASE_URL"]
    if url not in _factories:
        _factories[url] = session_factory(make_engine(url))
    return _factories[url]


# -- the job -------------------------------------------------------------------------------------

def _progress(factory: sessionmaker[Session], release_id: int, **values: Any) -> None:
    with transaction(factory) as s:
        s.execute(update(PublicationJob).where(PublicationJob.release_id == release_id)
                  .values(updated_at=utcnow(), **values)
                  .execution_options(synchronize_session=False))


def _claim(factory: sessionmaker[Session], release_id: int) -> str:
    """Take the job: "claimed", or why not ("done", "busy", "not_due", "not_scheduled")."""
    from .workflow import WorkflowError, check_publishable

    with transaction(factory) as s:
        release = s.get(Release, release_id)
        if release is None:
            return "missing"
        if release.state == PUBLISHED:
            return "done"
        if release.state != SCHEDULED:
            return "not_scheduled"
        try:
            check_publishable(release)
        except WorkflowError:
            return "not_due"
        job = s.scalar(select(PublicationJob).where(PublicationJob.release_id == release_id))
        if job is None:
            s.add(PublicationJob(release_id=release_id, status="pending", step="waiting",
                                 percent=0, message="", attempts=0, retryable=True))
            s.flush()
        stale = utcnow() - STALE_AFTER
        res = s.execute(
            update(PublicationJob)
            .where(PublicationJob.release_id == release_id,
                   or_(PublicationJob.status.in_(("pending", "failed")),
                       (PublicationJob.status == "running") & (PublicationJob.updated_at < stale)))
            .values(status="running", attempts=PublicationJob.attempts + 1, updated_at=utcnow(),
                    message="")
            .execution_options(synchronize_session=False)
        )
        return "claimed" if res.rowcount == 1 else "busy"


def _package(factory: sessionmaker[Session], release_id: int, settings: dict[str, Any]) -> Path:
    """Build the data package once per content revision (reused on a retry)."""
    from .service import package_release, sha256_file
    from .specs import spec_from_mapping

    with factory() as s:
        r = s.get(Release, release_id)
        work = Path(settings["WORK_DIR"]) / "releases" / str(r.id)
        out_dir = work / f"{r.series}-{r.version}-rev{r.content_rev}"
        zip_path = out_dir.with_name(out_dir.name + ".zip")
        if (r.package_path == str(out_dir) and (out_dir / "datapackage.json").is_file()
                and zip_path.is_file() and r.package_sha256 == sha256_file(zip_path)):
            return out_dir
        spec = spec_from_mapping(r.spec, source=f"release {r.id}")
        previous_version = r.previous.version if r.previous is not None else None
        csv_path = work / f"protected-rev{r.content_rev}.csv"
        work.mkdir(parents=True, exist_ok=True)
        csv_path.write_bytes(s.scalar(select(Release.protected_csv).where(Release.id == r.id)))
        report = r.report
    result = package_release(spec, csv_path, out_dir, report=report, settings=settings,
                             previous_version=previous_version)
    with transaction(factory) as s:
        r = s.get(Release, release_id)
        r.package_path = str(result.path)
        r.package_sha256 = result.sha256
    return Path(result.path)


def run_publication(release_id: int, settings: dict[str, Any] | None = None) -> str:
    """Publish one release if it is due; returns "published", or why nothing was done.

    Raises :class:`RetryableFailure` for a failure worth retrying (Huey retries the task).
    """
    from .service import PublishFailed, publish_release
    from .workflow import mark_published

    settings = settings or current_settings()
    factory = _factory(settings)
    claim = _claim(factory, release_id)
    if claim != "claimed":
        return claim
    try:
        _progress(factory, release_id, step="package", percent=10)
        package_dir = _package(factory, release_id, settings)
        _progress(factory, release_id, step="publish", percent=40)

        def progress(message: str) -> None:
            _progress(factory, release_id, message=str(message)[:500])

        outcome = publish_release(package_dir, settings=settings, progress=progress)
        _progress(factory, release_id, step="record", percent=90)
        with transaction(factory) as s:
            r = s.get(Release, release_id)
            mark_published(s, r, url=outcome.url, target=outcome.target,
                           dataset_name=outcome.dataset_name)
            job = s.scalar(select(PublicationJob).where(PublicationJob.release_id == release_id))
            job.status, job.step, job.percent = "done", "done", 100
            job.message = "verified" if outcome.verified else "published (not verified)"
        return "published"
    except PublishFailed as e:
        _fail(factory, release_id, " ".join(str(e).split()), e.retryable)
        if e.retryable:
            raise RetryableFailure(str(e)) from e
        return "failed"
    except Exception as e:
        from .web.common import user_errors

        if isinstance(e, user_errors()):
            _fail(factory, release_id, " ".join(str(e).split()), False)
            return "failed"
        log.error("publication of release %s failed: %s", release_id, type(e).__name__)
        _fail(factory, release_id, f"unexpected error ({type(e).__name__}); will retry", True)
        raise RetryableFailure(type(e).__name__) from e


class RetryableFailure(RuntimeError):
    """A publication failure that a later attempt may overcome."""


def _fail(factory: sessionmaker[Session], release_id: int, message: str, retryable: bool) -> None:
    from .workflow import audit

    with transaction(factory) as s:
        job = s.scalar(select(PublicationJob).where(PublicationJob.release_id == release_id))
        job.status, job.message, job.retryable = "failed", message[:1000], retryable
        job.updated_at = utcnow()
        r = s.get(Release, release_id)
        audit(s, None, "publish_failed", release=r, reason=message[:1000],
              detail={"retryable": retryable, "attempt": job.attempts})


def due_releases(settings: dict[str, Any], now: datetime | None = None) -> list[int]:
    """Scheduled releases past their embargo whose job is not finished or running."""
    now = now or utcnow()
    factory = _factory(settings)
    stale = now - STALE_AFTER
    with factory() as s:
        rows = s.execute(select(Release.id, Release.embargo_at, PublicationJob.status,
                                PublicationJob.retryable, PublicationJob.updated_at)
                         .outerjoin(PublicationJob, PublicationJob.release_id == Release.id)
                         .where(Release.state == SCHEDULED)).all()
    out = []
    for rid, embargo, status, retryable, updated in rows:
        if as_utc(embargo) is None or as_utc(embargo) > now:
            continue
        if status in (None, "pending") or (status == "failed" and retryable) or (
                status == "running" and as_utc(updated) < stale):
            out.append(rid)
    return out


# -- Huey tasks ------------------------------------------------------------------------------------

@huey.task(retries=RETRIES, retry_delay=RETRY_DELAY)
def publish_task(release_id: int) -> str:
    return run_publication(release_id)


@huey.periodic_task(crontab(minute="*"))
def publish_due() -> list[int]:
    """Every minute: enqueue due releases (a lost task, a restarted worker, an embargo reached)."""
    ids = due_releases(current_settings())
    for rid in ids:
        publish_task(rid)
    return ids


def enqueue_publication(release_id: int, when: datetime | None = None) -> None:
    """Queue the publication at ``when`` (UTC; now if past or None)."""
    when = as_utc(when)
    if when is None or when <= utcnow():
        publish_task(release_id)
    else:
        # Huey keeps times as naive UTC
        publish_task.schedule(args=(release_id,), eta=when.astimezone(UTC).replace(tzinfo=None))


def run_worker(workers: int = 2) -> None:
    """Run the Huey consumer in this process (``publisher worker``)."""
    configure(load_settings())
    consumer = huey.create_consumer(workers=workers, worker_type="thread", periodic=True,
                                    check_worker_health=True)
    consumer.run()
