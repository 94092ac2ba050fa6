"""Synthetic migration-like count tables: region → district × citizenship × age group × sex.

Four dimensions, one 2-level hierarchy (regions of districts), as in the tables of issue 19:

- ``region``: ``regions`` regions, each of ``districts`` districts (codes ``R01``, ``R01D01`` …);
- ``citizenship``: ``citizenships`` groups with Pareto-distributed sizes (a few large, many small);
- ``age``: ``ages`` age groups (a hump around working ages);
- ``sex``: ``F``, ``M``.

Inner cells: a latent size (product of the margins' weights times log-normal noise) orders the
cells; the smallest ``zeros`` share (default 25 %) are 0, the next ``small`` share (15 %) are
uniform in 1..4, the rest are ``5 + Poisson`` around the latent size. The fractions are therefore
exact, and large cells follow large districts, citizenships and ages.

The table is written in the project's input format (``spec.yaml`` + ``inner.csv``, see
``../shared/design.md``) by :func:`write_table`; :func:`migration_table` builds the
:class:`~disclosure.table.CellTable` directly (no CSV), which the speed benchmark uses for tables
of up to a million cells. Sizes of the benchmark tables are in :data:`SIZES`.

    .venv/bin/python benchmarks/synth_migration.py OUT_DIR --size 7500 [--seed 19]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from disclosure.methods.suppression import SuppressionSpec
from disclosure.spec import Dimension, Hierarchy, TableSpec
from disclosure.table import CellTable, aggregate


@dataclass(frozen=True)
class Shape:
    """Sizes of the four dimensions (inner codes; totals are added)."""

    regions: int
    districts: int          # per region
    citizenships: int
    ages: int

    @property
    def cells(self) -> int:
        """Every cell, totals included."""
        return ((1 + self.regions * (1 + self.districts)) * (self.citizenships + 1)
                * (self.ages + 1) * 3)


#: benchmark sizes (nominal cells → shape); the cell counts they give are in the comments
SIZES: dict[int, Shape] = {
    1_100: Shape(2, 3, 7, 4),        # 1,080 cells
    5_100: Shape(3, 4, 10, 9),       # 5,280
    7_500: Shape(4, 5, 10, 8),       # 7,425
    16_000: Shape(5, 6, 14, 9),      # 16,200
    55_000: Shape(8, 7, 20, 12),     # 53,235
    250_000: Shape(12, 8, 40, 18),   # 254,733
    1_000_000: Shape(17, 10, 60, 28),  # 997,716
}


def migration_spec(shape: Shape, secondary: str = "heuristic", min_frequency: int = 5,
                   table_id: str = "synth-migration") -> TableSpec:
    """The spec of a table of this shape (frequency rule ``0 < n < min_frequency``)."""
    regs = [f"R{i:02d}" for i in range(1, shape.regions + 1)]
    region = {"_T": regs} | {r: [f"{r}D{j:02d}" for j in range(1, shape.districts + 1)]
                             for r in regs}
    dims = (
        Dimension("region", Hierarchy.from_children("region", region)),
        Dimension("citizenship", Hierarchy.flat(
            "citizenship", [f"C{i:02d}" for i in range(1, shape.citizenships + 1)])),
        Dimension("age", Hierarchy.flat("age", [f"A{i:02d}" for i in range(1, shape.ages + 1)])),
        Dimension("sex", Hierarchy.flat("sex", ["F", "M"])),
    )
    return TableSpec(id=table_id, version="1.0.0", title={"en": table_id}, dimensions=dims,
                     disclosure=SuppressionSpec(min_frequency=min_frequency,
                                                secondary=secondary))


def migration_inner(shape: Shape, seed: int = 19, zeros: float = 0.25, small: float = 0.15,
                    mean_count: float = 30.0) -> np.ndarray:
    """The inner cube (districts × citizenships × ages × sexes), int64."""
    rng = np.random.default_rng(seed)
    n_dist = shape.regions * shape.districts
    dist_w = rng.gamma(2.0, 1.0, n_dist) * np.repeat(rng.gamma(4.0, 1.0, shape.regions),
                                                     shape.districts)
    cit_w = np.sort(rng.pareto(1.1, shape.citizenships) + 0.05)[::-1]
    a = np.arange(shape.ages)
    age_w = np.exp(-0.5 * ((a - 0.45 * shape.ages) / (0.3 * shape.ages + 1)) ** 2) + 0.1
    sex_w = np.array([0.45, 0.55])
    logw = (np.log(dist_w)[:, None, None, None] + np.log(cit_w)[None, :, None, None]
            + np.log(age_w)[None, None, :, None] + np.log(sex_w)[None, None, None, :])
    latent = logw + rng.normal(0.0, 0.8, logw.shape)
    flat = latent.reshape(-1)
    order = np.argsort(flat, kind="stable")
    n = flat.size
    n_zero, n_small = int(round(zeros * n)), int(round(small * n))
    out = np.empty(n, dtype=np.int64)
    out[order[:n_zero]] = 0
    out[order[n_zero:n_zero + n_small]] = rng.integers(1, 5, n_small)
    big = order[n_zero + n_small:]
    size = np.exp(flat[big] - flat[big].mean())
    size = mean_count * size / size.mean()
    out[big] = 5 + rng.poisson(size)
    return out.reshape(logw.shape)


def migration_table(shape: Shape, seed: int = 19, secondary: str = "heuristic",
                    **kw: float) -> CellTable:
    """The full table (every marginal) of this shape and seed."""
    spec = migration_spec(shape, secondary)
    inner = migration_inner(shape, seed, **kw)
    return CellTable(spec=spec, values=aggregate(spec, inner).reshape(-1).astype(np.int64))


def inner_frame(spec: TableSpec, inner: np.ndarray) -> pd.DataFrame:
    """The inner cells in long format (the input of ``publisher protect``)."""
    leaves = [d.hierarchy.leaves for d in spec.dimensions]
    grids = np.meshgrid(*[np.arange(len(x)) for x in leaves], indexing="ij")
    cols = {d.name: np.asarray(lv)[g.reshape(-1)]
            for d, lv, g in zip(spec.dimensions, leaves, grids, strict=True)}
    df = pd.DataFrame(cols)
    df[spec.measure] = inner.reshape(-1)
    return df


def spec_dict(spec: TableSpec) -> dict:
    """The spec as the YAML mapping of ``spec.yaml``."""
    dims = []
    for d in spec.dimensions:
        h = d.hierarchy
        if any(p != "_T" for p in h.parents):
            dims.append({"name": d.name, "hierarchy": {p: list(h.children[p]) for p in h.parents}})
        else:
            dims.append({"name": d.name, "codes": list(h.leaves)})
    return {"id": spec.id, "version": "1.0.0", "title": {k: spec.id for k in ("kk", "ru", "en")},
            "dimensions": dims, "measure": spec.measure,
            "disclosure": {"min_frequency": spec.disclosure.min_frequency,
                           "secondary": spec.disclosure.secondary}}


def write_table(out: Path, shape: Shape, seed: int = 19) -> Path:
    """Write ``spec.yaml`` and ``inner.csv`` of one table into ``out``; returns ``out``."""
    spec = migration_spec(shape, "optimal", table_id=f"synth-migration-{shape.cells}")
    inner = migration_inner(shape, seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "spec.yaml").write_text(yaml.safe_dump(spec_dict(spec), sort_keys=False,
                                                  allow_unicode=True), encoding="utf-8")
    inner_frame(spec, inner).to_csv(out / "inner.csv", index=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", type=int, default=7_500, choices=sorted(SIZES))
    ap.add_argument("--seed", type=int, default=19)
    args = ap.parse_args()
    shape = SIZES[args.size]
    write_table(args.out, shape, args.seed)
    print(f"{args.out}: {shape.cells:,} cells")


if __name__ == "__main__":
    main()
