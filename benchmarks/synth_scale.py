"""Synthetic large count table for the scale benchmark: 5 dimensions, one 3-level hierarchy."""

from __future__ import annotations

import numpy as np
import pandas as pd

from disclosure.methods.suppression import SuppressionSpec
from disclosure.spec import Dimension, Hierarchy, TableSpec
from disclosure.table import CellTable, aggregate


def scale_spec(oblasts: int = 6, districts: int = 7, countries: int = 40, ages: int = 16,
               years: int = 4, secondary: str = "heuristic") -> TableSpec:
    obl = [f"R{i:02d}" for i in range(1, oblasts + 1)]
    region = {"_T": obl} | {o: [f"{o}D{j:02d}" for j in range(1, districts + 1)] for o in obl}
    dims = (
        Dimension("region", Hierarchy.from_children("region", region)),
        Dimension("citizenship", Hierarchy.flat("citizenship", [f"C{i:02d}" for i in range(1, countries + 1)])),
        Dimension("sex", Hierarchy.flat("sex", ["F", "M"])),
        Dimension("age", Hierarchy.flat("age", [f"A{i:02d}" for i in range(1, ages + 1)])),
        Dimension("year", Hierarchy.flat("year", [str(2020 + i) for i in range(years)])),
    )
    return TableSpec(id="synth-scale", version="1.0.0", title={"en": "scale"}, dimensions=dims,
                     disclosure=SuppressionSpec(min_frequency=5, secondary=secondary))


def scale_table(spec: TableSpec, seed: int = 7, mean_count: float = 45.0) -> CellTable:
    """Inner counts: a few large citizenships, many small cells (about 15% are 1..4)."""
    rng = np.random.default_rng(seed)
    shape = tuple(len(d.hierarchy.leaves) for d in spec.dimensions)
    shapes = [3.0, 1.0, 50.0, 4.0, 20.0][: len(shape)]
    weights = [rng.gamma(k, 1.0, size=n) for k, n in zip(shapes, shape, strict=False)]
    weights[1] = np.sort(rng.pareto(1.3, size=shape[1]) + 0.25)[::-1]
    mean = np.ones(shape)
    for ax, w in enumerate(weights):
        s = [1] * len(shape)
        s[ax] = len(w)
        mean = mean * (w / w.mean()).reshape(s)
    mean *= mean_count
    inner = rng.poisson(mean).astype(np.int64)
    cube = aggregate(spec, inner).reshape(-1)
    return CellTable(spec=spec, values=cube)


def scale_frame(table: CellTable) -> pd.DataFrame:
    df = table.frame()
    return df[table.inner_mask]
