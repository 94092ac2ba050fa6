"""The explorer on public version pages: labels from the package's code lists, pivot, filter,
fold/unfold, suppressed cells, margins of error, the chart and tile map, the view's downloads,
what changed, and bad input (never a 500, never a suppressed value)."""

from __future__ import annotations

import html
import io
import json
import re

import numpy as np
import pandas as pd
import pytest

from publisher import explore as ex
from publisher.web import present

from . import explorer_data as xd


@pytest.fixture(scope="module")
def packages(tmp_path_factory):  # noqa: ANN001, ANN201
    return xd.build_packages(tmp_path_factory.mktemp("packages"))


@pytest.fixture
def site(app, store, packages):  # noqa: ANN001, ANN201
    ex.CACHE.clear()
    data = xd.publish_versions(store, packages)
    xd.noise_release(store)
    return {"client": app.test_client(), **data}


def page(c, path: str) -> tuple[int, str]:  # noqa: ANN001
    r = c.get(path)
    return r.status_code, html.unescape(r.get_data(as_text=True))


def cell_text(h: str) -> str:
    """A header cell's visible label (without its fold/unfold button)."""
    return re.sub(r"<[^>]+>", "", re.sub(r'<a class="toggle".*?</a>', "", h, flags=re.S)).strip()


def grid_text(body: str) -> str:
    m = re.search(r'<table class="grid".*?</table>', body, re.S)
    assert m, "no grid on the page"
    return m.group(0)


def test_labels_come_from_the_package_code_lists(site, store):
    from publisher.workflow_models import Release

    with store() as s:
        r = s.query(Release).filter_by(series="kids", version="1.1.0").one()
        labels = present.code_labels(r, "ru")
        assert labels["region"]["71"] == "город Астана"  # codelist: kz-regions
        assert labels["citizenship"]["UZ"] == "Узбекистан"  # iso3166 via CLDR
        assert labels["sex"]["_T"] == "Всего"
        assert present.label(r, "region", "_T", "kk") == "Барлығы"
        assert present.codelists(r)["region"]["codes"][:3] == ["_T", "71", "7101"]


def test_default_view_in_each_language(site):
    c = site["client"]
    for lang, total, region, city in (("kk", "Барлығы", "Өңір", "Астана қаласы"),
                                      ("ru", "Всего", "Регион", "город Астана"),
                                      ("en", "Total", "Region", "Astana city")):
        status, body = page(c, f"/v/kids/1.1.0?lang={lang}")
        assert status == 200
        grid = grid_text(body)
        assert total in grid and region in grid and city in grid
        assert "obs_value" not in grid and "conf_status" not in grid
        assert f'<html lang="{lang}">' in body
    # the grand total cell is the published one
    cells = site["cells2"]
    status, body = page(c, "/v/kids/1.1.0?lang=en&rows=region&cols=sex&c.region=_T&c.sex=_T")
    assert f"{cells[('_T', '_T', '_T')]:,}".replace(",", "\u202f") in grid_text(body)


def test_pivot_filter_and_the_url_restores_the_view(site):
    c = site["client"]
    url = "/v/kids/1.1.0?lang=en&rows=citizenship,sex&cols=region&c.region=71,75&c.citizenship=UZ,RU&c.sex=F"
    status, body = page(c, url)
    assert status == 200
    grid = grid_text(body)
    heads = re.findall(r'<th scope="col"[^>]*class="colhead[^"]*">(.*?)</th>', grid, re.S)
    assert [cell_text(h) for h in heads] == ["Astana city", "Almaty city"]
    rows = re.findall(r'<th scope="row"[^>]*>(.*?)</th>', grid, re.S)
    assert [cell_text(r) for r in rows] == [
        "Uzbekistan", "Female", "Russia", "Female"]
    # Almaty city, Russia, female is published: its value is in the grid
    v = site["cells2"][("75", "RU", "F")]
    assert f">{v}<" in grid.replace("\u202f", "")
    # the same URL gives the same page (shareable)
    assert grid_text(page(c, url)[1]) == grid
    # the form's submission redirects to the canonical address of the view
    r = c.get("/v/kids/1.1.0?apply=1&place.region=cols&place.citizenship=rows&place.sex=filter"
              "&c.region=71&c.region=75&c.citizenship=UZ&c.citizenship=RU&c.sex=F")
    assert r.status_code == 302
    loc = r.headers["Location"]
    assert "rows=citizenship" in loc and "cols=region" in loc and "c.region=71,75" in loc
    # a filter with several values ticked moves to the rows
    r = c.get("/v/kids/1.1.0?apply=1&place.region=rows&place.citizenship=filter&place.sex=cols"
              "&c.citizenship=UZ&c.citizenship=RU")
    assert "rows=region,citizenship" in r.headers["Location"]


