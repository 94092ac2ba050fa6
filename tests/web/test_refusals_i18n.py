"""Every refusal in the page's language: each kind of :class:`AshyqError` (and each kind of
marshmallow message a spec can earn) rendered in kk, ru and en from the UI catalogue, with the
file, row, column and values filled in, and no English left in the kk/ru text beyond codes,
keys and file names."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from babel.messages.extract import extract_python
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from disclosure.errors import R_, AshyqError, Phrase, Word, param_data, param_from_data

from .conftest import SETTINGS, SPEC, TABLE

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "publisher" / "translations"
# The modules whose refusal classes this test raises: the pure core and the service layer (the
# workflow's refusals are one family, translated by their own templates). SpecFormError (the web
# form's reader) is not here yet: its raise sites are still English.
OWNED = ("disclosure.", "datapackages.", "publisher.service", "publisher.budget", "publisher.ckan",
         "publisher.specs", "publisher.settings", "publisher.workflow")

# Identifiers a kk/ru refusal may carry in Latin letters: spec keys and values, settings,
# formats and names of things (they are the same in every language).
IDENTIFIERS = {
    "epsilon", "rho", "gaussian", "zCDP", "sqrt", "ln", "Ashyq", "weights", "inner", "total", "margins", "geometric", "heuristic", "optimal",
    "none", "absolute", "percent", "codes", "hierarchy", "flow", "stock", "kk", "ru", "en",
    "true", "false", "session", "publisher", "package", "source", "add", "ID", "E", "budget",
    "frictionless", "slug", "sex", "region", "obs", "value", "status", "conf", "noise",
    "suppression", "id", "version", "title", "disclosure", "dimensions", "measure", "name",
    "path", "email", "keywords", "languages", "license", "doi", "created", "contributors",
    "sources", "homepage", "role", "mechanism", "registry", "spec", "CKAN", "HTTP", "YAML",
    "JSON", "CSV", "XLSX", "UTF", "ISO", "RFC", "IRI", "URL", "NaN", "MiB", "Data", "Package",
    "v1", "sha256", "md5", "Open", "Definition", "F", "M", "C", "D", "A", "Q", "profile",
    "null", "nan", "a-z", "A-Z", "zero", "refuse", "http", "s", "production", "python",
    "loopback", "bar", "line",
}


def catalogue_strings() -> dict[str, str]:
    """Every refusal template (R_) of the pure core and the service layer, with its file."""
    found: dict[str, str] = {}
    files = [*ROOT.glob("disclosure/**/*.py"), *ROOT.glob("datapackages/**/*.py"),
             *ROOT.glob("publisher/*.py")]
    for f in files:
        with f.open("rb") as fh:
            for _line, _fn, msg, _comments in extract_python(fh, {"R_": None}, [], {}):
                if msg:
                    found.setdefault(msg, str(f.relative_to(ROOT)))
    return found


def english_left(text: str, *allowed: str) -> list[str]:
    """Latin-letter words of ``text`` that are not codes, keys, identifiers or given names."""
    for a in sorted(filter(None, allowed), key=len, reverse=True):
        text = text.replace(a, " ")
    text = re.sub(r"'[^']*'", " ", text)  # quoted codes and values
    left = []
    for token in re.findall(r"[A-Za-z0-9_./+:@=-]+", text):
        if token.startswith("-"):
            continue  # a command-line option (--published, -c)
        token = token.strip("-")
        if not re.search(r"[A-Za-z]", token) or re.search(r"[0-9_./+:@=]", token):
            continue  # numbers, keys (reference_period), files, codes (R01D01), U+0007
        if token in IDENTIFIERS or token.isupper():
            continue
        left.append(token)
    return left


# -- the catalogue --------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_every_refusal_template_is_translated(lang):
    strings = catalogue_strings()
    assert len(strings) > 250
    po = read_po((TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb"), locale=lang)
    translated = {m.id: m.string for m in po if m.id and m.string and not m.fuzzy}
    missing = sorted(f"{where}: {s}" for s, where in strings.items() if s not in translated)
    assert not missing, f"{lang}: {len(missing)} untranslated, e.g. {missing[:5]}"
    mo = read_mo((TRANSLATIONS / lang / "LC_MESSAGES" / "messages.mo").open("rb"))
    compiled = {m.id: m.string for m in mo if m.id}
    stale = sorted(s for s in strings if compiled.get(s) != translated[s])
    assert not stale, f"{lang}: messages.mo is stale (run pybabel compile): {stale[:3]}"
    for s in strings:
        assert set(re.findall(r"%\(\w+\)s", s)) == set(re.findall(r"%\(\w+\)s", translated[s])), s
        if lang == "en":
            assert translated[s] == s
        else:
            assert not english_left(translated[s] % {k: "" for k in
                                                     re.findall(r"%\((\w+)\)s", s)}), (s, lang)


# -- one refusal of every kind --------------------------------------------------------------

def _spec(**changes: Any):
    from disclosure.spec_schema import spec_from_mapping

    return spec_from_mapping({**SPEC, **changes}, source="spec.yaml")


def _table(text: str = TABLE) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def _read_cells(text: str):
    from disclosure.table import read_cells

    return read_cells(_table(text), _spec(), source="table.csv")


NOISE = {"noise": {"mechanism": "geometric", "epsilon": 9.0}}


def _refusals(tmp_path: Path, session) -> dict[str, Callable[[], Any]]:  # noqa: ANN001
    """name -> a call that raises the refusal (through the code that raises it for users)."""
    from datapackages.protected import read_protected
    from datapackages.text import clean
    from disclosure.history import parse_period
    from disclosure.methods import get_method, method_of
    from disclosure.report import report_from_dict
    from disclosure.spec import Hierarchy
    from disclosure.spec_schema import parse_spec_text
    from publisher import budget, ckan, service, settings
    from publisher import workflow as wf

    def big_spec():
        return parse_spec_text(b"x" * (3 * 2**20), name="spec.yaml")

    def must_publish_sensitive():
        spec = _spec(disclosure={"min_frequency": 5, "must_publish": [{"region": "R01D02",
                                                                         "sex": "M"}]})
        service.protect_tables([(spec, _table(), "table.csv")], settings=SETTINGS)

    def epsilon_ceiling():
        spec = _spec(disclosure=NOISE)
        method_of(spec).check(spec, service.protect_context(SETTINGS))

    def bad_flag():
        spec = _spec()
        rows = ["region,sex,obs_value,obs_status,conf_status", "_T,_T,1,A,X"]
        read_protected(spec, "\n".join(rows).encode(), name="protected.csv")

    def budget_source():
        spec = _spec(disclosure={"noise": {"mechanism": "geometric", "epsilon": 1.0}})
        budget.source_of(session, spec)

    def budget_exceeded():
        raise budget.BudgetExceeded("mvd", "2024", 2.0, budget.BudgetStatus(
            spent=3.5, remaining=0.5, total=4.0))

    def ckan_package():
        ckan.read_package(tmp_path / "nothing-here")

    def publish_failed():
        try:
            ckan.read_package(tmp_path / "nothing-here")
        except ckan.CkanPublishError as e:
            raise service.PublishFailed(R_("%(error)s"), error=e) from e

    def limits():
        service.check_limits(_spec(), {"PROTECT_MAX_CELLS": 4})

    return {
        # InputError (the table)
        "negative count": lambda: _read_cells(TABLE.replace("R01D01,F,40", "R01D01,F,-3")),
        "not a code": lambda: _read_cells(TABLE.replace("R01D01,F,40", "R09,F,40")),
        "empty code": lambda: _read_cells(TABLE.replace("R01D01,F,40", ",F,40")),
        "not a number": lambda: _read_cells(TABLE.replace("R01D01,F,40", "R01D01,F,forty")),
        "missing column": lambda: _read_cells(TABLE.replace("obs_value", "count")),
        "duplicate cell": lambda: _read_cells(TABLE + "R01D01,F,4\n"),
        "totals disagree": lambda: _read_cells(TABLE + "R01,F,1\nR02,M,2\n"),
        "not UTF-8": lambda: service.read_table_bytes(b"region\xff\n", source="table.csv"),
        # SpecError, SpecValidationError and marshmallow's messages
        "hierarchy cycle": lambda: Hierarchy.from_children("region", {"_T": ["A"], "A": ["_T"]}),
        "two parents": lambda: _spec(dimensions=[{"name": "region", "hierarchy": {
            "_T": ["A", "B"], "A": ["C"], "B": ["C"]}}]),
        "required": lambda: _spec_without("id"),
        "null": lambda: _spec(id=None),
        "not a string": lambda: _spec(id=["a"]),
        "not a slug": lambda: _spec(id="Not A Slug"),
        "not a list": lambda: _spec(dimensions="region"),
        "not a mapping": lambda: _spec(disclosure="suppress"),
        "not a mapping type": lambda: _spec(title=["x"]),
        "length": lambda: _spec(dimensions=[]),
        "one of": lambda: _spec(measure_type="rate"),
        "equal": lambda: _spec(measure="count"),
        "not an integer": lambda: _spec(disclosure={"min_frequency": "five"}),
        "at least 2": lambda: _spec(disclosure={"min_frequency": 1}),
        "not a boolean": lambda: _spec(synthetic="perhaps"),
        "no method": lambda: _spec(disclosure={"secondary_x": 1}),
        "two methods": lambda: _spec(disclosure={"min_frequency": 5, **NOISE}),
        "unknown language": lambda: _spec(title={"de": "Tabelle"}),
        "no dimension": lambda: _spec(disclosure={"min_frequency": 5,
                                                  "confidential": [{"age": "Y0"}]}),
        "epsilon zero": lambda: _spec(disclosure={"noise": {"mechanism": "geometric",
                                                            "epsilon": 0}}),
        "yaml": lambda: parse_spec_text(b"id: a: b", name="spec.yaml"),
        "json": lambda: parse_spec_text(b"{\"id\": 1,}", name="spec.json"),
        "spec too large": big_spec,
        # the protection and its methods
        "must publish": must_publish_sensitive,
        "unknown method": lambda: get_method("rounding"),
        "epsilon ceiling": epsilon_ceiling,
        "report": lambda: report_from_dict({"method": "suppression", "schema_version": 99}),
        "period": lambda: parse_period("20x4", source="spec.yaml"),
        # the packager
        "flag": bad_flag,
        "markup": lambda: clean("<script>x</script>", "description.kk", source="spec.yaml"),
        # the service layer, the budget, CKAN, settings, workflow
        "limits": limits,
        "ckan token": lambda: service.publish_release(tmp_path, settings={
            "CKAN_URL": "http://ckan.example", "CKAN_API_TOKEN": None}),
        "publish failed": publish_failed,
        "ckan package": ckan_package,
        "budget source": budget_source,
        "budget exceeded": budget_exceeded,
        "settings": lambda: settings.check_secret_key(""),
        "workflow": lambda: wf.get_release(session, None, 0),
    }


def _spec_without(key: str):
    from disclosure.spec_schema import spec_from_mapping

    return spec_from_mapping({k: v for k, v in SPEC.items() if k != key}, source="spec.yaml")


def _collect(tmp_path: Path, session) -> dict[str, AshyqError]:  # noqa: ANN001
    out = {}
    for name, call in _refusals(tmp_path, session).items():
        with pytest.raises(AshyqError) as info:
            call()
        out[name] = info.value
    return out


def _subclasses(cls: type) -> set[type]:
    return {cls, *(s for c in cls.__subclasses__() for s in _subclasses(c))}


def test_every_refusal_kind_reads_in_the_page_language(app, store, tmp_path):  # noqa: ANN001
    from flask_babel import force_locale

    import publisher.web.forms  # noqa: F401 - registers its refusal class
    from publisher.web.common import localized

    with store() as session:
        refusals = _collect(tmp_path, session)
    kinds = {type(e) for e in refusals.values()}
    from publisher.workflow import WorkflowError

    wanted = {c for c in _subclasses(AshyqError) if (c.__module__ + ".").startswith(OWNED)}
    # every refusal class of those modules is raised above (the workflow's family by one of
    # its members), so a new class gets a case here
    uncovered = {c.__name__ for c in wanted
                 if not any(issubclass(k, c) or issubclass(c, k)
                            or (issubclass(c, WorkflowError) and issubclass(k, WorkflowError))
                            for k in kinds)}
    assert not uncovered, uncovered

    texts: dict[str, dict[str, str]] = {}
    for name, e in refusals.items():
        for lang in ("kk", "ru", "en"):
            with app.test_request_context("/"), force_locale(lang):
                texts.setdefault(name, {})[lang] = localized(e)
        assert texts[name]["en"] == " ".join(str(e).split())[:1000], name  # the CLI's line
        allowed = [str(e.source or ""), str(e.column or ""), "table.csv", "spec.yaml",
                   "protected.csv", "test-series", "http://ckan.example", str(tmp_path)]
        for lang in ("kk", "ru"):
            text = texts[name][lang]
            assert text != texts[name]["en"], (name, lang, text)
            assert not english_left(text, *allowed), (name, lang, text, english_left(
                text, *allowed))
    # the place and the values are filled in, in the reader's words
    neg = texts["negative count"]
    assert neg["en"] == "table.csv, row 2, column obs_value: the count '-3' is negative"
    assert neg["ru"] == "table.csv, строка 2, столбец obs_value: число '-3' отрицательное"
    assert neg["kk"] == "table.csv, 2-жол, obs_value бағаны: '-3' саны теріс"
    assert "EPSILON_CEILING" in texts["epsilon ceiling"]["ru"]
    assert "Нет данных для обязательного поля." in texts["required"]["ru"]
    assert "Міндетті өрістің деректері жоқ." in texts["required"]["kk"]
    assert "бюджет приватности превышен" in texts["budget exceeded"]["ru"]


def test_a_refusal_on_the_upload_page_is_in_the_readers_language(app):  # noqa: ANN001
    from .test_ui import _upload, client, login

    for lang, words in (("ru", "число '-3' отрицательное"), ("kk", "'-3' саны теріс")):
        c = client(app)
        login(c, "prep")
        c.get(f"/?lang={lang}")
        r = _upload(c, table=TABLE.replace("R01D01,F,40", "R01D01,F,-3"))
        assert r.status_code != 500
        page = r.get_data(as_text=True)
        if r.status_code == 302:
            page = c.get(r.headers["Location"]).get_data(as_text=True)
        page = html.unescape(page)
        assert words in page, page[:3000]
        assert "is negative" not in page


def test_the_api_answers_in_english_with_the_code(app, tokens):  # noqa: ANN001
    from .conftest import bearer

    c = app.test_client()
    r = c.post("/api/releases", headers=bearer(tokens["prep"]) | {"Accept-Language": "ru"},
               json={"kind": "initial", "spec": SPEC, "table_name": "table.csv",
                     "table_csv": TABLE.replace("R01D01,F,40", "R01D01,F,-3")})
    assert r.status_code == 422, r.get_data(as_text=True)
    body = r.get_json()
    assert body["message"] == "table.csv, row 2, column obs_value: the count '-3' is negative"
    assert body["code"] == "invalid_input"


def test_translatable_params_survive_a_round_trip_as_data():
    p = Phrase(R_("code list %(name)s"), name="'kz-regions'")
    w = Word(R_("an earlier release"))
    back = param_from_data(param_data({"a": p, "b": w}["a"])), param_from_data(param_data(w))
    assert isinstance(back[0], Phrase) and back[0].template == p.template and back[0] == p
    assert isinstance(back[1], Word) and back[1] == w


def test_worker_progress_and_actor_read_in_the_page_language(app):  # noqa: ANN001
    from flask_babel import force_locale

    from disclosure.errors import Phrase as P
    from publisher.web.review import line_in_language

    stored = [  # as the worker stores them (English text of a template)
        str(P(R_("verifying uploads (authorized download + sha256)"))),
        str(P(R_("published %(ds)s (newest in series: %(latest)s)"), ds="test-series-v1-0-0",
              latest="1.0.0")),
        str(P(R_("uploaded %(name)s (%(size)s bytes)"), name="data.csv", size=1234)),
        str(P(R_("%(n)s inner cell(s) absent from the input were taken as zero (missing: zero): "
                 "%(cells)s"), n=1, cells="(region=R01, sex=F)")),
    ]
    with app.test_request_context("/"), force_locale("ru"):
        ru = [line_in_language(s) for s in stored]
    with app.test_request_context("/"), force_locale("en"):
        en = [line_in_language(s) for s in stored]
    assert en == stored
    assert ru[0] == "проверка загрузок (скачивание с авторизацией + sha256)"
    assert ru[1] == "опубликован test-series-v1-0-0 (новейший в серии: 1.0.0)"
    assert ru[2] == "загружен data.csv (1234 байт)"
    assert ru[3].startswith("отсутствующие во входной таблице внутренние ячейки (1)")
    for text in ru:
        assert not english_left(text, "test-series-v1-0-0", "data.csv"), text
    with app.test_request_context("/"), force_locale("kk"):
        from flask_babel import gettext

        assert gettext("system") == "жүйе"
    assert line_in_language("a text no template made") == "a text no template made"
