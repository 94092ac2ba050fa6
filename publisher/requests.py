"""Data requests: an NGO, a researcher or a journalist asks for a table that is not public, and
gets it — protected like everything Ashyq publishes — within the office's service standard.

::

    received ─confirm─► confirmed ─┬─► assigned ─┬─► accepted ─► answered (public | private)
    (email not yet                 ├─► question ◄┘      │
     confirmed)                    └─► declined ◄───────┘

Functions take a SQLAlchemy session and never commit (the caller does); the rules are here,
the web views only translate HTTP to these calls.

Guarantees:
- **Deadline**: counted from the day of confirmation in working days (``REQUEST_STANDARD_DAYS``,
  default 20), skipping Saturdays, Sundays and Kazakhstan's public holidays (PyPI ``holidays``,
  with the days off that move to a Monday), in the office's time zone (``REQUEST_TIMEZONE``).
- **Anti-spam, offline**: the form carries a signed time token (itsdangerous); a form sent
  faster than ``REQUEST_FORM_MIN_SECONDS`` or older than ``REQUEST_FORM_MAX_HOURS`` is refused
  (and shown again, filled in); a hidden field a person leaves empty. At most
  ``REQUEST_RATE_PER_EMAIL`` requests per email address and ``REQUEST_RATE_PER_ADDRESS`` per
  client address in 24 hours.
- **Confirmation**: a random token, stored only as its SHA-256, single-use, expiring after
  ``REQUEST_CONFIRM_HOURS``; a request is never lost: an expired link can ask for a new one.
- **Tracking link**: ``<id>-<HMAC(secret, id, salt)>``, not stored; a database copy alone
  cannot forge one.
- **Answer**: a request is answered by a release of the ordinary four-eyes workflow, linked by
  :class:`RequestRelease`. *Public*: a published version (only if the requester allowed it).
  *Private*: an approved release (approval covering its content, not scheduled or published)
  whose protected package is built and delivered through a link signed with the app's secret,
  expiring after ``REQUEST_DOWNLOAD_DAYS`` and bound to the requester's email address, which the
  download page asks for; every attempt is logged. The raw upload is never read.
  :func:`private_answers_for_source` gives these releases to the publication-history protection.
- Every staff action is a row of the append-only audit log (``request_*`` actions).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import shutil
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from disclosure.spec import LANGUAGES

from . import mail
from .request_models import (
    ACCEPTED,
    ANSWERED,
    ASSIGNED,
    CONFIRMED,
    DECLINE_REASONS,
    DECLINED,
    FINAL_STATES,
    OPEN_STATES,
    PRIVATE,
    PUBLIC,
    QUESTION,
    RECEIVED,
    REGION_LEVELS,
    REQUESTER_KINDS,
    DataRequest,
    RequestConfirmation,
    RequestDownload,
    RequestMail,
    RequestMessage,
    RequestRelease,
    StaffContact,
)
from .workflow import WorkflowError, audit, safe_report
from .workflow_models import APPROVED, PUBLISHED, Release, User, as_utc, utcnow

MAX_TEXT = 5000
MAX_TITLE = 300
MAX_MAIL_ATTEMPTS = 8
MAX_NEW_LINKS_PER_DAY = 5
REMIND_AT = 0.75
STAFF_ROLES = ("preparer", "approver", "admin")
LEADS = ("approver", "admin")  # who may assign and decline
FORM_SALT = "ashyq-request-form"
DOWNLOAD_SALT = "ashyq-request-download"
SENT_SALT = "ashyq-request-sent"


def N_(text_: str) -> str:
    """Mark a message for translation (the web pages show it in the reader's language)."""
    return text_


# Words shown in pages and mail (marked for the catalogues).
STATE_WORDS = {RECEIVED: N_("waiting for email confirmation"), CONFIRMED: N_("registered"),
               ASSIGNED: N_("assigned"), QUESTION: N_("question to the requester"),
               ACCEPTED: N_("accepted, being prepared"), DECLINED: N_("declined"),
               ANSWERED: N_("answered")}
KIND_WORDS = {"ngo": N_("NGO"), "academia": N_("academia"), "media": N_("media"),
              "government": N_("government"), "other": N_("other")}
LEVEL_WORDS = {"country": N_("country"), "region": N_("regions (oblasts, cities)"),
               "district": N_("districts"), "other": N_("other (say which)")}
REASON_WORDS = {"would_disclose": N_("the table would disclose persons"),
                "not_held": N_("the office does not hold these data"),
                "published_already": N_("the table is published already"),
                "out_of_scope": N_("the request is outside the office's remit"),
                "unclear": N_("the request stayed unclear after our question"),
                "other": N_("another reason (see the note)")}
DELIVERY_WORDS = {PUBLIC: N_("published as open data"), PRIVATE: N_("sent to the requester")}


# -- errors --------------------------------------------------------------------------------------

class RequestError(WorkflowError):
    """A refused data-request step (a precise message in the reader's language)."""

    code = "request_invalid"
    status = 422


class RequestNotFound(RequestError):
    code, status = "not_found", 404


class RequestForbidden(RequestError):
    code, status = "forbidden", 403


class RequestConflict(RequestError):
    code, status = "conflict", 409


class LinkExpired(RequestError):
    code, status = "expired", 410


class RateLimited(RequestError):
    code, status = "rate_limited", 429


class FormRefused(RequestError):
    """The form must be sent again (anti-spam); the view shows it again, filled in."""

    code, status = "form_refused", 400


# -- the clock and the calendar ----------------------------------------------------------------------

def _now(now: datetime | None) -> datetime:
    return as_utc(now) if now is not None else utcnow()


def local_date(moment: datetime, settings: dict[str, Any]) -> date:
    """The office's calendar day of a UTC moment."""
    tz = ZoneInfo(str(settings.get("REQUEST_TIMEZONE") or "Asia/Almaty"))
    return as_utc(moment).astimezone(tz).date()


@lru_cache(maxsize=64)
def _holidays(year: int) -> frozenset[date]:
    import holidays

    return frozenset(holidays.country_holidays("KZ", years=year).keys())


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _holidays(day.year)


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself does not count)."""
    if days < 0:
        raise ValueError("days must be >= 0")
    day, counted = start, 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return day


def working_days_between(start: date, end: date) -> int:
    """Working days in (start, end]."""
    n, day = 0, start
    while day < end:
        day += timedelta(days=1)
        if is_working_day(day):
            n += 1
    return n


def is_overdue(req: DataRequest, today: date) -> bool:
    return req.state in OPEN_STATES and req.deadline is not None and today > req.deadline


# -- secrets and signatures --------------------------------------------------------------------------

def _secret(settings: dict[str, Any]) -> str:
    from .settings import secret_key

    key = secret_key(settings)
    if not key:
        raise RequestError(N_("the service has no secret key"))
    return str(key)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def email_key(address: str) -> str:
    """Hash of an address as compared (lower-case: most mail systems ignore case)."""
    return _sha256(address.strip().lower())


def client_key(address: str, settings: dict[str, Any]) -> str:
    """A keyed hash of the client's network address (the address itself is not stored)."""
    return hmac.new(_secret(settings).encode(), f"client:{address}".encode(),
                    hashlib.sha256).hexdigest()


