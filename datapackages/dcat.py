"""DCAT-AP 3.0 metadata of one version, written into the package as ``dcat.ttl`` (Turtle).

:func:`dcat_turtle` is a pure function of the finished ``datapackage.json`` dict (every
resource but ``dcat.ttl`` itself already listed): a ``dcat:Dataset`` for this version (its IRI is
the package ``id``: the DOI URL, the landing URL or a ``urn:uuid``) with titles, descriptions and
keywords tagged ``@kk`` / ``@ru`` / ``@en``, ``dcat:version``, ``adms:versionNotes``,
``dct:issued``, ``dct:temporal`` when the reference period is an ISO 8601 year, quarter, half
or month, ``dcat:inSeries`` to the ``dcat:DatasetSeries`` of the table, the publisher
(``foaf:Agent``), the contact point (``vcard:Kind``), the licence (``dct:LicenseDocument``) and
one ``dcat:Distribution`` per resource (``dcat:downloadURL`` relative to ``dcat.ttl``, i.e. the
file beside it in the package, ``dcat:mediaType`` as an IANA IRI, ``dct:format`` from the EU
file-type authority list where there is one, ``dcat:byteSize``, ``spdx:checksum``). It
validates against the DCAT-AP 3.0.0 SHACL shapes (``tests/datapackages/test_package_exchange.py``).

:func:`contact_point` reads the spec's ``contact_point: {name, email}``; without it the
publisher's e-mail (``publisher.email``) is the contact.
"""

from __future__ import annotations

import calendar
import re
from typing import Any

from .errors import R_, PackageError
from .i18n import N_, tr
from .text import LANGUAGES, Languages, clean_email

PATH = "dcat.ttl"
TITLE = N_("DCAT-AP metadata (Turtle)")
DESCRIPTION = N_("The metadata of this version as DCAT-AP 3.0 in Turtle: the dataset, one "
                 "distribution per file, licence, publisher and contact point.")
FIRST = N_("Version %(version)s: the first release of this table.")
NEXT = N_("Version %(version)s; it replaces version %(previous)s.")

_IANA = "http://www.iana.org/assignments/media-types/"
_FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
_LANGUAGE = "http://publications.europa.eu/resource/authority/language/"
_LANG_CODE = {"kk": "KAZ", "ru": "RUS", "en": "ENG"}
_FILE_TYPES = {"csv": "CSV", "json": "JSON", "xlsx": "XLSX", "xml": "XML", "txt": "TXT",
               "ttl": "RDF_TURTLE", "px": "PX", "zip": "ZIP"}
_PREFIXES = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "adms": "http://www.w3.org/ns/adms#",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "spdx": "http://spdx.org/rdf/terms#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
_PERIOD = re.compile(r"^(\d{4})(?:-(?:Q([1-4])|S([12])|M?(\d{2})))?$")


def contact_point(metadata: dict, langs: Languages, publisher: dict[str, str],
                  source: str) -> dict[str, Any] | None:
    """``{name: {kk, ru, en}, email}`` of the spec's ``contact_point``, else the publisher's
    e-mail under the publisher's name, else None."""
    raw = metadata.get("contact_point")
    if raw is None:
        pub = metadata.get("publisher") or {}
        email = pub.get("email") if isinstance(pub, dict) else None
        if not email:
            return None
        return {"name": dict(publisher),
                "email": clean_email(email, "publisher.email", source=source)}
    if not isinstance(raw, dict) or not raw.get("email"):
        raise PackageError(R_("contact_point: must be {name, email} with an e-mail address"),
                           source=source)
    name = raw.get("name")
    if isinstance(name, str):  # a person's or a unit's name: the same in every language
        name = dict.fromkeys(LANGUAGES, name)
    return {"name": langs.text(name, "contact_point.name") if name else dict(publisher),
            "email": clean_email(raw["email"], "contact_point.email", source=source)}


