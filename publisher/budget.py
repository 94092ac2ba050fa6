"""The privacy-budget ledger: registered data sources and the budget spent per source and period.

* **One unit per source** (``PrivacySource.unit``): ``epsilon`` (pure DP; the default) or ``rho``
  (zero-concentrated DP). A draw's cost comes in its mechanism's unit (:func:`cost_in`): on an
  epsilon-source a Laplace release costs its epsilon and a Gaussian (zCDP) release is refused
  (zCDP does not imply pure DP); on a rho-source a Gaussian release costs its rho and a Laplace
  release at epsilon costs rho = epsilon^2 / 2 (pure epsilon-DP implies epsilon^2/2-zCDP, Bun &
  Steinke 2016, Prop. 1.4; zCDP composes by adding rho). Amounts below (``epsilon`` in
  names kept from the first version) are in the source's unit.
* **Linked noise tables of one release** are one draw and one charge (:func:`reserve_draws`).

Each DP release of a (source, reference period) spends its epsilon from that pair's budget
(sequential composition: releases about the same people add up).

* **Sources are registered** (:class:`PrivacySource`) by an administrator, each with its total
  budget per reference period (``publisher source add ID --budget E``; changing it is
  :func:`set_source_budget`, an audited admin action with a reason). The key is the registered id,
  normalised (:func:`normalise_source_id`: NFKC, stripped, lower-case, a slug), never the free text
  of a spec: ``LEDGER-SRC``, `` ledger-src`` and ``ledger-src `` are one source. A spec naming an
  unregistered source, or none, is refused for noise (:func:`source_of`). Settings play no part
  in a charge: ``EPSILON_BUDGET`` is only the default of ``source add`` without ``--budget``.
* **Periods** are the spec's ``reference_period`` as an ISO 8601 period (``2024``, ``2024-Q1``,
  ``2024-01``, ``2024-01-15``; :func:`period_key`), or ``all`` when the spec gives none.
* **A charge is one draw** (:func:`charge`), made *before* the noise is drawn, keyed by a fresh
  ``draw_key`` per draw: a new draw always costs, whatever its output. Serving a stored draw
  again (re-packaging, re-publishing, a retry) does not call :func:`charge`. Charging the same
  ``draw_key`` twice (a retried reservation) spends nothing the second time.

:func:`charge` runs in the caller's transaction and is safe under concurrency on SQLite and
PostgreSQL: the budget row is updated with one conditional statement (``spent = spent + eps
WHERE spent + eps <= (the source's total)``), which takes the row's write lock (PostgreSQL
re-checks the condition after a concurrent commit; SQLite has one writer at a time), so two draws
can never both pass on the same remaining budget; the ``draw_key`` is unique per (source,
period). A draw that would exceed the budget raises :class:`BudgetExceeded` stating what remains;
the caller's transaction is left as it was before the call (the work is done in a savepoint).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, Float, Integer, String, UniqueConstraint, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from disclosure.errors import R_, AshyqError, Phrase, Word

from .db import Base

if TYPE_CHECKING:
    from disclosure.spec import TableSpec

TOLERANCE = 1e-9  # float slack, so that e.g. 0.1 + 0.2 fits in a budget of 0.3
SOURCE_ID_RULE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
SOURCE_ID_HELP = "1-64 characters a-z 0-9 - _, starting with a letter or digit"
NO_PERIOD = "all"  # the period key of a spec that gives no reference_period
UNITS = ("epsilon", "rho")  # epsilon: pure DP; rho: zero-concentrated DP
MAX_LISTED = 20  # registered ids named in a refusal


def _now() -> datetime:
    return datetime.now(UTC)


class PrivacySource(Base):
    """A registered data source (population) and its total epsilon per reference period."""

    __tablename__ = "privacy_source"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    total: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(8), default="epsilon", server_default="epsilon")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class PrivacyBudget(Base):
    """Epsilon spent so far for one registered source and reference period."""

    __tablename__ = "privacy_budget"
    __table_args__ = (UniqueConstraint("source", "period", name="uq_privacy_budget_source_period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    period: Mapped[str] = mapped_column(String(64))
    spent: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class PrivacyCharge(Base):
    """One draw's spend (append-only): which draw, how much epsilon, when."""

    __tablename__ = "privacy_charge"
    __table_args__ = (UniqueConstraint("source", "period", "release_key",
                                       name="uq_privacy_charge_release"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    period: Mapped[str] = mapped_column(String(64))
    release_key: Mapped[str] = mapped_column(String(128))  # the draw's key (one per draw)
    epsilon: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


@dataclass(frozen=True)
class BudgetStatus:
    """Budget of one (source, period); ``charged`` False if nothing was spent now."""

    spent: float
    remaining: float
    total: float
    charged: bool = False
    unit: str = "epsilon"  # the source's unit
    this_draw: float | None = None  # what this charge spent, in the source's unit

    def as_dict(self) -> dict:
        return asdict(self)


class BudgetError(AshyqError):
    """A privacy-budget request the ledger refuses (unknown source, bad period or amount)."""


class BudgetExceeded(BudgetError):  # noqa: N818 - the name the service uses
    """A draw would spend more than the remaining budget."""

    def __init__(self, source: str, period: str, requested: float, status: BudgetStatus):
        self.source, self.period, self.requested, self.status = source, period, requested, status
        self.remaining = status.remaining
        if status.unit == "rho":
            super().__init__(
                R_("privacy budget exceeded for source %(source_id)s, period %(period)s: this "
                   "release needs rho %(requested)s but only %(remaining)s of %(total)s remains "
                   "(%(spent)s spent)"), source_id=repr(source), period=repr(period),
                requested=f"{requested:g}", remaining=f"{status.remaining:g}",
                total=f"{status.total:g}", spent=f"{status.spent:g}")
            return
        super().__init__(
            R_("privacy budget exceeded for source %(source_id)s, period %(period)s: this release "
               "needs epsilon %(requested)s but only %(remaining)s of %(total)s remains "
               "(%(spent)s spent)"), source_id=repr(source), period=repr(period),
            requested=f"{requested:g}", remaining=f"{status.remaining:g}",
            total=f"{status.total:g}", spent=f"{status.spent:g}")


# -- sources ----------------------------------------------------------------------------------

def normalise_source_id(raw: object) -> str:
    """The registered form of a source id: NFKC, stripped, lower-case; ValueError if it is not a
    slug (``SOURCE_ID_HELP``)."""
    if not isinstance(raw, str):
        raise ValueError(f"a source id is text ({SOURCE_ID_HELP})")
    s = unicodedata.normalize("NFKC", raw).strip().lower()
    if not SOURCE_ID_RULE.fullmatch(s):
        raise ValueError(f"source id {raw[:70]!r}: {SOURCE_ID_HELP}")
    return s


def _check_amount(name: str, v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number greater than 0, got {v!r}")
    return float(v)


def sources(session: Session) -> list[PrivacySource]:
    """The registered sources, by id."""
    return list(session.scalars(select(PrivacySource).order_by(PrivacySource.id)))


def get_source(session: Session, source_id: str) -> PrivacySource | None:
    """The registered source of ``source_id`` (any spelling that normalises to it), or None."""
    try:
        key = normalise_source_id(source_id)
    except ValueError:
        return None
    return session.get(PrivacySource, key)


def _audit(session: Session, actor: Any, action: str, reason: str, detail: dict) -> None:
    from .workflow import audit

    audit(session, actor, action, reason=reason, detail=detail)


def add_source(session: Session, source_id: str, total: float, *, actor: Any = None,
               via: str = "cli", reason: str = "", unit: str = "epsilon") -> PrivacySource:
    """Register a data source with its total budget per reference period, in ``unit``
    (``epsilon``: pure DP, or ``rho``: zCDP) (audited; in the caller's transaction). ValueError
    for a bad id, total or unit, or an id registered already."""
    key = normalise_source_id(source_id)
    amount = _check_amount("the budget", total)
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)} (epsilon: pure differential "
                         f"privacy; rho: zero-concentrated), got {str(unit)[:20]!r}")
    if session.get(PrivacySource, key) is not None:
        raise ValueError(f"the source {key!r} is registered already (change its budget with "
                         "'publisher source set-budget')")
    src = PrivacySource(id=key, total=amount, unit=unit, created_at=_now(), updated_at=_now())
    try:
        with session.begin_nested():
            session.add(src)
            session.flush()
    except IntegrityError as e:
        raise ValueError(f"the source {key!r} is registered already") from e
    _audit(session, actor, "source_added", reason,
           {"source": key, "total": amount, "unit": unit, "via": via})
    return src


def set_source_budget(session: Session, source_id: str, total: float, *, reason: str,
                      actor: Any = None, via: str = "cli") -> PrivacySource:
    """Change a registered source's total per reference period: the one way it changes (audited,
    with a reason). A total below what a period has spent leaves that period with nothing left."""
    key = normalise_source_id(source_id)
    amount = _check_amount("the budget", total)
    if not (reason or "").strip():
        raise ValueError("changing a source's budget needs a reason")
    src = session.get(PrivacySource, key, with_for_update=True)
    if src is None:
        raise ValueError(f"no registered source {key!r}")
    before = src.total
    src.total = amount
    src.updated_at = _now()
    session.flush()
    _audit(session, actor, "source_budget_changed", reason.strip(),
           {"source": key, "from": before, "to": amount, "via": via})
    return src


def _registered_ids(session: Session) -> Phrase:
    ids = list(session.scalars(select(PrivacySource.id).order_by(PrivacySource.id)
                               .limit(MAX_LISTED + 1)))
    if not ids:
        return Phrase(R_("none is registered yet"))
    more = ", ..." if len(ids) > MAX_LISTED else ""
    return Phrase(R_("registered: %(ids)s"), ids=", ".join(ids[:MAX_LISTED]) + more)


def source_of(session: Session, spec: TableSpec) -> PrivacySource:
    """The registered source a noise spec names (``source_id``), or a :class:`BudgetError`
    naming the key ``source_id`` and the registered ids."""
    raw = spec.metadata.get("source_id")
    src = f"spec {spec.id}"
    hint = Word(R_("an administrator registers one with 'publisher source add ID --budget E'"))
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise BudgetError(R_("key source_id: missing; a noise release is charged to a registered data source (%(registered)s; %(hint)s)"), source=src, registered=_registered_ids(session), hint=hint)
    found = get_source(session, raw) if isinstance(raw, str) else None
    if found is None:
        shown = str(raw).strip()[:70]
        raise BudgetError(R_("key source_id: %(source_id)s is not a registered data source (%(registered)s; %(hint)s)"), source=src, source_id=repr(shown), registered=_registered_ids(session), hint=hint)
    return found


def period_key(spec: TableSpec) -> str:
    """The ledger's period of a spec: its ``reference_period`` as a canonical ISO 8601 period
    (``2024``, ``2024-Q1``, ``2024-01``, ``2024-01-15``), or ``all`` when it gives none.
    Anything else is a :class:`BudgetError` naming the key."""
    from disclosure.history import HistoryError, period_of

    src = f"spec {spec.id}"
    try:
        p = period_of(spec, source=src)
    except HistoryError as e:
        raw = spec.metadata.get("reference_period")
        shown = (next(iter(raw.values()), "") if isinstance(raw, dict) else str(raw)).strip()
        raise BudgetError(R_("key reference_period: %(period)s is not an ISO 8601 period (give 2024, 2024-Q1, 2024-01 or 2024-01-15)"), source=src, period=repr(shown[:40])) from e
    if p is None:
        return NO_PERIOD
    if p.kind == "year":
        return f"{p.start.year:04d}"
    if p.kind == "quarter":
        return f"{p.start.year:04d}-Q{(p.start.month - 1) // 3 + 1}"
    if p.kind == "month":
        return f"{p.start.year:04d}-{p.start.month:02d}"
    if p.kind == "day":
        return p.start.isoformat()
    raise BudgetError(R_("key reference_period: the privacy budget is kept per year, quarter, month or day (2024, 2024-Q1, 2024-01, 2024-01-15), not per interval (%(text)s)"), source=src, text=repr(p.text[:40]))


# -- the ledger -------------------------------------------------------------------------------

def _check(source: str, period: str, epsilon: float | None = None) -> None:
    for name, v in (("source", source), ("period", period)):
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"{name} must be a non-empty string")
    if len(source) > 200 or len(period) > 64:
        raise ValueError("source (200) or period (64) is too long")
    if epsilon is not None:
        _check_amount("epsilon", epsilon)


