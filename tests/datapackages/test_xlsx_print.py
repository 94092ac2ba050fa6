"""The XLSX downloads opened and printed by LibreOffice (headless, Debian's libreoffice-calc-nogui,
installed by scripts/test-setup.d/50-libreoffice.sh): the 2,970-cell demo table prints on fewer
than 15 A4 pages in each language, and LibreOffice reads back the values and the suppression
symbol the package's CSV says."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from disclosure.protect import published_frame
from disclosure.table import read_cells
from publisher.service import read_table_file
from publisher.specs import load_spec

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "config" / "sample"
SOFFICE = os.environ.get("ASHYQ_SOFFICE") or shutil.which("soffice")


@pytest.fixture(scope="module")
def soffice() -> str:
    if not SOFFICE:
        if os.environ.get("CI"):
            pytest.fail("LibreOffice (soffice) not found: scripts/test-setup.d/50-libreoffice.sh")
        pytest.skip("LibreOffice is not installed (scripts/test-setup.d/50-libreoffice.sh)")
    return SOFFICE


def _convert(soffice: str, src: Path, fmt: str, out: Path, profile: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([soffice, "--headless", f"-env:UserInstallation=file://{profile}",
                    "--convert-to", fmt, "--outdir", str(out), str(src)],
                   check=True, capture_output=True, timeout=180)
    (path,) = [p for p in out.iterdir() if p.stem == src.stem]
    return path


@pytest.fixture(scope="module")
def demo_package(tmp_path_factory: pytest.TempPathFactory):
    """The demo table packaged with a simple pattern (cells below 5 suppressed): printing is
    about layout, not about the protection."""
    from datapackages import package_table
    from publisher.settings import config_path

    tmp = tmp_path_factory.mktemp("demo")
    spec = load_spec(SAMPLE / "children.yaml")
    table = read_cells(read_table_file(SAMPLE / "children.csv"), spec, "children.csv")
    conf = np.where((table.values > 0) & (table.values < 5), "C", "F").astype(object)
    csv_path = tmp / "protected.csv"
    published_frame(table, conf).to_csv(csv_path, index=False)
    return package_table(spec, csv_path, tmp / "pkg", codelist_dir=config_path("codelists"))


@pytest.mark.parametrize("lang", ["kk", "ru", "en"])
def test_demo_table_prints_on_few_pages(soffice, demo_package, tmp_path, lang) -> None:
    (xlsx,) = (demo_package.path / "downloads").glob(f"*-{lang}.xlsx")
    pdf = _convert(soffice, xlsx, "pdf", tmp_path / "pdf", tmp_path / "profile")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))
    assert 1 <= pages < 15, pages


def test_libreoffice_reads_the_crosstab(soffice, demo_package, tmp_path) -> None:
    (xlsx,) = (demo_package.path / "downloads").glob("*-en.xlsx")
    out = _convert(soffice, xlsx, "csv:Text - txt - csv (StarCalc):44,34,76,1", tmp_path / "csv",
                   tmp_path / "profile")
    rows = list(csv.reader(io.StringIO(out.read_text("utf-8"))))
    assert rows[0][0].startswith("Migrant children")
    data = list(csv.DictReader((demo_package.path / "data").glob("*.csv").__next__().open()))
    suppressed = sum(r["conf_status"] != "F" for r in data)
    body = [r for r in rows[6:] if len(r) > 2 and any(v.strip() for v in r[2:])]
    symbols = sum(v == "x" for r in body for v in r[2:])
    assert symbols == suppressed > 0
    grand = next(r for r in data if all(r[d] == "_T" for d in
                                        ("region", "citizenship", "age", "sex")))
    # the first data row is the grand total across the first column block
    assert body[0][:2] == ["Total", "Total"]
    assert body[0][2].replace(",", "") == grand["obs_value"]


def test_libreoffice_runs_no_formula_from_the_csv_files(soffice, tmp_path) -> None:
    """Labels that a spreadsheet would run (``=HYPERLINK(…)``, ``@SUM``, ``+``, ``-``) stay text
    when LibreOffice opens the package's CSV files (code lists and the labelled CSV)."""
    from openpyxl import load_workbook

    from datapackages import package_table
    from publisher.settings import config_path
    from publisher.specs import spec_from_mapping

    payloads = ["=HYPERLINK(\"http://evil.example\",\"x\")", "@SUM(1+1)*cmd|' /C calc'!A0",
                "+1+1", "-1+1"]
    spec = spec_from_mapping({
        "id": "inject", "title": {"kk": "Кесте", "ru": "Таблица", "en": "Table"},
        "dimensions": [{"name": "region", "codes": ["A", "B", "C", "D"],
                        "labels": {c: {"kk": p, "ru": p, "en": p}
                                   for c, p in zip("ABCD", payloads, strict=True)}},
                       {"name": "sex", "codes": ["F", "M"]}],
        "disclosure": {"min_frequency": 3}})
    df = read_table_file_from_text("region,sex,obs_value\n" + "".join(
        f"{r},{s},{10 + i}\n" for i, (r, s) in enumerate((r, s) for r in "ABCD" for s in "FM")))
    table = read_cells(df, spec, "t.csv")
    csv_path = tmp_path / "p.csv"
    published_frame(table, np.full(table.n_cells, "F", dtype=object)).to_csv(csv_path, index=False)
    res = package_table(spec, csv_path, tmp_path / "pkg", codelist_dir=config_path("codelists"))
    for src in [res.path / "codelists" / "region.csv", res.path / "downloads" / "inject-en.csv"]:
        out = _convert(soffice, src, "xlsx", tmp_path / f"x-{src.parent.name}",
                       tmp_path / "profile")
        ws = load_workbook(out).worksheets[0]
        texts = [c for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
        assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
        for p in payloads[:2]:
            assert any(c.value.lstrip("'") == p for c in texts), (src.name, p)


def read_table_file_from_text(text: str):  # noqa: ANN201
    from publisher.service import read_table_bytes

    return read_table_bytes(text.encode(), source="t.csv")
