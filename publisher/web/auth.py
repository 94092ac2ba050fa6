"""Sign-in, sessions and the administrator's account actions.

- :func:`authenticate` checks a password behind the per-account and per-address back-off of
  :mod:`publisher.security_models` (never a lock), and takes the same time for an unknown user
  name as for a known one (a dummy password hash is checked).
- :func:`sign_in` / :func:`sign_out` start and end a server-side session; :func:`load_user`
  (Flask-Login's user loader) accepts a session cookie only while its session lives.
- :func:`safe_next` lets ``?next=`` lead only to a relative path of this site.
- The ``auth`` blueprint: an administrator deactivates or reactivates a user and revokes anyone's
  API token (``/admin/users/...``).
- :class:`SessionInterface` marks the session cookie ``Secure`` when the settings say so, and on
  any request that came over HTTPS.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .. import security_models as sec
from ..workflow import WorkflowError
from ..workflow_models import ApiToken, LoginAttempt, User, utcnow
from .common import client_address, db, localized, settings

bp = Blueprint("auth", __name__)

SESSION_KEY = "_sid"


# -- passwords and throttling --------------------------------------------------------------------

@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash made like the real ones, checked for unknown users so they answer as slowly."""
    return generate_password_hash("no such user: the answer takes as long as for a real one")


def authenticate(session: Session, username: str, password: str) -> tuple[User | None, str]:
    """Check a password, recording the attempt; returns (user, "") or (None, reason code).

    ``rate_limited`` means: try again in ``g.login_retry_after`` seconds (a short back-off, the
    password was not checked)."""
    username = (username or "").strip()[:64]
    address = client_address()
    slot = sec.reserve(session, username, address, settings())
    if not slot.allowed:
        g.login_retry_after = slot.retry_after
        return None, "rate_limited"
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        check_password_hash(_dummy_hash(), password or "")
        ok = False
    else:
        ok = user.check_password(password or "") and user.is_active
    session.add(LoginAttempt(username=username, address=address, success=ok, at=utcnow()))
    if ok:
        sec.succeeded(session, username, address, slot)
    session.commit()
    return (user, "") if ok else (None, "bad_credentials")


def retry_after() -> int:
    return int(g.get("login_retry_after", 0) or 0)


# -- sessions ------------------------------------------------------------------------------------

def sign_in(user: User) -> None:
    """A fresh session for ``user`` (nothing of the anonymous one is kept but its language)."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    clear = sec.start_session(db(), user, client_address())
    db().commit()
    login_user(user)
    session[SESSION_KEY] = clear


def sign_out() -> None:
    sec.end_session(db(), session.get(SESSION_KEY))
    db().commit()
    lang = session.get("lang")
    logout_user()
    session.clear()
    if lang:
        session["lang"] = lang


def load_user(user_id: str) -> User | None:
    """Flask-Login's user loader: the user of a live server-side session, else None."""
    try:
        uid = int(user_id)
    except (TypeError, ValueError):
        return None
    live = sec.live_session(db(), session.get(SESSION_KEY), uid, settings())
    if live is None:
        session.pop(SESSION_KEY, None)
        session.pop("_user_id", None)
        return None
    return db().get(User, uid)


def token_user(session_: Session) -> User | None:
    """The user of a valid (not revoked, not expired, user active) ``Authorization: Bearer``."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    clear = header.removeprefix("Bearer ").strip()
    if not clear or len(clear) > 200:
        return None
    tok = session_.scalar(select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(clear),
                                                 ApiToken.revoked_at.is_(None)))
    if tok is None or not sec.token_valid(tok, settings()):
        return None
    tok.last_used_at = utcnow()
    session_.commit()
    return tok.user


def safe_next(value: str | None) -> str | None:
    """``value`` when it is a relative path on this site, else None: no scheme, no host, no
    ``//`` or ``/\\`` (browsers read both as another host), no backslash, no control character
    or white space (browsers drop tabs and newlines, so ``/<TAB>/evil`` is ``//evil``)."""
    if not value or len(value) > 2000 or not value.startswith("/"):
        return None
    if any(c == "\\" or ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        return None
    if value.startswith("//"):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, ``Secure`` also on any request that came over HTTPS."""

    def get_cookie_secure(self, app: Any) -> bool:
        if app.config.get("SESSION_COOKIE_SECURE"):
            return True
        return bool(app.config.get("ASHYQ_COOKIE_SECURE_AUTO") and has_request_context()
                    and request.is_secure)


def cookie_secure(config: dict[str, Any]) -> tuple[bool, bool]:
    """(always Secure, Secure on HTTPS requests) from ``COOKIE_SECURE``: true, false or auto
    (production or an https public base URL: always)."""
    raw = str(config.get("COOKIE_SECURE", "auto")).strip().lower()
    if raw in ("true", "1", "yes", "on"):
        return True, True
    if raw in ("false", "0", "no", "off"):
        return False, False
    always = (config.get("ENV") == "production"
              or str(config.get("PUBLIC_BASE_URL") or "").startswith("https://"))
    return always, True


# -- the administrator's actions -----------------------------------------------------------------

def _admin() -> None:
    if not current_user.has_role("admin"):
        abort(403)


def _checked_form() -> None:
    from .forms import EmptyForm

    if not EmptyForm().validate_on_submit():
        abort(400)


@bp.route("/admin/users/<int:user_id>/deactivate", methods=["POST"])
@login_required
def deactivate_user(user_id: int) -> Any:
    return _set_active(user_id, False)


@bp.route("/admin/users/<int:user_id>/activate", methods=["POST"])
@login_required
def activate_user(user_id: int) -> Any:
    return _set_active(user_id, True)


def _set_active(user_id: int, active: bool) -> Any:
    _admin()
    _checked_form()
    u = db().get(User, user_id) if 0 < user_id < 2**31 else None
    if u is None:
        abort(404)
    try:
        sec.set_active(db(), current_user, u, active)
        db().commit()
        flash(_("User %(name)s reactivated.", name=u.username) if active else
              _("User %(name)s deactivated: their sessions and API tokens stopped working.",
                name=u.username), "ok")
    except WorkflowError as e:
        db().rollback()
        flash(_("Refused: %(reason)s", reason=localized(e)), "error")
    return redirect(url_for("ui.users"))


@bp.route("/admin/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def admin_revoke_token(token_id: int) -> Any:
    _admin()
    _checked_form()
    tok = db().get(ApiToken, token_id) if 0 < token_id < 2**31 else None
    if tok is None:
        abort(404)
    sec.revoke_token(db(), current_user, tok)
    db().commit()
    flash(_("The token %(prefix)s… of %(name)s was revoked.", prefix=tok.prefix,
            name=tok.user.username), "ok")
    return redirect(url_for("ui.users"))


def live_tokens(user_ids: list[int] | None = None) -> dict[int, list[ApiToken]]:
    """Unrevoked, unexpired tokens by user id (for the account and users pages)."""
    q = select(ApiToken).where(ApiToken.revoked_at.is_(None)).order_by(ApiToken.created_at)
    if user_ids is not None:
        q = q.where(ApiToken.user_id.in_(user_ids))
    out: dict[int, list[ApiToken]] = {}
    conf = settings()
    for tok in db().scalars(q):
        if sec.token_valid(tok, conf):
            out.setdefault(tok.user_id, []).append(tok)
    return out


def expires_at(tok: ApiToken) -> Any:
    return sec.token_expires_at(tok, current_app.config)


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"token_expires_at": expires_at}
