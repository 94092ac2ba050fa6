"""Publication progress in the reader's language: every phrase the worker writes into the job
(``publisher.ckan``'s progress phrases, ``publisher.tasks``' outcomes and failures), the status,
step and state words of ``/releases/<id>/progress.json``, and the actor "system" of the
release's history, in kk, ru and en. The job rows are written directly (a fake progress row):
what is tested is the way from a stored English line to the page.

Needs the merged catalogue (``publisher.tasks``' outcome lines are new msgids)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from babel.support import Translations

from disclosure.errors import fill
from publisher import workflow as wf
from publisher.db import transaction
from publisher.workflow_models import PublicationJob, Release, User

from .conftest import SETTINGS, SPEC, upload
from .test_ui import client, login

ROOT = Path(__file__).resolve().parents[2]
CATALOGUES = ROOT / "publisher" / "translations"
LANGS = ("kk", "ru", "en")


def _templates(path: Path, calls: set[str]) -> list[tuple[str, list[str]]]:
    """The R_ templates of ``path`` given to a call named in ``calls`` (a progress phrase) —
    or every R_ template when ``calls`` is empty — with their placeholders."""
    tree = ast.parse(path.read_text("utf-8"))
    out: list[tuple[str, list[str]]] = []

    def r_strings(node: ast.AST) -> list[str]:
        return [n.args[0].value for n in ast.walk(node)
                if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "R_"
                and isinstance(n.args[0], ast.Constant)]

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
        if calls and name not in calls:
            continue
        if not calls and name != "R_":
            continue
        for t in (r_strings(node) if calls else [node.args[0].value]):
            out.append((t, re.findall(r"%\((\w+)\)s", t)))
    return sorted(set((t, tuple(p)) for t, p in out))  # type: ignore[arg-type]


CKAN_PHRASES = _templates(ROOT / "publisher" / "ckan.py", {"progress", "say"})
TASK_LINES = _templates(ROOT / "publisher" / "tasks.py", set())


def _params(names) -> dict[str, str]:  # noqa: ANN001
    # values as a CKAN name, a number or a status would be: no English words of their own
    return {n: f"ds-{i}-v1-0-0" if i % 2 == 0 else str(403 + i) for i, n in enumerate(names)}


def _english_words(text: str, params: dict[str, str]) -> list[str]:
    for v in params.values():
        text = text.replace(v, "")
    allowed = {"CKAN", "CKAN_URL", "CKAN_API_TOKEN", "sha256", "Ashyq", "API", "URL"}
    return [w for w in re.findall(r"[A-Za-z_][A-Za-z_0-9]{2,}", text) if w not in allowed]


@pytest.fixture
def release_id(app, store, users) -> int:  # noqa: ANN001
    with transaction(store) as s:
        r = wf.create_release(s, s.get(User, users["prep"]), SPEC, upload(), settings=SETTINGS)
        s.add(PublicationJob(release_id=r.id, status="running", step="publish", percent=40,
                             message="", attempts=1))
        return r.id


def _set_job(store, release_id: int, **values) -> None:  # noqa: ANN001
    with transaction(store) as s:
        job = s.query(PublicationJob).filter_by(release_id=release_id).one()
        for k, v in values.items():
            setattr(job, k, v)


def test_the_worker_phrases_are_found():
    # the parser finds the phrases (so the test below covers them all)
    assert len(CKAN_PHRASES) >= 15 and ("verifying uploads (authorized download + sha256)", ()) \
        in CKAN_PHRASES
    assert ("verified", ()) in TASK_LINES and len(TASK_LINES) >= 5


@pytest.mark.parametrize("lang", LANGS)
def test_every_progress_line_reaches_the_page_in_its_language(app, store, release_id, lang):
    tr = Translations.load(str(CATALOGUES), [lang])
    c = client(app)
    login(c, "prep")
    wrong = []
    for template, names in CKAN_PHRASES + TASK_LINES:
        params = _params(names)
        stored = fill(template, params)  # what the worker writes: the English line
        _set_job(store, release_id, message=stored)
        p = c.get(f"/releases/{release_id}/progress.json?lang={lang}").get_json()
        expected = fill(template, params, tr.gettext)
        if p["message"] != expected:
            wrong.append((template, p["message"], expected))
        elif lang != "en" and _english_words(p["message"], params):
            wrong.append((template, p["message"], "untranslated"))
    assert not wrong, "\n".join(map(repr, wrong))


@pytest.mark.parametrize("lang", LANGS)
def test_a_failure_line_keeps_its_code_and_translates_its_reason(app, store, release_id, lang):
    tr = Translations.load(str(CATALOGUES), [lang])
    c = client(app)
    login(c, "prep")
    reason = "cannot reach CKAN at %(url)s"
    _set_job(store, release_id, status="failed",
             message="package_create: connection: " + fill(reason, {"url": "http://ckan.test"}))
    p = c.get(f"/releases/{release_id}/progress.json?lang={lang}").get_json()
    assert p["message"] == "package_create: connection: " + fill(
        reason, {"url": "http://ckan.test"}, tr.gettext)
    assert p["status_label"] == tr.gettext("failed")
    if lang != "en":
        assert "cannot reach" not in p["message"]


@pytest.mark.parametrize("lang", LANGS)
def test_status_step_and_state_words(app, store, release_id, lang):
    from publisher.web import labels
    from publisher.workflow import WITHDRAW_STEP

    tr = Translations.load(str(CATALOGUES), [lang])
    c = client(app)
    login(c, "prep")
    english = {"waiting for the embargo", "building the data package", "publishing",
               "recording", "done", "withdrawing from the catalogue"}
    for step in [*labels.STEP, WITHDRAW_STEP]:
        for status in labels.JOB:
            _set_job(store, release_id, step=step, status=status, message="")
            p = c.get(f"/releases/{release_id}/progress.json?lang={lang}").get_json()
            assert p["status_label"] == tr.gettext(str(labels.JOB[status]._args[0]))
            assert p["state_label"] == tr.gettext(p["state"]) and p["state"] == "protected"
            if lang != "en":
                assert p["step_label"] not in english and p["step_label"], (step, p)
                assert p["status_label"] != status or status == "none"
            else:
                assert p["step_label"] in english


@pytest.mark.parametrize("lang", LANGS)
def test_the_system_actor_of_the_history_is_a_word_of_the_page(app, store, release_id, lang):
    tr = Translations.load(str(CATALOGUES), [lang])
    with transaction(store) as s:
        wf.audit(s, None, "publish_failed", release=s.get(Release, release_id),
                 reason="unexpected error (TimeoutError); will retry")
    c = client(app)
    login(c, "prep")
    page = c.get(f"/releases/{release_id}?lang={lang}").get_data(as_text=True)
    history = page[page.index('id="history"'):]
    assert f"<td>{tr.gettext('system')}</td>" in history
    if lang != "en":
        assert "<td>system</td>" not in history
