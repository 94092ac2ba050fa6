"""In a real browser: a preparer uploads and submits, another user approves and schedules, the
worker publishes (local CKAN when running, else the local folder), the public page opens."""

from __future__ import annotations

import re
import uuid

import pytest
import yaml

from tests.web.conftest import SPEC

from .conftest import ARTIFACTS

pytestmark = pytest.mark.browser

# min_frequency 100: the cells 87 and 93 are primary-sensitive and must never be shown.
TABLE = ("region,sex,obs_value\nR01D01,F,1210\nR01D01,M,1330\nR01D02,F,1120\nR01D02,M,87\n"
         "R02D01,F,93\nR02D01,M,1440\nR02D02,F,1550\nR02D02,M,1660\n")
SECRET = re.compile(r"(?<![\w.])(87|93)(?![\w.])")


def _login(page, base: str, user: str) -> None:
    page.goto(f"{base}/login?lang=en")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", f"{user}-password")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#logout")


def test_prepare_approve_publish_and_open_the_public_page(browser, live):
    base, tmp = live["base"], live["tmp"]
    series = f"browser-{uuid.uuid4().hex[:8]}"
    spec = {**SPEC, "id": series, "title": {"kk": "Браузер сынағы", "ru": "Проверка в браузере",
                                             "en": "Browser check & \"quotes\""},
            "disclosure": {"min_frequency": 100, "secondary": "optimal"}}
    (tmp / "spec.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), "utf-8")
    (tmp / "table.csv").write_text(TABLE, "utf-8")
    ARTIFACTS.mkdir(exist_ok=True)

    ctx = browser.new_context(locale="en-US")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _login(page, base, "preparer1")
    page.click("#nav-new")
    page.set_input_files("input[name=table]", str(tmp / "table.csv"))
    page.set_input_files("input[name=spec_file]", str(tmp / "spec.yaml"))
    page.click("#upload")
    page.wait_for_selector("#release-state")
    # the worker protects it in the background; the page polls its progress bar and reloads
    # itself when the job is done
    page.wait_for_function(
        "() => { const s = document.getElementById('release-state');"
        " return s && s.textContent.trim() === 'protected'; }",
        timeout=90_000)
    assert page.locator("#protection").count() == 0
    assert page.locator("td.mark-primary").count() >= 2  # the suppressed cells, marked
    assert page.inner_text("#release-title") == 'Browser check & "quotes"'
    release_url = page.url
    page.fill("textarea[name=comment]", "ready for review")
    page.click("#submit-release")
    page.wait_for_selector("text=Submitted for review.")
    assert page.locator("#approve-release").count() == 0  # not for the preparer
    page.click("#logout")
    ctx.close()

    ctx = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    _login(page, base, "approver1")
    page.goto(release_url)
    page.wait_for_selector("#approve-release")
    page.screenshot(path=str(ARTIFACTS / "review-page.png"), full_page=True)
    text = page.content()
    assert not SECRET.search(page.inner_text("#cells")), "a raw value on the review page"
    assert "<svg" in text and "Disclosure report" in text
    page.click("#approve-release")
    page.wait_for_selector("text=Approved.")
    assert page.inner_text("#release-state") == "approved"
    page.click("#schedule-release")  # empty embargo: publish now
    page.wait_for_selector("#progress")
    # the page polls the progress (app.js) and reloads itself when the state changes
    try:
        page.wait_for_function(
            "() => { const s = document.getElementById('release-state');"
            " return s && s.textContent === 'published'; }", timeout=120_000)
    except Exception:
        pytest.fail("not published: " + page.inner_text("#progress"))
    assert page.inner_text("#progress-status") == "done"
    page.click("#public-link")
    page.wait_for_selector("#public-title")
    public = page.inner_text("body")
    assert series in page.url and "How to cite" in public and "Downloads" in public
    assert not SECRET.search(public)
    if live["ckan"]:
        href = page.get_attribute("#ckan-link", "href")
        assert href and "/dataset/" in href
    page.screenshot(path=str(ARTIFACTS / "public-page.png"), full_page=True)
    # the language picker
    page.click("a[hreflang=ru]")
    page.wait_for_selector("text=Как цитировать")
    page.click("a[hreflang=kk]")
    page.wait_for_selector("text=Қалай сілтеме жасау керек")
    ctx.close()
    assert not errors, errors


def test_protection_progress_bar_updates_and_cancel(browser, live):
    """The progress bar of a running protection updates without a reload (phase, cells,
    primaries left), is an accessible progressbar, and Cancel leaves a draft."""
    from tests.web.test_protect_job import _slow

    base, tmp = live["base"], live["tmp"]
    spec, table = _slow()
    spec = {**spec, "id": f"slow-{uuid.uuid4().hex[:8]}"}
    (tmp / "slow.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), "utf-8")
    (tmp / "slow.csv").write_text(table, "utf-8")
    ctx = browser.new_context(locale="en-US", viewport={"width": 375, "height": 800})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _login(page, base, "preparer1")
    page.goto(f"{base}/releases/new")
    page.set_input_files("input[name=table]", str(tmp / "slow.csv"))
    page.set_input_files("input[name=spec_file]", str(tmp / "slow.yaml"))
    page.click("#upload")
    page.wait_for_selector("#protection")
    bar = page.locator("[role=progressbar]")
    assert bar.count() == 1 and bar.get_attribute("aria-valuemin") == "0"
    loads: list[str] = []
    page.on("load", lambda: loads.append(page.url))
    # the worker reaches secondary suppression: the page shows it without reloading
    page.wait_for_function(
        "() => { const p = document.getElementById('protection-phase');"
        " return p && p.textContent.includes('secondary'); }",
        timeout=60_000)
    assert not loads, "the page reloaded to show progress"
    assert int(bar.get_attribute("aria-valuenow")) >= 30
    assert page.inner_text("#protection-cells") == str(101 * 3 * 4)
    # primaries left: reported while the heuristic runs (after each round it may already be 0)
    primaries = int(page.inner_text("#protection-primaries"))
    assert primaries > 0 and 0 <= int(page.inner_text("#protection-left")) <= primaries
    page.screenshot(path=str(ARTIFACTS / "protection-progress.png"), full_page=True)
    page.click("#cancel-protection")
    page.wait_for_selector("#retry-protection", timeout=30_000)
    assert page.inner_text("#release-state") == "draft"
    assert page.inner_text("#protection-status") == "cancelled"
    # the progress section fits a 375 px screen
    assert page.evaluate("() => { const e = document.getElementById('protection');"
                         " return e.scrollWidth <= e.clientWidth + 1; }")
    ctx.close()
    assert not errors, errors
