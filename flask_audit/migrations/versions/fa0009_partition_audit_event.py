"""Convert a plain ``audit_event`` into the monthly partitioned layout (PostgreSQL, opt-in).

Runs only on PostgreSQL, for an app with ``AUDIT_PG_PARTITIONS = "monthly"``, on a table that
is not partitioned yet; elsewhere it does nothing, so every other app can upgrade past it.
It takes ``audit_event`` as it stands rather than a frozen copy of the model: the partitioned
table is made ``LIKE`` it (columns, defaults, checks), so that the conversion keeps whatever
earlier revisions and the app's own made of it.

In one transaction, holding ``ACCESS EXCLUSIVE`` on the table (writers wait, or spool, for
the length of the copy, about a million rows a minute on a small 2-core server; plan it as
downtime):

1. the plain table steps aside as ``audit_event_plain``, its indexes and keys renamed;
2. a table partitioned by ``occurred_at`` takes the name, with the keys of the partitioned
   layout, ``(id, occurred_at)`` and ``(uid, occurred_at)``, and the same id sequence;
3. the months from the oldest event to three months ahead are made, and a ``DEFAULT``
   partition; the rows are copied, ids unchanged; the indexes come back (on every
   partition), then the insert-only triggers, and the privileges granted on the old table;
4. the old table is dropped.

Seals stay valid: they hash the events' contents and ids, which do not change.
The downgrade leaves the partitioned table in place: it is the same trail.

Revision ID: fa0009_partition_audit_event
Revises: fa0008_create_audit_day_total
Create Date: 2026-12-08
"""

from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa
from alembic import op

from flask_audit.exceptions import AuditError
from flask_audit.store import partitions
from flask_audit.store.immutability import create_triggers
from flask_audit.store.immutability import retention_days_for_ddl

revision: str = "fa0009_partition_audit_event"
down_revision: str | None = "fa0008_create_audit_day_total"
branch_labels: tuple[str, ...] | None = None
depends_on: str | None = None

_TABLE = "audit_event"
_OLD = "audit_event_plain"
_NEW = "audit_event_partitioned"


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql" or partitions.mode_for_ddl() is None:
        return
    if partitions.is_partitioned(conn):
        return
    convert(conn, retention_days_for_ddl())


def downgrade() -> None:
    """Nothing: the partitioned table holds the same trail and serves every later revision."""


def _month(moment: dt.datetime | None) -> dt.date:
    day = (moment or dt.datetime.now(dt.timezone.utc)).date()
    return day.replace(day=1)


def _indexes(conn: sa.Connection) -> list[tuple[str, str]]:
    """The old table's indexes that are not keys: (name, definition)."""
    query = (
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = to_regclass(:t)"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
    )
    return [(name, definition) for name, definition in conn.execute(sa.text(query), {"t": _TABLE})]


def _grants(conn: sa.Connection) -> list[tuple[str, str]]:
    """(grantee, privilege) granted on the old table to anyone but its owner."""
    query = (
        "SELECT a.grantee::regrole::text, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a"
        " WHERE c.oid = to_regclass(:t) AND a.grantee <> c.relowner AND a.grantee <> 0"
    )
    return [(who, what) for who, what in conn.execute(sa.text(query), {"t": _TABLE})]


def convert(conn: sa.Connection, retention_days: int) -> None:
    """Turn the plain ``audit_event`` into a partitioned one, rows, ids and triggers kept."""
    conn.exec_driver_sql(f"LOCK TABLE {_TABLE} IN ACCESS EXCLUSIVE MODE")
    indexes = _indexes(conn)
    grants = _grants(conn)
    oldest, newest = conn.execute(sa.text(f"SELECT min(occurred_at), max(occurred_at) FROM {_TABLE}")).one()
    sequence = conn.scalar(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": _TABLE})
    for name, _ in indexes:
        conn.exec_driver_sql(f"ALTER INDEX {name} RENAME TO {name}_plain")
    keys = conn.execute(
        sa.text(
            "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(:t) AND contype IN ('p', 'u')"
        ),
        {"t": _TABLE},
    ).scalars()
    for key in list(keys):
        conn.exec_driver_sql(f"ALTER TABLE {_TABLE} RENAME CONSTRAINT {key} TO {key}_plain")
    conn.exec_driver_sql(
        f"CREATE TABLE {_NEW} (LIKE {_TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
        " INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (occurred_at)"
    )
    conn.exec_driver_sql(f"ALTER TABLE {_TABLE} RENAME TO {_OLD}")
    conn.exec_driver_sql(f"ALTER TABLE {_NEW} RENAME TO {_TABLE}")
    conn.exec_driver_sql(f"ALTER TABLE {_TABLE} ADD CONSTRAINT {_TABLE}_pkey PRIMARY KEY (id, occurred_at)")
    conn.exec_driver_sql(f"ALTER TABLE {_TABLE} ADD CONSTRAINT {_TABLE}_uid_key UNIQUE (uid, occurred_at)")
    first, last, today = _month(oldest), _month(newest), _month(None)
    ahead = max(partitions.DEFAULT_AHEAD, (last.year - today.year) * 12 + last.month - today.month)
    partitions.ensure(conn, since=min(first, today), ahead=ahead)
    conn.exec_driver_sql(f"INSERT INTO {_TABLE} SELECT * FROM {_OLD}")
    for name, definition in indexes:  # "CREATE INDEX name ON public.audit_event USING btree (...)"
        head = re.match(rf"^(CREATE (?:UNIQUE )?INDEX {re.escape(name)} ON )\S+ ", definition)
        if head is None:
            raise AuditError(f"Unexpected definition of the index {name}: {definition}")
        conn.exec_driver_sql(f"{head[1]}{_TABLE} {definition[head.end() :]}")
    create_triggers(conn, retention_days)
    for grantee, privilege in grants:
        conn.exec_driver_sql(f"GRANT {privilege} ON {_TABLE} TO {grantee}")
    if sequence:
        conn.exec_driver_sql(f"ALTER SEQUENCE {sequence} OWNED BY {_TABLE}.id")
    conn.exec_driver_sql(f"DROP TABLE {_OLD}")
    conn.exec_driver_sql(f"ANALYZE {_TABLE}")
