"""Data requests on the web: the public form, the tracking page, the private download, the public
register (``/requests/...``, no account), and the statisticians' queue (``/staff/requests``).

Views translate HTTP to :mod:`publisher.requests` calls; every refusal is a page in the reader's
language with the form kept filled in (nothing typed is lost), or for staff a flashed message.
Forms carry CSRF tokens (Flask-WTF, as the rest of the UI); roles are checked in the service.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from disclosure.errors import AshyqError

from .. import requests as rq
from ..request_models import (
    DECLINE_REASONS,
    PRIVATE,
    PUBLIC,
    REGION_LEVELS,
    REQUESTER_KINDS,
    DataRequest,
)
from ..workflow_models import User
from .common import client_address, db, settings

bp = Blueprint("requests", __name__, template_folder="templates")

TEXT = Length(max=rq.MAX_TEXT)
# Params of refusals that are words of the catalogue themselves.
WORD_PARAMS = ("field", "now")


class NewRequestForm(FlaskForm):
    email = StringField(_l("Your email address"), validators=[DataRequired(), Length(max=254)])
    contact_name = StringField(_l("Your name (optional)"), validators=[Optional(),
                                                                      Length(max=200)])
    organisation = StringField(_l("Organisation"), validators=[Optional(), Length(max=200)])
    requester_kind = SelectField(_l("Who is asking"), choices=[], validators=[DataRequired()])
    title = StringField(_l("Title of the table you need"),
                        validators=[DataRequired(), Length(max=rq.MAX_TITLE)])
    variables = TextAreaField(_l("Variables (what is counted)"), validators=[Optional(), TEXT])
    breakdowns = TextAreaField(_l("Breakdowns (by sex, age, citizenship, …)"),
                               validators=[Optional(), TEXT])
    period = StringField(_l("Period"), validators=[Optional(), Length(max=200)])
    region_level = SelectField(_l("Region level"), choices=[], default="region")
    details = TextAreaField(_l("Anything else"), validators=[Optional(), TEXT])
    purpose = TextAreaField(_l("Purpose: what the table is for"),
                            validators=[DataRequired(), TEXT])
    may_publish = RadioField(_l("May we publish the answer as open data for everyone?"),
                             choices=[], default="yes")
    ts = HiddenField()
    website = StringField(_l("Leave this field empty"), validators=[Optional()])


class TextForm(FlaskForm):
    text = TextAreaField(_l("Text"), validators=[Optional(), TEXT])


class AssignForm(FlaskForm):
    assignee = SelectField(_l("Statistician"), choices=[], validate_choice=False)


class DeclineForm(FlaskForm):
    reason = SelectField(_l("Reason"), choices=[], validate_choice=False)
    text = TextAreaField(_l("Note to the requester"), validators=[Optional(), TEXT])


class AnswerForm(FlaskForm):
    release = SelectField(_l("Release"), choices=[], validate_choice=False)
    text = TextAreaField(_l("Note to the requester"), validators=[Optional(), TEXT])


class TitleForm(FlaskForm):
    title = StringField(_l("Title in the public register"),
                        validators=[DataRequired(), Length(max=rq.MAX_TITLE)])


class DownloadForm(FlaskForm):
    email = StringField(_l("Your email address"), validators=[DataRequired(), Length(max=254)])


class ContactForm(FlaskForm):
    email = StringField(_l("Your email for reminders"), validators=[DataRequired(),
                                                                   Length(max=254)])


def lang() -> str:
    return str(get_locale() or "kk")


def message(e: Exception) -> str:
    """A refusal in the reader's language."""
    if isinstance(e, rq.RequestError):
        params = {k: (_(v) if k in WORD_PARAMS and isinstance(v, str) else v)
                  for k, v in e.params.items()}
        return _(e.template, **params) if params else _(e.template)
    from .common import localized

    return localized(e)


def problem(e: Exception, status: int | None = None, **ctx: Any) -> tuple[str, int]:
    code = status or getattr(e, "http_status", 422)
    return render_template("requests/problem.html", status=code, message=message(e),
                           **ctx), code


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"rq": rq, "fmt_date": _fmt_date, "fmt_day": _fmt_day}


def _fmt_date(day: Any) -> str:
    return format_date(day, format="long") if day else "—"


def _fmt_day(moment: Any) -> str:
    """A stored UTC moment as the office's calendar day (the day the deadline counts from)."""
    return _fmt_date(rq.local_date(moment, settings())) if moment else "—"


