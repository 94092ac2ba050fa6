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
- The claim takes the release's row lock (as every workflow transition does), so a release
  cannot be changed or unscheduled while it publishes; the record step publishes only the
  content revision that was packaged.
- A withdrawn version published to CKAN is withdrawn there by the same job mechanism
  (:func:`run_withdrawal`: the dataset made private, verified by an anonymous read-back,
  retried until done, audited); the periodic sweep picks up withdrawals whose task was lost.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.storage import BaseStorage, RedisStorage, SqliteStorage
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from .db import make_engine, session_factory, transaction
from .settings import base_dir, load_settings
from .workflow_models import (
    PUBLISHED,
    SCHEDULED,
    WITHDRAWN,
    PublicationJob,
    Release,
    as_utc,
    utcnow,
)

log = logging.getLogger(__name__)
STALE_AFTER = timedelta(minutes=10)
RETRIES = 5
RETRY_DELAY = 30  # seconds

_settings: dict[str, Any] | None = None
_factories: dict[str, sessionmaker[Session]] = {}


def _storage_for(settings: dict[str, Any]) -> tuple[type[BaseStorage], dict[str, Any]]:
    """The queue's storage class and arguments for ``settings``; creates nothing."""
    if settings.get("HUEY_URL"):
        return RedisStorage, {"url": settings["HUEY_URL"]}
    path = settings.get("HUEY_SQLITE") or base_dir() / "instance" / "huey.db"
    return SqliteStorage, {"filename": str(path)}


def make_huey(settings: dict[str, Any]) -> SqliteHuey | RedisHuey:
    """A queue on the storage of ``settings`` (Redis ``HUEY_URL``, else the SQLite file
    ``HUEY_SQLITE``, default ``instance/huey.db``), created now."""
    storage, kwargs = _storage_for(settings)
    if storage is RedisStorage:
        return RedisHuey("ashyq", **kwargs)
    Path(kwargs["filename"]).parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("ashyq", **kwargs)


def _initial_settings() -> dict[str, Any]:
    try:
        return load_settings()
    except Exception:  # noqa: BLE001 - the queue must open anyway; the worker reports on start
        return {}


class LazyHuey(Huey):
    """The module's queue, whose storage (the SQLite file, a Redis connection) is made on first
    use, not at import: at the target :func:`configure` set, else that of ``load_settings()``
    (``huey_consumer publisher.tasks.huey`` never calls configure). Importing this module, or
    building the web app, creates no file."""

    def __init__(self, name: str) -> None:
        self._storage_lock = threading.Lock()
        self._targeted = False
        super().__init__(name)

    def create_storage(self) -> None:
        """Huey calls this on construction and when ``immediate`` changes: defer to first use."""
        return None

    @property
    def storage(self) -> BaseStorage:
        current = self._storage
        if current is None:
            with self._storage_lock:
                if self._storage is None:
                    self._storage = self._make_storage()
                current = self._storage
        return current

    @storage.setter
    def storage(self, value: BaseStorage | None) -> None:
        self._storage = value

    def _make_storage(self) -> BaseStorage:
        if not self._targeted:
            self.point_at(_initial_settings())
        if self._immediate and self.immediate_use_memory:
            return self.get_immediate_storage()  # tests: tasks run at once, in memory
        if self.storage_class is SqliteStorage:
            Path(self.storage_kwargs["filename"]).parent.mkdir(parents=True, exist_ok=True)
        return self.get_storage(**self.storage_kwargs)

    def point_at(self, settings: dict[str, Any], immediate: bool | None = None) -> None:
        """Use the storage of ``settings`` from now on (made at the next use if it changed)."""
        target = _storage_for(settings)
        changed = target != (self.storage_class, self.storage_kwargs)
        self.storage_class, self.storage_kwargs = target
        self._targeted = True
        if immediate is not None and immediate != self._immediate:
            self.immediate = immediate  # Huey drops the storage: made again at the next use
        elif changed and not self._immediate:
            self._storage = None


huey = LazyHuey("ashyq")


def configure(settings: dict[str, Any]) -> None:
    """Settings the tasks run with (the worker calls this with ``load_settings()``); points the
    queue at the configured storage (Redis ``HUEY_URL`` or the SQLite file ``HUEY_SQLITE``),
    which is made when first used. ``HUEY_IMMEDIATE`` (tests) runs tasks at once, in memory."""
    global _settings
    _settings = dict(settings)
    huey.point_at(settings, immediate=bool(settings.get("HUEY_IMMEDIATE")))


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
    from .workflow import WorkflowError, check_publishable, lock_release

    with transaction(factory) as s:
        release = s.get(Release, release_id)
        if release is None:
            return "missing"
        lock_release(s, release)
        if release.state == WITHDRAWN:
            return "withdrawn"
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
        protected = s.scalar(select(Release.protected_csv).where(Release.id == r.id))
        name = f"release {r.id} protected table (rev {r.content_rev})"
        report = r.report
    result = package_release(spec, protected, out_dir, report=report, settings=settings,
                             previous_version=previous_version, name=name)
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
    if claim == "withdrawn":
        return run_withdrawal(release_id, settings)
    if claim != "claimed":
        return claim
    try:
        with factory() as s:
            content_rev = s.get(Release, release_id).content_rev
        _progress(factory, release_id, step="package", percent=10)
        package_dir = _package(factory, release_id, settings)
        _progress(factory, release_id, step="publish", percent=40)

        def progress(message: str) -> None:
            _progress(factory, release_id, message=str(message)[:500])

        # Its own transaction, committed once the version is out (as the record step may fail
        # after it); writes only when publishing to the local output folder.
        with transaction(factory) as s:
            outcome = publish_release(package_dir, settings=settings, progress=progress, session=s)
        _progress(factory, release_id, step="record", percent=90)
        with transaction(factory) as s:
            r = s.get(Release, release_id)
            mark_published(s, r, url=outcome.url, target=outcome.target,
                           dataset_name=outcome.dataset_name, content_rev=content_rev)
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


