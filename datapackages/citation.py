"""Citations of one published version, computed from its ``datapackage.json`` descriptor.

- :func:`citation`: DataCite's preferred form, ``Creator (Year): Title. Version X. Publisher.
  (Dataset). Identifier``, in kk, ru or en, with an optional access date.
- :func:`csl_json`: a CSL-JSON item of type ``dataset`` (only properties CSL-JSON defines).
- :func:`biblatex`: a BibLaTeX ``@dataset`` entry (special characters escaped).

The descriptor fields read: ``name``, ``version``, ``created``, ``id`` (a DOI URL is used as
the identifier), ``homepage`` / ``x_landing_url`` (the version's stable URL),
``x_translations.title``, and ``contributors`` (role ``author``: creators; role ``publisher``),
each with ``x_translations.title``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from disclosure.spec import LANGUAGES

from .i18n import N_, tr

#: msgids of the package-text catalogue (:mod:`datapackages.i18n`)
WORDS = {
    "version": N_("Version"),
    # TRANSLATORS: the resource type in a citation: "... Version 1.0.0. Publisher. (Dataset)."
    "dataset": N_("Dataset"),
}


def _lang(descriptor: dict, lang: str | None) -> str:
    langs = descriptor.get("languages") or list(LANGUAGES)
    if lang is None:
        return langs[0]
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r} (kk, ru, en)")
    return lang


def _tr(obj: dict, key: str, lang: str) -> str:
    tr = (obj.get("x_translations") or {}).get(key) or {}
    return str(tr.get(lang) or obj.get(key) or "")


def _people(descriptor: dict, role: str, lang: str) -> list[str]:
    out = []
    for c in descriptor.get("contributors") or []:
        roles = set(c.get("roles") or []) | {c.get("role")}
        if role in roles:
            out.append(_tr(c, "title", lang))
    return [p for p in out if p]


def _parts(descriptor: dict, lang: str) -> dict[str, Any]:
    publisher = (_people(descriptor, "publisher", lang) or [""])[0]
    creators = _people(descriptor, "author", lang) or ([publisher] if publisher else [])
    created = str(descriptor.get("created") or "")
    ident = str(descriptor.get("id") or "")
    doi = ident[len("https://doi.org/"):] if ident.startswith("https://doi.org/") else None
    url = (f"https://doi.org/{doi}" if doi else
           descriptor.get("x_landing_url") or descriptor.get("homepage") or None)
    return {
        "title": _tr(descriptor, "title", lang),
        "creators": creators,
        "publisher": publisher,
        "year": created[:4] if re.match(r"^\d{4}", created) else "",
        "date": created[:10] if re.match(r"^\d{4}-\d{2}-\d{2}", created) else "",
        "version": str(descriptor.get("version") or ""),
        "doi": doi,
        "url": url,
        "name": str(descriptor.get("name") or "dataset"),
    }


def citation(descriptor: dict, lang: str | None = None, *, accessed: date | None = None) -> str:
    """DataCite-style citation text in ``lang`` (default: the package's default language)."""
    lang = _lang(descriptor, lang)
    p = _parts(descriptor, lang)
    who = "; ".join(p["creators"])
    text = f"{who} ({p['year']}): {p['title']}. {tr(WORDS['version'])[lang]} {p['version']}. "
    if p["publisher"]:
        text += f"{p['publisher']}. "
    text += f"({tr(WORDS['dataset'])[lang]})."
    if p["url"]:
        text += f" {p['url']}"
    if accessed is not None:
        text += " " + tr("(accessed %(date)s)", date=accessed.isoformat())[lang]
    return text.strip()


def csl_json(descriptor: dict, lang: str | None = None) -> dict:
    """A CSL-JSON item (``type: dataset``); ``accessed`` is left to whoever cites it."""
    lang = _lang(descriptor, lang)
    p = _parts(descriptor, lang)
    item: dict[str, Any] = {
        "id": f"{p['name']}-{p['version']}-{lang}",
        "type": "dataset",
        "title": p["title"],
        "author": [{"literal": c} for c in p["creators"]],
        "version": p["version"],
        "language": lang,
        "genre": tr(WORDS["dataset"])[lang],
    }
    if p["publisher"]:
        item["publisher"] = p["publisher"]
    if p["date"]:
        item["issued"] = {"date-parts": [[int(x) for x in p["date"].split("-")]]}
    if p["doi"]:
        item["DOI"] = p["doi"]
    if p["url"]:
        item["URL"] = p["url"]
    return item


_BIB_ESCAPE = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "%": r"\%", "&": r"\&",
               "$": r"\$", "#": r"\#", "_": r"\_", "^": r"\^{}", "~": r"\~{}"}
_BIB_LANGID = {"kk": "kazakh", "ru": "russian", "en": "english"}


def _bib(s: str) -> str:
    return "".join(_BIB_ESCAPE.get(ch, ch) for ch in s)


def biblatex(descriptor: dict, lang: str | None = None) -> str:
    """A BibLaTeX ``@dataset`` entry; institutional authors are braced so they are not split."""
    lang = _lang(descriptor, lang)
    p = _parts(descriptor, lang)
    key = re.sub(r"[^A-Za-z0-9_-]", "_", f"{p['name']}_{p['version']}_{lang}")
    fields = [
        ("author", " and ".join("{" + _bib(c) + "}" for c in p["creators"])),
        ("title", _bib(p["title"])),
        ("version", _bib(p["version"])),
        ("publisher", _bib(p["publisher"])),
        ("date", p["date"]),
        ("doi", _bib(p["doi"] or "")),
        ("url", p["url"] or ""),
        ("langid", _BIB_LANGID[lang]),
    ]
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields if v)
    return f"@dataset{{{key},\n{body}\n}}\n"
