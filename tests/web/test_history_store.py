"""The publication history read from the store (publisher/history.py), on SQLite and PostgreSQL.

Releases are written as the workflow leaves them (spec, raw upload, protected table, report) and
the history of a new table of the same source is read back: which releases the attacker holds,
that their tables come back with the published pattern, that the new table's protection through
them is safe against the union, and that an approval would be refused for a release protected
before another table of its source became held.
"""

from __future__ import annotations

import copy
import io
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from disclosure.protect import protect_linked
from disclosure.table import read_cells
from publisher.db import transaction
from publisher.history import history_for, is_held, source_key, uncovered
from publisher.service import read_table_bytes
from publisher.specs import spec_from_mapping
from publisher.workflow_models import Release

from .conftest import SPEC, TABLE


def _spec(version: str = "1.0.0", source: str | None = "Kids-Src", **extra: Any) -> dict:
    m = copy.deepcopy(SPEC)
    m["version"] = version
    m["reference_period"] = "2024"
    if source is not None:
        m["source_id"] = source
    m.update(extra)
    return m


def _protect(spec_map: dict, table: str, history: list | None = None) -> tuple[bytes, dict]:
    from disclosure.methods import ProtectContext

    spec = spec_from_mapping(spec_map)
    cells = read_cells(read_table_bytes(table.encode(), source="t.csv"), spec, "t.csv")
    ctx = ProtectContext(published=list(history or []))
    (pt,) = protect_linked([cells], context=ctx)
    return pt.published.to_csv(index=False, lineterminator="\n").encode(), pt.report.to_dict()


def _release(s, user: int, spec_map: dict, state: str, table: str = TABLE,  # noqa: ANN001
             history: list | None = None, **kw: Any) -> Release:
    csv, report = _protect(spec_map, table, history)
    r = Release(series=spec_map["id"], version=spec_map["version"], state=state, title={"en": "t"},
                spec=spec_map, upload_name="t.csv", upload_bytes=table.encode(),
                protected_csv=csv, report=report, prepared_by_id=user, **kw)
    s.add(r)
    s.flush()
    return r


def test_source_key_is_the_registered_form() -> None:
    assert source_key(_spec(source=" Kids-SRC ")) == "kids-src"
    assert source_key(_spec(source=None)) is None
    assert source_key(spec_from_mapping(_spec())) == "kids-src"


def test_held_states() -> None:
    assert is_held(Release(state="published"))
    assert is_held(Release(state="approved"))
    assert not is_held(Release(state="protected"))
    assert not is_held(Release(state="withdrawn"))  # never published: nobody holds it
    from datetime import UTC, datetime

    assert is_held(Release(state="withdrawn", published_at=datetime.now(UTC)))


def test_history_of_a_source(store, users) -> None:  # noqa: ANN001
    with transaction(store) as s:
        _release(s, users["prep"], _spec("1.0.0"), "published")
        _release(s, users["prep"], _spec("1.0.0", source="other") | {"id": "other-series"},
                 "published")
        _release(s, users["prep"], _spec("1.1.0") | {"id": "draft-series"}, "protected")
        new = spec_from_mapping(_spec("1.0.1", source="kids-src"))
        h = history_for(s, new)
    assert h.source_id == "kids-src"
    assert h.releases == [("test-series", "1.0.0")]
    (pub,) = h.tables
    # the published pattern comes back: the two primaries are C, suppressed cells not free
    assert (pub.conf_status == "C").sum() == 2
    assert (pub.conf_status != "F").sum() >= 4


def test_no_source_no_history(store, users) -> None:  # noqa: ANN001
    with transaction(store) as s:
        _release(s, users["prep"], _spec("1.0.0"), "published")
        h = history_for(s, spec_from_mapping(_spec("1.0.1", source=None)))
    assert h.tables == [] and h.source_id is None