def tracking_token(req: DataRequest, settings: dict[str, Any]) -> str:
    mac = hmac.new(_secret(settings).encode(), f"track:{req.id}:{req.track_salt}".encode(),
                   hashlib.sha256).digest()
    return f"{req.id}-{base64.urlsafe_b64encode(mac).decode().rstrip('=')[:32]}"


def by_tracking_token(session: Session, token: str, settings: dict[str, Any]) -> DataRequest:
    """The request of a tracking link; "not found" for anything else (no existence leak)."""
    rid, _, _mac = (token or "").partition("-")
    req = session.get(DataRequest, int(rid)) if rid.isdigit() and 0 < int(rid) < 2**31 else None
    if req is None or not hmac.compare_digest(tracking_token(req, settings), token):
        raise RequestNotFound(N_("this request link is not valid: check that it was copied "
                                 "whole"))
    return req


def form_token(settings: dict[str, Any]) -> str:
    """The signed time token of a fresh request form."""
    return TimestampSigner(_secret(settings), salt=FORM_SALT).sign(secrets.token_hex(8)).decode()


def check_form_token(token: str, settings: dict[str, Any], now: datetime | None = None) -> None:
    try:
        _value, stamp = TimestampSigner(_secret(settings), salt=FORM_SALT).unsign(
            token or "", return_timestamp=True)
    except BadSignature:
        raise FormRefused(N_("the form could not be checked; please send it again")) from None
    age = (_now(now) - as_utc(stamp)).total_seconds()
    if age < float(settings.get("REQUEST_FORM_MIN_SECONDS", 3)):
        raise FormRefused(N_("the form was sent too quickly to be a person's; please check it "
                             "and send it again"))
    if age > float(settings.get("REQUEST_FORM_MAX_HOURS", 12)) * 3600:
        raise FormRefused(N_("the form was open too long; please check it and send it again"))


def sent_token(req: DataRequest, settings: dict[str, Any]) -> str:
    """A short-lived token for the "check your email" page (resend the confirmation)."""
    return URLSafeTimedSerializer(_secret(settings), salt=SENT_SALT).dumps(req.id)


def by_sent_token(session: Session, token: str, settings: dict[str, Any],
                  now: datetime | None = None) -> DataRequest:
    try:
        rid, stamp = URLSafeTimedSerializer(_secret(settings), salt=SENT_SALT).loads(
            token or "", return_timestamp=True)
    except BadSignature:
        raise RequestNotFound(N_("this page link is not valid")) from None
    if (_now(now) - as_utc(stamp)) > timedelta(hours=24):
        raise LinkExpired(N_("this page link expired; open the link in your email instead"))
    req = session.get(DataRequest, rid) if isinstance(rid, int) else None
    if req is None:
        raise RequestNotFound(N_("this page link is not valid"))
    return req


# -- submission --------------------------------------------------------------------------------------

@dataclass
class RequestInput:
    """What a requester fills in."""

    email: str
    requester_kind: str
    title: str
    purpose: str
    organisation: str = ""
    contact_name: str = ""
    variables: str = ""
    breakdowns: str = ""
    period: str = ""
    region_level: str = "region"
    details: str = ""
    may_publish: bool = True
    language: str = "kk"


def _clean(value: str | None, limit: int, what: str, *, required: bool = False) -> str:
    text_ = (value or "").replace("\r\n", "\n").strip()
    if any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0 for c in text_):
        raise RequestError(N_("%(field)s contains control characters"), field=what)
    if required and not text_:
        raise RequestError(N_("%(field)s: please fill this in"), field=what)
    if len(text_) > limit:
        raise RequestError(N_("%(field)s is longer than %(n)s characters"), field=what, n=limit)
    return text_


