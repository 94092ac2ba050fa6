"""Citations, XLSX and JSON-stat read back, the reproducible zip, and a noise table."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import zipfile
from datetime import date
from pathlib import Path

from dp_helpers import (
    CODELISTS,
    CREATED,
    LANDING,
    PUBLISHER,
    TITLE,
    frictionless_cli,
    js_validate,
    jsonstat_toolkit,
    make_spec,
    noise_frame,
    protected_frame,
    protection_report,
)
from openpyxl import load_workbook

from datapackages import biblatex, citation, csl_json

LANGS = ("kk", "ru", "en")
# Variables CSL-JSON defines (csl-data.json, additionalProperties: false), the ones we may use.
CSL_KEYS = {"id", "type", "title", "author", "issued", "accessed", "version", "publisher",
            "DOI", "URL", "language", "genre", "abstract", "note", "custom"}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------- citation

def test_citation_text_in_three_languages(build, spec, protected_csv):
    d = build(spec, protected_csv).descriptor
    assert citation(d, "en") == (
        f"A. Statistician (2026): {TITLE['en']}. Version 1.1.0. {PUBLISHER['en']}. (Dataset). "
        f"{LANDING}")
    assert citation(d, "ru") == (
        f"A. Statistician (2026): {TITLE['ru']}. Версия 1.1.0. {PUBLISHER['ru']}. "
        f"(Набор данных). {LANDING}")
    assert citation(d, "kk").startswith(f"A. Statistician (2026): {TITLE['kk']}. Нұсқа 1.1.0. "
                                        f"{PUBLISHER['kk']}. (Деректер жиынтығы).")
    assert citation(d) == citation(d, "kk")  # the default language
    assert citation(d, "en", accessed=date(2026, 4, 1)).endswith("(accessed 2026-04-01)")
    assert citation(d, "ru", accessed=date(2026, 4, 1)).endswith("(дата обращения: 2026-04-01)")
    assert d["x_citation"]["text"] == {lg: citation(d, lg) for lg in LANGS}


def test_citation_uses_doi_and_never_the_publisher_as_author(build, protected_csv):
    """No contributor with role author: the title takes the author's place (CSL substitution),
    the publisher stays the publisher only (DataCite creator / publisher)."""
    spec = make_spec(doi="10.5281/zenodo.123456", contributors=[])
    d = build(spec, protected_csv).descriptor
    assert d["id"] == "https://doi.org/10.5281/zenodo.123456"
    assert citation(d, "en") == (f"{TITLE['en']} (2026). Version 1.1.0. "
                                 f"{PUBLISHER['en']}. (Dataset). "
                                 "https://doi.org/10.5281/zenodo.123456")
    item = csl_json(d, "en")
    assert item["DOI"] == "10.5281/zenodo.123456"
    assert "author" not in item and item["publisher"] == PUBLISHER["en"]
    assert "author" not in biblatex(d, "en")
    # The office is an author when the spec says it made the data.
    office = {"title": dict(PUBLISHER), "role": "author"}
    d2 = build(make_spec(contributors=[office]), protected_csv, name="office").descriptor
    assert csl_json(d2, "ru")["author"] == [{"literal": PUBLISHER["ru"]}]
    assert citation(d2, "en").startswith(f"{PUBLISHER['en']} (2026): {TITLE['en']}. ")


def test_csl_json_and_biblatex(build, spec, protected_csv):
    res = build(spec, protected_csv)
    d = res.descriptor
    item = csl_json(d, "en")
    assert item["type"] == "dataset"
    assert set(item) <= CSL_KEYS
    assert item["version"] == "1.1.0"
    assert item["publisher"] == PUBLISHER["en"]
    assert item["issued"] == {"date-parts": [[2026, 3, 20]]}
    assert item["URL"] == LANDING
    assert item["title"] == TITLE["en"]
    in_pkg = json.loads((res.path / "citation" / "citation.csl.json").read_text(encoding="utf-8"))
    assert in_pkg == [csl_json(d, lg) for lg in LANGS]
    bib = biblatex(d, "ru")
    assert bib.startswith("@dataset{migrants-by-region_1_1_0_ru,\n")
    assert "  version = {1.1.0},\n" in bib
    assert f"  publisher = {{{PUBLISHER['ru']}}},\n" in bib
    assert "  date = {2026-03-20},\n" in bib
    assert f"  url = {{{LANDING}}},\n" in bib
    assert "  langid = {russian}\n" in bib
    assert bib.count("{") == bib.count("}")
    text = (res.path / "citation" / "citation.bib").read_text(encoding="utf-8")
    assert biblatex(d, "kk") in text and bib in text and biblatex(d, "en") in text
    txt = (res.path / "citation" / "citation.txt").read_text(encoding="utf-8").splitlines()
    assert txt == [f"[{lg}] {citation(d, lg)}" for lg in LANGS]


def test_biblatex_escapes_special_characters(build, spec, protected_csv):
    odd = dataclasses.replace(spec, title={**spec.title, "en": "Migrants 50% & more_{x} #1 ~ $"})
    d = build(odd, protected_csv).descriptor
    bib = biblatex(d, "en")
    assert r"title = {Migrants 50\% \& more\_\{x\} \#1 \~{} \$}" in bib
    assert bib.count("{") - bib.count(r"\{") == bib.count("}") - bib.count(r"\}")


# --------------------------------------------------------------- XLSX

def _crosstab(ws) -> tuple[list, dict[tuple[str, str], object]]:  # noqa: ANN001
    """(header row, {(region label, sex label): value}) of the test table's crosstab sheet."""
    header = [c.value for c in ws[4]]
    out: dict[tuple[str, str], object] = {}
    for row in ws.iter_rows(min_row=6, values_only=True):
        if row[0] is None or all(v is None for v in row[1:]):
            break
        for j, v in enumerate(row[1:], start=1):
            out[(row[0].strip(), header[j])] = v
    return header, out


