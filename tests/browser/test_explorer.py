"""The public explorer in Chromium: pivot, filter, fold/unfold with the keyboard only, chart,
tile map, the view's URL, downloads read back (pandas, openpyxl, pyjstat), axe-core in kk/ru/en
(no serious or critical violation) and no sideways scroll at 375 px except inside the grid.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web import explorer_data as xd

from .conftest import ARTIFACTS

JS = Path(__file__).resolve().parent / "js"
AXE = JS / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def axe_js() -> Path:
    """axe-core's axe.min.js (npm ``axe-core``, pinned in tests/browser/js/package-lock.json)."""
    if not AXE.is_file() and shutil.which("npm"):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS,
                       check=False, capture_output=True, timeout=300)
    if not AXE.is_file():
        if os.environ.get("CI"):
            pytest.fail("axe-core is not installed (npm ci in tests/browser/js)")
        pytest.skip("axe-core is not installed (npm ci in tests/browser/js)")
    return AXE


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[dict[str, Any]]:  # noqa: ANN001
    """The app on a loopback port with two published versions, a withdrawn series and a
    scheduled release (no worker: nothing is published here)."""
    from werkzeug.serving import make_server

    from publisher import explore
    from publisher.app import create_app
    from publisher.db import make_engine, session_factory, upgrade

    tmp = tmp_path_factory.mktemp("explorer")
    url = f"sqlite:///{tmp / 'ashyq.db'}"
    upgrade(url)
    engine = make_engine(url)
    data = xd.publish_versions(session_factory(engine), xd.build_packages(tmp / "pkg"))
    xd.noise_release(session_factory(engine))
    engine.dispose()
    explore.CACHE.clear()
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "browser-explorer",
                      "HUEY_IMMEDIATE": True, "WORK_DIR": str(tmp / "work"),
                      "OUTPUT_DIR": str(tmp / "out"), "PUBLIC_BASE_URL": "http://127.0.0.1"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"base": f"http://127.0.0.1:{server.server_port}", "tmp": tmp, **data}
    finally:
        server.shutdown()
        app.extensions["ashyq.engine"].dispose()


# a cell's visible text, without its fold/unfold button and the screen-reader-only words
VISIBLE = ("c => { const k = c.cloneNode(true); k.querySelectorAll('a.toggle, .vh')"
           ".forEach(e => e.remove()); return k.textContent.replace(/\\s+/g, ' ').trim(); }")


def grid_rows(page) -> list[list[str]]:  # noqa: ANN001
    return page.eval_on_selector_all(
        "#grid tbody tr", f"rows => rows.map(r => Array.from(r.children).map({VISIBLE}))")


def col_heads(page) -> list[str]:  # noqa: ANN001
    return page.eval_on_selector_all("#grid thead th.colhead", f"hs => hs.map({VISIBLE})")


