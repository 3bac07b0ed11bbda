"""Insert-only at two layers: an ORM guard and database triggers.

The trigger SQL of each dialect lives here alone; ``db.create_all()`` (through an
``after_create`` listener on the table) and the shipped Alembic revision both call
:func:`create_triggers`, so the two paths cannot drift apart.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm

from ..exceptions import ImmutableAuditEventError
from .models import audit_seal_table
from .models import AuditEvent
from .models import SEAL_TABLE_NAME
from .models import TABLE_NAME

TRIGGER_NAMES = ("audit_event_no_update", "audit_event_no_delete", "audit_event_no_truncate")
UPDATE_REFUSED = "audit_event is insert-only: UPDATE refused"
DELETE_REFUSED = "audit_event is insert-only: DELETE refused inside the retention window"
TRUNCATE_REFUSED = "audit_event is insert-only: TRUNCATE refused"


def _sqlite(days: int) -> list[str]:
    return [
        f"CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON {TABLE_NAME} "
        f"BEGIN SELECT RAISE(ABORT, '{UPDATE_REFUSED}'); END",
        f"CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON {TABLE_NAME} "
        f"WHEN OLD.occurred_at > strftime('%Y-%m-%d %H:%M:%f', 'now', '-{days} days') "
        f"BEGIN SELECT RAISE(ABORT, '{DELETE_REFUSED}'); END",
    ]


#: Also given to each partition of a partitioned trail (see flask_audit.store.partitions).
PG_REFUSE_TRUNCATE = (
    "CREATE OR REPLACE FUNCTION audit_event_refuse_truncate() RETURNS trigger "
    f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{TRUNCATE_REFUSED}' "
    "USING ERRCODE = 'integrity_constraint_violation'; END $$"
)


def _postgresql(days: int) -> list[str]:
    return [
        "CREATE OR REPLACE FUNCTION audit_event_refuse_update() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{UPDATE_REFUSED}' "
        "USING ERRCODE = 'integrity_constraint_violation'; END $$",
        PG_REFUSE_TRUNCATE,
        # The window is an argument of the trigger, so changing it only replaces the trigger.
        "CREATE OR REPLACE FUNCTION audit_event_refuse_young_delete() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "IF OLD.occurred_at > (now() AT TIME ZONE 'UTC') - make_interval(days => TG_ARGV[0]::int) THEN "
        f"RAISE EXCEPTION '{DELETE_REFUSED}' USING ERRCODE = 'integrity_constraint_violation'; "
        "END IF; RETURN OLD; END $$",
        f"CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON {TABLE_NAME} "
        "FOR EACH ROW EXECUTE FUNCTION audit_event_refuse_update()",
        f"CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON {TABLE_NAME} "
        f"FOR EACH ROW EXECUTE FUNCTION audit_event_refuse_young_delete('{days}')",
        f"CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON {TABLE_NAME} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_refuse_truncate()",
    ]


def _mysql(days: int) -> list[str]:
    # MySQL and MariaDB fire no trigger on TRUNCATE: withhold the DROP privilege instead.
    return [
        f"CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON {TABLE_NAME} FOR EACH ROW "
        f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{UPDATE_REFUSED}'",
        f"CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON {TABLE_NAME} FOR EACH ROW "
        f"BEGIN IF OLD.occurred_at > UTC_TIMESTAMP(6) - INTERVAL {days} DAY THEN "
        f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{DELETE_REFUSED}'; END IF; END",
    ]


_DIALECTS: dict[str, t.Callable[[int], list[str]]] = {
    "sqlite": _sqlite,
    "postgresql": _postgresql,
    "mysql": _mysql,
    "mariadb": _mysql,
}


def trigger_statements(dialect_name: str, retention_days: int) -> list[str]:
    """The SQL that installs the triggers on one dialect (empty for an unknown dialect)."""
    if isinstance(retention_days, bool) or not isinstance(retention_days, int) or retention_days < 1:
        raise ValueError(f"retention_days must be a positive integer, not {retention_days!r}.")
    make = _DIALECTS.get(dialect_name)
    return make(retention_days) if make else []


def drop_statements(dialect_name: str) -> list[str]:
    """The SQL that removes the triggers, so that :func:`create_triggers` can run again."""
    if dialect_name == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {name} ON {TABLE_NAME}" for name in TRIGGER_NAMES]
    if dialect_name in _DIALECTS:
        return [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGER_NAMES[:2]]
    return []


def create_triggers(connection: sa.Connection, retention_days: int, *, replace: bool = False) -> None:
    """Install the insert-only triggers on ``connection``'s database.

    :param replace: drop existing triggers first, to apply a changed retention window.
    """
    name = connection.dialect.name
    statements = trigger_statements(name, retention_days)
    if replace:
        statements = drop_statements(name) + statements
    for statement in statements:
        connection.exec_driver_sql(statement)


def installed_triggers(connection: sa.Connection) -> set[str]:
    """Names of the audit triggers present on ``connection``'s database."""
    name = connection.dialect.name
    if name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"
    elif name == "postgresql":
        sql = (
            "SELECT tgname FROM pg_trigger JOIN pg_class ON pg_class.oid = tgrelid "
            "WHERE relname = :t AND NOT tgisinternal AND pg_table_is_visible(pg_class.oid)"
        )
    else:
        sql = (
            "SELECT trigger_name FROM information_schema.triggers "
            "WHERE event_object_table = :t AND trigger_schema = DATABASE()"
        )
    return {row[0] for row in connection.execute(sa.text(sql), {"t": TABLE_NAME})}


