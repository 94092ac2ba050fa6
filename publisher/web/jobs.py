"""The publication job as both blueprints see it: handing a release to the task queue, and its
progress (not view code: the UI and the API call these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select

from ..workflow_models import PublicationJob, Release
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
