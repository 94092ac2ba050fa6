"""Helpers for the cell-suppression tests: small specs and an independent audit of a frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from disclosure.audit import AuditSystem, audit, required_width
from disclosure.table import CellTable, read_cells
from publisher.specs import load_spec, spec_from_mapping

DATA = Path(__file__).resolve().parent / "data" / "bench"


def bench_table(name: str, secondary: str | None = None) -> CellTable:
    spec = load_spec(DATA / name / "spec.yaml")
    if secondary:
        import dataclasses

        spec = dataclasses.replace(
            spec, disclosure=dataclasses.replace(spec.disclosure, secondary=secondary))
    df = pd.read_csv(DATA / name / "inner.csv", dtype=str, keep_default_na=False)
    return read_cells(df, spec, source=name)


def pattern_mask(table: CellTable, df: pd.DataFrame) -> np.ndarray:
    """Suppressed cells of a published frame (conf_status C or D), as a mask over the cube."""
    mask = np.zeros(table.n_cells, dtype=bool)
    dims = table.spec.dimension_names
    for row in df[df["conf_status"].astype(str) != "F"].itertuples(index=False):
        rec = row._asdict()
        mask[table.cell_id({d: str(rec[d]) for d in dims})] = True
    return mask


def independent_audit(table: CellTable, suppressed: np.ndarray, level: float | None = None):
    """Audit a pattern of one table from scratch (frequency-rule primaries, absolute level)."""
    k = table.spec.disclosure.min_frequency
    prim = (table.values > 0) & (table.values < k)
    req = required_width(table.values, prim, "absolute", level or k)
    system = AuditSystem.build(table.values, table.relations)
    return prim, audit(system, suppressed, req)


def spec_map(dimensions: list[dict], **disclosure) -> dict:
    return {
        "id": "t", "title": {"en": "t"}, "dimensions": dimensions,
        "disclosure": {"min_frequency": 5, "secondary": "heuristic"} | disclosure,
    }


def make_table(dimensions: list[dict], rows: list[tuple], **disclosure) -> CellTable:
    spec = spec_from_mapping(spec_map(dimensions, **disclosure))
    names = [d["name"] for d in dimensions]
    df = pd.DataFrame([[*map(str, r)] for r in rows], columns=[*names, "obs_value"])
    return read_cells(df, spec, source="test")
