"""Differential-privacy noise as a disclosure method (see :mod:`disclosure.noise` for the maths).

Spec (``disclosure`` section)::

    noise:
      mechanism: geometric     # two-sided geometric = discrete Laplace (OpenDP, exact sampler)
      epsilon: 1.0             # 0 < epsilon <= the service's EPSILON_CEILING
      # or: mechanism: gaussian, rho: 0.02  (discrete Gaussian, rho-zCDP; no epsilon key)
      privacy_unit: person     # what one neighbouring change adds or removes
      contribution_bound: 1    # inner cells one unit is counted in (asserted by the office)
      weights: {inner: .75, total: .05, margins: .20}   # share of epsilon per measured group

Guarantee: pure epsilon-differential privacy (``geometric``) or rho-zero-concentrated
differential privacy (``gaussian``; it implies (epsilon, delta)-DP with epsilon = rho +
2*sqrt(rho*ln(1/delta)), stated for delta = 1e-6) for the privacy unit under add/remove-one-unit
neighbouring, *if* each unit is counted in at most ``contribution_bound`` inner cells (asserted
by the office, not enforced: the input is already aggregated). Everything after the noisy
measurements is post-processing. Releases of the same source compose: the ledger in
``publisher.budget`` adds their budgets per source and reference period, in the source's unit
(a Laplace release at epsilon costs epsilon^2/2 of a rho-source; a Gaussian one is refused on an
epsilon-source). Linked tables of one release (``--link``) share one budget and one charge
(:func:`disclosure.noise.protect_noise_linked`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from ..errors import R_, AshyqError, Phrase, Word
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

MOE_COLUMN = "obs_moe"
LOWER_COLUMN = "obs_lower"
UPPER_COLUMN = "obs_upper"


class NoiseSpecError(AshyqError):
    """A noise specification that cannot be applied (bad epsilon, bad weights)."""


class PrivacyCost(float):
    """An amount of privacy budget with its unit: ``epsilon`` (pure DP) or ``rho`` (zCDP)."""

    unit: str

    def __new__(cls, amount: float, unit: str) -> PrivacyCost:
        obj = super().__new__(cls, amount)
        obj.unit = unit
        return obj

    def __reduce__(self) -> tuple:
        return (PrivacyCost, (float(self), self.unit))


# -- spec -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NoiseSpec(MethodSpec):
    """Parameters of a noise release (see the module docstring)."""

    method: ClassVar[str] = "noise"

    mechanism: str = "geometric"
    epsilon: float | None = 1.0  # pure DP budget (geometric); None for gaussian
    rho: float | None = None  # zCDP budget (gaussian)
    privacy_unit: str = "person"
    contribution_bound: int = 1
    weights: dict[str, float] | None = None


class NoiseParamsSchema(Schema):
    class Meta:
        unknown = INCLUDE

    mechanism = fields.String(required=True, validate=validate.OneOf(["geometric", "gaussian"]))
    epsilon = fields.Float(allow_nan=False,
                           validate=validate.Range(min=0, min_inclusive=False,
                                                   error=R_("must be greater than 0")))
    rho = fields.Float(allow_nan=False,
                       validate=validate.Range(min=0, min_inclusive=False,
                                               error=R_("must be greater than 0")))
    privacy_unit = fields.String(load_default="person", validate=validate.Length(min=1, max=80))
    contribution_bound = fields.Integer(load_default=1, validate=validate.Range(min=1))
    # Share of epsilon per measured group (see disclosure.noise.allocation): inner, total,
    # margins, a dimension name or "dim@level"; normalised to sum 1.
    weights = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=80)),
                          values=fields.Float(allow_nan=False, validate=validate.Range(min=0)))

    @validates_schema
    def _budget_key(self, data: dict[str, Any], **_: Any) -> None:
        """geometric takes epsilon (pure DP), gaussian takes rho (zCDP): exactly one of them."""
        mech = data.get("mechanism")
        if mech == "gaussian":
            if "epsilon" in data:
                raise ValidationError(R_("the gaussian mechanism takes rho (zCDP), not epsilon"),
                                      field_name="epsilon")
            if "rho" not in data:
                raise ValidationError(R_("missing: the gaussian mechanism needs rho (zCDP)"),
                                      field_name="rho")
        elif mech == "geometric":
            if "rho" in data:
                raise ValidationError(R_("only for mechanism gaussian; the geometric mechanism "
                                         "takes epsilon"), field_name="rho")
            if "epsilon" not in data:
                raise ValidationError(R_("Missing data for required field."),
                                      field_name="epsilon")


class NoiseSchema(Schema):
    class Meta:
        unknown = INCLUDE

    noise = fields.Nested(NoiseParamsSchema, required=True)


# -- report -----------------------------------------------------------------------------------

@dataclass(kw_only=True)
class Budget:
    """The ledger of the release's source and period after this release was charged:
    ``this_release`` spent by this release's draw, ``spent`` by the source and period in all
    (this release included), ``remaining`` of ``total``. ``this_release`` is None in reports
    written before it was recorded."""

    spent: float
    remaining: float
    total: float
    this_release: float | None = None
    unit: str = "epsilon"  # the source's unit: "epsilon" (pure DP) or "rho" (zCDP)


@dataclass(kw_only=True)
class Privacy:
    definition: str
    epsilon: float
    epsilon_certified: float
    privacy_unit: str
    contribution_bound: int
    contribution_bound_meaning: str
    neighbouring: str
    composition: str
    budget: Budget | None = None
    # gaussian: the zCDP budget; ``epsilon`` is then the (epsilon, delta) it implies at delta
    rho: float | None = None
    rho_certified: float | None = None
    delta: float | None = None
    # linked noise tables of one release: their ids and this table's share of the budget
    linked_tables: list[str] | None = None
    table_share: float | None = None


@dataclass(kw_only=True)
class PostProcessing:
    estimator: str
    steps: list[str]
    projection_sweeps: int
    clip_then_sum: bool


@dataclass(kw_only=True)
class Checks:
    non_negative: bool
    integer: bool
    additive: bool
    cells: int


@dataclass(kw_only=True)
class Uncertainty:
    column: str
    level: float
    method: str
    inner_moe_median: float
    inner_moe_max: int
    grand_total_moe: int
    grand_total_published: int
    interval: list[str] | None = None  # the columns of the 95 % interval (lower, upper)
    inner_halfwidth_median: float | None = None  # median half-width around the BLUE, inner cells


@dataclass(kw_only=True)
class NoiseReport(ProtectionReport):
    method: ClassVar[str] = "noise"

    mechanism: str
    noise_source: str
    differentially_private: bool
    privacy: Privacy
    allocation: dict[str, Any]
    post_processing: PostProcessing
    checks: Checks
    uncertainty: Uncertainty
    seconds: dict[str, float] = field(default_factory=dict)


# -- texts (msgids of the package-text catalogue, rendered with the translator) -----------------

_MECHANISM = {"geometric": N_("discrete Laplace (two-sided geometric)"),
              "gaussian": N_("discrete Gaussian")}
ZCDP_DELTA = 1e-6  # the delta at which a zCDP release states its (epsilon, delta)


def _zcdp_epsilon(rho: float, delta: float = ZCDP_DELTA) -> float:
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


_PRIVACY_UNIT = {"person": N_("person"), "household": N_("household"), "family": N_("family")}


def explain_noise(report: NoiseReport, tr: Translate) -> dict[str, str]:
    """Plain-language text in every language of what the noise means for small numbers (for the
    package), composed with the translator ``tr``."""
    u = report.uncertainty
    budget = report.privacy.budget
    p = report.privacy
    common = {"moe": int(round(u.inner_moe_median)), "total_moe": int(u.grand_total_moe)}
    if p.rho is not None:
        text = tr("To protect every person, a small random amount was added to or taken from each "
                  "number before publication (zero-concentrated differential privacy, rho = "
                  "%(rho)s; it implies (epsilon, delta)-differential privacy with epsilon = rho + "
                  "2·sqrt(rho·ln(1/delta)) = %(epsilon)s for delta = %(delta)s). The numbers are "
                  "whole, never negative, and the totals add up exactly. For a typical detailed "
                  "cell the published number is within ±%(moe)s of the true one in 95 cases out "
                  "of 100 (each cell's own margin of error is in the column obs_moe). So a "
                  "published 0, 1 or 2 may be a small number that is not zero, and a small "
                  "published number may be 0: do not read small numbers as exact. Totals are "
                  "much more precise: the grand total is within ±%(total_moe)s.",
                  rho=f"{p.rho:g}", epsilon=f"{_zcdp_epsilon(p.rho, p.delta or ZCDP_DELTA):.3g}",
                  delta=f"{p.delta or ZCDP_DELTA:g}", **common)
    else:
        text = tr("To protect every person, a small random amount was added to or taken from "
                  "each number before publication (differential privacy, epsilon = "
                  "%(epsilon)s). The numbers are whole, never negative, and the totals add up "
                  "exactly. For a typical detailed cell the published number is within ±%(moe)s "
                  "of the true one in 95 cases out of 100 (each cell's own margin of error is in "
                  "the column obs_moe). So a published 0, 1 or 2 may be a small number that is "
                  "not zero, and a small published number may be 0: do not read small numbers as "
                  "exact. Totals are much more precise: the grand total is within "
                  "±%(total_moe)s.", epsilon=f"{p.epsilon:g}", **common)
    if u.interval:
        text = concat(text, tr("The columns obs_lower and obs_upper give for each cell a range "
                               "that holds the true count in 95 cases out of 100; it is often "
                               "narrower than ±obs_moe and may be lopsided (the range of a "
                               "published 0 lies above it)."))
    if report.privacy.linked_tables:
        text = concat(text, tr("This table was protected together with the linked tables "
                               "%(tables)s of the same release: they share one privacy budget "
                               "(this table used %(share)s%% of it) and a number they have in "
                               "common is published with the same value in each.",
                               tables=", ".join(report.privacy.linked_tables),
                               share=f"{100 * (report.privacy.table_share or 1):.0f}"))
    if budget and budget.unit == "rho":
        spent, total, left = (f"{x:g}" for x in (budget.spent, budget.total, budget.remaining))
        mine = budget.this_release if budget.this_release is not None else 0.0
        text = concat(text, tr("This release spent rho %(this_release)s of the privacy budget "
                               "(zero-concentrated differential privacy); the data source has "
                               "spent rho %(spent)s of its %(total)s for this reference period "
                               "in all (this release included), and %(remaining)s is left.",
                               this_release=f"{mine:g}", spent=spent, total=total,
                               remaining=left))
    elif budget:
        spent, total, left = (f"{x:g}" for x in (budget.spent, budget.total, budget.remaining))
        if budget.this_release is not None:
            text = concat(text, tr("This release spent epsilon %(this_release)s of the privacy "
                                   "budget; the data source has spent %(spent)s of its "
                                   "%(total)s for this reference period in all (this release "
                                   "included), and %(remaining)s is left.",
                                   this_release=f"{budget.this_release:g}", spent=spent,
                                   total=total, remaining=left))
        else:  # a report written before the release's own spend was recorded
            text = concat(text, tr("The data source has spent %(spent)s of its privacy budget "
                                   "of %(total)s for this reference period in all; "
                                   "%(remaining)s is left.",
                                   spent=spent, total=total, remaining=left))
    return concat(text, _scope(report, tr))


def _scope(report: NoiseReport, tr: Translate) -> dict[str, str]:
    """What is and is not protected: the privacy unit and contribution bound are the office's
    assertion; other sources' tables are outside the guarantee."""
    p = report.privacy
    unit = tr(_PRIVACY_UNIT[p.privacy_unit]) if p.privacy_unit in _PRIVACY_UNIT else p.privacy_unit
    return tr("The guarantee protects one %(unit)s counted in at most %(bound)s detailed cell(s) "
              "of this table: the statistics office asserts this privacy unit and contribution "
              "bound, they are not checked or enforced on the data. The budget adds up the "
              "releases of this data source and reference period only: a person who also "
              "appears in tables of other data sources is not covered by it.",
              unit=unit, bound=str(p.contribution_bound))


