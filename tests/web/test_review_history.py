"""The review page names the earlier releases the attacker audit covered and states the attacker
model in the reader's language (kk, ru, en).

A first table of a source is uploaded and published (its state set in the store, as publication
leaves it); a second table of the same source and period is uploaded, and the service protects
it against the first automatically. Its review page must list the first release (title in the
page's language, version, reference period, links to its review page and its public page), say
what the attacker is assumed to hold and what is not covered. A table naming no source, and a
source with nothing held yet, say so instead.

The Kazakh and Russian sentences are those of the UI catalogue (``/tmp/helper_po/history-ui.json``
until merged): the kk/ru assertions on them need the merged, compiled catalogue.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest

from publisher.db import transaction
from publisher.workflow_models import PUBLISHED, Release

from .conftest import SPEC
from .test_ui import _upload, client, login

SOURCE = "mvd-migration"
FIRST = {**SPEC, "id": "kids-by-region", "source_id": SOURCE, "reference_period": "2024",
         "title": {"kk": "Облыстар бойынша балалар", "ru": "Дети по регионам",
                   "en": "Children by region"}}
SECOND = {**SPEC, "id": "kids-by-region-sex", "source_id": SOURCE, "reference_period": "2024"}

# What each language must say (the catalogue's words; kk and ru need the merged catalogue).
WORDS = {
    "en": {"head": "Publication history and attacker model",
           "holds": "every version, every reference period and every table of the source",
           "private": "delivered privately on request",
           "not": "Not covered: tables of other sources, a person's contributions across sources",
           "covered": "Earlier releases the audit covered (1)",
           "none": "No earlier release of the source was held",
           "nosource": "The table names no data source (source_id)"},
    "ru": {"head": "История публикаций и модель атакующего",
           "holds": "каждой версией, каждым отчётным периодом и каждой таблицей источника",
           "private": "выданным по запросу",
           "not": "Не учтены: таблицы других источников",
           "covered": "Прежние выпуски, учтённые проверкой (1)",
           "none": "Ни один прежний выпуск источника",
           "nosource": "В таблице не указан источник данных (source_id)"},
    "kk": {"head": "Жариялау тарихы және шабуылдаушы моделі",
           "holds": "әр нұсқасы, әр есепті кезеңі және әр кестесі",
           "private": "сұрау бойынша жеке берілген",
           "not": "Ескерілмейді: басқа деректер көздерінің кестелері",
           "covered": "Тексеру ескерген бұрынғы шығарылымдар (1)",
           "none": "Деректер көзінің бұрынғы бірде-бір шығарылымы",
           "nosource": "Кестеде деректер көзі (source_id) көрсетілмеген"},
}


def _release_id(r) -> int:  # noqa: ANN001
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    m = re.search(r"/releases/(\d+)", r.headers["Location"])
    assert m, r.headers["Location"]
    return int(m.group(1))


def _publish(store, release_id: int) -> None:  # noqa: ANN001
    """Leave the release as publication does: published, with a publication time."""
    with transaction(store) as s:
        r = s.get(Release, release_id)
        assert r.protected_csv and r.report, "the upload was not protected"
        r.state = PUBLISHED
        r.published_at = datetime.now(UTC)


def _section(page: str) -> str | None:
    m = re.search(r'<section class="card" id="attacker-model">(.*?)</section>', page, re.S)
    return m.group(1) if m else None


def _text(part: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", part).split())


@pytest.fixture
def two_releases(app, store):  # noqa: ANN001, ANN201
    c = client(app)
    login(c, "prep")
    first = _release_id(_upload(c, spec=FIRST))
    _publish(store, first)
    second = _release_id(_upload(c, spec=SECOND))
    return c, first, second


def test_the_report_of_the_second_table_covers_the_first(store, two_releases):  # noqa: ANN001
    _, first, second = two_releases
    with transaction(store) as s:
        rep = s.get(Release, second).report
    assert rep["covered"] == [{"id": "kids-by-region", "version": "1.0.0",
                               "reference_period": "2024"}]
    assert "kids-by-region 1.0.0 (2024)" in rep["attacker_model"]


@pytest.mark.parametrize("lang", ["en", "ru", "kk"])
def test_review_page_lists_the_covered_releases_and_the_model(two_releases, lang):  # noqa: ANN001
    c, first, second = two_releases
    page = c.get(f"/releases/{second}?lang={lang}").get_data(as_text=True)
    part = _section(page)
    assert part is not None, "no attacker-model section on the review page"
    raw = html.unescape(part)
    text = _text(raw)
    w = WORDS[lang]
    # the covered release: title in the page's language, version, period, links
    rows = re.search(r'<table class="list" id="covered-releases">(.*?)</table>', raw, re.S)
    assert rows, raw
    cells = [_text(td) for td in re.findall(r"<td>(.*?)</td>", rows.group(1), re.S)]
    assert cells[:3] == [FIRST["title"][lang], "1.0.0", "2024"], cells
    assert f'href="/releases/{first}"' in rows.group(1)
    assert 'href="/v/kids-by-region/1.0.0"' in rows.group(1)
    # the attacker model: what the attacker holds, that it is this source, what is not covered
    assert w["head"] in html.unescape(page)
    assert w["holds"] in text and SOURCE in text and w["private"] in text, text
    assert w["covered"] in text, text
    assert w["not"] in text, text
    assert w["none"] not in text
    # the links lead to the covered release's pages
    assert c.get(f"/releases/{first}").status_code == 200
    assert c.get("/v/kids-by-region/1.0.0").status_code == 200


@pytest.mark.parametrize("lang", ["en", "ru", "kk"])
def test_a_first_table_of_a_source_says_nothing_earlier_was_held(app, lang):  # noqa: ANN001
    c = client(app)
    login(c, "prep")
    rid = _release_id(_upload(c, spec=FIRST))
    part = _section(c.get(f"/releases/{rid}?lang={lang}").get_data(as_text=True))
    assert part is not None
    text = _text(html.unescape(part))
    assert WORDS[lang]["none"] in text and WORDS[lang]["holds"] in text, text
    assert 'id="covered-releases"' not in part


@pytest.mark.parametrize("lang", ["en", "ru", "kk"])
def test_a_table_without_source_says_only_this_release_is_covered(app, lang):  # noqa: ANN001
    c = client(app)
    login(c, "prep")
    rid = _release_id(_upload(c))  # SPEC names no source_id
    part = _section(c.get(f"/releases/{rid}?lang={lang}").get_data(as_text=True))
    assert part is not None
    text = _text(html.unescape(part))
    assert WORDS[lang]["nosource"] in text and WORDS[lang]["holds"] not in text, text
    assert WORDS[lang]["not"] in text
