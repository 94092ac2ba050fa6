"""Property-based fuzzing of every UI form route: no bad input gives a server error, and every
refusal is in the language asked for.

schemathesis covers the JSON API from its OpenAPI document (tests/web/test_api_fuzz.py); this
covers the rest: every rule of ``app.url_map`` that takes POST outside the API blueprints, posted
by a preparer, an approver, an administrator or nobody, with hostile field values (HTML, huge
strings, NUL bytes, numbers out of range, wrong types, repeated or missing fields, files that are
not what they claim), path arguments that name nothing (unknown release ids, ids past 64 bits)
and CSRF tokens valid, missing or forged. Each answer must be below 500; a refusal page (4xx)
and every error flashed must be in the request's language (``?lang=kk|ru|en``): the page's
``<html lang>`` says so, and a kk/ru message holds no English sentence words beyond what was sent.

Bounded: ``ASHYQ_UI_FUZZ_EXAMPLES`` (default 5) examples per route and role, derandomized.
"""

from __future__ import annotations

import io
import os
import re
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from publisher import workflow as wf
from publisher.db import make_engine, session_factory, transaction, upgrade
from publisher.workflow_models import ApiToken, User, utcnow

from .conftest import SETTINGS, SPEC, TABLE, upload

EXAMPLES = int(os.environ.get("ASHYQ_UI_FUZZ_EXAMPLES", "5"))
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
LANGS = ("kk", "ru", "en")
PEOPLE = {"preparer": "prep", "approver": "appr", "admin": "admin"}

HOSTILE = [
    "", " ", "\x00", "a\x00b", "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>',
    "A" * 100_000, "'; drop table release; --", "../../etc/passwd", "%s%s%n", "${jndi:ldap://x}",
    "1e309", "-1", "0", "nan", "inf", "2147483648", "99999999999999999999999999", "-0.0",
    "2026-13-45T25:61", "2026-01-01T00:00", "0001-01-01T00:00", "9999-12-31T23:59", "true",
    "[]", "{}", "кирилл", "日本語", "\r\n\r\n", "=HYPERLINK(\"http://x\")", "ru", "kk", "en",
    "preparer", "admin", "token", "language", "suppression", "noise", "optimal", "correction",
    "revision", "initial", "1", "2", "region: _T=R01,R02\nsex: F, M", "x: ", ":::", "a=b=c;;",
]
FILES = [
    (b"", "t.csv"), (TABLE.encode(), "table.csv"), (b"\x00" * 64, "t.csv"),
    (b"\xff\xfe\x00b\x00a\x00d", "t.csv"), (b"region,sex,obs_value\nR01D01,F,-3\n", "t.csv"),
    (b"id: [unclosed", "spec.yaml"), (b"a: &a [1]\nb: *a\n", "spec.yaml"), (b"{}", "spec.json"),
    (b"PK\x03\x04garbage", "t.xlsx"), (b"<html></html>", "t.exe"), (TABLE.encode(), "../t.csv"),
    (b"x", ""), (b"x", "a\x00.csv"),
]
FILE_FIELDS = ["table", "spec_file", "link_spec_0", "link_table_0", "link_spec_3"]
# the English words a sentence cannot do without (codes, ids and names are not sentences)
ENGLISH = re.compile(r"\b(the|is|are|was|not|must|be|of|and|this|that|field|valid|required|"
                     r"choose|only|should|cannot|with|from|than|value|characters|length|"
                     r"between|least|please|invalid|missing|expected|give|write|line)\b", re.I)


def _spec_yaml(spec: dict[str, Any]) -> bytes:
    import yaml

    return yaml.safe_dump(spec, allow_unicode=True).encode()


