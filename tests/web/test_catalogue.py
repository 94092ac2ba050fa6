"""The public catalogue at ``/``, search in kk/ru/en, filters, series pages with a time-series
chart, and the release calendar (title and date of scheduled releases, never their data)."""

from __future__ import annotations

import html
import re

import pytest

from publisher import explore as ex

from . import explorer_data as xd


@pytest.fixture(scope="module")
def packages(tmp_path_factory):  # noqa: ANN001, ANN201
    return xd.build_packages(tmp_path_factory.mktemp("packages"))


@pytest.fixture
def site(app, store, packages):  # noqa: ANN001, ANN201
    ex.CACHE.clear()
    data = xd.publish_versions(store, packages)
    return {"client": app.test_client(), **data}


def text(c, path: str) -> tuple[int, str]:  # noqa: ANN001
    r = c.get(path)
    return r.status_code, html.unescape(r.get_data(as_text=True))


def listed(body: str) -> list[str]:
    return re.findall(r'<li class="card series-item" data-series="([^"]+)">', body)


def test_the_catalogue_is_the_public_entry_point(site):
    c = site["client"]
    for lang, heading in (("kk", "Көші-қонның ашық статистикасы"),
                          ("ru", "Открытая статистика миграции"),
                          ("en", "Open migration statistics")):
        status, body = text(c, f"/?lang={lang}")
        assert status == 200 and heading in body
        assert sorted(listed(body)) == ["kids", "old-flows"]  # never the scheduled series
        assert "secret-series" not in body and "Future table" not in body
    status, body = text(c, "/?lang=en")
    # the latest version of kids, with its period and source
    item = re.search(r'data-series="kids">.*?</li>', body, re.S).group(0)
    assert "Latest version 1.1.0" in item and "Reference period: 2025" in item
    assert "Versions: 2" in item and "test-source" in item
    assert c.get("/v").status_code == 302 and c.get("/v").headers["Location"].endswith("/")
    # the staff dashboard moved to /dashboard and still asks for a sign-in
    assert c.get("/dashboard").status_code == 302


@pytest.mark.parametrize("q, found", [
    ("балалар", ["kids"]),            # Kazakh title
    ("ДЕТИ-мигранты", ["kids"]),      # Russian, any case
    ("migrant children", ["kids"]),   # English, every word
    ("flows", ["old-flows"]),
    ("потоки", ["old-flows"]),
    ("migrant flows", []),            # both words must match one series
    ("Future", []),                   # a scheduled release is not searchable
])
def test_search_in_any_language(site, q, found):
    status, body = text(site["client"], f"/?lang=en&q={q}")
    assert status == 200 and sorted(listed(body)) == found
    if not found:
        assert 'id="no-results"' in body


def test_filters_by_topic_source_and_period(site):
    c = site["client"]
    status, body = text(c, "/?lang=en")
    for option in ("migration", "flows", "test-source", "other-source", "2025", "2023"):
        assert f'<option value="{option}"' in body
    assert listed(text(c, "/?topic=children")[1]) == ["kids"]
    assert listed(text(c, "/?source=other-source")[1]) == ["old-flows"]
    assert listed(text(c, "/?period=2025")[1]) == ["kids"]
    assert listed(text(c, "/?period=2024")[1]) == []  # kids' latest version is 2025
    assert listed(text(c, "/?topic=children&source=other-source")[1]) == []
    status, body = text(c, "/?q=" + "x" * 5000 + "&topic=<script>")
    assert status == 200 and "<script>" not in body.replace("&lt;script&gt;", "")


def test_series_page_has_versions_and_a_time_series(site):
    c = site["client"]
    status, body = text(c, "/v/kids?lang=ru")
    assert status == 200
    assert re.findall(r'<td><a href="/v/kids/([\d.]+)">', body) == ["1.1.0", "1.0.0"]
    m = re.search(r'<div class="chart-wrap" id="timeseries">(.*?)</div>', body, re.S)
    assert m and "<polyline" in m.group(1)
    assert "2024" in m.group(1) and "2025" in m.group(1)
    table = re.search(r"<summary>В виде таблицы</summary>.*?</table>", body, re.S).group(0)
    for period, cells in (("2024", site["cells1"]), ("2025", site["cells2"])):
        total = f"{cells[('_T', '_T', '_T')]:,}".replace(",", "\u202f")
        assert re.search(rf"<td>{period}</td><td class=\"num\">{total}</td>", table)
    assert "Изучить последнюю версию" in body
    # a series with one period has no time series
    status, body = text(c, "/v/old-flows?lang=en")
    assert status == 200 and 'id="timeseries"' not in body


def test_calendar_shows_title_and_date_only(site, store):
    from publisher.workflow_models import Release

    c = site["client"]
    with store() as s:
        secret = s.query(Release).filter_by(series="secret-series").one()
        when = secret.embargo_at.strftime("%Y-%m-%d %H:%M")
    for lang, title in (("kk", "Болашақ кесте"), ("ru", "Будущая таблица"), ("en", "Future table")):
        status, body = text(c, f"/calendar?lang={lang}")
        assert status == 200
        upcoming = re.search(r'<table class="list" id="upcoming">.*?</table>', body, re.S).group(0)
        assert f"<td>{when}</td><td>{title}</td>" in upcoming
        # never a link to it, its series id or any of its numbers
        assert "secret-series" not in body and "/v/secret" not in body
        for v in set(site["cells2"].values()):
            assert not re.search(rf"<td[^>]*>{v}</td>", upcoming)
    status, body = text(c, "/calendar?lang=en")
    recent = re.search(r'<table class="list" id="recent">.*?</table>', body, re.S).group(0)
    assert "/v/kids/1.1.0" in recent and "/v/kids/1.0.0" in recent


def test_calendar_without_scheduled_releases(app, store, packages):
    xd.publish_versions(store, packages, scheduled=False)
    status, body = text(app.test_client(), "/calendar?lang=kk")
    assert status == 200 and 'id="no-upcoming"' in body and "Қазір жоспарланған жарияланым жоқ." in body


def test_version_page_shows_what_a_reader_needs(site):
    status, body = text(site["client"], "/v/kids/1.1.0?lang=kk")
    assert status == 200
    assert 'id="description"' in body and "Синтетикалық сынақ кестесі." in body
    assert re.search(r'<dd id="fact-period">2025</dd>', body)
    assert re.search(r'<dd id="fact-unit">адам</dd>', body)
    assert "Creative Commons Attribution 4.0" in body
    assert 'id="nav-catalogue"' in body and 'id="nav-calendar"' in body
