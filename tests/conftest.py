"""Shared fixtures: databases (SQLite always; PostgreSQL when scripts/test.sh started it)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "config" / "sample"
BENCH = ROOT.parent / "shared" / "bench"


def pg_admin_url() -> str | None:
    return os.environ.get("ASHYQ_TEST_PG_URL")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ashyq.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards. Fails (not skips) in CI if unreachable."""
    base = pg_admin_url()
    if not base:
        if os.environ.get("CI"):
            pytest.fail("ASHYQ_TEST_PG_URL is not set: run the suite with scripts/test.sh")
        pytest.skip("PostgreSQL not started: run the suite with scripts/test.sh")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'create database "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.execute(text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each store test runs on SQLite and on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")
