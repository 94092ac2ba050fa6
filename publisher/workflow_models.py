"""Tables of the release workflow: users and roles, API tokens, releases, the audit log, and the
progress of publication jobs.

Guarantees:
- Passwords and API tokens are stored only as hashes (werkzeug scrypt / SHA-256 of a 256-bit token).
- The audit log is append-only: the ORM refuses to update or delete an :class:`AuditEntry`, and the
  migration installs database triggers (PostgreSQL and SQLite) that refuse UPDATE and DELETE.
- A release keeps the uploaded table server-side (bytes + an HMAC keyed with the app's secret,
  never shown); only the protected table and its report ever leave the service. The raw table is
  served only to the release's contributors, its approver(s) and administrators, and every such
  view is audited (:func:`publisher.workflow.raw_upload`).
- At most one approval and one schedule per content revision of a release
  (:class:`ReleaseDecision`, a unique constraint).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship
from sqlalchemy.types import TypeDecorator
from werkzeug.security import check_password_hash, generate_password_hash

from .db import Base

ROLES = ("preparer", "approver", "admin")

# States of a release (see publisher.workflow for the transitions).
DRAFT, PROTECTED, SUBMITTED, APPROVED = "draft", "protected", "submitted", "approved"
SCHEDULED, PUBLISHED = "scheduled", "published"
SUPERSEDED, CORRECTED, WITHDRAWN = "superseded", "corrected", "withdrawn"
STATES = (DRAFT, PROTECTED, SUBMITTED, APPROVED, SCHEDULED, PUBLISHED, SUPERSEDED, CORRECTED,
          WITHDRAWN)
PUBLIC_STATES = (PUBLISHED, SUPERSEDED, CORRECTED, WITHDRAWN)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(dt: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every stored time is UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class UtcDateTime(TypeDecorator):
    """A timestamp that is always timezone-aware UTC in Python (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value).astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return as_utc(value)


class UserRole(Base):
    __tablename__ = "user_role"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"),
                                         primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)


class User(Base):
    """A statistician (preparer / approver) or an administrator."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    role_rows: Mapped[list[UserRole]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return bool(self.active)

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def roles(self) -> set[str]:
        return {r.role for r in self.role_rows}

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def set_roles(self, roles: list[str] | set[str]) -> None:
        bad = [r for r in roles if r not in ROLES]
        if bad:
            raise ValueError(f"unknown role {bad[0]!r} (roles: {', '.join(ROLES)})")
        self.role_rows = [UserRole(role=r) for r in sorted(set(roles))]

    def set_password(self, password: str) -> None:
        if len(password) < 10:
            raise ValueError("a password needs at least 10 characters")
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @property
    def label(self) -> str:
        return self.display_name or self.username


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is stored (the token is shown once)."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    user: Mapped[User] = relationship(lazy="joined")

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8")).hexdigest()

    @classmethod
    def issue(cls, user: User, name: str = "") -> tuple[ApiToken, str]:
        """A new token for ``user``; returns the row and the clear token (not stored)."""
        clear = "ashyq_" + secrets.token_urlsafe(32)
        return cls(user=user, name=name, token_hash=cls.hash(clear), prefix=clear[:12]), clear


class LoginAttempt(Base):
    """Login attempts, for rate limiting wrong passwords per user name and per client address."""

    __tablename__ = "login_attempt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    success: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


class Release(Base):
    """One version of a table series on its way to publication."""

    __tablename__ = "release"
    __table_args__ = (UniqueConstraint("series", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20), default="initial")  # initial|revision|correction
    state: Mapped[str] = mapped_column(String(20), default=DRAFT, index=True)
    title: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    notice: Mapped[str | None] = mapped_column(Text, nullable=True)  # correction/revision notice
    # the notice in kk/ru/en ({lang: text}; the default language required for a correction)
    notices: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("release.id"), nullable=True)

    upload_name: Mapped[str] = mapped_column(String(255), default="")
    upload_bytes: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    # Not used any more and kept empty: a plain hash of the raw file lets anyone who sees it
    # confirm guesses of suppressed values. ``upload_hmac`` (keyed, DB only) replaces it.
    upload_sha256: Mapped[str] = mapped_column(String(64), default="")
    upload_hmac: Mapped[str | None] = mapped_column(String(64), nullable=True, deferred=True)
    content_rev: Mapped[int] = mapped_column(Integer, default=0)  # +1 per change of table/spec

    protected_csv: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    protect_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    prepared_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    approved_rev: Mapped[int | None] = mapped_column(Integer, nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    embargo_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    package_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    package_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    published_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    published_target: Mapped[str | None] = mapped_column(String(20), nullable=True)
    dataset_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    withdrawn_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow,
                                                 onupdate=utcnow)

    prepared_by: Mapped[User] = relationship(foreign_keys=[prepared_by_id], lazy="joined")
    changed_by: Mapped[User | None] = relationship(foreign_keys=[changed_by_id], lazy="joined")
    approved_by: Mapped[User | None] = relationship(foreign_keys=[approved_by_id], lazy="joined")
    previous: Mapped[Release | None] = relationship(remote_side=[id], lazy="select")

    def notice_in(self, lang: str) -> str | None:
        """The correction or revision notice in ``lang``, else in the language it was written."""
        texts = self.notices or {}
        return texts.get(lang) or self.notice or next(iter(texts.values()), None)

    def title_in(self, lang: str) -> str:
        t = self.title or {}
        return t.get(lang) or t.get("en") or next(iter(t.values()), self.series)


class AuditEntry(Base):
    """One row of the append-only audit log: who did what to which release, when and why."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    actor_name: Mapped[str] = mapped_column(String(64))  # kept even if the user is renamed
    release_id: Mapped[int | None] = mapped_column(ForeignKey("release.id"), nullable=True,
                                                   index=True)
    action: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_state: Mapped[str | None] = mapped_column(String(20), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Hash chain: each row seals the previous row's hash, so a changed, removed or inserted
    # row is detected by verify_audit_chain (even by someone who bypasses the triggers).
    prev_hash: Mapped[str] = mapped_column(String(64), default="")
    row_hash: Mapped[str] = mapped_column(String(64), default="")

    def compute_hash(self) -> str:
        body = json.dumps(
            [self.prev_hash, as_utc(self.at).astimezone(UTC).isoformat(), self.actor_id,
             self.actor_name, self.release_id, self.action, self.from_state, self.to_state,
             self.reason, self.detail], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(body.encode("utf-8")).hexdigest()


class AuditLogImmutable(RuntimeError):
    """Raised when code tries to change or delete an audit-log row."""


@event.listens_for(Session, "before_flush")
def _audit_append_only(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEntry) and (obj in session.deleted or session.is_modified(obj)):
            raise AuditLogImmutable("the audit log is append-only: rows cannot be changed or deleted")


class PublicationJob(Base):
    """Progress of publishing one release (one row per release; retried in place)."""

    __tablename__ = "publication_job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("release.id"), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|running|failed|done
    step: Mapped[str] = mapped_column(String(40), default="waiting")
    percent: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retryable: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow,
                                                 onupdate=utcnow)


class ReleaseDecision(Base):
    """One approval or one schedule of one content revision of a release: the unique constraint
    makes the loser of a race (two approvers, a double click) fail instead of both succeeding."""

    __tablename__ = "release_decision"
    __table_args__ = (UniqueConstraint("release_id", "content_rev", "kind",
                                       name="uq_release_decision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("release.id"), index=True)
    content_rev: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))  # approve | schedule
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
