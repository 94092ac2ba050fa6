"""Cell suppression as a disclosure method: primary rule, secondary suppression, attacker audit.

Spec (``disclosure`` section)::

    min_frequency: 5          # primary: cells with 0 < n < 5 (zeros too with zero_policy: primary)
    secondary: optimal        # or heuristic, or none (no secondary suppression: refused unless safe)
    zero_policy: safe         # safe | primary
    zero_secondary: avoid     # avoid: a zero cell is never a secondary suppression unless the
                              # primaries cannot be protected without one; allow: zeros are
                              # candidates like any cell (at their cost)
    cost: value+count         # what secondary suppression minimises: value+count | value | count
    protection_level: {absolute: 5} | {percent: 10}   # default: min_frequency, absolute
    work_limit: 200           # optimal method: branch-and-bound nodes in all (deterministic)
    time_limit: 600           # optional outer safety stop in seconds for the optimal method
    confidential: [{dim: code, ...}]   # cells marked sensitive by hand
    must_publish: [{dim: code, ...}]   # cells that must stay public

Guarantee (see :mod:`disclosure.suppression`): every primary cell's attacker interval — LP
bounds given every published value of the tables protected together, every additive relation and
``0 <= x <= largest grand total`` — is at least its protection level wide. Tables published
earlier are not part of the attacker model unless handed in together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from ..errors import R_, Phrase, Word
from ..report import ProtectionReport
from ..spec import Dimension, MethodSpec, TableSpec
from . import (
    N_,
    Column,
    DisclosureMethod,
    MethodNote,
    ProtectContext,
    PublishedFacts,
    Translate,
    concat,
    register_method,
)

SECONDARY_METHODS = ("optimal", "heuristic", "none")
#: whether zero cells may be secondary suppressions (see SuppressionSpec.zero_secondary)
ZERO_SECONDARY = ("avoid", "allow")


# -- spec -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProtectionLevel:
    """Required width of a primary cell's protection interval: absolute units or % of the value."""

    kind: str  # "absolute" | "percent"
    value: float


@dataclass(frozen=True)
class SuppressionSpec(MethodSpec):
    """Parameters of cell suppression (defaults as in the module docstring)."""

    method: ClassVar[str] = "suppression"

    min_frequency: int | None = None
    secondary: str = "optimal"
    zero_policy: str = "safe"
    #: ``avoid``: zero cells are not used as secondary suppressions (a suppressed zero sits at
    #: its lower bound and hides little), unless protection is impossible without them;
    #: ``allow``: they are candidates at their cost
    zero_secondary: str = "avoid"
    cost: str = "value+count"
    protection_level: ProtectionLevel | None = None
    # optimal method: a safety stop in seconds (None: none); when it strikes the pattern is the
    # heuristic method's, and the report says so (see disclosure.secondary_optimal)
    time_limit: float | None = None
    # optimal method: the work limit (branch-and-bound nodes over all its MILP solves), so the
    # pattern does not depend on the machine's load; None: the default of secondary_optimal
    work_limit: int | None = None
    confidential: tuple[dict[str, str], ...] = ()
    must_publish: tuple[dict[str, str], ...] = ()


class ProtectionLevelSchema(Schema):
    absolute = fields.Float(validate=validate.Range(min=0, min_inclusive=False))
    percent = fields.Float(validate=validate.Range(min=0, max=100, min_inclusive=False))

    @validates_schema
    def _one(self, data: dict, **_: Any) -> None:
        if len(data) != 1:
            raise ValidationError(R_("give exactly one of 'absolute' or 'percent'"))


class SuppressionSchema(Schema):
    class Meta:
        unknown = INCLUDE

    min_frequency = fields.Integer(required=True, strict=True,
                                   validate=validate.Range(min=2, error=R_("must be at least 2")))
    secondary = fields.String(validate=validate.OneOf(SECONDARY_METHODS))
    zero_policy = fields.String(validate=validate.OneOf(["safe", "primary"]))
    zero_secondary = fields.String(validate=validate.OneOf(ZERO_SECONDARY))
    cost = fields.String(validate=validate.OneOf(["value+count", "value", "count"]))
    protection_level = fields.Nested(ProtectionLevelSchema)
    time_limit = fields.Float(validate=validate.Range(min=0, min_inclusive=False))
    work_limit = fields.Integer(strict=True, validate=validate.Range(min=1))
    confidential = fields.List(fields.Dict(keys=fields.String(), values=fields.String()))
    must_publish = fields.List(fields.Dict(keys=fields.String(), values=fields.String()))