def test_correction_protected_through_the_history_is_safe_together(store, users) -> None:  # noqa: ANN001
    """v1.0.1 changes two inner cells; protected with the store's history its audit covers
    v1.0.0 and every primary of both versions keeps an interval of at least the protection level
    in the joint system."""
    corrected = TABLE.replace("R01D01,F,40", "R01D01,F,41").replace("R02D02,M,48", "R02D02,M,47")
    with transaction(store) as s:
        _release(s, users["prep"], _spec("1.0.0"), "published")
        new_map = _spec("1.0.1")
        h = history_for(s, spec_from_mapping(new_map))
        r = _release(s, users["prep"], new_map, "protected", table=corrected, history=h.tables)
        assert [(c["id"], c["version"]) for c in r.report["covered"]] == [("test-series", "1.0.0")]
        assert r.report["audit"]["passed"] is True and r.report["audit"]["exact"] == 0
        assert r.report["previous_version"] == "1.0.0"
        assert uncovered(s, r) == []
        old = s.scalars(select(Release).where(Release.version == "1.0.0")).one()
        before, after = _states(old.protected_csv), _states(r.protected_csv)
    # a cell whose raw value did not change keeps its published state (one unknown for the
    # attacker: hidden in both versions or public in both); the two changed cells may differ
    changed = {("R01D01", "F"), ("R02D02", "M"), ("R01D01", "_T"), ("R02D02", "_T"), ("R01", "F"),
               ("R02", "M"), ("R01", "_T"), ("R02", "_T"), ("_T", "F"), ("_T", "M"), ("_T", "_T")}
    for cell, st in after.items():
        if cell not in changed:
            assert (st == "F") == (before[cell] == "F"), cell


def _states(csv: bytes) -> dict[tuple[str, str], str]:
    import pandas as pd

    df = pd.read_csv(io.BytesIO(csv), dtype=str, keep_default_na=False)
    return {(a, b): c for a, b, c in zip(df["region"], df["sex"], df["conf_status"], strict=True)}


def test_approval_would_be_stale(store, users) -> None:  # noqa: ANN001
    """Two tables of a source protected side by side: once one is approved, the other's audit
    no longer covers the source's history."""
    with transaction(store) as s:
        a = _release(s, users["prep"], _spec("1.0.0"), "protected")
        b = _release(s, users["prep"], _spec("1.0.0") | {"id": "kids-2"}, "protected")
        assert uncovered(s, b) == []
        a.state = "approved"
        s.flush()
        assert [x.id for x in uncovered(s, b)] == [a.id]


def test_noise_releases_are_left_out(store, users) -> None:  # noqa: ANN001
    noisy = _spec("1.0.0") | {"id": "noisy", "disclosure": {"noise": {"mechanism": "geometric", "epsilon": 1.0}}}
    with transaction(store) as s:
        r = Release(series="noisy", version="1.0.0", state="published", title={"en": "n"},
                    spec=noisy, upload_name="t.csv", upload_bytes=TABLE.encode(),
                    protected_csv=b"x", report={}, prepared_by_id=users["prep"])
        s.add(r)
        s.flush()
        h = history_for(s, spec_from_mapping(_spec("1.0.1")))
    assert h.tables == [] and h.left_out == [("noisy", "1.0.0", "noise")]


@pytest.mark.parametrize("bad", ["value", "primary"])
def test_a_stored_table_that_does_not_fit_is_refused(store, users, bad: str) -> None:  # noqa: ANN001
    from publisher.history import HistoryReadError

    with transaction(store) as s:
        r = _release(s, users["prep"], _spec("1.0.0"), "published")
        lines = r.protected_csv.decode().splitlines()
        head = lines[0].split(",")
        i_conf, i_obs = head.index("conf_status"), head.index("obs_value")
        for k, line in enumerate(lines[1:], start=1):
            f = line.split(",")
            if bad == "value" and f[i_conf] == "F":
                f[i_obs] = str(int(f[i_obs]) + 1)
                lines[k] = ",".join(f)
                break
            if bad == "primary" and f[i_conf] == "C":
                f[i_conf], f[i_obs] = "F", "2"
                f[head.index("obs_status")] = "A"
                lines[k] = ",".join(f)
                break
        r.protected_csv = ("\n".join(lines) + "\n").encode()
        s.flush()
        with pytest.raises(HistoryReadError) as e:
            history_for(s, spec_from_mapping(_spec("1.0.1")))
    assert "test-series 1.0.0" in str(e.value)
    assert np.all([ch not in str(e.value) for ch in ("'2'", "'3'")])


# -- the workflow protects against the store's history and refuses a stale approval --------------

