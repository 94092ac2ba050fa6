"""Every UI string is translated into kk, ru and en, and the compiled catalogs are current."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir, extract_python
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "publisher" / "web"
TRANSLATIONS = ROOT / "publisher" / "translations"
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None, "N_": None}


def ui_strings() -> set[str]:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    found = set()
    for _file, _line, msg, _comments, _ctx in extract_from_dir(
            str(WEB), method_map=method_map, keywords=KEYWORDS,
            options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}}):
        found.add(msg if isinstance(msg, str) else msg[0])
    for _line, _func, msg, _comments in extract_python(
            (ROOT / "publisher" / "workflow.py").open("rb"), {"N_": None}, [], {}):
        found.add(msg)
    return found


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_every_ui_string_is_translated(lang):
    strings = ui_strings()
    assert len(strings) > 150
    po = read_po((TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb"), locale=lang)
    translated = {m.id: m.string for m in po if m.id and m.string and not m.fuzzy}
    missing = sorted(strings - set(translated))
    assert not missing, f"{lang}: untranslated: {missing[:5]}"
    mo = read_mo((TRANSLATIONS / lang / "LC_MESSAGES" / "messages.mo").open("rb"))
    compiled = {m.id: m.string for m in mo if m.id}
    stale = sorted(s for s in strings if compiled.get(s) != translated[s])
    assert not stale, f"{lang}: messages.mo is stale (run pybabel compile): {stale[:3]}"


@pytest.mark.parametrize("lang", ["kk", "ru"])
def test_placeholders_survive_translation(lang):
    import re

    po = read_po((TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb"), locale=lang)
    for m in po:
        if m.id:
            assert set(re.findall(r"%\(\w+\)s", m.id)) == set(re.findall(r"%\(\w+\)s", m.string)), m.id