def _status(spent: float, total: float, charged: bool = False, unit: str = "epsilon",
            this_draw: float | None = None) -> BudgetStatus:
    return BudgetStatus(spent=spent, remaining=max(0.0, total - spent), total=total,
                        charged=charged, unit=unit, this_draw=this_draw)


def cost_in(amount: float, cost_unit: str, source_unit: str, *, source: str = "") -> float:
    """A draw's cost in its mechanism's unit, converted to the source's unit: epsilon on a
    rho-source is epsilon^2 / 2 (pure epsilon-DP implies epsilon^2/2-zCDP); rho on an
    epsilon-source is refused (:class:`BudgetError` naming ``mechanism``: zCDP does not imply
    pure DP)."""
    if cost_unit == source_unit:
        return float(amount)
    if cost_unit == "epsilon" and source_unit == "rho":
        return float(amount) ** 2 / 2.0
    if cost_unit == "rho" and source_unit == "epsilon":
        raise BudgetError(R_("key disclosure.noise.mechanism: the data source %(source_id)s keeps a pure-DP budget in epsilon, and a gaussian (zero-concentrated DP) release does not satisfy pure differential privacy; use mechanism geometric, or a source registered with unit rho"), source_id=repr(source))
    raise ValueError(f"unknown budget unit {cost_unit!r} or {source_unit!r}")


