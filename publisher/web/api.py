"""The JSON API (flask-smorest, marshmallow schemas); OpenAPI document at ``/api/openapi.json``.

Authentication: ``Authorization: Bearer <token>`` (tokens from ``POST /api/auth/token``, the web
UI or the CLI; stored hashed). Session cookies are not accepted here, so the API needs no CSRF
token. Errors are JSON ``{"code": ..., "message": ...}``. Public endpoints (``/api/public/...``)
need no token and return only protected values.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import UTC
from functools import lru_cache, wraps
from typing import Any

from flask import Flask, Response, abort, g, jsonify
from flask_smorest import Api, Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import TooManyRequests

from .. import workflow as wf
from ..workflow_models import (
    ROLES,
    ApiToken,
    AuditEntry,
    Release,
    User,
    utcnow,
)
from . import present
from .common import authenticate, db, settings, token_user
from .exports import audit_csv
from .jobs import enqueue, enqueue_protection, progress_of, protection_of

SECURITY = [{"bearerAuth": []}]
MAX_CELLS_PAGE = 1_000_000  # the largest ?limit= of the cells endpoints
USERNAME = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]{1,63}$",
                           error="2-64 characters: a-z 0-9 _ . - (starting with a letter or digit)")


class _Api(Api):
    def _register_error_handlers(self) -> None:
        """Errors are rendered app-wide by ``publisher.web`` (JSON under /api, HTML elsewhere)."""


# -- schemas -------------------------------------------------------------------------------------

class ApiErrorSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    errors = fields.Dict()


_Api.ERROR_SCHEMA = ApiErrorSchema  # the documented error body is ours: {code, message}


class TokenRequestSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    name = fields.String(load_default="api", validate=validate.Length(max=100))


class TokenSchema(Schema):
    token = fields.String(required=True)
    prefix = fields.String()
    user = fields.String()


class MeSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    roles = fields.List(fields.String())


class ReleaseSchema(Schema):
    id = fields.Integer()
    series = fields.String()
    version = fields.String()
    kind = fields.String()
    state = fields.String()
    title = fields.Dict(keys=fields.String(), values=fields.String())
    notice = fields.String(allow_none=True)
    previous_id = fields.Integer(allow_none=True)
    upload_name = fields.String()
    content_rev = fields.Integer()
    report = fields.Function(lambda r: wf.safe_report(r.report), allow_none=True,
                             metadata={"type": "object", "nullable": True,
                                       "description": "the disclosure report (counts, never "
                                                      "figures derived from raw values)"})
    prepared_by = fields.Function(lambda r: r.prepared_by.username if r.prepared_by else None,
                                  allow_none=True)
    changed_by = fields.Function(lambda r: r.changed_by.username if r.changed_by else None,
                                 allow_none=True)
    approved_by = fields.Function(lambda r: r.approved_by.username if r.approved_by else None,
                                  allow_none=True)
    approved_at = fields.DateTime(allow_none=True)
    embargo_at = fields.DateTime(allow_none=True)
    published_at = fields.DateTime(allow_none=True)
    published_url = fields.String(allow_none=True)
    withdrawn_at = fields.DateTime(allow_none=True)
    withdrawn_reason = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    protection = fields.Function(lambda r: _protection_brief(r), allow_none=True, metadata={
        "type": "object", "nullable": True,
        "description": "the latest protection job: job_id, status, phase, percent "
                       "(GET .../protection for the rest)"})


def _protection_brief(r: Release) -> dict[str, Any] | None:
    job = wf.protection_job(db(), r)
    if job is None:
        return None
    return {"job_id": job.id, "status": job.status, "phase": job.phase, "percent": job.percent}


class LinkedTableSchema(Schema):
    spec = fields.Dict(required=True, metadata={"description": "the spec of the linked table "
                                                               "(a new series)"})
    table_csv = fields.String(required=True, validate=validate.Length(min=1))
    table_name = fields.String(load_default="table.csv", validate=validate.Length(min=1, max=255))


class ReleaseCreateSchema(Schema):
    spec = fields.Dict(required=True, metadata={
        "description": "the table spec (see 'The spec of a table' in README.md)"})
    table_csv = fields.String(required=True, validate=validate.Length(min=1),
                              metadata={"description": "the table in long format, CSV (UTF-8)"})
    table_name = fields.String(load_default="table.csv", validate=validate.Length(min=1, max=255))
    kind = fields.String(load_default="initial",
                         validate=validate.OneOf(["initial", "revision", "correction"]))
    previous_id = fields.Integer(load_default=None, allow_none=True,
                                 validate=validate.Range(min=1, max=2**31 - 1))
    notice = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(max=wf.MAX_REASON))
    linked = fields.List(fields.Nested(LinkedTableSchema), load_default=list,
                         validate=validate.Length(max=10), metadata={
                             "description": "further tables protected together with this one "
                                            "(each becomes a release of its own)"})


class ReleaseChangeSchema(Schema):
    spec = fields.Dict(load_default=None, allow_none=True)
    table_csv = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1))
    table_name = fields.String(load_default="table.csv", validate=validate.Length(min=1, max=255))
    reason = fields.String(load_default="", validate=validate.Length(max=wf.MAX_REASON))


class CommentSchema(Schema):
    comment = fields.String(load_default="", validate=validate.Length(max=wf.MAX_REASON))


class ReasonSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=wf.MAX_REASON))


class ScheduleSchema(Schema):
    embargo_at = fields.AwareDateTime(load_default=None, allow_none=True, default_timezone=UTC,
                                      metadata={"description": "UTC date and time; empty = now"})
    reason = fields.String(load_default="", validate=validate.Length(max=wf.MAX_REASON))


class CellSchema(Schema):
    codes = fields.Dict(keys=fields.String(), values=fields.String())
    obs_value = fields.Raw(allow_none=True, metadata={"type": "number", "nullable": True})
    obs_status = fields.String()
    conf_status = fields.String()
    obs_moe = fields.Raw(allow_none=True, metadata={"type": "number", "nullable": True})


class CellsSchema(Schema):
    """Documents the cells answer; the body itself is written by :func:`_cells_response`
    (a page of thousands of cells through marshmallow took ~150 ms, row by row)."""

    series = fields.String()
    version = fields.String()
    dimensions = fields.List(fields.String())
    total = fields.Integer(metadata={"description": "cells in the whole table"})
    offset = fields.Integer(metadata={"description": "index of the first cell of this page"})
    limit = fields.Integer(allow_none=True, metadata={
        "description": "the page size asked for (null: the rest of the table)"})
    cells = fields.List(fields.Nested(CellSchema))


class CellsQuerySchema(Schema):
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**31 - 1),
                            metadata={"description": "skip this many cells (default 0)"})
    limit = fields.Integer(load_default=None, allow_none=True,
                           validate=validate.Range(min=1, max=MAX_CELLS_PAGE), metadata={
                               "description": "at most this many cells (default: all)"})


class ProgressSchema(Schema):
    release_id = fields.Integer()
    state = fields.String()
    status = fields.String()
    step = fields.String()
    percent = fields.Integer()
    message = fields.String()
    attempts = fields.Integer()
    url = fields.String(allow_none=True)


class ProtectionSchema(Schema):
    release_id = fields.Integer()
    state = fields.String()
    job_id = fields.Integer(allow_none=True)
    status = fields.String(metadata={"description": "none, pending, running, done, failed, "
                                                    "cancelled"})
    phase = fields.String()
    percent = fields.Integer()
    cells = fields.Integer(allow_none=True)
    primaries = fields.Integer(allow_none=True)
    primaries_left = fields.Integer(allow_none=True)
    error_code = fields.String(allow_none=True, metadata={
        "description": "refused, time_limit, memory_limit, cancelled, worker_lost, internal"})
    error = fields.String(allow_none=True)
    cancel_requested = fields.Boolean()
    attempts = fields.Integer()
    linked = fields.List(fields.Dict())
    started_at = fields.String(allow_none=True)
    heartbeat_at = fields.String(allow_none=True)


class AuditSchema(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    actor = fields.String(attribute="actor_name")
    release_id = fields.Integer(allow_none=True)
    action = fields.String()
    from_state = fields.String(allow_none=True)
    to_state = fields.String(allow_none=True)
    reason = fields.String()
    detail = fields.Function(lambda a: wf.public_detail(a.detail),
                             metadata={"type": "object"})


class AuditQuerySchema(Schema):
    release_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**31 - 1))
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))


class UserCreateSchema(Schema):
    username = fields.String(required=True, validate=USERNAME)
    display_name = fields.String(load_default="", validate=validate.Length(max=200))
    password = fields.String(required=True, validate=validate.Length(min=10, max=1000))
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), required=True,
                        validate=validate.Length(min=1, max=3))


class PublicReleaseSchema(Schema):
    series = fields.String()
    version = fields.String()
    kind = fields.String()
    state = fields.String()
    title = fields.Dict(keys=fields.String(), values=fields.String())
    notice = fields.String(allow_none=True)
    published_at = fields.DateTime(allow_none=True)
    url = fields.Function(lambda r: present.version_url(settings().get("PUBLIC_BASE_URL", ""), r))
    ckan_url = fields.String(attribute="published_url", allow_none=True)
    method = fields.Function(lambda r: present.method_note(r))
    withdrawn_at = fields.DateTime(allow_none=True)
    withdrawn_reason = fields.String(allow_none=True)


class SeriesSchema(Schema):
    series = fields.String()
    versions = fields.List(fields.Nested(PublicReleaseSchema))


# -- blueprints ------------------------------------------------------------------------------------

blp = Blueprint("api", __name__, url_prefix="/api",
                description="Releases: upload, protect, review, approve, schedule, publish")
public_blp = Blueprint("public_api", __name__, url_prefix="/api/public",
                       description="Published versions (no sign-in; protected values only)")

def _errs(target: Blueprint, *codes: int):  # noqa: ANN202
    def deco(fn):  # noqa: ANN001, ANN202
        for code in codes:
            fn = target.alt_response(code, schema=ApiErrorSchema, description="error")(fn)
        return fn
    return deco


def authenticated(fn):  # noqa: ANN001, ANN201
    """Resolve the bearer token to a user (401 JSON otherwise)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = token_user(db())
        if user is None:
            abort(401)
        g.api_user = user
        return fn(*args, **kwargs)

    return wrapper


