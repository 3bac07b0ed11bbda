"""Create the insert-only ``audit_event`` table, its triggers and the ``audit.enabled`` row.

A frozen copy of the table as :mod:`flask_audit.store.models` defined it when this revision
shipped: a shipped revision never changes; later schema changes get their own revision.

Revision ID: fa0001_create_audit_event
Revises:
Create Date: 2025-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from flask_audit.store.immutability import create_triggers
from flask_audit.store.immutability import drop_statements
from flask_audit.store.immutability import retention_days_for_ddl
from flask_audit.store.models import text
from flask_audit.store.models import UTCDateTime
from flask_audit.store.rows import enabled_row

revision: str = "fa0001_create_audit_event"
down_revision: str | None = None
branch_labels: tuple[str, ...] | None = ("flask_audit",)
depends_on: str | None = None

_INDEXES: dict[str, list[str]] = {
    "ix_audit_event_tenant_time": ["tenant_id", "occurred_at", "id"],
    "ix_audit_event_tenant_actor_time": ["tenant_id", "actor_email", "occurred_at"],
    "ix_audit_event_tenant_type_time": ["tenant_id", "event_type", "occurred_at"],
    "ix_audit_event_tenant_entity_time": ["tenant_id", "entity", "occurred_at"],
    "ix_audit_event_tenant_team_time": ["tenant_id", "team", "occurred_at"],
    "ix_audit_event_tenant_action_time": ["tenant_id", "action", "occurred_at"],
    "ix_audit_event_time": ["occurred_at"],
}
_PG_FUNCTIONS = (
    "audit_event_refuse_update",
    "audit_event_refuse_truncate",
    "audit_event_refuse_young_delete",
)


def upgrade() -> None:
    if op.get_context().as_sql:
        raise RuntimeError("flask_audit's migration installs triggers and needs a database: run it online.")
    table = op.create_table(
        "audit_event",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("uid", text(32), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("tenant_id", text(64), nullable=True),
        sa.Column("team", text(255), nullable=True),
        sa.Column("event_type", text(64), nullable=False),
        sa.Column("entity", text(64), nullable=False),
        sa.Column("action", text(16), nullable=False),
        sa.Column("outcome", text(16), nullable=False),
        sa.Column("activity", text(1000), nullable=False),
        sa.Column("actor_id", text(64), nullable=True),
        sa.Column("actor_email", text(320), nullable=True),
        sa.Column("ip", text(45), nullable=True),
        sa.Column("user_agent", text(512), nullable=True),
        sa.Column("request_id", text(64), nullable=True),
        sa.Column("target_type", text(64), nullable=True),
        sa.Column("target_id", text(128), nullable=True),
        sa.Column("details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uid"),
    )
    for name, columns in _INDEXES.items():
        op.create_index(name, "audit_event", columns, unique=False)
    bind = op.get_bind()
    days = retention_days_for_ddl()  # the app's AUDIT_RETENTION_DAYS under Flask-Migrate, else 90
    create_triggers(bind, days)
    # Only this revision's columns: a later revision may add keys to the row.
    row = {key: value for key, value in enabled_row(days).items() if key in table.c}
    bind.execute(sa.insert(table), row)


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    for statement in drop_statements(dialect):
        op.execute(statement)
    if dialect == "postgresql":
        for function in _PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_table("audit_event")
