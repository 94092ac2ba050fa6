"""One entry point for protecting tables: suppression or noise, as the spec says.

The result is a :class:`ProtectedTable`: the public long table (every cell, totals included, with
SDMX flags ``obs_status`` / ``conf_status``; suppressed cells have an empty ``obs_value``) and a
report. The public frame never holds the value of a suppressed cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .errors import AshyqError
from .table import CellTable

if TYPE_CHECKING:
    from .methods import ProtectContext
    from .report import ProtectionReport

FREE, PRIMARY, SECONDARY = "F", "C", "D"


@dataclass
class ProtectedTable:
    table: CellTable
    published: pd.DataFrame
    report: ProtectionReport


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


def protect(table: CellTable, *, rng: np.random.Generator | int | None = None,
            context: ProtectContext | None = None) -> ProtectedTable:
    """Protect one table by the method its spec names (``rng``: tests' seed only)."""
    return protect_linked([table], rng=rng, context=context)[0]


def protect_linked(tables: list[CellTable], *, rng: np.random.Generator | int | None = None,
                   context: ProtectContext | None = None) -> list[ProtectedTable]:
    """Protect tables of one release together (cells they share are suppressed in all or none).

    All tables must use one method, and a method that cannot link tables refuses several.
    """
    from .methods import ProtectContext, method_of

    ctx = context or ProtectContext(rng=rng)
    if rng is not None:
        ctx.rng = rng
    names = {t.spec.disclosure.method for t in tables}
    if len(names) > 1:
        raise AshyqError("tables protected together must use one disclosure method (given: "
                         f"{', '.join(sorted(names))})", source=tables[0].spec.id)
    method = method_of(tables[0].spec)
    if len(tables) > 1 and not method.linkable:
        raise AshyqError(f"{method.label}: linked protection is not available for this method; "
                         "protect the tables one by one", source=tables[0].spec.id)
    if ctx.published and not method.history:
        raise AshyqError(f"{method.label}: {method.history_refusal}", source=tables[0].spec.id)
    for t in tables:
        method.check(t.spec, ctx)
    if ctx.before_draw is not None:
        ctx.before_draw()  # e.g. the service reserves the privacy budget: before any noise
    return method.protect(tables, ctx)
