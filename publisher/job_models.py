"""Tables of protection jobs: one job protects one release, or several linked releases
together, in the worker (``publisher.tasks.run_protection``), and a held upload keeps a file of
a refused form so the preparer does not pick it again.

Guarantees:
- A job's result is written only when it finished, in one transaction with the move of every
  release it protects to "protected" (``publisher.workflow.finish_protection``); a cancelled,
  failed or timed-out job leaves its releases in "draft" with no protected table.
- ``heartbeat_at`` is renewed by the running worker every ``PROTECT_HEARTBEAT`` seconds: a job
  whose heartbeat is older than ``PROTECT_STALE_AFTER`` lost its worker and is marked failed
  (retryable) by whoever sees it first (the progress read, the periodic sweep).
- Held uploads belong to one user and expire (``HELD_FOR``); they are raw tables, kept in the
  database like a release's upload, never in the work folder.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base
from .workflow_models import UtcDateTime, utcnow

# Status of a protection job.
PENDING, RUNNING, DONE, FAILED, CANCELLED = "pending", "running", "done", "failed", "cancelled"
JOB_STATUSES = (PENDING, RUNNING, DONE, FAILED, CANCELLED)
ACTIVE = (PENDING, RUNNING)
HELD_FOR = timedelta(hours=24)


class ProtectionJob(Base):
    """Protecting one release, or linked releases together (see :class:`ProtectionJobRelease`)."""

    __tablename__ = "protection_job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default=PENDING, index=True)
    #: reading | primary | secondary | audit | noise | saving | done (see web.labels)
    phase: Mapped[str] = mapped_column(String(40), default="waiting")
    percent: Mapped[int] = mapped_column(Integer, default=0)
    cells: Mapped[int | None] = mapped_column(Integer, nullable=True)
    primaries: Mapped[int | None] = mapped_column(Integer, nullable=True)
    primaries_left: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: why it failed: "refused" (``error`` holds the refusal), "time_limit", "memory_limit",
    #: "cancelled", "worker_lost", "internal"
    error_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: a refusal as data, to be rendered in the reader's language: template, params, where
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class ProtectionJobRelease(Base):
    """A release a job protects, at the content revision it was queued for."""

    __tablename__ = "protection_job_release"
    __table_args__ = (UniqueConstraint("job_id", "release_id", name="uq_protection_job_release"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("protection_job.id", ondelete="CASCADE"),
                                        index=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("release.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    content_rev: Mapped[int] = mapped_column(Integer)


class HeldUpload(Base):
    """A file of a refused new-release form, kept for its user so the form need not be filled
    again (referenced by an unguessable token)."""

    __tablename__ = "held_upload"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"),
                                         index=True)
    name: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


__all__ = ["ACTIVE", "CANCELLED", "DONE", "FAILED", "HELD_FOR", "HeldUpload", "JOB_STATUSES",
           "PENDING", "RUNNING", "ProtectionJob", "ProtectionJobRelease"]
