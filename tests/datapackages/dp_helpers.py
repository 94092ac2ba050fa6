"""Helpers for the data-package tests: a small spec, its protected CSV (a few cells marked C/D by hand), complete protection reports, and validators.

The protected CSVs are built with ``disclosure.table.read_cells`` + ``disclosure.protect.
published_frame`` so these tests do not depend on the suppression engine. The protection reports
(:func:`protection_report`) come from the real protection of the same table, so they are complete
reports of the method's type; a test overrides the fields it is about.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from disclosure.protect import protect, published_frame
from disclosure.report import report_from_dict
from disclosure.table import read_cells
from publisher.settings import config_path
from publisher.specs import spec_from_mapping

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "tests" / "datapackages" / "js"
CREATED = datetime(2026, 3, 20, 9, 30, 0, tzinfo=UTC)
LANDING = "https://data.example.kz/dataset/migrants-by-region-v1-1-0"
CODELISTS = config_path("codelists")  # the shipped code lists (package_table's codelist_dir)

TITLE = {"kk": "Өңірлер мен жыныс бойынша көшіп келушілер",
         "ru": "Прибывшие мигранты по регионам и полу",
         "en": "Arriving migrants by region and sex"}
PUBLISHER = {"kk": "Ұлттық статистика бюросы", "ru": "Бюро национальной статистики",
             "en": "Bureau of National Statistics"}

# Inner counts; suppression marks below are chosen by hand (protection is not under test here).
INNER = {("7101", "F"): 12, ("7101", "M"): 3, ("7102", "F"): 20, ("7102", "M"): 4,
         ("7501", "F"): 30, ("7501", "M"): 31}
MARKS = {("7101", "M"): "C", ("7102", "M"): "C", ("7101", "F"): "D", ("7102", "F"): "D"}
RAW_SUPPRESSED = {3, 4, 12, 20}  # the values behind C/D cells: must never appear in errors


def spec_mapping(**overrides: Any) -> dict:
    m = {
        "id": "migrants-by-region",
        "version": "1.1.0",
        "title": dict(TITLE),
        "description": {
            "kk": "Тұрақты тұруға келген адамдар саны, өңірлер мен жыныс бойынша.",
            "ru": "Число лиц, прибывших на постоянное жительство, по регионам и полу.",
            "en": "Persons arriving for permanent residence, by region and sex.",
        },
        "dimensions": [
            {"name": "region", "codelist": "kz-regions",
             "hierarchy": {"_T": ["71", "75"], "71": ["7101", "7102"], "75": ["7501"]}},
            {"name": "sex", "codelist": "sex", "codes": ["F", "M"]},
        ],
        "disclosure": {"min_frequency": 5, "secondary": "optimal"},
        "publisher": {"name": dict(PUBLISHER), "path": "https://stat.example.kz/"},
        "keywords": {"kk": ["көші-қон", "өңірлер"], "ru": ["миграция", "регионы"],
                     "en": ["migration", "regions"]},
        "sources": [{"title": {"kk": "Көші-қон тізілімі", "ru": "Регистр миграции",
                               "en": "Migration register"}}],
        "contributors": [{"title": "A. Statistician", "role": "author",
                          "email": "a.statistician@stat.example.kz"}],
        "reference_period": {"kk": "2023 жыл", "ru": "2023 год", "en": "Year 2023"},
    }
    m.update(overrides)
    return m


def make_spec(**overrides: Any):
    return spec_from_mapping(spec_mapping(**overrides))


def protected_frame(spec, inner: dict | None = None, marks: dict | None = None) -> pd.DataFrame:
    inner = INNER if inner is None else inner
    marks = MARKS if marks is None else marks
    dims = list(spec.dimension_names)
    df = pd.DataFrame([dict(zip(dims, k, strict=True)) | {"obs_value": v}
                       for k, v in inner.items()])
    table = read_cells(df, spec)
    conf = np.full(table.n_cells, "F", dtype=object)
    for codes, flag in marks.items():
        conf[table.cell_id(dict(zip(dims, codes, strict=True)))] = flag
    return published_frame(table, conf)


def _merged(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` merged in: nested mappings key by key, anything else replaced."""
    out = dict(base)
    for k, v in overrides.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def protection_report(spec, inner: dict | None = None, **overrides: Any) -> dict:
    """The complete JSON protection report (``ProtectionReport.to_dict()``) of the test table.

    Runs the real protection of ``spec``'s method (``disclosure.protect.protect``; noise with
    the production sampler) on ``inner`` (default :data:`INNER`). For the default spec the
    suppression pattern is exactly :data:`MARKS` (2 primary, 2 secondary), so the report fits
    :func:`protected_frame`. ``overrides`` are merged in (``primary={"cells": 3}`` changes that
    one field); the result must still be a valid report of the method's type.
    """
    inner = INNER if inner is None else inner
    dims = list(spec.dimension_names)
    df = pd.DataFrame([dict(zip(dims, k, strict=True)) | {"obs_value": v}
                       for k, v in inner.items()])
    report = _merged(protect(read_cells(df, spec)).report.to_dict(), overrides)
    report_from_dict(report)  # still a complete report of its method (raises ReportError)
    return report


