"""The one error base of Ashyq: every refusal meant for the user is an :class:`AshyqError`.

A refusal is one line: ``FILE, row N, column C: reason`` with whichever parts are known (rows
numbered as in frictionless: the header is row 1). It never quotes the count of a cell.

The CLI, the web UI and the API map ``AshyqError`` in one place each (exit 1, HTTP 422 or the
error's own ``http_status``); anything else is an internal error: exit 3 / HTTP 500, a traceback
in the server log and no detail shown.

The base lives in ``disclosure`` because it is the lowest layer; ``datapackages`` and
``publisher`` re-export it.

**Every refusal in the reader's language.** The reason is an English *template* marked with
:func:`R_` for the UI catalogue (``publisher/translations``, extracted with ``-k R_``), with
``%(name)s`` placeholders filled from the keyword params: ``InputError(R_("the count %(value)s
is negative"), source=..., row=..., value="'-3'")``. ``str(e)`` / ``e.message`` is the English
line (the CLI and the API print it); :func:`localized` renders the same refusal with a
``gettext`` of the reader's language: the translated template, the translated words ``row`` and
``column``, and params that are words themselves (:class:`Word`) or nested refusals translated
too. Params are formatted by the raise site (``repr`` of a code, ``f"{x:g}"``); a template with
params writes a literal ``%`` as ``%%``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Gettext = Callable[[str], str]


def R_(template: str) -> str:  # noqa: N802 - the gettext-style marker
    """Mark a refusal's template for the UI catalogue (returned unchanged)."""
    return template


def _english(text: str) -> str:
    return text


class Word(str):
    """A param that is itself an English word or phrase of the catalogue (a method's label, a
    state): :func:`localized` translates it; in the English line it is the text as it is."""

    __slots__ = ()


class Phrase(str):
    """A part of a refusal composed apart (a template and its params) that goes where text
    goes (a hook's answer, a marshmallow message, a param of a larger template): the string is
    its English text; :func:`fill` renders it in the reader's language."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, **params: Any) -> Phrase:
        obj = super().__new__(cls, fill(template, params))
        obj.template, obj.params = template, params
        return obj


def located(reason: str, *, source: str | None = None, row: int | None = None,
            column: str | None = None, gettext: Gettext = _english) -> str:
    """``FILE, row N, column C: reason`` with whichever parts are known (rows as frictionless);
    ``gettext`` translates the words ``row`` and ``column``."""
    where = [str(source)] if source else []
    if row is not None:
        where.append(gettext(R_("row %(row)s")) % {"row": row})
    if column is not None:
        where.append(gettext(R_("column %(column)s")) % {"column": column})
    return f"{', '.join(where)}: {reason}" if where else reason


def fill(template: str, params: dict[str, Any], gettext: Gettext = _english) -> str:
    """``template`` translated by ``gettext``, its placeholders filled with ``params`` (a
    :class:`Word` or :class:`Phrase` translated, a nested :class:`AshyqError` by its line in that
    language)."""
    text = gettext(template)
    if not params:
        return text
    values = {k: _param(v, gettext) for k, v in params.items()}
    for candidate in (text, template):  # a broken translation: the English text
        try:
            return candidate % values
        except (KeyError, ValueError, TypeError):
            continue
    return template


def _param(value: Any, gettext: Gettext) -> Any:
    if isinstance(value, Word):
        return gettext(value)
    if isinstance(value, Phrase):
        return fill(value.template, value.params, gettext)
    if isinstance(value, AshyqError):
        return value.localized(gettext)
    return value


class AshyqError(Exception):
    """A refusal for the user: where (source, row, column) and why, on one line.

    ``http_status`` is what the web layer answers (422: the request cannot be processed as
    given) and ``code`` the machine-readable kind in the API's error body. ``retryable`` says a
    later retry of the same request may succeed.
    """

    http_status = 422
    code = "invalid_input"
    retryable = False

    def __init__(self, reason: str, *, source: str | None = None, row: int | None = None,
                 column: str | None = None, **params: Any):
        if isinstance(reason, Phrase):  # composed apart (e.g. by a method's hook)
            reason, params = reason.template, reason.params | params
        if "template" not in vars(self):  # a subclass may have set its template already
            self.template = reason
            reason = fill(reason, params)
        self.reason = reason
        self.source = source
        self.row = row
        self.column = column
        self.params = params
        super().__init__(self.message)

    def localized_reason(self, gettext: Gettext) -> str:
        """The reason (without file, row, column) in the language of ``gettext``."""
        return fill(self.template, self.params, gettext)

    def localized(self, gettext: Gettext) -> str:
        """The one line in the language of ``gettext`` (``message`` for English)."""
        return " ".join(located(self.localized_reason(gettext), source=self.source,
                                row=self.row, column=self.column, gettext=gettext).split())

    @property
    def message(self) -> str:
        return " ".join(located(self.reason, source=self.source, row=self.row,
                                column=self.column).split())

    def __str__(self) -> str:
        return self.message


def param_data(value: Any) -> Any:
    """A param as JSON-able data that :func:`param_from_data` turns back into the same
    translatable value (a :class:`Word`, a :class:`Phrase` with its params); numbers and
    ``None`` as they are, anything else as its English text."""
    if isinstance(value, Word):
        return {"word": str(value)}
    if isinstance(value, Phrase):
        return {"phrase": value.template,
                "params": {k: param_data(v) for k, v in value.params.items()}}
    if isinstance(value, AshyqError):
        return {"phrase": value.template,
                "params": {k: param_data(v) for k, v in value.params.items()}}
    if isinstance(value, bool | int | float | type(None)):
        return value
    return str(value)


def param_from_data(data: Any) -> Any:
    """The param :func:`param_data` described."""
    if isinstance(data, dict) and "word" in data:
        return Word(str(data["word"]))
    if isinstance(data, dict) and "phrase" in data:
        params = {str(k): param_from_data(v) for k, v in (data.get("params") or {}).items()}
        return Phrase(str(data["phrase"]), **params)
    return data


def user_message(e: BaseException) -> str:
    """The one line shown to the user for an ``AshyqError`` (at most 1,000 characters)."""
    return " ".join(str(e).split())[:1000]


def localized(e: BaseException, gettext: Gettext) -> str:
    """The one line of a refusal in the language of ``gettext`` (at most 1,000 characters);
    an exception that is not an :class:`AshyqError` gives its English text."""
    text = e.localized(gettext) if isinstance(e, AshyqError) else str(e)
    return " ".join(text.split())[:1000]


__all__ = ["AshyqError", "Gettext", "Phrase", "R_", "Word", "fill", "localized", "located",
           "param_data", "param_from_data", "user_message"]
