"""The project's CKAN dataset schema (config/ckan/ashyq_dataset.yaml) and its own extension
(ckanext-ashyq): translated fields are validated by CKAN itself, stored, returned as objects and
searchable per language."""

from __future__ import annotations

import uuid

import ckanapi
import pytest

pytestmark = pytest.mark.ckan
OK = {"kk": "Көші-қон", "ru": "Миграция", "en": "Migration"}


@pytest.fixture
def sysadmin(ckan) -> ckanapi.RemoteCKAN:
    api = ckanapi.RemoteCKAN(ckan.url, apikey=ckan.token)
    try:
        api.action.organization_show(id="ashyq-it")
    except ckanapi.NotFound:
        api.action.organization_create(name="ashyq-it")
    return api


def create(api: ckanapi.RemoteCKAN, **fields):
    name = f"schema-{uuid.uuid4().hex[:10]}"
    return api.action.package_create(name=name, owner_org="ashyq-it", private=True, **fields)


@pytest.mark.parametrize(("title", "messages"), [
    ({"en": "Migration"}, ['missing text for language "kk"', 'missing text for language "ru"']),
    ({**OK, "EN": "x"}, ['unsupported language "EN" (allowed: kk, ru, en)']),
    ({**OK, "ru": 5}, ['the text for "ru" must be a string']),
    ({**OK, "kk": "  "}, ['missing text for language "kk"']),
    ("not json", ["expected an object {language: text}"]),
])
def test_bad_translated_titles_are_refused_with_the_language_named(sysadmin, title, messages):
    with pytest.raises(ckanapi.ValidationError) as exc:
        create(sysadmin, title_translated=title, notes_translated=OK)
    got = exc.value.error_dict["title_translated"]
    for m in messages:
        assert any(g.startswith(m) for g in got), got


def test_missing_translated_title_is_required(sysadmin):
    with pytest.raises(ckanapi.ValidationError) as exc:
        create(sysadmin, title="Only a plain title", notes_translated=OK)
    assert exc.value.error_dict["title_translated"] == [
        "Missing value: a text per language kk, ru, en"]


def test_translated_fields_round_trip_fill_core_fields_and_are_searchable(sysadmin):
    ds = create(sysadmin, title_translated=OK, notes_translated={
        "kk": "Сипаттама", "ru": "Описание переселенцев", "en": "Description"})
    assert ds["title_translated"] == OK and ds["title"] == "Migration"
    assert ds["notes"] == "Description"
    shown = sysadmin.action.package_show(id=ds["name"])
    assert shown["notes_translated"]["ru"] == "Описание переселенцев"
    found = sysadmin.action.package_search(q="extras_title_ru:миграция", fq=f'name:"{ds["name"]}"',
                                           include_private=True)
    assert [d["name"] for d in found["results"]] == [ds["name"]]
    found = sysadmin.action.package_search(q="переселенцев", include_private=True,
                                           fq=f'name:"{ds["name"]}"')
    assert found["count"] == 1