def validate(data: RequestInput) -> RequestInput:
    """The input, cleaned; a :class:`RequestError` naming the first wrong field."""
    address = mail.normalise_address(data.email)
    if address is None:
        raise RequestError(N_("the email address %(email)s is not valid"),
                           code="invalid_email", email=(data.email or "").strip()[:100] or "—")
    if data.requester_kind not in REQUESTER_KINDS:
        raise RequestError(N_("choose who is asking (NGO, academia, media, government, other)"))
    if data.region_level not in REGION_LEVELS:
        raise RequestError(N_("choose the region level"))
    lang = data.language if data.language in LANGUAGES else "kk"
    return RequestInput(
        email=address, requester_kind=data.requester_kind,
        title=_clean(data.title, MAX_TITLE, N_("Title"), required=True),
        purpose=_clean(data.purpose, MAX_TEXT, N_("Purpose"), required=True),
        organisation=_clean(data.organisation, 200, N_("Organisation")),
        contact_name=_clean(data.contact_name, 200, N_("Your name")),
        variables=_clean(data.variables, MAX_TEXT, N_("Variables")),
        breakdowns=_clean(data.breakdowns, MAX_TEXT, N_("Breakdowns")),
        period=_clean(data.period, 200, N_("Period")),
        region_level=data.region_level,
        details=_clean(data.details, MAX_TEXT, N_("Anything else")),
        may_publish=bool(data.may_publish), language=lang)


def _lock(session: Session, key: str) -> None:
    """Serialise submissions of one address on PostgreSQL (SQLite serialises writers)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("select pg_advisory_xact_lock(hashtext(:k))"), {"k": key})


def submit_request(session: Session, data: RequestInput, *, settings: dict[str, Any],
                   client_address: str, now: datetime | None = None) -> DataRequest:
    """Record a new request (state received) and queue the confirmation email."""
    now = _now(now)
    clean = validate(data)
    ekey, ckey = email_key(clean.email), client_key(client_address, settings)
    _lock(session, f"request:{ekey}")
    since = now - timedelta(hours=24)
    count = select(func.count()).select_from(DataRequest).where(DataRequest.received_at >= since)
    by_email = session.scalar(count.where(DataRequest.email_hash == ekey)) or 0
    limit = int(settings.get("REQUEST_RATE_PER_EMAIL", 3))
    if by_email >= limit:
        raise RateLimited(N_("%(n)s requests came from this email address in the last 24 hours, "
                             "the most we accept. Your earlier requests are kept; please send "
                             "this one tomorrow."), n=by_email)
    by_client = session.scalar(count.where(DataRequest.client_hash == ckey)) or 0
    if by_client >= int(settings.get("REQUEST_RATE_PER_ADDRESS", 10)):
        raise RateLimited(N_("%(n)s requests came from your network address in the last 24 "
                             "hours, the most we accept. Requests sent earlier are kept; please "
                             "try again tomorrow."), n=by_client)
    req = DataRequest(
        state=RECEIVED, language=clean.language, email=clean.email, email_hash=ekey,
        contact_name=clean.contact_name, organisation=clean.organisation,
        requester_kind=clean.requester_kind, client_hash=ckey, title=clean.title,
        variables=clean.variables, breakdowns=clean.breakdowns, period=clean.period,
        region_level=clean.region_level, details=clean.details, purpose=clean.purpose,
        may_publish=clean.may_publish, track_salt=secrets.token_hex(16), received_at=now,
        updated_at=now)
    session.add(req)
    session.flush()
    queue_mail(session, req, "confirm", now=now)
    return req


def resend_confirmation(session: Session, req: DataRequest, *, now: datetime | None = None) -> None:
    """Queue a new confirmation email to the request's own address (not more than a few a day)."""
    if req.state != RECEIVED:
        raise RequestConflict(N_("this request is confirmed already; its link is in your email"))
    _limit_mail(session, req, "confirm", _now(now))
    queue_mail(session, req, "confirm", now=now)


def _limit_mail(session: Session, req: DataRequest, kind: str, now: datetime) -> None:
    n = session.scalar(select(func.count()).select_from(RequestMail).where(
        RequestMail.request_id == req.id, RequestMail.kind == kind,
        RequestMail.created_at >= now - timedelta(hours=24))) or 0
    if n >= MAX_NEW_LINKS_PER_DAY:
        raise RateLimited(N_("%(n)s emails of this kind were sent for this request today, the "
                             "most we send; please use the latest one or try tomorrow."), n=n)


# -- confirmation ----------------------------------------------------------------------------------

def issue_confirmation(session: Session, req: DataRequest, settings: dict[str, Any],
                       now: datetime | None = None) -> str:
    """A new single-use confirmation token (only its hash is stored)."""
    now = _now(now)
    clear = secrets.token_urlsafe(32)
    hours = float(settings.get("REQUEST_CONFIRM_HOURS", 48))
    session.add(RequestConfirmation(request_id=req.id, token_hash=_sha256(clear), created_at=now,
                                    expires_at=now + timedelta(hours=hours)))
    session.flush()
    return clear


def confirmation(session: Session, token: str) -> RequestConfirmation:
    row = None
    if token and len(token) <= 100:
        row = session.scalar(select(RequestConfirmation).where(
            RequestConfirmation.token_hash == _sha256(token)))
    if row is None:
        raise RequestNotFound(N_("this confirmation link is not valid: check that it was copied "
                                 "whole, or send the request again"))
    return row


def check_confirmation(row: RequestConfirmation, now: datetime | None = None) -> None:
    if row.used_at is not None:
        raise RequestConflict(N_("this confirmation link was used already. Your request is "
                                 "registered: its page link is in the second email we sent."))
    if as_utc(row.expires_at) < _now(now):
        raise LinkExpired(N_("this confirmation link expired. Your request is kept: ask for a "
                             "new link below."))


