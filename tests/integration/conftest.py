"""Fixtures for the integration tests against a real local CKAN 2.12 (scripts/ckan-local.sh).

The stack is started (or found running: a warm ``up`` takes well under a second) once per test
session. Set ``ASHYQ_SKIP_CKAN=1`` to skip these tests; nothing else skips them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from ckan_testlib import Ckan, ckan_up, make_package, table_csv


@pytest.fixture(scope="session")
def ckan() -> Ckan:
    if os.environ.get("ASHYQ_SKIP_CKAN") == "1":
        pytest.skip("ASHYQ_SKIP_CKAN=1: the local CKAN stack is not started")
    env = ckan_up()
    return Ckan(env["CKAN_URL"], env["CKAN_API_TOKEN"])


@pytest.fixture
def series() -> str:
    """A series slug unique to the test (the stack's data outlives test runs)."""
    return f"it-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def package_factory(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1000))

    def _make(series: str, version: str = "1.0.0", csv: bytes | None = None, **kw) -> Path:
        where = tmp_path / f"p{next(counter)}"
        where.mkdir()
        return make_package(where, series, version, csv if csv is not None else table_csv(), **kw)

    return _make
