"""The review page tells the reviewer, in the page's language, what protection did: labels from
the code lists, translated column names and flag meanings, the method's parameters, the audit,
the suppression rate by dimension and level, the solver's outcome, and the cells that were
absent from the input and taken as zero (``missing: zero | refuse``)."""

from __future__ import annotations

import html
import re

from .conftest import SPEC, TABLE
from .test_refusals_i18n import english_left
from .test_ui import _upload, client, login

NOISE_SPEC = {**SPEC, "id": "test-noise", "source_id": "mvd-migration", "reference_period": "2024",
              "disclosure": {"noise": {"mechanism": "geometric", "epsilon": 1.0}}}


def _page(c, r) -> str:  # noqa: ANN001
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    return html.unescape(c.get(r.headers["Location"]).get_data(as_text=True))


def _section(page: str, sid: str) -> str:
    m = re.search(rf'<section class="card" id="{sid}">(.*?)</section>', page, re.S)
    assert m, sid
    text = re.sub(r"<pre>.*?</pre>", " ", m.group(1), flags=re.S)  # the report as JSON
    return re.sub(r"<[^>]+>", " ", text)


def test_the_review_page_in_russian(app):  # noqa: ANN001
    c = client(app)
    login(c, "prep")
    c.get("/?lang=ru")
    page = _page(c, _upload(c))
    assert "<title>Тестовая таблица · 1.0.0" in page  # the table's title, not the slug
    report = _section(page, "report")
    # the method's parameters, the audit, the solver and the rate, in Russian
    assert "Порог" in report and "5" in report
    assert "Уровень защиты" in report and "интервал шириной не менее 5" in report
    assert "Проверка атакующим" in report and "пройдена" in report
    assert "Оптимизатор" in report
    # 21 cells, 2 primary + 2 secondary at least: the rate is given as "n из 21 ячеек, p %"
    m = re.search(r"Скрытые ячейки\s+(\d+) из 21 ячеек, (\d+)\s*%", report)
    assert m, report
    assert int(m.group(1)) >= 4 and int(m.group(2)) == round(100 * int(m.group(1)) / 21)
    assert "Скрытые ячейки по измерениям и уровням" in report
    assert "итог (_T)" in report and "уровень 1" in report and "уровень 2" in report
    # column titles and flag meanings from the package catalogue
    table = _section(page, "table")
    assert "Статус наблюдения" in table and "Статус конфиденциальности" in table
    assert "Первичное подавление" in table or "первичное подавление" in table
    assert re.search(r"_T\s+Всего", table)  # _T labelled from the catalogue
    assert not english_left(report.replace("SDMX", ""), "obs_value", "obs_status",
                            "conf_status", "_T", "min_frequency", "CL_OBS_STATUS",
                            "CL_CONF_STATUS", "JSON", "schema_version", "method",
                            "JSON-stat", "SDMX-JSON", "SDMX-CSV", "SDMX-ML", "PC-Axis"), report


def test_the_review_page_in_kazakh_names_the_absent_cells(app):  # noqa: ANN001
    c = client(app)
    login(c, "prep")
    c.get("/?lang=kk")
    r = _upload(c, table=TABLE.replace("R02D02,M,48\n", ""))
    page = _page(c, r)
    warn = re.search(r'id="absent-cells"[^>]*>(.*?)</p>', page, re.S)
    assert warn, "no warning about the absent cell"
    assert "(region=R02D02, sex=M)" in warn.group(1)
    assert "нөл" in warn.group(1)  # kk: taken as zero
    page = c.get(r.headers["Location"] + "?lang=en").get_data(as_text=True)
    assert "1 inner cell(s) absent from the input were taken as zero" in page


def test_missing_refuse_names_the_first_absent_cell(app):  # noqa: ANN001
    c = client(app)
    login(c, "prep")
    c.get("/?lang=ru")
    r = _upload(c, spec={**SPEC, "missing": "refuse"}, table=TABLE.replace("R02D02,M,48\n", ""))
    page = html.unescape(r.get_data(as_text=True))
    assert r.status_code == 422
    assert "ячейка (region=R02D02, sex=M) отсутствует в таблице" in page


def test_a_noise_release_has_no_suppression_legend(app, store):  # noqa: ANN001
    from publisher import budget
    from publisher.db import transaction

    with transaction(store) as s:
        budget.add_source(s, "mvd-migration", 4.0)
    c = client(app)
    login(c, "prep")
    r = _upload(c, spec=NOISE_SPEC)
    assert r.status_code == 302, re.findall(r"flash[^>]*>(.*?)</p>", r.get_data(as_text=True))
    page = _page(c, r)
    assert 'id="only-suppressed"' not in page
    assert "secondary suppression: hidden" not in page
    assert 'id="suppression-by-dimension"' not in page
    report = _section(page, "report")
    assert "Epsilon" in report and "two-sided geometric" in report
    assert "Margin of error" in report


def test_the_embargo_is_entered_and_shown_in_the_offices_time_zone(app, store):  # noqa: ANN001
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from publisher.workflow_models import Release

    from .test_ui import csrf

    c = client(app)
    login(c, "prep")
    rid = int(_upload(c).headers["Location"].rsplit("/", 1)[1])
    tok = csrf(c, f"/releases/{rid}")
    c.post(f"/releases/{rid}/submit", data={"csrf_token": tok, "comment": ""})
    a = client(app)
    login(a, "appr")
    tok = csrf(a, f"/releases/{rid}")
    a.post(f"/releases/{rid}/approve", data={"csrf_token": tok, "comment": "fine"})
    page = a.get(f"/releases/{rid}").get_data(as_text=True)
    assert "Embargo (Asia/Almaty time); empty = publish now" in page
    r = a.post(f"/releases/{rid}/schedule", data={"csrf_token": tok,
                                                   "embargo_at": "2099-01-01T09:00"},
               follow_redirects=True)
    page = r.get_data(as_text=True)
    assert "Scheduled for 2099-01-01 09:00 (Asia/Almaty)." in page
    expected = datetime(2099, 1, 1, 9, 0, tzinfo=ZoneInfo("Asia/Almaty")).astimezone(UTC)
    with store() as s:
        stored = s.get(Release, rid).embargo_at
    assert (stored if stored.tzinfo else stored.replace(tzinfo=UTC)) == expected
    assert expected.hour != 9  # the office is not on UTC: the stored time differs
    assert f"2099-01-01 09:00 (Asia/Almaty) · {expected:%Y-%m-%d %H:%M} UTC" in page


def test_a_bad_time_zone_setting_is_a_refusal(app):  # noqa: ANN001
    import pytest

    from publisher.settings import SettingsError, office_timezone

    assert office_timezone({}).key == "Asia/Almaty"
    assert office_timezone({"TIMEZONE": "Europe/Moscow"}).key == "Europe/Moscow"
    with pytest.raises(SettingsError, match="ASHYQ_TIMEZONE: 'Mars/Olympus' is not a time zone"):
        office_timezone({"TIMEZONE": "Mars/Olympus"})
