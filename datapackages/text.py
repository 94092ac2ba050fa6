"""Multilingual release text: checking it is plain and safe, and choosing languages.

Every human-readable string that goes into a package passes :func:`clean` first. Refused (with a
:class:`PackageError` naming the key): markup (``<tag``, ``</``, ``<!``, ``<?``), ``javascript:``
/ ``data:`` URLs, control characters (newline and tab only in long text), Unicode direction
overrides, and text over its size limit. Text is never rewritten or escaped into something else:
it is either published as given (stripped of surrounding blanks) or refused.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from disclosure.spec import LANGUAGE_NAMES, LANGUAGES, TEXT_LONG, TEXT_SHORT

from .errors import R_, PackageError
from .i18n import N_

SHORT = TEXT_SHORT  # titles, labels, names, keywords
LONG = TEXT_LONG  # descriptions, method notes

_MARKUP = re.compile(r"<\s*[A-Za-z!/?]|&#|javascript\s*:|vbscript\s*:|data\s*:\s*text/html", re.I)
_CONTROL_SHORT = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_LONG = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u2028\u2029\ufeff]")
_URL = re.compile(r"^https?://[^\s<>\"'`\\{}|^]{1,2000}$")
_EMAIL = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")

# Built-in texts used when a spec does not give them: msgids of the package-text catalogue
# (datapackages/translations), rendered in every language with datapackages.i18n.tr.
TOTAL_LABEL = N_("Total")
SPECIAL_CODES = {
    "_T": TOTAL_LABEL,
    "_O": N_("Other"),
    "_U": N_("Unknown"),
    "_X": N_("Not specified"),
    "_Z": N_("Not applicable"),
}
DIMENSION_TITLES = {
    "region": N_("Region"),
    "ref_area": N_("Reference area"),
    "sex": N_("Sex"),
    "age": N_("Age"),
    "age_group": N_("Age group"),
    "citizenship": N_("Citizenship"),
    "country": N_("Country"),
    "year": N_("Year"),
    "time_period": N_("Time period"),
    "flow": N_("Migration flow"),
}
MEASURE_TITLE = N_("Number of persons")
UNIT = N_("persons")
#: each language by name (msgids), rendered with ``tr`` as it is named inside a text of
#: another language: "labels in Kazakh", "Label (Kazakh)" (so kk and ru translate "in Kazakh")
LANGUAGE_IN = {
    # TRANSLATORS: the language, as in "labels in Kazakh", "Label (Kazakh)"
    "kk": N_("Kazakh"),
    # TRANSLATORS: the language, as in "labels in Russian", "Label (Russian)"
    "ru": N_("Russian"),
    # TRANSLATORS: the language, as in "labels in English", "Label (English)"
    "en": N_("English"),
}


def clean(value: Any, key: str, *, source: str, long: bool = False, limit: int | None = None) -> str:
    """Return ``value`` stripped, or raise :class:`PackageError` if it is not safe plain text."""
    if not isinstance(value, str):
        raise PackageError(R_("%(key)s: must be text, not %(name)s"), source=source, key=key, name=type(value).__name__)
    limit = limit or (LONG if long else SHORT)
    if len(value) > limit:
        raise PackageError(R_("%(key)s: text is %(value)s characters long (at most %(limit)s)"),
                           source=source, key=key, value=len(value), limit=limit)
    text = value.strip()
    if not text:
        raise PackageError(R_("%(key)s: text is empty"), source=source, key=key)
    ctrl = (_CONTROL_LONG if long else _CONTROL_SHORT).search(text)
    if ctrl:
        raise PackageError(R_("%(key)s: contains the control character U+%(ctrl)s"),
                           source=source, key=key, ctrl=format(ord(ctrl.group()), "04X"))
    bidi = _BIDI.search(text)
    if bidi:
        raise PackageError(R_("%(key)s: contains the invisible formatting character U+%(bidi)s"), source=source, key=key, bidi=format(ord(bidi.group()), "04X"))
    if any(unicodedata.category(ch) == "Cs" or ch in "\ufffe\uffff" for ch in text):
        raise PackageError(R_("%(key)s: contains an unpaired surrogate or a non-character"),
                           source=source, key=key)
    if _MARKUP.search(text):
        raise PackageError(R_("%(key)s: looks like HTML/script markup; give plain text"), source=source, key=key)
    return text


def clean_url(value: Any, key: str, *, source: str) -> str:
    if not isinstance(value, str) or not _URL.match(value.strip()):
        raise PackageError(R_("%(key)s: must be an http(s) URL without spaces or quotes"), source=source, key=key)
    return value.strip()


def clean_email(value: Any, key: str, *, source: str) -> str:
    if not isinstance(value, str) or not _EMAIL.match(value.strip()):
        raise PackageError(R_("%(key)s: not an e-mail address"), source=source, key=key)
    return value.strip()


class Languages:
    """The release's languages (default first) and whether a missing translation is allowed.

    ``missing`` collects the keys filled by fallback (``title.en``) so the package can say so.
    """

    def __init__(self, order: tuple[str, ...], allow_missing: frozenset[str], source: str):
        self.order = order
        self.default = order[0]
        self.allow_missing = allow_missing
        self.source = source
        self.missing: list[str] = []

    @classmethod
    def from_metadata(cls, metadata: dict, source: str) -> Languages:
        raw = metadata.get("languages", list(LANGUAGES))
        if (not isinstance(raw, list) or sorted(raw) != sorted(LANGUAGES)
                or len(set(raw)) != len(raw)):
            raise PackageError(
                R_("languages: must list kk, ru and en once each, the default language first"),
                source=source)
        allow = metadata.get("allow_missing_languages", False)
        if allow is True:
            allowed = frozenset(LANGUAGES)
        elif allow is False or allow is None:
            allowed = frozenset()
        elif isinstance(allow, list) and all(a in LANGUAGES for a in allow):
            allowed = frozenset(allow)
        else:
            raise PackageError(R_("allow_missing_languages: must be true, false or a list of "
                               "languages (kk, ru, en)"), source=source)
        return cls(tuple(raw), allowed, source)

    def text(self, value: Any, key: str, *, long: bool = False,
             fallback: dict[str, str] | None = None) -> dict[str, str]:
        """A checked ``{kk, ru, en}`` text; a missing language is refused unless allowed.

        ``fallback`` (built-in texts) is used only when ``value`` is absent altogether.
        """
        if value is None:
            if fallback is None:
                raise PackageError(R_("%(key)s: is required (in %(order)s)"),
                                   source=self.source, key=key, order=', '.join(self.order))
            value = fallback
        if isinstance(value, str):
            value = {self.default: value}
        if not isinstance(value, dict):
            raise PackageError(R_("%(key)s: must be a mapping of language to text"), source=self.source, key=key)
        unknown = [k for k in value if k not in LANGUAGES]
        if unknown:
            raise PackageError(R_("%(key)s: unknown language %(unknown)s (languages: kk, ru, en)"), source=self.source, key=key, unknown=repr(str(unknown[0])[:20]))
        out = {lang: clean(value[lang], f"{key}.{lang}", source=self.source, long=long)
               for lang in self.order if value.get(lang) not in (None, "")}
        absent = [lang for lang in self.order if lang not in out]
        refused = [lang for lang in absent if lang not in self.allow_missing]
        if refused:
            names = ", ".join(f"{key}.{lang} ({LANGUAGE_NAMES[lang]})" for lang in refused)
            raise PackageError(R_("missing translation: %(names)s; give the text in every language or set allow_missing_languages in the spec"), source=self.source, names=names)
        if not out:
            raise PackageError(R_("%(key)s: no text in any language"), source=self.source, key=key)
        for lang in absent:
            donor = next(lg for lg in self.order if lg in out)
            out[lang] = out[donor]
            self.missing.append(f"{key}.{lang}")
        return {lang: out[lang] for lang in LANGUAGES}


# -- CSV cells ------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def csv_safe(value: str) -> str:
    """A CSV text cell that a spreadsheet would run as a formula — starting with ``=``, ``+``,
    ``-``, ``@``, tab or carriage return — gets a leading apostrophe (OWASP "CSV injection").
    A plain number (``-3``, ``+1.5``, ``2e-05``) is not text and stays as it is. One rule for
    every CSV Ashyq writes for people (code lists, flags, the data table, the audit export)."""
    if value[:1] in _FORMULA_START and not _NUMBER.match(value):
        return "'" + value
    return value