def _technical(n: NoiseSpec, facts: PublishedFacts, tr: Translate) -> dict[str, str]:
    """Facts of the published table (checked by the packager), not claims of the report."""
    mech = tr(_MECHANISM[n.mechanism]) if n.mechanism in _MECHANISM else n.mechanism
    unit = tr(_PRIVACY_UNIT[n.privacy_unit]) if n.privacy_unit in _PRIVACY_UNIT else n.privacy_unit
    props = [tr("whole numbers")]
    if facts.non_negative:
        props.append(tr("non-negative"))
    if facts.additive:
        props.append(tr("every total equals the sum of its parts"))
    else:
        props.append(tr("totals may differ from the sum of their parts"))
    values = concat(*props, sep=", ")
    if n.mechanism == "gaussian" and n.rho is not None:
        return tr("Technical: mechanism %(mechanism)s; ρ = %(rho)s (ρ-zero-concentrated "
                  "differential privacy; it implies (ε, δ)-differential privacy with ε = ρ + "
                  "2·sqrt(ρ·ln(1/δ)) = %(epsilon)s for δ = %(delta)s; not pure ε-differential "
                  "privacy); privacy unit: %(unit)s, each counted in at most %(bound)s inner "
                  "cell(s); published values: %(values)s.",
                  mechanism=mech, rho=f"{n.rho:g}", epsilon=f"{_zcdp_epsilon(n.rho):.3g}",
                  delta=f"{ZCDP_DELTA:g}", unit=unit, bound=n.contribution_bound, values=values)
    return tr("Technical: mechanism %(mechanism)s; ε = %(epsilon)s (pure ε-differential privacy); "
              "privacy unit: %(unit)s, each counted in at most %(bound)s inner cell(s); "
              "published values: %(values)s.",
              mechanism=mech, epsilon=f"{n.epsilon:g}", unit=unit, bound=n.contribution_bound,
              values=values)


