"""Background protection and publishing on Huey: SQLite storage (``instance/huey.db``) by default,
Redis when the setting ``HUEY_URL`` is set (e.g. the Redis CKAN uses).

Protection jobs (:func:`run_protection`): the upload request validated and queued the job; the
worker protects in a child process with a time limit (``PROTECT_TIME_LIMIT``, the child killed)
and a memory limit (``PROTECT_MEMORY_MB``, ``RLIMIT_AS``), writes progress and a heartbeat,
kills the child when a cancel is asked, and writes the result only when it finished (one
transaction, ``publisher.workflow.finish_protection``). A job without a heartbeat for
``PROTECT_STALE_AFTER`` seconds lost its worker and is marked failed (the preparer protects again).

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

import dataclasses
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.storage import BaseStorage, RedisStorage, SqliteStorage
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from disclosure.errors import R_, Phrase

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
#: a publication job left "running" without a heartbeat for this long lost its worker (a
#: running job's heartbeat renews ``updated_at`` every ``PUBLISH_HEARTBEAT``)
STALE_AFTER = timedelta(seconds=60)
PUBLISH_HEARTBEAT = 10.0  # seconds
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
        notice = dict(r.notices) if r.notices else None
    result = package_release(spec, protected, out_dir, report=report, settings=settings,
                             previous_version=previous_version, name=name, notice=notice)
    with transaction(factory) as s:
        r = s.get(Release, release_id)
        r.package_path = str(result.path)
        r.package_sha256 = result.sha256
    return Path(result.path)


def run_publication(release_id: int, settings: dict[str, Any] | None = None) -> str:
    """Publish one release if it is due; returns "published", or why nothing was done.

    Raises :class:`RetryableFailure` for a failure worth retrying (Huey retries the task).
    """
    settings = settings or current_settings()
    factory = _factory(settings)
    claim = _claim(factory, release_id)
    if claim == "withdrawn":
        return run_withdrawal(release_id, settings)
    if claim != "claimed":
        return claim
    with _publication_heartbeat(factory, release_id):
        return _run_claimed_publication(factory, release_id, settings)


class _publication_heartbeat:  # noqa: N801 - used as a context manager
    """While a publication runs, renew its job's ``updated_at`` every ``PUBLISH_HEARTBEAT``
    seconds, so a job whose worker was killed is taken over after ``STALE_AFTER`` (not 10
    minutes) and a long upload is not mistaken for a lost one."""

    def __init__(self, factory: sessionmaker[Session], release_id: int) -> None:
        self.factory, self.release_id = factory, release_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True,
                                       name=f"heartbeat-{release_id}")

    def _beat(self) -> None:
        while not self.stop.wait(PUBLISH_HEARTBEAT):
            try:
                with transaction(self.factory) as s:
                    s.execute(update(PublicationJob)
                              .where(PublicationJob.release_id == self.release_id,
                                     PublicationJob.status == "running")
                              .values(updated_at=utcnow())
                              .execution_options(synchronize_session=False))
            except Exception as e:  # noqa: BLE001 - a missed beat is retried at the next one
                log.warning("heartbeat of release %s: %s", self.release_id, type(e).__name__)

    def __enter__(self) -> _publication_heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def _run_claimed_publication(factory: sessionmaker[Session], release_id: int,
                             settings: dict[str, Any]) -> str:
    from .service import PublishFailed, publish_release
    from .workflow import mark_published

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
            # stored in English (the API's text); the UI shows it in the reader's language
            # from the template (publisher.web.ui.progress_message)
            job.message = R_("verified") if outcome.verified else R_("published (not verified)")
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
        _fail(factory, release_id, _unexpected(e), True)
        raise RetryableFailure(type(e).__name__) from e


def _unexpected(e: Exception) -> str:
    """The job's line for an error nobody foresaw: its class only (never its text)."""
    return str(Phrase(R_("unexpected error (%(error)s); will retry"), error=type(e).__name__))


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
        _fail(factory, release_id, R_("CKAN_URL and CKAN_API_TOKEN are needed to withdraw the "
                                      "version from CKAN"), False, action="withdraw_failed")
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
            _fail(factory, release_id, _unexpected(e), True, action="withdraw_failed")
            raise RetryableFailure(type(e).__name__) from e
    with transaction(factory) as s:
        r = s.get(Release, release_id)
        job = s.scalar(select(PublicationJob).where(PublicationJob.release_id == release_id))
        job.status, job.percent, job.retryable = "done", 100, True
        if result is None:
            job.message = R_("nothing to withdraw outside Ashyq")
            detail: dict[str, Any] = {"target": target}
        else:
            job.message = str(Phrase(R_("private on CKAN; anonymous read-back refused "
                                        "(%(status)s)"), status=result.anonymous_status))
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