def test_xlsx_read_back_crosstab_labels_and_symbols(build, spec, protected_csv):
    res = build(spec, protected_csv)
    data = {(r["region"], r["sex"]): r for r in _rows(res.path / "data" / f"{spec.id}.csv")}
    for lg, total, female, region in (("en", "Total", "Female", "Almaty district"),
                                      ("ru", "Всего", "Женщины", "район Алматы"),
                                      ("kk", "Барлығы", "Әйелдер", "Алматы ауданы")):
        wb = load_workbook(res.path / "downloads" / f"{spec.id}-{lg}.xlsx")
        ws = wb.worksheets[0]
        assert ws.cell(1, 1).value == TITLE[lg]
        header, cells = _crosstab(ws)
        # sex (the smaller dimension) across, region down; totals named
        assert header[1:] == [total, female, {"en": "Male", "ru": "Мужчины",
                                              "kk": "Ерлер"}[lg]]
        assert header[0] == {"en": "Sex", "ru": "Пол", "kk": "Жынысы"}[lg]
        assert ws.cell(5, 1).value == {"en": "Region", "ru": "Регион", "kk": "Өңір"}[lg]
        assert len(cells) == len(data) == 18
        assert (region, female) in cells
        label = {}
        for dim in ("region", "sex"):
            rows = _rows(res.path / "codelists" / f"{dim}.csv")
            label[dim] = {r["code"]: r[f"label_{lg}"] for r in rows}
        for (code_region, code_sex), src in data.items():
            v = cells[(label["region"][code_region], label["sex"][code_sex])]
            if src["conf_status"] == "F":
                assert v == int(src["obs_value"])
            else:
                assert v == "x"
        texts = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
        assert any(t.startswith("x — ") for t in texts)  # the footnote for the symbol
        assert res.descriptor["x_citation"]["text"][lg] in " ".join(texts)
        # printed: header rows and label column repeated, fit to the page width, A4
        assert ws.print_title_rows == "$4:$5" and ws.print_title_cols == "$A:$A"
        assert ws.page_setup.fitToWidth in (1, "1") and ws.page_setup.paperSize in (9, "9")
        assert ws.freeze_panes == "B6"
        notes = wb.worksheets[-1]
        texts = [c.value for c in notes["B"]]
        assert res.descriptor["x_method"]["text"][lg] in texts


