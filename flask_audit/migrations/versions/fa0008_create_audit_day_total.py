"""Create ``audit_day_total`` and index the late events.

The admin chart keeps the counts of closed days in ``audit_day_total`` (a frozen copy of
:class:`flask_audit.store.models.DayTotal` as it was when this revision shipped), so that
the first view after a restart reads a row per day instead of every event. Late events can
still change a closed day: ``ix_audit_event_late`` finds those that arrived after a day
was counted (partial on PostgreSQL and SQLite, where on-time rows cost it nothing).

Revision ID: fa0008_create_audit_day_total
Revises: fa0007_create_audit_stream
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flask_audit.store.models import text
from flask_audit.store.models import UTCDateTime

revision: str = "fa0008_create_audit_day_total"
down_revision: str | None = "fa0007_create_audit_stream"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "audit_day_total",
        sa.Column("zone", text(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("scope", text(65), nullable=False),
        sa.Column("kinds", sa.Text(), nullable=False),
        sa.Column("teams", sa.Text(), nullable=True),
        sa.Column("through_id", sa.BigInteger(), nullable=False),
        sa.Column("counted_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("zone", "day", "scope"),
    )
    op.create_index(
        "ix_audit_event_late",
        "audit_event",
        ["late", "id"],
        postgresql_where=sa.text("late"),
        sqlite_where=sa.text("late = 1"),
    )


def downgrade() -> None:
    op.drop_index("ix_audit_event_late", table_name="audit_event")
    op.drop_table("audit_day_total")