# A valid form per route (what a person would send), which the fuzzer may keep and mutate so that
# examples reach the view code behind the form's own validation.
_NEW = {"kind": "initial", "previous_id": "", "method": "suppression", "secondary": "optimal"}
BASES: dict[str, list[tuple[dict[str, Any], dict[str, tuple[bytes, str]]]]] = {
    "ui.new_release": [
        (_NEW, {"table": (TABLE.encode(), "table.csv"), "spec_file": (_spec_yaml(SPEC), "s.yaml")}),
        ({**_NEW, "series": "fuzz-form", "title_kk": "Кесте", "title_ru": "Таблица",
          "title_en": "Table", "dimensions": "region: _T=R01,R02; R01=R01D01,R01D02; "
          "R02=R02D01,R02D02\nsex: F, M", "min_frequency": "5"},
         {"table": (TABLE.encode(), "table.csv")}),
        ({**_NEW, "method": "noise", "epsilon": "9", "series": "fuzz-noise", "title_kk": "Кесте",
          "dimensions": "sex: F, M"}, {"table": (b"sex,obs_value\nF,3\nM,4\n", "t.csv")}),
        ({**_NEW, "kind": "correction", "previous_id": "PUBLISHED", "notice": "жөндеу"},
         {"table": (TABLE.encode(), "table.csv"),
          "spec_file": (_spec_yaml({**SPEC, "id": "fuzz-published", "version": "1.0.1"}),
                        "s.yaml")}),
    ],
    "ui.change": [({"reason": "жаңа кесте"}, {"table": (TABLE.encode(), "table.csv")})],
    "ui.release_action": [({"comment": "ok", "reason": "себебі"}, {}),
                          ({"embargo_at": "2030-01-01T10:00", "reason": "ok"}, {})],
    "ui.users": [({"username": "fuzz-user", "display_name": "Fuzz", "password":
                   "Kökšetau-Ертіс-2031!", "roles": ["preparer"]}, {})],
    "ui.account": [({"what": "token", "token-name": "ci"}, {}),
                   ({"what": "language", "lang-language": "ru"}, {})],
    "requests.new": [({"email": "a@example.org", "requester_kind": "journalist",
                       "title": "Кесте", "purpose": "мақала", "may_publish": "yes",
                       "region_level": "region"}, {})],
    "requests.staff_action": [({"assignee": "1", "reason": "other", "text": "ok",
                                "title": "Кесте", "public-release": "PUBLISHED",
                                "private-release": "PUBLISHED"}, {})],
    "sources.index": [({"source_id": "fuzz-source", "total": "4"}, {})],
    "sources.set_budget": [({"total": "3", "reason": "жаңа жыл"}, {})],
}


# Refusals still built as English f-strings in publisher/web/forms.py (parse_dimensions,
# spec_from_form), a file this test's author may not edit: reported to the lead. Delete this
# list once they are R_ templates; the test then checks them like every other refusal.
def _all_subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_all_subclasses(sub)]
    return out


def _field_names() -> list[str]:
    """Every field name of every form of the UI (and the prefixed and hand-read ones)."""
    from flask_wtf import FlaskForm
    from wtforms.fields.core import UnboundField

    names = {name for cls in _all_subclasses(FlaskForm) for name, v in vars(cls).items()
             if isinstance(v, UnboundField)}
    names |= {"what", "token-name", "lang-language", "public-release", "private-release",
              "public-text", "private-text", "held_table", "held_spec_file", "next",
              "show_accuracy"}
    return sorted(names - set(FILE_FIELDS))


@pytest.fixture(scope="module")
def world(tmp_path_factory):  # noqa: ANN001, ANN201
    """An app on SQLite with the three people, a protected and a published release, a token."""
    from publisher.app import create_app

    tmp = tmp_path_factory.mktemp("ui-fuzz")
    url = f"sqlite:///{tmp / 'fuzz.db'}"
    upgrade(url)
    engine = make_engine(url)
    factory = session_factory(engine)
    ids: dict[str, Any] = {}
    with transaction(factory) as s:
        people = {}
        for name, roles in (("prep", ["preparer"]), ("appr", ["approver"]),
                            ("admin", ["admin"])):
            u = User(username=name, display_name=name, password_hash="", active=True)
            u.set_password(f"{name}-password-1")
            u.set_roles(roles)
            s.add(u)
            people[name] = u
        s.flush()
        tok, _clear = ApiToken.issue(people["prep"], "fuzz")
        s.add(tok)
        draft = wf.create_release(s, people["prep"], SPEC, upload(TABLE), settings=SETTINGS)
        pub = wf.create_release(s, people["prep"], {**SPEC, "id": "fuzz-published"},
                                upload(TABLE), settings=SETTINGS)
        wf.submit(s, people["prep"], pub)
        wf.approve(s, people["appr"], pub)
        wf.schedule(s, people["appr"], pub, utcnow())
        wf.mark_published(s, pub, url="http://ckan.example/dataset/x", target="ckan",
                          dataset_name="x")
        s.flush()
        ids.update(release=draft.id, published=pub.id, token=tok.id,
                   users=[u.id for u in people.values()])
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "ui-fuzz-" + "k" * 32,
                      "WTF_CSRF_ENABLED": True, "HUEY_IMMEDIATE": True, "PUBLISH_ENQUEUE": False,
                      "PROTECT_ENQUEUE": False, "WORK_DIR": str(tmp / "work"),
                      "OUTPUT_DIR": str(tmp / "out"), "CKAN_URL": None, "CKAN_API_TOKEN": None,
                      "MAIL_SUPPRESS_SEND": True})
    yield app, factory, ids
    engine.dispose()


