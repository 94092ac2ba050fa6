"""release notices in kk/ru/en: ``release.notices`` holds a correction's or revision's notice as
``{lang: text}`` (the default language required for a correction, the others offered); the
one-language ``release.notice`` stays for rows written before, and is copied into ``notices``
under the default language so every release has its notice in the new form.

Revision ID: 0009n
Revises: 0005
"""
import os

import sqlalchemy as sa
from alembic import op

revision = "0009n"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("release") as batch:
        batch.add_column(sa.Column("notices", sa.JSON, nullable=True))
    default = (os.environ.get("ASHYQ_DEFAULT_LANGUAGE") or "kk").strip().strip('"') or "kk"
    release = sa.table("release", sa.column("id", sa.Integer), sa.column("notice", sa.Text),
                       sa.column("notices", sa.JSON))
    conn = op.get_bind()
    rows = conn.execute(sa.select(release.c.id, release.c.notice)
                        .where(release.c.notice.is_not(None))).all()
    for rid, text in rows:
        if text and text.strip():
            conn.execute(release.update().where(release.c.id == rid)
                         .values(notices={default: text}))


def downgrade() -> None:
    with op.batch_alter_table("release") as batch:
        batch.drop_column("notices")