def _registered(session: Session, source: str) -> PrivacySource:
    key = normalise_source_id(source)
    src = session.get(PrivacySource, key, populate_existing=True)
    if src is None:
        raise BudgetError(R_("key source_id: %(source_id)s is not a registered data source (%(registered)s)"), source_id=repr(source[:70]), registered=_registered_ids(session))
    return src


def status(session: Session, source: str, period: str) -> BudgetStatus:
    """Spent and remaining epsilon of a registered source and period (its total is the
    source's registered total)."""
    _check(source, period)
    src = _registered(session, source)
    spent = session.execute(select(PrivacyBudget.spent).where(
        PrivacyBudget.source == src.id, PrivacyBudget.period == period)).scalar_one_or_none()
    return _status(float(spent or 0.0), float(src.total), unit=src.unit or "epsilon")


def charges(session: Session, source: str, period: str) -> list[PrivacyCharge]:
    """The draws charged to (source, period), oldest first."""
    try:
        source = normalise_source_id(source)
    except ValueError:
        return []
    return list(session.scalars(select(PrivacyCharge).where(
        PrivacyCharge.source == source, PrivacyCharge.period == period).order_by(PrivacyCharge.id)))


def _ensure_row(session: Session, source: str, period: str) -> None:
    dialect = session.get_bind().dialect.name
    values = {"source": source, "period": period, "spent": 0.0, "updated_at": _now()}
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - other databases: plain insert in a savepoint
        try:
            with session.begin_nested():
                session.add(PrivacyBudget(**values))
        except IntegrityError:
            pass
        return
    session.execute(insert(PrivacyBudget).values(**values)
                    .on_conflict_do_nothing(index_elements=["source", "period"]))