def confirm(session: Session, token: str, *, settings: dict[str, Any],
            now: datetime | None = None) -> DataRequest:
    """Confirm the address: the clock starts and the deadline is set."""
    now = _now(now)
    row = confirmation(session, token)
    check_confirmation(row, now)
    row.used_at = now
    req = row.request
    if req.state != RECEIVED:  # confirmed through another of its links
        return req
    days = int(settings.get("REQUEST_STANDARD_DAYS", 20))
    req.state, req.confirmed_at, req.standard_days = CONFIRMED, now, days
    req.deadline = add_working_days(local_date(now, settings), days)
    req.updated_at = now
    for other in session.scalars(select(RequestConfirmation).where(
            RequestConfirmation.request_id == req.id, RequestConfirmation.used_at.is_(None))):
        other.used_at = now  # every other link of this request is spent too
    queue_mail(session, req, "confirmed", now=now)
    return req


# -- staff actions ---------------------------------------------------------------------------------

def _require_staff(actor: User) -> None:
    if not any(actor.has_role(r) for r in STAFF_ROLES):
        raise RequestForbidden(N_("data requests are handled by the office's statisticians"))


def _require_lead(actor: User) -> None:
    if not any(actor.has_role(r) for r in LEADS):
        raise RequestForbidden(N_("only an approver or an administrator can do this"))


def _require_handler(actor: User, req: DataRequest) -> None:
    """The request's assignee, or an approver or administrator."""
    _require_staff(actor)
    if req.assigned_to_id != actor.id and not any(actor.has_role(r) for r in LEADS):
        raise RequestForbidden(N_("only the statistician assigned to this request, an approver "
                                  "or an administrator can do this"))


def _require_request_state(req: DataRequest, *states: str) -> None:
    if req.state not in states:
        raise RequestConflict(N_("the request is %(now)s: this step is not possible now"),
                              now=STATE_WORDS.get(req.state, req.state))


def get_request(session: Session, actor: User, request_id: int) -> DataRequest:
    _require_staff(actor)
    req = session.get(DataRequest, request_id) if 0 < request_id < 2**31 else None
    if req is None:
        raise RequestNotFound(N_("no data request %(id)s"), id=request_id)
    return req


def _lock_request(session: Session, req: DataRequest) -> DataRequest:
    session.flush()
    session.execute(select(DataRequest.id).where(DataRequest.id == req.id).with_for_update())
    session.refresh(req)
    return req


def _text(value: str | None, *, required: bool, what: str) -> str:
    return _clean(value, MAX_TEXT, what, required=required)


def _say(session: Session, req: DataRequest, author: str, kind: str, body: str,
         actor: User | None, now: datetime) -> None:
    session.add(RequestMessage(request_id=req.id, at=now, author=author,
                               author_id=actor.id if actor else None, kind=kind, body=body))


def _audit(session: Session, actor: User | None, action: str, req: DataRequest,
           before: str | None, release: Release | None = None, reason: str = "",
           **detail: Any) -> None:
    audit(session, actor, f"request_{action}", release=release, from_state=before,
          to_state=req.state, reason=reason, detail={"request": req.id, **detail})


def assign(session: Session, actor: User, req: DataRequest, assignee_id: int, *,
           now: datetime | None = None) -> DataRequest:
    now = _now(now)
    _require_staff(actor)
    _require_lead(actor)
    _lock_request(session, req)
    _require_request_state(req, *OPEN_STATES)
    assignee = session.get(User, assignee_id) if 0 < assignee_id < 2**31 else None
    if assignee is None or not assignee.is_active or not (
            assignee.has_role("preparer") or assignee.has_role("approver")):
        raise RequestError(N_("choose an active preparer or approver to assign"))
    before = req.state
    req.assigned_to_id, req.assigned_at, req.reminded_at = assignee.id, now, None
    if req.state == CONFIRMED:
        req.state = ASSIGNED
    elif req.state == QUESTION and req.state_before_question == CONFIRMED:
        req.state_before_question = ASSIGNED
    req.updated_at = now
    _audit(session, actor, "assign", req, before, assignee=assignee.username)
    return req


def ask(session: Session, actor: User, req: DataRequest, question: str, *,
        now: datetime | None = None) -> DataRequest:
    """Ask the requester a question (the thread stays on the request's page; emailed)."""
    now = _now(now)
    _require_handler(actor, req)
    body = _text(question, required=True, what=N_("Question"))
    _lock_request(session, req)
    _require_request_state(req, CONFIRMED, ASSIGNED, ACCEPTED)
    before = req.state
    req.state_before_question, req.state, req.updated_at = before, QUESTION, now
    _say(session, req, "staff", "question", body, actor, now)
    _audit(session, actor, "question", req, before)
    queue_mail(session, req, "question", now=now, text=body)
    return req


def reply(session: Session, req: DataRequest, answer: str, *,
          now: datetime | None = None) -> DataRequest:
    """The requester answers the question (from the tracking page)."""
    now = _now(now)
    body = _text(answer, required=True, what=N_("Your answer"))
    _lock_request(session, req)
    _require_request_state(req, QUESTION)
    before = req.state
    req.state = req.state_before_question or CONFIRMED
    req.state_before_question, req.updated_at = None, now
    _say(session, req, "requester", "reply", body, None, now)
    _audit(session, None, "reply", req, before)
    to = staff_email(session, req.assigned_to_id) if req.assigned_to_id else None
    if to:
        queue_mail(session, req, "reply", now=now, to=to, lang=_staff_lang(req.assigned_to),
                   text=body)
    return req


