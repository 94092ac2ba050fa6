"""One entry point for protecting tables: suppression or noise, as the spec says.

The result is a :class:`ProtectedTable`: the public long table (every cell, totals included, with
SDMX flags ``obs_status`` / ``conf_status``; suppressed cells have an empty ``obs_value``) and a
report. The public frame never holds the value of a suppressed cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .table import CellTable

FREE, PRIMARY, SECONDARY = "F", "C", "D"


@dataclass
class ProtectedTable:
    table: CellTable
    published: pd.DataFrame
    report: dict = field(default_factory=dict)


def published_frame(table: CellTable, conf_status: np.ndarray, values: np.ndarray | None = None,
                    extra: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """The public long table: codes, obs_value (empty where suppressed), obs_status, conf_status."""
    vals = table.values if values is None else values
    suppressed = conf_status != FREE
    df = table.frame(values=np.zeros(table.n_cells, dtype=np.int64))
    for c in table.spec.dimension_names:
        df[c] = df[c].astype(str)
    obs = pd.array(vals, dtype="Int64")
    obs[suppressed] = pd.NA
    df[table.spec.measure] = obs
    df["obs_status"] = np.where(suppressed, "Q", "A")
    df["conf_status"] = conf_status
    for name, col in (extra or {}).items():
        df[name] = col
    return df


def protect(table: CellTable, *, rng: np.random.Generator | None = None) -> ProtectedTable:
    """Protect one table by the method its spec names."""
    method = table.spec.disclosure.method
    if method == "noise":
        from .noise import protect_noise

        return protect_noise(table, rng=rng)
    from .suppression import protect_suppression

    return protect_suppression([table])[0]


def protect_linked(tables: list[CellTable]) -> list[ProtectedTable]:
    """Protect tables of one release together (cells they share are suppressed in all or none)."""
    if any(t.spec.disclosure.method != "suppression" for t in tables):
        raise ValueError("linked protection is for cell suppression; noise tables are protected one by one")
    from .suppression import protect_suppression

    return protect_suppression(tables)
