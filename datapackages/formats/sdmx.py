"""SDMX downloads: SDMX-CSV 2.0 data and the SDMX-ML 2.1 structure message that describes it.

Three formats, one file each (not per language):

- ``sdmx-csv`` (``<id>.sdmx.csv``): SDMX-CSV 2.0, one row per cell (totals included) with the
  columns ``STRUCTURE`` (``dataflow``), ``STRUCTURE_ID`` (``AGENCY:ID(VERSION)``), ``ACTION``
  (``I``), one column per dimension (its id in upper case) holding the codes, ``TIME_PERIOD``
  when the table has no time dimension but an ISO 8601 ``reference_period``, ``OBS_VALUE``
  (empty where suppressed), ``OBS_STATUS``, ``CONF_STATUS``, ``UNIT_MEASURE`` (``PS``: persons)
  and the method's own columns (``OBS_MOE`` for noise).
- ``sdmx-json`` (``<id>.sdmx.json``): the same data as an SDMX-JSON 1.0 data message (what
  .Stat Data Explorer and sdmx1 read), codes named in kk/ru/en.
- ``sdmx-structure`` (``<id>.sdmx-structure.xml``): the dataflow, the data structure definition
  (one dimension per table dimension, the measure ``OBS_VALUE``, the attributes ``OBS_STATUS``,
  ``CONF_STATUS``, ``UNIT_MEASURE`` and the method's columns), the code lists with names in
  kk/ru/en (``xml:lang``) and the codes' hierarchy (``Parent``), ``CL_OBS_STATUS`` and
  ``CL_CONF_STATUS`` with the codes the method uses, ``CL_UNIT_MEASURE`` (one code named by the
  spec's unit), and the concept scheme. ``TIME_PERIOD`` (a time dimension of the table, or the
  spec's ``reference_period`` when it is an ISO 8601 period) is the DSD's time dimension.

The structures are maintained by the agency :data:`AGENCY` and carry the release's version, so a
new release is a new version of the same dataflow. Written with the standard library only.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from ..i18n import N_, tr
from ..text import LANGUAGES, UNIT
from . import DownloadFormat, DownloadTable, dimension_role, iso_period, register_format

AGENCY = "ASHYQ"
_NS = {
    "mes": "http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message",
    "str": "http://www.sdmx.org/resources/sdmxml/schemas/v2_1/structure",
    "com": "http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common",
}
_ID = re.compile(r"[^A-Za-z0-9_@$-]")

# Concept names (msgids of the package-text catalogue).
CONCEPTS = {
    "TIME_PERIOD": N_("Time period"),
    "OBS_VALUE": N_("Observation value"),
    "OBS_STATUS": N_("Observation status"),
    "CONF_STATUS": N_("Confidentiality status"),
    "UNIT_MEASURE": N_("Unit of measure"),
}
CODELIST_NAMES = {
    "OBS_STATUS": N_("Observation status (SDMX CL_OBS_STATUS)"),
    "CONF_STATUS": N_("Confidentiality status (SDMX CL_CONF_STATUS)"),
}


def sdmx_id(name: str) -> str:
    """An SDMX id (IDType: A-Z a-z 0-9 _ @ $ -) for a dimension or column name."""
    return _ID.sub("_", name).upper()


def structure_ids(table: DownloadTable) -> dict[str, str]:
    """The ids of the structures of this table: dataflow, DSD, concept scheme, version."""
    series = _ID.sub("_", table.text.series or "TABLE").upper()
    return {"flow": f"DF_{series}", "dsd": f"DSD_{series}", "concepts": f"CS_{series}",
            "version": table.text.version, "agency": AGENCY}


def unit_code(table: DownloadTable) -> str:
    """The UNIT_MEASURE code: ``PS`` (persons, as in SDMX CL_UNIT_MEASURE) for a count of
    persons, else ``UNIT`` (named by the spec's unit in the structure message)."""
    en = (table.text.unit or {}).get("en", "persons").strip().lower()
    return "PS" if en in ("persons", "person", "people", "number of persons") else "UNIT"


def _time_column(table: DownloadTable) -> str | None:
    """``TIME_PERIOD`` as an extra column of one value when the table has no time dimension."""
    if any(dimension_role(d, table.codelists[d]) == "time" for d in table.dimensions):
        return None
    return iso_period(table.text)


def _dim_id(table: DownloadTable, d: str) -> str:
    if dimension_role(d, table.codelists[d]) == "time":
        return "TIME_PERIOD"
    return sdmx_id(d)


def sdmx_csv(table: DownloadTable) -> bytes:
    """The table as SDMX-CSV 2.0 (see the module docstring)."""
    ids = structure_ids(table)
    ref = f"{ids['agency']}:{ids['flow']}({ids['version']})"
    period = _time_column(table)
    extra = list(table.extra_columns)
    header = ["STRUCTURE", "STRUCTURE_ID", "ACTION",
              *(_dim_id(table, d) for d in table.dimensions),
              *(["TIME_PERIOD"] if period else []),
              "OBS_VALUE", "OBS_STATUS", "CONF_STATUS", "UNIT_MEASURE",
              *(sdmx_id(c) for c in extra)]
    unit = unit_code(table)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in table.rows:
        row = ["dataflow", ref, "I", *(r[d] for d in table.dimensions)]
        if period:
            row.append(period)
        row.append("" if r["obs_value"] is None else str(r["obs_value"]))
        row += [r["obs_status"], r["conf_status"], unit]
        for c in extra:
            v = r.get(c)
            row.append("" if v is None else (f"{v:g}" if isinstance(v, float) else str(v)))
        w.writerow(row)
    return buf.getvalue().encode("utf-8")


def _names(text: dict[str, str], tag: str = "com:Name") -> str:
    return "".join(f'<{tag} xml:lang="{lg}">{escape(text[lg])}</{tag}>' for lg in LANGUAGES)


def _ref(**attrs: str) -> str:
    return "<Ref " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + "/>"


def _concept_ref(ids: dict[str, str], cid: str) -> str:
    return ("<str:ConceptIdentity>" + _ref(id=cid, maintainableParentID=ids["concepts"],
                                            maintainableParentVersion=ids["version"],
                                            agencyID=ids["agency"], package="conceptscheme",
                                            **{"class": "Concept"})
            + "</str:ConceptIdentity>")


def _enum(ids: dict[str, str], cl: str) -> str:
    return ("<str:LocalRepresentation><str:Enumeration>"
            + _ref(id=cl, agencyID=ids["agency"], version=ids["version"], package="codelist",
                   **{"class": "Codelist"})
            + "</str:Enumeration></str:LocalRepresentation>")


def _codelist(ids: dict[str, str], cl_id: str, name: dict[str, str],
              codes: list[tuple[str, dict[str, str], str]]) -> str:
    out = [f'<str:Codelist id="{cl_id}" agencyID="{ids["agency"]}" version="{ids["version"]}" '
           f'isFinal="true">{_names(name)}']
    for code, label, parent in codes:
        out.append(f"<str:Code id={quoteattr(code)}>{_names(label)}")
        if parent:
            out.append(f"<str:Parent>{_ref(id=parent)}</str:Parent>")
        out.append("</str:Code>")
    out.append("</str:Codelist>")
    return "".join(out)


def structure_message(table: DownloadTable) -> bytes:
    """The SDMX-ML 2.1 structure message of the table (see the module docstring)."""
    text, ids = table.text, structure_ids(table)
    agency, version = ids["agency"], ids["version"]
    period = _time_column(table)
    head = (f'<str:{{kind}} id="{{id}}" agencyID="{agency}" version="{version}" '
            'isFinal="true">')
    # Code lists: one per dimension (except time), then the SDMX flag lists.
    codelists = []
    dims: list[tuple[str, str | None]] = []  # (component id, code list id or None for time)
    for d in table.dimensions:
        cid = _dim_id(table, d)
        cl = table.codelists[d]
        if cid == "TIME_PERIOD":
            dims.append((cid, None))
            continue
        cl_id = f"CL_{cid}"
        dims.append((cid, cl_id))
        codelists.append(_codelist(ids, cl_id, text.dimension_titles[d],
                                   [(c, cl.labels[c], cl.parent[c]) for c in cl.codes]))
    for col in ("obs_status", "conf_status"):
        codes = text.flags.get(col, {})
        codelists.append(_codelist(ids, f"CL_{col.upper()}", tr(CODELIST_NAMES[col.upper()]),
                                   [(c, lab, "") for c, lab in codes.items()]))
    codelists.append(_codelist(ids, "CL_UNIT_MEASURE", tr(CONCEPTS["UNIT_MEASURE"]),
                               [(unit_code(table), text.unit or tr(UNIT), "")]))
    # Concepts.
    concept_names: dict[str, dict[str, str]] = {}
    for d, (cid, _) in zip(table.dimensions, dims, strict=True):
        concept_names[cid] = (tr(CONCEPTS["TIME_PERIOD"]) if cid == "TIME_PERIOD"
                              else text.dimension_titles[d])
    if period:
        concept_names["TIME_PERIOD"] = tr(CONCEPTS["TIME_PERIOD"])
    concept_names["OBS_VALUE"] = text.measure_title or tr(CONCEPTS["OBS_VALUE"])
    for k in ("OBS_STATUS", "CONF_STATUS", "UNIT_MEASURE"):
        concept_names[k] = tr(CONCEPTS[k])
    for c in table.extra_columns:
        concept_names[sdmx_id(c)] = dict.fromkeys(LANGUAGES, c)
    concepts = (head.format(kind="ConceptScheme", id=ids["concepts"])
                + _names(text.title)
                + "".join(f'<str:Concept id="{cid}">{_names(n)}</str:Concept>'
                          for cid, n in concept_names.items())
                + "</str:ConceptScheme>")
    # The data structure definition.
    dim_xml = []
    pos = 0
    for cid, cl_id in dims:  # the time dimension, if any, comes last
        if cl_id is None:
            continue
        pos += 1
        dim_xml.append(f'<str:Dimension id="{cid}" position="{pos}">{_concept_ref(ids, cid)}'
                       f"{_enum(ids, cl_id)}</str:Dimension>")
    if period or any(c is None for _, c in dims):
        dim_xml.append(f'<str:TimeDimension id="TIME_PERIOD" position="{pos + 1}">'
                       f"{_concept_ref(ids, 'TIME_PERIOD')}<str:LocalRepresentation>"
                       '<str:TextFormat textType="ObservationalTimePeriod"/>'
                       "</str:LocalRepresentation></str:TimeDimension>")
    measure_rel = ("<str:AttributeRelationship><str:PrimaryMeasure>" + _ref(id="OBS_VALUE")
                   + "</str:PrimaryMeasure></str:AttributeRelationship>")
    attrs = []
    for col in ("OBS_STATUS", "CONF_STATUS"):
        attrs.append(f'<str:Attribute id="{col}" assignmentStatus="Mandatory">'
                     f"{_concept_ref(ids, col)}{_enum(ids, f'CL_{col}')}{measure_rel}"
                     "</str:Attribute>")
    attrs.append('<str:Attribute id="UNIT_MEASURE" assignmentStatus="Mandatory">'
                 f"{_concept_ref(ids, 'UNIT_MEASURE')}{_enum(ids, 'CL_UNIT_MEASURE')}"
                 f"{measure_rel}</str:Attribute>")
    for c in table.extra_columns:
        attrs.append(f'<str:Attribute id="{sdmx_id(c)}" assignmentStatus="Conditional">'
                     f"{_concept_ref(ids, sdmx_id(c))}<str:LocalRepresentation>"
                     '<str:TextFormat textType="Decimal"/></str:LocalRepresentation>'
                     f"{measure_rel}</str:Attribute>")
    dsd = (head.format(kind="DataStructure", id=ids["dsd"]) + _names(text.title)
           + "<str:DataStructureComponents>"
           + '<str:DimensionList id="DimensionDescriptor">' + "".join(dim_xml)
           + "</str:DimensionList>"
           + '<str:AttributeList id="AttributeDescriptor">' + "".join(attrs)
           + "</str:AttributeList>"
           + '<str:MeasureList id="MeasureDescriptor"><str:PrimaryMeasure id="OBS_VALUE">'
           + _concept_ref(ids, "OBS_VALUE")
           + "</str:PrimaryMeasure></str:MeasureList>"
           + "</str:DataStructureComponents></str:DataStructure>")
    flow = (head.format(kind="Dataflow", id=ids["flow"]) + _names(text.title)
            + (_names(text.description, "com:Description") if text.description else "")
            + "<str:Structure>"
            + _ref(id=ids["dsd"], agencyID=agency, version=version, package="datastructure",
                   **{"class": "DataStructure"})
            + "</str:Structure></str:Dataflow>")
    prepared = text.created.strftime("%Y-%m-%dT%H:%M:%SZ")
    xmlns = " ".join(f'xmlns:{k}="{v}"' for k, v in _NS.items())
    sender = _names(text.source)
    doc = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           f"<mes:Structure {xmlns}>"
           f"<mes:Header><mes:ID>{escape(ids['flow'])}_{version.replace('.', '_')}</mes:ID>"
           f"<mes:Test>false</mes:Test><mes:Prepared>{prepared}</mes:Prepared>"
           f'<mes:Sender id="{agency}">{sender}</mes:Sender></mes:Header>'
           "<mes:Structures>"
           f"<str:Dataflows>{flow}</str:Dataflows>"
           f"<str:Codelists>{''.join(codelists)}</str:Codelists>"
           f"<str:Concepts>{concepts}</str:Concepts>"
           f"<str:DataStructures>{dsd}</str:DataStructures>"
           "</mes:Structures></mes:Structure>\n")
    return doc.encode("utf-8")


