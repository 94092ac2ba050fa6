"""What a protection run would do, before it is run: ``publisher protect --dry-run``.

For a noise spec: the 95 % margin of error of every published level at the spec's epsilon and at
a few others (data-independent: :func:`disclosure.noise.expected_accuracy`), and what the draw
would spend of its source's budget for the period and leave. Nothing is drawn, nothing charged,
nothing written. The input table is read and checked as a real run would (so a dry run that
passes is not refused later for the input), but no figure of it is shown.

The release form shows the same figures (:func:`form_accuracy`: inner cells, first-level totals
and the grand total at epsilon 0.5, 1, 2 and the one entered, and what the draw spends of the
source's remaining budget) from the spec alone: no table is read. For a Gaussian (zCDP) spec the
budgets are rho, each shown with its epsilon at delta = 1e-6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from disclosure.methods import method_of
from disclosure.noise import LevelAccuracy, expected_accuracy, zcdp_epsilon, zcdp_rho_for
from disclosure.spec import TableSpec
from disclosure.table import read_cells

from .service import read_table_file
from .specs import load_spec

#: the epsilons shown beside the spec's own (those above the ceiling are left out)
EPSILON_STEPS = (0.1, 0.25, 0.5, 1.0, 2.0)
#: the epsilons the release form shows beside the one entered
FORM_EPSILONS = (0.5, 1.0, 2.0)


def _unit(spec: TableSpec) -> str:
    return "rho" if getattr(spec.disclosure, "mechanism", "") == "gaussian" else "epsilon"


def budget_steps(spec: TableSpec, steps: tuple[float, ...], ceiling: float,
                 own: float | None = None) -> list[float]:
    """The budgets to size, in the spec's unit: the epsilons ``steps`` (for a Gaussian spec the
    rho of each at delta = 1e-6) within the ceiling, and ``own``."""
    gaussian = _unit(spec) == "rho"
    out = {float(own)} if own is not None else set()
    for e in steps:
        if e <= ceiling:
            out.add(zcdp_rho_for(e) if gaussian else float(e))
    return sorted(out)


@dataclass(frozen=True)
class BudgetPreview:
    source: str
    period: str
    spent: float
    total: float
    this_draw: float  # in the source's unit (a Laplace draw on a rho-source: epsilon^2 / 2)
    unit: str = "epsilon"  # the source's unit

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
    for b in budget_steps(spec, EPSILON_STEPS, ceiling, float(cost)):
        out.accuracy[b] = expected_accuracy(spec, b, epsilon_ceiling=ceiling)
    if session is not None:
        out.budget = budget_preview(session, spec, cost)
    return out


def budget_preview(session: Session, spec: TableSpec, cost: float) -> BudgetPreview:
    """What the draw would spend of its registered source's budget for the period, in the
    source's unit (nothing written). Raises the ledger's refusal (unregistered source, a
    period that is not ISO 8601, a Gaussian draw on an epsilon-source)."""
    from . import budget

    source = budget.source_of(session, spec).id
    period = budget.period_key(spec)
    st = budget.status(session, source, period)
    amount = budget.cost_in(float(cost), getattr(cost, "unit", _unit(spec)), st.unit,
                            source=source)
    return BudgetPreview(source=source, period=period, spent=st.spent, total=st.total,
                         this_draw=amount, unit=st.unit)


@dataclass(frozen=True)
class FormRow:
    """One budget on the release form: the 95 % margins of error of the levels it publishes."""

    budget: float  # in the spec's unit
    epsilon: float  # the budget as epsilon (a rho: its epsilon at delta = 1e-6)
    inner: int
    first_level: tuple[int, int]  # smallest and largest median over the first-level totals
    total: int
    own: bool  # the budget the spec (or the form) asks for


@dataclass
class FormAccuracy:
    """The accuracy table and budget line of the release form (data-independent)."""

    unit: str  # the spec's unit: epsilon or rho
    rows: list[FormRow]
    budget: BudgetPreview | None = None
    budget_refusal: Exception | None = None  # why the ledger would refuse the draw

    @property
    def over_budget(self) -> bool:
        return self.budget is not None and self.budget.left_after < -1e-12


def form_accuracy(spec: TableSpec, *, settings: dict[str, Any],
                  session: Session | None = None) -> FormAccuracy | None:
    """The release form's accuracy table for a spec: None for a method without noise. Computed
    from the code lists and the budget only; no table is read, nothing drawn or charged."""
    method = method_of(spec)
    cost = method.budget_cost(spec)
    if cost is None:
        return None
    ceiling = float(settings.get("EPSILON_CEILING", 5.0))
    unit = _unit(spec)
    rows = []
    for b in budget_steps(spec, FORM_EPSILONS, ceiling, float(cost)):
        acc = expected_accuracy(spec, b, epsilon_ceiling=ceiling)
        by = {a.level: a for a in acc}
        first = [a.moe_median for a in acc if a.level.endswith("@1")]
        rows.append(FormRow(
            budget=b, epsilon=zcdp_epsilon(b) if unit == "rho" else b,
            inner=by["inner"].moe_median if "inner" in by else 0,
            first_level=(min(first), max(first)) if first else (0, 0),
            total=by["total"].moe_median if "total" in by else 0,
            own=math.isclose(b, float(cost))))
    out = FormAccuracy(unit=unit, rows=rows)
    if session is not None:
        from disclosure.errors import AshyqError

        try:
            out.budget = budget_preview(session, spec, cost)
        except AshyqError as e:
            out.budget_refusal = e
    return out


def format_dry_run(d: DryRun) -> str:
    """The dry run as the CLI prints it (a plain table)."""
    lines = [f"dry run: {d.spec.id} {d.spec.version}: spec and input are valid; method "
             f"{d.method}; nothing drawn, charged or written"]
    if not d.accuracy:
        lines.append("(this method draws no noise: there is no accuracy to size before the run)")
        return "\n".join(lines)
    unit = _unit(d.spec)
    own = float(method_of(d.spec).budget_cost(d.spec))
    lines.append(f"95 % margin of error of each published level (median / largest over its "
                 f"cells), from the code lists and {unit} only; a published cell's interval "
                 "[obs_lower, obs_upper] is this range around its estimate, widened to hold the "
                 "published value:")
    if unit == "rho":
        lines.append("zero-concentrated DP: each rho gives (epsilon, delta)-DP with epsilon = "
                     "rho + 2*sqrt(rho*ln(1/delta)), delta = 1e-06")
    levels = [a.level for a in d.accuracy[own]]
    head = [unit, *[f"{lv} ({a.cells})" for lv, a in zip(levels, d.accuracy[own],
                                                         strict=True)]]
    lines.append(" | ".join(head))
    for eps, acc in d.accuracy.items():
        mark = " (spec)" if math.isclose(eps, own) else ""
        shown = f"{eps:.4g} (epsilon {zcdp_epsilon(eps):.3g})" if unit == "rho" else f"{eps:g}"
        lines.append(" | ".join([f"{shown}{mark}", *[
            (f"±{a.moe_median}" if a.moe_median == a.moe_max else f"±{a.moe_median}/{a.moe_max}")
            for a in acc]]))
    if d.budget is not None:
        b = d.budget
        conv = (" (epsilon^2/2: pure epsilon-DP implies epsilon^2/2-zCDP)"
                if b.unit == "rho" and unit == "epsilon" else "")
        lines.append(f"budget of source {b.source}, period {b.period} (in {b.unit}): "
                     f"{b.spent:g} of {b.total:g} spent; this draw would spend {b.this_draw:g}"
                     f"{conv} and leave {b.left_after:g}"
                     + (" — REFUSED: over budget" if b.left_after < -1e-12 else ""))
    return "\n".join(lines)


__all__ = ["BudgetPreview", "DryRun", "FormAccuracy", "dry_run", "form_accuracy",
           "format_dry_run"]
