"""In a real browser (issue 18): a journalist asks for a table in Russian, confirms the address,
a statistician triages it (assign, question, the requester answers, accept), answers it privately
with an approved release, the requester downloads the protected package, someone else with the
link gets nothing, and the public register shows the request; at 375 px nothing overflows."""

from __future__ import annotations

import re
import zipfile

import pytest
from sqlalchemy import select

from publisher import workflow as wf
from publisher.db import transaction
from publisher.workflow_models import User
from tests.web.conftest import SECRET_CELLS, SPEC, TABLE, upload
from tests.web.test_requests import Inbox, free_port

from .conftest import ARTIFACTS

pytestmark = pytest.mark.browser
URL = re.compile(r"http://\S+")
REQUESTER = "zhurnalist@media.example.kz"


@pytest.fixture
def smtp():  # noqa: ANN201
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    inbox.port = free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    ctl.start()
    try:
        yield inbox
    finally:
        ctl.stop()


def _link(inbox: Inbox, part: str) -> str:
    msg = inbox.last(REQUESTER)
    text = msg.get_body(("plain",)).get_content()
    return next(u for u in URL.findall(text) if part in u)


def _login(page, base: str, user: str) -> None:  # noqa: ANN001
    page.goto(f"{base}/login?lang=en")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", f"{user}-password")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#logout")


def _no_overflow(page) -> bool:  # noqa: ANN001
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


def _approved_release(app) -> int:  # noqa: ANN001
    factory = app.extensions["ashyq.sessions"]
    settings = {"EPSILON_CEILING": 5.0, "EPSILON_BUDGET": 4.0}
    spec = {**SPEC, "id": "requested-table"}
    with transaction(factory) as s:
        prep = s.scalar(select(User).where(User.username == "preparer1"))
        appr = s.scalar(select(User).where(User.username == "approver1"))
        r = wf.create_release(s, prep, spec, upload(TABLE), settings=settings)
        wf.submit(s, prep, r)
        wf.approve(s, appr, r)
        return r.id


def test_request_answered_privately_end_to_end(browser, live, smtp, tmp_path):
    base, app = live["base"], live["app"]
    app.config.update({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp.port,
                       "SMTP_FROM": "office@stat.example.kz", "REQUEST_FORM_MIN_SECONDS": 1,
                       "REQUEST_STANDARD_DAYS": 20})
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []

    # the requester, in Russian, on a phone
    rctx = browser.new_context(locale="ru-RU", viewport={"width": 375, "height": 800},
                               accept_downloads=True)
    rpage = rctx.new_page()
    rpage.on("pageerror", lambda e: errors.append(str(e)))
    rpage.goto(f"{base}/requests/new?lang=ru")
    assert _no_overflow(rpage)
    rpage.fill("input[name=email]", REQUESTER)
    rpage.fill("input[name=organisation]", "Редакция «Пример»")
    rpage.select_option("select[name=requester_kind]", "media")
    rpage.fill("input[name=title]", "Дети-мигранты по районам и полу, 2025")
    rpage.fill("textarea[name=breakdowns]", "район, пол")
    rpage.select_option("select[name=region_level]", "district")
    rpage.fill("textarea[name=purpose]", "Статья о доступе к школам")
    rpage.check("input[name=may_publish][value=no]")
    rpage.wait_for_timeout(1200)  # the signed time token: a person takes more than a second
    rpage.keyboard.press("Tab")
    rpage.click("#send-request")
    rpage.wait_for_selector("#sent-message")
    assert "Проверьте почту" in rpage.inner_text("h1")
    rpage.screenshot(path=str(ARTIFACTS / "request-sent-375.png"), full_page=True)

    rpage.goto(_link(smtp, "/requests/confirm/"))
    rpage.click("#confirm-request")
    rpage.wait_for_selector("#deadline")
    track_url = rpage.url
    assert "зарегистрирован" in rpage.inner_text("#request-state")
    assert _no_overflow(rpage)

    # the statistician's queue and triage
    sctx = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    spage = sctx.new_page()
    spage.on("pageerror", lambda e: errors.append(str(e)))
    _login(spage, base, "approver1")
    spage.goto(f"{base}/staff/requests")
    assert spage.locator("#queue tbody tr").count() == 1
    spage.screenshot(path=str(ARTIFACTS / "request-queue.png"), full_page=True)
    spage.click("#queue a >> nth=0")
    spage.wait_for_selector("#triage")
    spage.select_option("#assignee-select", label="Preparer1")
    spage.click("#assign")
    spage.wait_for_selector("text=Assigned.")
    assert spage.inner_text("#assignee") == "Preparer1"
    spage.fill("#question-text", "Which year exactly: 2025 or the school year 2024/25?")
    spage.click("#ask")
    spage.wait_for_selector("text=The question was sent to the requester.")

    rpage.goto(track_url)
    assert "Which year exactly" in rpage.inner_text("#thread")
    rpage.fill("#reply-form textarea", "Календарный 2025 год")
    rpage.click("#send-reply")
    rpage.wait_for_selector("text=Календарный 2025 год")

    spage.reload()
    assert "Календарный 2025 год" in spage.inner_text("#thread")
    spage.click("#accept")
    spage.wait_for_selector("text=Accepted.")
    spage.screenshot(path=str(ARTIFACTS / "request-staff-page.png"), full_page=True)

    # the table is prepared as an ordinary release (four eyes) and answered privately
    release_id = _approved_release(app)
    spage.reload()
    spage.select_option("#private-release", str(release_id))
    spage.click("#answer-private")
    spage.wait_for_selector("text=Answered; the requester was sent a private download link.")
    assert "ответ дан" not in spage.inner_text("#request-state")  # the staff page is in English

    # the requester downloads; somebody else with the link gets nothing
    download_url = _link(smtp, "/requests/download/")
    octx = browser.new_context(locale="en-US")
    opage = octx.new_page()
    opage.goto(download_url)
    opage.fill("input[name=email]", "someone@else.example")
    opage.click("#download")
    opage.wait_for_selector("#error-message")
    assert "another email address" in opage.inner_text("#error-message")
    octx.close()

    rpage.goto(download_url)
    rpage.fill("input[name=email]", REQUESTER.upper().replace("@MEDIA.EXAMPLE.KZ",
                                                              "@media.example.kz"))
    with rpage.expect_download() as info:
        rpage.click("#download")
    path = tmp_path / "answer.zip"
    info.value.save_as(path)
    with zipfile.ZipFile(path) as z:
        assert "datapackage.json" in z.namelist()
        rows = z.read("data/requested-table.csv").decode().splitlines()
    for (region, sex) in SECRET_CELLS:
        line = next(x for x in rows if x.startswith(f"{region},{sex},"))
        assert line.split(",")[2] == "", "a suppressed cell was delivered with its value"

    spage.reload()
    log = spage.inner_text("#downloads")
    assert "served" in log and "wrong_address" in log

    # the public register: the request, its outcome, no personal data
    rpage.goto(f"{base}/requests/register")
    reg = rpage.inner_text("main")
    assert "Дети-мигранты по районам и полу, 2025" in reg and "ответ дан" in reg
    assert "Пример" not in reg and REQUESTER not in reg and "школам" not in reg
    assert _no_overflow(rpage)  # the wide table scrolls inside its box
    rpage.screenshot(path=str(ARTIFACTS / "request-register-375.png"), full_page=True)
    rctx.close()
    sctx.close()
    assert not errors, errors
