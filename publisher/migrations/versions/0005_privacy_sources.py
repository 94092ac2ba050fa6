"""privacy sources: registered data sources with their total epsilon per reference period; the
ledger is keyed by the registered (normalised) id and its total comes from the source

Existing ledger rows are re-keyed by the normalised source id (NFKC, stripped, lower-case;
characters outside a-z 0-9 - _ become '-'), merging rows that were one source spelled
differently (their spends add up), and each such source is registered with the largest total its
rows recorded, so no spent epsilon is forgotten; an administrator changes it with
``publisher source set-budget``.

Revision ID: 0005
Revises: 0004, 0002
"""
import re
import unicodedata
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = ("0004", "0002")
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _key(raw: str) -> str:
    s = unicodedata.normalize("NFKC", raw or "").strip().lower()
    s = re.sub(r"[^a-z0-9_-]+", "-", s).strip("-_")[:64]
    return s or "legacy"


def upgrade() -> None:
    op.create_table(
        "privacy_source",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("total", sa.Float, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    conn = op.get_bind()
    budget = sa.table("privacy_budget", sa.column("id", sa.Integer),
                      sa.column("source", sa.String), sa.column("period", sa.String),
                      sa.column("total", sa.Float), sa.column("spent", sa.Float),
                      sa.column("updated_at", TS))
    charge = sa.table("privacy_charge", sa.column("id", sa.Integer),
                      sa.column("source", sa.String), sa.column("period", sa.String),
                      sa.column("release_key", sa.String))
    source = sa.table("privacy_source", sa.column("id", sa.String), sa.column("total", sa.Float),
                      sa.column("created_at", TS), sa.column("updated_at", TS))
    rows = conn.execute(sa.select(budget.c.id, budget.c.source, budget.c.period, budget.c.total,
                                  budget.c.spent).order_by(budget.c.id)).all()
    merged: dict[tuple[str, str], list] = {}
    totals: dict[str, float] = {}
    for rid, src, period, total, spent in rows:
        k = (_key(src), period)
        totals[k[0]] = max(totals.get(k[0], 0.0), float(total or 0.0))
        if k in merged:
            merged[k][1] += float(spent or 0.0)
            conn.execute(sa.delete(budget).where(budget.c.id == rid))
        else:
            merged[k] = [rid, float(spent or 0.0)]
    for (key, _period), (rid, spent) in merged.items():
        conn.execute(sa.update(budget).where(budget.c.id == rid)
                     .values(source=key, spent=spent))
    seen: set[tuple[str, str, str]] = set()
    for cid, src, period, rkey in conn.execute(
            sa.select(charge.c.id, charge.c.source, charge.c.period, charge.c.release_key)
            .order_by(charge.c.id)).all():
        new = (_key(src), period, rkey)
        if new in seen:  # one output charged under two spellings: keep both rows (both spent)
            new = (new[0], period, f"{rkey[:100]}-{cid}")
        seen.add(new)
        if (new[0], new[2]) != (src, rkey):
            conn.execute(sa.update(charge).where(charge.c.id == cid)
                         .values(source=new[0], release_key=new[2]))
    now = datetime.now(UTC)
    for key, total in sorted(totals.items()):
        conn.execute(sa.insert(source).values(id=key, total=total if total > 0 else 1.0,
                                              created_at=now, updated_at=now))
    with op.batch_alter_table("privacy_budget") as b:
        b.drop_column("total")


def downgrade() -> None:
    with op.batch_alter_table("privacy_budget") as b:
        b.add_column(sa.Column("total", sa.Float, nullable=False, server_default="0"))
    op.execute("update privacy_budget set total = coalesce((select s.total from privacy_source s "
               "where s.id = privacy_budget.source), 0)")
    op.drop_table("privacy_source")
