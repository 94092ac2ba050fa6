"""The privacy-budget ledger on SQLite and PostgreSQL: migration, charge, refusal, idempotency,
concurrency."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import OperationalError

from publisher.budget import BudgetExceeded, PrivacyBudget, charge, charges, status
from publisher.db import make_engine, session_factory, transaction, upgrade

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:55432/ashyq_test"


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        u = f"sqlite:///{tmp_path / 'budget.db'}"
        upgrade(u)
        yield u
        return
    base = os.environ.get("ASHYQ_TEST_PG_URL", PG_DEFAULT)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text("select 1"))
    except OperationalError as e:
        admin.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {base} is unreachable: {e.orig}")
        pytest.skip(f"PostgreSQL at {base} is unreachable (start it with scripts/pg-local.sh up)")
    name = f"budget_{uuid.uuid4().hex[:10]}"
    with admin.connect() as c:
        c.execute(text(f'create database "{name}"'))
    u = base.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(u)
        yield u
    finally:
        with admin.connect() as c:
            c.execute(text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


@pytest.fixture
def factory(url: str):
    engine = make_engine(url)
    yield session_factory(engine)
    engine.dispose()


def test_migration_creates_the_ledger(url):
    engine = make_engine(url)
    insp = inspect(engine)
    assert {"privacy_budget", "privacy_charge"} <= set(insp.get_table_names())
    uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints("privacy_charge")}
    assert ("source", "period", "release_key") in uniques
    with engine.connect() as c:
        heads = {r[0] for r in c.execute(text("select version_num from alembic_version"))}
    assert "0002" in heads
    engine.dispose()


def test_charge_spends_and_refuses_with_the_remaining_amount(factory):
    with transaction(factory) as s:
        st = charge(s, source="mvd", period="2024", epsilon=0.5, release_key="a" * 64,
                    total_budget=1.0)
    assert (st.spent, st.remaining, st.total, st.charged) == (0.5, 0.5, 1.0, True)
    with transaction(factory) as s:
        st = charge(s, source="mvd", period="2024", epsilon=0.25, release_key="b",
                    total_budget=1.0)
    assert st.spent == 0.75 and st.remaining == 0.25
    with pytest.raises(BudgetExceeded, match=r"only 0\.25 of 1 remains") as e, \
            transaction(factory) as s:
        charge(s, source="mvd", period="2024", epsilon=0.3, release_key="c", total_budget=1.0)
    assert e.value.remaining == 0.25
    with transaction(factory) as s:
        assert status(s, "mvd", "2024", 1.0).spent == 0.75
        assert [c.release_key for c in charges(s, "mvd", "2024")] == ["a" * 64, "b"]
        # other periods and sources have their own budgets
        assert status(s, "mvd", "2023", 1.0).spent == 0.0
        st = charge(s, source="stat", period="2024", epsilon=1.0, release_key="c",
                    total_budget=1.0)
        assert st.remaining == 0.0


def test_refusal_leaves_the_callers_transaction_usable(factory):
    with transaction(factory) as s:
        charge(s, source="x", period="p", epsilon=0.9, release_key="k1", total_budget=1.0)
        with pytest.raises(BudgetExceeded):
            charge(s, source="x", period="p", epsilon=0.2, release_key="k2", total_budget=1.0)
        charge(s, source="x", period="p", epsilon=0.1, release_key="k3", total_budget=1.0)
    with transaction(factory) as s:
        assert [c.release_key for c in charges(s, "x", "p")] == ["k1", "k3"]
        assert abs(status(s, "x", "p", 1.0).spent - 1.0) < 1e-12


def test_same_release_spends_nothing_again(factory):
    for _ in range(3):
        with transaction(factory) as s:
            st = charge(s, source="x", period="p", epsilon=0.4, release_key="same",
                        total_budget=1.0)
    assert st.spent == 0.4 and st.charged is False
    with transaction(factory) as s:
        assert len(charges(s, "x", "p")) == 1


def test_float_sums_fit_the_budget(factory):
    with transaction(factory) as s:
        for i in range(10):
            charge(s, source="x", period="p", epsilon=0.1, release_key=f"k{i}", total_budget=1.0)
        assert status(s, "x", "p", 1.0).remaining < 1e-9


def test_rollback_of_the_caller_undoes_the_charge(factory):
    with pytest.raises(RuntimeError), transaction(factory) as s:
        charge(s, source="x", period="p", epsilon=0.6, release_key="k", total_budget=1.0)
        raise RuntimeError("publishing failed")
    with transaction(factory) as s:
        assert status(s, "x", "p", 1.0).spent == 0.0


@pytest.mark.parametrize("kw, msg", [
    ({"epsilon": 0}, "epsilon"), ({"epsilon": float("nan")}, "epsilon"),
    ({"epsilon": "1"}, "epsilon"), ({"total_budget": -1}, "total_budget"),
    ({"source": ""}, "source"), ({"release_key": ""}, "release_key"),
])
def test_bad_arguments(factory, kw, msg):
    args = {"source": "x", "period": "p", "epsilon": 0.1, "release_key": "k", "total_budget": 1.0}
    args.update(kw)
    with pytest.raises(ValueError, match=msg), transaction(factory) as s:
        charge(s, **args)


def _race(factory, n: int, key_of) -> tuple[list, list]:
    ok, refused = [], []
    barrier = threading.Barrier(n)

    def work(i: int) -> None:
        barrier.wait()
        try:
            with transaction(factory) as s:
                ok.append(charge(s, source="race", period="p", epsilon=0.3,
                                 release_key=key_of(i), total_budget=1.0))
        except BudgetExceeded as e:
            refused.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return ok, refused


def test_concurrent_releases_never_overspend(factory):
    ok, refused = _race(factory, 8, lambda i: f"release-{i}")
    assert len(ok) == 3 and len(refused) == 5
    with transaction(factory) as s:
        row = s.query(PrivacyBudget).filter_by(source="race", period="p").one()
        assert abs(row.spent - 0.9) < 1e-12
        assert len(charges(s, "race", "p")) == 3


def test_concurrent_same_release_is_charged_once(factory):
    ok, refused = _race(factory, 6, lambda i: "one-output")
    assert len(ok) == 6 and not refused
    assert sum(st.charged for st in ok) == 1
    with transaction(factory) as s:
        assert abs(status(s, "race", "p", 1.0).spent - 0.3) < 1e-12


def test_models_match_the_migration(url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from publisher.db import Base

    engine = make_engine(url)
    with engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), Base.metadata)
    engine.dispose()
    mine = [d for d in diff if "privacy_" in repr(d)]
    assert mine == []
