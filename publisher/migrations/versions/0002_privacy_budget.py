"""privacy budget: epsilon spent per data source and reference period, one row per release

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = ("budget",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "privacy_budget",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("period", sa.String(64), nullable=False),
        sa.Column("total", sa.Float, nullable=False),
        sa.Column("spent", sa.Float, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("source", "period", name="uq_privacy_budget_source_period"),
    )
    op.create_table(
        "privacy_charge",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("period", sa.String(64), nullable=False),
        sa.Column("release_key", sa.String(128), nullable=False),
        sa.Column("epsilon", sa.Float, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("source", "period", "release_key", name="uq_privacy_charge_release"),
    )


def downgrade() -> None:
    op.drop_table("privacy_charge")
    op.drop_table("privacy_budget")