def _generic(n: NoiseSpec, tr: Translate) -> dict[str, str]:
    """The text when there is no report to size the margins of error from."""
    if n.mechanism == "gaussian" and n.rho is not None:
        return tr("Differential privacy: every published count (totals included) is derived from "
                  "the true count plus random noise from the %(mechanism)s mechanism; "
                  "zero-concentrated privacy-loss parameter ρ = %(rho)s (ε = ρ + "
                  "2·sqrt(ρ·ln(1/δ)) = %(epsilon)s for δ = %(delta)s), privacy unit: %(unit)s. "
                  "Because of the noise, values may differ from the true counts; the obs_moe "
                  "column gives the margin of error. The protection report describes the "
                  "processing in full.",
                  mechanism=n.mechanism, rho=f"{n.rho:g}", epsilon=f"{_zcdp_epsilon(n.rho):.3g}",
                  delta=f"{ZCDP_DELTA:g}", unit=n.privacy_unit)
    return tr("Differential privacy: every published count (totals included) is derived from the "
              "true count plus random noise from the %(mechanism)s mechanism; privacy-loss "
              "parameter ε = %(epsilon)s, privacy unit: %(unit)s. Because of the noise, values "
              "may differ from the true counts; the obs_moe column gives the margin of error. "
              "The protection report describes the processing in full.",
              mechanism=n.mechanism, epsilon=f"{n.epsilon:g}", unit=n.privacy_unit)


