"""Create ``audit_login_fold``: failed sign-ins counted beyond the burst, per address.

A frozen copy of :class:`flask_audit.store.models.LoginFold` as it was when this revision
shipped. A counter, updated in place: no triggers.

Revision ID: fa0005_create_audit_login_fold
Revises: fa0004_export_job_origin
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flask_audit.store.models import text
from flask_audit.store.models import UTCDateTime

revision: str = "fa0005_create_audit_login_fold"
down_revision: str | None = "fa0004_export_job_origin"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "audit_login_fold",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", text(64), nullable=True),
        sa.Column("ip", text(45), nullable=True),
        sa.Column("window_start", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.Column("unreported", sa.BigInteger(), nullable=False),
        sa.Column("first_unreported_at", UTCDateTime(), nullable=True),
        sa.Column("last_at", UTCDateTime(), nullable=True),
        sa.Column("email", text(320), nullable=True),
        sa.Column("user_agent", text(512), nullable=True),
        sa.PrimaryKeyConstraint("source"),
    )
    op.create_index("ix_audit_login_fold_due", "audit_login_fold", ["unreported", "window_start"])


def downgrade() -> None:
    op.drop_index("ix_audit_login_fold_due", table_name="audit_login_fold")
    op.drop_table("audit_login_fold")
