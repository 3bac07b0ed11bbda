"""Monthly partitions of ``audit_event`` on PostgreSQL, opt-in with ``AUDIT_PG_PARTITIONS``.

A trail of 10⁸ rows is easier to keep as months: each month a table of its own, so that a
query for last week reads last week's partitions and retention can one day drop a month
instead of deleting its rows one by one. Nothing changes for the code that writes and
reads: ``audit_event`` stays the table everyone names, PostgreSQL routes each row to its
month.

A partitioned table's primary key and unique constraints must contain the partition key,
so there the key is ``(id, occurred_at)`` and ``uid`` is unique with ``occurred_at``. Ids
still come from one sequence, and a retried insert still meets its own ``uid`` (the same
row has the same time), which is all the recorder relies on.

Row triggers on the partitioned table reach every partition, now and later; the
``TRUNCATE`` trigger, a statement trigger, is added to each partition as it is made. A
``DEFAULT`` partition takes any row dated outside the months made so far (an import of old
events, a host whose clock is far ahead), so that no insert ever fails for want of a month.
``flask audit partitions`` makes the months ahead; run it monthly from cron (it is cheap
and idempotent), as ``create_all`` runs it for the months around today, ``prune`` before it
drops months, and each process before its first request (:func:`catch_up`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import typing as t

import sqlalchemy as sa
from sqlalchemy.ext import compiler as sa_compiler
from sqlalchemy.schema import CreateTable

from ..exceptions import AuditConfigError
from .immutability import PG_REFUSE_TRUNCATE
from .models import TABLE_NAME

DEFAULT_AHEAD = 3
_DEFAULT = f"{TABLE_NAME}_default"
_NAME = re.compile(rf"^{TABLE_NAME}_p(\d{{4}})_(\d{{2}})$")


def mode_for_ddl() -> str | None:
    """``AUDIT_PG_PARTITIONS`` of the app whose ``create_all`` is running (``None`` outside one)."""
    from flask import current_app
    from flask import has_app_context

    if not has_app_context() or "audit" not in current_app.extensions:
        return None
    return t.cast("str | None", current_app.extensions["audit"].config.pg_partitions)


@sa_compiler.compiles(CreateTable, "postgresql")
def _create_table(element: CreateTable, compiler: sa.sql.compiler.DDLCompiler, **kw: t.Any) -> str:
    """``CREATE TABLE audit_event`` as a partitioned table, when the app asks for one."""
    text: str = compiler.visit_create_table(element, **kw)  # type: ignore[no-untyped-call]
    if element.element.name != TABLE_NAME or mode_for_ddl() is None:
        return text
    keyed = text.replace("PRIMARY KEY (id)", "PRIMARY KEY (id, occurred_at)", 1)
    keyed = keyed.replace("UNIQUE (uid)", "UNIQUE (uid, occurred_at)", 1)
    if keyed.count("(id, occurred_at)") != 1 or keyed.count("(uid, occurred_at)") != 1:
        raise AuditConfigError("AUDIT_PG_PARTITIONS: the audit_event table has an unexpected shape.")
    return keyed.rstrip().rstrip(")").rstrip() + "\n) PARTITION BY RANGE (occurred_at)\n\n"


def refuse_other_dialects(target: sa.Table, connection: sa.Connection, **kw: t.Any) -> None:
    """``before_create``: partitions are a PostgreSQL feature; say so instead of ignoring it."""
    if mode_for_ddl() is not None and connection.dialect.name != "postgresql":
        raise AuditConfigError(
            f"AUDIT_PG_PARTITIONS is for PostgreSQL; this database is {connection.dialect.name}."
            " Remove the setting (a plain table serves SQLite and MariaDB)."
        )


def make_after_create(target: sa.Table, connection: sa.Connection, **kw: t.Any) -> None:
    """``after_create``: the default partition and the months around today."""
    if mode_for_ddl() is not None and connection.dialect.name == "postgresql":
        ensure(connection)


def is_partitioned(conn: sa.Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    query = "SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(:t)"
    return conn.execute(sa.text(query), {"t": TABLE_NAME}).first() is not None


@dataclasses.dataclass(frozen=True)
class Partition:
    """One partition: its table name and the months it holds (``None`` bounds: the default)."""

    name: str
    start: dt.date | None
    end: dt.date | None


def partitions(conn: sa.Connection) -> list[Partition]:
    """The partitions of ``audit_event``, oldest month first, the default last."""
    query = (
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = to_regclass(:t)"
    )
    found, default = [], None
    for (name,) in conn.execute(sa.text(query), {"t": TABLE_NAME}):
        month = _NAME.match(name)
        if month:
            start = dt.date(int(month[1]), int(month[2]), 1)
            found.append(Partition(name, start, _next_month(start)))
        elif name == _DEFAULT:
            default = Partition(name, None, None)
    found.sort(key=lambda each: t.cast(dt.date, each.start))
    return found + ([default] if default else [])


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _month_name(start: dt.date) -> str:
    return f"{TABLE_NAME}_p{start.year:04d}_{start.month:02d}"


def ensure(
    conn: sa.Connection,
    *,
    ahead: int = DEFAULT_AHEAD,
    since: dt.date | None = None,
    today: dt.date | None = None,
) -> list[str]:
    """Make the default partition and every month from ``since`` (this month by default)
    to ``ahead`` months after this one; the names of those it made.

    A month whose rows already sit in the default partition is refused with the fix.
    """
    if not is_partitioned(conn):
        raise AuditConfigError(
            f"{TABLE_NAME} is not partitioned: set AUDIT_PG_PARTITIONS = 'monthly' before"
            " db.create_all() makes the table."
        )
    today = today or dt.datetime.now(dt.timezone.utc).date()
    month = (since or today).replace(day=1)
    last = today.replace(day=1)
    for _ in range(ahead):
        last = _next_month(last)
    existing = {each.name for each in partitions(conn)}
    made = []
    if _DEFAULT not in existing:
        conn.exec_driver_sql(f"CREATE TABLE {_DEFAULT} PARTITION OF {TABLE_NAME} DEFAULT")
        _refuse_truncate(conn, _DEFAULT)
        made.append(_DEFAULT)
    while month <= last:
        name = _month_name(month)
        if name not in existing:
            _make_month(conn, name, month)
            made.append(name)
        month = _next_month(month)
    return made


def catch_up(conn: sa.Connection) -> list[str]:
    """At start-up: make the months ahead that are missing, when the trail is partitioned
    and this account owns it (a least-privilege runtime role leaves it to the owner's cron);
    the names of those it made."""
    if not is_partitioned(conn):
        return []
    query = "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class WHERE oid = to_regclass(:t)"
    if not conn.execute(sa.text(query), {"t": TABLE_NAME}).scalar():
        return []
    return ensure(conn)


def _make_month(conn: sa.Connection, name: str, start: dt.date) -> None:
    end = _next_month(start)
    strays = conn.execute(
        sa.text(f"SELECT count(*) FROM {_DEFAULT} WHERE occurred_at >= :start AND occurred_at < :end"),
        {"start": start, "end": end},
    ).scalar()
    if strays:
        raise AuditConfigError(
            f"Cannot make {name}: {strays} event(s) of that month sit in {_DEFAULT}."
            f" Make months further ahead (flask audit partitions --ahead), before events reach them."
        )
    conn.exec_driver_sql(
        f"CREATE TABLE {name} PARTITION OF {TABLE_NAME}"
        f" FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )
    _refuse_truncate(conn, name)


def _refuse_truncate(conn: sa.Connection, name: str) -> None:
    """Statement triggers stay on the partitioned table: each partition gets its own."""
    conn.exec_driver_sql(PG_REFUSE_TRUNCATE)
    conn.exec_driver_sql(
        f"CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {name}"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_event_refuse_truncate()"
    )
