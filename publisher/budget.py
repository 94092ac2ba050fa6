"""The privacy-budget ledger: epsilon spent per data source and reference period.

Each DP release of a (source, period) spends its epsilon from that pair's budget (sequential
composition: releases about the same people add up). :func:`charge` records a release and its
epsilon in the caller's transaction; it is safe under concurrency on SQLite and PostgreSQL:

* the budget row is updated with one conditional statement
  (``spent = spent + eps WHERE spent + eps <= total``), which takes the row's write lock
  (PostgreSQL re-checks the condition after a concurrent commit; SQLite has one writer at a
  time), so two releases can never both pass on the same remaining budget;
* a release is keyed by ``release_key`` (a hash of the protected output), unique per
  (source, period): charging the same output again spends nothing, also when two requests race
  (the second waits on the unique index and then finds the first's row).

A release that would exceed the budget raises :class:`BudgetExceeded` stating what remains; the
caller's transaction is left as it was before the call (the work is done in a savepoint).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, Float, Integer, String, UniqueConstraint, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import Base

TOLERANCE = 1e-9  # float slack, so that e.g. 0.1 + 0.2 fits in a budget of 0.3


def _now() -> datetime:
    return datetime.now(UTC)


class PrivacyBudget(Base):
    """Epsilon spent so far for one data source and reference period."""

    __tablename__ = "privacy_budget"
    __table_args__ = (UniqueConstraint("source", "period", name="uq_privacy_budget_source_period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    period: Mapped[str] = mapped_column(String(64))
    total: Mapped[float] = mapped_column(Float)
    spent: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class PrivacyCharge(Base):
    """One release's spend (append-only): which protected output, how much epsilon, when."""

    __tablename__ = "privacy_charge"
    __table_args__ = (UniqueConstraint("source", "period", "release_key",
                                       name="uq_privacy_charge_release"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    period: Mapped[str] = mapped_column(String(64))
    release_key: Mapped[str] = mapped_column(String(128))
    epsilon: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


@dataclass(frozen=True)
class BudgetStatus:
    """Budget of one (source, period) after a charge; ``charged`` False if nothing was spent now."""

    spent: float
    remaining: float
    total: float
    charged: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


class BudgetExceeded(Exception):  # noqa: N818 - the name the service uses
    """A release would spend more than the remaining budget."""

    def __init__(self, source: str, period: str, requested: float, status: BudgetStatus):
        self.source, self.period, self.requested, self.status = source, period, requested, status
        self.remaining = status.remaining
        super().__init__(
            f"privacy budget exceeded for source {source!r}, period {period!r}: this release needs "
            f"epsilon {requested:g} but only {status.remaining:g} of {status.total:g} remains "
            f"({status.spent:g} spent)")


def _check(source: str, period: str, total_budget: float, epsilon: float | None = None) -> None:
    for name, v in (("source", source), ("period", period)):
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"{name} must be a non-empty string")
    if len(source) > 200 or len(period) > 64:
        raise ValueError("source (200) or period (64) is too long")
    vals = [("total_budget", total_budget)] + ([("epsilon", epsilon)] if epsilon is not None else [])
    for name, v in vals:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a finite number greater than 0, got {v!r}")


def _status(spent: float, total: float, charged: bool = False) -> BudgetStatus:
    return BudgetStatus(spent=spent, remaining=max(0.0, total - spent), total=total,
                        charged=charged)


def status(session: Session, source: str, period: str, total_budget: float) -> BudgetStatus:
    """Spent and remaining epsilon of (source, period) under the budget ``total_budget``."""
    _check(source, period, total_budget)
    spent = session.execute(select(PrivacyBudget.spent).where(
        PrivacyBudget.source == source, PrivacyBudget.period == period)).scalar_one_or_none()
    return _status(float(spent or 0.0), float(total_budget))


def charges(session: Session, source: str, period: str) -> list[PrivacyCharge]:
    """The releases charged to (source, period), oldest first."""
    return list(session.scalars(select(PrivacyCharge).where(
        PrivacyCharge.source == source, PrivacyCharge.period == period).order_by(PrivacyCharge.id)))


def _ensure_row(session: Session, source: str, period: str, total: float) -> None:
    dialect = session.get_bind().dialect.name
    values = {"source": source, "period": period, "total": total, "spent": 0.0,
              "updated_at": _now()}
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


def charge(session: Session, *, source: str, period: str, epsilon: float, release_key: str,
           total_budget: float) -> BudgetStatus:
    """Spend ``epsilon`` of (source, period)'s budget for the release ``release_key``.

    Returns the status after the charge (``charged`` False when this release_key was already
    charged: nothing spent again). Raises :class:`BudgetExceeded` if the budget would be
    exceeded, with nothing recorded. Runs in the caller's transaction (commit is the caller's).
    """
    _check(source, period, total_budget, epsilon)
    if not isinstance(release_key, str) or not release_key or len(release_key) > 128:
        raise ValueError("release_key must be a non-empty string of at most 128 characters")
    total = float(total_budget)
    eps = float(epsilon)
    _ensure_row(session, source, period, total)
    try:
        with session.begin_nested():
            session.add(PrivacyCharge(source=source, period=period, release_key=release_key,
                                      epsilon=eps, created_at=_now()))
            session.flush()
            res = session.execute(
                update(PrivacyBudget)
                .where(PrivacyBudget.source == source, PrivacyBudget.period == period,
                       PrivacyBudget.spent + eps <= total + TOLERANCE)
                .values(spent=PrivacyBudget.spent + eps, total=total, updated_at=_now())
                .execution_options(synchronize_session=False))
            if res.rowcount != 1:
                raise BudgetExceeded(source, period, eps, status(session, source, period, total))
    except IntegrityError:
        # This release_key was charged already (perhaps just now by a concurrent request).
        return status(session, source, period, total)
    after = status(session, source, period, total)
    return _status(after.spent, after.total, charged=True)
