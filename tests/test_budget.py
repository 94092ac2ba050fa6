"""The privacy-budget ledger on SQLite and PostgreSQL: migration, registered sources, charge
before the draw, refusal, idempotency of a draw's key, concurrency, the text of a release."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import OperationalError

from publisher.budget import (
    BudgetError,
    BudgetExceeded,
    PrivacyBudget,
    add_source,
    charge,
    charges,
    status,
)
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


# The sources the ledger tests charge, registered by an administrator with their total budgets.
SOURCES = {"mvd": 1.0, "stat": 1.0, "x": 1.0, "race": 1.0, "src": 4.0}


@pytest.fixture
def factory(url: str):
    engine = make_engine(url)
    f = session_factory(engine)
    with transaction(f) as s:
        for sid, total in SOURCES.items():
            add_source(s, sid, total)
    yield f
    engine.dispose()


def test_migration_creates_the_ledger(url):
    engine = make_engine(url)
    insp = inspect(engine)
    assert {"privacy_budget", "privacy_charge", "privacy_source"} <= set(insp.get_table_names())
    uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints("privacy_charge")}
    assert ("source", "period", "release_key") in uniques
    # the total is the registered source's, not a copy per row
    assert "total" not in {c["name"] for c in insp.get_columns("privacy_budget")}
    with engine.connect() as c:
        heads = {r[0] for r in c.execute(text("select version_num from alembic_version"))}
    assert heads == {"0011z"}  # one head: 0010 merged the branches after 0005; 0011z: unit
    engine.dispose()


def test_charge_spends_and_refuses_with_the_remaining_amount(factory):
    with transaction(factory) as s:
        st = charge(s, source="mvd", period="2024", epsilon=0.5, draw_key="a" * 64)
    assert (st.spent, st.remaining, st.total, st.charged) == (0.5, 0.5, 1.0, True)
    with transaction(factory) as s:
        st = charge(s, source="mvd", period="2024", epsilon=0.25, draw_key="b")
    assert st.spent == 0.75 and st.remaining == 0.25
    with pytest.raises(BudgetExceeded, match=r"only 0\.25 of 1 remains") as e, \
            transaction(factory) as s:
        charge(s, source="mvd", period="2024", epsilon=0.3, draw_key="c")
    assert e.value.remaining == 0.25
    with transaction(factory) as s:
        assert status(s, "mvd", "2024").spent == 0.75
        assert [c.release_key for c in charges(s, "mvd", "2024")] == ["a" * 64, "b"]
        # other periods and sources have their own budgets
        assert status(s, "mvd", "2023").spent == 0.0
        st = charge(s, source="stat", period="2024", epsilon=1.0, draw_key="c")
        assert st.remaining == 0.0


def test_refusal_leaves_the_callers_transaction_usable(factory):
    with transaction(factory) as s:
        charge(s, source="x", period="p", epsilon=0.9, draw_key="k1")
        with pytest.raises(BudgetExceeded):
            charge(s, source="x", period="p", epsilon=0.2, draw_key="k2")
        charge(s, source="x", period="p", epsilon=0.1, draw_key="k3")
    with transaction(factory) as s:
        assert [c.release_key for c in charges(s, "x", "p")] == ["k1", "k3"]
        assert abs(status(s, "x", "p").spent - 1.0) < 1e-12


def test_same_release_spends_nothing_again(factory):
    for _ in range(3):
        with transaction(factory) as s:
            st = charge(s, source="x", period="p", epsilon=0.4, draw_key="same")
    assert st.spent == 0.4 and st.charged is False
    with transaction(factory) as s:
        assert len(charges(s, "x", "p")) == 1


def test_float_sums_fit_the_budget(factory):
    with transaction(factory) as s:
        for i in range(10):
            charge(s, source="x", period="p", epsilon=0.1, draw_key=f"k{i}")
        assert status(s, "x", "p").remaining < 1e-9


def test_rollback_of_the_caller_undoes_the_charge(factory):
    with pytest.raises(RuntimeError), transaction(factory) as s:
        charge(s, source="x", period="p", epsilon=0.6, draw_key="k")
        raise RuntimeError("publishing failed")
    with transaction(factory) as s:
        assert status(s, "x", "p").spent == 0.0


@pytest.mark.parametrize("kw, msg", [
    ({"epsilon": 0}, "epsilon"), ({"epsilon": float("nan")}, "epsilon"),
    ({"epsilon": "1"}, "epsilon"), ({"epsilon": -1}, "epsilon"),
    ({"source": ""}, "source"), ({"draw_key": ""}, "draw_key"),
])
def test_bad_arguments(factory, kw, msg):
    # adapted: the total is no longer an argument (it is the registered source's); the key is
    # the draw's
    args = {"source": "x", "period": "p", "epsilon": 0.1, "draw_key": "k"}
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
                                 draw_key=key_of(i)))
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
        assert abs(status(s, "race", "p").spent - 0.3) < 1e-12


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


# -- the service charges in the caller's session: one transaction per request, job or command ----

NOISE_SPEC = {
    "id": "noisy", "version": "1.0.0", "title": {"kk": "Кесте", "ru": "Таблица", "en": "Table"},
    "source_id": "src", "reference_period": "2025",
    "dimensions": [{"name": "region", "codes": ["A", "B", "C"]}, {"name": "sex", "codes": ["F", "M"]}],
    "disclosure": {"noise": {"mechanism": "geometric", "epsilon": 1.0}},
}
NOISE_TABLE = "region,sex,obs_value\nA,F,10\nA,M,12\nB,F,1\nB,M,9\nC,F,14\nC,M,8\n"
SERVICE_SETTINGS = {"EPSILON_CEILING": 5.0, "EPSILON_BUDGET": 4.0}  # no DATABASE_URL: the session


def _protect_noise(session):  # noqa: ANN001, ANN202
    """One noise release (the production sampler: a fresh draw, so a new release, each time)."""
    from publisher.service import protect_upload, read_table_bytes
    from publisher.specs import spec_from_mapping

    spec = spec_from_mapping(NOISE_SPEC, source="spec")
    df = read_table_bytes(NOISE_TABLE.encode(), source="in.csv")
    return protect_upload(spec, df, source="in.csv", settings=SERVICE_SETTINGS, session=session)


def test_a_rolled_back_request_spends_no_epsilon(factory):
    s = factory()
    try:
        out = _protect_noise(s)
        assert out.budget["spent"] == 1.0  # charged in the caller's transaction ...
        s.rollback()  # ... which then fails (a later step, a conflict at commit)
    finally:
        s.close()
    with transaction(factory) as s:
        assert status(s, "src", "2025").spent == 0.0
        assert charges(s, "src", "2025") == []
    with transaction(factory) as s:  # the same request, committed this time: spent once
        _protect_noise(s)
    with transaction(factory) as s:
        assert status(s, "src", "2025").spent == 1.0


def test_a_noise_release_without_a_session_is_refused(factory):
    from publisher.service import ServiceError

    with pytest.raises(ServiceError, match="session"):
        _protect_noise(None)
    with transaction(factory) as s:
        assert status(s, "src", "2025").spent == 0.0


def test_service_calls_run_no_migration_and_make_no_engine(factory, tmp_path, monkeypatch):
    import json

    import publisher.db as db
    from publisher.models import LocalPublication
    from publisher.service import publish_release

    def refused(*_a, **_kw):
        raise AssertionError("a service call ran the migrations / made an engine")

    monkeypatch.setattr(db, "upgrade", refused)
    monkeypatch.setattr(db, "make_engine", refused)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "datapackage.json").write_text(json.dumps({"name": "noisy", "version": "1.0.0"}))
    (tmp_path / "pkg.zip").write_bytes(b"zip")
    settings = {**SERVICE_SETTINGS, "OUTPUT_DIR": str(tmp_path / "out"), "CKAN_URL": None}
    with transaction(factory) as s:
        _protect_noise(s)
        _protect_noise(s)
        res = publish_release(pkg, settings=settings, session=s)
    assert res.target == "local" and (tmp_path / "out" / "noisy" / "1.0.0").is_dir()
    with transaction(factory) as s:
        assert status(s, "src", "2025").spent == 2.0
        assert [p.series for p in s.query(LocalPublication).all()] == ["noisy"]


def test_session_scope_migrates_once_per_process_and_only_when_used(tmp_path, monkeypatch):
    import publisher.db as db

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    real, calls = db.upgrade, []
    monkeypatch.setattr(db, "upgrade", lambda u: (calls.append(u), real(u)))
    with db.session_scope({"DATABASE_URL": url}):
        pass  # a command that does not touch the store (e.g. suppression) does not migrate it
    assert calls == [] and not (tmp_path / "fresh.db").exists()
    with db.session_scope({"DATABASE_URL": url}) as s:  # adapted: the source is registered
        add_source(s, "src", 4.0)
    for _ in range(3):
        with db.session_scope({"DATABASE_URL": url}) as s:
            _protect_noise(s)
    assert calls == [url]
    with db.session_scope({"DATABASE_URL": url}) as s:
        assert status(s, "src", "2025").spent == 3.0  # each run committed its charge
    with pytest.raises(RuntimeError), db.session_scope({"DATABASE_URL": url}) as s:
        _protect_noise(s)
        raise RuntimeError("the command failed after protecting")
    with db.session_scope({"DATABASE_URL": url}) as s:
        assert status(s, "src", "2025").spent == 3.0  # the failed command spent nothing


# -- issue 13: registered sources, charge before the draw, stored draws, the text -----------------

def _spec(**changes):  # noqa: ANN003, ANN202
    from publisher.specs import spec_from_mapping

    return spec_from_mapping({**NOISE_SPEC, **changes}, source="spec")


def _protect(session, spec=None, settings=None):  # noqa: ANN001, ANN202
    from publisher.service import protect_upload, read_table_bytes

    df = read_table_bytes(NOISE_TABLE.encode(), source="in.csv")
    return protect_upload(spec or _spec(), df, source="in.csv",
                          settings=settings or SERVICE_SETTINGS, session=session)


@pytest.fixture
def draws(monkeypatch):  # noqa: ANN001, ANN201
    """Counts the noise draws (the real sampler still draws)."""
    import disclosure.noise as dn

    real, calls = dn.protect_noise_linked, []

    def counted(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(dn, "protect_noise_linked", counted)
    return calls


def test_source_ids_are_normalised_unique_and_slugs(factory):
    from publisher.budget import get_source, normalise_source_id, sources

    with transaction(factory) as s:
        assert add_source(s, "LEDGER-SRC", 4.0).id == "ledger-src"
        for spelling in ("LEDGER-SRC", " ledger-src", "ledger-src ", "\uff2cEDGER-src\t"):
            assert get_source(s, spelling).id == "ledger-src"  # NFKC: a full-width L too
        with pytest.raises(ValueError, match="registered already"):
            add_source(s, " Ledger-Src ", 9.0)
        for bad in ("", "  ", "two words", "-dash-first", "a" * 65, "src/1", "ünï"):
            with pytest.raises(ValueError, match="source id"):
                normalise_source_id(bad)
        for bad_total in (0, -1, float("nan"), float("inf"), True):
            with pytest.raises(ValueError, match="budget"):
                add_source(s, "other", bad_total)
        assert [x.id for x in sources(s)].count("ledger-src") == 1


def test_spellings_of_one_source_share_one_budget(factory, draws):
    with transaction(factory) as s:
        add_source(s, "ledger-src", 4.0)
    with transaction(factory) as s:  # the case: budget 4, a release at epsilon 3 ...
        _protect(s, _spec(source_id="LEDGER-SRC", disclosure={"noise": {
            "mechanism": "geometric", "epsilon": 3.0}}))
    for spelling in (" ledger-src", "ledger-src ", "Ledger-Src"):  # ... then other spellings
        with pytest.raises(BudgetExceeded) as e, transaction(factory) as s:
            _protect(s, _spec(source_id=spelling, disclosure={"noise": {
                "mechanism": "geometric", "epsilon": 3.0}}))
        msg = str(e.value)
        assert "'ledger-src'" in msg and "'2025'" in msg and "only 1 of 4 remains" in msg
        assert "\n" not in msg
    assert len(draws) == 1  # the refused runs drew nothing
    with transaction(factory) as s:
        assert status(s, " LEDGER-src", "2025").spent == 3.0
        assert len(charges(s, "ledger-src", "2025")) == 1


@pytest.mark.parametrize("source_id", [None, "nope", "", "   "])
def test_an_unregistered_or_missing_source_is_refused_before_the_draw(factory, draws, source_id):
    spec = dict(NOISE_SPEC)
    if source_id is None:
        spec.pop("source_id")
    else:
        spec["source_id"] = source_id
    from publisher.specs import spec_from_mapping

    try:
        table_spec = spec_from_mapping(spec, source="spec")
    except Exception:  # noqa: BLE001 - the spec schema refuses an empty source_id itself
        assert source_id == ""
        return
    with pytest.raises(BudgetError) as e, transaction(factory) as s:
        _protect(s, table_spec)
    msg = str(e.value)
    assert "key source_id" in msg and "\n" not in msg
    assert "registered: mvd, race, src, stat, x" in msg and "publisher source add" in msg
    assert draws == []
    with transaction(factory) as s:
        assert sum(r.spent for r in s.query(PrivacyBudget).all()) == 0.0


def test_raising_the_setting_does_not_reopen_a_spent_period(factory, draws):
    from publisher.budget import set_source_budget

    eps4 = {"noise": {"mechanism": "geometric", "epsilon": 4.0}}
    with transaction(factory) as s:
        _protect(s, _spec(disclosure=eps4))  # src: 4 of 4 spent
    for budget_setting in (4.0, 9.0, 1000.0):
        with pytest.raises(BudgetExceeded, match=r"only 0 of 4 remains"), \
                transaction(factory) as s:
            _protect(s, settings={**SERVICE_SETTINGS, "EPSILON_BUDGET": budget_setting})
    assert len(draws) == 1
    with transaction(factory) as s:
        assert status(s, "src", "2025") == status(s, "src", "2025")
        assert (status(s, "src", "2025").spent, status(s, "src", "2025").total) == (4.0, 4.0)
    with transaction(factory) as s:  # only the explicit, audited admin action changes it
        set_source_budget(s, "SRC", 5.0, reason="the office's new disclosure policy")
    with transaction(factory) as s:
        out = _protect(s)
    assert out.budget["remaining"] == 0.0 and out.budget["total"] == 5.0


def test_source_changes_are_audited_and_need_a_reason(factory):
    from publisher.budget import set_source_budget
    from publisher.workflow import audit_rows, verify_audit_chain

    with transaction(factory) as s:
        add_source(s, "Audited-Src", 2.0)
        with pytest.raises(ValueError, match="reason"):
            set_source_budget(s, "audited-src", 3.0, reason="  ")
        with pytest.raises(ValueError, match="no registered source"):
            set_source_budget(s, "unknown", 3.0, reason="x")
        set_source_budget(s, "audited-src", 3.0, reason="more releases planned")
    with transaction(factory) as s:
        rows = [r for r in audit_rows(s) if r.detail.get("source") == "audited-src"]
        assert [r.action for r in rows] == ["source_added", "source_budget_changed"]
        assert rows[0].detail["total"] == 2.0
        assert (rows[1].detail["from"], rows[1].detail["to"]) == (2.0, 3.0)
        assert rows[1].reason == "more releases planned"
        assert verify_audit_chain(s)[0]


@pytest.mark.parametrize("given, key", [
    ("2024", "2024"), ("2024-Q1", "2024-Q1"), ("2024-01", "2024-01"),
    ("2024-01-15", "2024-01-15"), (" 2024 ", "2024"), (None, "all"),
    ({"kk": "2024 жыл", "ru": "2024 год", "en": "2024"}, "2024"),
])
def test_the_period_is_iso_8601_or_all_when_none_is_given(given, key):
    from publisher.budget import period_key

    spec = dict(NOISE_SPEC)
    spec.pop("reference_period")
    if given is not None:
        spec["reference_period"] = given
    from publisher.specs import spec_from_mapping

    assert period_key(spec_from_mapping(spec, source="spec")) == key


@pytest.mark.parametrize("given", ["all", "last year", "2024-13", "2024-Q5", "24",
                                   "2024/2025", "2024-02-30"])
def test_a_period_that_is_not_iso_8601_is_refused_before_the_draw(factory, draws, given):
    with pytest.raises(BudgetError, match="key reference_period") as e, \
            transaction(factory) as s:
        _protect(s, _spec(reference_period=given))
    assert "\n" not in str(e.value)
    assert draws == []
    with transaction(factory) as s:
        assert charges(s, "src", given) == [] and status(s, "src", "all").spent == 0.0


def test_the_charge_is_made_before_the_draw_in_the_callers_session(factory, monkeypatch):
    import disclosure.noise as dn

    real, seen = dn.protect_noise_linked, []

    def draw(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        seen.append(status(s, "src", "2025").spent)  # the caller's session, mid-transaction
        return real(*a, **kw)

    monkeypatch.setattr(dn, "protect_noise_linked", draw)
    with transaction(factory) as s:
        _protect(s)
    assert seen == [1.0]  # reserved before the noise was drawn


def test_a_fresh_draw_always_costs_even_when_identical_to_an_earlier_one(factory, monkeypatch):
    import copy

    import disclosure.noise as dn

    real, first = dn.protect_noise_linked, []

    def same_output(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        pts = real(*a, **kw)
        if not first:
            first.append(pts)
        return copy.deepcopy(first[0])  # every draw publishes the very same table

    monkeypatch.setattr(dn, "protect_noise_linked", same_output)
    outs = []
    for _ in range(4):
        with transaction(factory) as s:
            outs.append(_protect(s))
    assert len({o.protected_csv_bytes for o in outs}) == 1
    with pytest.raises(BudgetExceeded), transaction(factory) as s:
        _protect(s)
    with transaction(factory) as s:
        assert status(s, "src", "2025").spent == 4.0
        assert len({c.release_key for c in charges(s, "src", "2025")}) == 4


def test_over_budget_writes_nothing_and_charges_nothing(factory, tmp_path, draws):
    import yaml

    from publisher.service import protect_files

    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(
        {**NOISE_SPEC, "disclosure": {"noise": {"mechanism": "geometric", "epsilon": 3.0}}}),
        "utf-8")
    (tmp_path / "in.csv").write_text(NOISE_TABLE, "utf-8")
    settings = {**SERVICE_SETTINGS, "MAX_UPLOAD_BYTES": 1 << 20}
    job = [(str(tmp_path / "spec.yaml"), str(tmp_path / "in.csv"), str(tmp_path / "o1.csv"))]
    with transaction(factory) as s:
        protect_files(job, settings=settings, session=s, report_path=str(tmp_path / "r1.json"))
    job2 = [(job[0][0], job[0][1], str(tmp_path / "o2.csv"))]
    with pytest.raises(BudgetExceeded) as e, transaction(factory) as s:
        protect_files(job2, settings=settings, session=s, report_path=str(tmp_path / "r2.json"))
    assert str(e.value) == ("privacy budget exceeded for source 'src', period '2025': this "
                            "release needs epsilon 3 but only 1 of 4 remains (3 spent)")
    assert not (tmp_path / "o2.csv").exists() and not (tmp_path / "r2.json").exists()
    assert len(draws) == 1
    with transaction(factory) as s:
        assert status(s, "src", "2025").spent == 3.0 and len(charges(s, "src", "2025")) == 1


def test_serving_a_stored_draw_again_costs_nothing_and_draws_nothing(factory, url, tmp_path,
                                                                     monkeypatch):
    """A release's draw is charged when it is made, approved or not; packaging, re-packaging
    (the worker's retry) and publishing re-use ``release.protected_csv``: no draw, no charge."""
    import disclosure.noise as dn
    from publisher import tasks
    from publisher import workflow as wf
    from publisher.service import package_release, publish_release
    from publisher.workflow_models import Release, User

    with transaction(factory) as s:
        u = User(username="prep", display_name="Prep", password_hash="", active=True)
        u.set_password("prep-password-1")
        u.set_roles(["preparer"])
        s.add(u)
        s.flush()
        r = wf.create_release(s, u, dict(NOISE_SPEC), wf.Upload("in.csv", NOISE_TABLE.encode()),
                              settings={**SERVICE_SETTINGS, "DATABASE_URL": url})
        rid, stored = r.id, r.protected_csv
        assert r.report["privacy"]["budget"]["this_release"] == 1.0
    with transaction(factory) as s:  # charged although nobody approved it (yet)
        assert status(s, "src", "2025").spent == 1.0

    def no_draw(*_a, **_kw):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a stored draw was drawn again")

    monkeypatch.setattr(dn, "protect_noise", no_draw)
    settings = {**SERVICE_SETTINGS, "DATABASE_URL": url, "WORK_DIR": str(tmp_path / "work"),
                "OUTPUT_DIR": str(tmp_path / "out"), "CKAN_URL": None,
                "PUBLIC_BASE_URL": "http://example.test"}
    monkeypatch.setitem(tasks._factories, url, factory)
    first = tasks._package(factory, rid, settings)
    again = tasks._package(factory, rid, settings)  # a retry re-uses the built package
    assert first == again
    with transaction(factory) as s:
        r = s.get(Release, rid)
        spec = _spec()
        for i in range(2):  # re-packaging the stored table
            res = package_release(spec, stored, tmp_path / f"pkg{i}", report=r.report,
                                  settings=settings)
        publish_release(Path(res.path), settings=settings, session=s)
        publish_release(Path(res.path), settings=settings, session=s)  # re-publishing
    with transaction(factory) as s:
        assert status(s, "src", "2025").spent == 1.0
        assert len(charges(s, "src", "2025")) == 1


def test_the_text_says_what_this_release_spent_and_what_the_source_has_left(factory):
    import json

    from datapackages.i18n import tr
    from disclosure.methods.noise import Budget, explain_noise
    from disclosure.report import report_from_dict

    with transaction(factory) as s:
        _protect(s, _spec(disclosure={"noise": {"mechanism": "geometric", "epsilon": 1.5}}))
    with transaction(factory) as s:
        out = _protect(s)  # the issue: a first release at epsilon 1 said "used" the total
    b = out.report.privacy.budget
    assert b == Budget(this_release=1.0, spent=2.5, remaining=1.5, total=4.0)
    assert out.budget.get("unit", "epsilon") == "epsilon"  # the source's unit
    assert {k: v for k, v in out.budget.items() if k != "unit"} == {
        "this_release": 1.0, "spent": 2.5, "remaining": 1.5, "total": 4.0, "source": "src",
        "period": "2025"}
    text = explain_noise(out.report, tr)
    en = text["en"]
    assert "This release spent epsilon 1 of the privacy budget" in en
    assert "has spent 2.5 of its 4 for this reference period in all" in en
    assert "1.5 is left" in en and "used" not in en
    assert "asserts this privacy unit and contribution bound" in en
    assert "not checked or enforced" in en and "other data sources is not covered" in en
    for lang in ("kk", "ru"):
        assert text[lang] != en and all(x in text[lang] for x in ("1", "2.5", "4", "1.5"))
        assert "This release" not in text[lang]
    d = json.loads(json.dumps(out.report.to_dict()))
    assert d["privacy"]["budget"]["this_release"] == 1.0
    assert report_from_dict(d) == out.report
    del d["privacy"]["budget"]["this_release"]  # a report written before the field existed
    old = report_from_dict(d)
    assert old.privacy.budget.this_release is None
    old_en = explain_noise(old, tr)["en"]
    assert "has spent 2.5 of its privacy budget of 4" in old_en and "This release" not in old_en


def test_migration_re_keys_an_old_ledger_without_forgetting_any_spend(url):
    """0005 on a store that has free-text ledger keys: spellings of one source are merged (their
    spends add up) and the source is registered with the largest total its rows recorded."""
    from alembic import command
    from alembic.config import Config

    from publisher.budget import sources
    from publisher.db import MIGRATIONS

    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    command.downgrade(cfg, "0004")  # the schema before 0005 (the 0002 ledger)
    with engine.begin() as c:
        for i, (src, total, spent) in enumerate([("LEDGER-SRC", 4.0, 3.0),
                                                 (" ledger-src", 9.0, 3.0),
                                                 ("other", 4.0, 1.0)]):
            c.execute(text("insert into privacy_budget (source, period, total, spent, updated_at) "
                           "values (:s, '2025', :t, :sp, current_timestamp)"),
                      {"s": src, "t": total, "sp": spent})
            c.execute(text("insert into privacy_charge (source, period, release_key, epsilon, "
                           "created_at) values (:s, '2025', :k, :sp, current_timestamp)"),
                      {"s": src, "k": f"k{i % 2}", "sp": spent})
    upgrade(url)
    f = session_factory(engine)
    with transaction(f) as s:
        assert {(x.id, x.total) for x in sources(s)} == {("ledger-src", 9.0), ("other", 4.0)}
        assert status(s, "ledger-src", "2025").spent == 6.0
        assert len(charges(s, "ledger-src", "2025")) == 2
        assert s.query(PrivacyBudget).count() == 2
    engine.dispose()


def test_cli_registers_lists_and_changes_sources(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from publisher.cli import main

    db_url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    monkeypatch.setenv("ASHYQ_DATABASE_URL", db_url)
    monkeypatch.setenv("ASHYQ_EPSILON_BUDGET", "3")
    run = CliRunner().invoke
    r = run(main, ["source", "add", " MVD-Migration "])
    assert r.exit_code == 0, r.output
    assert "registered source mvd-migration with a budget of epsilon 3" in r.stderr
    r = run(main, ["source", "add", "stat", "--budget", "2.5"])
    assert r.exit_code == 0, r.output
    r = run(main, ["source", "add", "mvd-migration", "--budget", "1"])
    assert r.exit_code == 1 and "registered already" in r.output
    r = run(main, ["source", "add", "bad id", "--budget", "1"])
    assert r.exit_code == 1 and "a-z 0-9" in r.output
    r = run(main, ["source", "add", "zero", "--budget", "0"])
    assert r.exit_code == 1 and "greater than 0" in r.output
    r = run(main, ["source", "set-budget", "MVD-migration", "5"])
    assert r.exit_code == 2 and "--reason" in r.output  # the reason is required
    r = run(main, ["source", "set-budget", "MVD-migration", "5", "--reason", "new policy"])
    assert r.exit_code == 0 and "budget set to epsilon 5" in r.stderr, r.output
    monkeypatch.setenv("ASHYQ_EPSILON_BUDGET", "100")  # the setting does not touch sources
    r = run(main, ["source", "list"])
    assert r.exit_code == 0
    r = run(main, ["source", "add", "zc", "--unit", "rho"])
    assert r.exit_code == 2 and "--budget is required" in r.output
    r = run(main, ["source", "add", "zc", "--unit", "rho", "--budget", "0.5"])
    assert r.exit_code == 0 and "a budget of rho 0.5" in r.stderr, r.output
    r = run(main, ["source", "list"])
    assert r.stdout.splitlines() == ["mvd-migration\tbudget epsilon 5 per period\tnothing spent",
                                     "stat\tbudget epsilon 2.5 per period\tnothing spent",
                                     "zc\tbudget rho 0.5 per period\tnothing spent"]
    r = run(main, ["audit-export", "--format", "json"])
    rows = [x for x in __import__("json").loads(r.stdout) if x["action"].startswith("source_")]
    assert [x["action"] for x in rows] == ["source_added", "source_added",
                                           "source_budget_changed", "source_added"]


# -- issue 13: budgets in one unit per source (epsilon: pure DP, rho: zCDP) ----------------------

GAUSS = {"noise": {"mechanism": "gaussian", "rho": 0.1}}


def test_a_source_keeps_its_budget_in_one_unit(factory):
    from publisher.budget import get_source

    with transaction(factory) as s:
        assert add_source(s, "zc", 0.5, unit="rho").unit == "rho"
        assert get_source(s, "mvd").unit == "epsilon"  # the default, and every older source
        with pytest.raises(ValueError, match="unit must be one of epsilon, rho"):
            add_source(s, "bad-unit", 1.0, unit="delta")
        assert status(s, "zc", "2025").unit == "rho"


def test_a_gaussian_release_on_an_epsilon_source_is_refused_before_the_draw(factory, draws):
    with pytest.raises(BudgetError) as e, transaction(factory) as s:
        _protect(s, _spec(disclosure=GAUSS))
    msg = str(e.value)
    assert "key disclosure.noise.mechanism" in msg and "'src'" in msg and "\n" not in msg
    assert "does not satisfy pure differential privacy" in msg
    assert draws == []  # nothing drawn ...
    with transaction(factory) as s:  # ... nothing charged
        assert status(s, "src", "2025").spent == 0.0 and charges(s, "src", "2025") == []


def test_a_gaussian_release_on_a_rho_source_spends_its_rho(factory, draws):
    with transaction(factory) as s:
        add_source(s, "zc", 0.25, unit="rho")
    with transaction(factory) as s:
        out = _protect(s, _spec(source_id="zc", disclosure=GAUSS))
    assert out.report.privacy.rho == 0.1 and out.report.differentially_private
    with transaction(factory) as s:
        assert status(s, "zc", "2025").spent == pytest.approx(0.1)
        assert [c.epsilon for c in charges(s, "zc", "2025")] == [pytest.approx(0.1)]
        _protect(s, _spec(source_id="zc", disclosure=GAUSS))
    with pytest.raises(BudgetExceeded, match="needs rho 0.1 but only 0.05 of 0.25 remains"), \
            transaction(factory) as s:
        _protect(s, _spec(source_id="zc", disclosure=GAUSS))
    assert len(draws) == 2


def test_a_laplace_release_on_a_rho_source_is_charged_epsilon_squared_over_two(factory):
    from disclosure.methods import get_method
    from publisher.budget import check_draw

    with transaction(factory) as s:
        add_source(s, "zc", 1.0, unit="rho")
    spec = _spec(source_id="zc", disclosure={"noise": {"mechanism": "geometric",
                                                       "epsilon": 1.2}})
    cost = get_method("noise").budget_cost(spec)
    with transaction(factory) as s:
        assert check_draw(s, spec).this_draw == pytest.approx(0.72)
        st = charge(s, source="zc", period="2025", epsilon=cost, draw_key="d1")
        assert st.charged and st.unit == "rho" and st.this_draw == pytest.approx(0.72)
        assert st.spent == pytest.approx(0.72)
        # an explicit unit wins over a bare number's default
        st = charge(s, source="zc", period="2025", epsilon=0.5, draw_key="d2", unit="epsilon")
        assert st.this_draw == pytest.approx(0.125) and st.remaining == pytest.approx(0.155)
    with transaction(factory) as s:  # 0.72 > 0.155 left: refused in rho, before any draw
        with pytest.raises(BudgetExceeded, match="needs rho 0.72"):
            check_draw(s, spec)
        with pytest.raises(BudgetExceeded):
            charge(s, source="zc", period="2025", epsilon=cost, draw_key="d3")
        assert len(charges(s, "zc", "2025")) == 2


def test_linked_noise_tables_are_one_draw_and_one_charge(factory, draws):
    """The release's epsilon is charged once (with the first table); each report states it."""
    from dataclasses import asdict

    from publisher.budget import reserve_draws
    from publisher.service import _Reservation, protect_tables, read_table_bytes

    first = _spec()
    second = _spec(id="noisy-by-region", dimensions=[{"name": "region",
                                                      "codes": ["A", "B", "C"]}])
    items = [(first, read_table_bytes(NOISE_TABLE.encode(), source="a.csv"), "a.csv"),
             (second, read_table_bytes(b"region,obs_value\nA,22\nB,10\nC,22\n",
                                       source="b.csv"), "b.csv")]
    with transaction(factory) as s:
        outs = protect_tables(items, settings=SERVICE_SETTINGS, reserve=lambda specs: [
            None if r is None else _Reservation(**{k: v for k, v in asdict(r).items()
                                                   if k in _Reservation.__dataclass_fields__})
            for r in reserve_draws(s, specs)])
    assert len(draws) == 1  # one protection of both tables
    with transaction(factory) as s:
        assert len(charges(s, "src", "2025")) == 1  # ONE ledger charge ...
        assert status(s, "src", "2025").spent == 1.0  # ... of the release's epsilon
    a, b = (o.published.set_index([c for c in o.published.columns if c in ("region", "sex")])
            for o in outs)
    for region in ("_T", "A", "B", "C"):  # the shared cells: one value in both tables
        assert a.loc[(region, "_T"), "obs_value"] == b.loc[region, "obs_value"]
        assert a.loc[(region, "_T"), "obs_moe"] == b.loc[region, "obs_moe"]
    for o in outs:
        assert o.report.checks.additive and o.report.privacy.linked_tables == [
            "noisy", "noisy-by-region"]
        assert o.budget["this_release"] == 1.0 and o.budget["spent"] == 1.0
    shares = [o.report.privacy.epsilon_certified for o in outs]
    assert sum(shares) <= 1.0 and shares[0] > shares[1]  # split by sqrt(cells): 12 vs 4 cells


def test_cli_link_with_noise_is_one_charge_and_consistent(tmp_path, monkeypatch):
    import csv

    import yaml
    from click.testing import CliRunner

    from publisher.cli import main

    monkeypatch.setenv("ASHYQ_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke
    assert run(main, ["source", "add", "src", "--budget", "3"]).exit_code == 0
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(NOISE_SPEC), "utf-8")
    by_region = {**NOISE_SPEC, "id": "noisy-by-region",
                 "dimensions": [{"name": "region", "codes": ["A", "B", "C"]}]}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(by_region), "utf-8")
    (tmp_path / "a.csv").write_text(NOISE_TABLE, "utf-8")
    (tmp_path / "b.csv").write_text("region,obs_value\nA,22\nB,10\nC,22\n", "utf-8")
    r = run(main, ["protect", "a.yaml", "a.csv", "-o", "a.out.csv",
                   "--link", "b.yaml", "b.csv", "b.out.csv", "--report", "r.json"])
    assert r.exit_code == 0, r.output
    assert "this release spent 1, source spent 1, budget left 2 of 3" in r.stderr
    a = {(x["region"], x["sex"]): x for x in csv.DictReader((tmp_path / "a.out.csv").read_text("utf-8").splitlines())}
    b = {x["region"]: x for x in csv.DictReader((tmp_path / "b.out.csv").read_text("utf-8").splitlines())}
    for region in ("_T", "A", "B", "C"):
        assert a[(region, "_T")]["obs_value"] == b[region]["obs_value"]
        assert a[(region, "_T")]["obs_moe"] == b[region]["obs_moe"]
    from publisher.db import make_engine, session_factory, transaction

    f = session_factory(make_engine(f"sqlite:///{tmp_path / 'cli.sqlite'}"))
    with transaction(f) as s:
        assert len(charges(s, "src", "2025")) == 1 and status(s, "src", "2025").spent == 1.0