def _user() -> User:
    return g.api_user


def _release(release_id: int) -> Release:
    return wf.get_release(db(), _user(), release_id)


def _commit() -> None:
    try:
        db().commit()
    except IntegrityError as e:
        db().rollback()
        raise wf.Conflict("the change conflicts with another one; reload and try again") from e


@blp.route("/auth/token", methods=["POST"])
@blp.arguments(TokenRequestSchema)
@blp.response(201, TokenSchema)
@_errs(blp, 401, 422)
@blp.alt_response(429, schema=ApiErrorSchema, description="too many wrong passwords: wait",
                  headers={"Retry-After": {"description": "seconds of the back-off",
                                           "schema": {"type": "integer", "minimum": 1}}})
def issue_token(data: dict[str, Any]) -> dict[str, Any]:
    """Exchange a user name and password for an API token (rate-limited like the login form)."""
    user, why = authenticate(db(), data["username"], data["password"])
    if why == "rate_limited":  # Retry-After: the same back-off the login form names
        from .auth import retry_after

        raise TooManyRequests(retry_after=max(1, retry_after()))
    if user is None:
        abort(401)
    tok, clear = ApiToken.issue(user, data.get("name") or "api")
    db().add(tok)
    wf.audit(db(), user, "token_issued", detail={"prefix": tok.prefix, "via": "api"})
    _commit()
    return {"token": clear, "prefix": tok.prefix, "user": user.username}