def test_xlsx_neutralises_formula_looking_text(tmp_path, build):
    payloads = ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@SUM(A1)", "=HYPERLINK(\"x\")"]
    spec = make_spec(
        title={"kk": payloads[0], "ru": "Прибывшие", "en": "Arrivals"},
        dimensions=[
            {"name": "region", "codelist": "kz-regions",
             "hierarchy": {"_T": ["71", "75"], "71": ["7101", "7102"], "75": ["7501"]}},
            {"name": "sex", "codes": ["F", "M"], "title": {"kk": payloads[4], "ru": "Пол",
                                                           "en": "Sex"},
             "labels": {"F": {"kk": payloads[1], "ru": payloads[2], "en": payloads[3]},
                        "M": {"kk": "Ерлер", "ru": "Мужчины", "en": "Male"}}}])
    csv_path = tmp_path / "p.csv"
    protected_frame(spec).to_csv(csv_path, index=False)
    res = build(spec, csv_path)
    for lg in LANGS:
        path = res.path / "downloads" / f"{spec.id}-{lg}.xlsx"
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.startswith("xl/worksheets/"):
                    assert "<f>" not in z.read(name).decode("utf-8"), name
        wb = load_workbook(path)
        found = []
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for c in row:
                    if isinstance(c.value, str) and c.value in payloads:
                        assert c.data_type == "s", (c.coordinate, c.value)
                        found.append(c.value)
        expected = {"kk": {payloads[0], payloads[4], payloads[1]}, "ru": {payloads[2]},
                    "en": {payloads[3]}}[lg]
        assert expected <= set(found), (lg, found)


def test_xlsx_read_by_a_second_reader(tmp_path, build, spec, protected_csv):
    """Rust calamine (python-calamine) reads the same cells: not an openpyxl-only file."""
    from python_calamine import CalamineWorkbook

    res = build(spec, protected_csv)
    data = {(r["region"], r["sex"]): r for r in _rows(res.path / "data" / f"{spec.id}.csv")}
    wb = CalamineWorkbook.from_path(str(res.path / "downloads" / f"{spec.id}-ru.xlsx"))
    assert wb.sheet_names == ["Данные", "Методология"]
    rows = wb.get_sheet_by_index(0).to_python()
    assert rows[0][0] == TITLE["ru"]
    assert rows[3][1] == "Всего" and rows[4][0] == "Регион"
    body = [r for r in rows[5:] if r[0] != "" and any(v != "" for v in r[1:])]
    assert len(body) * 3 == len(data)
    suppressed = sum(1 for r in body for v in r[1:4] if v == "x")
    assert suppressed == sum(1 for x in data.values() if x["conf_status"] != "F")
    # Formula-looking text is read back as that text.
    payload = "=cmd|' /C calc'!A0"
    evil = make_spec(title={"kk": "Көші-қон", "ru": payload, "en": "Migration"})
    p = tmp_path / "p.csv"
    protected_frame(evil).to_csv(p, index=False)
    res = build(evil, p, name="evil")
    wb = CalamineWorkbook.from_path(str(res.path / "downloads" / f"{evil.id}-ru.xlsx"))
    assert wb.get_sheet_by_index(0).to_python()[0][0] == payload


# --------------------------------------------------------------- JSON-stat

def test_jsonstat_read_back(build, spec, protected_csv):
    res = build(spec, protected_csv)
    data = _rows(res.path / "data" / f"{spec.id}.csv")
    for lg in LANGS:
        js = json.loads((res.path / "downloads" / f"{spec.id}-{lg}.stat.json")
                        .read_text(encoding="utf-8"))
        assert js["version"] == "2.0" and js["class"] == "dataset"
        assert js["label"] == TITLE[lg]
        assert js["id"] == ["region", "sex"]
        assert js["size"] == [6, 3]
        n = 1
        for s in js["size"]:
            n *= s
        assert len(js["value"]) == n
        dims = [js["dimension"][d]["category"] for d in js["id"]]
        for cat, size in zip(dims, js["size"], strict=True):
            assert len(cat["index"]) == size and set(cat["label"]) == set(cat["index"])
        assert js["dimension"]["region"]["category"]["child"]["71"] == ["7101", "7102"]
        for r in data:
            k = 0
            for d, cat, size in zip(js["id"], dims, js["size"], strict=True):
                k = k * size + cat["index"].index(r[d])
            if r["conf_status"] == "F":
                assert js["value"][k] == int(r["obs_value"])
                assert str(k) not in js.get("status", {})
            else:
                assert js["value"][k] is None
                assert js["status"][str(k)] == r["conf_status"]
            assert js["extension"]["conf_status"][k] == r["conf_status"]
        assert js["dimension"]["sex"]["category"]["label"]["_T"] == {"kk": "Барлығы",
                                                                     "ru": "Всего",
                                                                     "en": "Total"}[lg]
        assert js["role"] == {"geo": ["region"]}
        assert js["updated"] == "2026-03-20T09:30:00Z"