# -- report -----------------------------------------------------------------------------------

@dataclass(kw_only=True)
class LevelParameters:
    kind: str
    value: float


@dataclass(kw_only=True)
class SuppressionParameters:
    min_frequency: int | None
    zero_policy: str
    secondary: str
    cost: str
    protection_level: LevelParameters
    time_limit: float | None
    protection_rule: str
    confidential: list[dict[str, str]] = field(default_factory=list)
    must_publish: list[dict[str, str]] = field(default_factory=list)
    work_limit: int | None = None
    # the cost rule in words (never a figure derived from the data)
    cost_rule: str = ""
    # avoid | allow (None: a report written before the setting existed: zeros were allowed)
    zero_secondary: str | None = None


@dataclass(kw_only=True)
class PrimaryCells:
    cells: int
    by_rule: dict[str, int] = field(default_factory=dict)


@dataclass(kw_only=True)
class SecondaryCells:
    cells: int
    applied: bool


@dataclass(kw_only=True)
class SuppressedCells:
    """How many cells are suppressed (counts only: no figure derived from raw values)."""

    cells: int
    # suppressed cells that are marginals (a total code in some dimension); structure only
    marginal: int = 0


@dataclass(kw_only=True)
class Optimality:
    """How close the optimal method's pattern is to the least cost (relative figures only).

    ``gap`` = (cost of the pattern - lower bound) / cost of the pattern, over the cost of the
    secondary cells (the primaries' cost is fixed); ``lower_bound_ratio`` = 1 - gap. The
    absolute cost and bound are sums of raw values, so the report does not hold them.
    ``scope``: ``table`` (a bound for the whole table) or ``blocks`` (the worst block, each
    with the rest of the pattern fixed)."""

    # gap and lower bound are ratios of raw value sums: the stored report keeps them, every
    # copy that leaves the store (API, review page, package) has them stripped (None here)
    gap: float | None = None
    lower_bound_ratio: float | None = None
    proven_optimal: bool = False
    scope: str = "table"
    nodes: int = 0
    iterations: int = 0
    better_than_heuristic: bool = False
    #: the measured gap is at most the stated tolerance ``mip_gap_tolerance`` (a setting)
    within_tolerance: bool = False
    mip_gap_tolerance: float | None = None
    blocks: int = 1
    #: blocks in which the heuristic pattern was improved
    blocks_improved: int = 0


@dataclass(kw_only=True)
class AuditResult:
    """The attacker audit of the final pattern (intervals of primary cells, never values)."""

    passed: bool
    primary_cells_checked: int
    exact: int
    narrow: int
    min_width: float | None
    intervals: list[dict[str, Any]]
    intervals_kind: str
    mode: str
    components: int
    largest_component: int
    lps: int
    seconds: float
    wasted_secondary: list[Any] = field(default_factory=list)
    wasted_secondary_released: list[dict[str, Any]] = field(default_factory=list)


@dataclass(kw_only=True)
class SuppressionReport(ProtectionReport):
    method: ClassVar[str] = "suppression"

    parameters: SuppressionParameters
    primary: PrimaryCells
    secondary: SecondaryCells
    suppressed: SuppressedCells
    by_dimension: dict[str, list[dict[str, Any]]]
    audit: AuditResult
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    fallbacks: list[str] = field(default_factory=list)
    optimality: Optimality | None = None  # the optimal method only
    linked_tables: list[str] = field(default_factory=list)
    linked_total: dict[str, int] | None = None  # counts only: cells, suppressed
    # publication history (disclosure/history.py): the earlier tables the audit covered
    # ({id, version, reference_period}), cells whose state differs from the previous version,
    # and the attacker model in English; defaults keep older reports readable
    covered: list[dict[str, Any]] = field(default_factory=list)
    flips: int | None = None
    previous_version: str | None = None
    attacker_model: str = ""


# -- texts (msgids of the package-text catalogue, rendered with the translator) -----------------

_SECONDARY = {
    "optimal": N_("optimal (least loss of information, linear programming)"),
    "heuristic": N_("heuristic"),
    "none": N_("not applied"),
}


def _improved(o: Optimality) -> int:
    """Blocks improved over the heuristic (a report from before the count: from its flag)."""
    if o.mip_gap_tolerance is None and not o.blocks_improved:
        return int(o.better_than_heuristic)
    return o.blocks_improved


