"""An XLSX upload that would inflate far beyond its size (a zip bomb) is refused before parsing,
quickly and with a clear message; an ordinary workbook is still read."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from openpyxl import Workbook

from disclosure.table import InputError
from publisher.service import read_upload


def _bomb(inflated: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", b"<" + b" " * inflated + b">")
    return out.getvalue()


def test_a_zip_bomb_is_refused_before_parsing() -> None:
    data = _bomb(60 * 2**20)
    assert len(data) < 2**20  # a small upload...
    t0 = time.perf_counter()
    with pytest.raises(InputError) as e:
        read_upload("bomb.xlsx", data)
    assert time.perf_counter() - t0 < 2.0  # ...refused without inflating it
    msg = str(e.value)
    assert "bomb.xlsx" in msg and "would unpack to 60 MB" in msg and "CSV" in msg


def test_not_a_zip_is_a_clear_refusal() -> None:
    with pytest.raises(InputError, match="not a readable XLSX workbook"):
        read_upload("table.xlsx", b"region,sex,obs_value\n")


def test_an_ordinary_workbook_is_read() -> None:
    wb = Workbook()
    ws = wb.active
    for row in (["region", "sex", "obs_value"], ["A", "F", 12], ["A", "M", 3]):
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    df = read_upload("table.xlsx", buf.getvalue())
    assert list(df.columns) == ["region", "sex", "obs_value"]
    assert df["obs_value"].tolist() == ["12", "3"]