# -- protection jobs -------------------------------------------------------------------------------

#: percent shown for each phase of a protection job (the phases come from the service and the
#: disclosure methods' progress calls)
PHASE_PERCENT = {"waiting": 0, "starting": 5, "reading": 10, "protecting": 20, "primary": 25,
                 "secondary": 30, "optimising": 60, "audit": 80, "noise": 30, "audited": 90,
                 "noised": 90, "saving": 95, "done": 100}


def _protect_settings(settings: dict[str, Any]) -> tuple[float, float]:
    """(heartbeat period, staleness) of protection jobs, in seconds."""
    beat = float(settings.get("PROTECT_HEARTBEAT") or 2)
    return beat, max(float(settings.get("PROTECT_STALE_AFTER") or 30), 3 * beat)


def mark_stale_protections(settings: dict[str, Any], now: datetime | None = None) -> list[int]:
    """Running protection jobs whose heartbeat stopped (their worker was killed) are marked
    failed ("worker_lost", retryable); returns their ids (the periodic sweep; progress reads
    do the same in their request, :func:`publisher.workflow.fail_stale_protections`)."""
    from .workflow import fail_stale_protections

    _, stale_after = _protect_settings(settings)
    with transaction(_factory(settings)) as s:
        return fail_stale_protections(s, stale_after=stale_after, now=now)


def _audit_job(s: Session, job_id: int, action: str, reason: str,
               detail: dict[str, Any] | None = None) -> None:
    from .job_models import ProtectionJobRelease
    from .workflow import audit

    for rid in s.scalars(select(ProtectionJobRelease.release_id)
                         .where(ProtectionJobRelease.job_id == job_id)):
        audit(s, None, action, release=s.get(Release, rid), reason=reason,
              detail={"job": job_id, **(detail or {})})


def _claim_protection(factory: sessionmaker[Session], job_id: int) -> bool:
    from .job_models import PENDING, RUNNING, ProtectionJob

    with transaction(factory) as s:
        now = utcnow()
        res = s.execute(update(ProtectionJob).where(
            ProtectionJob.id == job_id, ProtectionJob.status == PENDING,
            ProtectionJob.cancel_requested.is_(False))
            .values(status=RUNNING, attempts=ProtectionJob.attempts + 1, started_at=now,
                    heartbeat_at=now, phase="starting", percent=PHASE_PERCENT["starting"],
                    error_code=None, error=None)
            .execution_options(synchronize_session=False))
        return res.rowcount == 1


def _job_update(factory: sessionmaker[Session], job_id: int, **values: Any) -> bool:
    """Write progress / heartbeat of a running job; returns whether a cancel was asked."""
    from .job_models import RUNNING, ProtectionJob

    with transaction(factory) as s:
        s.execute(update(ProtectionJob).where(ProtectionJob.id == job_id,
                                              ProtectionJob.status == RUNNING)
                  .values(heartbeat_at=utcnow(), **values)
                  .execution_options(synchronize_session=False))
        return bool(s.scalar(select(ProtectionJob.cancel_requested)
                             .where(ProtectionJob.id == job_id)))


