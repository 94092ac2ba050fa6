"""The service's own store: SQLAlchemy 2 engine and sessions (SQLite embedded, PostgreSQL by URL).

The schema is owned by Alembic (``publisher/migrations``); ``upgrade(url)`` brings a database to
the newest revision of every branch (``heads``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


class Base(DeclarativeBase):
    """Declarative base of every table of the service."""


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits together or not at all."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


_factories: dict[str, sessionmaker[Session]] = {}
_upgraded: set[str] = set()


def _factory_for(url: str) -> sessionmaker[Session]:
    """The process's one engine and session factory for ``url``; the store is migrated
    (``upgrade``) once per process and URL, when a session of it first touches the database."""
    factory = _factories.get(url)
    if factory is None:
        factory = _factories[url] = session_factory(make_engine(url))

        @event.listens_for(factory, "after_begin")
        def _migrate_once(_session, _transaction, _connection):  # noqa: ANN001
            if url not in _upgraded:
                upgrade(url)
                _upgraded.add(url)

    return factory


@contextmanager
def session_scope(settings: Mapping[str, Any]) -> Iterator[Session]:
    """One unit of work of a command (CLI): a session on ``settings["DATABASE_URL"]`` whose work
    commits together when the block ends, or not at all.

    The engine is made once per process and URL, and migrations run at most once per process and
    URL, only if the work touches the store (protecting by suppression, for instance, never does).
    """
    with transaction(_factory_for(str(settings["DATABASE_URL"]))) as session:
        yield session


def upgrade(url: str) -> None:
    """Apply every Alembic migration (all branches) to the database at ``url``."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "heads")
