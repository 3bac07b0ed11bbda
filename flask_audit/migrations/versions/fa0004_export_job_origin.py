"""Keep the asking request's address, user agent and id on ``audit_export_job``.

The ``audit.exported`` event is recorded when the mail goes out, after that request;
these columns let it carry the admin's IP address, user agent and request id all the same.

Revision ID: fa0004_export_job_origin
Revises: fa0003_create_audit_export_job
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flask_audit.store.models import text

revision: str = "fa0004_export_job_origin"
down_revision: str | None = "fa0003_create_audit_export_job"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None

_COLUMNS = (("requested_ip", 45), ("requested_user_agent", 512), ("requested_request_id", 64))


def upgrade() -> None:
    with op.batch_alter_table("audit_export_job") as batch:
        for name, length in _COLUMNS:
            batch.add_column(sa.Column(name, text(length), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_export_job") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