def _end_job(factory: sessionmaker[Session], job_id: int, status: str, code: str | None,
             error: dict[str, Any] | None = None) -> None:
    from .job_models import RUNNING, ProtectionJob

    with transaction(factory) as s:
        res = s.execute(update(ProtectionJob).where(ProtectionJob.id == job_id,
                                                    ProtectionJob.status == RUNNING)
                        .values(status=status, error_code=code, error=error,
                                finished_at=utcnow())
                        .execution_options(synchronize_session=False))
        if res.rowcount:
            _audit_job(s, job_id, "protect_cancelled" if status == "cancelled"
                       else "protect_failed", code or "", {"error": (error or {}).get("type")})


def _reserve_for(factory: sessionmaker[Session], job_id: int, items: list[tuple[Any, ...]],
                 settings: dict[str, Any]) -> list[dict[str, Any] | None]:
    """Charge the privacy budget of the job's draw (its own committed transaction: a draw
    that happened is spent, whether or not the job then finishes)."""
    from dataclasses import asdict

    from .service import _reserve_draws
    from .specs import spec_from_mapping

    with transaction(factory) as s:
        specs = [spec_from_mapping(spec_map, source="spec") for spec_map, _, _ in items]
        out = [None if res is None else asdict(res)
               for res in _reserve_draws(specs, settings, s)]
        if any(out):  # linked noise tables: one charge, the same reservation in each
            _audit_job(s, job_id, "budget_charged", "", {"epsilon": [
                r["epsilon"] for i, r in enumerate(out) if r and r not in out[:i]]})
        return out


def run_protection(job_id: int, settings: dict[str, Any] | None = None) -> str:
    """Run one protection job: "done", or why not ("busy", "cancelled", "failed", "refused").

    The releases are validated again (the upload's validation path) and protected in a child
    process with the job's time and memory limits (``PROTECT_ISOLATION: inline`` runs it in
    this process, without limits: for tests); a heartbeat is written every
    ``PROTECT_HEARTBEAT`` seconds and a cancel asked meanwhile kills the child. The result is
    written in one transaction with the releases' move to "protected"
    (:func:`publisher.workflow.finish_protection`); any other end leaves them drafts."""
    from disclosure.errors import AshyqError

    from .job_models import CANCELLED, FAILED, ProtectionJob
    from .service import (
        ProtectionStopped,
        check_budget,
        error_data,
        protect_isolated,
        protect_tables,
    )
    from .specs import spec_from_mapping
    from .workflow import Pair, Upload, finish_protection, job_releases, validate_pairs

    settings = settings or current_settings()
    factory = _factory(settings)
    if not _claim_protection(factory, job_id):
        return "busy"
    beat, _ = _protect_settings(settings)
    last_beat = [0.0]
    # a progress report writes the heartbeat too and reads the cancel flag: tick() must see a
    # cancel read there, or frequent reports (every round of the solver) would hide it
    cancel_asked = [False]
    try:
        with factory() as s:
            job = s.get(ProtectionJob, job_id)
            members = job_releases(s, job)
            items = [(dict(r.spec), r.upload_name,
                      s.scalar(select(Release.upload_bytes).where(Release.id == r.id)) or b"")
                     for r, _ in members]

        def progress(phase: str, **figures: Any) -> None:
            values: dict[str, Any] = {"phase": phase[:40]}
            if phase in PHASE_PERCENT:
                values["percent"] = PHASE_PERCENT[phase]
            for k in ("cells", "primaries", "primaries_left"):
                if k in figures and figures[k] is not None:
                    values[k] = int(figures[k])
            cancel_asked[0] = _job_update(factory, job_id, **values) or cancel_asked[0]
            last_beat[0] = time.monotonic()

        def tick() -> bool:
            if cancel_asked[0]:
                return True
            now = time.monotonic()
            if now - last_beat[0] < beat:
                return False
            last_beat[0] = now
            cancel_asked[0] = _job_update(factory, job_id)
            return cancel_asked[0]

        from .history import published_for

        ids = [r.id for r, _ in members]
        if settings.get("PROTECT_ISOLATION") == "inline":
            with transaction(factory) as s:
                parsed = validate_pairs(s, [Pair(m, Upload(n, d)) for m, n, d in items], settings)
                # the attacker holds every table of the source already approved or published
                history = published_for(s, [p[0] for p in parsed], exclude_ids=ids)
            outs = protect_tables(parsed, settings=settings, progress=progress,
                                  published=history,
                                  reserve=lambda specs: _inline_reserve(
                                      factory, job_id, items, settings))
            results = [{"csv": oc.protected_csv_bytes, "report": oc.report.to_dict(),
                        "budget": oc.budget} for oc in outs]
        else:
            # the child validates the tables again (within its limits); the budget, which
            # needs the store, is checked here
            with transaction(factory) as s:
                specs = [spec_from_mapping(spec_map, source="spec") for spec_map, _, _ in items]
                for spec in specs:
                    check_budget(spec, s)
                history = published_for(s, specs, exclude_ids=ids)
            progress("starting")
            results = protect_isolated(items, settings=settings, progress=progress, tick=tick,
                                       published=history,
                                       reserve=lambda: _reserve_for(factory, job_id, items,
                                                                    settings))
        progress("saving")
        with transaction(factory) as s:
            finish_protection(s, s.get(ProtectionJob, job_id), results)
        return "done"
    except ProtectionStopped as e:
        status = CANCELLED if e.code == "cancelled" else FAILED
        _end_job(factory, job_id, status, e.code, error_data(e))
        return "cancelled" if status == CANCELLED else "failed"
    except AshyqError as e:
        if getattr(e, "code", "") == "cancelled":
            _end_job(factory, job_id, CANCELLED, "cancelled")
            return "cancelled"
        _end_job(factory, job_id, FAILED, "refused", error_data(e))
        return "refused"
    except Exception as e:
        log.error("protection job %s failed: %s", job_id, type(e).__name__)
        _end_job(factory, job_id, FAILED, "internal", {"template": "internal error (%(kind)s)",
                                                        "params": {"kind": type(e).__name__},
                                                        "type": type(e).__name__})
        return "failed"


