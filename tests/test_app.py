"""App factory, settings from config/ + environment, and the store on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from publisher.app import create_app
from publisher.db import make_engine, session_factory, transaction, upgrade
from publisher.models import LocalPublication
from publisher.settings import SettingsError, load_settings, redacted


def test_healthz_answers_with_the_database_state(sqlite_url: str):
    app = create_app({"DATABASE_URL": sqlite_url, "SECRET_KEY": "test"})
    r = app.test_client().get("/healthz")
    assert r.status_code == 200
    assert r.json == {"status": "ok", "database": "ok"}
    broken = create_app({"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none", "SECRET_KEY": "t"})
    r = broken.test_client().get("/healthz")
    assert r.status_code == 503 and r.json["database"] == "unavailable"


def test_environment_overrides_defaults_and_secrets_are_redacted():
    s = load_settings(environ={"ASHYQ_EPSILON_CEILING": "2.5", "CKAN_URL": "http://127.0.0.1:5000",
                               "CKAN_API_TOKEN": "tok", "ASHYQ_DEFAULT_LANGUAGE": "ru",
                               "ASHYQ_SECRET_KEY": "a-secret-from-the-environment"})
    assert s["EPSILON_CEILING"] == 2.5
    assert s["CKAN_URL"] == "http://127.0.0.1:5000"
    assert s["DEFAULT_LANGUAGE"] == "ru"
    r = redacted(s)
    assert r["CKAN_API_TOKEN"] == "***" and r["SECRET_KEY"] == "***"
    assert load_settings(environ={})["DATABASE_URL"].startswith("sqlite:////")


def test_production_needs_a_secret_key():
    with pytest.raises(SettingsError, match="ASHYQ_SECRET_KEY"):
        load_settings(environ={"ASHYQ_ENV": "production"})


def test_migrations_create_the_schema_and_rows_commit_atomically(db_url: str):
    upgrade(db_url)
    upgrade(db_url)  # idempotent
    engine = make_engine(db_url)
    assert "local_publication" in inspect(engine).get_table_names()
    factory = session_factory(engine)
    with transaction(factory) as s:
        s.add(LocalPublication(series="a", version="1.0.0", path="/x", sha256="0" * 64))
    with pytest.raises(Exception), transaction(factory) as s:  # noqa: B017 - unique violation
        s.add(LocalPublication(series="b", version="1.0.0", path="/y", sha256="1" * 64))
        s.add(LocalPublication(series="a", version="1.0.0", path="/z", sha256="2" * 64))
    with factory() as s:
        assert [p.series for p in s.query(LocalPublication).all()] == ["a"]
    engine.dispose()