def _lit(s: str) -> str:
    return '"' + (s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
                  .replace("\r", "\\r").replace("\t", "\\t")) + '"'


def _iri(s: str) -> str:
    if re.search(r'[\x00-\x20<>"{}|^`\\]', s):
        raise PackageError(R_("%(s)s cannot be written as an IRI in dcat.ttl"), s=repr(s[:60]))
    return f"<{s}>"


def _tagged(text: dict[str, str]) -> str:
    return " , ".join(f"{_lit(text[lg])}@{lg}" for lg in LANGUAGES if text.get(lg))


def _period(ref: str) -> tuple[str, str] | None:
    """Start and end date of an ISO 8601 / SDMX period code, or None."""
    m = _PERIOD.match(ref.strip())
    if not m:
        return None
    year, q, s, month = m.group(1), m.group(2), m.group(3), m.group(4)
    y = int(year)
    if q:
        first, last = 3 * int(q) - 2, 3 * int(q)
    elif s:
        first, last = 6 * int(s) - 5, 6 * int(s)
    elif month:
        if not 1 <= int(month) <= 12:
            return None
        first = last = int(month)
    else:
        first, last = 1, 12
    end = calendar.monthrange(y, last)[1]
    return f"{y:04d}-{first:02d}-01", f"{y:04d}-{last:02d}-{end:02d}"