def accept(session: Session, actor: User, req: DataRequest, note: str = "", *,
           now: datetime | None = None) -> DataRequest:
    """The office will prepare the table (a preparer who accepts becomes the assignee)."""
    now = _now(now)
    if req.assigned_to_id:
        _require_handler(actor, req)
    else:
        _require_staff(actor)
    body = _text(note, required=False, what=N_("Note"))
    _lock_request(session, req)
    _require_request_state(req, CONFIRMED, ASSIGNED, QUESTION)
    before = req.state
    if req.assigned_to_id is None:
        req.assigned_to_id, req.assigned_at = actor.id, now
    req.state, req.state_before_question, req.updated_at = ACCEPTED, None, now
    _say(session, req, "staff", "accept", body, actor, now)
    _audit(session, actor, "accept", req, before)
    return req


def decline(session: Session, actor: User, req: DataRequest, reason: str, note: str = "", *,
            now: datetime | None = None) -> DataRequest:
    """Decline with a reason from the list (an approver or administrator decides)."""
    now = _now(now)
    _require_staff(actor)
    _require_lead(actor)
    if reason not in DECLINE_REASONS:
        raise RequestError(N_("choose a reason from the list"))
    body = _text(note, required=reason == "other", what=N_("Note"))
    _lock_request(session, req)
    _require_request_state(req, *OPEN_STATES)
    before = req.state
    req.state, req.decline_reason, req.responded_at, req.updated_at = DECLINED, reason, now, now
    req.state_before_question = None
    _say(session, req, "staff", "decline", body, actor, now)
    _audit(session, actor, "decline", req, before, reason=body, decline_reason=reason)
    queue_mail(session, req, "declined", now=now, reason=REASON_WORDS[reason], text=body)
    return req


def set_public_title(session: Session, actor: User, req: DataRequest, title: str) -> DataRequest:
    """The title shown in the public register (e.g. without a name the requester wrote)."""
    _require_staff(actor)
    clean = _clean(title, MAX_TITLE, N_("Title in the public register"), required=True)
    req.public_title = clean
    _audit(session, actor, "retitle", req, req.state)
    return req


def answerable_releases(session: Session, mode: str) -> list[Release]:
    """Releases that can answer a request: published (public) or approved (private)."""
    state = PUBLISHED if mode == PUBLIC else APPROVED
    rows = session.scalars(select(Release).where(Release.state == state)
                           .order_by(Release.series, Release.id)).all()
    return [r for r in rows if mode == PUBLIC or _approval_valid(r)]


def _approval_valid(r: Release) -> bool:
    return (r.approved_by_id is not None and r.approved_rev == r.content_rev
            and r.approved_by_id != r.prepared_by_id)


def answer(session: Session, actor: User, req: DataRequest, release_id: int, mode: str,
           note: str = "", *, settings: dict[str, Any], now: datetime | None = None
           ) -> RequestRelease:
    """Answer with a release: ``public`` (a published version; the requester gets its link) or
    ``private`` (an approved release: its protected package, through a signed link)."""
    now = _now(now)
    _require_handler(actor, req)
    if mode not in (PUBLIC, PRIVATE):
        raise RequestError(N_("choose how the answer is delivered: public or private"))
    body = _text(note, required=False, what=N_("Note"))
    release = session.get(Release, release_id) if 0 < release_id < 2**31 else None
    if release is None:
        raise RequestNotFound(N_("no release %(id)s"), id=release_id)
    _lock_request(session, req)
    _require_request_state(req, ASSIGNED, ACCEPTED)
    session.execute(select(Release.id).where(Release.id == release.id).with_for_update())
    session.refresh(release)
    if mode == PUBLIC:
        if not req.may_publish:
            raise RequestConflict(N_("the requester asked that the answer not be published: "
                                     "answer privately"))
        if release.state != PUBLISHED:
            raise RequestConflict(N_("a public answer is a published version; this release is "
                                     "not published (yet)"))
        link = RequestRelease(request_id=req.id, release_id=release.id, mode=PUBLIC,
                              content_rev=release.content_rev, linked_at=now,
                              linked_by_id=actor.id)
    else:
        if release.state != APPROVED or not _approval_valid(release):
            raise RequestConflict(N_("a private answer is an approved release (four eyes) that is "
                                     "not scheduled or published; this one is not"))
        path, digest = _build_private_package(session, req, release, settings)
        link = RequestRelease(request_id=req.id, release_id=release.id, mode=PRIVATE,
                              content_rev=release.content_rev, linked_at=now,
                              linked_by_id=actor.id, package_path=str(path),
                              package_sha256=digest)
    session.add(link)
    session.flush()
    before = req.state
    req.state, req.delivery, req.responded_at, req.updated_at = ANSWERED, mode, now, now
    _say(session, req, "staff", "answer", body, actor, now)
    _audit(session, actor, "answer", req, before, release=release, reason=body, mode=mode,
           content_rev=release.content_rev)
    if mode == PUBLIC:
        base = str(settings.get("PUBLIC_BASE_URL", "")).rstrip("/")
        queue_mail(session, req, "answered_public", now=now, text=body,
                   public_url=f"{base}/v/{release.series}/{release.version}")
    else:
        queue_mail(session, req, "answered_private", now=now, text=body, link=link.id)
    return link


