"""protection jobs: protection runs in the worker (one job per release or per linked releases),
with progress, heartbeat and cancellation; held uploads of refused forms

Revision ID: 0008j
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0008j"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "protection_job",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("phase", sa.String(40), nullable=False),
        sa.Column("percent", sa.Integer, nullable=False),
        sa.Column("cells", sa.Integer, nullable=True),
        sa.Column("primaries", sa.Integer, nullable=True),
        sa.Column("primaries_left", sa.Integer, nullable=True),
        sa.Column("error_code", sa.String(40), nullable=True),
        sa.Column("error", sa.JSON, nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("requested_by_id", sa.Integer, sa.ForeignKey("app_user.id"), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("heartbeat_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.CheckConstraint("status in ('pending', 'running', 'done', 'failed', 'cancelled')",
                           name="ck_protection_job_status"),
    )
    op.create_table(
        "protection_job_release",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("protection_job.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("release_id", sa.Integer, sa.ForeignKey("release.id"), nullable=False,
                  index=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("content_rev", sa.Integer, nullable=False),
        sa.UniqueConstraint("job_id", "release_id", name="uq_protection_job_release"),
    )
    op.create_table(
        "held_upload",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("app_user.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TS, nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("held_upload")
    op.drop_table("protection_job_release")
    op.drop_table("protection_job")
