"""The audit tables are created wherever FAB creates its own.

FAB's models live in their own metadata (``flask_appbuilder.Model``), which the app's
``db.create_all()`` never sees and FAB's ``create_all()`` calls never include the audit
tables registered on the app's ``db``. FAB creates its tables when the security manager
starts on an empty database and in ``flask fab create-db``: both end in
``Model.metadata.create_all()``, whose ``after_create`` creates the audit tables on the same
connection. An app that adds ``Audit`` to an existing FAB database gets them when the
adapter connects, as FAB's own ``FAB_CREATE_DB`` start-up does for its tables.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import current_app
from flask import Flask
from flask import has_app_context

from ...state import audit_state
from ...store.models import AuditBase


def _audit_tables(app: Flask) -> list[sa.Table]:
    metadata = audit_state(app).db.metadata
    return [metadata.tables[name] for name in AuditBase.metadata.tables if name in metadata.tables]


def _after_fab_create(target: sa.MetaData, connection: sa.Connection, **kw: t.Any) -> None:
    if not has_app_context() or "audit" not in current_app.extensions:
        return
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if "appbuilder" not in app.extensions:
        return
    tables = _audit_tables(app)
    if tables:
        tables[0].metadata.create_all(connection, tables=tables, checkfirst=True)


def install() -> None:
    """Listen to FAB's metadata once, for every app."""
    from flask_appbuilder.models.sqla import Model  # type: ignore[import-untyped]

    if not sa.event.contains(Model.metadata, "after_create", _after_fab_create):
        sa.event.listen(Model.metadata, "after_create", _after_fab_create)


def create_missing(app: Flask) -> None:
    """Create the audit tables if FAB would create its own (``FAB_CREATE_DB``) and they are missing."""
    if not app.config.get("FAB_CREATE_DB", True):
        return
    engine = audit_state(app).engine
    tables = _audit_tables(app)
    with engine.connect() as conn:
        missing = [table for table in tables if not sa.inspect(conn).has_table(table.name)]
    if missing:
        with engine.begin() as conn:
            tables[0].metadata.create_all(conn, tables=missing, checkfirst=True)
