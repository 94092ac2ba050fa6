"""data requests: requests for tables that are not public, their email confirmations (hashed),
thread, link to the releases that answer them, private downloads (logged), outgoing mail and the
staff's email addresses for reminders

Revision ID: 0006r
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006r"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "data_request",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("email_hash", sa.String(64), nullable=False),
        sa.Column("contact_name", sa.String(200), nullable=False),
        sa.Column("organisation", sa.String(200), nullable=False),
        sa.Column("requester_kind", sa.String(20), nullable=False),
        sa.Column("client_hash", sa.String(64), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("variables", sa.Text, nullable=False),
        sa.Column("breakdowns", sa.Text, nullable=False),
        sa.Column("period", sa.String(200), nullable=False),
        sa.Column("region_level", sa.String(20), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("may_publish", sa.Boolean, nullable=False),
        sa.Column("public_title", sa.String(300), nullable=True),
        sa.Column("track_salt", sa.String(64), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("confirmed_at", TS, nullable=True),
        sa.Column("standard_days", sa.Integer, nullable=True),
        sa.Column("deadline", sa.Date, nullable=True),
        sa.Column("assigned_to_id", sa.Integer, sa.ForeignKey("app_user.id"), nullable=True),
        sa.Column("assigned_at", TS, nullable=True),
        sa.Column("state_before_question", sa.String(20), nullable=True),
        sa.Column("responded_at", TS, nullable=True),
        sa.Column("decline_reason", sa.String(40), nullable=True),
        sa.Column("delivery", sa.String(10), nullable=True),
        sa.Column("reminded_at", TS, nullable=True),
        sa.Column("overdue_notified_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_data_request_state", "data_request", ["state"])
    op.create_index("ix_data_request_email_hash", "data_request", ["email_hash"])
    op.create_index("ix_data_request_client_hash", "data_request", ["client_hash"])
    op.create_index("ix_data_request_received_at", "data_request", ["received_at"])
    op.create_index("ix_data_request_deadline", "data_request", ["deadline"])

    op.create_table(
        "request_confirmation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.Integer,
                  sa.ForeignKey("data_request.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
    )
    op.create_index("ix_request_confirmation_request_id", "request_confirmation",
                    ["request_id"])

    op.create_table(
        "request_message",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.Integer,
                  sa.ForeignKey("data_request.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("author", sa.String(20), nullable=False),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("app_user.id"), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_request_message_request_id", "request_message", ["request_id"])

    op.create_table(
        "request_release",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.Integer,
                  sa.ForeignKey("data_request.id", ondelete="CASCADE"), nullable=False),
        sa.Column("release_id", sa.Integer, sa.ForeignKey("release.id"), nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("content_rev", sa.Integer, nullable=False),
        sa.Column("linked_at", TS, nullable=False),
        sa.Column("linked_by_id", sa.Integer, sa.ForeignKey("app_user.id"), nullable=True),
        sa.Column("package_path", sa.Text, nullable=True),
        sa.Column("package_sha256", sa.String(64), nullable=True),
        sa.UniqueConstraint("request_id", "release_id", name="uq_request_release"),
    )
    op.create_index("ix_request_release_request_id", "request_release", ["request_id"])
    op.create_index("ix_request_release_release_id", "request_release", ["release_id"])

    op.create_table(
        "request_download",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.Integer, sa.ForeignKey("data_request.id"), nullable=True),
        sa.Column("link_id", sa.Integer, sa.ForeignKey("request_release.id"), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("served", sa.Boolean, nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("client_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_request_download_request_id", "request_download", ["request_id"])
    op.create_index("ix_request_download_at", "request_download", ["at"])

    op.create_table(
        "request_mail",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.Integer,
                  sa.ForeignKey("data_request.id", ondelete="CASCADE"), nullable=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("to_addr", sa.String(254), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_request_mail_request_id", "request_mail", ["request_id"])
    op.create_index("ix_request_mail_sent_at", "request_mail", ["sent_at"])

    op.create_table(
        "staff_contact",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("app_user.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    for name in ("staff_contact", "request_mail", "request_download", "request_release",
                 "request_message", "request_confirmation", "data_request"):
        op.drop_table(name)
