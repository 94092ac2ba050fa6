"""The release workflow: a state machine whose rules are enforced here, on the server.

::

    draft ─► protected ─► submitted ─► approved ─► scheduled ─► published ─► superseded
      ▲          ▲  ▲          │            │           │                   ├► corrected
      └ change ──┘  └ send back┘            └ change ───┘ (voids approval)  └► withdrawn

Guarantees:
- Every transition writes one :class:`AuditEntry` (who, when, from, to, why) in the same
  transaction as the change; the audit log is append-only.
- The approver is never a contributor: not the preparer, not anyone who changed the table or spec.
- Changing the table or spec of a submitted, approved or scheduled release voids the approval.
- Only an approved release (whose approval covers its current content) can be scheduled, and only
  a scheduled release whose embargo has passed can be published.
- A correction of a published version is a new PATCH version with a notice; a scheduled revision a
  new MINOR version (MAJOR when the dimensions change); publishing it marks the earlier version
  corrected / superseded.
- Drafts are visible only to their contributors and administrators (others get "not found").
- A release cannot change once scheduled (or while it is publishing): refused, naming the state.
  Every transition takes the release's row lock (PostgreSQL ``SELECT ... FOR UPDATE``) and moves
  the state with a conditional UPDATE (``WHERE state = <the state read>``), so publishing and
  changing are serialised; at most one approval and one schedule per content revision
  (:class:`ReleaseDecision`, unique): the loser of a race gets a 409.
- No figure derived from raw suppressed values leaves the service (:func:`safe_report`), nor a
  plain hash of the raw file; the raw table is shown only to the release's contributors, its
  approver(s) and administrators, and each view is audited (:func:`raw_upload`).
- Protection is a job (:class:`~publisher.job_models.ProtectionJob`): the upload is validated
  by one path (:func:`validate_pairs`, also run by the job) and stored as a draft; the worker's
  result is written only by :func:`finish_protection`, which moves every release of the job to
  "protected" in one transaction, and only if the job was not cancelled and no release changed
  since it was queued. Linked tables are releases of one job, changed and protected together.
- Withdrawing a version published to CKAN queues a withdrawal job that makes the dataset private
  there and verifies it anonymously (``publisher.tasks``); the public page says why.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from disclosure.errors import AshyqError

from .job_models import ACTIVE as JOB_ACTIVE
from .job_models import (
    CANCELLED,
    DONE,
    FAILED,
    HELD_FOR,
    PENDING,
    RUNNING,
    HeldUpload,
    ProtectionJob,
    ProtectionJobRelease,
)
from .workflow_models import (
    APPROVED,
    CORRECTED,
    DRAFT,
    PROTECTED,
    PUBLIC_STATES,
    PUBLISHED,
    SCHEDULED,
    SUBMITTED,
    SUPERSEDED,
    WITHDRAWN,
    AuditEntry,
    PublicationJob,
    Release,
    ReleaseDecision,
    User,
    as_utc,
    utcnow,
)

MAX_REASON = 2000
AUDIT_LOCK = 7_302_011  # advisory-lock key of audit-log appends (PostgreSQL)
EDITABLE = (DRAFT, PROTECTED, SUBMITTED, APPROVED)
CONTENT_ACTIONS = ("create", "change")
REVIEW_ACTIONS = ("approve", "send_back")
# Keys of a report holding figures derived from raw values, removed from every answer (API,
# review page, exports): sums of suppressed cells (never stored by new protections; removed from
# reports stored before) and a primary cell's required interval width, which under a percent
# protection level is p % of the cell's raw value (kept in the stored report only).
RAW_REPORT_KEYS = ("value_suppressed", "primary_value", "secondary_value", "required_width",
                   "gap", "lower_bound_ratio")  # the optimiser's gap: a ratio of raw value sums
# Audit-detail keys not shown outside the database (rows written before they were dropped).
HIDDEN_DETAIL_KEYS = ("upload_sha256",)
WITHDRAW_STEP = "withdraw"


def N_(text: str) -> str:
    """Mark a message for translation (the UI translates it; the API answers in English)."""
    return text


# Words that go into messages (kinds of release, roles), marked for the catalog.
_WORDS = (N_("revision"), N_("correction"), N_("initial"), N_("admin"), N_("publishing"))

# Parameters of messages that are themselves words to translate (state names, actions, roles).
TRANSLATED_PARAMS = ("state", "needs", "doing", "role", "role2", "what", "kind")


class WorkflowError(AshyqError):
    """A refused request: ``code`` (machine-readable), ``status`` (HTTP) and a user message.

    ``template`` and ``params`` let the UI show the message in the reader's language
    (``message`` is the English text, ``template % params``).
    """

    code = "invalid"
    status = 400

    def __init__(self, template: str, *, code: str | None = None, status: int | None = None,
                 **params: Any):
        self.template = template
        super().__init__(template % params if params else template, **params)
        if code:
            self.code = code
        if status:
            self.status = status

    @property
    def http_status(self) -> int:  # type: ignore[override]
        return self.status


class NotFound(WorkflowError):
    code, status = "not_found", 404


class Forbidden(WorkflowError):
    code, status = "forbidden", 403


class Conflict(WorkflowError):
    code, status = "conflict", 409


# -- audit -----------------------------------------------------------------------------------

def audit(session: Session, actor: User | None, action: str, *, release: Release | None = None,
          from_state: str | None = None, to_state: str | None = None, reason: str = "",
          detail: dict[str, Any] | None = None) -> AuditEntry:
    """Append one audit-log row (committed with the caller's transaction), chained to the last.

    On PostgreSQL appends are serialised by a transaction-scoped advisory lock so the chain
    never forks; SQLite serialises writers itself.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("select pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK})
    last = session.scalar(select(AuditEntry.row_hash).order_by(AuditEntry.id.desc()).limit(1))
    entry = AuditEntry(
        at=utcnow(), actor_id=actor.id if actor else None,
        actor_name=actor.username if actor else "system",
        release_id=release.id if release is not None else None, action=action,
        from_state=from_state, to_state=to_state, reason=(reason or "")[:MAX_REASON],
        detail=json.loads(json.dumps(detail or {}, default=str)), prev_hash=last or "",
    )
    entry.row_hash = entry.compute_hash()
    session.add(entry)
    return entry


def verify_audit_chain(session: Session) -> tuple[bool, int | None, int]:
    """Check the hash chain of the whole log: (intact, id of the first bad row, rows checked)."""
    prev = ""
    n = 0
    for row in session.scalars(select(AuditEntry).order_by(AuditEntry.id)):
        n += 1
        if row.prev_hash != prev or row.row_hash != row.compute_hash():
            return False, row.id, n
        prev = row.row_hash
    return True, None, n


def _move(session: Session, actor: User | None, release: Release, to_state: str, action: str,
          reason: str = "", detail: dict[str, Any] | None = None) -> None:
    """Move the state with a conditional UPDATE (from the state read): a concurrent transition
    that got there first makes this one a :class:`Conflict` instead of a silent overwrite."""
    before = release.state
    session.flush()
    now = utcnow()
    res = session.execute(update(Release).where(Release.id == release.id, Release.state == before)
                          .values(state=to_state, updated_at=now)
                          .execution_options(synchronize_session=False))
    if res.rowcount != 1:
        raise Conflict(N_("the release changed meanwhile (it is no longer %(state)s); reload "
                          "and try again"), state=before)
    set_committed_value(release, "state", to_state)
    set_committed_value(release, "updated_at", now)
    audit(session, actor, action, release=release, from_state=before, to_state=to_state,
          reason=reason, detail=detail)


def lock_release(session: Session, release: Release) -> Release:
    """Take the release's row lock for the rest of the transaction and reload it (PostgreSQL
    ``SELECT ... FOR UPDATE``; SQLite serialises writers itself, and :func:`_move` checks the
    state it moves from). Every transition, and the worker's claim, goes through here."""
    session.flush()
    session.execute(select(Release.id).where(Release.id == release.id).with_for_update())
    session.refresh(release)
    return release


def _decide(session: Session, actor: User, release: Release, kind: str) -> None:
    """Record the one approval / schedule of this content revision (unique in the database)."""
    rev = release.content_rev
    session.add(ReleaseDecision(release_id=release.id, content_rev=rev, kind=kind,
                                actor_id=actor.id, at=utcnow()))
    try:
        session.flush()
    except IntegrityError:  # the caller rolls the transaction back
        what = N_("approved") if kind == "approve" else N_("scheduled")
        raise Conflict(N_("revision %(rev)s of this release is already %(what)s"),
                       rev=rev, what=what) from None


# -- what leaves the service ---------------------------------------------------------------------

def safe_report(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """The report without any figure derived from raw suppressed values (counts are kept):
    for the API, the review page and any export, also for reports stored by older versions."""
    def clean(obj: Any, parent: str | None = None) -> Any:
        if isinstance(obj, dict):
            return {k: clean(v, k) for k, v in obj.items()
                    if k not in RAW_REPORT_KEYS
                    and not (k == "value" and parent in ("suppressed", "linked_total"))}
        if isinstance(obj, list):
            return [clean(v, parent) for v in obj]
        return obj

    return None if report is None else clean(report)


def public_detail(detail: dict[str, Any] | None) -> dict[str, Any]:
    """An audit row's detail as shown and exported (no digest of a raw file)."""
    return {k: v for k, v in (detail or {}).items() if k not in HIDDEN_DETAIL_KEYS}


def upload_hmac(data: bytes, key: str | bytes | None) -> str | None:
    """HMAC-SHA256 of the raw file keyed with the app's secret (kept in the database only)."""
    if not key:
        return None
    k = key.encode("utf-8") if isinstance(key, str) else key
    return hmac.new(k, data, hashlib.sha256).hexdigest()


# -- who may see and do what ------------------------------------------------------------------

def contributors(session: Session, release: Release) -> set[int]:
    """Users who prepared or changed the release's table or spec (from the audit log)."""
    ids = {release.prepared_by_id}
    if release.changed_by_id:
        ids.add(release.changed_by_id)
    rows = session.scalars(select(AuditEntry.actor_id).where(
        AuditEntry.release_id == release.id, AuditEntry.action.in_(CONTENT_ACTIONS)))
    ids.update(r for r in rows if r is not None)
    return ids


def can_view(session: Session, user: User, release: Release) -> bool:
    if user.has_role("admin"):
        return True
    if release.state in (DRAFT, PROTECTED):
        return user.id in contributors(session, release)
    return user.has_role("approver") or user.has_role("preparer")


def get_release(session: Session, user: User, release_id: int) -> Release:
    """The release if ``user`` may see it; "not found" otherwise (no existence leak)."""
    if not 0 < release_id < 2**31:
        raise NotFound(N_("no release %(id)s"), id=release_id)
    release = session.get(Release, release_id)
    if release is None or not can_view(session, user, release):
        raise NotFound(N_("no release %(id)s"), id=release_id)
    return release


def reviewers(session: Session, release: Release) -> set[int]:
    """Approvers who approved or sent back the release (from the audit log)."""
    ids = {release.approved_by_id} if release.approved_by_id else set()
    rows = session.scalars(select(AuditEntry.actor_id).where(
        AuditEntry.release_id == release.id, AuditEntry.action.in_(REVIEW_ACTIONS)))
    ids.update(r for r in rows if r is not None)
    return ids


def can_view_raw(session: Session, user: User, release: Release) -> bool:
    """Who may see the uploaded (raw) table: administrators, the release's contributors, the
    approver(s) who reviewed it, and — while it waits for review — approvers who may review it."""
    if user.has_role("admin") or user.id in contributors(session, release):
        return True
    if not user.has_role("approver"):
        return False
    return release.state == SUBMITTED or user.id in reviewers(session, release)


def raw_upload(session: Session, user: User, release: Release, via: str) -> tuple[str, bytes]:
    """The uploaded table (name, bytes) for ``user``, checked on the server and audited."""
    if not can_view_raw(session, user, release):
        raise Forbidden(N_("only the preparer, an approver of this release or an administrator "
                           "can see the uploaded table"), code="raw_forbidden")
    audit(session, user, "raw_view", release=release, detail={"via": via[:40],
                                                              "content_rev": release.content_rev})
    return release.upload_name, _stored_upload(session, release)


def visible_releases(session: Session, user: User) -> list[Release]:
    rows = session.scalars(select(Release).order_by(Release.updated_at.desc())).all()
    return [r for r in rows if can_view(session, user, r)]


def _require_role(user: User, *roles: str) -> None:
    if not any(user.has_role(r) for r in roles):
        if len(roles) == 1:
            raise Forbidden(N_("this needs the role %(role)s"), role=roles[0])
        raise Forbidden(N_("this needs the role %(role)s or %(role2)s"), role=roles[0],
                        role2=roles[1])


def _require_state(release: Release, *states: str, doing: str) -> None:
    if release.state not in states:
        if len(states) == 1:
            raise Conflict(N_("cannot %(doing)s a release that is %(state)s (it must be "
                              "%(needs)s)"), doing=doing, state=release.state, needs=states[0])
        raise Conflict(N_("cannot %(doing)s a release that is %(state)s"), doing=doing,
                       state=release.state)


def _reason(reason: str | None, *, required: bool, what: str = N_("a reason")) -> str:
    text = (reason or "").strip()
    if required and not text:
        raise WorkflowError(N_("give %(what)s"), code="reason_required", what=what)
    if len(text) > MAX_REASON:
        raise WorkflowError(N_("%(what)s is longer than %(n)s characters"), what=what,
                            n=MAX_REASON)
    return text


# -- versions ----------------------------------------------------------------------------------

def parse_version(v: str) -> tuple[int, int, int]:
    core = v.split("-", 1)[0].split("+", 1)[0]
    major, minor, patch = (int(x) for x in core.split("."))
    return major, minor, patch


def bump(version: str, part: str) -> str:
    major, minor, patch = parse_version(version)
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def _dimension_signature(spec: dict[str, Any]) -> list[Any]:
    return [(d.get("name"), sorted(d.get("codes") or []), sorted((d.get("hierarchy") or {}).items()))
            for d in spec.get("dimensions", [])]


def current_published(session: Session, series: str) -> Release | None:
    return session.scalars(select(Release).where(Release.series == series,
                                                 Release.state == PUBLISHED)).first()


def latest_version(session: Session, series: str) -> str | None:
    versions = session.scalars(select(Release.version).where(Release.series == series)).all()
    return max(versions, key=parse_version) if versions else None


# -- protection (through the service) -------------------------------------------------------------

@dataclass
class Upload:
    """An uploaded table: its file name and bytes (CSV, UTF-8); ``held``: the token of the
    held upload it was read from, if any."""

    name: str
    data: bytes
    held: str | None = None


def hold_upload(session: Session, user: User, upload: Upload) -> str:
    """Keep a file of a refused form for ``user`` (expired ones are removed); its token."""
    import secrets

    session.execute(HeldUpload.__table__.delete().where(
        HeldUpload.created_at < utcnow() - HELD_FOR))
    token = secrets.token_hex(24)
    session.add(HeldUpload(token=token, user_id=user.id, name=upload.name[:255],
                           data=upload.data, created_at=utcnow()))
    session.flush()
    return token


def held_upload(session: Session, user: User, token: str | None) -> Upload | None:
    """The file ``user`` had held under ``token`` (None if unknown, someone else's or expired)."""
    if not token or len(token) > 64:
        return None
    row = session.scalar(select(HeldUpload).where(HeldUpload.token == token,
                                                  HeldUpload.user_id == user.id,
                                                  HeldUpload.created_at >= utcnow() - HELD_FOR))
    if row is None:
        return None
    return Upload(row.name, row.data, held=token)


def drop_held(session: Session, user: User, tokens: Iterable[str]) -> None:
    """Remove the user's held files (once the form that used them succeeded)."""
    tokens = [t for t in tokens if t]
    if tokens:
        session.execute(HeldUpload.__table__.delete().where(HeldUpload.token.in_(tokens),
                                                            HeldUpload.user_id == user.id))


def _read_table(upload: Upload) -> pd.DataFrame:
    """The uploaded table as text columns (CSV, or an XLSX workbook's first sheet)."""
    from .service import read_upload

    return read_upload(upload.name, upload.data)


@dataclass
class Pair:
    """One table of a release as uploaded: its spec (a mapping) and its file."""

    spec_map: dict[str, Any]
    upload: Upload


def validate_pairs(session: Session | None, pairs: list[Pair], settings: dict[str, Any]
                   ) -> list[tuple[Any, pd.DataFrame, str]]:
    """The one validation path of an upload, run by the web request before a job is queued
    and again by the job: each spec parsed and its texts checked as the data package will
    check them, each table read with its codes and totals, the service's limits, the method's
    checks, linked tables on one method, and the privacy budget. Returns the service's items
    ``(spec, frame, source)``; raises the first refusal."""
    from .service import validate_tables
    from .specs import spec_from_mapping

    items = []
    for pair in pairs:
        spec = spec_from_mapping(pair.spec_map, source="spec")
        _check_texts(spec)
        items.append((spec, _read_table(pair.upload), pair.upload.name))
    validate_tables(items, settings=settings, session=session)
    return items


def _store_content(release: Release, spec_map: dict[str, Any], spec: Any, upload: Upload,
                   settings: dict[str, Any]) -> None:
    """The release's new content (spec and upload): a new revision, not protected yet."""
    release.spec = spec_map
    release.title = dict(spec.title)
    release.upload_name = upload.name[:255]
    release.upload_bytes = upload.data
    release.upload_sha256 = ""
    from .settings import secret_key

    release.upload_hmac = upload_hmac(upload.data, secret_key(settings or {}))
    release.protected_csv = None
    release.report = None
    release.protect_error = None
    release.content_rev = (release.content_rev or 0) + 1


def _store_protected(release: Release, csv: bytes, report: dict[str, Any]) -> None:
    release.protected_csv = csv
    release.report = _jsonable(report)
    release.protect_error = None


def _check_texts(spec: Any) -> None:
    """Refuse at upload what the data package would refuse at publication (markup in a title,
    control characters, a missing licence...), so an approved release does not fail later."""
    try:
        from datapackages import check_metadata
    except ImportError:  # the packager is optional for the workflow
        return
    check_metadata(spec)


def _jsonable(obj: Any) -> Any:
    import json

    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


# -- transitions -------------------------------------------------------------------------------------

def _new_release(session: Session, actor: User, spec_map: dict[str, Any], *, kind: str,
                 previous_id: int | None, notice: str | None) -> tuple[Release, dict[str, Any]]:
    """A release row (not added) for ``spec_map`` with its series and version decided by
    ``kind``; the spec mapping as it will be stored (id and version set)."""
    if not isinstance(spec_map, dict):
        raise WorkflowError(N_("the spec must be a mapping"))
    spec_map = dict(spec_map)
    series = str(spec_map.get("id") or "")
    if kind == "initial":
        if previous_id is not None:
            raise WorkflowError(N_("a first release has no previous version"))
        if series and session.scalars(select(Release.id).where(Release.series == series)).first():
            raise Conflict(N_("the series %(series)s exists already: start a revision or a "
                              "correction of its published version"), series=series)
        notice_text = _reason(notice, required=False, what=N_("the notice"))
        previous = None
    elif kind in ("revision", "correction"):
        if previous_id is None:
            raise WorkflowError(N_("a %(kind)s needs the published version it replaces"),
                                kind=kind)
        previous = session.get(Release, previous_id)
        if previous is None or previous.state != PUBLISHED:
            raise Conflict(N_("a %(kind)s replaces the current published version of a series"),
                           kind=kind)
        notice_text = _reason(notice, required=kind == "correction",
                              what=N_("the correction notice"))
        if series and series != previous.series:
            raise WorkflowError(N_("the spec id %(id)s is not the series %(series)s"), id=series,
                                series=previous.series)
        series = previous.series
        spec_map["id"] = series
        base = latest_version(session, series) or previous.version
        if kind == "correction":
            part = "patch"
        else:
            part = ("major" if _dimension_signature(spec_map) != _dimension_signature(previous.spec)
                    else "minor")
        spec_map["version"] = bump(max(base, previous.version, key=parse_version), part)
    else:
        raise WorkflowError(N_("unknown release kind %(name)s (initial, revision, correction)"),
                            name=kind)
    release = Release(series=series or "?", version=str(spec_map.get("version") or "1.0.0"),
                      kind=kind, state=DRAFT, title={}, spec={}, notice=notice_text or None,
                      previous_id=previous.id if previous else None, prepared_by_id=actor.id,
                      changed_by_id=actor.id, content_rev=0, upload_name="", upload_sha256="")
    return release, spec_map


def create_release(session: Session, actor: User, spec_map: dict[str, Any], upload: Upload, *,
                   settings: dict[str, Any], kind: str = "initial",
                   previous_id: int | None = None, notice: str | None = None,
                   linked: list[Pair] | tuple[Pair, ...] = (), defer: bool = False,
                   notices: dict[str, str] | None = None) -> Release:
    """A preparer uploads a table and its spec: the release is created (draft) and protected.

    ``kind`` "initial" takes the version from the spec (default 1.0.0) for a new series;
    "revision" and "correction" follow the series' published version (MINOR / PATCH; MAJOR when
    the dimensions change) and need ``previous_id``; a correction needs a ``notice``.
    ``linked``: further tables (new series) protected together with this one (a cell they
    share is suppressed in all or none); each becomes a release of its own.

    Everything is validated first (:func:`validate_pairs`); nothing is stored on a refusal.
    With ``defer`` the releases stay drafts and a protection job is queued (the caller
    commits, then hands the job to the worker: ``publisher.web.jobs.enqueue_protection``);
    without, they are protected here, in the caller's process (the CLI, tests).
    """
    _require_role(actor, "preparer")
    if linked and kind != "initial":
        raise WorkflowError(N_("linked tables can be uploaded together for a first release "
                               "only; revise or correct them one by one"))
    from .notices import notice_texts  # the notice in kk/ru/en (``notices``: {lang: text})

    default = str(settings.get("DEFAULT_LANGUAGE") or "kk")
    texts = notice_texts(notices, notice, kind=kind, default=default)
    release, spec_map = _new_release(session, actor, spec_map, kind=kind, previous_id=previous_id,
                                     notice=(texts or {}).get(default, notice))
    release.notices = texts
    releases = [release]
    maps = [spec_map]
    for pair in linked:
        other, other_map = _new_release(session, actor, pair.spec_map, kind="initial",
                                        previous_id=None, notice=notice)
        releases.append(other)
        maps.append(other_map)
    uploads = [upload, *(p.upload for p in linked)]
    pairs = [Pair(m, u) for m, u in zip(maps, uploads, strict=True)]
    items = validate_pairs(session, pairs, settings)  # raises before anything is stored
    seen: set[tuple[str, str]] = set()
    for r, m, (spec, _, _), up in zip(releases, maps, items, uploads, strict=True):
        r.series = str(m["id"])
        r.version = str(m.get("version") or "1.0.0")
        if (r.series, r.version) in seen or session.scalars(
                select(Release.id).where(Release.series == r.series,
                                         Release.version == r.version)).first():
            raise Conflict(N_("%(series)s %(version)s exists already"), series=r.series,
                           version=r.version)
        seen.add((r.series, r.version))
        _store_content(r, m, spec, up, settings)
    outcomes = None
    if not defer:
        from .history import published_for
        from .service import protect_tables

        outcomes = protect_tables(items, settings=settings, session=session,
                                  published=published_for(session, [i[0] for i in items]))
    for r in releases:
        session.add(r)
    session.flush()
    for r in releases:
        audit(session, actor, "create", release=r, from_state=None, to_state=DRAFT,
              reason=r.notice or "", detail={"kind": r.kind, "version": r.version,
                                             "upload": r.upload_name,
                                             **({"linked": [o.series for o in releases
                                                            if o is not r]}
                                                if len(releases) > 1 else {})})
    if defer:
        queue_protection(session, actor, releases)
        return release
    for r, oc in zip(releases, outcomes, strict=True):
        _store_protected(r, oc.protected_csv_bytes, oc.report.to_dict())
        _move(session, actor, r, PROTECTED, "protect", detail={"content_rev": r.content_rev})
    return release


def change_release(session: Session, actor: User, release: Release, spec_map: dict[str, Any] | None,
                   upload: Upload | None, *, settings: dict[str, Any], reason: str = "",
                   defer: bool = False) -> Release:
    """Replace the table and/or spec; re-protects (``defer``: queues the protection job, as
    :func:`create_release`), and voids any approval. A release protected together with linked
    ones is protected again together with them (they return to draft too)."""
    _require_role(actor, "preparer")
    if actor.id not in contributors(session, release) and not actor.has_role("admin"):
        raise NotFound(N_("no release %(id)s"), id=release.id) \
            if release.state in (DRAFT, PROTECTED) else \
            Forbidden(N_("only the preparer of a release can change it"))
    lock_release(session, release)
    _refuse_if_publishing(session, release, N_("change"))
    _require_state(release, *EDITABLE, doing=N_("change"))
    if _delivered_privately(session, release):
        raise Conflict(N_("this release was delivered to a requester: it is out of the office "
                          "and cannot change; prepare a new version instead"), code="delivered")
    if spec_map is None and upload is None:
        raise WorkflowError(N_("give a new table, a new spec or both"))
    if spec_map is not None and not isinstance(spec_map, dict):
        raise WorkflowError(N_("the spec must be a mapping"))
    new_spec = dict(spec_map if spec_map is not None else release.spec)
    new_spec["id"] = release.series
    new_spec["version"] = release.version
    if upload is None:
        upload = Upload(release.upload_name, _stored_upload(session, release))
    partners = linked_partners(session, release)
    for p in partners:
        lock_release(session, p)
        if p.state not in EDITABLE:
            raise Conflict(N_("the linked table %(series)s is %(state)s: tables protected "
                              "together change together"), series=p.series, state=p.state)
    group = [release, *partners]
    pairs = [Pair(new_spec, upload), *(Pair(dict(p.spec), Upload(p.upload_name,
                                                                  _stored_upload(session, p)))
                                       for p in partners)]
    items = validate_pairs(session, pairs, settings)  # raises before anything is changed
    outcomes = None
    if not defer:
        from .history import published_for
        from .service import protect_tables

        outcomes = protect_tables(items, settings=settings, session=session,
                                  published=published_for(session, [i[0] for i in items],
                                                          exclude_ids=[r.id for r in group]))
    for r, pair, (spec, _, _) in zip(group, pairs, items, strict=True):
        before = r.state
        before_rev = r.content_rev
        had_approval = r.approved_by_id is not None
        _cancel_active(session, actor, r)
        _store_content(r, pair.spec_map, spec, pair.upload, settings)
        r.changed_by = actor
        session.flush()
        # conditional on the revision and state read: a concurrent change or transition loses
        res = session.execute(update(Release).where(Release.id == r.id,
                                                    Release.state == before,
                                                    Release.content_rev == r.content_rev)
                              .values(state=DRAFT).execution_options(synchronize_session=False))
        if res.rowcount != 1 or r.content_rev != before_rev + 1:
            raise Conflict(N_("the release changed meanwhile (it is no longer %(state)s); reload "
                              "and try again"), state=before)
        set_committed_value(r, "state", DRAFT)
        audit(session, actor, "change", release=r, from_state=before, to_state=DRAFT,
              reason=_reason(reason, required=False) if r is release else
              f"protected again with the linked table {release.series}",
              detail={"content_rev": r.content_rev})
        if had_approval:
            audit(session, actor, "approval_voided", release=r, from_state=before,
                  to_state=DRAFT, reason="the table or spec changed after approval",
                  detail={"approved_by": r.approved_by.username if r.approved_by else None})
            r.approved_by = None
            r.approved_rev = None
            r.approved_at = None
            r.embargo_at = None
    if defer:
        queue_protection(session, actor, group)
        return release
    for r, oc in zip(group, outcomes, strict=True):
        _store_protected(r, oc.protected_csv_bytes, oc.report.to_dict())
        _move(session, actor, r, PROTECTED, "protect", detail={"content_rev": r.content_rev})
    return release


# -- protection jobs ------------------------------------------------------------------------------

def protection_job(session: Session, release: Release) -> ProtectionJob | None:
    """The release's latest protection job (None before the first)."""
    return session.scalar(select(ProtectionJob).join(
        ProtectionJobRelease, ProtectionJobRelease.job_id == ProtectionJob.id)
        .where(ProtectionJobRelease.release_id == release.id)
        .order_by(ProtectionJob.id.desc()).limit(1))


def job_releases(session: Session, job: ProtectionJob) -> list[tuple[Release, int]]:
    """The releases a job protects, in order, with the content revision it was queued for."""
    rows = session.execute(select(ProtectionJobRelease.release_id,
                                  ProtectionJobRelease.content_rev)
                           .where(ProtectionJobRelease.job_id == job.id)
                           .order_by(ProtectionJobRelease.position)).all()
    return [(session.get(Release, rid), rev) for rid, rev in rows]


def linked_partners(session: Session, release: Release) -> list[Release]:
    """The other releases last protected together with ``release``."""
    job = protection_job(session, release)
    if job is None:
        return []
    return [r for r, _ in job_releases(session, job) if r.id != release.id]


def queue_protection(session: Session, actor: User | None, releases: list[Release]
                     ) -> ProtectionJob:
    """A pending protection job for ``releases`` (drafts) at their current revision."""
    job = ProtectionJob(status=PENDING, phase="waiting", percent=0, attempts=0,
                        cancel_requested=False, requested_by_id=actor.id if actor else None,
                        created_at=utcnow())
    session.add(job)
    session.flush()
    for i, r in enumerate(releases):
        session.add(ProtectionJobRelease(job_id=job.id, release_id=r.id, position=i,
                                         content_rev=r.content_rev))
        audit(session, actor, "protect_queued", release=r, detail={
            "job": job.id, "content_rev": r.content_rev})
    session.flush()
    return job


def _cancel_active(session: Session, actor: User | None, release: Release) -> None:
    """Cancel the release's pending or running job (a change supersedes it)."""
    job = protection_job(session, release)
    if job is None or job.status not in JOB_ACTIVE:
        return
    if job.status == PENDING:
        job.status, job.error_code, job.finished_at = CANCELLED, "cancelled", utcnow()
    job.cancel_requested = True


def cancel_protection(session: Session, actor: User, release: Release) -> ProtectionJob:
    """Cancel the release's protection: a pending job is cancelled at once, a running one is
    stopped by its worker within seconds (the protection process is killed). The releases
    stay drafts with no protected table; nothing of the job is written."""
    if actor.id not in contributors(session, release) and not actor.has_role("admin"):
        raise Forbidden(N_("only the preparer of a release can cancel its protection"))
    lock_release(session, release)
    job = protection_job(session, release)
    if job is None or job.status not in JOB_ACTIVE:
        raise Conflict(N_("no protection of this release is waiting or running"))
    job.cancel_requested = True
    if job.status == PENDING:
        job.status, job.error_code, job.finished_at = CANCELLED, "cancelled", utcnow()
    for r, _ in job_releases(session, job):
        audit(session, actor, "protect_cancel", release=r, detail={"job": job.id})
    return job


def retry_protection(session: Session, actor: User, release: Release) -> ProtectionJob:
    """Queue the protection of a draft again (after a failure, a cancel or a lost worker)."""
    if actor.id not in contributors(session, release) and not actor.has_role("admin"):
        raise Forbidden(N_("only the preparer of a release can protect it"))
    lock_release(session, release)
    _require_state(release, DRAFT, doing=N_("protect"))
    job = protection_job(session, release)
    if job is not None and job.status in JOB_ACTIVE:
        raise Conflict(N_("the protection of this release is already waiting or running"))
    group = [release] + [p for p in linked_partners(session, release)]
    for p in group[1:]:
        lock_release(session, p)
        if p.state != DRAFT:
            raise Conflict(N_("the linked table %(series)s is %(state)s: tables protected "
                              "together change together"), series=p.series, state=p.state)
    return queue_protection(session, actor, group)


def fail_stale_protections(session: Session, *, stale_after: float,
                           now: datetime | None = None) -> list[int]:
    """Mark failed ("worker_lost") the running protection jobs whose heartbeat is older than
    ``stale_after`` seconds: their worker was killed. Their releases stay drafts; the preparer
    protects again (:func:`retry_protection`). Returns the jobs' ids."""
    from datetime import timedelta

    now = now or utcnow()
    limit = now - timedelta(seconds=stale_after)
    stale = (ProtectionJob.status == RUNNING) & (
        ProtectionJob.heartbeat_at.is_(None) | (ProtectionJob.heartbeat_at < limit))
    ids = list(session.scalars(select(ProtectionJob.id).where(stale)))
    done = []
    for jid in ids:
        res = session.execute(update(ProtectionJob).where(ProtectionJob.id == jid, stale)
                              .values(status=FAILED, error_code="worker_lost", finished_at=now)
                              .execution_options(synchronize_session=False))
        if res.rowcount:
            done.append(jid)
            for rid in session.scalars(select(ProtectionJobRelease.release_id)
                                       .where(ProtectionJobRelease.job_id == jid)):
                audit(session, None, "protect_failed", release=session.get(Release, rid),
                      reason="worker_lost", detail={"job": jid})
    return done


def finish_protection(session: Session, job: ProtectionJob, results: list[dict[str, Any]]
                      ) -> list[Release]:
    """Record a finished job's protected tables and move its releases to "protected", in the
    caller's transaction, only if the job was not cancelled and no release changed since it
    was queued (else :class:`Conflict`, and nothing is written)."""
    members = job_releases(session, job)
    for r, _ in members:
        lock_release(session, r)
    session.refresh(job)
    if job.cancel_requested or job.status != RUNNING:
        raise Conflict(N_("the protection was cancelled"), code="cancelled")
    if len(results) != len(members):
        raise Conflict(N_("the protection did not return every table"))
    actor = session.get(User, job.requested_by_id) if job.requested_by_id else None
    for (r, rev), res in zip(members, results, strict=True):
        if r.state != DRAFT or r.content_rev != rev:
            raise Conflict(N_("the release changed meanwhile (it is no longer %(state)s); reload "
                              "and try again"), state=DRAFT)
        _store_protected(r, res["csv"], res["report"])
        _move(session, actor, r, PROTECTED, "protect",
              detail={"content_rev": r.content_rev, "job": job.id})
    job.status, job.phase, job.percent, job.finished_at = DONE, "done", 100, utcnow()
    job.primaries_left = 0 if job.primaries is not None else None
    return [r for r, _ in members]


def _delivered_privately(session: Session, release: Release) -> bool:
    """True once a data-request answer delivered the release privately (publisher.requests)."""
    try:
        from .request_models import RequestRelease
    except ImportError:  # pragma: no cover - the data-request module is part of the package
        return False
    return session.scalar(select(RequestRelease.id).where(
        RequestRelease.release_id == release.id, RequestRelease.mode == "private")
        .limit(1)) is not None


def _refuse_if_publishing(session: Session, release: Release, doing: str) -> None:
    job = session.scalar(select(PublicationJob).where(PublicationJob.release_id == release.id))
    if release.state == SCHEDULED and job is not None and job.status == "running":
        raise Conflict(N_("cannot %(doing)s a release that is %(state)s"), doing=doing,
                       state=N_("publishing"))


def _stored_upload(session: Session, release: Release) -> bytes:
    data = session.scalar(select(Release.upload_bytes).where(Release.id == release.id))
    return data or b""


def submit(session: Session, actor: User, release: Release, comment: str = "") -> Release:
    _require_role(actor, "preparer")
    if actor.id not in contributors(session, release):
        raise Forbidden(N_("only the preparer of a release can submit it"))
    lock_release(session, release)
    _require_state(release, PROTECTED, doing=N_("submit"))
    if not release.report or release.protected_csv is None:
        raise Conflict(N_("the release has no protected table yet"))
    _move(session, actor, release, SUBMITTED, "submit", _reason(comment, required=False))
    return release


def approve(session: Session, actor: User, release: Release, comment: str = "") -> Release:
    """Four eyes: an approver who neither prepared nor changed the release approves it."""
    _require_role(actor, "approver")
    lock_release(session, release)
    _require_state(release, SUBMITTED, doing=N_("approve"))
    if actor.id in contributors(session, release):
        raise Forbidden(N_("you prepared or changed this release: another approver must "
                           "approve it"), code="four_eyes")
    text_ = _reason(comment, required=False)
    from .history import uncovered

    stale = uncovered(session, release)
    if stale:  # protected before these became held: its pattern was never audited with them
        raise Conflict(N_("this release was protected before %(releases)s of its data source "
                          "were approved or published: its pattern was not audited against "
                          "them; send it back so that it is protected again"),
                       releases=", ".join(f"{r.series} {r.version}" for r in stale[:10]),
                       code="history_changed")
    _decide(session, actor, release, "approve")
    release.approved_by = actor
    release.approved_rev = release.content_rev
    release.approved_at = utcnow()
    _move(session, actor, release, APPROVED, "approve", text_,
          detail={"content_rev": release.content_rev})
    return release


def send_back(session: Session, actor: User, release: Release, comment: str) -> Release:
    _require_role(actor, "approver")
    lock_release(session, release)
    _require_state(release, SUBMITTED, doing=N_("send back"))
    if actor.id in contributors(session, release):
        raise Forbidden(N_("you prepared or changed this release: another approver must "
                           "review it"), code="four_eyes")
    _move(session, actor, release, PROTECTED, "send_back",
          _reason(comment, required=True, what=N_("a comment saying what to change")))
    return release


def _approval_valid(release: Release) -> bool:
    return (release.approved_by_id is not None and release.approved_rev == release.content_rev
            and release.approved_by_id != release.prepared_by_id)


def schedule(session: Session, actor: User, release: Release, embargo_at: datetime,
             reason: str = "") -> Release:
    """Set the embargo (date and time, UTC); only an approved release can be scheduled."""
    _require_role(actor, "approver", "admin")
    lock_release(session, release)
    _require_state(release, APPROVED, doing=N_("schedule"))
    if not _approval_valid(release):
        raise Conflict(N_("the approval does not cover the current table; it must be approved "
                          "again"))
    if embargo_at.tzinfo is None:
        raise WorkflowError(N_("give the embargo with a time zone (UTC)"))
    text_ = _reason(reason, required=False)
    _decide(session, actor, release, "schedule")
    release.embargo_at = embargo_at
    _move(session, actor, release, SCHEDULED, "schedule", text_,
          detail={"embargo_at": embargo_at.isoformat(), "content_rev": release.content_rev})
    job = session.scalar(select(PublicationJob).where(PublicationJob.release_id == release.id))
    if job is None:
        session.add(PublicationJob(release_id=release.id, status="pending", step="waiting",
                                   percent=0, message="", attempts=0, retryable=True))
    else:
        job.status, job.step, job.percent, job.message = "pending", "waiting", 0, ""
    return release


def unschedule(session: Session, actor: User, release: Release, reason: str) -> Release:
    _require_role(actor, "approver", "admin")
    lock_release(session, release)
    _require_state(release, SCHEDULED, doing=N_("unschedule"))
    job = session.scalar(select(PublicationJob).where(PublicationJob.release_id == release.id))
    if job is not None and job.status == "running":
        raise Conflict(N_("publication is running; wait for it to finish or fail"))
    text_ = _reason(reason, required=True)
    release.embargo_at = None
    # the schedule of this revision is lifted: it may be scheduled once again
    session.execute(ReleaseDecision.__table__.delete().where(
        ReleaseDecision.release_id == release.id, ReleaseDecision.kind == "schedule",
        ReleaseDecision.content_rev == release.content_rev))
    _move(session, actor, release, APPROVED, "unschedule", text_)
    if job is not None:
        job.status, job.step, job.message = "pending", "waiting", "unscheduled"
    return release


def retry_publication(session: Session, actor: User, release: Release, reason: str = "") -> Release:
    """Queue a failed publication again (the worker resumes it: no duplicate is published)."""
    _require_role(actor, "approver", "admin")
    lock_release(session, release)
    _require_state(release, SCHEDULED, WITHDRAWN, doing=N_("publish"))
    job = session.scalar(select(PublicationJob).where(PublicationJob.release_id == release.id))
    if job is None or job.status != "failed":
        raise Conflict(N_("only a failed publication can be retried"))
    job.status, job.message, job.retryable = "pending", "", True
    audit(session, actor, "publish_retry", release=release, reason=_reason(reason, required=False),
          detail={"attempts": job.attempts})
    return release


def check_publishable(release: Release, now: datetime | None = None) -> None:
    """Raise unless the release is scheduled, approved for its content and past its embargo."""
    _require_state(release, SCHEDULED, doing=N_("publish"))
    if not _approval_valid(release):
        raise Conflict(N_("the approval does not cover the current table"))
    now = now or utcnow()
    embargo = as_utc(release.embargo_at)
    if embargo is None or embargo > now:
        raise Conflict(N_("the embargo has not passed (until %(when)s UTC)"),
                       when=embargo.strftime("%Y-%m-%d %H:%M") if embargo else "?")


def mark_published(session: Session, release: Release, *, url: str, target: str,
                   dataset_name: str, actor: User | None = None,
                   content_rev: int | None = None) -> Release:
    """The worker records a finished publication and retires the version it replaces.

    ``content_rev`` is the revision that was packaged: the record is refused if the release
    has another one now (it cannot, as a scheduled release cannot change; checked anyway)."""
    lock_release(session, release)
    check_publishable(release)
    if content_rev is not None and release.content_rev != content_rev:
        raise Conflict(N_("the release changed during publishing (revision %(rev)s was "
                          "published)"), rev=content_rev)
    release.published_at = utcnow()
    release.published_url = url
    release.published_target = target
    release.dataset_name = dataset_name
    earlier = session.scalars(select(Release).where(Release.series == release.series,
                                                    Release.state == PUBLISHED,
                                                    Release.id != release.id)).all()
    _move(session, actor, release, PUBLISHED, "publish",
          detail={"url": url, "target": target, "dataset": dataset_name})
    for old in earlier:
        to = CORRECTED if release.kind == "correction" else SUPERSEDED
        _move(session, actor, old, to, "correct" if to == CORRECTED else "supersede",
              reason=release.notice or "", detail={"by_version": release.version})
    return release


def withdraw(session: Session, actor: User, release: Release, reason: str) -> Release:
    """Withdraw a published version: gone from Ashyq's public downloads at once (410, the page
    says why); a version published to CKAN gets a withdrawal job (see ``publisher.tasks``:
    the dataset is made private there, verified anonymously, retried until done)."""
    _require_role(actor, "approver", "admin")
    lock_release(session, release)
    _require_state(release, PUBLISHED, doing=N_("withdraw"))
    why = _reason(reason, required=True)
    release.withdrawn_at = utcnow()
    release.withdrawn_reason = why
    on_ckan = release.published_target == "ckan" and bool(release.dataset_name)
    _move(session, actor, release, WITHDRAWN, "withdraw", why,
          detail={"catalogue": release.dataset_name if on_ckan else None})
    if on_ckan:
        job = session.scalar(select(PublicationJob).where(PublicationJob.release_id == release.id))
        if job is None:
            job = PublicationJob(release_id=release.id, attempts=0)
            session.add(job)
        job.status, job.step, job.percent, job.message = "pending", WITHDRAW_STEP, 0, ""
        job.retryable, job.attempts = True, 0
    return release


def needs_withdrawal(session: Session, release: Release) -> bool:
    """Whether the release has a withdrawal from CKAN still to do (to queue it)."""
    job = session.scalar(select(PublicationJob).where(PublicationJob.release_id == release.id))
    return (release.state == WITHDRAWN and job is not None and job.step == WITHDRAW_STEP
            and job.status in ("pending", "failed"))


def log_pre_release_access(session: Session, actor: User, release: Release, what: str) -> None:
    """Embargoed content seen before publication is logged (who, when, what)."""
    if release.state in (APPROVED, SCHEDULED):
        audit(session, actor, "pre_release_access", release=release, detail={"what": what})


def public_releases(session: Session, series: str) -> list[Release]:
    rows = session.scalars(select(Release).where(Release.series == series,
                                                 Release.state.in_(PUBLIC_STATES))).all()
    return sorted(rows, key=lambda r: parse_version(r.version), reverse=True)


def public_release(session: Session, series: str, version: str) -> Release:
    r = session.scalars(select(Release).where(Release.series == series, Release.version == version,
                                              Release.state.in_(PUBLIC_STATES))).first()
    if r is None:
        raise NotFound(N_("no published version %(version)s of %(series)s"), version=version,
                       series=series)
    return r


def audit_rows(session: Session, release_id: int | None = None) -> Iterable[AuditEntry]:
    q = select(AuditEntry).order_by(AuditEntry.id)
    if release_id is not None:
        q = q.where(AuditEntry.release_id == release_id)
    return session.scalars(q)
