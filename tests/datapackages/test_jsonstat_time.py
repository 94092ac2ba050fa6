"""JSON-stat 2.0 with a time dimension from the reference period (issue 15), read back by pyjstat
and by a plain JSON-stat reading (strides over ``id`` / ``size``)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from dp_helpers import make_spec, protected_frame

LANGS = ("kk", "ru", "en")
TIME_LABEL = {"kk": "Кезең", "ru": "Период", "en": "Time period"}
UNIT = {"kk": "адам", "ru": "человек", "en": "persons"}


def _build(build, tmp_path: Path, spec, name: str = "pkg"):
    p = tmp_path / f"{name}.csv"
    protected_frame(spec).to_csv(p, index=False)
    return build(spec, p, name=name)


def _jsonstat(res, spec, lang: str) -> tuple[str, dict]:
    text = (res.path / "downloads" / f"{spec.id}-{lang}.stat.json").read_text("utf-8")
    return text, json.loads(text)


def _cells(js: dict) -> dict[tuple[str, ...], tuple[int | None, str | None]]:
    """Every cell of a JSON-stat dataset by its category ids, read with the format's rules:
    ``value`` in row-major order of ``id``, ``status`` keyed by the flat index."""
    ids, size = js["id"], js["size"]
    assert len(js["value"]) == math.prod(size)
    out = {}
    for k, v in enumerate(js["value"]):
        rest, codes = k, []
        for d, s in zip(reversed(ids), reversed(size), strict=True):
            rest, i = divmod(rest, s)
            codes.append(js["dimension"][d]["category"]["index"][i])
        out[tuple(reversed(codes))] = (v, (js.get("status") or {}).get(str(k)))
    return out


def _data(res, spec) -> dict[tuple[str, str], dict[str, str]]:
    with (res.path / "data" / f"{spec.id}.csv").open(encoding="utf-8", newline="") as fh:
        return {(r["region"], r["sex"]): r for r in csv.DictReader(fh)}


@pytest.mark.parametrize("period", ["2024", "2024-Q1", "2024-01"])
def test_reference_period_becomes_a_time_dimension(build, tmp_path, period):
    spec = make_spec(reference_period=period)
    res = _build(build, tmp_path, spec)
    data = _data(res, spec)
    for lg in LANGS:
        _, js = _jsonstat(res, spec, lg)
        assert js["id"] == ["region", "sex", "time_period"] and js["size"][-1] == 1
        assert js["role"] == {"geo": ["region"], "time": ["time_period"]}
        dim = js["dimension"]["time_period"]
        assert dim["label"] == TIME_LABEL[lg]
        assert dim["category"] == {"index": [period], "label": {period: period}}
        assert js["extension"]["unit"] == {"label": UNIT[lg], "decimals": 0}
        cells = _cells(js)
        assert len(cells) == len(data)
        for (region, sex, when), (value, status) in cells.items():
            src = data[(region, sex)]
            assert when == period
            assert value == (int(src["obs_value"]) if src["obs_value"] else None)
            assert status == (None if src["conf_status"] == "F" else src["conf_status"])


def test_pyjstat_reads_the_time_dimension(build, tmp_path):
    from pyjstat import pyjstat  # a dev dependency: missing fails, not skips
    spec = make_spec(reference_period="2024-Q1")
    res = _build(build, tmp_path, spec)
    data = _data(res, spec)
    for lg in LANGS:
        text, _ = _jsonstat(res, spec, lg)
        ds = pyjstat.Dataset.read(text)
        assert dict(ds["role"])["time"] == ["time_period"]
        df = ds.write("dataframe", naming="id")
        assert list(df.columns) == ["region", "sex", "time_period", "value"]
        assert set(df["time_period"]) == {"2024-Q1"} and len(df) == len(data)
        for _, row in df.iterrows():
            src = data[(row["region"], row["sex"])]
            if src["conf_status"] == "F":
                assert row["value"] == int(src["obs_value"])
            else:
                assert math.isnan(row["value"])
        labelled = ds.write("dataframe")
        assert TIME_LABEL[lg] in labelled.columns


def test_no_time_dimension_without_an_iso_period(build, tmp_path):
    """Words per language ("2023 жыл", "2023 год") are no period code: no invented dimension;
    the text stays in extension.reference_period."""
    spec = make_spec()  # reference_period in words
    res = _build(build, tmp_path, spec)
    _, js = _jsonstat(res, spec, "ru")
    assert js["id"] == ["region", "sex"] and js["role"] == {"geo": ["region"]}
    assert js["extension"]["reference_period"] == "2023 год"


def test_a_table_with_its_own_period_dimension_gets_no_second_one(build, tmp_path):
    spec = make_spec(reference_period="2024", dimensions=[
        {"name": "region", "codelist": "kz-regions", "hierarchy": {"_T": ["71", "75"]}},
        {"name": "year", "codes": ["2023", "2024"]},
    ])
    inner = {(r, y): 10 + i for i, (r, y) in enumerate(
        (r, y) for r in ("71", "75") for y in ("2023", "2024"))}
    p = tmp_path / "y.csv"
    protected_frame(spec, inner, marks={}).to_csv(p, index=False)
    res = build(spec, p, name="y")
    _, js = _jsonstat(res, spec, "en")
    assert js["id"] == ["region", "year"] and js["role"] == {"geo": ["region"], "time": ["year"]}


def test_the_time_id_does_not_take_a_dimension_name(build, tmp_path):
    spec = make_spec(reference_period="2024", dimensions=[
        {"name": "region", "codelist": "kz-regions", "hierarchy": {"_T": ["71", "75"]}},
        {"name": "time_period", "title": {"kk": "Уақыт", "ru": "Время", "en": "Time"},
         "codes": ["day", "night"]},
    ])
    inner = {(r, t): 10 + i for i, (r, t) in enumerate(
        (r, t) for r in ("71", "75") for t in ("day", "night"))}
    p = tmp_path / "t.csv"
    protected_frame(spec, inner, marks={}).to_csv(p, index=False)
    res = build(spec, p, name="t")
    _, js = _jsonstat(res, spec, "en")
    assert js["id"] == ["region", "time_period", "time_period_2"]
    assert js["role"]["time"] == ["time_period_2"]
    assert js["dimension"]["time_period_2"]["category"]["index"] == ["2024"]
