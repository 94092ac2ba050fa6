"""The release state machine and its rules, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from disclosure.errors import AshyqError
from publisher import workflow as wf
from publisher.db import transaction
from publisher.workflow_models import AuditEntry, AuditLogImmutable, Release, User, utcnow

from .conftest import SETTINGS, SPEC, TABLE, upload


def _new(store, users, who="prep", spec=SPEC, table=TABLE) -> int:
    with transaction(store) as s:
        r = wf.create_release(s, s.get(User, users[who]), spec, upload(table), settings=SETTINGS)
        return r.id


def _do(store, fn, user_id, release_id, *args, **kw):
    with transaction(store) as s:
        r = s.get(Release, release_id)
        fn(s, s.get(User, user_id), r, *args, **kw)
        return r.state


def _publish(store, release_id):
    with transaction(store) as s:
        r = s.get(Release, release_id)
        wf.mark_published(s, r, url="file:///x", target="local", dataset_name="x")


def _to_published(store, users, rid, approver="appr"):
    _do(store, wf.submit, users["prep"], rid)
    _do(store, wf.approve, users[approver], rid)
    _do(store, wf.schedule, users[approver], rid, utcnow() - timedelta(seconds=1))
    _publish(store, rid)


def test_happy_path_writes_one_audit_row_per_transition(store, users):
    rid = _new(store, users)
    assert _do(store, wf.submit, users["prep"], rid, "ready") == "submitted"
    assert _do(store, wf.approve, users["appr"], rid, "checked") == "approved"
    assert _do(store, wf.schedule, users["appr"], rid, utcnow() - timedelta(seconds=1)) == "scheduled"
    _publish(store, rid)
    with store() as s:
        r = s.get(Release, rid)
        assert r.state == "published" and r.approved_by_id == users["appr"]
        rows = [(a.action, a.from_state, a.to_state, a.actor_name)
                for a in wf.audit_rows(s, rid)]
    assert rows == [
        ("create", None, "draft", "prep"),
        ("protect", "draft", "protected", "prep"),
        ("submit", "protected", "submitted", "prep"),
        ("approve", "submitted", "approved", "appr"),
        ("schedule", "approved", "scheduled", "appr"),
        ("publish", "scheduled", "published", "system"),
    ]


def test_protected_table_and_report_are_stored(store, users):
    rid = _new(store, users)
    with store() as s:
        r = s.get(Release, rid)
        csv = r.protected_csv.decode()
        assert r.report["primary"]["cells"] >= 2
        assert r.upload_bytes == TABLE.encode()
    assert "conf_status" in csv.splitlines()[0]
    for (region, sex), _value in [(("R01D02", "M"), 2), (("R02D01", "F"), 3)]:
        line = next(line for line in csv.splitlines() if line.startswith(f"{region},{sex},"))
        assert line.split(",")[2] == ""  # suppressed: empty obs_value


def test_preparer_cannot_approve_and_nobody_approves_own_work(store, users):
    rid = _new(store, users, who="both")
    _do(store, wf.submit, users["both"], rid)
    with pytest.raises(wf.Forbidden) as e:
        _do(store, wf.approve, users["prep"], rid)  # role missing
    assert e.value.status == 403
    with pytest.raises(wf.Forbidden) as e:
        _do(store, wf.approve, users["both"], rid)  # prepared it
    assert e.value.code == "four_eyes"
    assert _do(store, wf.approve, users["appr"], rid) == "approved"


def test_changer_cannot_approve(store, users):
    rid = _new(store, users)
    with transaction(store) as s:  # "both" is made a contributor by an admin-free path: as preparer
        r = s.get(Release, rid)
        both = s.get(User, users["both"])
        with pytest.raises(wf.NotFound):  # not a contributor of someone else's draft
            wf.change_release(s, both, r, None, upload(TABLE.replace("40", "41")), settings=SETTINGS)
    with transaction(store) as s:
        r = s.get(Release, rid)
        wf.change_release(s, s.get(User, users["prep"]), r, None,
                          upload(TABLE.replace("40", "41")), settings=SETTINGS)
    _do(store, wf.submit, users["prep"], rid)
    with pytest.raises(wf.Forbidden):
        _do(store, wf.approve, users["prep"], rid)


def test_change_after_approval_voids_it(store, users):
    rid = _new(store, users)
    _do(store, wf.submit, users["prep"], rid)
    _do(store, wf.approve, users["appr"], rid)
    _do(store, wf.schedule, users["appr"], rid, utcnow() + timedelta(days=1))
    # a scheduled release cannot change (the refusal names the state); lift the schedule first
    with pytest.raises(wf.Conflict) as refused, transaction(store) as s:
        wf.change_release(s, s.get(User, users["prep"]), s.get(Release, rid), None,
                          upload(TABLE.replace("52", "53")), settings=SETTINGS, reason="typo")
    assert refused.value.message == "cannot change a release that is scheduled"
    _do(store, wf.unschedule, users["appr"], rid, "a typo to fix")
    with transaction(store) as s:
        r = s.get(Release, rid)
        wf.change_release(s, s.get(User, users["prep"]), r, None,
                          upload(TABLE.replace("52", "53")), settings=SETTINGS, reason="typo")
    with store() as s:
        r = s.get(Release, rid)
        assert r.state == "protected" and r.approved_by_id is None and r.embargo_at is None
        actions = [a.action for a in wf.audit_rows(s, rid)]
    assert actions[-3:] == ["change", "approval_voided", "protect"]
    with pytest.raises(wf.Conflict):
        _do(store, wf.schedule, users["appr"], rid, utcnow())


def test_only_approved_can_be_scheduled_or_published(store, users):
    rid = _new(store, users)
    _do(store, wf.submit, users["prep"], rid)
    with pytest.raises(wf.Conflict):
        _do(store, wf.schedule, users["appr"], rid, utcnow())
    with pytest.raises(wf.Conflict):
        _publish(store, rid)
    _do(store, wf.approve, users["appr"], rid)
    with pytest.raises(wf.Conflict):
        _publish(store, rid)  # approved but not scheduled
    _do(store, wf.schedule, users["appr"], rid, utcnow() + timedelta(hours=2))
    with pytest.raises(wf.Conflict) as e:
        _publish(store, rid)  # embargo not passed
    assert "embargo" in e.value.message


def test_send_back_needs_a_comment(store, users):
    rid = _new(store, users)
    _do(store, wf.submit, users["prep"], rid)
    with pytest.raises(wf.WorkflowError) as e:
        _do(store, wf.send_back, users["appr"], rid, "  ")
    assert e.value.code == "reason_required"
    assert _do(store, wf.send_back, users["appr"], rid, "check region R02") == "protected"


def test_someone_elses_draft_is_not_found(store, users):
    rid = _new(store, users)
    with store() as s:
        for who in ("prep2", "appr"):
            with pytest.raises(wf.NotFound):
                wf.get_release(s, s.get(User, users[who]), rid)
        assert wf.get_release(s, s.get(User, users["admin"]), rid).id == rid
    _do(store, wf.submit, users["prep"], rid)
    with store() as s:
        assert wf.get_release(s, s.get(User, users["appr"]), rid).id == rid
        with pytest.raises(wf.Forbidden):
            wf.submit(s, s.get(User, users["prep2"]), s.get(Release, rid))


def test_correction_is_patch_revision_is_minor_or_major(store, users):
    rid = _new(store, users)
    _to_published(store, users, rid)
    with transaction(store) as s, pytest.raises(AshyqError, match="notice in the default language"):
        wf.create_release(s, s.get(User, users["prep"]), SPEC, upload(), settings=SETTINGS,
                          kind="correction", previous_id=rid)  # no notice
    with transaction(store) as s:
        c = wf.create_release(s, s.get(User, users["prep"]), SPEC, upload(TABLE.replace("33", "34")),
                              settings=SETTINGS, kind="correction", previous_id=rid,
                              notice="R02D01 M was miscounted")
        cid = c.id
        assert c.version == "1.0.1" and c.kind == "correction"
    _to_published(store, users, cid)
    with store() as s:
        assert s.get(Release, rid).state == "corrected"
        assert s.get(Release, cid).state == "published"
    with transaction(store) as s:
        rev = wf.create_release(s, s.get(User, users["prep"]), SPEC, upload(), settings=SETTINGS,
                                kind="revision", previous_id=cid)
        assert rev.version == "1.1.0"
        rev_id = rev.id
    _to_published(store, users, rev_id)
    with store() as s:
        assert s.get(Release, cid).state == "superseded"
    spec2 = {**SPEC, "dimensions": [SPEC["dimensions"][0], {"name": "sex", "codes": ["F", "M", "X"]}]}
    with transaction(store) as s:
        major = wf.create_release(s, s.get(User, users["prep"]), spec2, upload(), settings=SETTINGS,
                                  kind="revision", previous_id=rev_id)
        assert major.version == "2.0.0"


def test_a_new_initial_release_of_an_existing_series_is_refused(store, users):
    _new(store, users)
    with pytest.raises(wf.Conflict):
        _new(store, users, who="prep2")


def test_bad_input_leaves_nothing_behind(store, users):
    from disclosure.table import InputError
    from publisher.specs import SpecValidationError

    with pytest.raises(InputError) as e:
        _new(store, users, table=TABLE + "R09,F,4\n")
    assert "R09" in str(e.value) and "region" in str(e.value)
    with pytest.raises(SpecValidationError):
        _new(store, users, spec={**SPEC, "disclosure": {"min_frequency": 1}})
    with store() as s:
        assert s.scalar(select(func.count()).select_from(Release)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_audit_log_is_append_only_in_orm_and_database(store, users):
    rid = _new(store, users)
    with store() as s:
        row = s.scalars(select(AuditEntry).where(AuditEntry.release_id == rid)).first()
        row.reason = "rewritten"
        with pytest.raises(AuditLogImmutable):
            s.flush()
        s.rollback()
        s.delete(s.scalars(select(AuditEntry)).first())
        with pytest.raises(AuditLogImmutable):
            s.flush()
        s.rollback()
    for sql in ("update audit_log set reason = 'x'", "delete from audit_log"):
        with pytest.raises(DBAPIError), store() as s:
            s.execute(text(sql))
            s.commit()
    with store() as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 2


def test_database_refuses_approver_equal_to_preparer(store, users):
    rid = _new(store, users)
    with pytest.raises(IntegrityError), store() as s:
        s.execute(text("update release set approved_by_id = prepared_by_id where id = :i"),
                  {"i": rid})
        s.commit()


def test_audit_hash_chain_detects_changes_made_around_the_triggers(store, users):
    rid = _new(store, users)
    _do(store, wf.submit, users["prep"], rid, "first")
    _do(store, wf.approve, users["appr"], rid, "second")
    with store() as s:
        assert wf.verify_audit_chain(s) == (True, None, 4)
        target = s.scalars(select(AuditEntry).where(AuditEntry.action == "submit")).one().id
        dialect = s.get_bind().dialect.name
    # someone with database rights switches the protection off and rewrites a reason
    with store() as s:
        if dialect == "postgresql":
            s.execute(text("alter table audit_log disable trigger audit_log_no_change"))
        else:
            s.execute(text("drop trigger audit_log_no_update"))
        s.execute(text("update audit_log set reason = 'rewritten' where id = :i"), {"i": target})
        s.commit()
    with store() as s:
        assert wf.verify_audit_chain(s) == (False, target, 3)