class People:
    """One signed-in browser per role (signed in again when a fuzzed post ended its session)."""

    def __init__(self, app: Any, factory: Any) -> None:
        self.app, self.factory = app, factory
        self.clients: dict[str, Any] = {}

    def client(self, role: str) -> tuple[Any, str]:
        """(browser, its CSRF token); ``anonymous`` has no session."""
        if role == "anonymous":
            c = self.app.test_client()
            return c, CSRF.search(c.get("/login").get_data(as_text=True)).group(1)
        c = self.clients.get(role)
        if c is not None:
            page = c.get("/account?lang=en")
            if page.status_code == 200:
                return c, CSRF.search(page.get_data(as_text=True)).group(1)
        with transaction(self.factory) as s:  # a fuzzed post may have deactivated someone
            s.execute(update(User).values(active=True))
        c = self.app.test_client()
        name = PEOPLE[role]
        token = CSRF.search(c.get("/login").get_data(as_text=True)).group(1)
        r = c.post("/login", data={"username": name, "password": f"{name}-password-1",
                                   "csrf_token": token})
        assert r.status_code == 302, r.get_data(as_text=True)[:500]
        self.clients[role] = c
        page = c.get("/account?lang=en")
        return c, CSRF.search(page.get_data(as_text=True)).group(1)


def _rules(app: Any) -> list[Any]:
    return [r for r in app.url_map.iter_rules()
            if "POST" in (r.methods or ()) and r.endpoint.split(".")[0] not in
            ("api", "public_api")]


def _arg_values(rule: Any, ids: dict[str, Any]) -> dict[str, st.SearchStrategy]:
    """Path arguments: ids that exist, that do not, past 32 and 64 bits; words that are
    actions and words that are not."""
    big = [0, 1, 2, 7, 2**31 - 1, 2**31, 2**63, 10**30]
    actions = ["submit", "approve", "send-back", "unschedule", "withdraw", "schedule", "retry",
               "cancel", "assign", "ask", "accept", "decline", "retitle", "answer-public",
               "answer-private", "x", "..", "<b>", "a" * 300, "\x00", "%00"]
    out: dict[str, st.SearchStrategy] = {}
    for arg in rule.arguments:
        conv = rule._converters[arg].__class__.__name__
        if conv == "IntegerConverter":
            known = {"release_id": [ids["release"], ids["published"]], "token_id": [ids["token"]],
                     "user_id": ids["users"]}.get(arg, [])
            out[arg] = st.sampled_from(known + big)
        elif arg == "action":
            out[arg] = st.sampled_from(actions)
        else:
            out[arg] = st.sampled_from(["x", "a" * 300, "<b>", "ok-token", "\x00", "é", "1"])
    return out


def _path(rule: Any, args: dict[str, Any]) -> str:
    path = rule.rule
    for name, value in args.items():
        path = re.sub(rf"<(?:[a-z]+:)?{name}>", quote(str(value), safe=""), path)
    return path


VALUES = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40),
                   st.integers(min_value=-(2**70), max_value=2**70).map(str),
                   st.lists(st.sampled_from(HOSTILE), min_size=2, max_size=3))


