"""merge the branches of the data requests (0006r), security (0007s), protection jobs (0008j) and
release notices (0009n): one head again; no schema change.

Revision ID: 0010
Revises: 0006r, 0007s, 0008j, 0009n
"""

revision = "0010"
down_revision = ("0006r", "0007s", "0008j", "0009n")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
