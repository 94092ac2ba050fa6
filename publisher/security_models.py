"""Security tables and the account rules that use them: server-side sessions (revocable),
login throttling, the password policy, deactivation of users and revocation of API tokens.

Guarantees:
- A signed-in browser holds only a random session id; the store keeps its SHA-256
  (:class:`UserSession`). A session ends at sign-out, after ``SESSION_IDLE_MINUTES`` unused,
  ``SESSION_MAX_HOURS`` after sign-in, and at once when its user is deactivated.
- Wrong passwords slow an account down, never lock it: after ``LOGIN_FREE_FAILURES`` failures
  each further attempt must wait twice as long as the one before, at most
  ``LOGIN_MAX_DELAY_SECONDS``; the right password then works. Attempts are counted before the
  password is checked, by a compare-and-swap on the account's :class:`LoginThrottle` row, so
  parallel tries cannot outrun the count. An address that fails often is slowed down the same
  way, except for the accounts that signed in successfully from it before (so a noisy neighbour
  behind the same NAT cannot keep the administrator out).
- Passwords need ``PASSWORD_MIN_LENGTH`` characters, at least 5 different ones, must not be or
  contain the user name, and must not be a common password
  (``config/security/common-passwords.txt``) or one plus digits/punctuation or repeated.
- A deactivated user's sessions end and API tokens are revoked in the same transaction; API
  tokens expire ``TOKEN_LIFETIME_DAYS`` after issue.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import Base
from .settings import config_path
from .workflow import WorkflowError, audit
from .workflow_models import ApiToken, LoginAttempt, User, UtcDateTime, as_utc, utcnow

LOGIN_WINDOW = timedelta(minutes=15)   # quiet this long and an account's or address's count resets
KNOWN_ADDRESS_DAYS = 30                # an account that signed in from an address is known there
TOUCH_EVERY = timedelta(seconds=60)    # how often a session's last use is written


class UserSession(Base):
    """One signed-in browser session; only the SHA-256 of its random id is stored."""

    __tablename__ = "user_session"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"),
                                         index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    address: Mapped[str] = mapped_column(String(64), default="")


class LoginThrottle(Base):
    """Back-off state of one account (``user:NAME``) or one client address (``addr:IP``)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


def _hash(clear: str) -> str:
    return hashlib.sha256(clear.encode("utf-8")).hexdigest()


# -- sessions -------------------------------------------------------------------------------------

def start_session(db: Session, user: User, address: str = "") -> str:
    """A new session for ``user``; returns the clear id for the (signed) cookie."""
    clear = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(UserSession(id_hash=_hash(clear), user_id=user.id, created_at=now, last_seen_at=now,
                       address=address[:64]))
    return clear


def live_session(db: Session, clear: str | None, user_id: int, settings: dict[str, Any],
                 now: datetime | None = None) -> UserSession | None:
    """The session ``clear`` of ``user_id`` when it is still valid (not ended, not idle too long,
    not too old, its user active), else None. Its last use is written at most once a minute."""
    if not clear or len(clear) > 100:
        return None
    now = now or utcnow()
    row = db.get(UserSession, _hash(clear))
    if row is None or row.user_id != user_id or row.ended_at is not None:
        return None
    idle = timedelta(minutes=float(settings.get("SESSION_IDLE_MINUTES") or 720))
    longest = timedelta(hours=float(settings.get("SESSION_MAX_HOURS") or 24))
    reason = None
    if as_utc(row.last_seen_at) + idle < now:
        reason = "idle"
    elif as_utc(row.created_at) + longest < now:
        reason = "expired"
    user = db.get(User, user_id)
    if user is None or not user.is_active:
        reason = "deactivated"
    if reason:
        row.ended_at, row.end_reason = now, reason
        db.commit()
        return None
    if as_utc(row.last_seen_at) + TOUCH_EVERY < now:
        row.last_seen_at = now
        db.commit()
    return row