def charge(session: Session, *, source: str, period: str, epsilon: float,
           draw_key: str, unit: str | None = None) -> BudgetStatus:
    """Spend ``epsilon`` of a registered source's budget for ``period``, for the draw
    ``draw_key`` (one fresh key per draw, made before the noise is drawn).

    ``epsilon`` is the draw's cost in ``unit`` (default: the amount's own ``unit`` attribute, as
    :class:`disclosure.methods.noise.PrivacyCost` carries it, else ``epsilon``); it is converted
    to the source's unit by :func:`cost_in` (or refused) before anything is written.

    Returns the status after the charge (``charged`` False when this draw_key was charged
    already: nothing spent again). Raises :class:`BudgetError` for an unregistered source and
    :class:`BudgetExceeded` if the budget would be exceeded, with nothing recorded. Runs in the
    caller's transaction (commit is the caller's). The total is the source's registered total,
    read in the same statement that spends.
    """
    _check(source, period, epsilon)
    if not isinstance(draw_key, str) or not draw_key or len(draw_key) > 128:
        raise ValueError("draw_key must be a non-empty string of at most 128 characters")
    registered = _registered(session, source)
    key = registered.id
    src_unit = registered.unit or "epsilon"
    eps = cost_in(float(epsilon), unit or getattr(epsilon, "unit", "epsilon"), src_unit,
                  source=key)
    total_now = (select(PrivacySource.total).where(PrivacySource.id == key)
                 .scalar_subquery())
    _ensure_row(session, key, period)
    try:
        with session.begin_nested():
            session.add(PrivacyCharge(source=key, period=period, release_key=draw_key,
                                      epsilon=eps, created_at=_now()))
            session.flush()
            res = session.execute(
                update(PrivacyBudget)
                .where(PrivacyBudget.source == key, PrivacyBudget.period == period,
                       PrivacyBudget.spent + eps <= total_now + TOLERANCE)
                .values(spent=PrivacyBudget.spent + eps, updated_at=_now())
                .execution_options(synchronize_session=False))
            if res.rowcount != 1:
                raise BudgetExceeded(key, period, eps, status(session, key, period))
    except IntegrityError:
        # This draw_key was charged already (perhaps just now by a concurrent request).
        return status(session, key, period)
    after = status(session, key, period)
    return _status(after.spent, after.total, charged=True, unit=src_unit, this_draw=eps)


