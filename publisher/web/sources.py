"""The administrator's page of registered data sources and their privacy budgets.

A noise release is charged to a registered data source (spec ``source_id``) and its reference
period. Here an administrator registers a source with its total epsilon per reference period,
sees what each period has spent and has left, and changes a total — with a reason; both are
audited, exactly as ``publisher source add`` / ``set-budget`` (the same functions of
:mod:`publisher.budget`). No figure of any table is shown.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DecimalField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange

from .. import budget
from .common import db

bp = Blueprint("sources", __name__, url_prefix="/admin/sources")


class SourceForm(FlaskForm):
    source_id = StringField(_l("Source id"), validators=[DataRequired(), Length(max=64)])
    total = DecimalField(_l("Budget per reference period"), places=None,
                         validators=[DataRequired(), NumberRange(min=0.001, max=1000)])
    unit = SelectField(_l("Unit of the budget"), default="epsilon", choices=[
        ("epsilon", _l("epsilon: pure differential privacy (Laplace noise)")),
        ("rho", _l("rho: zero-concentrated differential privacy (Gaussian noise; a Laplace "
                   "release at epsilon is charged epsilon²/2)"))])


class BudgetForm(FlaskForm):
    total = DecimalField(_l("New budget per reference period"), places=None,
                         validators=[DataRequired(), NumberRange(min=0.001, max=1000)])
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=500)])


@bp.before_request
def _only_admins() -> Any:
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    if not current_user.has_role("admin"):
        abort(403)
    return None


def _periods() -> dict[str, list[dict[str, Any]]]:
    rows = db().scalars(select(budget.PrivacyBudget).order_by(budget.PrivacyBudget.source,
                                                              budget.PrivacyBudget.period))
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r.source, []).append({"period": r.period, "spent": float(r.spent)})
    return out


def _flash_errors(form: FlaskForm) -> None:
    for name, errors in form.errors.items():
        label = getattr(getattr(form, name, None), "label", None)
        for err in errors:
            flash(f"{label.text if label else name}: {err}", "error")


@bp.route("", methods=["GET", "POST"])
def index() -> Any:
    form = SourceForm(prefix="new")
    if request.method == "POST":
        if form.validate_on_submit():
            raw = form.source_id.data or ""
            try:
                key = budget.normalise_source_id(raw)
            except ValueError:
                flash(_("Refused: %(reason)s", reason=_(
                    "a source id is 1 to 64 characters a-z, 0-9, - and _ (letters are made "
                    "lower case)")), "error")
                return _page(form, 422)
            if budget.get_source(db(), key) is not None:
                flash(_("Refused: %(reason)s", reason=_(
                    "the source %(id)s is registered already; change its budget below",
                    id=key)), "error")
                return _page(form, 409)
            unit = form.unit.data or "epsilon"
            budget.add_source(db(), key, float(form.total.data), actor=current_user, via="web",
                              unit=unit)
            db().commit()
            if unit == "rho":
                flash(_("Source %(id)s registered with a budget of rho %(total)s per reference "
                        "period.", id=key, total=f"{float(form.total.data):g}"), "ok")
            else:
                flash(_("Source %(id)s registered with a budget of epsilon %(total)s per "
                        "reference period.", id=key, total=f"{float(form.total.data):g}"), "ok")
            return redirect(url_for("sources.index"))
        _flash_errors(form)
        return _page(form, 422)
    return _page(form)


def _page(form: SourceForm, status: int = 200) -> Any:
    sources = budget.sources(db())
    forms = {s.id: BudgetForm(prefix=f"b-{s.id}", formdata=None) for s in sources}
    return render_template("sources.html", form=form, sources=sources, periods=_periods(),
                           budget_forms=forms), status


@bp.route("/<string:source_id>/budget", methods=["POST"])
def set_budget(source_id: str) -> Any:
    src = budget.get_source(db(), source_id)
    if src is None:
        flash(_("Refused: %(reason)s", reason=_("no registered source %(id)s",
                                                id=source_id[:64])), "error")
        return _page(SourceForm(prefix="new", formdata=None), 404)
    form = BudgetForm(prefix=f"b-{src.id}")
    if not form.validate_on_submit():
        _flash_errors(form)
        return _page(SourceForm(prefix="new", formdata=None), 422)
    budget.set_source_budget(db(), src.id, float(form.total.data), reason=form.reason.data,
                             actor=current_user, via="web")
    db().commit()
    flash(_("The budget of %(id)s is now epsilon %(total)s per reference period.", id=src.id,
            total=f"{float(form.total.data):g}"), "ok")
    return redirect(url_for("sources.index"))
