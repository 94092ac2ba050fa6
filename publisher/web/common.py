"""What the blueprints share: the request's DB session, the signed-in user (session or API token),
login rate limiting, and a refusal's text in the reader's language.

Views only translate HTTP to workflow/service calls; the rules live in :mod:`publisher.workflow`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app, g, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..workflow_models import ApiToken, LoginAttempt, User, utcnow

LOGIN_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_ADDRESS = 20


def db() -> Session:
    """The request's session (closed at teardown; views commit explicitly)."""
    if "ashyq_db" not in g:
        g.ashyq_db = current_app.extensions["ashyq.sessions"]()
    return g.ashyq_db


def close_db(_exc: BaseException | None = None) -> None:
    s = g.pop("ashyq_db", None)
    if s is not None:
        s.close()


def settings() -> dict[str, Any]:
    return dict(current_app.config)


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:1000]


# -- login rate limiting ---------------------------------------------------------------------------

def client_address() -> str:
    return (request.remote_addr or "?")[:64]


def login_blocked(session: Session, username: str, address: str) -> bool:
    """True when too many wrong passwords came for this user name or from this address lately."""
    since = utcnow() - LOGIN_WINDOW
    base = select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.success.is_(False), LoginAttempt.at >= since)
    by_user = session.scalar(base.where(LoginAttempt.username == username[:64])) or 0
    by_addr = session.scalar(base.where(LoginAttempt.address == address)) or 0
    return by_user >= MAX_FAILURES_PER_USER or by_addr >= MAX_FAILURES_PER_ADDRESS


def authenticate(session: Session, username: str, password: str) -> tuple[User | None, str]:
    """Check a password, recording the attempt; returns (user, "") or (None, reason code)."""
    username = (username or "").strip()[:64]
    address = client_address()
    if login_blocked(session, username, address):
        return None, "rate_limited"
    user = session.scalar(select(User).where(User.username == username))
    ok = user is not None and user.is_active and user.check_password(password or "")
    session.add(LoginAttempt(username=username, address=address, success=ok, at=utcnow()))
    session.commit()
    return (user, "") if ok else (None, "bad_credentials")


def token_user(session: Session) -> User | None:
    """The user of a valid ``Authorization: Bearer`` token, else None."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    clear = header.removeprefix("Bearer ").strip()
    if not clear or len(clear) > 200:
        return None
    tok = session.scalar(select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(clear),
                                                ApiToken.revoked_at.is_(None)))
    if tok is None or not tok.user.is_active:
        return None
    tok.last_used_at = utcnow()
    session.commit()
    return tok.user


def localized(e: Exception) -> str:
    """A refusal in the reader's language where its text is in the catalogue (workflow
    refusals), else its one-line text."""
    from flask_babel import gettext

    from ..workflow import TRANSLATED_PARAMS, WorkflowError

    if not isinstance(e, WorkflowError):
        return one_line(e)
    params = {k: (gettext(v) if k in TRANSLATED_PARAMS and isinstance(v, str) else v)
              for k, v in e.params.items()}
    return gettext(e.template, **params) if params else gettext(e.template)
