"""release safety: one approval / schedule per revision, withdrawal reason, keyed upload digest;
removes figures derived from raw values from stored reports and the plain hash of raw files

Revision ID: 0004
Revises: 0003
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
RAW_KEYS = ("value_suppressed", "primary_value", "secondary_value")


def _scrub(obj, parent=None):
    """The report without figures derived from raw suppressed values (counts stay)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in RAW_KEYS or (k == "value" and parent in ("suppressed", "linked_total")):
                continue
            out[k] = _scrub(v, k)
        return out
    if isinstance(obj, list):
        return [_scrub(v, parent) for v in obj]
    return obj


def upgrade() -> None:
    with op.batch_alter_table("release") as b:
        b.add_column(sa.Column("upload_hmac", sa.String(64), nullable=True))
        b.add_column(sa.Column("withdrawn_at", TS, nullable=True))
        b.add_column(sa.Column("withdrawn_reason", sa.Text, nullable=True))
    op.create_table(
        "release_decision",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("release_id", sa.Integer, sa.ForeignKey("release.id"), nullable=False,
                  index=True),
        sa.Column("content_rev", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("actor_id", sa.Integer, sa.ForeignKey("app_user.id"), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.UniqueConstraint("release_id", "content_rev", "kind", name="uq_release_decision"),
        sa.CheckConstraint("kind in ('approve', 'schedule')", name="ck_release_decision_kind"),
    )
    bind = op.get_bind()
    release = sa.table("release", sa.column("id", sa.Integer), sa.column("report", sa.JSON),
                       sa.column("upload_sha256", sa.String))
    bind.execute(sa.update(release).values(upload_sha256=""))
    for rid, report in bind.execute(sa.select(release.c.id, release.c.report)).all():
        if report is None:
            continue
        data = json.loads(report) if isinstance(report, str) else report
        clean = _scrub(data)
        if clean != data:
            bind.execute(sa.update(release).where(release.c.id == rid).values(report=clean))


def downgrade() -> None:
    op.drop_table("release_decision")
    with op.batch_alter_table("release") as b:
        b.drop_column("withdrawn_reason")
        b.drop_column("withdrawn_at")
        b.drop_column("upload_hmac")
