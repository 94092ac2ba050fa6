"""CKAN in the reader's language, against the real local CKAN (scripts/ckan-local.sh): licence ids
from CKAN's register, per-language resource titles that differ at their start, the DataStore
(ckanext-xloader on the stack's PostgreSQL) with the stated SHA-256 kept, and the ru/kk pages
(dataset, search, group, resource) in the page's language. The browser view of the same pages is
tests/browser/test_ckan_pages.py."""

from __future__ import annotations

import html
import re

import ckanapi
import pytest
import requests

from publisher.ckan import ckan_license_id
from tests.integration.ckan_language_lib import TABLE_DESC, Published, publish_translated
from tests.integration.ckan_testlib import DESCRIPTION, TITLE, table_csv

LABELS = {  # schema labels (config/ckan/ashyq_dataset.yaml) per language
    "ru": ("Серия (неизменный идентификатор таблицы)", "SHA-256 файла"),
    "kk": ("Серия (кестенің өзгермейтін идентификаторы)", "Файлдың SHA-256 хэші"),
}
ENGLISH_LABELS = ("Series (the table's invariant id)", "SHA-256 of the file")


@pytest.mark.parametrize(("spdx", "register", "expected"), [
    ("CC-BY-4.0", None, "cc-by"),
    ("CC0-1.0", {"cc-zero", "cc-by"}, "cc-zero"),
    ("ODbL-1.0", {"odc-odbl"}, "odc-odbl"),
    ("CC-BY-4.0", {"CC-BY-4.0", "cc-by"}, "CC-BY-4.0"),  # a register with the SPDX id wins
    ("cc-by-4.0", {"CC-BY-4.0"}, "CC-BY-4.0"),
    ("CC-BY-4.0", {"odc-by"}, "CC-BY-4.0"),  # not in this register: left as it is
    ("LicenseRef-office", None, "LicenseRef-office"),
])
def test_licence_ids_map_to_ckan_register(spdx, register, expected):
    assert ckan_license_id(spdx, register) == expected


@pytest.fixture(scope="module")
def published(ckan, tmp_path_factory) -> Published:
    return publish_translated(tmp_path_factory.mktemp("lang"), ckan.url, ckan.token)


def _page(url: str) -> str:
    r = requests.get(url, timeout=60)
    assert r.status_code == 200, (url, r.status_code)
    return html.unescape(r.text)


def _headings(page: str) -> list[str]:
    """Texts of the dataset headings of a search or group listing."""
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", h)).strip()
            for h in re.findall(r'<h2 class="dataset-heading">(.*?)</h2>', page, re.S)]


@pytest.mark.ckan
def test_licence_is_from_the_register_and_open(published: Published, ckan):
    ds = ckanapi.RemoteCKAN(ckan.url).action.package_show(id=published.name)
    assert ds["license_id"] == "cc-by"
    assert ds["isopen"] is True and ds["license_title"] == "Creative Commons Attribution"


@pytest.mark.ckan
def test_resource_titles_differ_at_their_start_in_every_language(published: Published):
    names = {r["name"]: r["name_translated"] for r in published.dataset["resources"]}
    assert names["data/table.csv"] == TITLE
    for lg in ("kk", "ru", "en"):
        copies = [names[f"downloads/table-{x}.csv"][lg] for x in ("kk", "ru", "en")]
        assert copies == [f"CSV, {w} — {TITLE[lg]}" for w in
                          {"kk": ("қазақша", "орысша", "ағылшынша"),
                           "ru": ("на казахском", "на русском", "на английском"),
                           "en": ("in Kazakh", "in Russian", "in English")}[lg]]
        shown = [n[lg][:25] for n in names.values()]  # CKAN's sidebar cuts at 25 characters
        assert len(set(shown)) == len(shown), shown
    assert names["datapackage.json"]["ru"] == "Описание пакета данных (datapackage.json)"
    assert names[f"{published.series}-1.0.0.zip"]["kk"] == "Бүкіл деректер пакеті (ZIP)"


@pytest.mark.ckan
def test_csv_is_in_the_datastore_with_a_preview_and_the_sha256_kept(published: Published, ckan):
    anon = ckanapi.RemoteCKAN(ckan.url)
    table = published.resource("data/table.csv")
    assert table["datastore_active"] is True
    records = anon.action.datastore_search(resource_id=table["id"], limit=100)
    expected = table_csv(12).decode().splitlines()[1:]
    assert [f"{r['region']},{r['obs_value']}" for r in records["records"]] == expected
    views = anon.action.resource_view_list(id=table["id"])
    assert [v["view_type"] for v in views] == ["datatables_view"]
    # xloader writes its MD5 into `hash`; the plugin keeps the SHA-256 the package states
    stated = {r.name: r.sha256 for r in published.result.resources}
    for r in anon.action.package_show(id=published.name)["resources"]:
        assert r["hash"] == stated[r["name"]], r["name"]
    assert not published.resource("datapackage.json").get("datastore_active")
    # the DataStore loads ran after the publication and left the dataset public
    assert published.dataset["private"] is False
    assert anon.action.package_show(id=published.name)["private"] is False


@pytest.mark.ckan
@pytest.mark.parametrize("lang", ["ru", "kk"])
def test_pages_are_in_the_page_language(published: Published, ckan, lang):
    other = [x for x in ("kk", "ru", "en") if x != lang]
    ds_page = _page(f"{ckan.url}/{lang}/dataset/{published.name}")
    assert TITLE[lang] in ds_page and DESCRIPTION[lang] in ds_page
    assert LABELS[lang][0] in ds_page and ENGLISH_LABELS[0] not in ds_page

    search = _page(f"{ckan.url}/{lang}/dataset/?q={published.name}")
    assert _headings(search) == [TITLE[lang]]
    assert DESCRIPTION[lang] in search and not any(DESCRIPTION[x] in search for x in other)

    group = _page(f"{ckan.url}/{lang}/group/{published.series}")
    assert _headings(group) == [TITLE[lang]]
    assert re.search(r'<h2 class="heading">\s*' + re.escape(TITLE[lang]), group)  # the series

    table = published.resource("data/table.csv")
    res_page = _page(f"{ckan.url}/{lang}/dataset/{published.name}/resource/{table['id']}")
    notes = re.search(r'<div class="prose notes"[^>]*>(.*?)</div>', res_page, re.S).group(1)
    assert TABLE_DESC[lang] in notes and not any(TABLE_DESC[x] in notes for x in other)
    assert f'<h1 class="page-heading">{TITLE[lang]}</h1>' in res_page
    assert LABELS[lang][1] in res_page and ENGLISH_LABELS[1] not in res_page
    assert "/view/" in res_page  # the DataStore preview (datatables_view) is embedded