def noise_frame(spec) -> pd.DataFrame:
    """A noise-protected-looking table: additive non-negative values plus a margin of error."""
    dims = list(spec.dimension_names)
    df = pd.DataFrame([dict(zip(dims, k, strict=True)) | {"obs_value": v}
                       for k, v in INNER.items()])
    table = read_cells(df, spec)
    conf = np.full(table.n_cells, "F", dtype=object)
    moe = np.where(table.inner_mask, 4, 7).astype(np.int64)
    values = table.values.astype(np.int64)
    return published_frame(table, conf, extra={"obs_moe": moe,
                                               "obs_lower": np.maximum(values - moe, 0),
                                               "obs_upper": values + moe})


def frictionless_cli(descriptor: Path, standards: str | None = None) -> dict:
    """``frictionless validate --json DESCRIPTOR`` (frictionless 5; v2 rules unless told)."""
    exe = Path(sys.executable).parent / "frictionless"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "frictionless"]
    extra = ["--standards", standards] if standards else []
    out = subprocess.run([*cmd, "validate", "--json", *extra, str(descriptor)],
                         capture_output=True, text=True, timeout=300)
    report = json.loads(out.stdout)
    report["_returncode"] = out.returncode
    return report


def js_validate(descriptor: Path) -> dict:
    """Run the npm `datapackage` (v1) validator; installed by scripts/test-setup.d/20-npm-*.sh."""
    node = shutil.which("node")
    script = Path(os.environ.get("ASHYQ_DP_JS_VALIDATOR", JS_DIR / "validate.js"))
    if node is None or not (JS_DIR / "node_modules" / "datapackage").is_dir():
        pytest.fail("the npm datapackage validator is not installed: run "
                    "`source scripts/test-setup.d/20-npm-validator.sh` (node + npm ci)")
    out = subprocess.run([node, str(script), str(descriptor)], capture_output=True, text=True,
                         timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["_returncode"] = out.returncode
    return result


def jsonstat_toolkit(path: Path) -> dict:
    """Read a JSON-stat file back with the official JSON-stat JavaScript Toolkit (npm)."""
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "jsonstat-toolkit").is_dir():
        pytest.fail("npm jsonstat-toolkit is not installed: run "
                    "`source scripts/test-setup.d/20-npm-validator.sh` (node + npm ci)")
    out = subprocess.run([node, str(JS_DIR / "jsonstat.js"), str(path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


SHAPES = ROOT.parent / "shared" / "reference" / "dcat-ap-3.0.0"


def shacl(ttl: Path):
    """Validate a DCAT file with pyshacl against the DCAT-AP 3.0.0 shapes (shared/reference):
    (data graph, conforms, report text)."""
    import pyshacl
    import rdflib

    if not (SHAPES / "shapes.ttl").is_file():
        pytest.skip(f"the DCAT-AP 3.0.0 shapes are not at {SHAPES} (shared/reference)")
    data = rdflib.Graph().parse(str(ttl), format="turtle")
    shapes = rdflib.Graph().parse(str(SHAPES / "shapes.ttl")).parse(str(SHAPES / "range.ttl"))
    conforms, _, text = pyshacl.validate(data, shacl_graph=shapes, inference="none",
                                         allow_warnings=True)
    return data, conforms, text