@blp.route("/me", methods=["GET"])
@blp.response(200, MeSchema)
@blp.doc(security=SECURITY)
@_errs(blp, 401)
@authenticated
def me() -> dict[str, Any]:
    u = _user()
    return {"id": u.id, "username": u.username, "display_name": u.display_name,
            "roles": sorted(u.roles)}


@blp.route("/releases", methods=["GET"])
@blp.response(200, ReleaseSchema(many=True))
@blp.doc(security=SECURITY)
@_errs(blp, 401)
@authenticated
def list_releases() -> list[Release]:
    """Releases the caller may see (drafts only their own)."""
    return wf.visible_releases(db(), _user())


@blp.route("/releases", methods=["POST"])
@blp.arguments(ReleaseCreateSchema)
@blp.response(201, ReleaseSchema)
@blp.doc(security=SECURITY)
@_errs(blp, 401, 403, 409, 413, 422)
@authenticated
def create_release(data: dict[str, Any]) -> Release:
    """Upload a table and its spec (preparers): everything the protection would refuse is
    refused now; the release is created as a draft and its protection job queued (follow it
    at ``GET /api/releases/{id}/protection``; the release becomes "protected")."""
    linked = [wf.Pair(t["spec"], _table_upload(t)) for t in data.get("linked") or []]
    r = wf.create_release(db(), _user(), data["spec"], _table_upload(data),
                          settings=settings(), kind=data["kind"],
                          previous_id=data["previous_id"], notice=data["notice"],
                          linked=linked, defer=True)
    return _queue_protection(r)