def end_session(db: Session, clear: str | None, reason: str = "logout") -> None:
    if clear and len(clear) <= 100:
        db.execute(update(UserSession).where(UserSession.id_hash == _hash(clear),
                                             UserSession.ended_at.is_(None))
                   .values(ended_at=utcnow(), end_reason=reason))


def end_user_sessions(db: Session, user_id: int, reason: str) -> int:
    """End every open session of a user; returns how many."""
    res = db.execute(update(UserSession).where(UserSession.user_id == user_id,
                                               UserSession.ended_at.is_(None))
                     .values(ended_at=utcnow(), end_reason=reason))
    return res.rowcount or 0


# -- users and tokens ---------------------------------------------------------------------------

class AccountRefused(WorkflowError):
    code, status = "refused", 409


def set_active(db: Session, actor: User | None, user: User, active: bool) -> None:
    """Deactivate (its sessions end, its tokens are revoked, at once) or reactivate a user."""
    if not active:
        if actor is not None and actor.id == user.id:
            raise AccountRefused("you cannot deactivate yourself")
        if user.has_role("admin") and user.active:
            others = db.scalars(select(User).where(User.active.is_(True),
                                                   User.id != user.id)).all()
            if not any(o.has_role("admin") for o in others):
                raise AccountRefused("the last active administrator cannot be deactivated")
    if bool(user.active) == active:
        return
    user.active = active
    detail: dict[str, Any] = {"user": user.username}
    if not active:
        detail["sessions_ended"] = end_user_sessions(db, user.id, "deactivated")
        res = db.execute(update(ApiToken).where(ApiToken.user_id == user.id,
                                                ApiToken.revoked_at.is_(None))
                         .values(revoked_at=utcnow()))
        detail["tokens_revoked"] = res.rowcount or 0
    audit(db, actor, "user_activated" if active else "user_deactivated", detail=detail)


def revoke_token(db: Session, actor: User | None, tok: ApiToken) -> None:
    """Revoke an API token (its owner's or, for an administrator, anyone's); audited."""
    if tok.revoked_at is not None:
        return
    tok.revoked_at = utcnow()
    audit(db, actor, "token_revoked", detail={"prefix": tok.prefix, "user": tok.user.username})


def token_expires_at(tok: ApiToken, settings: dict[str, Any]) -> datetime:
    days = float(settings.get("TOKEN_LIFETIME_DAYS") or 90)
    return as_utc(tok.created_at) + timedelta(days=days)


def token_valid(tok: ApiToken, settings: dict[str, Any], now: datetime | None = None) -> bool:
    return (tok.revoked_at is None and tok.user.is_active
            and (now or utcnow()) < token_expires_at(tok, settings))


# -- passwords ----------------------------------------------------------------------------------

class PasswordRejected(WorkflowError):
    code, status = "weak_password", 422


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    path = config_path("security", "common-passwords.txt")
    lines = path.read_text("utf-8").splitlines()
    return frozenset(ln.strip() for ln in lines if ln.strip() and not ln.startswith("#"))


_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")


