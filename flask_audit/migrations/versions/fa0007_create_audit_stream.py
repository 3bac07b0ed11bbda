"""Create ``audit_stream``: each streaming destination's cursor, lease and health.

A frozen copy of :class:`flask_audit.store.models.StreamState` as it was when this revision
shipped. Updated in place by the stream workers: no triggers.

Revision ID: fa0007_create_audit_stream
Revises: fa0006_event_late
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flask_audit.store.models import text
from flask_audit.store.models import UTCDateTime

revision: str = "fa0007_create_audit_stream"
down_revision: str | None = "fa0006_event_late"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "audit_stream",
        sa.Column("name", text(64), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("lease_holder", sa.String(length=64), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("failing_since", UTCDateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("alerted", sa.Boolean(), nullable=False),
        sa.Column("delivered", sa.BigInteger(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("audit_stream")
