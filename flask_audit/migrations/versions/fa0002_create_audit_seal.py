"""Create the insert-only ``audit_seal`` table (the HMAC chain) and its triggers.

A frozen copy of :class:`flask_audit.store.models.AuditSeal` as it was when this revision
shipped; the trigger SQL comes from :mod:`flask_audit.store.immutability`, as ``create_all``'s.

Revision ID: fa0002_create_audit_seal
Revises: fa0001_create_audit_event
Create Date: 2025-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from flask_audit.store.immutability import create_seal_triggers
from flask_audit.store.immutability import drop_seal_statements
from flask_audit.store.models import UTCDateTime

revision: str = "fa0002_create_audit_seal"
down_revision: str | None = "fa0001_create_audit_event"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None


def upgrade() -> None:
    if op.get_context().as_sql:
        raise RuntimeError("flask_audit's migration installs triggers and needs a database: run it online.")
    op.create_table(
        "audit_seal",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("sealed_at", UTCDateTime(), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=True),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("cutoff", UTCDateTime(), nullable=True),
        sa.Column("merkle_root", sa.String(length=64), nullable=False),
        sa.Column(
            "manifest", sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"), nullable=False
        ),
        sa.Column("prev_hmac", sa.String(length=64), nullable=False),
        sa.Column("hmac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prev_hmac"),
        sa.UniqueConstraint("hmac"),
    )
    create_seal_triggers(op.get_bind())


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    for statement in drop_seal_statements(dialect):
        op.execute(statement)
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_seal_refuse_change()")
    op.drop_table("audit_seal")
