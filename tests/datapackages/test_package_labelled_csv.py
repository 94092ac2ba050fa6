"""The CSV with labels per language (``downloads/<id>-<lang>.csv``): UTF-8 with BOM for Excel,
labels beside codes, flags in words, every cell of the main CSV, formula-looking text neutralised."""

from __future__ import annotations

import csv
import io

import pandas as pd
from dp_helpers import make_spec, protected_frame


def test_labelled_csv_per_language(build, spec, protected_csv):
    res = build(spec, protected_csv)
    main = pd.read_csv(res.path / "data" / f"{spec.id}.csv", dtype=str, keep_default_na=False)
    for lg, female, total, suppressed_word in (("en", "Female", "Total", "uppress"),
                                               ("ru", "Женщины", "Всего", "подавлен"),
                                               ("kk", "Әйелдер", "Барлығы", "")):
        raw = (res.path / "downloads" / f"{spec.id}-{lg}.csv").read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for UTF-8
        df = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, encoding="utf-8-sig")
        assert len(df) == len(main)
        cols = list(df.columns)
        assert cols[-3:-1] == ["obs_status", "conf_status"]
        # code then label for each dimension, in the spec's order
        assert set(df.iloc[:, 2]) == set(main["sex"])
        assert {female, total} <= set(df.iloc[:, 3])
        merged = df.merge(main, left_on=[cols[0], cols[2]], right_on=["region", "sex"])
        assert (merged[cols[4]] == merged["obs_value"]).all()
        hidden = df[df["conf_status"] != "F"]
        assert (hidden[cols[4]] == "").all() and (hidden[cols[-1]] != "").all()
        assert suppressed_word in " ".join(hidden[cols[-1]])
    names = {r["path"]: r for r in res.descriptor["resources"]}
    r = names[f"downloads/{spec.id}-ru.csv"]
    assert r["mediatype"] == "text/csv" and r["x_language"] == "ru"


def test_labelled_csv_neutralises_formulas(tmp_path, build):
    payload = "=HYPERLINK(\"http://evil.example\")"
    spec = make_spec(dimensions=[
        {"name": "region", "codelist": "kz-regions",
         "hierarchy": {"_T": ["71", "75"], "71": ["7101", "7102"], "75": ["7501"]}},
        {"name": "sex", "codes": ["F", "M"],
         "labels": {"F": {"kk": payload, "ru": "Женщины", "en": "Female"},
                    "M": {"kk": "Ерлер", "ru": "Мужчины", "en": "Male"}}}])
    p = tmp_path / "p.csv"
    protected_frame(spec).to_csv(p, index=False)
    res = build(spec, p)
    text = (res.path / "downloads" / f"{spec.id}-kk.csv").read_text("utf-8-sig")
    values = [v for row in csv.reader(io.StringIO(text)) for v in row]
    assert payload not in values and "'" + payload in values


def test_next_release_date_in_the_package_and_the_xlsx(tmp_path, build):
    from openpyxl import load_workbook

    spec = make_spec(next_release="2027-03-31")
    p = tmp_path / "p.csv"
    protected_frame(spec).to_csv(p, index=False)
    res = build(spec, p)
    assert res.descriptor["x_release"]["next_release"] == "2027-03-31"
    assert res.descriptor["x_reference_metadata"]["next_release"]["ru"] == "2027-03-31"
    wb = load_workbook(res.path / "downloads" / f"{spec.id}-ru.xlsx")
    notes = {r[0]: r[1] for r in wb.worksheets[-1].iter_rows(values_only=True)}
    assert notes["Следующая публикация"] == "2027-03-31"


def test_next_release_must_be_a_date():
    import pytest

    from publisher.specs import SpecValidationError

    for bad in ("next spring", "2027-13-01", "31.03.2027", 2027):
        with pytest.raises(SpecValidationError) as e:
            make_spec(next_release=bad)
        assert "next_release" in str(e.value) and "YYYY-MM-DD" in str(e.value)
