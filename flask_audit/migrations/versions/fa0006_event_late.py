"""Add ``audit_event.late``: marks an event stored after the fact.

Spool replays, events recorded with an explicit ``occurred_at`` and events stored long
after they happened are marked, so that ``flask audit verify`` can tell them from a row
inserted afterwards and dated into an already sealed period. Existing rows are not late.

Revision ID: fa0006_event_late
Revises: fa0005_create_audit_login_fold
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "fa0006_event_late"
down_revision: str | None = "fa0005_create_audit_login_fold"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("audit_event", sa.Column("late", sa.Boolean(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_column("late")