def _inline_reserve(factory: sessionmaker[Session], job_id: int, items: list[tuple[Any, ...]],
                    settings: dict[str, Any]) -> list[Any]:
    from .service import _Reservation

    data = _reserve_for(factory, job_id, items, settings)
    return [None if r is None else _Reservation(**r) for r in data]


def due_protections(settings: dict[str, Any]) -> list[int]:
    """Pending protection jobs (their task was lost, or the worker was down)."""
    from .job_models import PENDING, ProtectionJob

    with _factory(settings)() as s:
        return list(s.scalars(select(ProtectionJob.id).where(
            ProtectionJob.status == PENDING, ProtectionJob.cancel_requested.is_(False))))


# -- Huey tasks ------------------------------------------------------------------------------------

@huey.task()
def protect_task(job_id: int) -> str:
    return run_protection(job_id)


@huey.periodic_task(crontab(minute="*"))
def protect_sweep() -> list[int]:
    """Every minute: jobs whose worker died are marked failed; pending jobs whose task was
    lost are queued again."""
    mark_stale_protections(current_settings())
    ids = due_protections(current_settings())
    for jid in ids:
        protect_task(jid)
    return ids


def enqueue_protection(job_id: int) -> None:
    """Queue a protection job (in ``HUEY_IMMEDIATE`` mode it runs at once, in this process)."""
    protect_task(job_id)


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


@huey.periodic_task(crontab(minute="0"))
def remind_requests() -> dict[str, int]:
    """Every hour: data-request reminders (the assignee at 75 % of the time, the head of unit
    when overdue; each once per request) and the mail outbox, as ``publisher requests remind``."""
    from . import requests

    settings = current_settings()
    with transaction(_factory(settings)) as s:
        res = requests.remind(s, settings)
    return dataclasses.asdict(res)


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