def test_fold_and_unfold_a_hierarchy(site):
    c = site["client"]
    status, body = page(c, "/v/kids/1.1.0?lang=en")
    assert "Alatau district" not in grid_text(body)  # folded by default
    m = re.search(r'<a class="toggle" href="([^"]+)">\+<span class="vh"> Unfold Almaty city', body)
    assert m, "no unfold button for Almaty city"
    status, body = page(c, m.group(1).replace("&amp;", "&"))
    grid = grid_text(body)
    assert "Alatau district" in grid and "Almaly district" in grid and "Yesil" not in grid
    m = re.search(r'<a class="toggle" href="([^"]+)">−<span class="vh"> Fold Almaty city', body)
    assert m
    assert "Alatau district" not in grid_text(page(c, m.group(1).replace("&amp;", "&"))[1])


def test_suppressed_cells_are_a_symbol_with_a_footnote_and_never_leak(site):
    c = site["client"]
    url = "/v/kids/1.1.0?lang=en&rows=region&cols=sex&c.region=71,7101,7102&c.citizenship=UZ"
    status, body = page(c, url)
    grid = grid_text(body)
    assert 'class="num supp supp-C">×<sup>C</sup>' in grid
    assert 'class="num supp supp-D">×<sup>D</sup>' in grid
    assert "primary confidential" in body and "secondary confidential" in body
    assert 'id="fn-C"' in body and 'id="fn-D"' in body
    # exactly the published values are shown: a number in the grid is a free cell's value
    published = {tuple(line.split(",")[:3]): line.split(",")[3]
                 for line in site["csv2"].decode().splitlines()[1:]}
    shown = [n.replace("\u202f", "") for n in re.findall(r'<td class="num">([\d\u202f]+)</td>', grid)]
    expected = [published[(r, "UZ", s)] for r in ("71", "7101", "7102") for s in ("_T", "F", "M")]
    assert shown == [v for v in expected if v]
    assert "" in expected  # some of them are suppressed
    q = url.split("?", 1)[1]
    df = pd.read_csv(io.BytesIO(c.get(f"/v/kids/1.1.0/view.csv?{q}").data), dtype=str,
                     keep_default_na=False)
    assert len(df) == 9
    for rec in df.to_dict(orient="records"):
        key = (rec["Region (code)"], rec["Citizenship (code)"], rec["Sex (code)"])
        assert rec["Value"] == published[key]
        assert (rec["Flag"] in ("C", "D")) == (published[key] == "")
    doc = json.loads(c.get(f"/v/kids/1.1.0/view.json?{q}").data)
    assert all((v is None) == (str(i) in doc["status"]) for i, v in enumerate(doc["value"]))
    assert raw_value_absent(site["cells2"][("7101", "UZ", "F")], grid)


def raw_value_absent(value: int, text: str) -> bool:
    """No number in ``text``'s cells equals ``value`` (a primary cell's raw count)."""
    return not re.search(rf'<td class="num">{value}(\s|<)', text)


def test_margins_of_error_on_demand(site):
    c = site["client"]
    status, body = page(c, "/v/noisy/1.0.0?lang=en")
    assert status == 200 and "± " not in grid_text(body)
    assert 'id="moe"' in body
    status, body = page(c, "/v/noisy/1.0.0?lang=en&moe=1")
    grid = grid_text(body)
    assert re.search(r'<small class="moe">± \d+</small>', grid)
    assert "95% margin of error" in body
    # labels of a release without a package come from the spec's code lists
    assert "Astana city" in grid and "Total" in grid
    # on a table without margins of error the option is absent and ignored
    assert 'id="moe"' not in page(c, "/v/kids/1.1.0?lang=en&moe=1")[1]


