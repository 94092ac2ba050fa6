"""What the blueprints share: the request's DB session, the signed-in user (session or API token),
login rate limiting, and a refusal's text in the reader's language.

Views only translate HTTP to workflow/service calls; the rules live in :mod:`publisher.workflow`.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request
from sqlalchemy.orm import Session

from ..workflow_models import User


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


def authenticate(session: Session, username: str, password: str) -> tuple[User | None, str]:
    """Check a password behind the login back-off (:func:`publisher.web.auth.authenticate`)."""
    from .auth import authenticate as check

    return check(session, username, password)


def token_user(session: Session) -> User | None:
    """The user of a valid ``Authorization: Bearer`` token (:func:`publisher.web.auth.token_user`:
    not revoked, not expired, its user active), else None."""
    from .auth import token_user as bearer_user

    return bearer_user(session)


def localized(e: Exception) -> str:
    """A refusal in the reader's language: workflow refusals by their template and translated
    words, every other :class:`~disclosure.errors.AshyqError` by
    :func:`disclosure.errors.localized` (its ``R_`` template, words and location)."""
    from flask_babel import gettext

    from ..workflow import TRANSLATED_PARAMS, WorkflowError

    if not isinstance(e, WorkflowError):
        from disclosure.errors import localized as in_language

        return in_language(e, gettext)  # every other refusal: its template in the catalogue
    params = {k: (gettext(v) if k in TRANSLATED_PARAMS and isinstance(v, str) else v)
              for k, v in e.params.items()}
    return gettext(e.template, **params) if params else gettext(e.template)