def _store() -> dict[str, Any]:
    return settings()


# -- the public form -------------------------------------------------------------------------------

def _new_form() -> NewRequestForm:
    form = NewRequestForm()
    form.requester_kind.choices = [("", "—")] + [(k, _(rq.KIND_WORDS[k])) for k in REQUESTER_KINDS]
    form.region_level.choices = [(k, _(rq.LEVEL_WORDS[k])) for k in REGION_LEVELS]
    form.may_publish.choices = [("yes", _("Yes")), ("no", _("No, the answer is for me only"))]
    return form


def _render_form(form: NewRequestForm, status: int = 200, error: str | None = None) -> Any:
    form.ts.data = rq.form_token(_store())  # a fresh time token each time the form is shown
    return render_template("requests/new.html", form=form, error=error), status


@bp.route("/requests/new", methods=["GET", "POST"])
def new() -> Any:
    form = _new_form()
    if request.method == "GET":
        return _render_form(form)
    if not form.validate():
        first = next(iter(form.errors.items()))
        label = getattr(getattr(form, first[0], None), "label", None)
        err = f"{label.text if label is not None else first[0]}: {first[1][0]}"
        return _render_form(form, 422, err)
    s = _store()
    try:
        if form.website.data:
            raise rq.FormRefused(rq.N_("the form could not be checked; please send it again"))
        rq.check_form_token(form.ts.data or "", s)
        data = rq.RequestInput(
            email=form.email.data, requester_kind=form.requester_kind.data,
            title=form.title.data, purpose=form.purpose.data,
            organisation=form.organisation.data or "", contact_name=form.contact_name.data or "",
            variables=form.variables.data or "", breakdowns=form.breakdowns.data or "",
            period=form.period.data or "", region_level=form.region_level.data,
            details=form.details.data or "", may_publish=form.may_publish.data != "no",
            language=lang())
        req = rq.submit_request(db(), data, settings=s, client_address=client_address())
        db().commit()
    except AshyqError as e:
        db().rollback()
        return _render_form(form, getattr(e, "http_status", 422), message(e))
    rq.deliver(db(), s, request_id=req.id)
    db().commit()
    return redirect(url_for("requests.sent", token=rq.sent_token(req, s)))


def _masked(address: str) -> str:
    local, _at, domain = address.partition("@")
    return f"{local[:1]}…@{domain}"


@bp.route("/requests/sent/<string:token>", methods=["GET", "POST"])
def sent(token: str) -> Any:
    s = _store()
    try:
        req = rq.by_sent_token(db(), token, s)
    except rq.RequestError as e:
        return problem(e)
    form = FlaskForm()
    resent = False
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            rq.resend_confirmation(db(), req)
            db().commit()
        except rq.RequestError as e:
            db().rollback()
            return problem(e)
        rq.deliver(db(), s, request_id=req.id)
        db().commit()
        resent = True
    return render_template("requests/sent.html", req=req, address=_masked(req.email), form=form,
                           resent=resent, failed=rq.mail_failed(db(), req, "confirm"))


# -- confirmation ----------------------------------------------------------------------------------

@bp.route("/requests/confirm/<string:token>", methods=["GET", "POST"])
def confirm(token: str) -> Any:
    s = _store()
    form = FlaskForm()
    try:
        row = rq.confirmation(db(), token)
    except rq.RequestError as e:
        return problem(e)
    if request.method == "GET":
        try:
            rq.check_confirmation(row)
        except rq.LinkExpired as e:
            return problem(e, resend=url_for("requests.confirm_resend", token=token))
        except rq.RequestError as e:
            return problem(e)
        return render_template("requests/confirm.html", req=row.request, form=form)
    if not form.validate_on_submit():
        abort(400)
    try:
        req = rq.confirm(db(), token, settings=s)
        db().commit()
    except rq.LinkExpired as e:
        db().rollback()
        return problem(e, resend=url_for("requests.confirm_resend", token=token))
    except rq.RequestError as e:
        db().rollback()
        return problem(e)
    rq.deliver(db(), s, request_id=req.id)
    db().commit()
    flash(_("Thank you: your request is registered."), "ok")
    return redirect(url_for("requests.track", token=rq.tracking_token(req, s)))


