"""A release's notice (a correction's or a revision's) in kk, ru and en.

A correction needs its notice in the office's default language; the other languages are
offered, and a page or package in a language without its own text shows the default language's
(the package says which languages were written: ``x_release.notice_languages``). Stored as
``Release.notices`` (``{lang: text}``); ``Release.notice`` keeps the default language's text.
"""

from __future__ import annotations

from typing import Any

from disclosure.errors import R_, AshyqError
from disclosure.spec import LANGUAGES

MAX_NOTICE = 2000


class NoticeError(AshyqError):
    """A notice that cannot be stored (unknown language, too long, the default one missing)."""


def notice_texts(notices: dict[str, Any] | None, notice: str | None, *, kind: str,
                 default: str) -> dict[str, str] | None:
    """The notice as ``{lang: text}`` from the per-language texts (``notices``) and/or the one
    text ``notice`` (taken as the default language's); None when there is none."""
    out: dict[str, str] = {}
    for lang, text in (notices or {}).items():
        if lang not in LANGUAGES:
            raise NoticeError(R_("notice: unknown language %(unknown)s (languages: kk, ru, en)"),
                              unknown=repr(str(lang)[:20]))
        text = " ".join(str(text or "").split()) if not isinstance(text, str) else text.strip()
        if len(text) > MAX_NOTICE:
            raise NoticeError(R_("notice.%(lang)s: text is %(value)s characters long (at most "
                                 "%(limit)s)"), lang=lang, value=len(text), limit=MAX_NOTICE)
        if text:
            out[lang] = text
    if notice and notice.strip() and default not in out:
        out[default] = notice.strip()
    if kind == "correction" and default not in out:
        raise NoticeError(R_("a correction needs its notice in the default language (%(lang)s); "
                             "the other languages are optional"), lang=default)
    return out or None


def notice_in(notices: dict[str, str] | None, lang: str, default: str) -> str:
    """The notice in ``lang``, else in the default language, else in any language given."""
    notices = notices or {}
    return notices.get(lang) or notices.get(default) or next(iter(notices.values()), "")


__all__ = ["MAX_NOTICE", "NoticeError", "notice_in", "notice_texts"]
