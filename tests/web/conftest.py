"""Fixtures of the workflow tests: a migrated store (SQLite and PostgreSQL), users, a small table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from publisher.db import make_engine, session_factory, transaction, upgrade
from publisher.workflow import Upload
from publisher.workflow_models import User

# A small region x sex table; R02D01/F (3) and R01D02/M (2) are below min_frequency 5.
SPEC: dict[str, Any] = {
    "id": "test-series",
    "version": "1.0.0",
    "title": {"kk": "Сынақ кесте", "ru": "Тестовая таблица", "en": "Test table"},
    "dimensions": [
        {"name": "region", "hierarchy": {"_T": ["R01", "R02"], "R01": ["R01D01", "R01D02"],
                                         "R02": ["R02D01", "R02D02"]}},
        {"name": "sex", "codes": ["F", "M"]},
    ],
    "disclosure": {"min_frequency": 5, "secondary": "optimal"},
}
TABLE = (
    "region,sex,obs_value\n"
    "R01D01,F,40\nR01D01,M,37\n"
    "R01D02,F,21\nR01D02,M,2\n"
    "R02D01,F,3\nR02D01,M,33\n"
    "R02D02,F,52\nR02D02,M,48\n"
)
# The raw values of the cells below min_frequency: they must never appear in public output.
SECRET_CELLS = {("R01D02", "M"): 2, ("R02D01", "F"): 3}
SETTINGS: dict[str, Any] = {"EPSILON_CEILING": 5.0, "EPSILON_BUDGET": 4.0}


def upload(text: str = TABLE, name: str = "table.csv") -> Upload:
    return Upload(name, text.encode("utf-8"))


@pytest.fixture
def store(db_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade(db_url)
    engine = make_engine(db_url)
    yield session_factory(engine)
    engine.dispose()


def make_user(factory: sessionmaker[Session], username: str, *roles: str) -> int:
    with transaction(factory) as s:
        u = User(username=username, display_name=username.title(), password_hash="", active=True)
        u.set_password(f"{username}-password-1")
        u.set_roles(list(roles))
        s.add(u)
        s.flush()
        return u.id


@pytest.fixture
def users(store: sessionmaker[Session]) -> dict[str, int]:
    return {
        "prep": make_user(store, "prep", "preparer"),
        "prep2": make_user(store, "prep2", "preparer"),
        "appr": make_user(store, "appr", "approver"),
        "both": make_user(store, "both", "preparer", "approver"),
        "admin": make_user(store, "admin", "admin"),
    }


@pytest.fixture
def app(db_url: str, tmp_path, store, users):  # noqa: ANN001, ANN201
    from publisher.app import create_app

    app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "test", "WTF_CSRF_ENABLED": True,
                      "HUEY_IMMEDIATE": True, "PUBLISH_ENQUEUE": False,
                      "WORK_DIR": str(tmp_path / "work"), "OUTPUT_DIR": str(tmp_path / "out"),
                      "PUBLIC_BASE_URL": "http://127.0.0.1:5000", "CKAN_URL": None,
                      "CKAN_API_TOKEN": None})
    yield app
    app.extensions["ashyq.engine"].dispose()


def issue_token(store: sessionmaker[Session], user_id: int) -> str:
    from publisher.workflow_models import ApiToken

    with transaction(store) as s:
        tok, clear = ApiToken.issue(s.get(User, user_id), "test")
        s.add(tok)
    return clear


@pytest.fixture
def tokens(store, users) -> dict[str, str]:  # noqa: ANN001
    return {name: issue_token(store, uid) for name, uid in users.items()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
