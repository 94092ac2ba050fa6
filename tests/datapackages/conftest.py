"""Fixtures of the data-package tests (helpers live in dp_helpers.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# pytest puts tests/ on sys.path, where the folder tests/datapackages would shadow the real
# `datapackages` package as a namespace package: put the project root first.
_ROOT = str(Path(__file__).resolve().parents[2])
if sys.path[0] != _ROOT:
    sys.path.insert(0, _ROOT)
_ns = sys.modules.get("datapackages")
if _ns is not None and getattr(_ns, "__file__", None) is None:
    del sys.modules["datapackages"]

from dp_helpers import CREATED, LANDING, make_spec, protected_frame  # noqa: E402


@pytest.fixture
def spec():
    return make_spec()


@pytest.fixture
def protected_csv(tmp_path: Path, spec) -> Path:
    p = tmp_path / "protected.csv"
    protected_frame(spec).to_csv(p, index=False)
    return p


@pytest.fixture
def build(tmp_path: Path) -> Callable[..., Any]:
    """Call package_table with the test defaults (fixed created time, landing URL, the shipped
    code lists)."""
    from datapackages import package_table
    from publisher.settings import config_path

    def _build(spec, csv: Path, name: str = "pkg", **kw: Any):
        kw.setdefault("created", CREATED)
        kw.setdefault("landing_url", LANDING)
        kw.setdefault("codelist_dir", config_path("codelists"))
        return package_table(spec, csv, tmp_path / "out" / name, **kw)

    return _build


