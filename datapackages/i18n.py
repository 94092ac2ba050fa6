"""The package text in every language: the package-text catalogue and its translator ``tr``.

Every kk/ru/en text Ashyq itself writes into a data package (method text, field and resource
titles, flag meanings, built-in labels, citations, the downloads' headings) is an English msgid
of the Babel catalogue ``datapackages/translations/<lang>/LC_MESSAGES/package.mo`` (package
data; see ``datapackages/translations/README.md``). Code marks a msgid with ``tr("...")`` where
it is rendered, or ``N_("...")`` for a module-level constant rendered later with ``tr``.

``tr(msgid, **params)`` gives ``{lang: text}`` for every language of
:data:`disclosure.spec.LANGUAGES`: the translated template ``% params``, where a param that is
a ``{lang: text}`` dict (e.g. another ``tr`` result) contributes its text in that language.
Numbers are formatted by the caller (``f"{x:g}"``) and passed as strings. A msgid without
params is used as it is (no ``%`` formatting), so only a template with params writes ``%%``.
It is the translator :data:`disclosure.methods.Translate` the disclosure methods are handed.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from babel.support import Translations

from disclosure.methods import N_
from disclosure.spec import LANGUAGES

DOMAIN = "package"
TRANSLATIONS = Path(__file__).parent / "translations"


@cache
def catalogue(lang: str) -> Translations:
    """The compiled catalogue of ``lang`` (loaded once); a missing one is an installation error."""
    path = TRANSLATIONS / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"
    try:
        with path.open("rb") as fh:
            return Translations(fh, domain=DOMAIN)
    except FileNotFoundError:
        raise RuntimeError(f"the package-text catalogue {path} is missing; run "
                           "pybabel compile (datapackages/translations/README.md)") from None


def tr(msgid: str, /, **params: Any) -> dict[str, str]:
    """``msgid`` rendered in every language (see the module docstring)."""
    out = {}
    for lang in LANGUAGES:
        template = catalogue(lang).gettext(msgid)
        if params:
            template %= {k: (v[lang] if isinstance(v, dict) else v) for k, v in params.items()}
        out[lang] = template
    return out


__all__ = ["DOMAIN", "N_", "TRANSLATIONS", "catalogue", "tr"]
