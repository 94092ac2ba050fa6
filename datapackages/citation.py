"""Citations of one published version, computed from its ``datapackage.json`` descriptor.

- :func:`citation`: DataCite's preferred form, ``Creator (Year): Title. Version X. Publisher.
  (Dataset). Identifier``, in kk, ru or en, with an optional access date.
- :func:`csl_json`: a CSL-JSON item of type ``dataset`` (only properties CSL-JSON defines).
- :func:`biblatex`: a BibLaTeX ``@dataset`` entry (special characters escaped) with ``date``,
  ``version``, ``publisher``, ``url``, ``urldate``, and for BibTeX styles (which read neither
  ``date`` nor ``version``) ``year`` and ``howpublished``.
- :func:`render_csl`: a CSL-JSON item as text through a real CSL processor (citeproc-py, a dev
  dependency) with the project's style and, for Kazakh, the project's locale (below).

Who is the creator, who the publisher (DataCite 4 ``creator`` / ``publisher``, CSL ``author`` /
``publisher``): the creators are exactly the descriptor's contributors with role ``author``
(people or organisations, in the order given); the contributor with role ``publisher`` is the
publisher and only that. The publishing office is an author only when the spec lists it as a
contributor with role ``author`` (it made the data, as an office does for its own tables). With
no creator, CSL-JSON has no ``author``, BibLaTeX no ``author`` and the text begins with the title
(``Title (Year). Version ...``), as CSL styles substitute the title for a missing author: the
publisher is never put in the author's place.

``csl/`` ships a CSL 1.0 locale for Kazakh (``locales-kk-KZ.xml``; the CSL locales project and
citeproc-py have none, and a processor falls back to English or Russian terms) and the DataCite
style ``ashyq-datacite.csl``; both CC BY-SA 3.0 like the CSL projects.

The descriptor fields read: ``name``, ``version``, ``created``, ``id`` (a DOI URL is used as
the identifier), ``homepage`` / ``x_landing_url`` (the version's stable URL),
``x_translations.title``, and ``contributors`` (role ``author``: creators; role ``publisher``),
each with ``x_translations.title``.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

from disclosure.spec import LANGUAGES

from .i18n import N_, tr

#: msgids of the package-text catalogue (:mod:`datapackages.i18n`)
WORDS = {
    "version": N_("Version"),
    # TRANSLATORS: the resource type in a citation: "... Version 1.0.0. Publisher. (Dataset)."
    "dataset": N_("Dataset"),
}

#: the CSL files shipped with the package
CSL_DIR = Path(__file__).resolve().parent / "csl"
STYLE = CSL_DIR / "ashyq-datacite.csl"
#: locales the project ships because no CSL processor has them
OWN_LOCALES = {"kk": CSL_DIR / "locales-kk-KZ.xml"}
#: the CSL locale of each language
CSL_LOCALES = {"kk": "kk-KZ", "ru": "ru-RU", "en": "en-GB"}


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
    created = str(descriptor.get("created") or "")
    ident = str(descriptor.get("id") or "")
    doi = ident[len("https://doi.org/"):] if ident.startswith("https://doi.org/") else None
    url = (f"https://doi.org/{doi}" if doi else
           descriptor.get("x_landing_url") or descriptor.get("homepage") or None)
    return {
        "title": _tr(descriptor, "title", lang),
        "creators": _people(descriptor, "author", lang),  # never the publisher in their place
        "publisher": (_people(descriptor, "publisher", lang) or [""])[0],
        "year": created[:4] if re.match(r"^\d{4}", created) else "",
        "date": created[:10] if re.match(r"^\d{4}-\d{2}-\d{2}", created) else "",
        "version": str(descriptor.get("version") or ""),
        "doi": doi,
        "url": url,
        "name": str(descriptor.get("name") or "dataset"),
    }


def citation(descriptor: dict, lang: str | None = None, *, accessed: date | None = None) -> str:
    """DataCite-style citation text in ``lang`` (default: the package's default language);
    without a creator it begins with the title (module docstring)."""
    lang = _lang(descriptor, lang)
    p = _parts(descriptor, lang)
    if p["creators"]:
        text = f"{'; '.join(p['creators'])} ({p['year']}): {p['title']}. "
    else:
        text = f"{p['title']} ({p['year']}). "
    text += f"{tr(WORDS['version'])[lang]} {p['version']}. "
    if p["publisher"]:
        text += f"{p['publisher']}. "
    text += f"({tr(WORDS['dataset'])[lang]})."
    if p["url"]:
        text += f" {p['url']}"
    if accessed is not None:
        text += " " + tr("(accessed %(date)s)", date=accessed.isoformat())[lang]
    return text.strip()


def csl_json(descriptor: dict, lang: str | None = None, *, accessed: date | None = None) -> dict:
    """A CSL-JSON item (``type: dataset``): ``author`` only for creators, the organisation that
    publishes it as ``publisher``; ``accessed`` only when given."""
    lang = _lang(descriptor, lang)
    p = _parts(descriptor, lang)
    item: dict[str, Any] = {
        "id": f"{p['name']}-{p['version']}-{lang}",
        "type": "dataset",
        "title": p["title"],
    }
    if p["creators"]:
        item["author"] = [{"literal": c} for c in p["creators"]]
    item.update({"version": p["version"], "language": lang,
                 "genre": tr(WORDS["dataset"])[lang]})
    if p["publisher"]:
        item["publisher"] = p["publisher"]
    if p["date"]:
        item["issued"] = {"date-parts": [[int(x) for x in p["date"].split("-")]]}
    elif p["year"]:
        item["issued"] = {"date-parts": [[int(p["year"])]]}
    if accessed is not None:
        item["accessed"] = {"date-parts": [[accessed.year, accessed.month, accessed.day]]}
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


def biblatex(descriptor: dict, lang: str | None = None, *, accessed: date | None = None) -> str:
    """A BibLaTeX ``@dataset`` entry; authors only for creators, each braced so a name is not
    split; ``year`` beside ``date`` and ``howpublished`` (type, version, publisher) for BibTeX
    styles; ``urldate`` when ``accessed`` is given."""
    lang = _lang(descriptor, lang)
    p = _parts(descriptor, lang)
    key = re.sub(r"[^A-Za-z0-9_-]", "_", f"{p['name']}_{p['version']}_{lang}")
    fields = [
        ("author", " and ".join("{" + _bib(c) + "}" for c in p["creators"])),
        ("title", _bib(p["title"])),
        ("version", _bib(p["version"])),
        ("publisher", _bib(p["publisher"])),
        ("date", p["date"]),
        ("year", p["year"]),
        # BibTeX styles know no version and print @dataset as @misc (no publisher either), with
        # howpublished; biblatex's @dataset driver does not print it (nothing twice)
        ("howpublished", _bib(". ".join(filter(None, (
            tr(WORDS["dataset"])[lang], f"{tr(WORDS['version'])[lang]} {p['version']}",
            p["publisher"]))))),
        ("doi", _bib(p["doi"] or "")),
        ("url", p["url"] or ""),
        ("urldate", accessed.isoformat() if accessed is not None else ""),
        ("langid", _BIB_LANGID[lang]),
    ]
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields if v)
    return f"@dataset{{{key},\n{body}\n}}\n"


def csl_style(lang: str, style: str | Path | None = None) -> Any:
    """A citeproc-py ``CitationStylesStyle`` (default: :data:`STYLE`) whose terms and dates are
    in ``lang``: for kk the project's locale file, searched after the style's own ``cs:locale``
    elements and before citeproc-py's en-US fallback (the order of CSL 1.0's locale lookup)."""
    from citeproc import CitationStylesStyle
    from citeproc.frontend import CitationStylesXML

    if lang not in CSL_LOCALES:
        raise ValueError(f"unknown language {lang!r} (kk, ru, en)")
    st = CitationStylesStyle(str(style or STYLE), locale=CSL_LOCALES[lang], validate=False)
    own = OWN_LOCALES.get(lang)
    if own is not None:
        locale = CitationStylesXML(str(own), validate=False).root
        locale.style = st.root
        locales = st.root.locales  # [in-style locales..., citeproc-py's en-US]
        locales.insert(len(locales) - 1, locale)
    return st


def render_csl(item: dict, lang: str, *, style: str | Path | None = None) -> str:
    """The bibliography entry of one CSL-JSON ``item`` as plain text, rendered by citeproc-py
    in ``lang`` with :func:`csl_style`."""
    from citeproc import Citation, CitationItem, CitationStylesBibliography, formatter
    from citeproc.source.json import CiteProcJSON

    source = CiteProcJSON([item])
    bib = CitationStylesBibliography(csl_style(lang, style), source, formatter.plain)
    bib.register(Citation([CitationItem(str(item["id"]).lower())]))
    return "".join(str(x) for x in bib.bibliography()[0])
