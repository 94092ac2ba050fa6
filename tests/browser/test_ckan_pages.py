"""In Chromium, against the real local CKAN (scripts/ckan-local.sh): a version published by Ashyq
reads in Russian and in Kazakh on CKAN's dataset, search, group and resource pages — titles,
descriptions and field labels in the page's language, the licence shown as open, and the CSV
resource previewed from the DataStore (ckanext-xloader + datatables_view)."""

from __future__ import annotations

import os

import pytest

from tests.integration.ckan_language_lib import TABLE_DESC, Published, publish_translated
from tests.integration.ckan_testlib import DESCRIPTION, TITLE, ckan_up, table_csv

from .conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.ckan]
LABELS = {"ru": ("Серия (неизменный идентификатор таблицы)", "SHA-256 файла", "Версия"),
          "kk": ("Серия (кестенің өзгермейтін идентификаторы)", "Файлдың SHA-256 хэші", "Нұсқа")}
ENGLISH = ("Series (the table's invariant id)", "SHA-256 of the file", TITLE["en"],
           DESCRIPTION["en"], TABLE_DESC["en"])


@pytest.fixture(scope="module")
def ckan_url_token() -> tuple[str, str]:
    if os.environ.get("ASHYQ_SKIP_CKAN") == "1":
        pytest.skip("ASHYQ_SKIP_CKAN=1: the local CKAN stack is not started")
    env = ckan_up()
    return env["CKAN_URL"], env["CKAN_API_TOKEN"]


@pytest.fixture(scope="module")
def published(ckan_url_token, tmp_path_factory) -> Published:
    url, token = ckan_url_token
    return publish_translated(tmp_path_factory.mktemp("ckan-pages"), url, token)


def _main_text(page) -> str:
    return page.inner_text("main") if page.locator("main").count() else page.inner_text("body")


@pytest.mark.parametrize("lang", ["ru", "kk"])
def test_ckan_pages_in_the_page_language(browser, ckan_url_token, published: Published, lang):
    url = ckan_url_token[0]
    others = [x for x in ("kk", "ru", "en") if x != lang]
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()

    # the dataset page: title, description, labels of the schema, the licence as open
    page.goto(f"{url}/{lang}/dataset/{published.name}")
    assert page.inner_text("h1").strip() == TITLE[lang]
    text = _main_text(page)
    assert DESCRIPTION[lang] in page.inner_text(".notes")
    assert LABELS[lang][0] in text and LABELS[lang][2] in text
    assert ENGLISH[0] not in text
    licence = page.locator("section.license")
    assert "Creative Commons Attribution" in licence.inner_text()
    assert licence.locator("img.open-data").count() == 1  # CKAN's "Open Data" badge
    items = page.locator(".resource-item .heading").all_inner_texts()
    copies = [t for t in items if t.startswith("CSV,")]
    assert len(copies) == 3 and len(set(copies)) == 3, items
    page.screenshot(path=str(ARTIFACTS / f"ckan-dataset-{lang}.png"), full_page=True)

    # search results and the series' group list the dataset under its title in lang
    page.goto(f"{url}/{lang}/dataset/?q={published.name}")
    headings = [t.strip() for t in page.locator(".dataset-heading a").all_inner_texts()]
    assert headings == [TITLE[lang]]
    listing = page.inner_text(".dataset-list")
    assert DESCRIPTION[lang] in listing and not any(DESCRIPTION[x] in listing for x in others)
    page.goto(f"{url}/{lang}/group/{published.series}")
    assert [t.strip() for t in page.locator(".dataset-heading a").all_inner_texts()] == [
        TITLE[lang]]
    assert page.locator("#group-info h2.heading").inner_text().strip() == TITLE[lang]

    # the CSV resource: its description in lang, field labels in lang, the DataStore preview
    table = published.resource("data/table.csv")
    page.goto(f"{url}/{lang}/dataset/{published.name}/resource/{table['id']}")
    assert page.inner_text("h1.page-heading").strip() == TITLE[lang]
    notes = page.inner_text(".prose.notes")
    assert TABLE_DESC[lang] in notes and not any(TABLE_DESC[x] in notes for x in others)
    text = _main_text(page)
    assert LABELS[lang][1] in text and ENGLISH[1] not in text
    viewer = page.frame_locator("iframe[data-module=data-viewer]")
    first = table_csv(12).decode().splitlines()[1].split(",")[0]  # R000
    viewer.locator("table").get_by_text(first, exact=True).first.wait_for(timeout=60_000)
    cells = viewer.locator("table tbody tr").count()
    assert cells >= 10, cells  # rows come from datastore_search
    page.screenshot(path=str(ARTIFACTS / f"ckan-resource-{lang}.png"), full_page=True)
    # the page's own texts (not the table of all translations) carry no English title
    for where in ("h1.page-heading", ".prose.notes", ".breadcrumb"):
        assert not any(t in page.inner_text(where) for t in ENGLISH[2:]), where
    ctx.close()
