"""Statistical exchange formats of a package, each read back by a library written elsewhere:
the zip by frictionless, SDMX-ML 2.1 and SDMX-CSV 2.0 by sdmx1, PC-Axis by pyaxis, JSON-stat by
pyjstat, and dcat.ttl by pyshacl against the DCAT-AP 3.0.0 SHACL shapes (issue 15)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from dp_helpers import PUBLISHER, TITLE, make_spec, protected_frame, shacl

LANGS = ("kk", "ru", "en")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _cube_spec(**kw):
    """Region (geography) x citizenship (countries, not geography) x year (time)."""
    return make_spec(dimensions=[
        {"name": "region", "codelist": "kz-regions", "hierarchy": {"_T": ["71", "75"]}},
        {"name": "citizenship", "codelist": "iso3166", "codes": ["UZ", "TJ"]},
        {"name": "year", "codes": ["2023", "2024"]},
    ], **kw)


def _cube_csv(tmp_path: Path, spec) -> Path:
    inner = {(r, c, y): 10 + i for i, (r, c, y) in enumerate(
        (r, c, y) for r in ("71", "75") for c in ("UZ", "TJ") for y in ("2023", "2024"))}
    p = tmp_path / "cube.csv"
    protected_frame(spec, inner, marks={}).to_csv(p, index=False)
    return p


# --------------------------------------------------------------- the zip

def test_zip_has_the_descriptor_at_its_root_and_opens_in_frictionless(build, spec,
                                                                       protected_csv):
    from frictionless import Package

    res = build(spec, protected_csv)
    with zipfile.ZipFile(res.zip_path) as z:
        names = z.namelist()
        assert names == sorted(names) and "datapackage.json" in names
        assert not any("/" in n and n.split("/")[0].startswith(spec.id + "-") for n in names)
        assert z.read("datapackage.json") == (res.path / "datapackage.json").read_bytes()
    pkg = Package(str(res.zip_path))
    assert pkg.name == spec.id and pkg.get_resource(spec.id).read_rows()
    report = pkg.validate()
    assert report.valid, report.flatten(["type", "note"])[:3]
    exe = Path(sys.executable).parent / "frictionless"
    out = subprocess.run([str(exe), "validate", "--type", "package", str(res.zip_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]


def test_zip_at_root_stays_reproducible(tmp_path, build, spec, protected_csv):
    a = build(spec, protected_csv, name="a")
    shuffled = tmp_path / "shuffled.csv"
    lines = protected_csv.read_text(encoding="utf-8").splitlines()
    shuffled.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n", encoding="utf-8")
    b = build(spec, shuffled, name="b")
    assert a.zip_path.read_bytes() == b.zip_path.read_bytes()
    with zipfile.ZipFile(a.zip_path) as z:
        infos = z.infolist()
        assert [i.filename for i in infos] == sorted(a.files)
        assert {i.date_time for i in infos} == {(2026, 3, 20, 9, 30, 0)}


# --------------------------------------------------------------- SDMX

def test_sdmx_structure_and_data_read_back_by_sdmx1(build, spec, protected_csv):
    sdmx = pytest.importorskip("sdmx", reason="sdmx1 is a dev dependency (pyproject [dev])")
    res = build(spec, protected_csv)
    msg = sdmx.read_sdmx(res.path / "downloads" / f"{spec.id}.sdmx-structure.xml")
    dsd = msg.structure["DSD_MIGRANTS-BY-REGION"]
    assert [d.id for d in dsd.dimensions.components] == ["REGION", "SEX"]
    assert {a.id for a in dsd.attributes.components} == {"OBS_STATUS", "CONF_STATUS",
                                                          "UNIT_MEASURE"}
    assert [m.id for m in dsd.measures.components] == ["OBS_VALUE"]
    # Code lists: every code of the package's code list, names in kk/ru/en, the hierarchy.
    for dim in ("region", "sex"):
        published = _rows(res.path / "codelists" / f"{dim}.csv")
        cl = msg.codelist[f"CL_{dim.upper()}"]
        assert [c.id for c in cl] == [r["code"] for r in published]
        for r in published:
            code = cl[r["code"]]
            assert {lg: code.name.localizations[lg] for lg in LANGS} == \
                {lg: r[f"label_{lg}"] for lg in LANGS}
            top = code.parent is None or code.parent is cl  # sdmx1: a top code's parent
            assert ("" if top else code.parent.id) == r["parent"]
    assert {c.id for c in msg.codelist["CL_OBS_STATUS"]} == {"A", "Q"}
    assert {c.id for c in msg.codelist["CL_CONF_STATUS"]} == {"F", "C", "D"}
    assert msg.codelist["CL_CONF_STATUS"]["C"].name.localizations["ru"].startswith(
        "Конфиденциальная")
    flow = msg.dataflow["DF_MIGRANTS-BY-REGION"]
    assert str(flow.version) == spec.version
    assert {lg: flow.name.localizations[lg] for lg in LANGS} == TITLE
    assert dsd.dimensions.get("REGION").local_representation.enumerated is \
        msg.codelist["CL_REGION"]
    # Data: the keys are the table's cells, values and both flags as in the package CSV.
    data = sdmx.read_sdmx(res.path / "downloads" / f"{spec.id}.sdmx.csv", structure=flow)
    obs = data.data[0].obs
    got = {(o.dimension["REGION"].value, o.dimension["SEX"].value):
           (o.value, o.attached_attribute["OBS_STATUS"].value,
            o.attached_attribute["CONF_STATUS"].value) for o in obs}
    table = _rows(res.path / "data" / f"{spec.id}.csv")
    assert len(obs) == len(table) == len(got)
    for r in table:
        value, obs_status, conf_status = got[(r["region"], r["sex"])]
        assert (obs_status, conf_status) == (r["obs_status"], r["conf_status"])
        assert (value or "") == r["obs_value"]
    header = next(csv.reader((res.path / "downloads" / f"{spec.id}.sdmx.csv")
                             .open(encoding="utf-8")))
    assert header[:3] == ["STRUCTURE", "STRUCTURE_ID", "ACTION"]
    assert header[-4:] == ["OBS_VALUE", "OBS_STATUS", "CONF_STATUS", "UNIT_MEASURE"]


def test_sdmx_time_period_from_a_year_dimension_and_from_the_reference_period(build, tmp_path):
    sdmx = pytest.importorskip("sdmx", reason="sdmx1 is a dev dependency (pyproject [dev])")
    spec = _cube_spec()
    res = build(spec, _cube_csv(tmp_path, spec), name="cube")
    msg = sdmx.read_sdmx(res.path / "downloads" / f"{spec.id}.sdmx-structure.xml")
    dsd = msg.structure["DSD_MIGRANTS-BY-REGION"]
    assert [d.id for d in dsd.dimensions.components] == ["REGION", "CITIZENSHIP",
                                                         "TIME_PERIOD"]
    data = sdmx.read_sdmx(res.path / "downloads" / f"{spec.id}.sdmx.csv",
                          structure=msg.dataflow["DF_MIGRANTS-BY-REGION"])
    periods = {o.dimension["TIME_PERIOD"].value for o in data.data[0].obs}
    assert periods == {"_T", "2023", "2024"}
    # A table without a time dimension takes TIME_PERIOD from an ISO 8601 reference_period.
    spec2 = make_spec(reference_period="2023")
    csv2 = tmp_path / "p2.csv"
    protected_frame(spec2).to_csv(csv2, index=False)
    res2 = build(spec2, csv2, name="p2")
    rows = _rows(res2.path / "downloads" / f"{spec2.id}.sdmx.csv")
    assert {r["TIME_PERIOD"] for r in rows} == {"2023"}


def test_sdmx_json_read_back_by_sdmx1(build, tmp_path):
    """SDMX-JSON 1.0: sdmx1 reads every cell, its value (none where suppressed), OBS_STATUS,
    CONF_STATUS, UNIT_MEASURE and TIME_PERIOD from the reference period; codes as in the CSV."""
    sdmx = pytest.importorskip("sdmx", reason="sdmx1 is a dev dependency (pyproject [dev])")
    spec = make_spec(reference_period="2024")
    p = tmp_path / "p.csv"
    protected_frame(spec).to_csv(p, index=False)
    res = build(spec, p)
    path = res.path / "downloads" / f"{spec.id}.sdmx.json"
    msg = sdmx.read_sdmx(path)
    df = sdmx.to_pandas(msg, attributes="o").reset_index()
    data = {(r["region"], r["sex"]): r for r in _rows(res.path / "data" / f"{spec.id}.csv")}
    assert len(df) == len(data)
    for _, o in df.iterrows():
        src = data[(o["REGION"], o["SEX"])]
        assert o["TIME_PERIOD"] == "2024" and o["UNIT_MEASURE"] == "PS"
        assert (o["OBS_STATUS"], o["CONF_STATUS"]) == (src["obs_status"], src["conf_status"])
        if src["conf_status"] == "F":
            assert o["value"] == int(src["obs_value"])
        else:
            assert src["obs_value"] == "" and pd.isna(o["value"])
    raw = json.loads(path.read_text("utf-8"))
    region = raw["structure"]["dimensions"]["observation"][0]
    total = next(v for v in region["values"] if v["id"] == "_T")
    assert set(total["names"]) == {"kk", "ru", "en"} and total["names"]["en"] == "Total"
    r = {x["path"]: x for x in res.descriptor["resources"]}[f"downloads/{spec.id}.sdmx.json"]
    assert r["mediatype"].startswith("application/vnd.sdmx.data+json")


# --------------------------------------------------------------- PC-Axis

def test_px_read_back_by_pyaxis(build, spec, protected_csv):
    pyaxis = pytest.importorskip("pyaxis.pyaxis", reason="pyaxis is a dev dependency")
    res = build(spec, protected_csv)
    table = {(r["region"], r["sex"]): r for r in _rows(res.path / "data" / f"{spec.id}.csv")}
    labels = {d: {r["code"]: r for r in _rows(res.path / "codelists" / f"{d}.csv")}
              for d in ("region", "sex")}
    for lg in LANGS:
        path = res.path / "downloads" / f"{spec.id}-{lg}.px"
        raw = path.read_bytes().decode("utf-8")
        assert 'CODEPAGE="utf-8";' in raw and f'LANGUAGE="{lg}";' in raw
        assert "CHARSET" not in raw and raw.rstrip().endswith(";")
        px = pyaxis.parse(str(path), encoding="utf-8")
        meta, df = px["METADATA"], px["DATA"]
        assert meta["TITLE"] == [TITLE[lg]]
        region, sex = df.columns[0], df.columns[1]
        assert meta["CODES(" + region + ")"] == list(labels["region"])
        by_label = {d: {r[f"label_{lg}"]: c for c, r in labels[d].items()} for d in labels}
        assert len(df) == len(table)
        for _, row in df.iterrows():
            src = table[(by_label["region"][row[region]], by_label["sex"][row[sex]])]
            if src["conf_status"] == "F":
                assert int(row["DATA"]) == int(src["obs_value"])
            else:  # ".." (statistical disclosure) is read as missing
                assert row["DATA"] != row["DATA"] or row["DATA"] in (None, "..")
        assert '".."' in raw.split("DATA=", 1)[1] and "NOTEX" in meta
        assert meta["DATASYMBOL2"] == [".."]


# --------------------------------------------------------------- JSON-stat

def test_jsonstat_unit_and_roles_read_by_pyjstat(build, tmp_path):
    pyjstat = pytest.importorskip("pyjstat.pyjstat", reason="pyjstat is a dev dependency")
    spec = _cube_spec(reference_period="2023/2024")
    res = build(spec, _cube_csv(tmp_path, spec), name="cube")
    for lg, unit in (("kk", "адам"), ("ru", "человек"), ("en", "persons")):
        text = (res.path / "downloads" / f"{spec.id}-{lg}.stat.json").read_text("utf-8")
        ds = pyjstat.Dataset.read(text)
        assert dict(ds["role"]) == {"geo": ["region"], "time": ["year"]}  # citizenship: no geo
        assert dict(ds["extension"]["unit"]) == {"label": unit, "decimals": 0}
        df = ds.write("dataframe")
        assert len(df) == 3 * 3 * 3
    js = json.loads((res.path / "downloads" / f"{spec.id}-en.stat.json").read_text("utf-8"))
    assert "time" not in make_spec().dimension_names and js["id"] == ["region", "citizenship",
                                                                       "year"]


# --------------------------------------------------------------- DCAT-AP

def test_dcat_ttl_conforms_to_dcat_ap_3(build, tmp_path):
    from rdflib import Literal, Namespace, URIRef
    from rdflib.namespace import DCTERMS, RDF

    dcat = Namespace("http://www.w3.org/ns/dcat#")
    vcard = Namespace("http://www.w3.org/2006/vcard/ns#")
    spec = make_spec(reference_period="2023",
                     contact_point={"name": "Data desk", "email": "data@stat.example.kz"})
    csv_path = tmp_path / "p.csv"
    protected_frame(spec).to_csv(csv_path, index=False)
    res = build(spec, csv_path, previous_version="1.0.0")
    ttl = res.path / "dcat.ttl"
    listed = {r["path"]: r for r in res.descriptor["resources"]}
    assert "dcat.ttl" in listed and listed["dcat.ttl"]["mediatype"] == "text/turtle"
    g, conforms, text = shacl(ttl)
    assert conforms, text[:3000]
    ds = URIRef(res.descriptor["id"])
    assert (ds, RDF.type, dcat.Dataset) in g
    for lg in LANGS:
        assert (ds, DCTERMS.title, Literal(TITLE[lg], lang=lg)) in g
        assert any(o.language == lg for o in g.objects(ds, DCTERMS.description))
    assert (ds, dcat.version, Literal("1.1.0")) in g
    notes = {o.language: str(o) for o in g.objects(ds, URIRef("http://www.w3.org/ns/adms#"
                                                              "versionNotes"))}
    assert set(notes) == set(LANGS) and all("1.0.0" in n for n in notes.values())
    period = g.value(ds, DCTERMS.temporal)
    assert str(g.value(period, dcat.startDate)) == "2023-01-01"
    assert str(g.value(period, dcat.endDate)) == "2023-12-31"
    contact = g.value(ds, dcat.contactPoint)
    assert g.value(contact, vcard.hasEmail) == URIRef("mailto:data@stat.example.kz")
    pub = g.value(ds, DCTERMS.publisher)
    assert {str(o) for o in g.objects(pub, URIRef("http://xmlns.com/foaf/0.1/name"))} == \
        set(PUBLISHER.values())
    dists = list(g.objects(ds, dcat.distribution))
    assert len(dists) == len(res.descriptor["resources"]) - 1  # all but dcat.ttl itself
    urls = {str(g.value(d, dcat.downloadURL)) for d in dists}
    assert (ttl.parent / "data" / f"{spec.id}.csv").as_uri() in urls  # relative to dcat.ttl
    assert all(g.value(d, dcat.mediaType) is not None for d in dists)
    assert res.descriptor["x_contact_point"]["email"] == "data@stat.example.kz"


def test_dcat_contact_point_defaults_to_the_publishers_email(build, tmp_path):
    spec = make_spec(publisher={"name": dict(PUBLISHER), "email": "info@stat.example.kz"})
    csv_path = tmp_path / "p.csv"
    protected_frame(spec).to_csv(csv_path, index=False)
    res = build(spec, csv_path)
    assert res.descriptor["x_contact_point"] == {"name": PUBLISHER,
                                                 "email": "info@stat.example.kz"}
    _, conforms, text = shacl(res.path / "dcat.ttl")
    assert conforms, text[:3000]
    assert "mailto:info@stat.example.kz" in (res.path / "dcat.ttl").read_text("utf-8")


def test_a_contact_point_without_email_is_refused(build, tmp_path):
    from datapackages import PackageError

    spec = make_spec(contact_point={"name": "Data desk"})
    csv_path = tmp_path / "p.csv"
    protected_frame(spec).to_csv(csv_path, index=False)
    with pytest.raises(PackageError, match="contact_point"):
        build(spec, csv_path)