def _is_common(password: str) -> bool:
    low = password.lower()
    common = common_passwords()
    if low in common:
        return True
    core = _EDGES.sub("", low)  # "Password2024!" -> "password"
    if len(core) >= 3 and core in common:
        return True
    for n in range(1, len(low) // 2 + 1):  # "qwertyqwerty", "abcabcabcabc"
        if len(low) % n == 0 and low[:n] * (len(low) // n) == low and (
                n < 4 or low[:n] in common or _EDGES.sub("", low[:n]) in common):
            return True
    return False


def password_problem(password: str, username: str, min_length: int = 12) -> None:
    """Refuse a password a person chose (raises :class:`PasswordRejected`, in the UI's
    languages)."""
    password = password or ""
    if len(password) < min_length:
        raise PasswordRejected("the password needs at least %(n)s characters", n=min_length)
    if len(password) > 1000:
        raise PasswordRejected("the password is longer than %(n)s characters", n=1000)
    if len(set(password)) < 5:
        raise PasswordRejected("the password needs at least 5 different characters")
    name = (username or "").strip().lower()
    if name and (name in password.lower() or password.lower() in name):
        raise PasswordRejected("the password must not contain the user name")
    if _is_common(password):
        raise PasswordRejected("the password is too common; choose a longer phrase of "
                               "unrelated words")


# -- login throttling ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Slot:
    """The answer of :func:`reserve`: allowed now, or wait ``retry_after`` seconds."""

    allowed: bool
    retry_after: int = 0
    address_charged: bool = False


def _delay(failures: int, free: int, cap: float) -> float:
    if failures <= free:
        return 0.0
    return float(min(cap, 2 ** (failures - free - 1)))


def _take(db: Session, key: str, free: int, cap: float, now: datetime) -> Slot:
    """Count one attempt against ``key`` before the password is checked (compare-and-swap on the
    row's version; a lost race is retried a few times, then answered as 'wait a second')."""
    for _ in range(5):
        row = db.get(LoginThrottle, key, populate_existing=True)
        if row is None:
            _insert_missing(db, key, now)
            continue
        next_at, updated = as_utc(row.next_at), as_utc(row.updated_at)
        if next_at > now:
            return Slot(False, max(1, math.ceil((next_at - now).total_seconds())))
        failures = 1 if updated + LOGIN_WINDOW < now else row.failures + 1
        res = db.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == key, LoginThrottle.version == row.version)
            .values(failures=failures, next_at=now + timedelta(seconds=_delay(failures, free, cap)),
                    updated_at=now, version=row.version + 1)
            .execution_options(synchronize_session=False))
        if res.rowcount == 1:
            db.commit()
            return Slot(True)
        db.rollback()
    return Slot(False, 1)


def _insert_missing(db: Session, key: str, now: datetime) -> None:
    """Create the throttle row of ``key`` unless a parallel request just did (no error then)."""
    if db.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.execute(insert(LoginThrottle).values(key=key, failures=0, next_at=now, updated_at=now,
                                            version=0).on_conflict_do_nothing())
    db.commit()


def known_address(db: Session, username: str, address: str, now: datetime) -> bool:
    """Did this account sign in successfully from this address lately?"""
    since = now - timedelta(days=KNOWN_ADDRESS_DAYS)
    return db.scalar(select(LoginAttempt.id).where(
        LoginAttempt.username == username, LoginAttempt.address == address,
        LoginAttempt.success.is_(True), LoginAttempt.at >= since).limit(1)) is not None


def reserve(db: Session, username: str, address: str, settings: dict[str, Any]) -> Slot:
    """May this login attempt be checked now? Counts it against the account and (unless the
    account is known at this address) the address."""
    now = utcnow()
    cap = float(settings.get("LOGIN_MAX_DELAY_SECONDS") or 30)
    charged = not known_address(db, username, address, now)
    if charged:
        slot = _take(db, f"addr:{address}", int(settings.get("LOGIN_ADDRESS_FREE_FAILURES", 20)),
                     cap, now)
        if not slot.allowed:
            return slot
    slot = _take(db, f"user:{username}", int(settings.get("LOGIN_FREE_FAILURES", 3)), cap, now)
    return Slot(slot.allowed, slot.retry_after, charged)


def succeeded(db: Session, username: str, address: str, slot: Slot) -> None:
    """The right password: the account's count starts again, the address gets back the attempt
    it was charged; old throttle rows are pruned."""
    now = utcnow()
    if slot.address_charged:
        db.execute(update(LoginThrottle).where(LoginThrottle.key == f"addr:{address}",
                                               LoginThrottle.failures > 0)
                   .values(failures=LoginThrottle.failures - 1, version=LoginThrottle.version + 1)
                   .execution_options(synchronize_session=False))
    db.execute(update(LoginThrottle).where(LoginThrottle.key == f"user:{username}")
               .values(failures=0, next_at=now, updated_at=now,
                       version=LoginThrottle.version + 1)
               .execution_options(synchronize_session=False))
    db.execute(delete(LoginThrottle).where(LoginThrottle.updated_at < now - timedelta(days=1))
               .execution_options(synchronize_session=False))