def _table_upload(data: dict[str, Any]) -> wf.Upload | None:
    """The table of a create/change body (``table_name``, ``table_csv``), None without one."""
    if not data.get("table_csv"):
        return None
    return wf.Upload(data["table_name"], data["table_csv"].encode("utf-8"))


def _queue_protection(r: Release) -> Release:
    """Commit a release checked with ``defer=True`` and queue its protection job."""
    job = wf.protection_job(db(), r)
    _commit()
    enqueue_protection(job.id)
    db().refresh(r)
    return r


@blp.route("/releases/<int:release_id>", methods=["GET"])
@blp.response(200, ReleaseSchema)
@blp.doc(security=SECURITY)
@_errs(blp, 401, 404)
@authenticated
def get_release(release_id: int) -> Release:
    r = _release(release_id)
    wf.log_pre_release_access(db(), _user(), r, "api:release")
    _commit()
    return r


@blp.route("/releases/<int:release_id>", methods=["PUT"])
@blp.arguments(ReleaseChangeSchema)
@blp.response(200, ReleaseSchema)
@blp.doc(security=SECURITY)
@_errs(blp, 401, 403, 404, 409, 413, 422)
@authenticated
def change_release(data: dict[str, Any], release_id: int) -> Release:
    """Replace the table and/or spec: checked now, then protected again by a queued job
    (linked tables with it); voids any approval."""
    r = _release(release_id)
    wf.change_release(db(), _user(), r, data.get("spec"), _table_upload(data),
                      settings=settings(), reason=data.get("reason", ""), defer=True)
    return _queue_protection(r)


@blp.route("/releases/<int:release_id>/protection", methods=["GET"])
@blp.response(200, ProtectionSchema)
@blp.doc(security=SECURITY)
@_errs(blp, 401, 404)
@authenticated
def release_protection(release_id: int) -> dict[str, Any]:
    """The release's protection job: status, phase, percent, cells, primary cells (left)."""
    return protection_of(_release(release_id), translate=False)


@blp.route("/releases/<int:release_id>/protection/cancel", methods=["POST"])
@blp.response(200, ProtectionSchema)
@blp.doc(security=SECURITY)
@_errs(blp, 401, 403, 404, 409)
@authenticated
def cancel_protection(release_id: int) -> dict[str, Any]:
    """Cancel the protection job (its process is killed); the release stays a draft."""
    r = _release(release_id)
    wf.cancel_protection(db(), _user(), r)
    _commit()
    return protection_of(r, translate=False)


