"""The Flask application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify

from .db import make_engine, session_factory
from .settings import load_settings, secret_key


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: settings from config/ + environment, overridden by ``config``."""
    settings = load_settings(config)
    app = Flask(__name__, instance_relative_config=False)
    app.config.update(settings)
    app.config["SECRET_KEY"] = secret_key(settings)  # development: the deployment's own
    app.config["MAX_CONTENT_LENGTH"] = settings["MAX_UPLOAD_BYTES"]
    engine = make_engine(settings["DATABASE_URL"])
    app.extensions["ashyq.engine"] = engine
    app.extensions["ashyq.sessions"] = session_factory(engine)

    @app.get("/healthz")
    def healthz():  # noqa: ANN202
        from sqlalchemy import text

        try:
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            db = "ok"
        except Exception:  # noqa: BLE001 - health reports, never raises
            db = "unavailable"
        code = 200 if db == "ok" else 503
        return jsonify(status="ok" if code == 200 else "degraded", database=db), code

    _register_blueprints(app)
    return app


def _register_blueprints(app: Flask) -> None:
    """Web UI, JSON API and public pages (registered when their modules exist)."""
    try:
        from .web import init_app
    except ModuleNotFoundError as e:
        if e.name != f"{__package__}.web":
            raise
        return
    init_app(app)