def test_chart_and_tile_map_of_the_view(site):
    c = site["client"]
    status, body = page(c, "/v/kids/1.1.0?lang=en&c.citizenship=UZ&chart=line")
    assert '<polyline' in body and 'id="view-chart"' in body
    status, body = page(c, "/v/kids/1.1.0?lang=en&rows=region&cols=sex&c.sex=F,M&c.citizenship=UZ")
    assert 'id="view-chart"' in body and "<rect" in body
    m = re.search(r'<section class="map-wrap" id="view-map".*?</section>', body, re.S)
    assert m
    svg = m.group(0)
    # Astana city (71) for citizenship UZ and sex F is suppressed: hatched, never coloured
    tile71 = re.search(r'<g class="tile ([\w-]+)" data-code="71">.*?</g>', svg, re.S)
    assert tile71.group(1) == "tile-suppressed" and 'fill="url(#hatch)"' in tile71.group(0)
    tile75 = re.search(r'<g class="tile ([\w-]+)" data-code="75">.*?</g>', svg, re.S)
    assert tile75.group(1) == "tile-value" and "#" in tile75.group(0)
    v75 = site["cells2"][("75", "UZ", "F")]
    assert str(v75) in tile75.group(0)
    # a region not in the table is "no data", not a value
    assert re.search(r'<g class="tile tile-nodata" data-code="55">', svg)
    assert "Citizenship: Uzbekistan; Sex: Female" in svg
    assert page(c, "/v/kids/1.1.0?chart=none")[1].count('id="view-chart"') == 0