@bp.route("/requests/confirm/<string:token>/resend", methods=["POST"])
def confirm_resend(token: str) -> Any:
    """An expired link asks for a new one: sent to the request's own address only."""
    s = _store()
    form = FlaskForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        row = rq.confirmation(db(), token)
        rq.resend_confirmation(db(), row.request)
        db().commit()
    except rq.RequestError as e:
        db().rollback()
        return problem(e)
    req = row.request
    rq.deliver(db(), s, request_id=req.id)
    db().commit()
    return render_template("requests/sent.html", req=req, address=_masked(req.email), form=None,
                           resent=True, failed=rq.mail_failed(db(), req, "confirm"))


# -- the register ----------------------------------------------------------------------------------

@bp.route("/requests/register")
def register() -> Any:
    rows, quarters = rq.register(db(), _store())
    return render_template("requests/register.html", rows=rows, quarters=quarters,
                           standard=int(_store().get("REQUEST_STANDARD_DAYS", 20)))


# -- private download ------------------------------------------------------------------------------

@bp.route("/requests/download/<string:token>", methods=["GET", "POST"])
def download(token: str) -> Any:
    s = _store()
    form = DownloadForm()
    if request.method == "GET":
        try:
            req, _link = rq.read_download_token(db(), token, s)
        except rq.RequestError as e:
            return problem(e)
        return render_template("requests/download.html", form=form, req=req)
    if not form.validate_on_submit():
        return render_template("requests/download.html", form=form, req=None,
                               error=_("Give your email address.")), 422
    result = rq.open_download(db(), token, form.email.data, settings=s,
                              client_address=client_address())
    db().commit()  # the attempt is logged whether or not the file is served
    if result.error is not None:
        return problem(result.error)
    from flask import send_file

    resp = send_file(result.path, mimetype="application/zip", as_attachment=True,
                     download_name=result.name)
    resp.headers["Cache-Control"] = "no-store"
    return resp


# -- tracking --------------------------------------------------------------------------------------

def _tracked(token: str) -> DataRequest:
    return rq.by_tracking_token(db(), token, _store())


@bp.route("/requests/<string:token>")
def track(token: str) -> Any:
    try:
        req = _tracked(token)
    except rq.RequestError as e:
        return problem(e)
    return _track_page(req, token)


def _track_page(req: DataRequest, token: str, status: int = 200, error: str | None = None) -> Any:
    s = _store()
    today = rq.local_date(rq.utcnow(), s)
    base = str(s.get("PUBLIC_BASE_URL", "")).rstrip("/")
    public = [(ln, f"{base}/v/{ln.release.series}/{ln.release.version}")
              for ln in req.links if ln.mode == PUBLIC]
    resp = render_template("requests/track.html", req=req, token=token, form=TextForm(),
                           overdue=rq.is_overdue(req, today), public=public,
                           private=any(ln.mode == PRIVATE for ln in req.links), error=error)
    return Response(resp, status=status, headers={"Cache-Control": "no-store",
                                                  "Referrer-Policy": "no-referrer"})


@bp.route("/requests/<string:token>/reply", methods=["POST"])
def track_reply(token: str) -> Any:
    try:
        req = _tracked(token)
    except rq.RequestError as e:
        return problem(e)
    form = TextForm()
    if not form.validate_on_submit():
        return _track_page(req, token, 422, _("The answer is too long."))
    try:
        rq.reply(db(), req, form.text.data or "")
        db().commit()
    except rq.RequestError as e:
        db().rollback()
        return _track_page(db().get(DataRequest, req.id), token, e.http_status, message(e))
    rq.deliver(db(), _store(), request_id=req.id)
    db().commit()
    flash(_("Thank you: your answer was sent to the statistician."), "ok")
    return redirect(url_for("requests.track", token=token))


@bp.route("/requests/<string:token>/new-link", methods=["POST"])
def track_new_link(token: str) -> Any:
    try:
        req = _tracked(token)
    except rq.RequestError as e:
        return problem(e)
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        rq.new_download_link(db(), req)
        db().commit()
    except rq.RequestError as e:
        db().rollback()
        return _track_page(req, token, e.http_status, message(e))
    rq.deliver(db(), _store(), request_id=req.id)
    db().commit()
    flash(_("A new download link was sent to your email address."), "ok")
    return redirect(url_for("requests.track", token=token))


# -- the staff's queue -----------------------------------------------------------------------------

def _staff_only() -> None:
    if not any(current_user.has_role(r) for r in rq.STAFF_ROLES):
        abort(403)