def test_jsonstat_read_by_the_official_toolkit(build, spec, protected_csv):
    res = build(spec, protected_csv)
    data = {(r["region"], r["sex"]): r for r in _rows(res.path / "data" / f"{spec.id}.csv")}
    for lg, female in (("kk", "Әйелдер"), ("ru", "Женщины"), ("en", "Female")):
        js = jsonstat_toolkit(res.path / "downloads" / f"{spec.id}-{lg}.stat.json")
        assert js["class"] == "dataset" and js["label"] == TITLE[lg]
        assert js["id"] == ["region", "sex"] and js["n"] == 18
        assert js["labels"]["sex"]["F"] == female
        assert js["labels"]["region"]["7101"] == {"kk": "Алматы ауданы", "ru": "район Алматы",
                                                  "en": "Almaty district"}[lg]
        assert len(js["rows"]) == len(data)
        for row in js["rows"]:
            src = data[(row["region"], row["sex"])]
            if src["conf_status"] == "F":
                assert row["value"] == int(src["obs_value"]) and row["status"] is None
            else:
                assert row["value"] is None and row["status"] == src["conf_status"]


# --------------------------------------------------------------- reproducible zip

def test_zip_is_reproducible(tmp_path, build, spec, protected_csv):
    a = build(spec, protected_csv, name="a")
    # Same cells in another row order, written to another folder name.
    shuffled = tmp_path / "shuffled.csv"
    lines = protected_csv.read_text(encoding="utf-8").splitlines()
    shuffled.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n", encoding="utf-8")
    b = build(spec, shuffled, name="b")
    assert a.sha256 == b.sha256
    assert a.zip_path.read_bytes() == b.zip_path.read_bytes()
    with zipfile.ZipFile(a.zip_path) as z:
        infos = z.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names)
        assert "datapackage.json" in names  # at the root: frictionless opens the zip as is
        assert {i.date_time for i in infos} == {(2026, 3, 20, 9, 30, 0)}
        assert z.read("datapackage.json") == (a.path / "datapackage.json").read_bytes()
        assert len(names) == len(a.files)
    c = build(spec, protected_csv, name="c", created=CREATED.replace(day=21))
    assert c.sha256 != a.sha256


def test_created_defaults(monkeypatch, tmp_path, spec, protected_csv):
    from datapackages import package_table

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1774000000")
    a = package_table(spec, protected_csv, tmp_path / "a", codelist_dir=CODELISTS)
    b = package_table(spec, protected_csv, tmp_path / "b", codelist_dir=CODELISTS)
    assert a.descriptor["created"] == "2026-03-20T09:46:40Z"
    assert a.sha256 == b.sha256
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    from_spec = make_spec(created="2025-12-31T23:00:00+05:00")
    c = package_table(from_spec, protected_csv, tmp_path / "c", codelist_dir=CODELISTS)
    assert c.descriptor["created"] == "2025-12-31T18:00:00Z"
    now = package_table(spec, protected_csv, tmp_path / "d", codelist_dir=CODELISTS)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", now.descriptor["created"])


# --------------------------------------------------------------- noise tables

def test_noise_table_package(tmp_path, build):
    spec = make_spec(disclosure={"noise": {"mechanism": "geometric", "epsilon": 1.0}})
    csv_path = tmp_path / "noise.csv"
    noise_frame(spec).to_csv(csv_path, index=False)
    report = protection_report(
        spec, mechanism="discrete Laplace (two-sided geometric)",
        differentially_private=True,
        privacy={"definition": "pure epsilon-differential privacy", "epsilon": 1.0,
                 "epsilon_certified": 0.999, "privacy_unit": "person"},
        post_processing={"estimator": "weighted least squares",
                         "steps": ["non-negative", "integer", "additive"]},
        uncertainty={"column": "obs_moe", "level": 0.95, "inner_moe_median": 4.0,
                     "grand_total_moe": 7},
        checks={"additive": True},
    )
    assert report["method"] == "noise"
    res = build(spec, csv_path, report=report)
    dp = res.path / "datapackage.json"
    assert frictionless_cli(dp)["valid"] is True
    assert js_validate(dp)["valid"] is True
    d = res.descriptor
    fields = {f["name"]: f for f in d["resources"][0]["schema"]["fields"]}
    assert fields["obs_moe"]["type"] == "number"
    assert fields["conf_status"]["constraints"]["enum"] == ["F"]
    m = d["x_method"]
    assert m["method"] == "noise"
    assert m["parameters"]["epsilon"] == 1.0
    assert m["parameters"]["post_processing"]["steps"] == ["non-negative", "integer", "additive"]
    assert m["parameters"]["uncertainty"]["level"] == 0.95
    assert set(m["text"]) == set(LANGS) and all(m["text"].values())
    assert "obs_moe" in m["text"]["en"]
    assert "discrete Laplace (two-sided geometric); ε = 1" in m["text"]["en"]
    assert "whole numbers, non-negative, every total equals the sum of its parts" in m["text"]["en"]
    assert "дискретный Лаплас" in m["text"]["ru"] and "дискретті Лаплас" in m["text"]["kk"]
    js = json.loads((res.path / "downloads" / f"{spec.id}-en.stat.json").read_text("utf-8"))
    assert len(js["extension"]["obs_moe"]) == len(js["value"])
    assert set(js["extension"]["obs_moe"]) == {4, 7}
    wb = load_workbook(res.path / "downloads" / f"{spec.id}-en.xlsx")
    # the margins of error and the two ends of the range get their own crosstab sheets, named
    # by the columns' titles
    assert [w.title for w in wb.worksheets[1:4]] == [
        "Margin of error (due to noise)", "Lower end of range (95 in 100)",
        "Upper end of range (95 in 100)"]
    assert len(js["extension"]["obs_lower"]) == len(js["value"])
    moe = wb.worksheets[1]
    assert "95" in moe.title or "margin" in moe.title.lower(), moe.title
    moes = {v for row in moe.iter_rows(min_row=6, values_only=True) for v in row[1:]
            if isinstance(v, int | float)}
    assert moes == {4, 7}