@blp.route("/releases/<int:release_id>/protection/retry", methods=["POST"])
@blp.response(202, ProtectionSchema)
@blp.doc(security=SECURITY)
@_errs(blp, 401, 403, 404, 409)
@authenticated
def retry_protection(release_id: int) -> dict[str, Any]:
    """Queue the protection of a draft again (after a failure, a cancel or a lost worker)."""
    r = _release(release_id)
    job = wf.retry_protection(db(), _user(), r)
    _commit()
    enqueue_protection(job.id)
    db().refresh(r)
    return protection_of(r, translate=False)


def _action(name: str, fn: Any, schema: type[Schema], arg: str, doc: str) -> None:
    @_errs(blp, 400, 401, 403, 404, 409, 422)
    @authenticated
    def view(data: dict[str, Any], release_id: int) -> Release:
        r = _release(release_id)
        fn(db(), _user(), r, data[arg])
        _commit()
        if wf.needs_withdrawal(db(), r):  # the worker withdraws it from CKAN (retried)
            enqueue(r.id, utcnow())
        return r

    view.__name__ = f"release_{name.replace('-', '_')}"
    view.__doc__ = doc
    blp.route(f"/releases/<int:release_id>/{name}", methods=["POST"])(
        blp.arguments(schema)(blp.response(200, ReleaseSchema)(blp.doc(security=SECURITY)(view))))


_action("submit", wf.submit, CommentSchema, "comment", "Submit a protected release for review.")
_action("approve", wf.approve, CommentSchema, "comment",
        "Approve a submitted release (an approver who did not prepare or change it).")
_action("send-back", wf.send_back, CommentSchema, "comment",
        "Send a submitted release back to its preparer, with a comment (required).")
_action("unschedule", wf.unschedule, ReasonSchema, "reason", "Lift the schedule of a release.")
_action("withdraw", wf.withdraw, ReasonSchema, "reason",
        "Withdraw a published version (on CKAN: made private by the worker, verified "
        "anonymously).")


@blp.route("/releases/<int:release_id>/schedule", methods=["POST"])
@blp.arguments(ScheduleSchema)
@blp.response(200, ReleaseSchema)
@blp.doc(security=SECURITY)
@_errs(blp, 400, 401, 403, 404, 409, 422)
@authenticated
def schedule_release(data: dict[str, Any], release_id: int) -> Release:
    """Schedule an approved release for publication at its embargo (empty = now)."""
    r = _release(release_id)
    when = data.get("embargo_at") or utcnow()
    wf.schedule(db(), _user(), r, when, data.get("reason", ""))
    _commit()
    enqueue(r.id, when)
    return r


@blp.route("/releases/<int:release_id>/retry", methods=["POST"])
@blp.arguments(CommentSchema)
@blp.response(200, ReleaseSchema)
@blp.doc(security=SECURITY)
@_errs(blp, 400, 401, 403, 404, 409, 422)
@authenticated
def retry_release(data: dict[str, Any], release_id: int) -> Release:
    """Queue a failed publication again (approvers, administrators)."""
    r = _release(release_id)
    wf.retry_publication(db(), _user(), r, data.get("comment", ""))
    _commit()
    enqueue(r.id, utcnow())
    return r


@blp.route("/releases/<int:release_id>/upload", methods=["GET"])
@blp.doc(security=SECURITY, responses={"200": {"description": "the uploaded table", "content": {
    "text/csv": {"schema": {"type": "string"}}}}})
@_errs(blp, 401, 403, 404)
@authenticated
def release_upload(release_id: int) -> Response:
    """The uploaded (raw) table: only for the release's contributors, its approver(s) and
    administrators; every view is written to the audit log."""
    r = _release(release_id)
    name, data = wf.raw_upload(db(), _user(), r, "api:upload")
    _commit()
    return Response(data, mimetype="text/csv", headers={
        "Content-Disposition": "attachment; filename=" + _safe_name(name),
        "Cache-Control": "no-store"})


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100] or "upload.csv"