def _build_private_package(session: Session, req: DataRequest, release: Release,
                           settings: dict[str, Any]) -> tuple[Path, str]:
    """The validated package of the release's protected table (never the raw upload)."""
    from .service import package_release, sha256_file
    from .specs import spec_from_mapping

    protected = session.scalar(select(Release.protected_csv).where(Release.id == release.id))
    if not protected:
        raise RequestConflict(N_("the release has no protected table yet"))
    spec = spec_from_mapping(release.spec, source=f"release {release.id}")
    out = (Path(settings["WORK_DIR"]) / "requests" / str(req.id)
           / f"{release.series}-{release.version}-rev{release.content_rev}")
    if out.exists():
        shutil.rmtree(out)
    zip_path = out.with_name(out.name + ".zip")
    try:
        result = package_release(spec, protected, out, report=safe_report(release.report),
                                 settings=settings, public=False,
                                 name=f"release {release.id} protected table")
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        zip_path.unlink(missing_ok=True)
        raise
    zip_path = Path(result.zip_path)
    return zip_path, sha256_file(zip_path)


# -- private download ------------------------------------------------------------------------------

def download_token(req: DataRequest, link: RequestRelease, settings: dict[str, Any]) -> str:
    return URLSafeTimedSerializer(_secret(settings), salt=DOWNLOAD_SALT).dumps(
        {"r": req.id, "l": link.id, "e": req.email_hash[:32]})


@dataclass
class Download:
    """The outcome of a download attempt: a file to serve, or the refusal (already logged)."""

    path: Path | None = None
    name: str = ""
    error: RequestError | None = None


def read_download_token(session: Session, token: str, settings: dict[str, Any],
                        now: datetime | None = None) -> tuple[DataRequest, RequestRelease]:
    """The request and answer of a download link (signature and expiry checked; not logged)."""
    serializer = URLSafeTimedSerializer(_secret(settings), salt=DOWNLOAD_SALT)
    try:
        payload, stamp = serializer.loads(token or "", return_timestamp=True)
    except BadSignature:
        raise RequestNotFound(N_("this download link is not valid: check that it was copied "
                                 "whole")) from None
    req = session.get(DataRequest, payload.get("r")) if isinstance(payload, dict) else None
    link = session.get(RequestRelease, payload.get("l")) if req is not None else None
    if req is None or link is None or link.request_id != req.id or link.mode != PRIVATE:
        raise RequestNotFound(N_("this download link is not valid: check that it was copied "
                                 "whole"))
    days = float(settings.get("REQUEST_DOWNLOAD_DAYS", 14))
    if _now(now) - as_utc(stamp) > timedelta(days=days):
        raise LinkExpired(N_("this download link expired. Ask for a new one on your request's "
                             "page: it is sent to your email address."))
    if not hmac.compare_digest(str(payload.get("e", "")), req.email_hash[:32]):
        raise RequestNotFound(N_("this download link is not valid: check that it was copied "
                                 "whole"))
    return req, link


def open_download(session: Session, token: str, email: str, *, settings: dict[str, Any],
                  client_address: str, now: datetime | None = None) -> Download:
    """Check a download link and the address given on the page; every attempt is logged."""
    now = _now(now)
    ckey = client_key(client_address, settings)
    req = link = None
    try:
        req, link = read_download_token(session, token, settings, now)
        address = mail.normalise_address(email)
        if address is None or not hmac.compare_digest(email_key(address), req.email_hash):
            raise RequestForbidden(N_("this link was sent to another email address: the file "
                                      "is given only to the address that asked for it"),
                                   code="wrong_address")
        path = Path(link.package_path or "")
        if not path.is_file() or _file_sha256(path) != link.package_sha256:
            raise RequestConflict(N_("the file of this answer is not available; the office has "
                                     "been told"), code="missing_file")
    except RequestError as e:
        if isinstance(e, LinkExpired | RequestNotFound) and req is None:
            req_id, link_id = _unsafe_ids(token, settings)
        else:
            req_id, link_id = (req.id if req else None), (link.id if link else None)
        session.add(RequestDownload(request_id=req_id, link_id=link_id, at=now, served=False,
                                    outcome=e.code[:40], client_hash=ckey))
        return Download(error=e)
    session.add(RequestDownload(request_id=req.id, link_id=link.id, at=now, served=True,
                                outcome="served", client_hash=ckey))
    release = link.release
    return Download(path=path, name=f"{release.series}-{release.version}.zip")


def _unsafe_ids(token: str, settings: dict[str, Any]) -> tuple[int | None, int | None]:
    """The ids of a genuinely signed link (e.g. an expired one), for the log; None for a
    forgery (its ids are not to be believed)."""
    try:
        payload = URLSafeTimedSerializer(_secret(settings), salt=DOWNLOAD_SALT).loads(token or "")
    except BadSignature:
        return None, None
    if not isinstance(payload, dict):
        return None, None
    r, ln = payload.get("r"), payload.get("l")
    return (r if isinstance(r, int) else None), (ln if isinstance(ln, int) else None)


def _file_sha256(path: Path) -> str:
    from .service import sha256_file

    return sha256_file(path)


def new_download_link(session: Session, req: DataRequest, *, now: datetime | None = None) -> None:
    """Mail a fresh download link to the request's own address (from its tracking page)."""
    now = _now(now)
    links = [ln for ln in req.links if ln.mode == PRIVATE]
    if req.state != ANSWERED or not links:
        raise RequestConflict(N_("this request has no private answer to download"))
    _limit_mail(session, req, "download_link", now)
    queue_mail(session, req, "download_link", now=now, link=links[-1].id)


def downloads(session: Session, req: DataRequest) -> list[RequestDownload]:
    return list(session.scalars(select(RequestDownload).where(
        RequestDownload.request_id == req.id).order_by(RequestDownload.id)))


# -- mail ------------------------------------------------------------------------------------------

