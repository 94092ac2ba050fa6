"""Forms of the UI (Flask-WTF: every form carries a CSRF token) and the spec-from-form builder."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField
from wtforms import (
    DateTimeLocalField,
    DecimalField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from disclosure.errors import R_, AshyqError
from disclosure.methods import DEFAULT_METHOD
from disclosure.spec import LANGUAGES

REASON = Length(max=2000)


class LoginForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1000)])


class EmptyForm(FlaskForm):
    """A form with only the CSRF token (sign out, revoke)."""


class CommentForm(FlaskForm):
    comment = TextAreaField(_l("Comment"), validators=[Optional(), REASON])


class ReasonForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), REASON])


class ScheduleForm(FlaskForm):
    embargo_at = DateTimeLocalField(_l("Embargo (UTC)"), format="%Y-%m-%dT%H:%M",
                                    validators=[Optional()])
    reason = TextAreaField(_l("Comment"), validators=[Optional(), REASON])


class ReleaseForm(FlaskForm):
    """Upload a table with its spec file, or fill the spec in."""

    table = FileField(_l("Table (CSV or XLSX, long format)"),
                      validators=[FileAllowed(["csv", "xlsx"], _l("CSV or XLSX only"))])
    spec_file = FileField(_l("Spec file (YAML or JSON)"),
                          validators=[FileAllowed(["yaml", "yml", "json"], _l("YAML or JSON only"))])
    kind = SelectField(_l("Kind of release"), choices=[], default="initial")
    previous_id = SelectField(_l("Version it replaces"), choices=[], validate_choice=False)
    notice = TextAreaField(_l("Notice in the default language (required for a correction)"),
                           validators=[Optional(), REASON])
    # the same notice in the other languages (optional; shown for the non-default ones)
    notice_kk = TextAreaField(_l("Notice in Kazakh"), validators=[Optional(), REASON])
    notice_ru = TextAreaField(_l("Notice in Russian"), validators=[Optional(), REASON])
    notice_en = TextAreaField(_l("Notice in English"), validators=[Optional(), REASON])
    # the spec in a form
    series = StringField(_l("Series id"), validators=[
        Optional(), Regexp(r"^[a-z0-9][a-z0-9_-]{0,99}$", message=_l("a-z, 0-9, - and _ only"))])
    title_kk = StringField(_l("Title (Kazakh)"), validators=[Optional(), Length(max=2000)])
    title_ru = StringField(_l("Title (Russian)"), validators=[Optional(), Length(max=2000)])
    title_en = StringField(_l("Title (English)"), validators=[Optional(), Length(max=2000)])
    dimensions = TextAreaField(_l("Dimensions"), validators=[Optional(), Length(max=20000)])
    method = SelectField(_l("Protection"), choices=[], default=DEFAULT_METHOD)
    min_frequency = IntegerField(_l("Minimum frequency"), default=5,
                                 validators=[Optional(), NumberRange(min=2, max=1000)])
    secondary = SelectField(_l("Secondary suppression"), choices=[], default="optimal")
    epsilon = DecimalField(_l("Epsilon"), places=None,
                           validators=[Optional(), NumberRange(min=0.01, max=100)])


class ChangeForm(FlaskForm):
    table = FileField(_l("New table (CSV or XLSX)"),
                      validators=[FileAllowed(["csv", "xlsx"], _l("CSV or XLSX only"))])
    spec_file = FileField(_l("New spec file (YAML or JSON)"),
                          validators=[FileAllowed(["yaml", "yml", "json"], _l("YAML or JSON only"))])
    reason = TextAreaField(_l("What changed and why"), validators=[Optional(), REASON])


class TokenForm(FlaskForm):
    name = StringField(_l("Token name"), validators=[DataRequired(), Length(max=100)])


class LanguageForm(FlaskForm):
    language = SelectField(_l("Language"), choices=[])


class UserForm(FlaskForm):
    username = StringField(_l("User name"), validators=[
        DataRequired(), Regexp(r"^[a-z0-9][a-z0-9_.-]{1,63}$", message=_l("a-z, 0-9, _ . - only"))])
    display_name = StringField(_l("Full name"), validators=[Optional(), Length(max=200)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=10, max=1000)])
    roles = SelectMultipleField(_l("Roles"), choices=[], validators=[DataRequired()])


class SpecFormError(AshyqError):
    """The spec filled in the form cannot be read; the message names the field and the line."""


def read_spec_upload(name: str, data: bytes) -> dict[str, Any]:
    """The mapping of an uploaded spec file (the same reader as the CLI's)."""
    from disclosure.spec_schema import parse_spec_text

    return parse_spec_text(data, name=name)


def parse_dimensions(text: str) -> list[dict[str, Any]]:
    """One dimension per line: ``sex: F, M`` (flat) or ``region: _T=R01,R02; R01=R01D01,R01D02``."""
    dims = []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if ":" not in line:
            raise SpecFormError(R_("dimensions, line %(line)s: write 'name: code, code' or "
                                   "'name: _T=child,child; child=grandchild'"), line=n)
        name, rest = (x.strip() for x in line.split(":", 1))
        if "=" in rest:
            hierarchy: dict[str, list[str]] = {}
            for part in rest.split(";"):
                if not part.strip():
                    continue
                if "=" not in part:
                    raise SpecFormError(R_("dimensions, line %(line)s: '%(part)s' has no '='"),
                                        line=n, part=part.strip())
                parent, kids = part.split("=", 1)
                hierarchy[parent.strip()] = [k.strip() for k in kids.split(",") if k.strip()]
            dims.append({"name": name, "hierarchy": hierarchy})
        else:
            dims.append({"name": name, "codes": [c.strip() for c in rest.split(",") if c.strip()]})
    if not dims:
        raise SpecFormError(R_("dimensions: give at least one dimension"))
    return dims


def spec_from_form(form: ReleaseForm) -> dict[str, Any]:
    titles = {lang: getattr(form, f"title_{lang}").data.strip()
              for lang in LANGUAGES if (getattr(form, f"title_{lang}").data or "").strip()}
    spec: dict[str, Any] = {"id": (form.series.data or "").strip(), "title": titles,
                            "dimensions": parse_dimensions(form.dimensions.data or "")}
    from disclosure.methods import get_method

    values = {"min_frequency": form.min_frequency.data, "secondary": form.secondary.data,
              "epsilon": form.epsilon.data}
    try:
        spec["disclosure"] = get_method(form.method.data or DEFAULT_METHOD).form_section(values)
    except ValueError as e:
        raise SpecFormError(str(e)) from None
    return spec