def _optimality_text(rep: SuppressionReport | None, tr: Translate) -> dict[str, str] | None:
    """What the optimal method achieved, in words that hold no measured figure: the gap and
    the lower bound are ratios of sums of raw suppressed values, so only the tolerance (a
    setting) and counts of blocks are said."""
    if rep is None or rep.parameters.secondary != "optimal" or rep.fallbacks:
        return None
    o = rep.optimality
    if o is None:
        return None
    if o.proven_optimal:
        return tr("The secondary suppression pattern is proven optimal: no other protected "
                  "pattern has a lower suppression cost.")
    if o.within_tolerance and o.mip_gap_tolerance is not None:
        return tr("The secondary suppression pattern is within the MIP gap tolerance of "
                  "%(tolerance)s%% of the least possible suppression cost.",
                  tolerance=f"{100 * o.mip_gap_tolerance:g}")
    return tr("The secondary suppression pattern is not proven optimal (work limit reached): "
              "the heuristic pattern was improved in %(improved)s of %(blocks)s block(s).",
              improved=_improved(o), blocks=o.blocks)


def _text(spec: SuppressionSpec, facts: PublishedFacts, applied: bool,
          level: tuple[str, float] | None, audit_passed: bool, fallbacks: list[str],
          tr: Translate, optimality: dict[str, str] | None = None) -> dict[str, str]:
    k = spec.min_frequency
    sec = spec.secondary
    if spec.zero_policy == "primary":
        rule = tr("fewer than %(k)s persons (zero included)", k=k)
    else:
        rule = tr("more than 0 but fewer than %(k)s persons", k=k)
    method = tr(_SECONDARY[sec]) if sec in _SECONDARY else sec
    parts = [tr("Cell suppression. A cell is primary confidential (conf_status C) when it counts "
                "%(rule)s. So that primary cells cannot be recomputed from the published totals, "
                "further cells are suppressed as secondary confidentiality (conf_status D; "
                "method: %(method)s). Suppressed cells have an empty obs_value and obs_status Q. "
                "All other values are published unchanged. Primary suppressed: %(primary)s, "
                "secondary: %(secondary)s, cells in all: %(cells)s.",
                rule=rule, method=method, primary=facts.primary, secondary=facts.secondary,
                cells=facts.cells)]
    if not applied:
        parts.append(tr("WARNING: secondary suppression was not applied, so a primary cell may "
                        "be recomputable from totals."))
    manual = len(spec.confidential)
    if manual:
        parts.append(tr("In addition, %(n)s cell(s) were marked confidential by hand.", n=manual))
    if level is not None and audit_passed:
        value = f"{level[1]:g}"
        width = value if level[0] == "absolute" else tr("%(value)s%% of its value", value=value)
        parts.append(tr("An attacker audit (linear programming) passed: the interval that can "
                        "be derived from the published data for each primary cell is at least "
                        "%(width)s wide.", width=width))
    if spec.zero_secondary == "avoid" and applied:
        parts.append(tr("Cells counting zero are not used as secondary suppressions unless the "
                        "primary cells cannot be protected otherwise."))
    if optimality is not None:
        parts.append(optimality)
    if fallbacks:
        parts.append(tr("Note: the optimiser did not finish within its time limit, so part of "
                        "the suppression pattern comes from the heuristic (still protected, but "
                        "possibly more cells suppressed than necessary)."))
    return concat(*parts)


# -- the method -------------------------------------------------------------------------------

_REVIEW_SECONDARY = {"optimal": R_("optimal"), "heuristic": R_("heuristic"),
                     "none": R_("not applied")}
_REVIEW_MODE = {"exact": R_("exact"), "certified": R_("certified")}


def _solver_in_words(report: SuppressionReport) -> Phrase | None:
    """What the optimal method achieved, in plain words (None for the other methods)."""
    p, d, o = report.parameters, report.details, report.optimality
    if p.secondary != "optimal":
        return None
    blocks, done = d.get("blocks", 1), d.get("blocks_done", 0)
    if report.fallbacks or o is None:
        if p.time_limit:
            return Phrase(R_("stopped by the time limit of %(limit)s s after %(done)s of "
                             "%(blocks)s block(s): the heuristic pattern is published (the same "
                             "as secondary: heuristic), not an optimised one"),
                          limit=f"{p.time_limit:g}", done=done, blocks=blocks)
        return Phrase(R_("did not finish (%(done)s of %(blocks)s block(s)): the heuristic "
                         "pattern is published, not an optimised one"), done=done, blocks=blocks)
    if o.proven_optimal:
        return Phrase(R_("the pattern is proven optimal: no other protected pattern has a lower "
                         "cost (%(nodes)s branch-and-bound nodes)"), nodes=o.nodes)
    if o.within_tolerance and o.mip_gap_tolerance is not None:
        return Phrase(R_("the pattern is within the MIP gap tolerance of %(tolerance)s%% of the "
                         "least possible cost"), tolerance=f"{100 * o.mip_gap_tolerance:g}")
    # the measured gap is a ratio of raw suppressed values: only counts are said
    return Phrase(R_("not proven optimal (work limit reached): the heuristic pattern was "
                     "improved in %(improved)s of %(blocks)s block(s)"),
                  improved=_improved(o), blocks=o.blocks)


