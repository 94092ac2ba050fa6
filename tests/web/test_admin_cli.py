"""The administration commands: first admin, users, tokens, audit export."""

from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner

from publisher.cli import main
from publisher.db import make_engine, session_factory
from publisher.workflow_models import ApiToken, AuditEntry, User


def test_create_admin_users_tokens_and_export(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("ASHYQ_DATABASE_URL", url)
    monkeypatch.setenv("PW", "a-long-password")
    run = CliRunner().invoke
    r = run(main, ["create-admin", "boss", "--password-env", "PW"])
    assert r.exit_code == 0, r.output
    r = run(main, ["create-admin", "boss2"], input="another-password\nanother-password\n")
    assert r.exit_code == 0, r.output  # prompted, twice
    r = run(main, ["create-user", "ann", "--role", "preparer", "--role", "approver",
                   "--password-env", "PW"])
    assert r.exit_code == 0, r.output
    assert run(main, ["create-user", "ann", "--role", "preparer", "--password-env", "PW"]
               ).exit_code != 0  # exists
    monkeypatch.setenv("SHORT", "short")
    r = run(main, ["create-user", "bob", "--role", "preparer", "--password-env", "SHORT"])
    assert r.exit_code != 0 and "12 characters" in r.output
    r = run(main, ["create-user", "Bad Name", "--role", "preparer", "--password-env", "PW"])
    assert r.exit_code != 0
    r = run(main, ["create-token", "ann"])
    token = r.output.strip().splitlines()[-1]
    assert r.exit_code == 0 and token.startswith("ashyq_")

    engine = make_engine(url)
    with session_factory(engine)() as s:
        boss = s.query(User).filter_by(username="boss").one()
        assert boss.roles == {"admin"} and boss.check_password("a-long-password")
        assert "a-long-password" not in boss.password_hash
        assert s.query(User).filter_by(username="ann").one().roles == {"preparer", "approver"}
        assert s.query(ApiToken).one().token_hash == ApiToken.hash(token)
        n = s.query(AuditEntry).count()
    engine.dispose()

    r = run(main, ["audit-export", "--format", "json"])
    rows = json.loads(r.output)
    assert r.exit_code == 0 and len(rows) == n
    assert {x["action"] for x in rows} == {"user_created", "token_issued"}
    out = tmp_path / "audit.csv"
    r = run(main, ["audit-export", "-o", str(out)])
    table = list(csv.DictReader(io.StringIO(out.read_text("utf-8"))))
    assert r.exit_code == 0 and table[0]["action"] == "user_created"
    assert len(table) == n + 1  # the JSON export was itself logged


def test_audit_verify(tmp_path, monkeypatch):
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("ASHYQ_DATABASE_URL", url)
    monkeypatch.setenv("PW", "a-long-password")
    run = CliRunner().invoke
    run(main, ["create-admin", "boss", "--password-env", "PW"])
    run(main, ["create-user", "ann", "--role", "preparer", "--password-env", "PW"])
    r = run(main, ["audit-verify"])
    assert r.exit_code == 0 and "2 rows" in r.output
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("drop trigger audit_log_no_delete"))
        conn.execute(text("delete from audit_log where id = 1"))
    engine.dispose()
    r = run(main, ["audit-verify"])
    assert r.exit_code == 1 and "tampered with at row 2" in r.output