def _wf_new(store, users, spec_map: dict, table: str = TABLE) -> int:  # noqa: ANN001
    from publisher import workflow as wf
    from publisher.workflow_models import User

    from .conftest import SETTINGS, upload

    with transaction(store) as s:
        return wf.create_release(s, s.get(User, users["prep"]), spec_map, upload(table),
                                 settings=SETTINGS).id


def _wf_do(store, fn, user: int, rid: int, *args):  # noqa: ANN001, ANN202
    from publisher.workflow_models import User

    with transaction(store) as s:
        r = s.get(Release, rid)
        fn(s, s.get(User, user), r, *args)
        return r.state


def test_workflow_protects_against_the_published_tables_of_the_source(store, users) -> None:  # noqa: ANN001
    """A second table of the same source and period, prepared through the workflow after the
    first was published: its audit covers the first (shared cells by codes), without anyone
    naming it; a table of another source does not."""
    from datetime import timedelta

    from publisher import workflow as wf
    from publisher.workflow_models import utcnow

    first = _wf_new(store, users, _spec("1.0.0"))
    _wf_do(store, wf.submit, users["prep"], first)
    _wf_do(store, wf.approve, users["appr"], first)
    _wf_do(store, wf.schedule, users["appr"], first, utcnow() - timedelta(seconds=1))
    with transaction(store) as s:
        wf.mark_published(s, s.get(Release, first), url="file:///x", target="local",
                          dataset_name="x")
    second = _wf_new(store, users, _spec("1.0.0") | {"id": "kids-by-sex"})
    other = _wf_new(store, users, _spec("1.0.0", source="elsewhere") | {"id": "kids-other"})
    with transaction(store) as s:
        rep = s.get(Release, second).report
        assert [(c["id"], c["version"]) for c in rep["covered"]] == [("test-series", "1.0.0")]
        assert "test-series 1.0.0" in rep["attacker_model"]
        assert s.get(Release, other).report["covered"] == []


def test_an_approval_after_another_table_became_held_is_refused(store, users) -> None:  # noqa: ANN001
    from publisher import workflow as wf

    a = _wf_new(store, users, _spec("1.0.0"))
    b = _wf_new(store, users, _spec("1.0.0") | {"id": "kids-2"})
    for rid in (a, b):
        _wf_do(store, wf.submit, users["prep"], rid)
    assert _wf_do(store, wf.approve, users["appr"], a) == "approved"
    with pytest.raises(wf.Conflict) as e:
        _wf_do(store, wf.approve, users["appr"], b)
    assert e.value.code == "history_changed" and "test-series 1.0.0" in str(e.value)
    # sent back and protected again (a change with the same files), it covers a and passes
    assert _wf_do(store, wf.send_back, users["appr"], b, "protect again") == "protected"
    from publisher.workflow_models import User

    from .conftest import SETTINGS, upload

    with transaction(store) as s:
        r = s.get(Release, b)
        wf.change_release(s, s.get(User, users["prep"]), r, dict(r.spec), upload(TABLE),
                          settings=SETTINGS, reason="protect against test-series 1.0.0")
    _wf_do(store, wf.submit, users["prep"], b)
    assert _wf_do(store, wf.approve, users["appr"], b) == "approved"



def test_tables_protected_together_approve_one_after_the_other(store, users) -> None:  # noqa: ANN001
    """Linked tables of one source are one joint system: approving the first does not make the
    second's protection stale."""
    from publisher import workflow as wf
    from publisher.workflow_models import User

    from .conftest import SETTINGS, upload

    second = _spec("1.0.0") | {"id": "kids-linked"}
    with transaction(store) as s:
        wf.create_release(s, s.get(User, users["prep"]), _spec("1.0.0"), upload(),
                          settings=SETTINGS, linked=[wf.Pair(second, upload())])
        ids = [r.id for r in s.scalars(select(Release).order_by(Release.id))]
        assert s.get(Release, ids[1]).report["linked_tables"] == ["test-series", "kids-linked"]
    assert len(ids) == 2
    for rid in ids:
        _wf_do(store, wf.submit, users["prep"], rid)
    assert [_wf_do(store, wf.approve, users["appr"], rid) for rid in ids] == ["approved"] * 2