def _sent_strings(fields: dict[str, Any], files: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for v in fields.values():
        out += v if isinstance(v, list) else [v]
    out += [name for _data, name in files.values()]
    return sorted((x for x in out if x and len(x) < 5000), key=len, reverse=True)


def _messages(html: str) -> list[str]:
    """Error messages on a page: flashed refusals and the error page's message."""
    import html as htmllib

    found = re.findall(r'<p class="flash error"[^>]*>(.*?)</p>', html, re.S)
    return [htmllib.unescape(re.sub(r"<[^>]+>", "", m)) for m in found]


def _english_in(message: str, sent: list[str]) -> list[str]:
    for s in sent:
        message = message.replace(s, " ")
        message = message.replace(repr(s), " ")
    return ENGLISH.findall(message)


def _check(resp: Any, client: Any, lang: str, sent: list[str], where: str) -> list[str]:
    """What is wrong with one answer (nothing when it is a good one)."""
    problems = []
    if resp.status_code >= 500:
        problems.append(f"{where}: HTTP {resp.status_code}")
        return problems
    messages: list[str] = []
    if resp.mimetype == "text/html":
        html = resp.get_data(as_text=True)
        if resp.status_code >= 400 and f'<html lang="{lang}">' not in html:
            m = re.search(r"<html lang=\"(\w+)\">", html)
            problems.append(f"{where}: HTTP {resp.status_code} page in "
                            f"{m.group(1) if m else '?'}, not {lang}")
        messages += _messages(html)
    with client.session_transaction() as sess:  # refusals flashed before a redirect
        messages += [m for cat, m in sess.pop("_flashes", []) if cat == "error"]
    if lang != "en":
        for m in messages:
            words = _english_in(m, sent)
            if words:
                problems.append(f"{where}: English refusal in {lang}: {m[:300]!r} ({words})")
    return problems


def test_the_fuzzer_sees_every_ui_form_route(world):  # noqa: ANN001
    app, _factory, _ids = world
    endpoints = {r.endpoint for r in _rules(app)}
    assert {"ui.login", "ui.new_release", "ui.release_action", "ui.change", "ui.users",
            "auth.deactivate_user", "requests.new", "sources.set_budget"} <= endpoints
    assert not any(e.startswith("api.") for e in endpoints) and len(endpoints) >= 20
    assert len(_field_names()) >= 40


def _post(people: People, rule: Any, role: str, lang: str, args: dict[str, Any], csrf: str,
          fields: dict[str, Any], files: dict[str, tuple[bytes, str]], multipart: bool
          ) -> list[str]:
    """Post one example; what is wrong with the answer."""
    client, token = people.client(role)
    data: dict[str, Any] = dict(fields)
    if csrf == "valid":
        data["csrf_token"] = token
    elif csrf == "forged":
        data["csrf_token"] = token[:-4] + "AAAA"
    kw: dict[str, Any] = {}
    if multipart or files:
        for name, (body, fname) in files.items():
            data[name] = (io.BytesIO(body), fname)
        kw["content_type"] = "multipart/form-data"
    path = _path(rule, args)
    where = (f"{role} POST {path[:120]} ({lang}, csrf {csrf}, fields "
             f"{ {k: (v[:40] if isinstance(v, str) else v) for k, v in fields.items()} }, "
             f"files { {k: n for k, (_b, n) in files.items()} })")
    resp = client.post(path + f"?lang={lang}", data=data, **kw)
    return _check(resp, client, lang, _sent_strings(fields, files), where)


def _bases(rule: Any, ids: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [({k: (str(ids["published"]) if v == "PUBLISHED" else v) for k, v in f.items()},
             files) for f, files in BASES.get(rule.endpoint, [])] or [({}, {})]


ROLES = ("preparer", "approver", "admin", "anonymous")


def _fuzz_route(people: People, rule: Any, role: str, args_st: st.SearchStrategy,
                bases: list[Any], fields_of: list[str]) -> Any:
    """The hypothesis test of one route posted by one role (a valid CSRF token)."""

    @given(lang=st.sampled_from(LANGS), args=args_st,
           fields=st.dictionaries(st.sampled_from(fields_of), VALUES, max_size=6),
           files=st.dictionaries(st.sampled_from(FILE_FIELDS), st.sampled_from(FILES),
                                 max_size=2),
           multipart=st.booleans(), base=st.sampled_from(bases), keep=st.booleans())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate],
              report_multiple_bugs=False)
    def run(lang, args, fields, files, multipart, base, keep):  # noqa: ANN001, ANN202, PLR0913
        if keep:  # a valid form with a few fields made hostile
            fields, files = {**base[0], **fields}, {**base[1], **files}
        problems = _post(people, rule, role, lang, args, "valid", fields, files, multipart)
        if problems:
            raise AssertionError("; ".join(problems))

    return run


def test_no_ui_post_route_answers_5xx_or_refuses_in_another_language(world):  # noqa: ANN001
    """Per route and role, hypothesis draws the rest with a valid CSRF token (else nothing
    passes the token check); a missing and a forged token are tried once per route below."""
    app, factory, ids = world
    people = People(app, factory)
    fields_of = _field_names()
    failures: list[str] = []
    rules = _rules(app)
    for rule in rules:
        args_st = st.fixed_dictionaries(_arg_values(rule, ids))
        bases = _bases(rule, ids)
        for role in ROLES:
            run = _fuzz_route(people, rule, role, args_st, bases, fields_of)
            try:
                run()
            except Exception as e:  # noqa: BLE001 - collect every route's failure
                failures.append(f"{rule.endpoint} {rule.rule} as {role}: {str(e)[:2500]}")
    for i, rule in enumerate(rules):  # the token check itself: refused in the asked language
        args = {a: ids["release"] if a.endswith("_id") else "x" for a in rule.arguments}
        fields, files = _bases(rule, ids)[0]
        for j, csrf in enumerate(("missing", "forged")):
            role, lang = ROLES[(i + j) % len(ROLES)], LANGS[(i + j) % len(LANGS)]
            failures += _post(people, rule, role, lang, args, csrf, fields, files, bool(files))
    assert not failures, f"{len(failures)} failures, {len(rules)} routes:\n\n" + \
        "\n\n".join(failures)
