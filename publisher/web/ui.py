"""Web UI for preparers, approvers and administrators (server-rendered; CSRF on every form).

Views translate HTTP to :mod:`publisher.workflow` calls and render the result; refusals come back
as a flashed message in the user's language plus the service's precise one-line reason.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from datapackages.formats import formats
from disclosure.errors import AshyqError
from disclosure.methods import methods

from .. import workflow as wf
from ..workflow_models import PUBLISHED, ROLES, ApiToken, Release, User, as_utc, utcnow
from . import labels, present
from .common import authenticate, db, localized, settings
from .exports import audit_csv
from .forms import (
    ChangeForm,
    CommentForm,
    EmptyForm,
    LanguageForm,
    LoginForm,
    ReasonForm,
    ReleaseForm,
    ScheduleForm,
    SpecFormError,
    TokenForm,
    UserForm,
    read_spec_upload,
    spec_from_form,
)
from .jobs import (
    PROTECT_ERROR,
    PROTECT_PHASE,
    PROTECT_STATUS,
    enqueue,
    enqueue_protection,
    progress_of,
    protection_of,
)

bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static",
               static_url_path="/ui-static")


# Steps of a withdrawal job (the publication steps are in labels.STEP).
WITHDRAW_STEPS = {wf.WITHDRAW_STEP: _l("withdrawing from the catalogue")}


def step_label(step: str | None) -> str:
    if step in WITHDRAW_STEPS:
        return str(WITHDRAW_STEPS[step])
    return labels.t(labels.STEP, step)


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"labels": labels, "t": labels.t, "step_label": step_label,
            "protect_reason": lambda p: protect_reason(p), "protect_status": PROTECT_STATUS,
            "protect_phase": PROTECT_PHASE,
            "empty_form": EmptyForm(formdata=None)}


def lang() -> str:
    return str(get_locale() or "kk")


def role_required(*roles: str):  # noqa: ANN201
    def deco(fn):  # noqa: ANN001, ANN202
        @wraps(fn)
        @login_required
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not any(current_user.has_role(r) for r in roles):
                abort(403)
            return fn(*args, **kwargs)
        return wrapper
    return deco


def _visible_release(release_id: int) -> Release:
    """The release if the signed-in user may see it, else 404 (no existence leak)."""
    try:
        return wf.get_release(db(), current_user, release_id)
    except wf.NotFound:
        abort(404)


def _refusal(e: Exception) -> None:
    flash(_("Refused: %(reason)s", reason=localized(e)), "error")


def _form_errors(form: Any) -> None:
    from .review import line_in_language

    for field, errors in form.errors.items():
        label = getattr(getattr(form, field, None), "label", None)
        name = label.text if label is not None else field
        for err in errors:
            # WTForms' own catalogue lacks a few (ru: "'%(value)s' is not a valid choice for
            # this field." is fuzzy there): those come from ours
            flash(f"{name}: {line_in_language(str(err))}", "error")


# -- sign in / out ---------------------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    from .auth import retry_after, safe_next, sign_in

    form = LoginForm()
    status, headers = 200, {}
    if form.validate_on_submit():
        user, why = authenticate(db(), form.username.data, form.password.data)
        if user is not None:
            session.pop("_flashes", None)
            sign_in(user)
            return redirect(safe_next(request.args.get("next")) or url_for("ui.dashboard"))
        if why == "rate_limited":
            wait = retry_after()
            flash(_("Too many wrong passwords for this account or from this address. "
                    "Wait %(n)s seconds and try again.", n=wait), "error")
            status, headers = 429, {"Retry-After": str(wait)}
        else:
            flash(_("Wrong user name or password."), "error")
            status = 401
    elif request.method == "POST":
        _form_errors(form)
        status = 400
    return render_template("login.html", form=form), status, headers


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    from .auth import sign_out

    form = EmptyForm()
    if form.validate_on_submit():
        sign_out()  # the server-side session ends: the old cookie no longer signs in
    return redirect(url_for("ui.login"))


# -- releases --------------------------------------------------------------------------------------

@bp.route("/dashboard")
@login_required
def dashboard() -> Any:
    releases = wf.visible_releases(db(), current_user)
    return render_template("dashboard.html", releases=releases, lang=lang(),
                           todo=_todo(releases))


def _todo(releases: list[Release]) -> list[tuple[Release, str]]:
    """What the signed-in user should do next, release by release."""
    u = current_user
    approver = u.has_role("approver")
    out = []
    for r in releases:
        mine = u.id in wf.contributors(db(), r)
        if r.state == "protected" and mine:
            out.append((r, str(_l("submit it for review"))))
        elif r.state == "submitted" and approver and not mine:
            out.append((r, str(_l("review it"))))
        elif r.state == "approved" and (approver or u.has_role("admin")):
            out.append((r, str(_l("schedule its publication"))))
        elif r.state == "scheduled" and progress_of(r)["status"] == "failed":
            out.append((r, str(_l("publication failed"))))
    return out


def _release_form() -> ReleaseForm:
    form = ReleaseForm()
    form.kind.choices = [(k, str(v)) for k, v in labels.KIND.items()]
    published = db().scalars(select(Release).where(Release.state == PUBLISHED)
                             .order_by(Release.series)).all()
    form.previous_id.choices = [("", "—")] + [
        (str(r.id), f"{r.series} {r.version}") for r in published]
    form.method.choices = [(m.name, _(m.label)) for m in methods()]
    form.secondary.choices = [("optimal", _("optimal")), ("heuristic", _("heuristic"))]
    return form


def _upload(field: Any) -> wf.Upload | None:
    f = field.data if hasattr(field, "data") else field
    if f is None or not getattr(f, "filename", ""):
        return None
    return wf.Upload(f.filename, f.read())


def _form_uploads(form: ReleaseForm) -> dict[str, wf.Upload | None]:
    """The form's files by field: each chosen now, else the one held from a refused attempt
    (``held_<field>``: a token of the user's :class:`HeldUpload`)."""
    files: dict[str, Any] = {"table": form.table, "spec_file": form.spec_file}
    for i in range(LINK_SLOTS):
        for kind in ("spec", "table"):
            files[f"link_{kind}_{i}"] = request.files.get(f"link_{kind}_{i}")
    out: dict[str, wf.Upload | None] = {}
    for name, field in files.items():
        up = _upload(field) if field is not None else None
        if up is None:
            up = wf.held_upload(db(), current_user, request.form.get(f"held_{name}", ""))
        out[name] = up
    return out


def _held_token(name: str, up: wf.Upload) -> str | None:
    """The token the form sent for ``name`` if ``up`` is that held file (not a new one)."""
    token = request.form.get(f"held_{name}", "")
    return token if getattr(up, "held", None) == token and token else None


#: linked tables the new-release form offers (besides the main one)
LINK_SLOTS = 4


def _linked_pairs(uploads: dict[str, wf.Upload | None]) -> list[wf.Pair]:
    pairs = []
    for i in range(LINK_SLOTS):
        spec_up, table_up = uploads.get(f"link_spec_{i}"), uploads.get(f"link_table_{i}")
        if spec_up is None and table_up is None:
            continue
        if spec_up is None or table_up is None:
            raise SpecFormError(_("Linked table %(n)s: choose both its spec file and its table "
                                  "file.", n=i + 1))
        pairs.append(wf.Pair(read_spec_upload(spec_up.name, spec_up.data), table_up))
    return pairs


@bp.route("/releases/new", methods=["GET", "POST"])
@role_required("preparer")
def new_release() -> Any:
    form = _release_form()
    held: dict[str, tuple[str, str]] = {}
    if request.method == "GET" and request.args.get("previous"):
        form.previous_id.data = request.args["previous"]
        form.kind.data = request.args.get("kind", "revision")
        held = _previous_spec(request.args["previous"])
    if request.method == "POST" and request.form.get("show_accuracy"):
        # "Show accuracy": the margins of error of the draw the form describes, from the spec
        # alone (no table read, nothing drawn or charged); the chosen files are kept
        accuracy, held = _show_accuracy(form)
        return render_template("new_release.html", form=form, held=held,
                               link_slots=LINK_SLOTS, accuracy=accuracy), 200
    if form.validate_on_submit():
        uploads = _form_uploads(form)
        try:
            table = uploads["table"]
            if table is None:
                raise SpecFormError(_("Choose the table file."))
            spec_up = uploads["spec_file"]
            spec = (read_spec_upload(spec_up.name, spec_up.data) if spec_up is not None
                    else spec_from_form(form))
            prev = int(form.previous_id.data) if form.previous_id.data else None
            default = str(settings().get("DEFAULT_LANGUAGE") or "kk")
            notices = {lg: getattr(form, f"notice_{lg}").data or "" for lg in ("kk", "ru", "en")
                       if lg != default and hasattr(form, f"notice_{lg}")}
            r = wf.create_release(db(), current_user, spec, table, settings=settings(),
                                  kind=form.kind.data, previous_id=prev,
                                  notice=form.notice.data, linked=_linked_pairs(uploads),
                                  notices=notices or None, defer=True)
            job = wf.protection_job(db(), r)
            wf.drop_held(db(), current_user, [request.form.get(f"held_{k}", "") for k in uploads])
            db().commit()
            enqueue_protection(job.id)
            flash(_("The table was checked and its protection has started. This page shows "
                    "its progress; then check the result and submit it for review."), "ok")
            return redirect(url_for("ui.release", release_id=r.id))
        except AshyqError as e:
            db().rollback()
            _refusal(e)
            held = _hold(uploads)
        except IntegrityError:
            db().rollback()
            flash(_("Refused: %(reason)s", reason=_("this version exists already")), "error")
            held = _hold(uploads)
    elif request.method == "POST":
        _form_errors(form)
    return render_template("new_release.html", form=form, held=held, link_slots=LINK_SLOTS), \
        (422 if request.method == "POST" else 200)


def _show_accuracy(form: ReleaseForm) -> tuple[dict[str, Any] | None, dict[str, tuple[str, str]]]:
    """The release form's accuracy table (:func:`publisher.accuracy.form_accuracy`) for the spec
    the form gives (its spec file, chosen now or kept, else the fields), with the numbers in the
    page's language; and the files kept for the real submit."""
    from flask_babel import format_decimal

    from ..accuracy import form_accuracy
    from ..specs import spec_from_mapping

    if not form.validate():
        _form_errors(form)
        return None, {}
    uploads = _form_uploads(form)
    held = _hold(uploads)
    try:
        spec_up = uploads["spec_file"]
        mapping = (read_spec_upload(spec_up.name, spec_up.data) if spec_up is not None
                   else spec_from_form(form))
        acc = form_accuracy(spec_from_mapping(mapping, source="spec"), settings=settings(),
                            session=db())
    except AshyqError as e:
        _refusal(e)
        return None, held
    finally:
        db().rollback()  # nothing is written by a look at the accuracy
    if acc is None:
        flash(_("This protection method draws no noise: there is no accuracy to show before "
                "the run."), "info")
        return None, held

    def num(x: float) -> str:
        return format_decimal(float(f"{x:.4g}"), format="#,##0.####")

    rows = [{"budget": num(r.budget), "epsilon": num(r.epsilon), "inner": r.inner,
             "first_level": (str(r.first_level[0]) if r.first_level[0] == r.first_level[1]
                             else f"{r.first_level[0]}–{r.first_level[1]}"),
             "total": r.total, "own": r.own} for r in acc.rows]
    out: dict[str, Any] = {"unit": acc.unit, "rows": rows, "over": acc.over_budget}
    b = acc.budget
    if b is not None:
        out["budget"] = {"source": b.source, "period": b.period, "unit": b.unit,
                         "spent": num(b.spent), "total": num(b.total),
                         "remaining": num(max(0.0, b.total - b.spent)),
                         "this_draw": num(b.this_draw), "left": num(max(0.0, b.left_after)),
                         "converted": b.unit == "rho" and acc.unit == "epsilon"}
    elif acc.budget_refusal is not None:
        out["refusal"] = localized(acc.budget_refusal)
    return out, held


def _previous_spec(previous: str) -> dict[str, tuple[str, str]]:
    """The spec of the version a revision or correction replaces, held as the form's spec file
    (so the preparer changes what changed instead of typing it again)."""
    import yaml

    try:
        prev = wf.get_release(db(), current_user, int(previous))
    except (ValueError, wf.WorkflowError):
        return {}
    data = yaml.safe_dump(dict(prev.spec or {}), allow_unicode=True, sort_keys=False)
    name = f"{prev.series}-{prev.version}.yaml"
    token = wf.hold_upload(db(), current_user, wf.Upload(name, data.encode("utf-8")))
    db().commit()
    return {"spec_file": (token, name)}


def _hold(uploads: dict[str, wf.Upload | None]) -> dict[str, tuple[str, str]]:
    """Keep the files of a refused form for its user: field -> (token, file name)."""
    out = {}
    for name, up in uploads.items():
        if up is not None:
            token = _held_token(name, up) or wf.hold_upload(db(), current_user, up)
            out[name] = (token, up.name)
    db().commit()
    return out


@bp.route("/releases/<int:release_id>")
@login_required
def release(release_id: int) -> Any:
    from ..settings import office_timezone
    from .review import line_in_language
    from .review import review as review_of

    office = office_timezone(settings())

    r = _visible_release(release_id)
    wf.log_pre_release_access(db(), current_user, r, "ui:review")
    db().commit()
    only_suppressed = request.args.get("suppressed") == "1"
    rows, total = present.preview(r, limit=400, only_suppressed=only_suppressed)
    contributors = wf.contributors(db(), r)
    ctx = {
        "r": r, "lang": lang(), "rows": rows, "total_rows": total,
        "only_suppressed": only_suppressed,
        "dims": present.dimension_names(r),
        "codelabels": present.code_labels(r, lang()),
        "dimtitles": {d: present.dim_title(r, d, lang()) for d in present.dimension_names(r)},
        "summary": present.report_summary(wf.safe_report(r.report)),
        "review": review_of(r, wf.safe_report(r.report), lang()),
        "downloads": [f.label for f in formats()],
        "moe": present.moe_summary(r),
        "report_json": present.report_json(wf.safe_report(r.report)),
        "chart": present.chart_svg(r, lang(), suppressed_label=_("suppressed")),
        "diff": present.diff(r.previous, r),
        "progress": progress_of(r),
        "protection": protection_of(r), "protect_form": EmptyForm(),
        "audit": list(wf.audit_rows(db(), r.id)),
        "is_contributor": current_user.id in contributors,
        "can_view_raw": wf.can_view_raw(db(), current_user, r),
        "can_approve": (current_user.has_role("approver") and r.state == "submitted"
                        and current_user.id not in contributors),
        "comment_form": CommentForm(), "reason_form": ReasonForm(),
        "schedule_form": ScheduleForm(),
        "office_zone": office.key, "in_language": line_in_language,
        "progress_message": progress_message,
        "office_time": lambda t: as_utc(t).astimezone(office).strftime("%Y-%m-%d %H:%M"),
    }
    return render_template("release.html", **ctx)


@bp.route("/releases/<int:release_id>/upload")
@login_required
def release_upload(release_id: int) -> Any:
    """The uploaded (raw) table, for its contributors, approver(s) and administrators; audited."""
    r = _visible_release(release_id)
    try:
        name, data = wf.raw_upload(db(), current_user, r, "ui:upload")
    except wf.Forbidden:
        abort(403)
    db().commit()
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:100] or "upload.csv"
    return Response(data, mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename={safe}", "Cache-Control": "no-store"})


@bp.route("/releases/<int:release_id>/progress.json")
@login_required
def release_progress(release_id: int) -> Any:
    """The publication job as the release page's progress box polls it (app.js): every text in
    the reader's language (``message`` too; ``/api/releases/<id>/progress`` keeps English)."""
    r = _visible_release(release_id)
    p = progress_of(r)
    p["status_label"] = labels.t(labels.JOB, p["status"])
    p["step_label"] = step_label(p["step"])
    p["state_label"] = labels.t(labels.STATE, p["state"])
    p["message"] = progress_message(p["message"])
    resp = jsonify(p)
    resp.headers["Cache-Control"] = "no-store"
    return resp


#: ``<action>: `` / ``<action>: <field>: `` before a publication failure's reason
#: (:class:`publisher.ckan.CkanPublishError`): the action is CKAN's name of the call, a code
_FAILURE_PREFIX = re.compile(r"^(?P<prefix>[a-z_]+: (?:[^:\s]{1,100}: )?)(?P<reason>.+)$", re.S)


def progress_message(text: str | None) -> str:
    """A publication job's line (stored in English by the worker: a ``publisher.ckan`` progress
    phrase, a ``publisher.tasks`` outcome, a failure ``action: field: reason``) in the reader's
    language, from the catalogue template it was made from; as stored when none matches."""
    from .review import line_in_language

    text = str(text or "")
    shown = line_in_language(text)
    if shown != text or not text:
        return shown
    m = _FAILURE_PREFIX.match(text)
    if m:
        reason = line_in_language(m.group("reason"))
        if reason != m.group("reason"):
            return m.group("prefix") + reason
    return text


@bp.route("/releases/<int:release_id>/protection.json")
@login_required
def release_protection(release_id: int) -> Any:
    """The protection job's progress (the release page's progress bar polls it)."""
    r = _visible_release(release_id)
    p = protection_of(r)
    p["status_label"] = labels.t(PROTECT_STATUS, p["status"])
    p["phase_label"] = labels.t(PROTECT_PHASE, p["phase"])
    p["state_label"] = labels.t(labels.STATE, p["state"])
    p["reason"] = protect_reason(p)
    resp = jsonify(p)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def protect_reason(p: dict[str, Any]) -> str:
    """Why a protection job did not finish, in the reader's language."""
    code = p.get("error_code")
    if not code:
        return ""
    if code in ("refused", "time_limit", "memory_limit", "internal") and p.get("error"):
        return str(p["error"])
    return labels.t(PROTECT_ERROR, code)


@bp.route("/releases/<int:release_id>/protection/<string:action>", methods=["POST"])
@role_required("preparer", "admin")
def protection_action(release_id: int, action: str) -> Any:
    """Cancel the protection job, or queue the protection of a draft again."""
    if action not in ("cancel", "retry"):
        abort(404)
    r = _visible_release(release_id)
    back = redirect(url_for("ui.release", release_id=release_id))
    form = EmptyForm()
    if not form.validate_on_submit():
        _form_errors(form)
        return back
    try:
        if action == "cancel":
            wf.cancel_protection(db(), current_user, r)
            db().commit()
            flash(_("The protection is being cancelled; the release stays a draft."), "ok")
        else:
            job = wf.retry_protection(db(), current_user, r)
            db().commit()
            enqueue_protection(job.id)
            flash(_("The protection was queued again."), "ok")
    except wf.WorkflowError as e:
        db().rollback()
        _refusal(e)
    return back


ACTIONS: dict[str, tuple[Any, type, str]] = {
    "submit": (wf.submit, CommentForm, "comment"),
    "approve": (wf.approve, CommentForm, "comment"),
    "send-back": (wf.send_back, CommentForm, "comment"),
    "unschedule": (wf.unschedule, ReasonForm, "reason"),
    "withdraw": (wf.withdraw, ReasonForm, "reason"),
}
DONE = {
    "submit": _l("Submitted for review."), "approve": _l("Approved."),
    "send-back": _l("Sent back to the preparer."), "unschedule": _l("The schedule was lifted."),
    "withdraw": _l("Withdrawn."),
}


@bp.route("/releases/<int:release_id>/<string:action>", methods=["POST"])
@login_required
def release_action(release_id: int, action: str) -> Any:
    if action not in ACTIONS and action not in ("schedule", "retry"):
        abort(404)
    r = _visible_release(release_id)
    back = redirect(url_for("ui.release", release_id=release_id))
    if action == "retry":
        form = CommentForm()
        if not form.validate_on_submit():
            _form_errors(form)
            return back
        try:
            wf.retry_publication(db(), current_user, r, form.comment.data or "")
            db().commit()
        except wf.WorkflowError as e:
            db().rollback()
            _refusal(e)
            return back
        enqueue(r.id, utcnow())
        flash(_("The publication was queued again."), "ok")
        return back
    if action == "schedule":
        form = ScheduleForm()
        if not form.validate_on_submit():
            _form_errors(form)
            return back
        from ..settings import office_timezone

        office = office_timezone(settings())  # entered in the office's time zone, stored UTC
        when = form.embargo_at.data
        when = when.replace(tzinfo=office).astimezone(UTC) if when else utcnow()
        try:
            wf.schedule(db(), current_user, r, when, form.reason.data or "")
            db().commit()
        except wf.WorkflowError as e:
            db().rollback()
            _refusal(e)
            return back
        enqueue(r.id, when)
        flash(_("Scheduled for %(when)s (%(zone)s).", zone=office.key,
                when=when.astimezone(office).strftime("%Y-%m-%d %H:%M")), "ok")
        return back
    fn, form_cls, field = ACTIONS[action]
    form = form_cls()
    if not form.validate_on_submit():
        _form_errors(form)
        return back
    try:
        fn(db(), current_user, r, getattr(form, field).data or "")
        db().commit()
        flash(str(DONE[action]), "ok")
    except wf.WorkflowError as e:
        db().rollback()
        _refusal(e)
        return back
    if wf.needs_withdrawal(db(), r):  # the worker withdraws it from CKAN (retried)
        enqueue(r.id, utcnow())
    return back


@bp.route("/releases/<int:release_id>/change", methods=["GET", "POST"])
@role_required("preparer")
def change(release_id: int) -> Any:
    r = _visible_release(release_id)
    form = ChangeForm()
    if form.validate_on_submit():
        try:
            table = _upload(form.table)
            spec_up = _upload(form.spec_file)
            spec = read_spec_upload(spec_up.name, spec_up.data) if spec_up else None
            wf.change_release(db(), current_user, r, spec, table, settings=settings(),
                              reason=form.reason.data or "", defer=True)
            job = wf.protection_job(db(), r)
            db().commit()
            enqueue_protection(job.id)
            flash(_("The new content was checked and its protection has started. Any approval "
                    "was voided."), "ok")
            return redirect(url_for("ui.release", release_id=r.id))
        except AshyqError as e:
            db().rollback()
            _refusal(e)
    elif request.method == "POST":
        _form_errors(form)
    return render_template("change.html", form=form, r=r, lang=lang())


# -- account, users, audit -----------------------------------------------------------------------

@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> Any:
    token_form = TokenForm(prefix="token")
    lang_form = LanguageForm(prefix="lang")
    lang_form.language.choices = [(k, v) for k, v in labels.LANGUAGE_NAMES.items()]
    new_token = None
    if request.method == "POST" and request.form.get("what") == "token":
        if token_form.validate_on_submit():
            tok, new_token = ApiToken.issue(current_user, token_form.name.data)
            db().add(tok)
            wf.audit(db(), current_user, "token_issued", detail={"prefix": tok.prefix})
            db().commit()
        else:
            _form_errors(token_form)
    elif request.method == "POST" and request.form.get("what") == "language":
        if lang_form.validate_on_submit():
            current_user.language = lang_form.language.data
            session["lang"] = lang_form.language.data
            db().commit()
            return redirect(url_for("ui.account"))
        _form_errors(lang_form)
    from .auth import live_tokens

    tokens = live_tokens([current_user.id]).get(current_user.id, [])
    return render_template("account.html", token_form=token_form, lang_form=lang_form,
                           tokens=tokens, new_token=new_token)


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int) -> Any:
    form = EmptyForm()
    tok = db().get(ApiToken, token_id) if 0 < token_id < 2**31 else None
    if not form.validate_on_submit() or tok is None or tok.user_id != current_user.id:
        abort(404)
    from ..security_models import revoke_token as revoke

    revoke(db(), current_user, tok)
    db().commit()
    return redirect(url_for("ui.account"))