def sdmx_json(table: DownloadTable) -> bytes:
    """The table as an SDMX-JSON 1.0 data message (SDMX 2.1): every dimension at the observation
    level, each observation ``[OBS_VALUE, OBS_STATUS, CONF_STATUS, UNIT_MEASURE, method
    columns...]`` with the attributes as indexes into their values; ``OBS_VALUE`` null where
    suppressed. Names in the package's default language in ``name``, and for dimensions and
    their codes all three languages in ``names``."""
    import json

    ids = structure_ids(table)
    text = table.text
    lang = text.default_language
    period = _time_column(table)

    def names(d: dict[str, str]) -> dict[str, Any]:
        return {"name": d.get(lang) or next(iter(d.values()), ""),
                "names": {lg: d[lg] for lg in LANGUAGES if d.get(lg)}}

    dims: list[dict[str, Any]] = []
    index: list[dict[str, int]] = []
    for pos, d in enumerate(table.dimensions):
        cl = table.codelists[d]
        dims.append({"id": _dim_id(table, d), "keyPosition": pos,
                     **names(text.dimension_titles[d]),
                     "values": [{"id": c, **names(cl.labels[c])} for c in cl.codes]})
        index.append({c: i for i, c in enumerate(cl.codes)})
    if period:
        dims.append({"id": "TIME_PERIOD", "keyPosition": len(dims), "role": "time",
                     **names(tr(CONCEPTS["TIME_PERIOD"])),
                     "values": [{"id": period, "name": period}]})
    flags = text.flags
    attrs: list[dict[str, Any]] = []
    attr_index: list[dict[str, int]] = []
    for col, cid in (("obs_status", "OBS_STATUS"), ("conf_status", "CONF_STATUS")):
        codes = sorted({r[col] for r in table.rows})
        attrs.append({"id": cid, **names(tr(CONCEPTS[cid])),
                      "values": [{"id": c, "name": names(flags[col][c])["name"]}
                                 for c in codes]})
        attr_index.append({c: i for i, c in enumerate(codes)})
    unit = unit_code(table)
    attrs.append({"id": "UNIT_MEASURE", **names(tr(CONCEPTS["UNIT_MEASURE"])),
                  "values": [{"id": unit, "name": names(text.unit or {"en": unit})["name"]}]})
    extra_vals: list[list[str]] = []
    for c in table.extra_columns:
        vals = sorted({_num(r.get(c)) for r in table.rows if r.get(c) is not None},
                      key=lambda v: float(v))
        extra_vals.append(vals)
        attrs.append({"id": sdmx_id(c), **names(table.extra_titles.get(c) or {"en": c}),
                      "values": [{"id": v, "name": v} for v in vals]})
    extra_index = [{v: i for i, v in enumerate(vals)} for vals in extra_vals]
    obs: dict[str, list[Any]] = {}
    for r in table.rows:
        key = ":".join(str(index[i][r[d]]) for i, d in enumerate(table.dimensions))
        if period:
            key += ":0"
        v = r["obs_value"]
        row: list[Any] = [None if v is None else int(v), attr_index[0][r["obs_status"]],
                          attr_index[1][r["conf_status"]], 0]
        for c, ix in zip(table.extra_columns, extra_index, strict=True):
            m = r.get(c)
            row.append(None if m is None else ix[_num(m)])
        obs[key] = row
    msg = {
        "header": {"id": f"{ids['flow']}-{ids['version']}", "test": False,
                   "prepared": text.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "sender": {"id": ids["agency"], **names(text.source)}},
        "structure": {
            "links": [{"rel": "dataflow", "urn": (
                "urn:sdmx:org.sdmx.infomodel.datastructure.Dataflow="
                f"{ids['agency']}:{ids['flow']}({ids['version']})")}],
            **names(text.title),
            "dimensions": {"dataSet": [], "series": [], "observation": dims},
            "attributes": {"dataSet": [], "series": [], "observation": attrs},
        },
        "dataSets": [{"action": "Information", "observations": obs}],
    }
    return (json.dumps(msg, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def _num(v: Any) -> str:
    f = float(v)
    return str(int(f)) if f.is_integer() else f"{f:g}"


@register_format
class SdmxJson(DownloadFormat):
    name = "sdmx-json"
    label = "SDMX-JSON 1.0"
    suffix = ".sdmx.json"
    format = "json"
    mediatype = "application/vnd.sdmx.data+json; version=1.0.0"
    per_language = False

    def title(self, label: str, lang: str, in_lang: str) -> str:
        return tr("%(title)s (SDMX-JSON 1.0)", title=label)[in_lang]

    def description(self, lang: str, in_lang: str) -> str:
        return tr("The table as an SDMX-JSON 1.0 data message: codes with their names in "
                  "Kazakh, Russian and English, OBS_VALUE, OBS_STATUS, CONF_STATUS and "
                  "UNIT_MEASURE.")[in_lang]

    def render(self, table: DownloadTable, lang: str) -> bytes:
        return sdmx_json(table)


@register_format
class SdmxCsv(DownloadFormat):
    name = "sdmx-csv"
    label = "SDMX-CSV 2.0"
    suffix = ".sdmx.csv"
    format = "csv"
    mediatype = "application/vnd.sdmx.data+csv; version=2.0.0"
    per_language = False

    def title(self, label: str, lang: str, in_lang: str) -> str:
        return tr("%(title)s (SDMX-CSV 2.0)", title=label)[in_lang]

    def description(self, lang: str, in_lang: str) -> str:
        return tr("The table as SDMX-CSV 2.0: codes, OBS_VALUE, OBS_STATUS and CONF_STATUS; "
                  "its structure is the SDMX-ML structure message of this package.")[in_lang]

    def render(self, table: DownloadTable, lang: str) -> bytes:
        return sdmx_csv(table)


@register_format
class SdmxStructure(DownloadFormat):
    name = "sdmx-structure"
    label = "SDMX-ML 2.1"
    suffix = ".sdmx-structure.xml"
    format = "xml"
    mediatype = "application/vnd.sdmx.structure+xml; version=2.1"
    per_language = False

    def title(self, label: str, lang: str, in_lang: str) -> str:
        return tr("%(title)s (SDMX-ML 2.1 structure)", title=label)[in_lang]

    def description(self, lang: str, in_lang: str) -> str:
        return tr("The SDMX-ML 2.1 structure message: dataflow, data structure definition, code "
                  "lists in Kazakh, Russian and English, the SDMX code lists CL_OBS_STATUS and "
                  "CL_CONF_STATUS, and the concepts.")[in_lang]

    def render(self, table: DownloadTable, lang: str) -> bytes:
        return structure_message(table)


__all__: list[Any] = ["AGENCY", "SdmxCsv", "SdmxJson", "SdmxStructure", "sdmx_csv", "sdmx_json",
                      "structure_message"]
