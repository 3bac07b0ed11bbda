"""Create ``audit_export_job``: durable export requests, their status and retries.

A frozen copy of :class:`flask_audit.store.models.ExportJob` as it was when this revision
shipped. Unlike the events and seals, jobs are updated as they progress: no triggers.

Revision ID: fa0003_create_audit_export_job
Revises: fa0002_create_audit_seal
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from flask_audit.store.models import text
from flask_audit.store.models import UTCDateTime

revision: str = "fa0003_create_audit_export_job"
down_revision: str | None = "fa0002_create_audit_seal"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "audit_export_job",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("requested_by_id", text(64), nullable=True),
        sa.Column("requested_by_email", text(320), nullable=False),
        sa.Column("tenant_scoped", sa.Boolean(), nullable=False),
        sa.Column("tenant_id", text(64), nullable=True),
        sa.Column("team", text(255), nullable=True),
        sa.Column("filters", _JSON, nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("snapshot_at", UTCDateTime(), nullable=False),
        sa.Column("max_event_id", sa.BigInteger(), nullable=False),
        sa.Column("download_url", sa.String(length=2000), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("delivery", sa.String(length=16), nullable=True),
        sa.Column("link_expires_at", UTCDateTime(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_export_job_due", "audit_export_job", ["status", "next_attempt_at"])
    op.create_index("ix_audit_export_job_requester", "audit_export_job", ["requested_by_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_export_job_requester", table_name="audit_export_job")
    op.drop_index("ix_audit_export_job_due", table_name="audit_export_job")
    op.drop_table("audit_export_job")
