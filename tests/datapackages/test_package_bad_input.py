"""Bad input: a clear one-line error naming file, row, column and reason, and nothing written."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from dp_helpers import (
    CODELISTS,
    RAW_SUPPRESSED,
    make_spec,
    noise_frame,
    protected_frame,
    protection_report,
)

from datapackages import PackageError, package_table


def _nothing_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert not (out / "pkg").exists()
    assert not (out / "pkg.zip").exists()
    leftovers = list(out.iterdir()) if out.exists() else []
    assert leftovers == [], leftovers


def _fails(build, tmp_path: Path, spec, csv: Path, *parts: str, **kw) -> str:
    with pytest.raises(PackageError) as ei:
        build(spec, csv, **kw)
    msg = str(ei.value)
    assert "\n" not in msg
    for p in parts:
        assert p in msg, msg
    _nothing_written(tmp_path)
    return msg


def _csv_with(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad.csv"
    p.write_text(text, encoding="utf-8")
    return p


def _lines(spec) -> list[str]:
    return protected_frame(spec).to_csv(index=False).splitlines()


# --------------------------------------------------------------- the confidentiality check

def test_value_in_a_suppressed_cell_fails_without_quoting_it(build, tmp_path, spec):
    lines = _lines(spec)
    i = next(k for k, ln in enumerate(lines) if ln.startswith("7101,M,"))
    lines[i] = "7101,M,3,Q,C"
    csv = _csv_with(tmp_path, "\n".join(lines) + "\n")
    msg = _fails(build, tmp_path, spec, csv, "bad.csv", f"row {i + 1}", "column obs_value",
                 "suppressed cell (conf_status C) carries a value")
    assert not any(f" {v}" in msg or f"'{v}'" in msg for v in RAW_SUPPRESSED)


def test_missing_value_in_a_free_cell_fails(build, tmp_path, spec):
    lines = _lines(spec)
    i = next(k for k, ln in enumerate(lines) if ln.startswith("7501,F,"))
    lines[i] = "7501,F,,A,F"
    csv = _csv_with(tmp_path, "\n".join(lines) + "\n")
    _fails(build, tmp_path, spec, csv, f"row {i + 1}", "column obs_value", "free cell")


def test_flag_that_contradicts_the_cell_fails(build, tmp_path, spec):
    lines = _lines(spec)
    i = next(k for k, ln in enumerate(lines) if ln.startswith("7101,M,"))
    lines[i] = "7101,M,,A,C"
    csv = _csv_with(tmp_path, "\n".join(lines) + "\n")
    _fails(build, tmp_path, spec, csv, f"row {i + 1}", "column obs_status", "obs_status Q")


def test_frictionless_row_rule_is_a_second_line_of_defence(tmp_path, spec, protected_csv):
    """Even if a leaked cell got past the reader, the frictionless row rule refuses it."""
    from datapackages import build as b

    res = package_table(spec, protected_csv, tmp_path / "ok", codelist_dir=CODELISTS)
    data = res.path / "data" / f"{spec.id}.csv"
    text = data.read_text(encoding="utf-8").replace("7101,M,,Q,C", "7101,M,3,Q,C")
    data.write_text(text, encoding="utf-8")
    # Recompute hash/bytes so only the row rule can catch it.
    import hashlib
    import json

    dp = res.path / "datapackage.json"
    desc = json.loads(dp.read_text(encoding="utf-8"))
    body = data.read_bytes()
    desc["resources"][0].update(bytes=len(body),
                                hash="sha256:" + hashlib.sha256(body).hexdigest())
    dp.write_text(json.dumps(desc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(PackageError, match="confidentiality check failed") as ei:
        b._validate(dp, spec.id, "test")
    assert "row 10" in str(ei.value)


# --------------------------------------------------------------- CSV not matching the spec

@pytest.mark.parametrize("edit, parts", [
    (lambda ls: [ls[0].replace(",conf_status", "")] + [x.rsplit(",", 1)[0] for x in ls[1:]],
     ["row 1", "column conf_status", "missing column"]),
    (lambda ls: [ls[0] + ",extra"] + [x + ",1" for x in ls[1:]],
     ["row 1", "column extra", "unexpected column"]),
    (lambda ls: ls[:3] + [ls[3].replace("_T,M", "_T,X", 1)] + ls[4:],
     ["row 4", "column sex", "'X' is not a code of dimension 'sex'"]),
    (lambda ls: ls + [ls[5]], ["row 20", "duplicate cell (region=71, sex=F)", "row 6"]),
    (lambda ls: ls[:-1], ["1 cell(s) missing", "region=7501, sex=M", "totals included"]),
    (lambda ls: ls[:2] + [ls[2].replace(",A,F", ",E,F")] + ls[3:],
     ["row 3", "column obs_status", "'E' is not allowed"]),
    (lambda ls: ls[:2] + [ls[2].replace(",A,F", ",A,N")] + ls[3:],
     ["row 3", "column conf_status", "'N' is not allowed"]),
    (lambda ls: ls[:2] + [ls[2].replace("_T,F,62", "_T,F,6.2")] + ls[3:],
     ["row 3", "column obs_value", "not a whole number"]),
    (lambda ls: ls[:2] + [ls[2].replace("_T,F,62", "_T,F,63")] + ls[3:],
     ["row 3", "column obs_value", "total (region=_T, sex=F) does not equal"]),
    (lambda ls: ls[:2] + ["_T,F"] + ls[3:], ["row 3", "has 2 cells"]),
])
def test_csv_not_matching_spec(build, tmp_path, spec, edit, parts):
    csv = _csv_with(tmp_path, "\n".join(edit(_lines(spec))) + "\n")
    _fails(build, tmp_path, spec, csv, "bad.csv", *parts)


def test_not_utf8_and_missing_file(build, tmp_path, spec):
    p = tmp_path / "latin1.csv"
    p.write_bytes("region,sex,obs_value,obs_status,conf_status\nÄ,F,1,A,F\n".encode("latin-1"))
    _fails(build, tmp_path, spec, p, "latin1.csv", "not UTF-8")
    _fails(build, tmp_path, spec, tmp_path / "nope.csv", "nope.csv", "no such file")


def test_report_counts_must_match_the_table(build, tmp_path, spec, protected_csv):
    report = protection_report(spec, primary={"cells": 3})
    _fails(build, tmp_path, spec, protected_csv, "protected.csv", "counts 3 primary",
           "has 2 with conf_status C", report=report)


# --------------------------------------------------------------- hostile text

@pytest.mark.parametrize("title, reason", [
    ("<script>alert(1)</script>", "markup"),
    ('Migrants <img src=x onerror="alert(1)">', "markup"),
    ("x" * (10 * 1024 * 1024), "10485760 characters long"),
    ("Migrants\x00by region", "control character U+0000"),
    ("Migrants\x1b[31m", "control character U+001B"),
    ("Migrants\nby region", "control character U+000A"),
    ("Migrants \u202eeman", "invisible formatting character U+202E"),
])
def test_hostile_title_is_refused(build, tmp_path, spec, protected_csv, title, reason):
    bad = dataclasses.replace(spec, title={**spec.title, "en": title})
    _fails(build, tmp_path, bad, protected_csv, "spec migrants-by-region", "title.en", reason)


def test_hostile_metadata_is_refused(build, tmp_path, protected_csv):
    cases = [
        ({"description": {"kk": "a", "ru": "b", "en": "<b>bold</b>"}}, "description.en"),
        ({"keywords": {"kk": ["a"], "ru": ["b"], "en": ["javascript:alert(1)"]}},
         "keywords.en.0"),
        ({"homepage": "javascript:alert(1)"}, "homepage: must be an http(s) URL"),
        ({"license": "WTFPL-99"}, "license: unknown id"),
        ({"contributors": [{"title": "Eve", "role": "boss"}]}, "contributors.0.role"),
        ({"contributors": [{"title": "Eve", "email": "eve<script>@x.kz"}]},
         "contributors.0.email"),
        ({"dimensions": [
            {"name": "region", "codelist": "kz-regions",
             "hierarchy": {"_T": ["71", "75"], "71": ["7101", "7102"], "75": ["7501"]}},
            {"name": "sex", "codes": ["F", "M"], "labels": {
                "F": {"kk": "Әйелдер", "ru": "Женщины", "en": "<iframe src=x>"},
                "M": {"kk": "Ерлер", "ru": "Мужчины", "en": "Male"}}}]},
         "dimensions.sex.labels.F.en"),
    ]
    for over, part in cases:
        spec = make_spec(**over)
        _fails(build, tmp_path, spec, protected_csv, part)


# --------------------------------------------------------------- languages

def test_missing_language_is_refused_with_what_is_missing(build, tmp_path, spec, protected_csv):
    bad = dataclasses.replace(spec, title={"kk": spec.title["kk"], "ru": spec.title["ru"]})
    _fails(build, tmp_path, bad, protected_csv, "missing translation: title.en (English)",
           "allow_missing_languages")
    no_labels = make_spec(dimensions=[
        {"name": "region", "codelist": "kz-regions",
         "hierarchy": {"_T": ["71", "75"], "71": ["7101", "7102"], "75": ["7501"]}},
        {"name": "sex", "codes": ["F", "M"], "title": {"kk": "Жынысы", "ru": "Пол"},
         "labels": {"F": {"kk": "Әйелдер", "ru": "Женщины", "en": "Female"},
                    "M": {"kk": "Ерлер", "ru": "Мужчины", "en": "Male"}}}])
    _fails(build, tmp_path, no_labels, protected_csv,
           "missing translation: dimensions.sex.title.en (English)")
    kw = make_spec(keywords={"kk": ["a"], "en": ["b"]})
    _fails(build, tmp_path, kw, protected_csv, "missing translation: keywords.ru")


def test_missing_language_allowed_by_the_spec(build, tmp_path, protected_csv):
    spec = make_spec(allow_missing_languages=["en"])
    spec = dataclasses.replace(spec, title={"kk": spec.title["kk"], "ru": spec.title["ru"]})
    res = build(spec, protected_csv)
    d = res.descriptor
    assert d["x_missing_translations"] == ["title.en"]
    assert d["x_translations"]["title"]["en"] == spec.title["kk"]
    assert any("title.en" in w for w in res.warnings)
    # Allowing English does not allow Russian.
    bad = dataclasses.replace(spec, title={"kk": spec.title["kk"]})
    with pytest.raises(PackageError, match=r"title\.ru \(Russian\)"):
        build(bad, protected_csv, name="other")


def test_code_missing_from_code_list(build, tmp_path):
    spec = make_spec(dimensions=[
        {"name": "region", "codelist": "kz-regions", "hierarchy": {"_T": ["71", "QQ"]}},
        {"name": "sex", "codelist": "sex", "codes": ["F", "M"]}])
    csv = tmp_path / "p.csv"
    inner = {("71", "F"): 10, ("71", "M"): 11, ("QQ", "F"): 12, ("QQ", "M"): 13}
    protected_frame(spec, inner=inner, marks={}).to_csv(csv, index=False)
    _fails(build, tmp_path, spec, csv, "dimension 'region': code 'QQ' has no label in code list "
           "'kz-regions'")


# --------------------------------------------------------------- versions

def test_version_not_semver(build, tmp_path, spec, protected_csv):
    for v in ("release 2024-03", "1.2", "01.2.3", "v1.2.3", ""):
        bad = dataclasses.replace(spec, version=v)
        _fails(build, tmp_path, bad, protected_csv, "is not a semantic version")


@pytest.mark.parametrize("previous", ["1.2.0", "2.0.0", "1.1.1", "1.1.0"])
def test_version_goes_backwards_or_repeats(build, tmp_path, spec, protected_csv, previous):
    msg = _fails(build, tmp_path, spec, protected_csv, "1.1.0", previous_version=previous)
    assert ("goes backwards" in msg) or ("already published" in msg)


@pytest.mark.parametrize("previous", ["1.0.0", "1.0.9", "0.9.0", "1.1.0-rc.1"])
def test_version_moves_forward(build, spec, protected_csv, previous):
    res = build(spec, protected_csv, previous_version=previous)
    assert res.descriptor["x_release"]["previous_version"] == previous


def test_semver_precedence():
    from datapackages import parse_semver

    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
             "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"]
    assert sorted(order, key=parse_semver) == order


# --------------------------------------------------------------- output folder

def test_replaces_an_earlier_package_but_not_another_folder(tmp_path, spec, protected_csv):
    out = tmp_path / "pkg"
    package_table(spec, protected_csv, out, codelist_dir=CODELISTS)
    # an earlier package: replaced
    res = package_table(spec, protected_csv, out, codelist_dir=CODELISTS)
    assert (res.path / "datapackage.json").is_file()
    other = tmp_path / "home"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(PackageError, match="not an earlier data package"):
        package_table(spec, protected_csv, other, codelist_dir=CODELISTS)
    assert (other / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "pkg", "pkg.zip",
                                                          "protected.csv"]


def test_failure_after_writing_began_leaves_nothing(monkeypatch, tmp_path, spec, protected_csv):
    """A failure in validation (after files were written to the temporary folder) cleans up, and
    an earlier package at the same place is left untouched."""
    from datapackages import build as b

    out = tmp_path / "out" / "pkg"
    first = package_table(spec, protected_csv, out, codelist_dir=CODELISTS)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    zip_before = first.zip_path.read_bytes()

    def broken(*_a, **_k):
        raise PackageError("frictionless validation failed: simulated")

    monkeypatch.setattr(b, "_validate", broken)
    with pytest.raises(PackageError, match="simulated"):
        package_table(dataclasses.replace(spec, version="1.2.0"), protected_csv, out,
                      codelist_dir=CODELISTS)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["pkg", "pkg.zip"]
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert first.zip_path.read_bytes() == zip_before


def test_synthetic_data_is_marked(build, protected_csv):
    res = build(make_spec(synthetic=True), protected_csv)
    assert res.descriptor["x_synthetic"] is True


def test_dimension_named_like_a_published_column(build, tmp_path, protected_csv):
    spec = make_spec(dimensions=[
        {"name": "region", "codelist": "kz-regions",
         "hierarchy": {"_T": ["71", "75"], "71": ["7101", "7102"], "75": ["7501"]}},
        {"name": "obs_status", "codelist": "sex", "codes": ["F", "M"]}])
    _fails(build, tmp_path, spec, protected_csv, "dimension 'obs_status' has the name of a "
           "published column")


def test_noncharacter_in_a_label_is_refused(build, tmp_path, protected_csv):
    spec = make_spec(allow_missing_languages=False)
    bad = dataclasses.replace(spec, title={**spec.title, "ru": "Мигранты\ufffe"})
    _fails(build, tmp_path, bad, protected_csv, "title.ru", "non-character")


def test_failed_attacker_audit_is_refused(build, tmp_path, spec, protected_csv):
    report = protection_report(spec, primary={"cells": 2}, secondary={"cells": 2},
                               audit={"passed": False, "exact": 1, "narrow": 0})
    _fails(build, tmp_path, spec, protected_csv, "attacker audit failed (exact 1, narrow 0)",
           "refusing to package", report=report)


@pytest.mark.parametrize("method, key", [("suppression", "audit"), ("noise", "uncertainty")])
def test_report_missing_a_key_is_refused_naming_it(build, tmp_path, spec, method, key):
    """A report the method's reader cannot read (a key it needs is gone) is refused, not
    silently packaged with text missing from the method block."""
    if method == "noise":
        spec = make_spec(disclosure={"noise": {"mechanism": "geometric", "epsilon": 1.0}})
        frame = noise_frame(spec)
    else:
        frame = protected_frame(spec)
    csv = tmp_path / "in.csv"
    frame.to_csv(csv, index=False)
    report = protection_report(spec)
    assert report["method"] == method
    build(spec, csv, name="ok", report=report)  # the complete report is accepted
    import shutil

    shutil.rmtree(tmp_path / "out")
    del report[key]
    _fails(build, tmp_path, spec, csv, "spec migrants-by-region",
           "the protection report does not fit", f"report.{key}: is missing", report=report)


# --------------------------------------------------------------- the protected table as bytes

def test_protected_table_as_bytes_is_refused_like_a_file_and_named(build, tmp_path, spec):
    lines = _lines(spec)
    i = next(k for k, ln in enumerate(lines) if ln.startswith("7101,M,"))
    lines[i] = "7101,M,3,Q,C"
    data = ("\n".join(lines) + "\n").encode("utf-8")
    with pytest.raises(PackageError) as ei:
        package_table(spec, data, tmp_path / "out" / "pkg", name="release 7 table",
                      codelist_dir=CODELISTS)
    msg = str(ei.value)
    assert msg.startswith(f"release 7 table, row {i + 1}, column obs_value: ") and "carries a value" in msg
    assert ",3," not in msg
    _nothing_written(tmp_path)
    _fails(build, tmp_path, spec, data, "protected table", f"row {i + 1}")
    _fails(build, tmp_path, spec, b"\xff\xfe\x00", "protected table", "not UTF-8")
    _fails(build, tmp_path, spec, b"", "protected table", "empty")


def test_read_protected_takes_bytes_or_a_path(tmp_path, spec, protected_csv):
    from datapackages.protected import read_protected

    from_path = read_protected(spec, protected_csv)
    from_bytes = read_protected(spec, protected_csv.read_bytes(), name="upload")
    assert from_bytes.rows == from_path.rows and from_bytes.counts == from_path.counts
    with pytest.raises(PackageError, match="^upload, row 1"):
        read_protected(spec, b"region,obs_value\n", name="upload")


# --------------------------------------------------------------- checking metadata alone

def test_check_metadata_refuses_what_packaging_refuses_and_returns_its_warnings(tmp_path):
    import dataclasses

    from datapackages import check_metadata

    spec = make_spec()
    assert check_metadata(spec) == []
    anonymous = dataclasses.replace(spec, metadata={k: v for k, v in spec.metadata.items()
                                                    if k != "publisher"})
    assert any("no publisher given" in w for w in check_metadata(anonymous))
    assert check_metadata(anonymous,
                          publisher_name={"kk": "Бюро", "ru": "Бюро", "en": "Bureau"}) == []
    bad = make_spec(title={"kk": "<script>x</script>", "ru": "Таблица", "en": "Table"})
    with pytest.raises(PackageError, match="markup"):
        check_metadata(bad)
    assert not list(tmp_path.iterdir())  # nothing built