def dcat_turtle(descriptor: dict) -> bytes:
    """The DCAT-AP 3.0 Turtle of a package descriptor (see the module docstring)."""
    tx = descriptor.get("x_translations", {})
    title, desc = tx.get("title", {}), tx.get("description", {})
    version = descriptor["version"]
    release = descriptor.get("x_release", {})
    series = release.get("series", descriptor["name"])
    previous = release.get("previous_version")
    dataset = descriptor["id"]
    landing = descriptor.get("x_landing_url")
    lines = [f"@prefix {p}: <{u}> ." for p, u in _PREFIXES.items()]
    lines.append("")
    notes = tr(NEXT, version=version, previous=previous) if previous else tr(FIRST,
                                                                               version=version)
    ds = [f"{_iri(dataset)} a dcat:Dataset",
          f"    dct:title {_tagged(title)}",
          f"    dct:description {_tagged(desc)}",
          f"    dct:identifier {_lit(dataset)}",
          f"    dcat:version {_lit(version)}",
          f"    adms:versionNotes {_tagged(notes)}",
          f'    dct:issued "{descriptor["created"]}"^^xsd:dateTime',
          "    dct:language " + " , ".join(_iri(_LANGUAGE + _LANG_CODE[lg])
                                           for lg in descriptor.get("languages", LANGUAGES)),
          f"    dcat:inSeries <urn:ashyq:series:{series}>",
          "    dct:publisher _:publisher",
          "    dct:license _:license"]
    kw = tx.get("keywords", {})
    words = [f"{_lit(w)}@{lg}" for lg in LANGUAGES for w in kw.get(lg, [])]
    if words:
        ds.append("    dcat:keyword " + " , ".join(dict.fromkeys(words)))
    if landing:
        ds.append(f"    dcat:landingPage {_iri(landing)}")
    contact = descriptor.get("x_contact_point")
    if contact:
        ds.append("    dcat:contactPoint _:contact")
    ref = (descriptor.get("x_reference_metadata", {}).get("reference_period") or {})
    codes = set(ref.values())
    span = _period(codes.pop()) if len(codes) == 1 else None
    if span:
        ds.append("    dct:temporal _:period")
    resources = [r for r in descriptor.get("resources", []) if r.get("path") != PATH]
    ds.append("    dcat:distribution " + " , ".join(f"_:d{i}" for i in range(len(resources))))
    lines.append(" ;\n".join(ds) + " .")
    lines.append("")
    lines.append(f"<urn:ashyq:series:{series}> a dcat:DatasetSeries ;\n"
                 f"    dct:title {_tagged(title)} ;\n"
                 f"    dct:description {_tagged(desc)} ;\n"
                 "    dct:publisher _:publisher .")
    pub = next((c for c in descriptor.get("contributors", []) if c.get("role") == "publisher"),
               None)
    pub_name = (pub or {}).get("x_translations", {}).get("title") or {
        lg: (pub or {}).get("title", series) for lg in LANGUAGES}
    lines.append(f"_:publisher a foaf:Agent , foaf:Organization ;\n    foaf:name "
                 f"{_tagged(pub_name)} .")
    lic = (descriptor.get("licenses") or [{}])[0]
    lic_iri = lic.get("path")
    if lic_iri:
        lines.append(f"_:license a dct:LicenseDocument ;\n    dct:identifier {_iri(lic_iri)} ;"
                     f"\n    dct:title {_lit(lic.get('title') or lic.get('name') or lic_iri)} .")
    else:
        lines.append(f"_:license a dct:LicenseDocument ;\n    dct:title "
                     f"{_lit(lic.get('title') or lic.get('name', ''))} .")
    if contact:
        lines.append(f"_:contact a vcard:Kind , vcard:Organization ;\n"
                     f"    vcard:fn {_tagged(contact['name'])} ;\n"
                     f"    vcard:hasEmail {_iri('mailto:' + contact['email'])} .")
    if span:
        lines.append(f'_:period a dct:PeriodOfTime ;\n    dcat:startDate "{span[0]}"^^xsd:date ;'
                     f'\n    dcat:endDate "{span[1]}"^^xsd:date .')
    media: dict[str, str] = {}
    formats: dict[str, str] = {}
    access = _iri(landing) if landing else "<datapackage.json>"
    for i, r in enumerate(resources):
        rt = r.get("x_translations", {})
        mt = str(r.get("mediatype", "application/octet-stream")).split(";")[0].strip()
        media[mt] = _iri(_IANA + mt)
        d = [f"_:d{i} a dcat:Distribution",
             f"    dct:title {_tagged(rt.get('title') or {})}",
             f"    dcat:accessURL {access}",
             f"    dcat:downloadURL {_iri(r['path'])}",
             f"    dcat:mediaType {media[mt]}",
             f'    dcat:byteSize "{int(r["bytes"])}"^^xsd:decimal',
             "    dct:license _:license"]
        if rt.get("description"):
            d.insert(2, f"    dct:description {_tagged(rt['description'])}")
        ft = _FILE_TYPES.get(str(r.get("format", "")).lower())
        if ft:
            formats[ft] = _iri(_FILE_TYPE + ft)
            d.append(f"    dct:format {formats[ft]}")
        h = str(r.get("hash", ""))
        if h.startswith("sha256:"):
            d.append("    spdx:checksum [ a spdx:Checksum ; spdx:algorithm "
                     "spdx:checksumAlgorithm_sha256 ;\n"
                     f'        spdx:checksumValue "{h[7:]}"^^xsd:hexBinary ]')
        if r.get("x_language"):
            d.append(f"    dct:language {_iri(_LANGUAGE + _LANG_CODE[r['x_language']])}")
        lines.append(" ;\n".join(d) + " .")
    for iri in media.values():
        lines.append(f"{iri} a dct:MediaType .")
    for iri in formats.values():
        lines.append(f"{iri} a dct:MediaTypeOrExtent .")
    for lg in descriptor.get("languages", LANGUAGES):
        lines.append(f"{_iri(_LANGUAGE + _LANG_CODE[lg])} a dct:LinguisticSystem .")
    if landing:
        lines.append(f"{_iri(landing)} a foaf:Document .")
    return ("\n".join(lines) + "\n").encode("utf-8")


def dcat_resource_text() -> tuple[dict[str, str], dict[str, str]]:
    """Title and description of the ``dcat.ttl`` resource in every language."""
    return tr(TITLE), tr(DESCRIPTION)


__all__ = ["PATH", "contact_point", "dcat_resource_text", "dcat_turtle"]
