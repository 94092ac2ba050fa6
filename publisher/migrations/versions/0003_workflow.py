"""workflow: users, roles, API tokens, releases, append-only audit log, publication jobs

Revision ID: 0003
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = ("workflow",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "user_role",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("app_user.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("role", sa.String(20), primary_key=True),
        sa.CheckConstraint("role in ('preparer', 'approver', 'admin')", name="ck_user_role_role"),
    )
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("app_user.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(12), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_table(
        "login_attempt",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, index=True),
        sa.Column("address", sa.String(64), nullable=False, index=True),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("at", TS, nullable=False, index=True),
    )
    op.create_table(
        "release",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("series", sa.String(100), nullable=False, index=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False, index=True),
        sa.Column("title", sa.JSON, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("notice", sa.Text, nullable=True),
        sa.Column("previous_id", sa.Integer, sa.ForeignKey("release.id"), nullable=True),
        sa.Column("upload_name", sa.String(255), nullable=False),
        sa.Column("upload_bytes", sa.LargeBinary, nullable=True),
        sa.Column("upload_sha256", sa.String(64), nullable=False),
        sa.Column("content_rev", sa.Integer, nullable=False),
        sa.Column("protected_csv", sa.LargeBinary, nullable=True),
        sa.Column("report", sa.JSON, nullable=True),
        sa.Column("protect_error", sa.Text, nullable=True),
        sa.Column("prepared_by_id", sa.Integer, sa.ForeignKey("app_user.id"), nullable=False),
        sa.Column("changed_by_id", sa.Integer, sa.ForeignKey("app_user.id"), nullable=True),
        sa.Column("approved_by_id", sa.Integer, sa.ForeignKey("app_user.id"), nullable=True),
        sa.Column("approved_rev", sa.Integer, nullable=True),
        sa.Column("approved_at", TS, nullable=True),
        sa.Column("embargo_at", TS, nullable=True),
        sa.Column("package_path", sa.Text, nullable=True),
        sa.Column("package_sha256", sa.String(64), nullable=True),
        sa.Column("published_at", TS, nullable=True),
        sa.Column("published_url", sa.Text, nullable=True),
        sa.Column("published_target", sa.String(20), nullable=True),
        sa.Column("dataset_name", sa.String(200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("series", "version"),
        sa.CheckConstraint(
            "state in ('draft', 'protected', 'submitted', 'approved', 'scheduled', 'published', "
            "'superseded', 'corrected', 'withdrawn')", name="ck_release_state"),
        # Four eyes, also at the database: the approver is never the preparer.
        sa.CheckConstraint("approved_by_id is null or approved_by_id <> prepared_by_id",
                           name="ck_release_four_eyes"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", TS, nullable=False, index=True),
        sa.Column("actor_id", sa.Integer, sa.ForeignKey("app_user.id"), nullable=True),
        sa.Column("actor_name", sa.String(64), nullable=False),
        sa.Column("release_id", sa.Integer, sa.ForeignKey("release.id"), nullable=True,
                  index=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("from_state", sa.String(20), nullable=True),
        sa.Column("to_state", sa.String(20), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "publication_job",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("release_id", sa.Integer, sa.ForeignKey("release.id"), nullable=False,
                  unique=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("step", sa.String(40), nullable=False),
        sa.Column("percent", sa.Integer, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("retryable", sa.Boolean, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    # The audit log is append-only at the database too.
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            """
            CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
            BEGIN
              RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP;
            END;
            $$ LANGUAGE plpgsql;
            """
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();"
        )
    elif dialect == "sqlite":
        op.execute(
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN "
            "SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE refused'); END;"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN "
            "SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused'); END;"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    for t in ("publication_job", "audit_log", "release", "login_attempt", "api_token",
              "user_role", "app_user"):
        op.drop_table(t)
