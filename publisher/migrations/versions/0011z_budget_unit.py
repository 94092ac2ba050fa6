"""privacy sources keep their budget in one unit: ``epsilon`` (pure DP, every existing source)
or ``rho`` (zero-concentrated DP, for Gaussian releases)

Revision ID: 0011z
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011z"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("privacy_source") as b:
        b.add_column(sa.Column("unit", sa.String(8), nullable=False, server_default="epsilon"))


def downgrade() -> None:
    with op.batch_alter_table("privacy_source") as b:
        b.drop_column("unit")