@bp.route("/admin/users", methods=["GET", "POST"])
@role_required("admin")
def users() -> Any:
    form = UserForm()
    form.roles.choices = [(r, str(labels.ROLE[r])) for r in ROLES]
    from ..security_models import PasswordRejected, password_problem
    from .auth import live_tokens

    if form.validate_on_submit():
        try:
            password_problem(form.password.data, form.username.data,
                             int(settings()["PASSWORD_MIN_LENGTH"]))
            weak = None
        except PasswordRejected as e:
            weak = e
        if weak is not None:
            _refusal(weak)
        elif db().scalar(select(User.id).where(User.username == form.username.data)):
            flash(_("Refused: %(reason)s", reason=_("the user name is taken")), "error")
        else:
            u = User(username=form.username.data, display_name=form.display_name.data or "",
                     password_hash="", active=True)
            u.set_password(form.password.data)
            u.set_roles(form.roles.data)
            db().add(u)
            db().flush()
            wf.audit(db(), current_user, "user_created",
                     detail={"user": u.username, "roles": sorted(u.roles)})
            db().commit()
            flash(_("User %(name)s created.", name=u.username), "ok")
            return redirect(url_for("ui.users"))
    elif request.method == "POST":
        _form_errors(form)
    all_users = db().scalars(select(User).order_by(User.username)).all()
    return render_template("users.html", form=form, users=all_users, tokens=live_tokens())


@bp.route("/admin/audit")
@role_required("admin")
def audit() -> Any:
    rows = list(wf.audit_rows(db()))[-500:]
    intact, bad, checked = wf.verify_audit_chain(db())
    return render_template("audit.html", rows=list(reversed(rows)), intact=intact, bad=bad,
                           checked=checked)


@bp.route("/admin/audit.csv")
@role_required("admin")
def audit_export() -> Any:
    rows = list(wf.audit_rows(db()))
    wf.audit(db(), current_user, "audit_export", detail={"rows": len(rows), "format": "csv"})
    db().commit()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Response(audit_csv(rows), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=audit-{stamp}.csv"})
