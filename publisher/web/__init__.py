"""The web layer: UI for preparers and approvers, the JSON API, and the public version pages.

``init_app(app)`` wires Flask-Babel (kk/ru/en), Flask-Login, CSRF protection on every form,
security headers, error pages (HTML for people, JSON ``{code, message}`` under ``/api``) and the
blueprints ``ui``, ``api`` and ``public``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask, jsonify, render_template, request, session
from flask_babel import Babel
from flask_babel import gettext as _
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from disclosure.errors import AshyqError
from disclosure.spec import LANGUAGES

from ..workflow_models import User
from .common import close_db

csrf = CSRFProtect()
login_manager = LoginManager()


def select_locale() -> str:
    langs = _languages()
    # ?lang= of this very request first: a refusal raised before the view (a CSRF failure in
    # CSRFProtect's before_request, a 413) is rendered before _lang_from_query stores it
    lang = request.args.get("lang") if request else None
    if lang in langs:
        return lang
    lang = session.get("lang")
    if lang in langs:
        return lang
    try:
        user_lang = getattr(current_user, "language", None)
    except Exception:  # noqa: BLE001 - outside a request with a user
        user_lang = None
    if user_lang in langs:
        return user_lang
    best = request.accept_languages.best_match(langs) if request else None
    from flask import current_app

    return best or current_app.config.get("DEFAULT_LANGUAGE", "kk")


def _languages() -> list[str]:
    from flask import current_app

    return list(current_app.config.get("LANGUAGES") or LANGUAGES)


def init_app(app: Flask) -> None:
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    # Flask's own defaults already hold these keys (SAMESITE None, SECURE False), so setdefault
    # never applied: the cookie flags are set outright (auth.cookie_secure reads COOKIE_SECURE).
    from .auth import SessionInterface, cookie_secure

    always_secure, secure_on_https = cookie_secure(app.config)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=always_secure, ASHYQ_COOKIE_SECURE_AUTO=secure_on_https,
        REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=always_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=float(app.config["SESSION_MAX_HOURS"])))
    app.session_interface = SessionInterface()
    app.config.setdefault("BABEL_DEFAULT_LOCALE", app.config.get("DEFAULT_LANGUAGE", "kk"))
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "UTC")
    Babel(app, locale_selector=select_locale)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "ui.login"
    login_manager.login_message = None
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def _load(user_id: str) -> User | None:
        from .auth import load_user  # a live server-side session of an active user, else None

        return load_user(user_id)

    app.teardown_appcontext(close_db)

    from .. import tasks

    tasks.configure(app.config)

    from .api import init_api
    from .public import bp as public_bp
    from .ui import bp as ui_bp

    app.register_blueprint(ui_bp)
    from .auth import bp as auth_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(public_bp)
    from .public import catalogue_bp  # the catalogue at / and the release calendar

    app.register_blueprint(catalogue_bp)
    from .requests import bp as requests_bp  # data requests: /requests, /staff/requests

    app.register_blueprint(requests_bp)
    from .sources import bp as sources_bp  # data sources and privacy budgets (admin)

    app.register_blueprint(sources_bp)
    init_api(app)

    @app.before_request
    def _lang_from_query() -> None:
        lang = request.args.get("lang")
        if lang and lang in _languages():
            session["lang"] = lang

    @app.context_processor
    def _ctx() -> dict[str, Any]:
        from flask_babel import get_locale

        return {"languages": _languages(), "current_lang": str(get_locale() or "kk")}

    @app.after_request
    def _headers(resp):  # noqa: ANN001, ANN202
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
        return resp

    @app.errorhandler(CSRFError)
    def _csrf(e: CSRFError):  # noqa: ANN202
        return _error(400, "csrf", _("The form has expired or its security token is invalid. "
                                     "Reload the page and try again."))

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(e: RequestEntityTooLarge):  # noqa: ANN202
        limit = app.config.get("MAX_CONTENT_LENGTH") or 0
        return _error(413, "too_large",
                      _("The upload is larger than the limit of %(mib)s MiB.",
                        mib=round(limit / 1048576, 1)))

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):  # noqa: ANN202
        data = getattr(e, "data", None)
        if isinstance(data, dict) and isinstance(data.get("messages"), dict):
            # webargs validation (422): name the first offending field
            detail = _first_problem(data["messages"])
            return _error(e.code or 422, "validation_error",
                          _("The request is not valid: %(detail)s", detail=detail),
                          errors=data["messages"])
        wait = getattr(e, "retry_after", None)
        if isinstance(wait, int) and e.code == 429:  # the login back-off: say when, in seconds
            resp = app.make_response(_error(429, _code_name(e), _(
                "Too many wrong passwords for this account or from this address. "
                "Wait %(n)s seconds and try again.", n=wait)))
            resp.headers["Retry-After"] = str(wait)
            return resp
        return _error(e.code or 500, _code_name(e), _http_message(e))

    @app.errorhandler(AshyqError)
    def _refused(e: AshyqError):  # noqa: ANN202
        # The one place a refusal becomes an answer: the API in English (clients parse it),
        # pages in the reader's language. Whatever the request wrote is rolled back.
        from .common import close_db, localized

        close_db()
        return _error(e.http_status, e.code, e.message if wants_json() else localized(e))

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):  # noqa: ANN202
        from .common import close_db

        close_db()
        app.logger.error("unexpected error %s on %s", type(e).__name__, request.path,
                         exc_info=e)
        return _error(500, "internal", _("Something went wrong on our side; it has been logged."))


def _first_problem(messages: Any, path: str = "") -> str:
    if isinstance(messages, dict):
        for k, v in messages.items():
            if k in ("json", "query", "form", "files", "headers", "cookies"):
                return _first_problem(v, path)
            return _first_problem(v, f"{path}.{k}" if path else str(k))
    if isinstance(messages, list) and messages:
        return _first_problem(messages[0], path)
    return f"{path}: {messages}" if path else str(messages)


def _code_name(e: HTTPException) -> str:
    return (e.name or "error").lower().replace(" ", "_").replace("'", "")


def _http_message(e: HTTPException) -> str:
    messages = {
        400: _("The request is not valid."),
        401: _("Sign in first."),
        403: _("You may not do this."),
        404: _("Not found."),
        405: _("This method is not allowed here."),
        422: _("The request could not be processed."),
        429: _("Too many attempts; wait half a minute and try again."),
    }
    return messages.get(e.code or 500, e.description or e.name)


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/api"


def _error(status: int, code: str, message: str, **extra: Any):  # noqa: ANN202
    if wants_json():
        return jsonify(code=code, message=message, **extra), status
    return render_template("error.html", status=status, message=message), status
