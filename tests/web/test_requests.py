"""Data requests (issue 18): the public form, confirmation, the deadline in working days with
Kazakhstan's holidays, triage, the answer as a release (public or private), the private
download, the register, reminders — on SQLite and PostgreSQL, with email through a local SMTP
server (aiosmtpd) started here."""

from __future__ import annotations

import email
import email.policy
import io
import re
import socket
import zipfile
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from publisher import mail
from publisher import requests as rq
from publisher import workflow as wf
from publisher.db import transaction
from publisher.request_models import (
    DataRequest,
    RequestConfirmation,
    RequestDownload,
    RequestMail,
)
from publisher.workflow_models import Release, User, utcnow

from .conftest import SECRET_CELLS, SETTINGS, SPEC, TABLE, upload

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
TS = re.compile(r'id="ts" name="ts" type="hidden" value="([^"]+)"')
URL = re.compile(r"http://\S+")


# -- a local SMTP server ---------------------------------------------------------------------------

class Inbox:
    """What the SMTP server received: (recipients, parsed message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for rcpt, m in self.messages if address in rcpt]

    def last(self, address: str) -> email.message.EmailMessage:
        got = self.to(address)
        assert got, f"no mail to {address}"
        return got[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():  # noqa: ANN201
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    inbox.port = port
    try:
        yield inbox
    finally:
        ctl.stop()


def body(msg: email.message.EmailMessage) -> str:
    return msg.get_body(("plain",)).get_content()


def links(msg: email.message.EmailMessage) -> list[str]:
    return URL.findall(body(msg))


def settings_for(smtp: Inbox, tmp_path, **extra) -> dict:  # noqa: ANN001
    return {**SETTINGS, "SECRET_KEY": "test", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp.port,
            "SMTP_FROM": "office@stat.example.kz", "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
            "REQUEST_STANDARD_DAYS": 5, "HEAD_OF_UNIT_EMAIL": "head@stat.example.kz",
            "REQUEST_TIMEZONE": "Asia/Almaty", "REQUEST_CONFIRM_HOURS": 48,
            "REQUEST_DOWNLOAD_DAYS": 14, "REQUEST_RATE_PER_EMAIL": 3,
            "REQUEST_RATE_PER_ADDRESS": 10, "REQUEST_FORM_MIN_SECONDS": 0,
            "REQUEST_FORM_MAX_HOURS": 12, "WORK_DIR": str(tmp_path / "work"),
            "DEFAULT_LANGUAGE": "kk", **extra}


@pytest.fixture
def web(app, smtp, tmp_path):  # noqa: ANN001, ANN201
    app.config.update(settings_for(smtp, tmp_path, WORK_DIR=app.config["WORK_DIR"]))
    return app


def client(app, lang="en"):  # noqa: ANN001, ANN201
    c = app.test_client()
    c.environ_base["HTTP_ACCEPT_LANGUAGE"] = lang
    return c


def csrf(c, path: str) -> str:  # noqa: ANN001
    return CSRF.search(c.get(path).get_data(as_text=True)).group(1)


def login(c, username: str):  # noqa: ANN001, ANN201
    return c.post("/login", data={"username": username, "password": f"{username}-password-1",
                                  "csrf_token": csrf(c, "/login")})


FORM = {"email": "Aigerim@NGO.example.kz", "contact_name": "Aigerim", "organisation": "Kömek NGO",
        "requester_kind": "ngo", "title": "Migrant children by district and sex, 2025",
        "variables": "children", "breakdowns": "district, sex", "period": "2025",
        "region_level": "district", "details": "", "purpose": "A report on school access",
        "may_publish": "no", "website": ""}


def submit(c, **over):  # noqa: ANN001, ANN201
    page = c.get("/requests/new").get_data(as_text=True)
    data = {**FORM, "csrf_token": CSRF.search(page).group(1), "ts": TS.search(page).group(1),
            **over}
    return c.post("/requests/new", data=data)


def confirm_link(smtp: Inbox, address: str) -> str:
    return next(u for u in links(smtp.last(address)) if "/requests/confirm/" in u)


def path_of(url: str) -> str:
    return url.removeprefix("http://127.0.0.1:5000")


def approved_release(store, users, spec=SPEC, table=TABLE) -> int:  # noqa: ANN001
    with transaction(store) as s:
        r = wf.create_release(s, s.get(User, users["prep"]), spec, upload(table),
                              settings=SETTINGS)
        wf.submit(s, s.get(User, users["prep"]), r)
        wf.approve(s, s.get(User, users["appr"]), r)
        return r.id


def published_release(store, users, spec) -> int:  # noqa: ANN001
    rid = approved_release(store, users, spec)
    with transaction(store) as s:
        r = s.get(Release, rid)
        wf.schedule(s, s.get(User, users["appr"]), r, utcnow() - timedelta(seconds=1))
        wf.mark_published(s, r, url="file:///x", target="local", dataset_name=spec["id"])
    return rid


# -- the calendar ----------------------------------------------------------------------------------

def test_working_days_skip_weekends_and_kazakh_holidays():
    assert not rq.is_working_day(date(2026, 12, 16))  # Independence Day, a Wednesday
    assert rq.is_working_day(date(2026, 12, 15)) and rq.is_working_day(date(2026, 12, 17))
    assert not rq.is_working_day(date(2026, 12, 19))  # Saturday
    # Monday 14 December + 5 working days: 15, (16 holiday), 17, 18, 21, 22
    assert rq.add_working_days(date(2026, 12, 14), 5) == date(2026, 12, 22)
    assert rq.add_working_days(date(2026, 12, 7), 5) == date(2026, 12, 14)  # no holiday
    assert rq.working_days_between(date(2026, 12, 14), date(2026, 12, 22)) == 5
    # Nauryz: 21-25 March 2026 (with the days moved from the weekend)
    assert rq.add_working_days(date(2026, 3, 20), 1) == date(2026, 3, 26)


def test_deadline_with_a_frozen_clock_across_independence_day(store, users, smtp, tmp_path):
    s_ = settings_for(smtp, tmp_path)
    monday = datetime(2026, 12, 14, 5, 0, tzinfo=UTC)  # 10:00 in Astana
    with transaction(store) as s:
        req = rq.submit_request(s, rq.RequestInput(email="a@uni.example.kz",
                                                   requester_kind="academia", title="T",
                                                   purpose="P", language="ru"),
                                settings=s_, client_address="10.0.0.1", now=monday)
        rq.deliver(s, s_, now=monday)
        rid = req.id
    token = confirm_link(smtp, "a@uni.example.kz").rsplit("/", 1)[1]
    with transaction(store) as s:
        req = rq.confirm(s, token, settings=s_, now=monday + timedelta(minutes=5))
        assert req.deadline == date(2026, 12, 22)  # not the 21st: the 16th is a holiday
        rq.deliver(s, s_, now=monday)
    mail_ru = smtp.last("a@uni.example.kz")
    assert "зарегистрирован" in mail_ru["Subject"] and "22 декабря 2026" in body(mail_ru)

    # confirmed at 20:00 UTC on the 14th = 01:00 on the 15th in Astana: the office's day counts
    with transaction(store) as s:
        other = rq.submit_request(s, rq.RequestInput(email="b@uni.example.kz",
                                                     requester_kind="media", title="T2",
                                                     purpose="P"),
                                  settings=s_, client_address="10.0.0.2", now=monday)
        clear = rq.issue_confirmation(s, other, s_, now=monday)
        late = rq.confirm(s, clear, settings=s_, now=datetime(2026, 12, 14, 20, 0, tzinfo=UTC))
        assert late.deadline == date(2026, 12, 23)
        late_id = late.id
        # assignee with an email: reminded at 75% (4 of 5 working days: on Monday 21st)
        rq.set_staff_email(s, s.get(User, users["prep"]), "prep@stat.example.kz")
        for r in (s.get(DataRequest, rid), s.get(DataRequest, late_id)):
            rq.assign(s, s.get(User, users["appr"]), r, users["prep"], now=monday)

    def remind_on(day: datetime) -> rq.RemindResult:
        with transaction(store) as s:
            return rq.remind(s, s_, now=day)

    assert remind_on(datetime(2026, 12, 18, 6, 0, tzinfo=UTC)).reminded == 0  # 3 days: too early
    res = remind_on(datetime(2026, 12, 21, 6, 0, tzinfo=UTC))
    assert res.reminded == 1 and res.sent >= 1  # the first request: 4 of 5 days gone
    reminder = smtp.last("prep@stat.example.kz")
    assert f"no. {rid}" in reminder["Subject"] or str(rid) in reminder["Subject"]
    assert remind_on(datetime(2026, 12, 21, 7, 0, tzinfo=UTC)).reminded == 0  # only once
    assert remind_on(datetime(2026, 12, 22, 6, 0, tzinfo=UTC)).reminded == 1  # the second one
    assert not smtp.to("head@stat.example.kz")
    res = remind_on(datetime(2026, 12, 23, 6, 0, tzinfo=UTC))  # the first is overdue now
    assert res.overdue == 1
    head = smtp.last("head@stat.example.kz")
    assert "Prep" in body(head)  # the assignee is named; in the office's default language (kk)
    assert remind_on(datetime(2026, 12, 24, 6, 0, tzinfo=UTC)).overdue == 1  # the second
    assert remind_on(datetime(2026, 12, 25, 6, 0, tzinfo=UTC)).overdue == 0  # each once
    with store() as s:
        queue = rq.staff_queue(s, s.get(User, users["appr"]), s_,
                               now=datetime(2026, 12, 24, 6, 0, tzinfo=UTC))
        assert [row.req.id for row in queue] == [rid, late_id]  # the nearest deadline first
        assert all(row.overdue for row in queue) and queue[0].days_left == -2


# -- the whole way through the web -----------------------------------------------------------------

def test_request_confirm_triage_answer_privately_and_download(web, store, users, smtp):
    anon = client(web, "ru")
    r = submit(anon)
    assert r.status_code == 302 and "/requests/sent/" in r.headers["Location"]
    sent = anon.get(r.headers["Location"]).get_data(as_text=True)
    assert "A…@ngo.example.kz" in sent or "A…@NGO.example.kz" in sent
    address = "Aigerim@ngo.example.kz"  # the domain normalised to lower case
    confirm_mail = smtp.last(address)
    assert confirm_mail["Subject"].startswith("Подтвердите")  # the requester's language
    url = confirm_link(smtp, address)
    page = anon.get(path_of(url))
    assert page.status_code == 200 and "confirm-request" in page.get_data(as_text=True)
    r = anon.post(path_of(url), data={"csrf_token": CSRF.search(page.get_data(as_text=True))
                                      .group(1)})
    assert r.status_code == 302
    track = r.headers["Location"]
    tracked = anon.get(track).get_data(as_text=True)
    assert "deadline" in tracked and "зарегистрирован" in tracked
    track_url = next(u for u in links(smtp.last(address)) if "/requests/" in u)
    assert path_of(track_url) == track

    # the same confirmation link again: a clear page, the request is kept
    again = anon.get(path_of(url))
    assert again.status_code == 409 and "уже использована" in again.get_data(as_text=True)

    staff = client(web)
    login(staff, "appr")
    queue = staff.get("/staff/requests").get_data(as_text=True)
    with store() as s:
        rid = s.scalar(select(DataRequest.id))
    assert f'id="queue-{rid}"' in queue
    detail = staff.get(f"/staff/requests/{rid}").get_data(as_text=True)
    token = CSRF.search(detail).group(1)
    r = staff.post(f"/staff/requests/{rid}/assign", data={"csrf_token": token,
                                                          "assignee": str(users["prep"])})
    assert r.status_code == 302
    r = staff.post(f"/staff/requests/{rid}/ask", data={"csrf_token": token,
                                                       "text": "Which districts exactly?"})
    question = smtp.last(address)
    assert "Which districts exactly?" in body(question) and "вопрос" in question["Subject"].lower()
    # the requester answers on the tracking page
    page = anon.get(track).get_data(as_text=True)
    assert "Which districts exactly?" in page and "reply-form" in page
    r = anon.post(f"{track}/reply", data={"csrf_token": CSRF.search(page).group(1),
                                          "text": "All districts of Almaty"})
    assert r.status_code == 302
    assert "All districts of Almaty" in anon.get(track).get_data(as_text=True)

    # the preparer (assignee) accepts; the table is prepared as an ordinary release
    prep = client(web)
    login(prep, "prep")
    token = CSRF.search(prep.get(f"/staff/requests/{rid}").get_data(as_text=True)).group(1)
    assert prep.post(f"/staff/requests/{rid}/accept",
                     data={"csrf_token": token, "text": ""}).status_code == 302
    # a preparer may not decline: refused on the server
    prep.post(f"/staff/requests/{rid}/decline", data={"csrf_token": token,
                                                      "reason": "not_held", "text": ""})
    with store() as s:
        assert s.get(DataRequest, rid).state == "accepted"
    release_id = approved_release(store, users)
    r = prep.post(f"/staff/requests/{rid}/answer-private",
                  data={"csrf_token": token, "private-release": str(release_id),
                        "private-text": "Here it is"})
    assert r.status_code == 302
    with store() as s:
        req = s.get(DataRequest, rid)
        assert req.state == "answered" and req.delivery == "private"
        assert s.get(Release, release_id).state == "approved"  # not published
    answered = smtp.last(address)
    dl = next(u for u in links(answered) if "/requests/download/" in u)
    assert "Here it is" in body(answered)

    # someone else with the link: refused, logged, no file
    page = anon.get(path_of(dl)).get_data(as_text=True)
    tok = CSRF.search(page).group(1)
    other = anon.post(path_of(dl), data={"csrf_token": tok, "email": "someone@else.example"})
    assert other.status_code == 403 and other.mimetype == "text/html"
    assert "другой адрес" in other.get_data(as_text=True)
    # the requester (the address's case does not matter)
    got = anon.post(path_of(dl), data={"csrf_token": tok, "email": "aigerim@ngo.example.kz"})
    assert got.status_code == 200 and got.mimetype == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(got.data))
    names = z.namelist()
    assert any(n.endswith("datapackage.json") for n in names)
    raw = upload().data
    for n in names:
        assert z.read(n) != raw  # never the uploaded table
    rows = z.read("data/test-series.csv").decode().splitlines()
    for (region, sex), _value in SECRET_CELLS.items():
        line = next(x for x in rows if x.startswith(f"{region},{sex},"))
        assert line.split(",")[2] == "", f"a suppressed cell has a value: {line}"
    # a guessed link, an expired link: a clear page, logged, no file
    assert anon.get("/requests/download/abc.def.ghi").status_code == 404
    guessed = anon.post("/requests/download/abc.def.ghi",
                        data={"csrf_token": tok, "email": "aigerim@ngo.example.kz"})
    assert guessed.status_code == 404 and guessed.mimetype == "text/html"
    web.config["REQUEST_DOWNLOAD_DAYS"] = 0
    late = anon.post(path_of(dl), data={"csrf_token": tok, "email": "aigerim@ngo.example.kz"})
    assert late.status_code == 410 and "истёк" in late.get_data(as_text=True)
    assert anon.get(path_of(dl)).status_code == 410
    web.config["REQUEST_DOWNLOAD_DAYS"] = 14
    with store() as s:
        req = s.get(DataRequest, rid)
        link = req.links[0]
        expired = rq.read_download_token
        with pytest.raises(rq.LinkExpired):
            expired(s, path_of(dl).rsplit("/", 1)[1], web.config,
                    now=utcnow() + timedelta(days=15))
        log = [(d.served, d.outcome) for d in rq.downloads(s, req)]
        assert log == [(False, "wrong_address"), (True, "served"), (False, "expired")]
        assert s.scalar(select(func.count()).select_from(RequestDownload).where(
            RequestDownload.request_id.is_(None), RequestDownload.outcome == "not_found")) == 1
        assert rq.private_answers_for_source(s, "anything") == []
        assert link.package_sha256 and link.content_rev == s.get(Release, release_id).content_rev
    # the tracking page offers a new link (to the requester's address only)
    page = anon.get(track).get_data(as_text=True)
    n_before = len(smtp.to(address))
    anon.post(f"{track}/new-link", data={"csrf_token": CSRF.search(page).group(1)})
    assert len(smtp.to(address)) == n_before + 1
    # the register: no personal data
    reg = anon.get("/requests/register?lang=en").get_data(as_text=True)
    assert FORM["title"] in reg and "answered" in reg
    for personal in ("Aigerim", "Kömek", "ngo.example.kz", "school access", "Which districts"):
        assert personal not in reg


def test_private_answer_joins_the_history_of_its_source(store, users, smtp, tmp_path):
    s_ = settings_for(smtp, tmp_path)
    spec = {**SPEC, "id": "req-src", "source_id": "MVD-Migration"}
    release_id = approved_release(store, users, spec)
    with transaction(store) as s:
        req = rq.submit_request(s, rq.RequestInput(email="j@media.example", requester_kind="media",
                                                   title="T", purpose="P"),
                                settings=s_, client_address="1.2.3.4")
        rq.confirm(s, rq.issue_confirmation(s, req, s_), settings=s_)
        appr = s.get(User, users["appr"])
        rq.accept(s, appr, req)
        assert rq.private_answers_for_source(s, "mvd-migration") == []  # not answered yet
        rq.answer(s, appr, req, release_id, "private", settings=s_)
    with store() as s:
        got = rq.private_answers_for_source(s, " mvd-migration ")
        assert [r.id for r in got] == [release_id]
        assert rq.private_answers_for_source(s, "other-source") == []


def test_public_answer_is_a_published_version_and_the_register_counts_it(web, store, users, smtp):
    spec = {**SPEC, "id": "req-public"}
    pub = published_release(store, users, spec)
    approved = approved_release(store, users, {**SPEC, "id": "req-not-public"})
    s_ = dict(web.config)
    with transaction(store) as s:
        req = rq.submit_request(s, rq.RequestInput(email="r@uni.example", requester_kind="academia",
                                                   title="Public please", purpose="P",
                                                   may_publish=True, language="kk"),
                                settings=s_, client_address="1.2.3.5")
        rq.confirm(s, rq.issue_confirmation(s, req, s_), settings=s_)
        appr = s.get(User, users["appr"])
        rq.accept(s, appr, req)
        with pytest.raises(rq.RequestConflict):  # an approved release is not a public answer
            rq.answer(s, appr, req, approved, "public", settings=s_)
        rq.answer(s, appr, req, pub, "public", settings=s_)
        rq.deliver(s, s_)
        rid = req.id
        private_only = rq.submit_request(
            s, rq.RequestInput(email="q@uni.example", requester_kind="academia", title="Mine",
                               purpose="P", may_publish=False), settings=s_,
            client_address="1.2.3.6")
        rq.confirm(s, rq.issue_confirmation(s, private_only, s_), settings=s_)
        rq.accept(s, appr, private_only)
        with pytest.raises(rq.RequestConflict, match="not be published"):
            rq.answer(s, appr, private_only, pub, "public", settings=s_)
    msg = smtp.last("r@uni.example")
    assert "/v/req-public/1.0.0" in body(msg)
    assert msg["Subject"] == f"№ {rid} деректер сұрауыңызға жауап берілді"  # in Kazakh
    reg = client(web).get("/requests/register").get_data(as_text=True)
    assert "/v/req-public/1.0.0" in reg
    quarter = rq._quarter(rq.local_date(utcnow(), s_))
    row = re.search(rf'id="quarter-{quarter}">(.*?)</tr>', reg, re.S).group(1)
    assert re.findall(r'class="num">(\d+)<', row)[:2] == ["2", "1"]  # 2 requests, 1 in time
    assert "100 %" in row  # the open one in time is not counted yet


def test_share_answered_within_the_standard_per_quarter(store, users, smtp, tmp_path):
    s_ = settings_for(smtp, tmp_path)
    appr_id = users["appr"]

    def confirmed(at: datetime, who: str) -> int:
        with transaction(store) as s:
            req = rq.submit_request(s, rq.RequestInput(email=f"{who}@x.example",
                                                       requester_kind="ngo", title=who,
                                                       purpose="P"),
                                    settings=s_, client_address=who, now=at)
            rq.confirm(s, rq.issue_confirmation(s, req, s_, now=at), settings=s_, now=at)
            return req.id

    oct1 = datetime(2026, 10, 1, 6, 0, tzinfo=UTC)  # Thursday; + 5 working days = 8 October
    in_time, late, overdue = (confirmed(oct1, w) for w in ("a", "b", "c"))
    with transaction(store) as s:
        appr = s.get(User, appr_id)
        rq.decline(s, appr, s.get(DataRequest, in_time), "not_held",
                   now=datetime(2026, 10, 8, 10, 0, tzinfo=UTC))
        rq.decline(s, appr, s.get(DataRequest, late), "would_disclose", "cells of 1 and 2",
                   now=datetime(2026, 10, 9, 10, 0, tzinfo=UTC))
    with store() as s:
        rows, quarters = rq.register(s, s_, now=datetime(2026, 11, 2, 6, 0, tzinfo=UTC))
    q = quarters[0]
    assert (q.quarter, q.received, q.on_time, q.late, q.open_overdue) == ("2026-Q4", 3, 1, 1, 1)
    assert q.share == pytest.approx(1 / 3)
    by_ref = {r.ref: r for r in rows}
    assert by_ref[overdue].outcome == "overdue" and by_ref[late].on_time is False


# -- bad input ------------------------------------------------------------------------------------

def test_invalid_email_keeps_the_form_and_says_why_in_the_readers_language(web, store):
    c = client(web, "kk")
    r = submit(c, email="not an address")
    page = r.get_data(as_text=True)
    assert r.status_code == 422 and "form-error" in page
    assert "жарамсыз" in page  # Kazakh
    assert FORM["purpose"] in page and FORM["title"] in page  # nothing typed is lost
    r = submit(c, email="x@example.com\r\nBcc: victim@example.com")
    assert r.status_code == 422
    with store() as s:
        assert s.scalar(select(func.count()).select_from(DataRequest)) == 0


def test_flood_from_one_address_is_refused_and_earlier_requests_are_kept(web, store, smtp):
    web.config["REQUEST_RATE_PER_EMAIL"] = 2
    c = client(web, "ru")
    assert submit(c).status_code == 302
    assert submit(c, title="Second").status_code == 302
    r = submit(c, title="Third", email="AIGERIM@ngo.example.kz")
    page = r.get_data(as_text=True)
    assert r.status_code == 429 and "Ваши прежние запросы сохранены" in page
    assert "Third" in page  # the text is still in the form
    web.config["REQUEST_RATE_PER_EMAIL"] = 100
    web.config["REQUEST_RATE_PER_ADDRESS"] = 3
    assert submit(c, email="other@ngo.example.kz").status_code == 302
    r = submit(c, email="fourth@ngo.example.kz")
    assert r.status_code == 429 and "сетевого адреса" in r.get_data(as_text=True)
    with store() as s:
        assert s.scalar(select(func.count()).select_from(DataRequest)) == 3


def test_anti_spam_time_token_and_hidden_field(web, store):
    c = client(web)
    web.config["REQUEST_FORM_MIN_SECONDS"] = 3
    r = submit(c)
    assert r.status_code == 400 and "too quickly" in r.get_data(as_text=True)
    web.config["REQUEST_FORM_MIN_SECONDS"] = 0
    assert submit(c, website="http://spam.example").status_code == 400
    assert submit(c, ts="forged").status_code == 400
    page = c.get("/requests/new").get_data(as_text=True)
    token = TS.search(page).group(1)
    with pytest.raises(rq.FormRefused, match="open too long"):
        rq.check_form_token(token, web.config, now=utcnow() + timedelta(hours=13))
    rq.check_form_token(token, web.config, now=utcnow() + timedelta(hours=1))
    with store() as s:
        assert s.scalar(select(func.count()).select_from(DataRequest)) == 0


def test_expired_confirmation_asks_for_a_new_one_and_the_request_is_kept(web, store, smtp):
    c = client(web, "ru")
    submit(c)
    address = "Aigerim@ngo.example.kz"
    url = confirm_link(smtp, address)
    with transaction(store) as s:
        for row in s.scalars(select(RequestConfirmation)):
            row.expires_at = utcnow() - timedelta(minutes=1)
    page = c.get(path_of(url))
    text = page.get_data(as_text=True)
    assert page.status_code == 410 and "истёк" in text and "resend-confirmation" in text
    r = c.post(path_of(url) + "/resend", data={"csrf_token": CSRF.search(text).group(1)})
    assert r.status_code == 200
    fresh = confirm_link(smtp, address)
    assert fresh != url
    page = c.get(path_of(fresh)).get_data(as_text=True)
    r = c.post(path_of(fresh), data={"csrf_token": CSRF.search(page).group(1)})
    assert r.status_code == 302
    assert c.get(path_of(url)).status_code in (409, 410)  # the old one does not work
    assert c.get("/requests/confirm/guessed-token").status_code == 404
    with store() as s:
        assert s.scalar(select(DataRequest.state)) == "confirmed"
        hashes = s.scalars(select(RequestConfirmation.token_hash)).all()
        assert fresh.rsplit("/", 1)[1] not in hashes  # stored only hashed


def test_tracking_links_cannot_be_guessed(web, store, smtp):
    c = client(web)
    submit(c)
    with store() as s:
        req = s.scalar(select(DataRequest))
        good = rq.tracking_token(req, web.config)
    assert c.get(f"/requests/{good}").status_code == 200
    rid, mac = good.split("-", 1)
    assert c.get(f"/requests/{rid}-{'A' * len(mac)}").status_code == 404
    assert c.get(f"/requests/{int(rid) + 1}-{mac}").status_code == 404
    assert c.get("/requests/99999999999999999999-x").status_code == 404


def test_staff_pages_need_a_role_and_csrf(web, store, users, smtp):
    anon = client(web)
    assert anon.get("/staff/requests").status_code == 302  # to the sign-in page
    submit(anon)
    with transaction(store) as s:
        req = s.scalar(select(DataRequest))
        rq.confirm(s, rq.issue_confirmation(s, req, web.config), settings=web.config)
        rid = req.id
    staff = client(web)
    login(staff, "appr")
    r = staff.post(f"/staff/requests/{rid}/decline", data={"reason": "not_held"})
    assert r.status_code == 400  # no CSRF token
    with store() as s:
        assert s.get(DataRequest, rid).state == "confirmed"
    with transaction(store) as s:
        prep = s.get(User, users["prep"])
        with pytest.raises(rq.RequestForbidden):
            rq.decline(s, prep, s.get(DataRequest, rid), "not_held")
        with pytest.raises(rq.RequestForbidden):
            rq.assign(s, prep, s.get(DataRequest, rid), users["prep"])
        with pytest.raises(rq.RequestError, match="choose a reason"):
            rq.decline(s, s.get(User, users["appr"]), s.get(DataRequest, rid), "because")
    token = CSRF.search(staff.get(f"/staff/requests/{rid}").get_data(as_text=True)).group(1)
    r = staff.post(f"/staff/requests/{rid}/decline", data={"csrf_token": token,
                                                           "reason": "would_disclose",
                                                           "text": "too few people"})
    assert r.status_code == 302
    msg = smtp.last("Aigerim@ngo.example.kz")
    assert "would disclose persons" in body(msg) and "too few people" in body(msg)
    # a second decision on a final request is refused with a clear message
    r = staff.post(f"/staff/requests/{rid}/accept", data={"csrf_token": token, "text": ""},
                   follow_redirects=True)
    assert "this step is not possible now" in r.get_data(as_text=True)
    with store() as s:
        actions = [a.action for a in wf.audit_rows(s)]
    assert "request_decline" in actions

    # an open request past its deadline is red in the queue
    other = client(web)
    submit(other, email="late@x.example")
    with transaction(store) as s:
        late = s.scalar(select(DataRequest).where(DataRequest.email == "late@x.example"))
        rq.confirm(s, rq.issue_confirmation(s, late, web.config), settings=web.config)
        late.deadline = date(2020, 1, 6)
        late_id = late.id
    queue = staff.get("/staff/requests").get_data(as_text=True)
    assert f'<tr id="queue-{late_id}" class="overdue">' in queue and "overdue by" in queue


def test_mail_that_cannot_be_sent_is_kept_and_sent_later(web, store, smtp):
    web.config["SMTP_PORT"] = free_port()  # nobody listens there
    c = client(web, "en")
    r = submit(c)
    page = c.get(r.headers["Location"]).get_data(as_text=True)
    assert "mail-failed" in page
    with store() as s:
        row = s.scalar(select(RequestMail))
        assert row.sent_at is None and row.attempts == 1 and "SMTP" in row.error
        assert s.scalar(select(func.count()).select_from(DataRequest)) == 1
    settings = {**web.config, "SMTP_PORT": smtp.port}
    with transaction(store) as s:
        res = rq.remind(s, settings)
    assert res.sent == 1 and res.failed == 0
    assert "/requests/confirm/" in body(smtp.last("Aigerim@ngo.example.kz"))


def test_remind_command(store, users, smtp, tmp_path, db_url, monkeypatch):
    from click.testing import CliRunner

    from publisher.cli import main

    s_ = settings_for(smtp, tmp_path)
    with transaction(store) as s:
        req = rq.submit_request(s, rq.RequestInput(email="z@x.example", requester_kind="other",
                                                   title="T", purpose="P"),
                                settings=s_, client_address="9.9.9.9")
    for key, value in s_.items():
        monkeypatch.setenv(f"ASHYQ_{key}", str(value))
    monkeypatch.setenv("ASHYQ_DATABASE_URL", db_url)
    result = CliRunner().invoke(main, ["requests", "remind"])
    assert result.exit_code == 0, result.output
    assert "mail sent 1, failed 0" in result.output
    assert smtp.last("z@x.example")
    assert req.id


def test_messages_are_in_the_requesters_language():
    params = {"ref": 7, "title": "T", "url": "http://x/requests/7-abc", "deadline": "2026-12-22",
              "days": 20}
    subjects = {lang: mail.render("confirmed", lang, params)[0] for lang in ("kk", "ru", "en")}
    assert subjects["en"] == "Your data request no. 7 is registered"
    assert len(set(subjects.values())) == 3
    assert "22 желтоқсан" in mail.render("confirmed", "kk", params)[1]
    assert "22 декабря 2026" in mail.render("confirmed", "ru", params)[1]
    with pytest.raises(mail.MailError):
        mail.build({}, "a@b.example\nBcc: c@d.example", "s", "b")
    assert mail.normalise_address(" User@Example.COM ") == "User@example.com"
    assert mail.normalise_address("a@пример.қаз") == "a@xn--e1afmkfd.xn--80ao21a"
    assert mail.normalise_address("no-at-sign") is None
