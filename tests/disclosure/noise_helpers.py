"""Tables for the noise tests: small specs with flat and (unbalanced) hierarchical dimensions."""

from __future__ import annotations

import numpy as np

from disclosure.table import CellTable, aggregate
from publisher.specs import spec_from_mapping


def noise_spec(epsilon: float = 1.0, dims: list[dict] | None = None, **noise: object):
    dims = dims or [
        {"name": "region", "hierarchy": {"_T": ["R1", "R2", "R3"], "R1": ["R1A", "R1B"],
                                         "R2": ["R2A", "R2B", "R2C"]}},  # R3 is a leaf at depth 1
        {"name": "citizenship", "codes": ["KZ", "UZ", "KG", "RU"]},
        {"name": "sex", "codes": ["F", "M"]},
    ]
    return spec_from_mapping({
        "id": "noise-test", "title": {"en": "noise test"}, "dimensions": dims,
        "disclosure": {"noise": {"mechanism": "geometric", "epsilon": epsilon, **noise}},
    })


def sparse_table(spec, seed: int = 7, mean: float = 3.0, zeros: float = 0.4) -> CellTable:
    """A table whose inner cells are often 0 (negative-binomial counts)."""
    rng = np.random.default_rng(seed)
    shape = tuple(len(d.hierarchy.leaves) for d in spec.dimensions)
    inner = rng.negative_binomial(0.6, 0.6 / (0.6 + mean), size=shape)
    inner[rng.random(shape) < zeros] = 0
    return CellTable(spec=spec, values=aggregate(spec, inner).reshape(-1))
