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

from .errors import R_, AshyqError, Phrase, Word
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
        raise AshyqError(R_("tables protected together must use one disclosure method (given: %(names)s)"), source=tables[0].spec.id, names=', '.join(sorted(names)))
    method = method_of(tables[0].spec)
    if len(tables) > 1 and not method.linkable:
        raise AshyqError(R_("%(label)s: linked protection is not available for this method; protect the tables one by one"), source=tables[0].spec.id, label=Word(method.label))
    if ctx.published and not method.history:
        raise AshyqError(R_("%(label)s: %(history_refusal)s"), source=tables[0].spec.id, label=Word(method.label), history_refusal=Word(method.history_refusal))
    for t in tables:
        method.check(t.spec, ctx)
    if ctx.before_draw is not None:
        ctx.before_draw()  # e.g. the service reserves the privacy budget: before any noise
    results = method.protect(tables, ctx)
    for t, pt in zip(tables, results, strict=False):
        if t.absent:
            pt.report.warnings.append(absent_warning(t))
    return results


def absent_warning(table: CellTable) -> str:
    """The report's warning that inner cells absent from the input were taken as zero (their
    codes, never a count of a cell); the review page shows it in the reader's language."""
    cells = "; ".join("(" + ", ".join(f"{d}={c}" for d, c in codes.items()) + ")"
                      for codes in table.absent_cells)
    more = ", ..." if table.absent > len(table.absent_cells) else ""
    return Phrase(R_("%(n)s inner cell(s) absent from the input were taken as zero "
                     "(missing: zero): %(cells)s"), n=table.absent, cells=cells + more)