def retention_days_for_ddl() -> int:
    """The window of the app whose ``create_all`` is running (the default outside one)."""
    from flask import current_app
    from flask import has_app_context

    from ..config import DEFAULTS

    default = int(DEFAULTS["AUDIT_RETENTION_DAYS"])
    return int(current_app.config.get("AUDIT_RETENTION_DAYS", default)) if has_app_context() else default


def _after_create(target: sa.Table, connection: sa.Connection, **kw: t.Any) -> None:
    create_triggers(connection, retention_days_for_ddl())


def attach_trigger_ddl(table: sa.Table) -> None:
    """Create the triggers whenever ``table`` is created (``create_all``), on every dialect."""
    if not sa.event.contains(table, "after_create", _after_create):
        sa.event.listen(table, "after_create", _after_create)


# -- the ORM layer -----------------------------------------------------------------


def _refuse_changes(session: sa_orm.Session, flush_context: t.Any, instances: t.Any) -> None:
    for obj in session.deleted:
        if isinstance(obj, AuditEvent):
            raise ImmutableAuditEventError(
                f"AuditEvent {obj.id} cannot be deleted: audit events are insert-only;"
                " 'flask audit prune' removes events older than the retention window."
            )
    for obj in session.dirty:
        if isinstance(obj, AuditEvent) and session.is_modified(obj):
            raise ImmutableAuditEventError(
                f"AuditEvent {obj.id} cannot be updated: audit events are insert-only."
            )


def _refuse_bulk(state: sa_orm.ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and state.bind_mapper is not None:
        if state.bind_mapper.class_ is AuditEvent:
            verb = "updated" if state.is_update else "deleted"
            raise ImmutableAuditEventError(
                f"audit events cannot be {verb} in bulk through the ORM: they are insert-only."
            )


def install_orm_guard() -> None:
    """Refuse, in every session, to flush a change or deletion of an :class:`AuditEvent`."""
    if not sa.event.contains(sa_orm.Session, "before_flush", _refuse_changes):
        sa.event.listen(sa_orm.Session, "before_flush", _refuse_changes)
        sa.event.listen(sa_orm.Session, "do_orm_execute", _refuse_bulk)


# -- the seal table ------------------------------------------------------------------
# Seals are never changed nor removed, not even by prune: no window, no exceptions.

SEAL_TRIGGER_NAMES = ("audit_seal_no_update", "audit_seal_no_delete", "audit_seal_no_truncate")
_SEAL_VERBS = ("UPDATE", "DELETE")


def seal_refused(verb: str) -> str:
    """The message the seal triggers raise for ``verb``."""
    return f"{SEAL_TABLE_NAME} is insert-only: {verb} refused"


def seal_trigger_statements(dialect_name: str) -> list[str]:
    """The SQL that makes ``audit_seal`` insert-only on one dialect (empty if unknown)."""
    table = SEAL_TABLE_NAME
    if dialect_name == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{seal_refused(verb)}'); END"
            for verb in _SEAL_VERBS
        ]
    if dialect_name == "postgresql":
        return [
            "CREATE OR REPLACE FUNCTION audit_seal_refuse_change() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = '{table} is insert-only: '"
            " || TG_OP || ' refused', ERRCODE = 'integrity_constraint_violation'; END $$",
            *(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"FOR EACH {'STATEMENT' if verb == 'TRUNCATE' else 'ROW'} "
                "EXECUTE FUNCTION audit_seal_refuse_change()"
                for verb in (*_SEAL_VERBS, "TRUNCATE")
            ),
        ]
    if dialect_name in ("mysql", "mariadb"):
        return [
            f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} FOR EACH ROW "
            f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{seal_refused(verb)}'"
            for verb in _SEAL_VERBS
        ]
    return []


def drop_seal_statements(dialect_name: str) -> list[str]:
    """The SQL that removes the seal triggers (the PostgreSQL function stays, as for events)."""
    if dialect_name == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {name} ON {SEAL_TABLE_NAME}" for name in SEAL_TRIGGER_NAMES]
    if dialect_name in _DIALECTS:
        return [f"DROP TRIGGER IF EXISTS {name}" for name in SEAL_TRIGGER_NAMES[:2]]
    return []


def create_seal_triggers(connection: sa.Connection, *, replace: bool = False) -> None:
    """Install the insert-only triggers of ``audit_seal``; ``replace`` drops them first."""
    name = connection.dialect.name
    statements = seal_trigger_statements(name)
    if replace:
        statements = drop_seal_statements(name) + statements
    for statement in statements:
        connection.exec_driver_sql(statement)


def _after_create_seal(target: sa.Table, connection: sa.Connection, **kw: t.Any) -> None:
    create_seal_triggers(connection)


# Table.to_metadata() copies propagating listeners: the app's copy of the table gets this one too.
sa.event.listen(audit_seal_table, "after_create", _after_create_seal, propagate=True)