@blp.route("/releases/<int:release_id>/cells", methods=["GET"])
@blp.arguments(CellsQuerySchema, location="query")
@blp.response(200, CellsSchema)
@blp.doc(security=SECURITY)
@_errs(blp, 401, 404, 422)
@authenticated
def release_cells(args: dict[str, Any], release_id: int) -> Response:
    """The protected table (suppressed cells have ``obs_value`` null), whole or a page
    (``offset``, ``limit``)."""
    r = _release(release_id)
    wf.log_pre_release_access(db(), _user(), r, "api:cells")
    _commit()
    return _cells_response(r, args["offset"], args["limit"])


def _num(v: str) -> int | float | None:
    """A CSV count as JSON: an integer when whole, None when empty (suppressed) or not finite."""
    if not v:
        return None
    try:
        f = float(v)
    except ValueError:
        return None
    if not math.isfinite(f):
        return None
    return int(f) if f.is_integer() else f


@lru_cache(maxsize=8)
def _cell_fragments(protected_csv: bytes, dims: tuple[str, ...]) -> tuple[str, ...]:
    """Each cell of a protected table as its JSON text, in table order (what
    :func:`publisher.web.present.cell_rows` gives, without a DataFrame). Cached by content:
    a published table never changes, and a changed draft has other bytes."""
    reader = csv.DictReader(io.StringIO(protected_csv.decode("utf-8-sig")))
    has_moe = "obs_moe" in (reader.fieldnames or [])
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    out = []
    for rec in reader:
        cell: dict[str, Any] = {"codes": {d: rec.get(d) or "" for d in dims},
                                "obs_value": _num(rec.get("obs_value") or ""),
                                "obs_status": rec.get("obs_status") or "",
                                "conf_status": rec.get("conf_status") or ""}
        if has_moe:
            cell["obs_moe"] = _num(rec.get("obs_moe") or "")
        out.append(dumps(cell))
    return tuple(out)


def _cells_response(r: Release, offset: int, limit: int | None) -> Response:
    """The cells answer (:class:`CellsSchema`), written as JSON text directly."""
    dims = tuple(present.dimension_names(r))
    cells = _cell_fragments(bytes(r.protected_csv or b""), dims)
    page = cells[offset:] if limit is None else cells[offset:offset + limit]
    head = json.dumps({"series": r.series, "version": r.version, "dimensions": list(dims),
                       "total": len(cells), "offset": offset, "limit": limit},
                      ensure_ascii=False, separators=(",", ":"))
    body = head[:-1] + ',"cells":[' + ",".join(page) + "]}"
    return Response(body, mimetype="application/json")


@blp.route("/releases/<int:release_id>/diff", methods=["GET"])
@blp.response(200, fields.Dict(allow_none=True))
@blp.doc(security=SECURITY)
@_errs(blp, 401, 404)
@authenticated
def release_diff(release_id: int) -> Any:
    """Cell-by-cell difference against the version this one replaces (null for a first one)."""
    r = _release(release_id)
    return jsonify(present.diff(r.previous, r))


@blp.route("/releases/<int:release_id>/progress", methods=["GET"])
@blp.response(200, ProgressSchema)
@blp.doc(security=SECURITY)
@_errs(blp, 401, 404)
@authenticated
def release_progress(release_id: int) -> dict[str, Any]:
    r = _release(release_id)
    return progress_of(r)


@blp.route("/releases/<int:release_id>/audit", methods=["GET"])
@blp.response(200, AuditSchema(many=True))
@blp.doc(security=SECURITY)
@_errs(blp, 401, 404)
@authenticated
def release_audit(release_id: int) -> list[AuditEntry]:
    r = _release(release_id)
    return list(wf.audit_rows(db(), r.id))