def check_draw(session: Session, spec: TableSpec, cost: float | None = None) -> BudgetStatus | None:
    """Refuse, before anything is drawn or queued, a draw its registered source cannot take:
    an unregistered source, a bad period, a mechanism the source's unit does not admit, or not
    enough budget left (in the source's unit). Returns the status with ``this_draw`` set
    (nothing written), or None for a method that spends no budget."""
    from disclosure.methods import method_of

    if cost is None:
        cost = method_of(spec).budget_cost(spec)
    if cost is None:
        return None
    source = source_of(session, spec)
    period = period_key(spec)
    st = status(session, source.id, period)
    amount = cost_in(float(cost), getattr(cost, "unit", "epsilon"), st.unit, source=source.id)
    if st.remaining + TOLERANCE < amount:
        raise BudgetExceeded(source.id, period, amount, st)
    return _status(st.spent, st.total, unit=st.unit, this_draw=amount)


@dataclass(frozen=True)
class Reservation:
    """The budget charged for one draw (the fields of ``publisher.service._Reservation``, with
    the source's ``unit``); ``epsilon`` is what the draw spent, in that unit."""

    source: str
    period: str
    epsilon: float
    spent: float
    remaining: float
    total: float
    unit: str = "epsilon"


def reserve_draws(session: Session, specs: list[TableSpec]) -> list[Reservation | None]:
    """Charge the draws of tables protected together, before anything is drawn: one charge per
    release. Linked noise tables are one draw of one budget (their method's ``release_cost``:
    the release's budget, once); every table gets the reservation (what the release spent and
    the source's spend after it), so each report tells the truth about the one charge."""
    import uuid

    from disclosure.methods import method_of

    method = method_of(specs[0])
    costs = (method.release_cost(specs) if len(specs) > 1 and hasattr(method, "release_cost")
             else [method.budget_cost(s) for s in specs])
    out: list[Reservation | None] = []
    last: Reservation | None = None
    for spec, cost in zip(specs, costs, strict=True):
        if cost is None:
            out.append(last if len(specs) > 1 and hasattr(method, "release_cost") else None)
            continue
        source = source_of(session, spec).id
        period = period_key(spec)
        st = charge(session, source=source, period=period, epsilon=cost,
                    draw_key=f"draw-{uuid.uuid4().hex}")
        last = Reservation(source=source, period=period, epsilon=float(st.this_draw or 0.0),
                           spent=st.spent, remaining=st.remaining, total=st.total, unit=st.unit)
        out.append(last)
    return out
