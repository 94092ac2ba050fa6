"""The publication job as both blueprints see it: handing a release to the task queue, and its
progress (not view code: the UI and the API call these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ..workflow_models import PublicationJob, Release
from . import labels
from .common import db


def enqueue(release_id: int, when: datetime) -> None:
    """Hand the release to the task queue (the periodic sweep catches anything missed)."""
    if not current_app.config.get("PUBLISH_ENQUEUE", True):
        return
    from ..tasks import enqueue_publication

    try:
        enqueue_publication(release_id, when)
    except Exception as e:  # noqa: BLE001 - the schedule is committed; the sweep retries
        current_app.logger.warning("could not queue release %s (%s); the worker's periodic "
                                   "sweep will pick it up", release_id, type(e).__name__)


def progress_of(r: Release) -> dict[str, Any]:
    job = db().scalar(select(PublicationJob).where(PublicationJob.release_id == r.id))
    out: dict[str, Any] = {"release_id": r.id, "state": r.state, "url": r.published_url}
    if job is None:
        out.update(status="none", step="", percent=0, message="", attempts=0)
    else:
        out.update(status=job.status, step=job.step, percent=job.percent, message=job.message,
                   attempts=job.attempts)
    return out


# -- protection jobs -------------------------------------------------------------------------------

#: words of the protection progress bar
PROTECT_STATUS = {"none": _l("not queued"), "pending": _l("waiting for the worker"),
                  "running": _l("running"), "failed": _l("failed"), "done": _l("done"),
                  "cancelled": _l("cancelled")}
PROTECT_PHASE = {"waiting": _l("waiting for the worker"), "starting": _l("starting"),
                 "reading": _l("reading and checking the table"),
                 "protecting": _l("building every cell and total"),
                 "primary": _l("finding the primary cells"),
                 "secondary": _l("choosing secondary suppressions"),
                 "optimising": _l("optimising the secondary suppressions"),
                 "audit": _l("running the attacker audit"),
                 "audited": _l("attacker audit passed"), "noise": _l("drawing the noise"),
                 "noised": _l("noise drawn"), "saving": _l("saving the protected table"),
                 "done": _l("done")}
#: audit-log actions of protection jobs (added to the words of the history table)
PROTECT_ACTIONS = {"protect_queued": _l("protection queued"),
                   "protect_cancel": _l("protection cancel asked"),
                   "protect_cancelled": _l("protection cancelled"),
                   "protect_failed": _l("protection failed"),
                   "budget_charged": _l("privacy budget charged")}
labels.ACTION.update(PROTECT_ACTIONS)
PROTECT_ERROR = {"cancelled": _l("The protection was cancelled."),
                 "worker_lost": _l("The worker stopped while protecting (its heartbeat was "
                                   "lost). Protect it again."),
                 "time_limit": _l("The protection took longer than its time limit."),
                 "memory_limit": _l("The protection needed more memory than its limit."),
                 "internal": _l("The protection failed with an internal error."),
                 "refused": _l("The protection was refused.")}

def enqueue_protection(job_id: int) -> None:
    """Hand a protection job to the task queue (in ``HUEY_IMMEDIATE`` mode it runs now; the
    periodic sweep queues a pending job whose task was lost)."""
    if not current_app.config.get("PROTECT_ENQUEUE", True):
        return
    from ..tasks import enqueue_protection as queue

    try:
        queue(job_id)
    except Exception as e:  # noqa: BLE001 - the job row is committed; the sweep retries
        current_app.logger.warning("could not queue protection job %s (%s); the worker's "
                                   "periodic sweep will pick it up", job_id, type(e).__name__)


def protection_of(r: Release, *, translate: bool = True) -> dict[str, Any]:
    """The release's protection job as the progress bar and the API show it (a running job
    whose heartbeat stopped is marked failed first); ``error`` in the reader's language, or
    in English for the API (``translate`` False)."""
    from .. import workflow as wf
    from ..job_models import RUNNING
    from ..tasks import _protect_settings
    from .common import settings

    s = db()
    job = wf.protection_job(s, r)
    if job is not None and job.status == RUNNING and wf.fail_stale_protections(
            s, stale_after=_protect_settings(settings())[1]):
        s.commit()
        s.refresh(job)
    out: dict[str, Any] = {"release_id": r.id, "state": r.state}
    if job is None:
        out.update(job_id=None, status="none", phase="", percent=0, cells=None, primaries=None,
                   primaries_left=None, error_code=None, error=None, linked=[],
                   cancel_requested=False, attempts=0)
        return out
    linked = [{"id": m.id, "series": m.series, "version": m.version}
              for m, _ in wf.job_releases(s, job) if m.id != r.id]
    out.update(job_id=job.id, status=job.status, phase=job.phase, percent=job.percent,
               cells=job.cells, primaries=job.primaries, primaries_left=job.primaries_left,
               error_code=job.error_code, error=_error_line(job.error, translate), linked=linked,
               cancel_requested=bool(job.cancel_requested), attempts=job.attempts,
               started_at=job.started_at.isoformat() if job.started_at else None,
               heartbeat_at=job.heartbeat_at.isoformat() if job.heartbeat_at else None)
    return out


def _error_line(error: dict[str, Any] | None, translate: bool = True) -> str | None:
    """A stored refusal in the reader's language (or in English)."""
    if not error:
        return None
    from flask_babel import gettext

    if not translate:
        def gettext(text: str) -> str:  # noqa: F811 - English: the template itself
            return text

    from disclosure.errors import localized

    from ..service import error_from

    return localized(error_from(error), gettext)