@bp.route("/staff/requests", methods=["GET", "POST"])
@login_required
def queue() -> Any:
    _staff_only()
    s = _store()
    contact = ContactForm()
    if request.method == "POST":
        if contact.validate_on_submit():
            try:
                rq.set_staff_email(db(), current_user, contact.email.data)
                db().commit()
                flash(_("Your email for reminders is saved."), "ok")
            except rq.RequestError as e:
                db().rollback()
                flash(_("Refused: %(reason)s", reason=message(e)), "error")
        else:
            flash(_("Give your email address."), "error")
        return redirect(url_for("requests.queue"))
    contact.email.data = rq.staff_email(db(), current_user.id) or ""
    rows = rq.staff_queue(db(), current_user, s)
    return render_template("requests/queue.html", rows=rows, contact=contact,
                           closed=rq.recent_closed(db(), current_user, 20))


def _staff_request(request_id: int) -> DataRequest:
    _staff_only()
    try:
        return rq.get_request(db(), current_user, request_id)
    except rq.RequestNotFound:
        abort(404)


@bp.route("/staff/requests/<int:request_id>")
@login_required
def staff_request(request_id: int) -> Any:
    req = _staff_request(request_id)
    s = _store()
    assign_form = AssignForm()
    staff = db().scalars(select(User).where(User.active.is_(True)).order_by(User.username)).all()
    assign_form.assignee.choices = [(str(u.id), u.label) for u in staff
                                    if u.has_role("preparer") or u.has_role("approver")]
    if req.assigned_to_id:
        assign_form.assignee.data = str(req.assigned_to_id)
    decline_form = DeclineForm()
    decline_form.reason.choices = [(k, _(rq.REASON_WORDS[k])) for k in DECLINE_REASONS]
    public_form, private_form = AnswerForm(prefix="public"), AnswerForm(prefix="private")
    public_form.release.choices = [(str(r.id), f"{r.series} {r.version} — {r.title_in(lang())}")
                                   for r in rq.answerable_releases(db(), PUBLIC)]
    private_form.release.choices = [(str(r.id), f"{r.series} {r.version} — {r.title_in(lang())}")
                                    for r in rq.answerable_releases(db(), PRIVATE)]
    title_form = TitleForm()
    title_form.title.data = req.register_title
    today = rq.local_date(rq.utcnow(), s)
    return render_template(
        "requests/staff_request.html", req=req, assign_form=assign_form,
        decline_form=decline_form, public_form=public_form, private_form=private_form,
        text_form=TextForm(), title_form=title_form, overdue=rq.is_overdue(req, today),
        downloads=rq.downloads(db(), req), lang=lang(),
        is_lead=any(current_user.has_role(r) for r in rq.LEADS))


DONE = {"assign": _l("Assigned."), "ask": _l("The question was sent to the requester."),
        "accept": _l("Accepted."), "decline": _l("Declined; the requester was told."),
        "answer-public": _l("Answered; the requester was sent the public link."),
        "answer-private": _l("Answered; the requester was sent a private download link."),
        "retitle": _l("The title in the register was changed.")}


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


@bp.route("/staff/requests/<int:request_id>/<string:action>", methods=["POST"])
@login_required
def staff_action(request_id: int, action: str) -> Any:
    if action not in DONE:
        abort(404)
    req = _staff_request(request_id)
    s = _store()
    back = redirect(url_for("requests.staff_request", request_id=request_id))
    forms = {"assign": AssignForm, "decline": DeclineForm, "retitle": TitleForm,
             "answer-public": lambda: AnswerForm(prefix="public"),
             "answer-private": lambda: AnswerForm(prefix="private")}
    form = forms.get(action, TextForm)()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for err in errors:
                flash(str(err), "error")
        return back
    try:
        if action == "assign":
            rq.assign(db(), current_user, req, _int(form.assignee.data))
        elif action == "ask":
            rq.ask(db(), current_user, req, form.text.data or "")
        elif action == "accept":
            rq.accept(db(), current_user, req, form.text.data or "")
        elif action == "decline":
            rq.decline(db(), current_user, req, form.reason.data or "", form.text.data or "")
        elif action == "retitle":
            rq.set_public_title(db(), current_user, req, form.title.data or "")
        else:
            mode = PUBLIC if action == "answer-public" else PRIVATE
            rq.answer(db(), current_user, req, _int(form.release.data), mode,
                      form.text.data or "", settings=s)
        db().commit()
    except AshyqError as e:
        db().rollback()
        flash(_("Refused: %(reason)s", reason=message(e)), "error")
        return back
    rq.deliver(db(), s, request_id=req.id)
    db().commit()
    flash(str(DONE[action]), "ok")
    return back
