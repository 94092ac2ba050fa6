"""Tables of data requests: a request from an NGO, a researcher or a journalist for a table that
is not public, its email confirmations, its thread, the releases that answer it, the private
downloads, the outgoing mail, and the staff's email addresses for reminders.

Guarantees:
- Confirmation tokens are stored only as SHA-256 hashes (the clear token is in the email only);
  each is single-use (``used_at``) and expires (``expires_at``).
- A request is linked to the release that answers it by :class:`RequestRelease` (this module's
  link table): the ``release`` table is not changed. A private answer keeps the path and SHA-256
  of the protected package that was delivered (never the uploaded raw table) and the content
  revision of the release it was built from.
- Every attempt to download a private answer is a :class:`RequestDownload` row (served or not,
  and why), with the client address only as a keyed hash.
- Outgoing mail (:class:`RequestMail`) stores its kind and non-secret parameters only: the links
  in it (tracking, download, confirmation) are made when it is sent.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .workflow_models import Base, Release, User, UtcDateTime, utcnow

# States of a request (see publisher.requests for the transitions).
RECEIVED, CONFIRMED, ASSIGNED, QUESTION = "received", "confirmed", "assigned", "question"
ACCEPTED, DECLINED, ANSWERED = "accepted", "declined", "answered"
REQUEST_STATES = (RECEIVED, CONFIRMED, ASSIGNED, QUESTION, ACCEPTED, DECLINED, ANSWERED)
OPEN_STATES = (CONFIRMED, ASSIGNED, QUESTION, ACCEPTED)  # in the staff's queue, clock running
FINAL_STATES = (DECLINED, ANSWERED)

REQUESTER_KINDS = ("ngo", "academia", "media", "government", "other")
REGION_LEVELS = ("country", "region", "district", "other")
DECLINE_REASONS = ("would_disclose", "not_held", "published_already", "out_of_scope",
                   "unclear", "other")
PUBLIC, PRIVATE = "public", "private"


class DataRequest(Base):
    """One request for a table, from its submission to its answer."""

    __tablename__ = "data_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(20), default=RECEIVED, index=True)
    language: Mapped[str] = mapped_column(String(8), default="kk")

    # who asks (personal data: never in the public register, never in logs)
    email: Mapped[str] = mapped_column(String(254))
    email_hash: Mapped[str] = mapped_column(String(64), index=True)  # of the normalised address
    contact_name: Mapped[str] = mapped_column(String(200), default="")
    organisation: Mapped[str] = mapped_column(String(200), default="")
    requester_kind: Mapped[str] = mapped_column(String(20))
    client_hash: Mapped[str] = mapped_column(String(64), index=True, default="")

    # what is asked for
    title: Mapped[str] = mapped_column(String(300))
    variables: Mapped[str] = mapped_column(Text, default="")
    breakdowns: Mapped[str] = mapped_column(Text, default="")
    period: Mapped[str] = mapped_column(String(200), default="")
    region_level: Mapped[str] = mapped_column(String(20), default="region")
    details: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(Text, default="")
    may_publish: Mapped[bool] = mapped_column(Boolean, default=True)
    public_title: Mapped[str | None] = mapped_column(String(300), nullable=True)

    # the clock
    track_salt: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    standard_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    deadline: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    assigned_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    state_before_question: Mapped[str | None] = mapped_column(String(20), nullable=True)
    responded_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    decline_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    delivery: Mapped[str | None] = mapped_column(String(10), nullable=True)  # public | private
    reminded_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    overdue_notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    assigned_to: Mapped[User | None] = relationship(foreign_keys=[assigned_to_id], lazy="joined")
    messages: Mapped[list[RequestMessage]] = relationship(
        back_populates="request", order_by="RequestMessage.id", lazy="selectin",
        cascade="all, delete-orphan")
    links: Mapped[list[RequestRelease]] = relationship(
        back_populates="request", order_by="RequestRelease.id", lazy="selectin",
        cascade="all, delete-orphan")

    @property
    def register_title(self) -> str:
        return self.public_title or self.title


class RequestConfirmation(Base):
    """A link that confirms the requester's email address: hashed, single-use, expiring."""

    __tablename__ = "request_confirmation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("data_request.id", ondelete="CASCADE"),
                                            index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    request: Mapped[DataRequest] = relationship(lazy="joined")


class RequestMessage(Base):
    """One entry of a request's thread: a question, the requester's reply, a decision."""

    __tablename__ = "request_message"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("data_request.id", ondelete="CASCADE"),
                                            index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    author: Mapped[str] = mapped_column(String(20))  # requester | staff
    author_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(20))  # question|reply|accept|decline|answer|assign
    body: Mapped[str] = mapped_column(Text, default="")

    request: Mapped[DataRequest] = relationship(back_populates="messages")


class RequestRelease(Base):
    """The link of a request to a release that answers it (publicly or privately)."""

    __tablename__ = "request_release"
    __table_args__ = (UniqueConstraint("request_id", "release_id", name="uq_request_release"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("data_request.id", ondelete="CASCADE"),
                                            index=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("release.id"), index=True)
    mode: Mapped[str] = mapped_column(String(10))  # public | private
    content_rev: Mapped[int] = mapped_column(Integer)
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    linked_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    package_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    package_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)

    request: Mapped[DataRequest] = relationship(back_populates="links")
    release: Mapped[Release] = relationship(lazy="joined")


class RequestDownload(Base):
    """One attempt to download a private answer: served or refused, and why."""

    __tablename__ = "request_download"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("data_request.id"), nullable=True,
                                                   index=True)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("request_release.id"), nullable=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    served: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str] = mapped_column(String(40))  # served|expired|invalid|wrong_address|...
    client_hash: Mapped[str] = mapped_column(String(64), default="")


class RequestMail(Base):
    """An email to send or sent: its kind and parameters (no secrets), its delivery status."""

    __tablename__ = "request_mail"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("data_request.id",
                                                              ondelete="CASCADE"),
                                                   nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(30))
    to_addr: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(8))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class StaffContact(Base):
    """A statistician's email address for reminders (the user table has none)."""

    __tablename__ = "staff_contact"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"),
                                         primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
