"""What a protection run would do, before it is run: ``publisher protect --dry-run``.

For a noise spec: the 95 % margin of error of every published level at the spec's epsilon and at
a few others (data-independent: :func:`disclosure.noise.expected_accuracy`), and what the draw
would spend of its source's budget for the period and leave. Nothing is drawn, nothing charged,
nothing written. The input table is read and checked as a real run would (so a dry run that
passes is not refused later for the input), but no figure of it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from disclosure.methods import method_of
from disclosure.noise import LevelAccuracy, expected_accuracy
from disclosure.spec import TableSpec
from disclosure.table import read_cells

from .service import read_table_file
from .specs import load_spec

#: the epsilons shown beside the spec's own (those above the ceiling are left out)
EPSILON_STEPS = (0.1, 0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class BudgetPreview:
    source: str
    period: str
    spent: float
    total: float
    this_draw: float

    @property
    def left_after(self) -> float:
        return self.total - self.spent - self.this_draw


@dataclass
class DryRun:
    """The outcome of a dry run: the method, and for noise the accuracy and the budget."""

    spec: TableSpec
    method: str
    accuracy: dict[float, list[LevelAccuracy]] = field(default_factory=dict)
    budget: BudgetPreview | None = None


def dry_run(spec_path: str, input_path: str, *, settings: dict[str, Any],
            session: Session | None = None) -> DryRun:
    """Check the spec and the input and size the run without drawing or charging anything."""
    spec = load_spec(spec_path)
    read_cells(read_table_file(input_path, max_bytes=int(settings["MAX_UPLOAD_BYTES"])), spec,
               input_path)
    method = method_of(spec)
    out = DryRun(spec=spec, method=method.name)
    cost = method.budget_cost(spec)
    if cost is None:
        return out
    ceiling = float(settings.get("EPSILON_CEILING", 5.0))
    for eps in sorted({float(cost), *[e for e in EPSILON_STEPS if e <= ceiling]}):
        out.accuracy[eps] = expected_accuracy(spec, eps, epsilon_ceiling=ceiling)
    if session is not None:
        from . import budget

        source = budget.source_of(session, spec).id
        period = budget.period_key(spec)
        st = budget.status(session, source, period)
        out.budget = BudgetPreview(source=source, period=period, spent=st.spent, total=st.total,
                                   this_draw=float(cost))
    return out


def format_dry_run(d: DryRun) -> str:
    """The dry run as the CLI prints it (a plain table)."""
    lines = [f"dry run: {d.spec.id} {d.spec.version}: spec and input are valid; method "
             f"{d.method}; nothing drawn, charged or written"]
    if not d.accuracy:
        lines.append("(this method draws no noise: there is no accuracy to size before the run)")
        return "\n".join(lines)
    own = float(d.spec.disclosure.epsilon)  # type: ignore[attr-defined]
    lines.append("95 % margin of error of each published level (median / largest over its "
                 "cells), from the code lists and epsilon only; a published cell's obs_moe adds "
                 "what rounding moved it:")
    levels = [a.level for a in d.accuracy[own]]
    head = ["epsilon", *[f"{lv} ({a.cells})" for lv, a in zip(levels, d.accuracy[own],
                                                              strict=True)]]
    lines.append(" | ".join(head))
    for eps, acc in d.accuracy.items():
        mark = " (spec)" if eps == own else ""
        lines.append(" | ".join([f"{eps:g}{mark}", *[
            (f"±{a.moe_median}" if a.moe_median == a.moe_max else f"±{a.moe_median}/{a.moe_max}")
            for a in acc]]))
    if d.budget is not None:
        b = d.budget
        lines.append(f"budget of source {b.source}, period {b.period}: {b.spent:g} of "
                     f"{b.total:g} spent; this draw would spend {b.this_draw:g} and leave "
                     f"{b.left_after:g}" + (" — REFUSED: over budget" if b.left_after < -1e-12
                                            else ""))
    return "\n".join(lines)


__all__ = ["BudgetPreview", "DryRun", "dry_run", "format_dry_run"]
