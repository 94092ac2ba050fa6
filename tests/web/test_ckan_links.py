"""Ashyq's public version page links to the CKAN dataset in the page's language (CKAN's
language prefix goes before ``/dataset/``, after any site path)."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from publisher import explore as ex
from publisher.db import transaction
from publisher.workflow_models import Release

from . import explorer_data as xd

CKAN = "https://data.example.kz/portal/dataset/kids-v1-1-0"


@pytest.fixture(scope="module")
def packages(tmp_path_factory):  # noqa: ANN001, ANN201
    return xd.build_packages(tmp_path_factory.mktemp("packages"))


@pytest.mark.parametrize(("lang", "href"), [
    ("ru", "https://data.example.kz/portal/ru/dataset/kids-v1-1-0"),
    ("kk", "https://data.example.kz/portal/kk/dataset/kids-v1-1-0"),
    ("en", "https://data.example.kz/portal/en/dataset/kids-v1-1-0"),
])
def test_ckan_link_is_in_the_page_language(app, store, packages, lang, href):  # noqa: ANN001
    ex.CACHE.clear()
    xd.publish_versions(store, packages)
    with transaction(store) as s:
        r = s.scalars(select(Release).where(Release.series == "kids",
                                            Release.version == "1.1.0")).one()
        r.published_url = CKAN
    body = html.unescape(app.test_client().get(f"/v/kids/1.1.0?lang={lang}").get_data(True))
    links = re.findall(r'<a href="([^"]+)" rel="noopener" id="ckan-link">', body)
    assert links == [href]