def staff_email(session: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    row = session.get(StaffContact, user_id)
    return row.email if row else None


def set_staff_email(session: Session, actor: User, email: str) -> str:
    _require_staff(actor)
    address = mail.normalise_address(email)
    if address is None:
        raise RequestError(N_("the email address %(email)s is not valid"), code="invalid_email",
                           email=(email or "").strip()[:100] or "—")
    row = session.get(StaffContact, actor.id)
    if row is None:
        session.add(StaffContact(user_id=actor.id, email=address, updated_at=utcnow()))
    else:
        row.email = address
    return address


def _staff_lang(user: User | None, default: str = "kk") -> str:
    lang = getattr(user, "language", None)
    return lang if lang in LANGUAGES else default


def queue_mail(session: Session, req: DataRequest, kind: str, *, now: datetime | None = None,
               to: str | None = None, lang: str | None = None, **params: Any) -> RequestMail:
    """Queue one email (sent by :func:`deliver`); ``params`` hold no secret."""
    row = RequestMail(request_id=req.id, kind=kind, to_addr=to or req.email,
                      language=lang or req.language, params=params, created_at=_now(now),
                      attempts=0)
    session.add(row)
    session.flush()
    return row


def _mail_params(session: Session, row: RequestMail, req: DataRequest | None,
                 settings: dict[str, Any], now: datetime) -> dict[str, Any]:
    base = str(settings.get("PUBLIC_BASE_URL", "")).rstrip("/")
    p: dict[str, Any] = dict(row.params or {})
    if req is None:
        return p
    p.update(ref=req.id, title=req.title)
    if row.kind == "confirm":
        p["url"] = f"{base}/requests/confirm/{issue_confirmation(session, req, settings, now)}"
        p["hours"] = int(float(settings.get("REQUEST_CONFIRM_HOURS", 48)))
    else:
        p["url"] = f"{base}/requests/{tracking_token(req, settings)}"
    if req.deadline:
        p["deadline"] = req.deadline.isoformat()
        p["days"] = req.standard_days
    if row.kind in ("answered_private", "download_link"):
        link = session.get(RequestRelease, p.get("link"))
        p["download_url"] = f"{base}/requests/download/{download_token(req, link, settings)}"
        p["days"] = int(float(settings.get("REQUEST_DOWNLOAD_DAYS", 14)))
    if row.kind in ("reply", "reminder", "overdue"):
        p["staff_url"] = f"{base}/staff/requests/{req.id}"
        p["assignee"] = req.assigned_to.label if req.assigned_to else N_("nobody")
    return p


def deliver(session: Session, settings: dict[str, Any], *, request_id: int | None = None,
            now: datetime | None = None) -> tuple[int, int]:
    """Send queued mail (of one request, or all); returns (sent, failed). A failure is kept in
    the row and retried later (``publisher requests remind``), up to a few attempts."""
    now = _now(now)
    q = select(RequestMail).where(RequestMail.sent_at.is_(None),
                                  RequestMail.attempts < MAX_MAIL_ATTEMPTS)
    if request_id is not None:
        q = q.where(RequestMail.request_id == request_id)
    sent = failed = 0
    for row in session.scalars(q.order_by(RequestMail.id)).all():
        req = session.get(DataRequest, row.request_id) if row.request_id else None
        if row.kind == "confirm" and (req is None or req.state != RECEIVED):
            row.sent_at, row.error = now, "not needed any more"
            continue
        # claim the row (a concurrent sender that read the same attempts loses: sent once)
        claimed = session.execute(
            update(RequestMail).where(RequestMail.id == row.id,
                                      RequestMail.attempts == row.attempts,
                                      RequestMail.sent_at.is_(None))
            .values(attempts=row.attempts + 1).execution_options(synchronize_session=False))
        if claimed.rowcount != 1:
            continue
        set_committed_value(row, "attempts", row.attempts + 1)
        try:
            subject, body = mail.render(row.kind, row.language,
                                        _mail_params(session, row, req, settings, now))
            mail.send(settings, row.to_addr, subject, body)
        except mail.MailError as e:
            row.error = str(e)[:1000]
            failed += 1
            continue
        row.sent_at, row.error = now, None
        sent += 1
    session.flush()
    return sent, failed


def mail_failed(session: Session, req: DataRequest, kind: str) -> bool:
    """Whether the latest email of ``kind`` for the request is still unsent after a try."""
    row = session.scalar(select(RequestMail).where(RequestMail.request_id == req.id,
                                                   RequestMail.kind == kind)
                         .order_by(RequestMail.id.desc()).limit(1))
    return row is not None and row.sent_at is None and row.attempts > 0


# -- reminders -------------------------------------------------------------------------------------

@dataclass
class RemindResult:
    reminded: int = 0
    overdue: int = 0
    no_address: int = 0
    sent: int = 0
    failed: int = 0


def remind(session: Session, settings: dict[str, Any], *, now: datetime | None = None
           ) -> RemindResult:
    """At 75% of the time, remind the assignee (the head of unit when nobody is assigned or the
    assignee gave no email); when overdue, tell the head of unit (``HEAD_OF_UNIT_EMAIL``).
    Each at most once per request; then sends every queued email."""
    now = _now(now)
    today = local_date(now, settings)
    head = mail.normalise_address(str(settings.get("HEAD_OF_UNIT_EMAIL") or ""))
    default_lang = str(settings.get("DEFAULT_LANGUAGE") or "kk")
    out = RemindResult()
    rows = session.scalars(select(DataRequest).where(DataRequest.state.in_(OPEN_STATES),
                                                     DataRequest.deadline.is_not(None))).all()
    for req in rows:
        start = local_date(req.confirmed_at, settings)
        days = req.standard_days or int(settings.get("REQUEST_STANDARD_DAYS", 20))
        if req.overdue_notified_at is None and today > req.deadline:
            if head:
                queue_mail(session, req, "overdue", now=now, to=head, lang=default_lang)
                req.overdue_notified_at = now
                out.overdue += 1
            else:
                out.no_address += 1
        elif (req.reminded_at is None and today <= req.deadline
              and working_days_between(start, today) >= math.ceil(REMIND_AT * days)):
            to = staff_email(session, req.assigned_to_id) or head
            if to:
                lang = _staff_lang(req.assigned_to, default_lang) if to != head else default_lang
                queue_mail(session, req, "reminder", now=now, to=to, lang=lang)
                req.reminded_at = now
                out.reminded += 1
            else:
                out.no_address += 1
    out.sent, out.failed = deliver(session, settings, now=now)
    return out


# -- lists: the staff's queue, the public register ---------------------------------------------------

@dataclass
class QueueRow:
    req: DataRequest
    overdue: bool
    days_left: int | None  # working days to the deadline (negative: late by)


def staff_queue(session: Session, actor: User, settings: dict[str, Any], *,
                now: datetime | None = None) -> list[QueueRow]:
    """Open requests, the nearest deadline first (overdue ones on top)."""
    _require_staff(actor)
    today = local_date(_now(now), settings)
    rows = session.scalars(select(DataRequest).where(DataRequest.state.in_(OPEN_STATES))).all()
    out = []
    for req in rows:
        left = None
        if req.deadline is not None:
            left = (working_days_between(today, req.deadline) if req.deadline >= today
                    else -working_days_between(req.deadline, today))
        out.append(QueueRow(req, is_overdue(req, today), left))
    out.sort(key=lambda r: (r.req.deadline or date.max, r.req.id))
    return out


def recent_closed(session: Session, actor: User, limit: int = 50) -> list[DataRequest]:
    _require_staff(actor)
    return list(session.scalars(select(DataRequest).where(DataRequest.state.in_(FINAL_STATES))
                                .order_by(DataRequest.responded_at.desc()).limit(limit)))


@dataclass
class RegisterRow:
    ref: int
    title: str
    requester_kind: str
    received: date
    deadline: date | None
    responded: date | None
    outcome: str  # answered | declined | open | overdue
    on_time: bool | None
    delivery: str | None
    public_url: str | None
    decline_reason: str | None


@dataclass
class QuarterFigure:
    quarter: str
    received: int = 0
    on_time: int = 0
    late: int = 0
    open_in_time: int = 0
    open_overdue: int = 0

    @property
    def decided(self) -> int:
        return self.on_time + self.late + self.open_overdue

    @property
    def share(self) -> float | None:
        """Answered (or declined) within the standard, of those whose outcome is known."""
        return self.on_time / self.decided if self.decided else None


def _quarter(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def register(session: Session, settings: dict[str, Any], *, now: datetime | None = None
             ) -> tuple[list[RegisterRow], list[QuarterFigure]]:
    """The public register (no personal data: no name, organisation, address or free text but
    the title) and, per quarter of confirmation, the share answered within the standard."""
    today = local_date(_now(now), settings)
    rows = session.scalars(select(DataRequest).where(DataRequest.confirmed_at.is_not(None))
                           .order_by(DataRequest.confirmed_at.desc())).all()
    out: list[RegisterRow] = []
    quarters: dict[str, QuarterFigure] = defaultdict(lambda: QuarterFigure(""))
    base = str(settings.get("PUBLIC_BASE_URL", "")).rstrip("/")
    for req in rows:
        received = local_date(req.confirmed_at, settings)
        responded = local_date(req.responded_at, settings) if req.responded_at else None
        q = quarters[_quarter(received)]
        q.quarter = _quarter(received)
        q.received += 1
        on_time = None
        if req.state in FINAL_STATES and responded is not None:
            on_time = req.deadline is None or responded <= req.deadline
            outcome = req.state
            if on_time:
                q.on_time += 1
            else:
                q.late += 1
        elif is_overdue(req, today):
            outcome, on_time = "overdue", False
            q.open_overdue += 1
        else:
            outcome = "open"
            q.open_in_time += 1
        public = next((ln for ln in req.links if ln.mode == PUBLIC), None)
        out.append(RegisterRow(
            ref=req.id, title=req.register_title, requester_kind=req.requester_kind,
            received=received, deadline=req.deadline, responded=responded, outcome=outcome,
            on_time=on_time, delivery=req.delivery,
            public_url=(f"{base}/v/{public.release.series}/{public.release.version}"
                        if public is not None else None),
            decline_reason=req.decline_reason))
    figures = sorted(quarters.values(), key=lambda f: f.quarter, reverse=True)
    return out, figures


# -- the publication history ---------------------------------------------------------------------

def private_answers_for_source(session: Session, source_id: str) -> list[Release]:
    """Releases of ``source_id`` delivered privately to a requester: not public, but out of the
    office all the same, so the protection against the publication history must count them.
    (The release as linked: ``RequestRelease.content_rev`` is the revision that was delivered.)"""
    from .budget import normalise_source_id

    try:
        key = normalise_source_id(source_id)
    except ValueError:
        return []
    rows = session.scalars(
        select(Release).join(RequestRelease, RequestRelease.release_id == Release.id)
        .join(DataRequest, DataRequest.id == RequestRelease.request_id)
        .where(RequestRelease.mode == PRIVATE, DataRequest.state == ANSWERED)
        .order_by(Release.id)).unique().all()
    out = []
    for r in rows:
        raw = (r.spec or {}).get("source_id")
        try:
            if raw is not None and normalise_source_id(raw) == key:
                out.append(r)
        except ValueError:
            continue
    return out