def _fail(factory: sessionmaker[Session], release_id: int, message: str, retryable: bool,
          action: str = "publish_failed") -> None:
    from .workflow import audit

    with transaction(factory) as s:
        job = s.scalar(select(PublicationJob).where(PublicationJob.release_id == release_id))
        job.status, job.message, job.retryable = "failed", message[:1000], retryable
        job.updated_at = utcnow()
        r = s.get(Release, release_id)
        audit(s, None, action, release=r, reason=message[:1000],
              detail={"retryable": retryable, "attempt": job.attempts})


# -- withdrawal ------------------------------------------------------------------------------------

def _claim_withdrawal(factory: sessionmaker[Session], release_id: int) -> str:
    """Take a withdrawal job: "claimed", or why not ("done", "busy", "not_withdrawn")."""
    from .workflow import WITHDRAW_STEP, lock_release

    with transaction(factory) as s:
        release = s.get(Release, release_id)
        if release is None:
            return "missing"
        lock_release(s, release)
        job = s.scalar(select(PublicationJob).where(PublicationJob.release_id == release_id))
        if release.state != WITHDRAWN or job is None or job.step != WITHDRAW_STEP:
            return "not_withdrawn"
        if job.status == "done":
            return "done"
        stale = utcnow() - STALE_AFTER
        res = s.execute(
            update(PublicationJob)
            .where(PublicationJob.release_id == release_id,
                   or_(PublicationJob.status.in_(("pending", "failed")),
                       (PublicationJob.status == "running") & (PublicationJob.updated_at < stale)))
            .values(status="running", attempts=PublicationJob.attempts + 1, updated_at=utcnow(),
                    message="", percent=10)
            .execution_options(synchronize_session=False)
        )
        return "claimed" if res.rowcount == 1 else "busy"


def run_withdrawal(release_id: int, settings: dict[str, Any] | None = None) -> str:
    """Withdraw a withdrawn release's dataset from CKAN (private, verified anonymously);
    returns "withdrawn" or why nothing was done. Raises :class:`RetryableFailure` when CKAN
    could not be reached or still serves it (Huey retries; the sweep picks it up later)."""
    from . import ckan
    from .workflow import audit

    settings = settings or current_settings()
    factory = _factory(settings)
    claim = _claim_withdrawal(factory, release_id)
    if claim != "claimed":
        return claim
    with factory() as s:
        r = s.get(Release, release_id)
        dataset, target = r.dataset_name, r.published_target
    if target != "ckan" or not dataset:
        result = None
    elif not (settings.get("CKAN_URL") and settings.get("CKAN_API_TOKEN")):
        _fail(factory, release_id, "CKAN_URL and CKAN_API_TOKEN are needed to withdraw the "
              "version from CKAN", False, action="withdraw_failed")
        return "failed"
    else:
        def progress(message: str) -> None:
            _progress(factory, release_id, message=str(message)[:500])

        try:
            result = ckan.withdraw_dataset(dataset, url=settings["CKAN_URL"],
                                           token=settings["CKAN_API_TOKEN"], progress=progress,
                                           policy=settings.get("CKAN_RETRY_POLICY"))
        except ckan.CkanPublishError as e:
            _fail(factory, release_id, " ".join(str(e).split()), e.retryable,
                  action="withdraw_failed")
            if e.retryable:
                raise RetryableFailure(str(e)) from e
            return "failed"
        except Exception as e:
            log.error("withdrawal of release %s failed: %s", release_id, type(e).__name__)
            _fail(factory, release_id, f"unexpected error ({type(e).__name__}); will retry", True,
                  action="withdraw_failed")
            raise RetryableFailure(type(e).__name__) from e
    with transaction(factory) as s:
        r = s.get(Release, release_id)
        job = s.scalar(select(PublicationJob).where(PublicationJob.release_id == release_id))
        job.status, job.percent, job.retryable = "done", 100, True
        if result is None:
            job.message = "nothing to withdraw outside Ashyq"
            detail: dict[str, Any] = {"target": target}
        else:
            job.message = (f"private on CKAN; anonymous read-back refused "
                           f"({result.anonymous_status})")
            detail = {"dataset": result.dataset_name, "was_public": result.was_public,
                      "resources": result.resources, "anonymous": result.anonymous_status}
        audit(s, None, "withdrawn_from_catalogue", release=r, reason=r.withdrawn_reason or "",
              detail=detail)
    return "withdrawn"


def due_withdrawals(settings: dict[str, Any], now: datetime | None = None) -> list[int]:
    """Withdrawn releases whose withdrawal from CKAN is not done (nor running)."""
    from .workflow import WITHDRAW_STEP

    now = now or utcnow()
    stale = now - STALE_AFTER
    with _factory(settings)() as s:
        rows = s.execute(select(Release.id, PublicationJob.status, PublicationJob.retryable,
                                PublicationJob.updated_at)
                         .join(PublicationJob, PublicationJob.release_id == Release.id)
                         .where(Release.state == WITHDRAWN,
                                PublicationJob.step == WITHDRAW_STEP)).all()
    return [rid for rid, status, retryable, updated in rows
            if status == "pending" or (status == "failed" and retryable)
            or (status == "running" and as_utc(updated) < stale)]


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
    """Every minute: enqueue due releases (a lost task, a restarted worker, an embargo reached)
    and unfinished withdrawals (the same task runs them)."""
    ids = due_releases(current_settings()) + due_withdrawals(current_settings())
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