def test_noise_table_from_seeded_sampler_says_it_is_not_private(tmp_path, build):
    spec = make_spec(disclosure={"noise": {"mechanism": "geometric", "epsilon": 1.0}})
    csv_path = tmp_path / "noise.csv"
    noise_frame(spec).to_csv(csv_path, index=False)
    res = build(spec, csv_path, report=protection_report(spec, differentially_private=False))
    assert "NOT a differentially private release" in res.descriptor["x_method"]["text"]["en"]
    assert any("NOT a differentially private" in w for w in res.warnings)


def test_noise_table_without_margin_of_error_is_refused(tmp_path, build):
    import pytest

    from datapackages import PackageError

    spec = make_spec(disclosure={"noise": {"mechanism": "geometric", "epsilon": 1.0}})
    df = noise_frame(spec)
    df.loc[3, "obs_moe"] = None
    p = tmp_path / "noise.csv"
    df.to_csv(p, index=False)
    with pytest.raises(PackageError, match=r"row 5, column obs_moe: margin of error \(due to "
                                           r"noise\): not a non-negative number"):
        build(spec, p)
    buf = io.StringIO()
    noise_frame(spec).drop(columns=["obs_moe"]).to_csv(buf, index=False)
    p.write_text(buf.getvalue(), encoding="utf-8")
    with pytest.raises(PackageError, match="missing column 'obs_moe'"):
        build(spec, p)


def test_noise_table_from_the_real_dp_engine(tmp_path, build):
    """End to end with disclosure.noise (OpenDP): its report and explanation reach the package."""
    import pandas as pd
    from dp_helpers import INNER

    from datapackages.i18n import tr
    from disclosure.methods.noise import explain_noise
    from disclosure.noise import protect_noise
    from disclosure.table import read_cells

    spec = make_spec(disclosure={"noise": {"mechanism": "geometric", "epsilon": 1.0}})
    df = pd.DataFrame([{"region": k[0], "sex": k[1], "obs_value": v} for k, v in INNER.items()])
    pt = protect_noise(read_cells(df, spec))
    csv_path = tmp_path / "noise.csv"
    pt.published.to_csv(csv_path, index=False)
    res = build(spec, csv_path, report=pt.report.to_dict())
    m = res.descriptor["x_method"]
    assert m["parameters"]["differentially_private"] is True
    assert m["parameters"]["definition"] == "pure epsilon-differential privacy"
    explanation = explain_noise(pt.report, tr)
    for lg in LANGS:
        assert m["text"][lg].startswith(explanation[lg])
    assert "единица приватности: человек" in m["text"]["ru"]
    dp = res.path / "datapackage.json"
    assert frictionless_cli(dp)["valid"] is True
    assert js_validate(dp)["valid"] is True


def test_the_protected_table_as_bytes_gives_the_same_package(build, spec, protected_csv):
    a = build(spec, protected_csv, name="from-file")
    b = build(spec, protected_csv.read_bytes(), name="from-bytes")
    assert a.sha256 == b.sha256 and a.files == b.files