def test_explorer_by_keyboard_chart_map_and_downloads(browser, site, tmp_path):
    import pandas as pd
    from openpyxl import load_workbook
    from pyjstat import pyjstat

    base = site["base"]
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    page = ctx.new_page()
    page.goto(f"{base}/v/kids/1.1.0?lang=en")
    page.wait_for_selector("#grid tbody tr")  # speed is measured in benchmarks/bench_web.py
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explorer-default.png"), full_page=True)
    assert [r[0] for r in grid_rows(page)] == ["Total", "Astana city", "Almaty city", "Shymkent city"]

    # pivot with the keyboard: citizenship to the rows, region to the columns
    page.focus("#place-citizenship")
    page.keyboard.press("ArrowUp")  # "one value (filter)" -> "columns"
    page.keyboard.press("ArrowUp")  # -> "rows"
    assert page.eval_on_selector("#place-citizenship", "e => e.value") == "rows"
    page.focus("#place-region")
    page.keyboard.press("ArrowDown")  # rows -> columns
    page.focus("#place-sex")
    page.keyboard.press("ArrowDown")  # columns -> one value
    # filter: tick Uzbekistan and Russia, untick the total; sex: Female only
    for code in ("UZ", "RU", "_T"):
        page.focus(f"#codes-citizenship input[value='{code}']")
        page.keyboard.press("Space")
    for code in ("_T", "M"):
        page.focus(f"#codes-sex input[value='{code}']")
        page.keyboard.press("Space")
    page.focus("#explorer-apply")
    page.keyboard.press("Enter")
    page.wait_for_url("**rows=citizenship**")
    assert "cols=region" in page.url and "c.sex=F" in page.url
    rows = grid_rows(page)
    assert [r[0] for r in rows] == ["Uzbekistan", "Russia"]
    heads = col_heads(page)
    assert heads == ["Total", "Astana city", "Almaty city", "Shymkent city"]
    # Astana city, Uzbekistan, female is secondary: a symbol with its footnote, not a number
    assert rows[0][2].startswith("×D")
    assert "secondary confidential" in page.inner_text("#footnotes")
    assert rows[1][3] == str(site["cells2"][("75", "RU", "F")])

    # unfold Astana city with the keyboard; the URL restores the unfolded view
    page.focus("#grid thead a.toggle >> nth=1")
    page.keyboard.press("Enter")
    page.wait_for_url("**7101**")
    heads = col_heads(page)
    assert "Almaty district" in heads and "Baikonyr district" in heads
    shared = page.url
    page.screenshot(path=str(ARTIFACTS / "explorer-pivot-unfolded.png"), full_page=True)
    other = ctx.new_page()
    other.goto(shared)
    assert grid_rows(other) == grid_rows(page)
    other.close()

    # the chart of the view: lines
    page.select_option("#chart-type", "line")
    page.click("#explorer-apply")
    page.wait_for_url("**chart=line**")
    assert page.locator("#view-chart svg polyline").count() >= 1
    # the map: Astana city (UZ, F) is suppressed -> hatched; Almaty city coloured
    assert page.get_attribute("#view-map g[data-code='71'] rect", "fill") == "url(#hatch)"
    assert page.get_attribute("#view-map g[data-code='75'] rect", "fill").startswith("#")
    assert page.get_attribute("#view-map g[data-code='55'] rect", "fill") == "#f0f0f0"
    page.locator("#view-map").screenshot(path=str(ARTIFACTS / "explorer-map.png"))

    # download the view and read it back
    def download(selector: str) -> Path:
        with page.expect_download() as info:
            page.click(selector)
        path = tmp_path / info.value.suggested_filename
        info.value.save_as(path)
        return path

    csv = download("#dl-csv-bom")
    assert csv.read_bytes().startswith(b"\xef\xbb\xbf")
    df = pd.read_csv(csv, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert set(df["Citizenship"]) == {"Uzbekistan", "Russia"} and set(df["Sex"]) == {"Female"}
    assert len(df) == 2 * 6  # 2 citizenships x (total, Astana, 2 districts, Almaty, Shymkent)
    row = df[(df["Region (code)"] == "75") & (df["Citizenship (code)"] == "RU")].iloc[0]
    assert int(row["Value"]) == site["cells2"][("75", "RU", "F")]
    supp = df[df["Flag"].isin(["C", "D"])]
    assert len(supp) and (supp["Value"] == "").all()
    ws = load_workbook(download("#dl-xlsx")).active
    cells = [[c.value for c in r] for r in ws.iter_rows()]
    header = next(i for i, r in enumerate(cells) if r[0] == "Citizenship")
    assert cells[header][1:4] == ["Total", "Astana city", "Almaty district"]
    assert ws.print_title_rows == f"${header + 1}:${header + 1}"
    doc = json.loads(download("#dl-jsonstat").read_text("utf-8"))
    frame = pyjstat.from_json_stat(doc, naming="id")[0]
    assert len(frame) == 12 and set(frame["citizenship"]) == {"UZ", "RU"}
    assert frame["value"].isna().sum() == len(doc["status"])
    ctx.close()


def test_a_too_large_view_and_bad_urls_in_the_browser(browser, site):
    base = site["base"]
    page = browser.new_page()
    page.goto(f"{base}/v/kids/1.1.0?lang=ru&c.region=XX")
    assert "«Регион» нет кода 'XX'" in page.inner_text("#error-message")
    page.goto(f"{base}/v/secret-series/1.0.0?lang=kk")
    assert "жарияланған нұсқасы жоқ" in page.inner_text("#error-message")
    assert "Болашақ" not in page.content()
    page.close()


PAGES = ["/", "/calendar", "/v/kids", "/v/kids/1.1.0",
         "/v/kids/1.1.0?rows=region,sex&cols=citizenship&c.region=_T,71,7101,7102,75&c.sex=F,M",
         "/v/noisy/1.0.0?moe=1&chart=line", "/v/old-flows/1.0.0", "/v/no-such"]


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_axe_finds_no_serious_violation(browser, site, axe_js, lang):
    ctx = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    found = []
    for path in PAGES:
        sep = "&" if "?" in path else "?"
        page.goto(f"{site['base']}{path}{sep}lang={lang}")
        page.add_script_tag(path=str(axe_js))
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        assert len(result["passes"]) > 10, path  # axe did run its rules on the page
        for v in result["violations"]:
            if v["impact"] in ("serious", "critical"):
                found.append((path, v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]))
    ctx.close()
    assert not found, found


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_nothing_scrolls_sideways_at_375px_but_the_grid(browser, site, lang):
    ctx = browser.new_context(viewport={"width": 375, "height": 800}, device_scale_factor=1)
    page = ctx.new_page()
    for i, path in enumerate(PAGES):
        sep = "&" if "?" in path else "?"
        page.goto(f"{site['base']}{path}{sep}lang={lang}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, (path, width)
        wide = page.evaluate("""() => Array.from(document.querySelectorAll('body *')).filter(e => {
            const r = e.getBoundingClientRect();
            return r.right > 376 && !e.closest('.grid-wrap, .table-wrap') && getComputedStyle(e).position !== 'absolute';
        }).map(e => e.tagName + '.' + e.className).slice(0, 5)""")
        assert not wide, (path, wide)
        if lang == "kk" and i in (0, 3):
            page.screenshot(path=str(ARTIFACTS / f"explorer-375-{i}.png"), full_page=True)
    ctx.close()
