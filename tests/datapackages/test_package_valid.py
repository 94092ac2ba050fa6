"""A built package passes both validators (frictionless, v2 and v1 rules, and the npm Data Package
validator), and its descriptor carries the core fields, per-resource format/bytes/hash, the Table
Schema, plain-string text with kk/ru/en translations and the method metadata."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from dp_helpers import (
    CREATED,
    LANDING,
    PUBLISHER,
    TITLE,
    frictionless_cli,
    js_validate,
    protection_report,
)

LANGS = ("kk", "ru", "en")


def test_both_validators_pass(build, spec, protected_csv):
    res = build(spec, protected_csv)
    dp = res.path / "datapackage.json"
    fr = frictionless_cli(dp)
    assert fr["_returncode"] == 0, fr["tasks"]
    assert fr["valid"] is True
    assert fr["stats"]["errors"] == 0
    assert fr["stats"]["tasks"] == len(res.descriptor["resources"])
    v1 = frictionless_cli(dp, standards="v1")
    assert v1["valid"] is True and v1["_returncode"] == 0, v1["tasks"]
    js = js_validate(dp)
    assert js == {"valid": True, "errors": [], "_returncode": 0}


def test_validators_catch_a_tampered_package(build, spec, protected_csv):
    """Guards that the validators really check: a changed byte, a code not in the code list."""
    res = build(spec, protected_csv)
    dp = res.path / "datapackage.json"
    data = res.path / "data" / f"{spec.id}.csv"
    text = data.read_text(encoding="utf-8")
    data.write_text(text.replace("75,F,30,A,F", "75,F,31,A,F"), encoding="utf-8")
    fr = frictionless_cli(dp)
    assert fr["valid"] is False
    assert any(e["type"] == "hash-count" for t in fr["tasks"] for e in t["errors"])
    assert js_validate(dp)["valid"] is False  # hash check in validate.js
    # A code missing from the code list, with hash and bytes made to match: the foreign key fails.
    body = text.replace("7501,F,30,A,F", "7599,F,30,A,F").encode("utf-8")
    data.write_bytes(body)
    desc = json.loads(dp.read_text(encoding="utf-8"))
    r = desc["resources"][0]
    r["hash"] = "sha256:" + hashlib.sha256(body).hexdigest()
    r["bytes"] = len(body)
    dp.write_text(json.dumps(desc, ensure_ascii=False), encoding="utf-8")
    fr = frictionless_cli(dp)
    assert any(e["type"] == "foreign-key" for t in fr["tasks"] for e in t["errors"])
    js = js_validate(dp)
    assert js["valid"] is False and any("Foreign key" in e or "foreign" in e.lower()
                                        for e in js["errors"]), js


def test_descriptor_core_fields(build, spec, protected_csv):
    res = build(spec, protected_csv)
    d = json.loads((res.path / "datapackage.json").read_text(encoding="utf-8"))
    assert d == res.descriptor
    assert d["name"] == "migrants-by-region"
    assert d["version"] == "1.1.0"
    assert d["id"] == LANDING
    assert d["created"] == CREATED.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert d["licenses"] == [{"name": "CC-BY-4.0",
                              "path": "https://creativecommons.org/licenses/by/4.0/",
                              "title": "Creative Commons Attribution 4.0"}]
    assert d["homepage"] == LANDING
    assert d["keywords"] == ["көші-қон", "өңірлер"]
    assert d["x_translations"]["keywords"]["en"] == ["migration", "regions"]
    roles = {c["role"]: c for c in d["contributors"]}
    assert roles["publisher"]["title"] == PUBLISHER["kk"]
    assert roles["publisher"]["roles"] == ["publisher"]
    assert roles["publisher"]["x_translations"]["title"] == PUBLISHER
    assert roles["author"]["email"] == "a.statistician@stat.example.kz"
    assert d["sources"][0]["title"] == "Көші-қон тізілімі"
    assert d["x_reference_metadata"]["reference_period"]["ru"] == "2023 год"


def test_every_resource_has_format_mediatype_encoding_bytes_hash(build, spec, protected_csv):
    res = build(spec, protected_csv)
    paths = set()
    for r in res.descriptor["resources"]:
        for k in ("name", "path", "format", "mediatype", "encoding", "bytes", "hash", "title",
                  "description"):
            assert r.get(k), (r["name"], k)
        body = (res.path / r["path"]).read_bytes()
        assert r["bytes"] == len(body)
        assert r["hash"] == "sha256:" + hashlib.sha256(body).hexdigest()
        assert r["encoding"] == "utf-8"
        paths.add(r["path"])
    # Every file in the folder (but the descriptor) is a resource.
    on_disk = {str(p.relative_to(res.path)) for p in res.path.rglob("*") if p.is_file()}
    assert on_disk - {"datapackage.json"} == paths
    formats = {r["format"] for r in res.descriptor["resources"]}
    assert {"csv", "xlsx", "json", "txt", "bib"} <= formats


def test_table_schema(build, spec, protected_csv):
    res = build(spec, protected_csv)
    by_name = {r["name"]: r for r in res.descriptor["resources"]}
    data = by_name[spec.id]
    assert data["profile"] == "tabular-data-resource"
    s = data["schema"]
    assert s["missingValues"] == [""]
    assert s["primaryKey"] == ["region", "sex"]
    names = [f["name"] for f in s["fields"]]
    assert names == ["region", "sex", "obs_value", "obs_status", "conf_status"]
    assert all(f.get("type") for f in s["fields"])
    fields = {f["name"]: f for f in s["fields"]}
    assert fields["obs_value"]["type"] == "integer"
    assert fields["obs_value"]["constraints"] == {"minimum": 0}
    assert fields["obs_status"]["constraints"]["enum"] == ["A", "Q"]
    assert fields["conf_status"]["constraints"]["enum"] == ["F", "C", "D"]
    fks = {fk["fields"][0]: fk["reference"] for fk in s["foreignKeys"]}
    assert set(fks) == {"region", "sex", "obs_status", "conf_status"}
    for dim in ("region", "sex"):
        ref = by_name[fks[dim]["resource"]]
        cols = [f["name"] for f in ref["schema"]["fields"]]
        assert {"code", "label_kk", "label_ru", "label_en"} <= set(cols)
        assert ref["schema"]["primaryKey"] == ["code"]
    region = (res.path / "codelists" / "region.csv").read_text(encoding="utf-8").splitlines()
    assert region[0] == "code,parent,level,label_kk,label_ru,label_en"
    assert region[1] == "_T,,0,Барлығы,Всего,Total"
    assert "7101,71,2,Алматы ауданы,район Алматы,Almaty district" in region
    flags = (res.path / "flags" / "conf_status.csv").read_text(encoding="utf-8")
    assert "C,Құпия статистикалық ақпарат (бастапқы жасыру)," in flags


def test_multilingual_text_is_plain_strings_with_translations(build, spec, protected_csv):
    res = build(spec, protected_csv)
    d = res.descriptor
    assert d["languages"] == ["kk", "ru", "en"]
    assert d["title"] == TITLE["kk"]
    assert d["x_translations"]["title"] == TITLE
    assert set(d["x_translations"]["description"]) == set(LANGS)
    for r in d["resources"]:
        assert isinstance(r["title"], str) and isinstance(r["description"], str)
        assert set(r["x_translations"]["title"]) == set(LANGS)
        assert set(r["x_translations"]["description"]) == set(LANGS)
        for f in r.get("schema", {}).get("fields", []):
            assert isinstance(f["title"], str)
            assert set(f["x_translations"]["title"]) == set(LANGS)
    fields = {f["name"]: f for f in d["resources"][0]["schema"]["fields"]}
    assert fields["sex"]["x_translations"]["title"] == {"kk": "Жынысы", "ru": "Пол", "en": "Sex"}
    assert "x_missing_translations" not in d


def test_method_metadata_in_three_languages(build, spec, protected_csv):
    res = build(spec, protected_csv)
    m = res.descriptor["x_method"]
    assert m["method"] == "suppression"
    assert m["parameters"]["min_frequency"] == 5
    assert m["parameters"]["secondary"] == "optimal"
    assert m["cells"] == {"total": 18, "primary": 2, "secondary": 2}
    assert set(m["text"]) == set(LANGS)
    assert "fewer than 5 persons" in m["text"]["en"]
    assert "меньше 5 человек" in m["text"]["ru"]
    assert "5-тен аз адам" in m["text"]["kk"]
    for col, codes in (("obs_status", "AQ"), ("conf_status", "FCD")):
        assert set(m["flags"][col]) == set(codes)
        for code in codes:
            assert set(m["flags"][col][code]) == set(LANGS)
    assert m["flags"]["conf_status"]["D"]["en"].startswith("Secondary confidentiality")
    treat = res.descriptor["x_reference_metadata"]["confidentiality_data_treatment"]
    assert treat == m["text"]


def test_unprotected_secondary_is_said_plainly(build, spec, protected_csv):
    report = protection_report(spec, primary={"cells": 2},
                               secondary={"applied": False, "cells": 2})
    res = build(spec, protected_csv, report=report)
    assert res.descriptor["x_method"]["parameters"]["secondary_applied"] is False
    assert "WARNING: secondary suppression was not applied" in res.descriptor["x_method"]["text"]["en"]


def test_codes_without_code_list_are_their_own_labels(tmp_path: Path, build):
    from dp_helpers import make_spec, protected_frame

    spec = make_spec(dimensions=[
        {"name": "region", "codelist": "kz-regions",
         "hierarchy": {"_T": ["71", "75"], "71": ["7101", "7102"], "75": ["7501"]}},
        {"name": "grp", "codes": ["F", "M"]}])
    csv = tmp_path / "p.csv"
    protected_frame(spec).to_csv(csv, index=False)
    res = build(spec, csv)
    assert any("'grp' has no code list" in w for w in res.warnings)
    assert any("'grp' has no title" in w for w in res.warnings)
    body = (res.path / "codelists" / "grp.csv").read_text(encoding="utf-8")
    assert "F,_T,1,F,F,F" in body and "_T,,0,Барлығы,Всего,Total" in body


def test_country_labels_come_from_cldr(tmp_path: Path, build):
    from babel import Locale
    from dp_helpers import make_spec, protected_frame

    spec = make_spec(dimensions=[
        {"name": "citizenship", "codelist": "iso3166", "codes": ["RU", "UZ", "CN"]},
        {"name": "sex", "codelist": "sex", "codes": ["F", "M"]}])
    inner = {("RU", "F"): 10, ("RU", "M"): 11, ("UZ", "F"): 12, ("UZ", "M"): 13,
             ("CN", "F"): 14, ("CN", "M"): 15}
    csv = tmp_path / "p.csv"
    protected_frame(spec, inner=inner, marks={}).to_csv(csv, index=False)
    res = build(spec, csv)
    rows = (res.path / "codelists" / "citizenship.csv").read_text(encoding="utf-8").splitlines()
    uz = next(r for r in rows if r.startswith("UZ,"))
    assert uz == ",".join(["UZ", "_T", "1", *(Locale.parse(lg).territories["UZ"]
                                              for lg in LANGS)])
    assert "Өзбекстан" in uz
    cl = next(r for r in res.descriptor["resources"] if r["name"] == "codelist-citizenship")
    assert "CLDR" in cl["x_codelist_source"]
    assert frictionless_cli(res.path / "datapackage.json")["valid"] is True


def test_method_from_the_suppression_report_whitelists_public_facts(build, spec, protected_csv):
    """Audit result, protection level and fallbacks are said; per-cell audit detail is not copied."""
    report = protection_report(
        spec,
        parameters={"protection_level": {"kind": "absolute", "value": 5},
                    "protection_rule": "sliding: attacker interval width >= protection level"},
        primary={"cells": 2}, secondary={"cells": 2, "applied": True},
        audit={"passed": True, "primary_cells_checked": 2, "exact": 0, "narrow": 0,
               "min_width": 5.0, "seconds": 0.25,
               "intervals": [{"cell": {"region": "7101", "sex": "M"}, "lower": 0.0,
                              "upper": 8.0, "width": 8.0}]},
        suppressed={"value": 39, "primary_value": 7},
        fallbacks=["optimal: the time limit of 20 s cut the search short"],
    )
    res = build(spec, protected_csv, report=report)
    m = res.descriptor["x_method"]
    assert m["parameters"]["protection_level"] == {"absolute": 5.0}
    # the audit's scalar facts only (a complete report also has narrow and seconds)
    assert m["audit"] == {"passed": True, "primary_cells_checked": 2, "exact": 0, "narrow": 0,
                          "min_width": 5.0, "seconds": 0.25}
    assert "at least 5 wide" in m["text"]["en"]
    assert "не менее 5" in m["text"]["ru"]
    assert "did not finish within its time limit" in m["text"]["en"]
    assert m["parameters"]["fallbacks"] == report["fallbacks"]
    raw = (res.path / "datapackage.json").read_text(encoding="utf-8")
    assert "intervals" not in raw and "primary_value" not in raw and "upper" not in raw


def test_russian_as_default_language(build, protected_csv):
    from dp_helpers import make_spec

    spec = make_spec(languages=["ru", "kk", "en"])
    res = build(spec, protected_csv)
    d = res.descriptor
    assert d["languages"] == ["ru", "kk", "en"]
    assert d["title"] == TITLE["ru"]
    assert d["keywords"] == ["миграция", "регионы"]
    fields = {f["name"]: f for f in d["resources"][0]["schema"]["fields"]}
    assert fields["sex"]["title"] == "Пол"
    from datapackages import citation

    assert citation(d).startswith(f"A. Statistician (2026): {TITLE['ru']}. Версия 1.1.0.")
    assert frictionless_cli(res.path / "datapackage.json")["valid"] is True
    import dataclasses

    import pytest

    from datapackages import PackageError
    from publisher.specs import SpecValidationError

    # The spec schema refuses a language list without all three languages ...
    with pytest.raises(SpecValidationError, match=r"^spec: languages: "):
        make_spec(languages=["ru", "kk"])
    # ... and the packager refuses it in a spec built any other way.
    bad = dataclasses.replace(spec, metadata={**spec.metadata, "languages": ["ru", "kk"]})
    with pytest.raises(PackageError, match="languages: must list kk, ru and en"):
        build(bad, protected_csv, name="bad")


def test_method_text_follows_the_zero_policy_and_manual_cells(build, protected_csv):
    from dp_helpers import make_spec

    spec = make_spec(disclosure={"min_frequency": 4, "zero_policy": "primary",
                                 "confidential": [{"region": "7501", "sex": "F"}]})
    m = build(spec, protected_csv).descriptor["x_method"]
    assert "fewer than 4 persons (zero included)" in m["text"]["en"]
    assert "меньше 4 человек (включая ноль)" in m["text"]["ru"]
    assert "4-тен аз адам (нөлді қоса)" in m["text"]["kk"]
    assert "1 cell(s) were marked confidential by hand" in m["text"]["en"]
    assert m["parameters"]["manual_confidential_cells"] == 1