@register_method
class CellSuppression(DisclosureMethod):
    name = "suppression"
    label = "cell suppression"
    spec_type = SuppressionSpec
    schema = SuppressionSchema
    report_type = SuppressionReport
    flags: ClassVar[dict[str, tuple[str, ...]]] = {
        "obs_status": ("A", "Q"), "conf_status": ("F", "C", "D")}
    columns: ClassVar[tuple[Column, ...]] = ()
    linkable = True
    history = True

    keys = ("min_frequency", "secondary")

    def build_spec(self, params: dict[str, Any], dimensions: tuple[Dimension, ...],
                   raw: dict[str, Any]) -> SuppressionSpec:
        pl = params.get("protection_level")
        level = ProtectionLevel(*next(iter(pl.items()))) if pl else None
        by_name = {d.name: d for d in dimensions}
        for key in ("confidential", "must_publish"):
            for j, ref in enumerate(params.get(key, [])):
                for dn, code in ref.items():
                    if dn not in by_name:
                        raise ValueError((f"{key}.{j}", Phrase(R_("no dimension %(name)s"),
                                                               name=repr(dn))))
                    if code not in by_name[dn].hierarchy.codes:
                        raise ValueError((f"{key}.{j}", Phrase(
                            R_("%(code)s is not a code of %(dimension)s"), code=repr(code),
                            dimension=repr(dn))))
        known = set(SuppressionSchema().fields)
        return SuppressionSpec(
            min_frequency=params["min_frequency"],
            secondary=params.get("secondary", "optimal"),
            zero_policy=params.get("zero_policy", "safe"),
            zero_secondary=params.get("zero_secondary", "avoid"),
            cost=params.get("cost", "value+count"),
            protection_level=level,
            time_limit=(float(params["time_limit"]) if params.get("time_limit") is not None
                        else None),
            work_limit=params.get("work_limit"),
            confidential=tuple(params.get("confidential", [])),
            must_publish=tuple(params.get("must_publish", [])),
            options={k: v for k, v in raw.items() if k not in known and k != "method"},
        )

    def form_section(self, values: dict[str, Any]) -> dict[str, Any]:
        return {"min_frequency": values.get("min_frequency") or 5,
                "secondary": values.get("secondary") or "optimal"}

    def protect(self, tables, context: ProtectContext):  # noqa: ANN001, ANN201
        from ..suppression import protect_suppression

        cells = sum(t.n_cells for t in tables)
        primaries = None
        progress = None
        if context.progress is not None:
            from ..primary import primary_mask

            primaries = sum(int(primary_mask(t, t.spec.disclosure)[0].sum()) for t in tables)
            context.step("secondary", cells=cells, primaries=primaries,
                         primaries_left=primaries)

            def progress(phase: str, **figures: int) -> None:
                # the run's own count covers linked cells once; never more than the tables'
                left = figures.get("primaries_left")
                if left is not None:
                    figures = figures | {"primaries_left": min(int(left), primaries)}
                context.step(phase, cells=cells, primaries=primaries, **figures)

        out = protect_suppression(tables, published=list(context.published), progress=progress)
        if primaries is not None:
            context.step("audited", cells=cells, primaries=primaries, primaries_left=0)
        return out

    def describe(self, spec: TableSpec, report: ProtectionReport | None,
                 facts: PublishedFacts, tr: Translate) -> MethodNote:
        dis = spec.disclosure
        assert isinstance(dis, SuppressionSpec)
        rep = report if isinstance(report, SuppressionReport) else None
        applied = dis.secondary != "none" and (rep is None or rep.secondary.applied)
        params: dict[str, Any] = {
            "min_frequency": dis.min_frequency, "zero_policy": dis.zero_policy,
            "zero_secondary": dis.zero_secondary, "secondary": dis.secondary, "secondary_applied": applied, "cost": dis.cost,
            "manual_confidential_cells": len(dis.confidential),
        }
        level = None
        if dis.protection_level is not None:
            level = (dis.protection_level.kind, float(dis.protection_level.value))
        elif rep is not None:
            pl = rep.parameters.protection_level
            level = (pl.kind, float(pl.value))
        if level is not None:
            params["protection_level"] = {level[0]: level[1]}
        if rep is not None:
            params["protection_rule"] = rep.parameters.protection_rule[:300]
        fallbacks = [f[:300] for f in (rep.fallbacks if rep else [])][:20]
        if fallbacks:
            params["fallbacks"] = fallbacks
        audit = None
        if rep is not None:
            a = rep.audit
            audit = {"passed": a.passed, "primary_cells_checked": a.primary_cells_checked,
                     "exact": a.exact, "narrow": a.narrow}
            if a.min_width is not None:
                audit["min_width"] = a.min_width
            audit["seconds"] = a.seconds
        text = _text(dis, facts, applied, level, bool(audit and audit["passed"]), fallbacks,
                     tr, _optimality_text(rep, tr))
        return MethodNote(parameters=params, text=text, audit=audit,
                          cells={"total": facts.cells, "primary": facts.primary,
                                 "secondary": facts.secondary})

    def releasable(self, report: ProtectionReport) -> Phrase | None:
        assert isinstance(report, SuppressionReport)
        if not report.audit.passed:
            return Phrase(R_("the protection report says the attacker audit failed (exact "
                             "%(exact)s, narrow %(narrow)s): suppressed cells could be "
                             "recomputed"), exact=report.audit.exact, narrow=report.audit.narrow)
        return None

    def check_published(self, report: ProtectionReport, facts: PublishedFacts) -> Phrase | None:
        assert isinstance(report, SuppressionReport)
        refused = self.releasable(report)
        if refused:
            return refused
        for text, n, have, flag in (
                (R_("the protection report counts %(n)s primary suppressed cell(s) but the "
                    "table has %(have)s with conf_status %(flag)s; the table and the report do "
                    "not belong together"), report.primary.cells, facts.primary, "C"),
                (R_("the protection report counts %(n)s secondary suppressed cell(s) but the "
                    "table has %(have)s with conf_status %(flag)s; the table and the report do "
                    "not belong together"), report.secondary.cells, facts.secondary, "D")):
            if n != have:
                return Phrase(text, n=n, have=have, flag=flag)
        return None

    def summary(self, report: ProtectionReport) -> str:
        assert isinstance(report, SuppressionReport)
        audit = "audit passed" if report.audit.passed else "audit FAILED"
        return (f"{report.cells} cells, {report.primary.cells} primary + "
                f"{report.secondary.cells} secondary suppressed, {audit}")

    def review(self, report: ProtectionReport) -> dict[str, Any]:
        assert isinstance(report, SuppressionReport)
        p, a = report.parameters, report.audit
        out: dict[str, Any] = {}
        if p.min_frequency is not None:
            out[R_("Threshold (a cell below it is primary-sensitive)")] = p.min_frequency
        lv = p.protection_level
        out[R_("Protection level")] = (
            Phrase(R_("%(value)s%% of the cell's value"), value=f"{lv.value:g}")
            if lv.kind == "percent" else
            Phrase(R_("an interval at least %(value)s wide"), value=f"{lv.value:g}"))
        out[R_("Secondary suppression")] = Word(_REVIEW_SECONDARY.get(p.secondary, p.secondary))
        out[R_("Primary suppressions")] = report.primary.cells
        out[R_("Secondary suppressions")] = report.secondary.cells
        out[R_("Attacker audit")] = (
            Phrase(R_("passed: no suppressed primary cell can be narrowed below its protection "
                      "level (%(checked)s cells checked, %(mode)s intervals)"),
                   checked=a.primary_cells_checked, mode=Word(_REVIEW_MODE.get(a.mode, a.mode)))
            if a.passed else
            Phrase(R_("FAILED: %(narrow)s primary cell(s) can be narrowed below their protection "
                      "level, %(exact)s computed exactly; the table may not be published"),
                   narrow=a.narrow, exact=a.exact))
        solver = _solver_in_words(report)
        if solver is not None:
            out[R_("Optimiser")] = solver
        return out

    def public_parameters(self, spec: TableSpec) -> dict[str, Any]:
        dis = spec.disclosure
        assert isinstance(dis, SuppressionSpec)
        return {"min_frequency": dis.min_frequency, "secondary": dis.secondary}


__all__ = ["CellSuppression", "ProtectionLevel", "SuppressionReport", "SuppressionSpec"]
