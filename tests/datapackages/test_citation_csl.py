"""Citations read by the tools a reader cites with (issue 15): the CSL-JSON of a package rendered
by citeproc-py in kk/ru/en (Kazakh through the locale the project ships, as no CSL processor has
one), and the BibLaTeX parsed by pybtex."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

# citeproc-py and pybtex are dev dependencies (pyproject [dev]): a missing one fails, not skips
import citeproc  # noqa: F401
import pytest
from dp_helpers import LANDING, PUBLISHER, TITLE, make_spec
from pybtex import database as pybtex

from datapackages.citation import (
    CSL_DIR,
    OWN_LOCALES,
    STYLE,
    biblatex,
    csl_json,
    csl_style,
    render_csl,
)

LANGS = ("kk", "ru", "en")
ACCESSED = date(2026, 4, 1)
#: words of citeproc-py's ru-RU / en-US locales and of the package's ru/en texts that must not
#: appear in a Kazakh citation (the fallback the issue saw)
NOT_KAZAKH = ("Версия", "версия", "просмотрено", "апрель", "Набор данных", " г.", "Version",
              "accessed", "April", "Dataset", "Data set", "Доступно", "Available")
MONTHS_KK = ("қаңтар", "ақпан", "наурыз", "сәуір", "мамыр", "маусым", "шілде", "тамыз",
             "қыркүйек", "қазан", "қараша", "желтоқсан")


@pytest.fixture
def descriptor(build, spec, protected_csv) -> dict:
    return build(spec, protected_csv).descriptor


def _terms(path: Path) -> set[tuple[str, str | None, str | None]]:
    from lxml import etree

    ns = {"cs": "http://purl.org/net/xbiblio/csl"}
    root = etree.parse(str(path)).getroot()
    return {(t.get("name"), t.get("form"), t.get("gender-form"))
            for t in root.findall("cs:terms/cs:term", ns)}


def test_shipped_locale_and_style_are_valid_csl_1_0():
    from citeproc import LOCALES_PATH, SCHEMA_PATH
    from lxml import etree

    schema = etree.RelaxNG(etree.parse(SCHEMA_PATH))
    kk = OWN_LOCALES["kk"]
    for path in (kk, STYLE):
        doc = etree.parse(str(path))
        assert schema.validate(doc), (path.name, str(schema.error_log)[:2000])
    root = etree.parse(str(kk)).getroot()
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "kk-KZ"
    rights = root.find("{*}info/{*}rights")
    assert rights.get("license") == "http://creativecommons.org/licenses/by-sa/3.0/"
    # Every term the Russian locale defines (its structure is the model), but the gendered
    # ordinals: Kazakh has no grammatical gender.
    ru = {t for t in _terms(Path(LOCALES_PATH) / "locales-ru-RU.xml") if t[2] is None}
    assert ru - _terms(kk) == set()
    assert CSL_DIR.name == "csl" and kk.parent == CSL_DIR


def test_csl_json_rendered_by_citeproc_in_three_languages(descriptor):
    out = {lg: render_csl(csl_json(descriptor, lg, accessed=ACCESSED), lg) for lg in LANGS}
    for lg, text in out.items():
        # Creator (Year): Title. Version X. Publisher. (Dataset). URL (accessed DATE)
        author, rest = text.split(" (2026): ", 1)
        assert author == "A. Statistician"
        assert rest.startswith(TITLE[lg] + ". ")
        assert text.count(PUBLISHER[lg]) == 1 and "1.1.0" in text and LANDING in text
        assert text.index("1.1.0") < text.index(PUBLISHER[lg]) < text.index(LANDING)
    kk = out["kk"]
    assert f"Нұсқа 1.1.0. {PUBLISHER['kk']}. (Деректер жиынтығы)." in kk
    assert kk.endswith("(қаралды 2026 жылғы 1 сәуір)")
    assert not [w for w in NOT_KAZAKH if w in kk], kk
    assert f"Версия 1.1.0. {PUBLISHER['ru']}. (Набор данных)." in out["ru"]
    assert "просмотрено 1 апрель 2026" in out["ru"]
    assert f"Version 1.1.0. {PUBLISHER['en']}. (Dataset)." in out["en"]
    assert out["en"].endswith("(accessed 1 April 2026)")


def test_without_an_author_the_title_leads_and_the_publisher_stays_publisher(build,
                                                                           protected_csv):
    d = build(make_spec(contributors=[]), protected_csv, name="anon").descriptor
    for lg in LANGS:
        item = csl_json(d, lg)
        assert "author" not in item and item["publisher"] == PUBLISHER[lg]
        text = render_csl(item, lg)
        assert text.startswith(f"{TITLE[lg]} (2026). ")
        assert text.count(TITLE[lg]) == 1 and text.count(PUBLISHER[lg]) == 1
        assert text.index("1.1.0") < text.index(PUBLISHER[lg])


def test_the_kazakh_locale_gives_terms_and_months(descriptor):
    item = csl_json(descriptor, "kk")
    item.pop("genre")  # the style falls back to the locale's term for the type
    assert "(Деректер жиынтығы)." in render_csl(item, "kk")
    for month, name in enumerate(MONTHS_KK, start=1):
        text = render_csl({**item, "accessed": {"date-parts": [[2026, month, 15]]}}, "kk")
        assert text.endswith(f"(қаралды 2026 жылғы 15 {name})"), text


def test_the_kazakh_locale_serves_another_style_too(descriptor):
    """citeproc-py's bundled Harvard style, rendered with the project's kk locale."""
    from citeproc import STYLES_PATH

    harvard = Path(STYLES_PATH) / "harvard-cite-them-right.csl"
    text = render_csl(csl_json(descriptor, "kk", accessed=ACCESSED), "kk", style=harvard)
    assert f"«{TITLE['kk']}»" in text and PUBLISHER["kk"] in text
    assert "Қолжетімді мекенжайы:" in text and "Қаралды: 2026 жылғы 1 сәуір" in text
    assert not [w for w in NOT_KAZAKH if w in text], text


def test_csl_style_refuses_an_unknown_language():
    with pytest.raises(ValueError, match="unknown language"):
        csl_style("de")


def test_biblatex_parsed_by_pybtex_in_three_languages(build, spec, protected_csv):
    res = build(spec, protected_csv)
    d = res.descriptor
    for lg in LANGS:
        db = pybtex.parse_string(biblatex(d, lg, accessed=ACCESSED), "bibtex")
        (key, entry), = db.entries.items()
        assert key == f"migrants-by-region_1_1_0_{lg}" and entry.type == "dataset"
        f = entry.fields
        assert f["year"] == "2026" and f["date"] == "2026-03-20"
        assert f["version"] == "1.1.0" and f["publisher"] == PUBLISHER[lg]
        assert f["title"] == TITLE[lg] and f["url"] == LANDING and f["urldate"] == "2026-04-01"
        assert [str(p) for p in entry.persons["author"]] == ["{A. Statistician}"]
    # The package's citation.bib: one entry per language, no access date (a reader adds it).
    db = pybtex.parse_file(str(res.path / "citation" / "citation.bib"), "bibtex")
    assert sorted(db.entries) == sorted(f"migrants-by-region_1_1_0_{lg}" for lg in LANGS)
    assert all("urldate" not in e.fields and e.fields["year"] == "2026"
               for e in db.entries.values())
    anon = build(make_spec(contributors=[]), protected_csv, name="anon").descriptor
    entry = next(iter(pybtex.parse_string(biblatex(anon, "kk"), "bibtex").entries.values()))
    assert "author" not in entry.persons and entry.fields["publisher"] == PUBLISHER["kk"]


def test_pybtex_plain_style_prints_year_version_and_publisher(descriptor):
    """A BibTeX style knows neither ``date`` nor ``version`` and prints @dataset as @misc:
    ``year`` and ``howpublished`` carry them (the issue saw pybtex drop both)."""
    from pybtex.database import parse_string
    from pybtex.plugin import find_plugin

    style = find_plugin("pybtex.style.formatting", "plain")()
    words = {"kk": "Деректер жиынтығы. Нұсқа 1.1.0", "ru": "Набор данных. Версия 1.1.0",
             "en": "Dataset. Version 1.1.0"}
    for lg in LANGS:
        db = parse_string(biblatex(descriptor, lg), "bibtex")
        (entry,) = style.format_bibliography(db)
        text = entry.text.render_as("text")
        assert text.startswith(f"A. Statistician. {TITLE[lg]}. ")
        assert f"{words[lg]}. {PUBLISHER[lg]}, 2026." in text and LANDING in text


def test_csl_json_keeps_to_csl_variables(descriptor):
    """Only CSL-JSON variables (csl-data.json), so citeproc-py reads every one of them."""
    from citeproc import VARIABLES

    item = csl_json(descriptor, "ru", accessed=ACCESSED)
    known = {v.replace("_", "-") for v in VARIABLES} | {"id", "type", "language"}
    assert set(item) <= known, set(item) - known
    assert re.fullmatch(r"migrants-by-region-1\.1\.0-ru", item["id"])