@blp.route("/audit", methods=["GET"])
@blp.arguments(AuditQuerySchema, location="query")
@blp.response(200, AuditSchema(many=True))
@blp.doc(security=SECURITY, responses={"200": {"content": {
    "application/json": {"schema": {"type": "array",
                                    "items": {"$ref": "#/components/schemas/Audit"}}},
    "text/csv": {"schema": {"type": "string"}}}}})
@_errs(blp, 401, 403, 422)
@authenticated
def audit_export(args: dict[str, Any]) -> Any:
    """The whole audit log (admins), as JSON or CSV."""
    if not _user().has_role("admin"):
        raise wf.Forbidden("only administrators can export the audit log")
    rows = list(wf.audit_rows(db(), args.get("release_id")))
    wf.audit(db(), _user(), "audit_export", detail={"rows": len(rows), "format": args["format"]})
    _commit()
    if args["format"] == "csv":
        return Response(audit_csv(rows), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=audit-log.csv"})
    return rows


@blp.route("/users", methods=["POST"])
@blp.arguments(UserCreateSchema)
@blp.response(201, MeSchema)
@blp.doc(security=SECURITY)
@_errs(blp, 401, 403, 409, 422)
@authenticated
def create_user(data: dict[str, Any]) -> dict[str, Any]:
    """Create a user (administrators)."""
    if not _user().has_role("admin"):
        raise wf.Forbidden("only administrators can create users")
    if db().scalar(select(User.id).where(User.username == data["username"])):
        raise wf.Conflict(f"the user name {data['username']!r} is taken")
    from ..security_models import password_problem  # refuses (422) a weak or common password

    password_problem(data["password"], data["username"], int(settings()["PASSWORD_MIN_LENGTH"]))
    u = User(username=data["username"], display_name=data["display_name"], password_hash="",
             active=True)
    u.set_password(data["password"])
    u.set_roles(data["roles"])
    db().add(u)
    db().flush()
    wf.audit(db(), _user(), "user_created", detail={"user": u.username, "roles": sorted(u.roles)})
    _commit()
    return {"id": u.id, "username": u.username, "display_name": u.display_name,
            "roles": sorted(u.roles)}


# -- public ------------------------------------------------------------------------------------------

@public_blp.route("/series/<string:series>", methods=["GET"])
@public_blp.response(200, SeriesSchema)
@_errs(public_blp, 404)
def public_series(series: str) -> dict[str, Any]:
    """Every published version of a series, newest first."""
    rows = wf.public_releases(db(), series)
    if not rows:
        raise wf.NotFound(f"no published series {series}")
    return {"series": series, "versions": rows}


@public_blp.route("/series/<string:series>/<string:version>", methods=["GET"])
@public_blp.response(200, PublicReleaseSchema)
@_errs(public_blp, 404)
def public_version(series: str, version: str) -> Release:
    return wf.public_release(db(), series, version)


@public_blp.route("/series/<string:series>/<string:version>/cells", methods=["GET"])
@public_blp.arguments(CellsQuerySchema, location="query")
@public_blp.response(200, CellsSchema)
@_errs(public_blp, 404, 410, 422)
def public_cells(args: dict[str, Any], series: str, version: str) -> Response:
    """The published (protected) table, whole or a page (``offset``, ``limit``); nothing for a
    withdrawn version."""
    r = wf.public_release(db(), series, version)
    if r.state == "withdrawn":
        raise wf.WorkflowError("this version was withdrawn", code="withdrawn", status=410)
    return _cells_response(r, args["offset"], args["limit"])


def init_api(app: Flask) -> None:
    app.config.setdefault("API_TITLE", "Ashyq release API")
    app.config.setdefault("API_VERSION", "1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("API_SPEC_OPTIONS", {
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    })
    api = _Api(app)
    api.register_blueprint(blp)
    api.register_blueprint(public_blp)
    from . import csrf

    csrf.exempt(blp)
    csrf.exempt(public_blp)
    app.extensions["ashyq.api"] = api


__all__ = ["init_api"]