_NOT_PRIVATE = N_("WARNING: the noise came from a seeded test sampler; this is NOT a "
                  "differentially private release.")


# -- the method -------------------------------------------------------------------------------

@register_method
class Noise(DisclosureMethod):
    name = "noise"
    label = "differential privacy (noise)"
    spec_type = NoiseSpec
    schema = NoiseSchema
    report_type = NoiseReport
    columns: ClassVar[tuple[Column, ...]] = (
        Column(MOE_COLUMN, "number", N_("Margin of error (due to noise)"), minimum=0),
        Column(LOWER_COLUMN, "integer", N_("Lower end of range (95 in 100)"),
               minimum=0),
        Column(UPPER_COLUMN, "integer", N_("Upper end of range (95 in 100)"),
               minimum=0),)
    negative_values = True
    linkable = True
    history = False
    history_refusal = R_("--published is not available: earlier noise releases of a source are "
                         "accounted for by the privacy budget ledger (source_id, "
                         "reference_period), not by an attacker model")

    keys = ("noise",)

    def build_spec(self, params: dict[str, Any], dimensions: tuple[Dimension, ...],
                   raw: dict[str, Any]) -> NoiseSpec:
        n = params["noise"]
        core = {"mechanism", "epsilon", "rho", "privacy_unit", "contribution_bound", "weights"}
        return NoiseSpec(
            mechanism=n["mechanism"],
            epsilon=float(n["epsilon"]) if n.get("epsilon") is not None else None,
            rho=float(n["rho"]) if n.get("rho") is not None else None,
            privacy_unit=n["privacy_unit"],
            contribution_bound=n["contribution_bound"], weights=n.get("weights"),
            options={k: v for k, v in n.items() if k not in core},
        )

    def form_section(self, values: dict[str, Any]) -> dict[str, Any]:
        if values.get("epsilon") is None:
            raise ValueError("epsilon: give epsilon for noise")
        return {"noise": {"mechanism": "geometric", "epsilon": float(values["epsilon"])}}

    def check(self, spec: TableSpec, context: ProtectContext) -> None:
        from ..noise import spec_budget

        dis = spec.disclosure
        assert isinstance(dis, NoiseSpec)
        spec_budget(dis, context.epsilon_ceiling)
        if dis.weights:  # refused before the budget is charged (the split needs only the spec)
            from types import SimpleNamespace

            from ..noise import allocation

            allocation(SimpleNamespace(hierarchies=tuple(d.hierarchy for d in spec.dimensions)),
                       dis.weights)

    def protect(self, tables, context: ProtectContext):  # noqa: ANN001, ANN201
        from ..noise import protect_noise_linked

        cells = sum(t.n_cells for t in tables)
        context.step("noise", cells=cells)
        out = protect_noise_linked(list(tables), rng=context.rng,
                                   epsilon_ceiling=context.epsilon_ceiling)
        context.step("noised", cells=cells)
        return out

    def releasable(self, report: ProtectionReport) -> Phrase | None:
        assert isinstance(report, NoiseReport)
        if not report.differentially_private:
            return Phrase(R_("the noise was not drawn by the production sampler; refusing to "
                             "release it"))
        return None

    def additive(self, report: ProtectionReport) -> bool:
        assert isinstance(report, NoiseReport)
        return report.checks.additive

    def package_warnings(self, report: ProtectionReport) -> list[str]:
        assert isinstance(report, NoiseReport)
        if report.differentially_private:
            return []
        return ["the protection report says the noise came from a seeded test sampler: NOT a "
                "differentially private release (the package says so)"]

    def budget_cost(self, spec: TableSpec, report: ProtectionReport | None = None) -> float | None:
        # From the spec: the service reserves it before the noise is drawn. The amount is in the
        # mechanism's unit (PrivacyCost.unit: epsilon or rho); the ledger converts it to the
        # source's unit or refuses (publisher.budget.cost_in).
        n = spec.disclosure
        assert isinstance(n, NoiseSpec)
        if n.mechanism == "gaussian":
            return PrivacyCost(float(n.rho), "rho") if n.rho is not None else None
        return PrivacyCost(float(n.epsilon), "epsilon") if n.epsilon is not None else None

    def release_cost(self, specs: list[TableSpec]) -> list[float | None]:
        """What each of several linked tables of one release costs: the release's budget once,
        charged with the first table (the tables share it; see
        :func:`disclosure.noise.protect_noise_linked`), nothing for the others."""
        if len(specs) > 1:
            from ..noise import check_linked

            check_linked(specs)
        return [self.budget_cost(specs[0]), *([None] * (len(specs) - 1))]

    def with_budget(self, report: ProtectionReport, *, spent: float, remaining: float,
                    total: float, this_release: float | None = None,
                    unit: str | None = None) -> NoiseReport:
        assert isinstance(report, NoiseReport)
        if unit is None:  # the unit of the source; a caller that does not say: the mechanism's
            unit = "rho" if report.privacy.rho is not None else "epsilon"
        privacy = replace(report.privacy, budget=Budget(
            spent=float(spent), remaining=float(remaining), total=float(total),
            this_release=None if this_release is None else float(this_release), unit=unit))
        return replace(report, privacy=privacy)

    def describe(self, spec: TableSpec, report: ProtectionReport | None,
                 facts: PublishedFacts, tr: Translate) -> MethodNote:
        n = spec.disclosure
        assert isinstance(n, NoiseSpec)
        rep = report if isinstance(report, NoiseReport) else None
        params: dict[str, Any] = {"mechanism": n.mechanism, "epsilon": n.epsilon,
                                  "privacy_unit": n.privacy_unit,
                                  "contribution_bound": n.contribution_bound}
        if n.rho is not None:
            params.update({"rho": n.rho, "delta": ZCDP_DELTA,
                           "epsilon": _zcdp_epsilon(n.rho),
                           "epsilon_formula": "epsilon = rho + 2*sqrt(rho*ln(1/delta))"})
        if rep is not None:
            # Public facts of the method from the report; no cell values.
            params["noise_source"] = rep.noise_source[:200]
            params["differentially_private"] = rep.differentially_private
            params["mechanism_detail"] = rep.mechanism[:200]
            p = rep.privacy
            params.update({"definition": p.definition, "epsilon_certified": p.epsilon_certified,
                           "contribution_bound_meaning": p.contribution_bound_meaning,
                           "neighbouring": p.neighbouring, "composition": p.composition})
            pp = rep.post_processing
            params["post_processing"] = {"estimator": pp.estimator,
                                         "clip_then_sum": pp.clip_then_sum,
                                         "steps": [x[:300] for x in pp.steps[:20]]}
            u = rep.uncertainty
            params["uncertainty"] = {"column": u.column, "level": u.level, "method": u.method}
        parts = [explain_noise(rep, tr) if rep is not None else _generic(n, tr),
                 _technical(n, facts, tr)]
        if rep is not None and not rep.differentially_private:
            parts.append(tr(_NOT_PRIVATE))
        return MethodNote(parameters=params, text=concat(*parts))

    def summary(self, report: ProtectionReport) -> str:
        assert isinstance(report, NoiseReport)
        b = report.privacy.budget
        left = ""
        if b:
            mine = f"this release spent {b.this_release:g}, " if b.this_release is not None else ""
            left = (f", {mine}source spent {b.spent:g}, budget left {b.remaining:g} of "
                    f"{b.total:g} {b.unit}")
        p = report.privacy
        what = (f"rho {p.rho:g} = epsilon {p.epsilon:.3g} at delta {p.delta:g}"
                if p.rho is not None else f"epsilon {p.epsilon}")
        return f"{report.cells} cells, noise ({what}{left})"

    def review(self, report: ProtectionReport) -> dict[str, Any]:
        assert isinstance(report, NoiseReport)
        pr, u = report.privacy, report.uncertainty
        out: dict[str, Any] = {R_("Epsilon"): f"{pr.epsilon:g}"}
        if pr.rho is not None:
            out[R_("Epsilon")] = Phrase(R_("%(epsilon)s for delta %(delta)s (epsilon = rho + "
                                           "2·sqrt(rho·ln(1/delta)))"),
                                        epsilon=f"{pr.epsilon:.3g}", delta=f"{pr.delta:g}")
            out[R_("Rho (zero-concentrated DP)")] = f"{pr.rho:g}"
        out[R_("Mechanism")] = Word(R_("two-sided geometric (discrete Laplace)")
                                    if report.mechanism.startswith("discrete Laplace")
                                    else R_("discrete Gaussian")
                                    if report.mechanism == "discrete Gaussian"
                                    else report.mechanism)
        out[R_("Privacy unit")] = Word(R_("a person") if pr.privacy_unit == "person"
                                       else pr.privacy_unit)
        out[R_("Contribution bound")] = pr.contribution_bound
        b = pr.budget
        if b is not None:
            out[R_("Privacy budget spent / remaining")] = f"{b.spent:g} / {b.remaining:g}"
        out[R_("Margin of error")] = Phrase(
            R_("inner cells: median ± %(median)s, largest ± %(largest)s (the true count lies "
               "within the margin with %(level)s%% probability)"),
            level=f"{100 * u.level:g}", median=f"{u.inner_moe_median:g}",
            largest=u.inner_moe_max)
        out[R_("Noise source")] = (Word(R_("the production sampler (differentially private)"))
                                   if report.differentially_private else
                                   Word(R_("a seeded test sampler: NOT differentially private")))
        return out

    def public_parameters(self, spec: TableSpec) -> dict[str, Any]:
        n = spec.disclosure
        assert isinstance(n, NoiseSpec)
        out: dict[str, Any] = {"mechanism": n.mechanism, "epsilon": n.epsilon,
                               "privacy_unit": n.privacy_unit}
        if n.rho is not None:
            out.update({"rho": n.rho, "delta": ZCDP_DELTA, "epsilon": _zcdp_epsilon(n.rho)})
        return out


def margin_of_error_level(report: ProtectionReport | None) -> float:
    """Coverage of the published margins of error (0.95 unless the report says otherwise)."""
    if isinstance(report, NoiseReport) and math.isfinite(report.uncertainty.level):
        return report.uncertainty.level
    return 0.95


__all__ = ["LOWER_COLUMN", "MOE_COLUMN", "UPPER_COLUMN", "Noise", "NoiseReport", "NoiseSpec", "NoiseSpecError", "PrivacyCost",
           "explain_noise"]
