"""Bad input of issue 15: a unit or contact point that a format cannot use, a period that is not
ISO 8601, a code list missing a label in one language. The build refuses with the key and the
language named (one line), and writes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dp_helpers import CODELISTS, make_spec, protected_frame, shacl

from datapackages import PackageError
from datapackages.build import check_metadata
from disclosure.spec_schema import SpecValidationError

SEX_LABELS = {"F": {"kk": "Әйелдер", "ru": "Женщины", "en": "Women"},
              "M": {"kk": "Ерлер", "ru": "Мужчины", "en": "Men"}}


def _refused(build, tmp_path: Path, spec, *parts: str, **kw) -> str:
    """package_table refuses ``spec`` with every one of ``parts`` in a one-line message, writes
    nothing, and check_metadata (the web form's early check) refuses it the same way."""
    p = tmp_path / "protected.csv"
    protected_frame(spec).to_csv(p, index=False)
    with pytest.raises(PackageError) as ei:
        build(spec, p, **kw)
    msg = str(ei.value)
    assert "\n" not in msg
    for part in parts:
        assert part in msg, msg
    out = tmp_path / "out"
    assert not out.exists() or list(out.iterdir()) == []
    if "codelist_dir" not in kw:
        with pytest.raises(PackageError) as early:
            check_metadata(spec)
        assert str(early.value) == msg
    return msg


# --------------------------------------------------------------- unit of measure

def test_a_unit_missing_one_language_is_refused_naming_it(build, tmp_path):
    spec = make_spec(unit={"kk": "адам", "ru": "человек"})
    _refused(build, tmp_path, spec, "missing translation: unit.en (English)")


def test_an_own_measure_without_a_unit_is_refused(build, tmp_path):
    """The built-in unit (persons) goes with the built-in measure only: SDMX would say PS."""
    measure = {"kk": "Өтініштер саны", "ru": "Число заявлений", "en": "Number of applications"}
    _refused(build, tmp_path, make_spec(measure_title=measure), "key unit: missing",
             "measure_title")
    unit = {"kk": "өтініш", "ru": "заявление", "en": "applications"}
    assert check_metadata(make_spec(measure_title=measure, unit=unit)) == []


def test_a_unit_that_is_not_per_language_is_refused_by_the_spec_reader():
    with pytest.raises(SpecValidationError, match="unit"):
        make_spec(unit="persons")
    with pytest.raises(SpecValidationError, match=r"unit\.en"):
        make_spec(unit={"kk": "адам", "ru": "человек", "en": ""})


# --------------------------------------------------------------- contact point

@pytest.mark.parametrize("contact, parts", [
    ({"name": "Data desk"}, ["contact_point: must be {name, email}"]),
    ({"name": "Data desk", "email": "not-an-address"}, ["contact_point.email"]),
    ({"name": {"kk": "Деректер бөлімі", "ru": "Отдел данных"}, "email": "data@stat.example.kz"},
     ["missing translation: contact_point.name.en (English)"]),
])
def test_a_contact_point_a_format_cannot_use_is_refused(build, tmp_path, contact, parts):
    _refused(build, tmp_path, make_spec(contact_point=contact), *parts)


def test_a_bad_publisher_email_is_refused(build, tmp_path):
    spec = make_spec(publisher={"name": {"kk": "Бюро", "ru": "Бюро", "en": "Bureau"},
                                "email": "bureau at stat"})
    _refused(build, tmp_path, spec, "publisher.email")


def test_without_any_contact_point_no_format_invents_one(build, tmp_path):
    """No format requires a contact (DCAT-AP 3.0.0 has no minimum for dcat:contactPoint, PX
    CONTACT and the SDMX sender contact are optional), so none is refused; none is made up."""
    spec = make_spec()  # publisher without e-mail, no contact_point
    p = tmp_path / "p.csv"
    protected_frame(spec).to_csv(p, index=False)
    res = build(spec, p)
    assert "x_contact_point" not in res.descriptor
    assert "contactPoint" not in (res.path / "dcat.ttl").read_text("utf-8")
    for lg in ("kk", "ru", "en"):
        assert "CONTACT=" not in (res.path / "downloads" / f"{spec.id}-{lg}.px").read_text("utf-8")
    _, conforms, text = shacl(res.path / "dcat.ttl")
    assert conforms, text[:3000]


# --------------------------------------------------------------- reference period

@pytest.mark.parametrize("period", ["2023-2024", "2024-13", "2024-Q5", "2024-02-30", "24",
                                    "last year", "2024-M01"])
def test_a_period_that_is_not_iso_8601_is_refused(build, tmp_path, period):
    _refused(build, tmp_path, make_spec(reference_period=period),
             f"key reference_period: {period!r} is not an ISO 8601 period")


@pytest.mark.parametrize("period, lang", [
    ({"kk": "2023 жыл", "ru": "2023 год", "en": "2023-2024"}, "en"),
    ({"kk": "2024-Q5", "ru": "2024 год", "en": "Year 2024"}, "kk"),
    ({"kk": "2024 жыл", "ru": "2024-13", "en": "2024"}, "ru"),
])
def test_a_period_code_in_one_language_must_be_iso_8601(build, tmp_path, period, lang):
    msg = _refused(build, tmp_path, make_spec(reference_period=period),
                   f"key reference_period.{lang}: {period[lang]!r}", "not an ISO 8601 period")
    assert "written like a period code" in msg


def test_languages_giving_different_periods_are_refused(build, tmp_path):
    spec = make_spec(reference_period={"kk": "2023", "ru": "2024", "en": "Year 2023"})
    _refused(build, tmp_path, spec, "different periods", "'2023' in reference_period.kk",
             "'2024' in reference_period.ru")


def test_a_period_missing_one_language_is_refused_naming_it(build, tmp_path):
    spec = make_spec(reference_period={"kk": "2023 жыл", "ru": "2023 год"})
    _refused(build, tmp_path, spec, "missing translation: reference_period.en (English)")


@pytest.mark.parametrize("period", ["2024", " 2024 ", "2024-Q1", "2024-01", "2024-01-15",
                                    "2023/2024", "2024-S1", "2024-W05", 2024,
                                    {"kk": "2023 жыл", "ru": "2023 год", "en": "Year 2023"},
                                    {"kk": "2023 жыл", "ru": "2023 год", "en": "2023"},
                                    {"kk": "2024 ж. 1-тоқсан", "ru": "I квартал 2024 г.",
                                     "en": "Q1 2024"}])
def test_iso_periods_and_periods_in_words_are_accepted(period):
    assert check_metadata(make_spec(reference_period=period)) == []


def test_a_plain_period_is_kept_as_its_code_in_every_language(build, tmp_path):
    spec = make_spec(reference_period=" 2024-Q1 ")
    p = tmp_path / "p.csv"
    protected_frame(spec).to_csv(p, index=False)
    ref = build(spec, p).descriptor["x_reference_metadata"]["reference_period"]
    assert ref == {"kk": "2024-Q1", "ru": "2024-Q1", "en": "2024-Q1"}


# --------------------------------------------------------------- code lists

def test_inline_labels_missing_one_language_are_refused_naming_code_and_language(build,
                                                                               tmp_path):
    labels = {"F": {"kk": "Әйелдер", "ru": "Женщины"}, "M": SEX_LABELS["M"]}
    spec = make_spec(dimensions=[
        {"name": "region", "codelist": "kz-regions",
         "hierarchy": {"_T": ["71", "75"], "71": ["7101", "7102"], "75": ["7501"]}},
        {"name": "sex", "codes": ["F", "M"], "labels": labels},
    ])
    _refused(build, tmp_path, spec, "missing translation: dimensions.sex.labels.F.en (English)",
             codelist_dir=CODELISTS)


def test_a_code_list_file_missing_a_label_in_one_language_is_refused(build, tmp_path, spec):
    folder = tmp_path / "codelists"
    shutil.copytree(CODELISTS, folder)
    path = folder / "kz-regions.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith("7101,"))
    code, parent, kk, _ru, en = lines[i].split(",")
    lines[i] = ",".join([code, parent, kk, "", en])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _refused(build, tmp_path, spec,
             "missing translation: dimensions.region.labels.7101.ru (Russian)",
             codelist_dir=folder)
