"""The package text lives in the Babel catalogue: every string translated, compiled, not in code.

The msgids are extracted from ``disclosure/methods`` and ``datapackages`` as
``datapackages/translations/babel.cfg`` says (keywords ``tr`` and ``N_``), like
tests/web/test_i18n.py does for the UI.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from datapackages.i18n import tr
from disclosure.spec import LANGUAGES

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "datapackages" / "translations"
SOURCES = ("disclosure/methods", "datapackages")  # the folders babel.cfg extracts from
KEYWORDS = {"tr": None, "N_": None}
CYRILLIC = re.compile("[\u0400-\u04ff]")
PLACEHOLDER = re.compile(r"%\(\w+\)s")


def package_strings() -> set[str]:
    found = set()
    for folder in SOURCES:
        for _file, _line, msg, _comments, _ctx in extract_from_dir(
                str(ROOT / folder), method_map=[("**.py", "python")], keywords=KEYWORDS):
            found.add(msg if isinstance(msg, str) else msg[0])
    return found


def po(lang: str):
    return read_po((TRANSLATIONS / lang / "LC_MESSAGES" / "package.po").open("rb"), locale=lang)


def test_babel_cfg_extracts_from_the_folders_checked_here():
    cfg = (TRANSLATIONS / "babel.cfg").read_text(encoding="utf-8")
    for folder in SOURCES:
        assert f"[python: {folder}/**.py]" in cfg


def test_the_template_is_current():
    strings = package_strings()
    assert len(strings) > 80
    pot = read_po((TRANSLATIONS / "package.pot").open("rb"))
    ids = {m.id for m in pot if m.id}
    assert not sorted(strings - ids), "package.pot is stale (run pybabel extract): missing " \
        f"{sorted(strings - ids)[:3]}"
    assert not sorted(ids - strings), f"package.pot has msgids no code uses: {sorted(ids - strings)[:3]}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_package_string_is_translated_and_compiled(lang):
    strings = package_strings()
    translated = {m.id: m.string for m in po(lang) if m.id and m.string and not m.fuzzy}
    missing = sorted(strings - set(translated))
    assert not missing, f"{lang}: untranslated: {missing[:5]}"
    assert all(translated[s].strip() for s in strings), f"{lang}: a blank translation"
    mo = read_mo((TRANSLATIONS / lang / "LC_MESSAGES" / "package.mo").open("rb"))
    compiled = {m.id: m.string for m in mo if m.id}
    stale = sorted(s for s in strings if compiled.get(s) != translated[s])
    assert not stale, f"{lang}: package.mo is stale (run pybabel compile -D package): {stale[:3]}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_placeholders_survive_translation(lang):
    for m in po(lang):
        if not m.id:
            continue
        names = set(PLACEHOLDER.findall(m.id))
        assert names == set(PLACEHOLDER.findall(m.string)), m.id
        if names:  # the template formats: no stray "%" (a literal one is "%%")
            m.string % {n[2:-2]: "x" for n in names}


def test_english_is_the_source_text():
    for m in po("en"):
        if m.id:
            assert m.string == m.id


def test_no_cyrillic_in_the_python_code():
    """kk and ru text belongs in the .po files, not in code (grep -P '[\\x{0400}-\\x{04FF}]')."""
    offenders = []
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if CYRILLIC.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{i}")
    assert not offenders, f"Cyrillic text in code (move it to the catalogue): {offenders[:5]}"


def test_the_disclosure_methods_read_no_catalogue():
    """The methods are pure: they are handed the translator, they import no catalogue."""
    for path in sorted((ROOT / "disclosure" / "methods").glob("*.py")):
        src = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(from|import)\s+(datapackages|babel)\b", src, re.M), path.name


def test_tr_renders_every_language():
    out = tr("Total")
    assert list(out) == list(LANGUAGES)
    assert out == {"kk": "Барлығы", "ru": "Всего", "en": "Total"}


def test_tr_composes_a_per_language_param():
    unit = {"kk": "адам", "ru": "человек", "en": "persons"}
    assert tr("Unit of measure: %(unit)s.", unit=unit) == {
        "kk": "Өлшем бірлігі: адам.", "ru": "Единица измерения: человек.",
        "en": "Unit of measure: persons."}
    # a nested tr result is a per-language param; a plain value is the same in every language
    assert tr("Code list: %(dimension)s", dimension=tr("Region")) == {
        "kk": "Кодтар тізімі: Өңір", "ru": "Справочник кодов: Регион", "en": "Code list: Region"}
    assert tr("How to cite (%(format)s)", format="CSL-JSON")["ru"] == "Как цитировать (CSL-JSON)"
    assert tr("%(value)s%% of its value", value="12.5") == {
        "kk": "мәнінің 12.5%", "ru": "12.5% её значения", "en": "12.5% of its value"}


def test_a_msgid_not_in_the_catalogue_falls_back_to_english():
    """A plug-in's own text (not in this catalogue) stays English rather than failing."""
    assert tr("Toy rounding to %(base)s", base=5) == dict.fromkeys(LANGUAGES, "Toy rounding to 5")


def test_method_columns_are_msgids_of_the_catalogue():
    from disclosure.methods import methods

    strings = package_strings()
    for m in methods():
        for c in m.columns:
            if m.name in ("suppression", "noise"):
                assert c.title in strings, (m.name, c.name)