def test_view_downloads_read_back(site):
    from openpyxl import load_workbook
    from pyjstat import pyjstat

    c = site["client"]
    q = "rows=region&cols=sex&c.region=_T,71,75,79&c.sex=_T,F,M&c.citizenship=RU"
    raw = c.get(f"/v/kids/1.1.0/view.csv?lang=ru&{q}").data
    assert not raw.startswith(b"\xef\xbb\xbf")
    bom = c.get(f"/v/kids/1.1.0/view.csv?lang=ru&bom=1&{q}").data
    assert bom.startswith(b"\xef\xbb\xbf") and bom[3:] == raw
    df = pd.read_csv(io.BytesIO(bom), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(df.columns[:2]) == ["Регион", "Регион (код)"]
    assert len(df) == 12 and set(df["Гражданство"]) == {"Россия"}
    row = df[(df["Регион (код)"] == "71") & (df["Пол (код)"] == "F")].iloc[0]
    assert row["Регион"] == "город Астана" and row["Пол"] == "Женщины"
    assert int(row["Значение"]) == site["cells2"][("71", "RU", "F")]

    wb = load_workbook(io.BytesIO(c.get(f"/v/kids/1.1.0/view.xlsx?lang=en&{q}").data))
    ws = wb.active
    values = [[cell.value for cell in r] for r in ws.iter_rows()]
    flat = [str(x) for r in values for x in r if x is not None]
    assert values[0][0] == "Migrant children (synthetic)"
    assert "Unit: persons" in flat and "Reference period: 2025" in flat
    assert "Citizenship: Russia" in flat
    header = next(i for i, r in enumerate(values) if r[0] == "Region")
    assert values[header][1:4] == ["Total", "Female", "Male"]
    assert ws.print_title_rows == f"${header + 1}:${header + 1}"  # repeated on every page
    astana = next(r for r in values if r[0] == "Astana city")
    assert astana[2] == site["cells2"][("71", "RU", "F")]
    assert any(s.startswith("How to cite: ") for s in flat)
    assert any("Licence: " in s for s in flat) and any("Source: " in s for s in flat)

    q2 = "rows=region&cols=sex&c.region=71,7101,7102&c.citizenship=UZ"
    wb = load_workbook(io.BytesIO(c.get(f"/v/kids/1.1.0/view.xlsx?lang=en&{q2}").data))
    flat = [str(x.value) for r in wb.active.iter_rows() for x in r if x.value is not None]
    assert "× C" in flat and "× D" in flat
    assert any(s.startswith("× C: primary confidential") for s in flat)

    body = c.get(f"/v/kids/1.1.0/view.json?lang=kk&{q2}").data
    doc = json.loads(body)
    assert doc["class"] == "dataset" and doc["id"] == ["region", "sex", "citizenship"]
    assert doc["size"] == [3, 3, 1]
    assert doc["dimension"]["region"]["category"]["label"]["71"] == "Астана қаласы"
    assert doc["dimension"]["sex"]["category"]["label"]["_T"] == "Барлығы"
    assert doc["dimension"]["region"]["category"]["child"] == {"71": ["7101", "7102"]}
    # (7101, F) is the 4th value: suppressed, null with its flag
    assert doc["value"][4] is None and doc["status"]["4"] == "C"
    frame = pyjstat.from_json_stat(json.loads(body), naming="id")[0]
    assert len(frame) == 9 and frame["value"].isna().sum() == len(doc["status"])


def test_what_changed_lists_cells_with_labels(site):
    c = site["client"]
    status, body = page(c, "/v/kids/1.1.0?lang=ru")
    m = re.search(r'<table class="list" id="changed-cells">.*?</table>', body, re.S)
    assert m
    table = m.group(0)
    assert "Регион: город Шымкент; Гражданство: Россия; Пол: Женщины" in table
    before = site["cells1"][("79", "RU", "F")]
    after = site["cells2"][("79", "RU", "F")]
    assert re.search(rf"Пол: Женщины</td><td class=\"num\">{before}</td><td class=\"num\">{after}</td>",
                     table.replace("\u202f", ""))
    assert "Ревизия" in body or "The 2025 figures." in body  # the notice


@pytest.mark.parametrize("query, words", [
    ("c.nation=UZ", {"en": "There is no variable 'nation'", "ru": "нет переменной 'nation'",
                     "kk": "'nation' айнымалысы жоқ"}),
    ("c.region=XX", {"en": "Region has no code 'XX'", "ru": "«Регион» нет кода 'XX'",
                     "kk": "«Өңір» өлшемінде 'XX' коды жоқ"}),
    ("rows=zzz", {"en": "There is no variable 'zzz'", "ru": "нет переменной 'zzz'",
                  "kk": "'zzz' айнымалысы жоқ"}),
    ("rows=region&cols=region", {"en": "not in both", "ru": "не в обоих", "kk": "екеуінде бірдей"}),
    ("c.citizenship=UZ,RU", {"en": "Put Citizenship in the rows", "ru": "Поместите «Гражданство»",
                             "kk": "«Азаматтық» айнымалысын"}),
    ("chart=pie", {"en": "Unknown chart type 'pie'", "ru": "Неизвестный тип диаграммы 'pie'",
                   "kk": "'pie' диаграмма түрі белгісіз"}),
])
def test_bad_explorer_urls_get_a_page_in_the_readers_language(site, query, words):
    c = site["client"]
    for lang, text in words.items():
        status, body = page(c, f"/v/kids/1.1.0?lang={lang}&{query}")
        assert status == 400, (query, lang)
        assert text in body, (query, lang, re.search(r'id="error-message"[^>]*>([^<]*)', body).group(1))
        assert f'<html lang="{lang}">' in body
        status, _ = page(c, f"/v/kids/1.1.0/view.csv?lang={lang}&{query}")
        assert status == 400


def test_a_view_too_large_says_how_many_cells_and_offers_the_download(site, monkeypatch):
    from publisher.web import public

    monkeypatch.setattr(public, "PAGE_MAX_CELLS", 20)
    c = site["client"]
    q = "rows=region,citizenship&cols=sex&c.region=_T,71,7101,7102,75,7501,7502&c.citizenship=_T,UZ,RU"
    status, body = page(c, f"/v/kids/1.1.0?lang=en&{q}")
    assert status == 200 and 'id="too-large"' in body and '<table class="grid"' not in body
    assert "This view has 63 cells; a page shows at most 20." in body
    m = re.search(r'href="(/v/kids/1.1.0/view.csv\?[^"]+)"', body)
    assert m
    assert c.get(m.group(1).replace("&amp;", "&")).status_code == 200
    status, body = page(c, f"/v/kids/1.1.0?lang=ru&{q}")
    assert "В этом представлении ячеек: 63; на странице помещается не более 20." in body
    monkeypatch.setattr(public, "DOWNLOAD_MAX_CELLS", 30)
    assert c.get(f"/v/kids/1.1.0/view.csv?{q}").status_code == 413


def test_unknown_and_embargoed_series_look_the_same(site):
    c = site["client"]
    for lang in ("kk", "ru", "en"):
        a_status, a = page(c, f"/v/no-such-series?lang={lang}")
        b_status, b = page(c, f"/v/secret-series?lang={lang}")
        assert a_status == b_status == 404
        assert a.replace("no-such-series", "X") == b.replace("secret-series", "X")
        for path in ("/v/secret-series/1.0.0", "/v/secret-series/1.0.0/view.csv",
                     "/v/secret-series/1.0.0/data.csv", "/v/secret-series/1.0.0/view.json"):
            status, body = page(c, f"{path}?lang={lang}")
            assert status == 404 and "Future" not in body and "Будущая" not in body
    status, body = page(c, "/v/old-flows/1.0.0/view.csv?lang=en")
    assert status == 410
    status, body = page(c, "/v/kids/1.1.0/view.pdf?lang=en")
    assert status == 404 and "csv, xlsx or json" in body


def test_cube_is_built_once_per_version(site):
    c = site["client"]
    ex.CACHE.clear()
    c.get("/v/kids/1.1.0")
    misses = ex.CACHE.misses
    for q in ("rows=sex", "rows=region&cols=citizenship", "c.region=_T,71"):
        assert c.get(f"/v/kids/1.1.0?{q}").status_code == 200
    assert ex.CACHE.misses == misses


def test_engine_selects_published_cells_only():
    dims = [ex.Dim("a", ("_T", "x", "y"), {"x": "_T", "y": "_T"}, {}),
            ex.Dim("b", ("_T", "p", "q"), {"p": "_T", "q": "_T"}, {})]
    csv = ("a,b,obs_value,obs_status,conf_status\n_T,_T,10,A,F\n_T,p,,Q,D\n_T,q,,Q,D\n"
           "x,_T,6,A,F\nx,p,,Q,C\nx,q,,Q,D\ny,_T,4,A,F\ny,p,3,A,F\ny,q,1,A,F\n")
    cube = ex.build_cube(csv.encode(), dims)
    view = ex.parse_view(cube, {"rows": "a", "cols": "b"})
    g = ex.compute(cube, view)
    assert g.shape == (3, 3)
    assert np.isnan(g.value[1, 1]) and g.status[1, 1] == ex.PRIMARY
    assert g.value[2].tolist() == [4, 3, 1]
    flipped = ex.compute(cube, ex.parse_view(cube, {"rows": "b", "cols": "a"}))
    assert np.array_equal(np.nan_to_num(flipped.value.T, nan=-1), np.nan_to_num(g.value, nan=-1))
    # a number in a suppressed row is never trusted
    leaky = csv.replace("x,p,,Q,C", "x,p,2,Q,C").encode()
    assert np.isnan(ex.build_cube(leaky, dims).value[1, 1])
    with pytest.raises(ex.ViewTooLarge) as e:
        ex.compute(cube, view, max_cells=4)
    assert e.value.cells == 9


def test_the_fast_diff_agrees_with_the_row_by_row_diff(site, store):
    from publisher.web import public
    from publisher.workflow_models import Release

    with store() as s:
        new = s.query(Release).filter_by(series="kids", version="1.1.0").one()
        with site["client"].application.test_request_context():
            from publisher.web.common import close_db

            fast = ex.diff(public.cube(new.previous), public.cube(new), limit=10_000)
            close_db()
        slow = present.diff(new.previous, new)
    assert fast["changed_count"] == slow["changed_count"] > 0
    assert fast["added"] == slow["added"] == 0 and fast["removed"] == slow["removed"] == 0
    key = lambda ch: tuple(ch["codes"].values())  # noqa: E731
    assert sorted(fast["changed"], key=key) == sorted(slow["changed"], key=key)


def test_the_cube_is_kept_on_disk_for_other_processes(site, app):
    from pathlib import Path

    c = site["client"]
    ex.CACHE.clear()
    assert c.get("/v/kids/1.1.0").status_code == 200
    saved = list((Path(app.config["WORK_DIR"]) / "explore").glob("*.npz"))
    assert saved
    before = grid_text(page(c, "/v/kids/1.1.0?lang=en&c.citizenship=UZ")[1])
    ex.CACHE.clear()  # as a new process would: the arrays come from the file
    assert grid_text(page(c, "/v/kids/1.1.0?lang=en&c.citizenship=UZ")[1]) == before
    for f in saved:  # a damaged file is ignored and rebuilt from the table
        f.write_bytes(b"not an npz")
    ex.CACHE.clear()
    assert grid_text(page(c, "/v/kids/1.1.0?lang=en&c.citizenship=UZ")[1]) == before


def test_a_withdrawn_version_serves_no_values_not_even_in_what_changed(site, store):
    from publisher.db import transaction
    from publisher.workflow_models import Release

    with transaction(store) as s:
        s.query(Release).filter_by(series="kids", version="1.0.0").one().state = "withdrawn"
    c = site["client"]
    status, body = page(c, "/v/kids/1.1.0?lang=en")
    assert status == 200 and "72 cells changed" in body
    assert 'id="changed-cells"' not in body  # the withdrawn 1.0.0 values are not listed
    status, body = page(c, "/v/kids/1.0.0?lang=en")
    assert status == 200 and 'id="withdrawn"' in body and '<table class="grid"' not in body
    for path in ("/v/kids/1.0.0/view.csv", "/v/kids/1.0.0/view.json", "/v/kids/1.0.0/data.csv"):
        assert c.get(path).status_code == 410
