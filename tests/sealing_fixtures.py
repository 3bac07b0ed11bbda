"""Helpers shared by the retention, sealing and CLI tests: old events, forgery, seal and verify.

Forgery runs as the database owner with the insert-only triggers out of the way, the way an
attacker with owner rights would: PostgreSQL disables them (``DISABLE TRIGGER USER``),
SQLite and MariaDB drop them; both put them back afterwards.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import datetime as dt
import typing as t

import sqlalchemy as sa
from flask import Flask

from flask_audit.integrity import sealing
from flask_audit.integrity import verification
from flask_audit.store.immutability import create_seal_triggers
from flask_audit.store.immutability import create_triggers
from flask_audit.store.immutability import drop_seal_statements
from flask_audit.store.immutability import drop_statements
from flask_audit.store.models import audit_event_table
from flask_audit.store.models import audit_seal_table
from flask_audit.store.rows import build_row

from .conftest import audit_of
from .conftest import db

KEY = "a-test-seal-key-kept-outside-the-database"
EVENTS = audit_event_table
SEALS = audit_seal_table


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def days_ago(days: float, now: dt.datetime | None = None) -> dt.datetime:
    return (now or utcnow()) - dt.timedelta(days=days)


def engine_of(app: Flask) -> sa.Engine:
    with app.app_context():
        return db(app).engine


def record(app: Flask, count: int = 1, *, occurred_at: dt.datetime | None = None) -> list[int]:
    """``count`` events through ``record()``, as the system actor; their ids."""
    with app.app_context():
        audit = audit_of(app)
        return [
            audit.record("team.created", details={"n": n}, occurred_at=occurred_at).id for n in range(count)
        ]


def insert(app: Flask, ids: c.Iterable[int], *, occurred_at: dt.datetime | None = None) -> None:
    """Events with chosen ids, inserted with Core as a bulk load would (gaps are allowed)."""
    with app.app_context():
        config = audit_of(app).config
        rows = [
            {**build_row(config, "team.created", details={"n": i}, occurred_at=occurred_at), "id": i}
            for i in ids
        ]
        with db(app).engine.begin() as conn:
            conn.execute(sa.insert(EVENTS), rows)
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('audit_event', 'id'), max(id)) FROM audit_event"
                )


def event_ids(app: Flask) -> list[int]:
    with engine_of(app).connect() as conn:
        return list(conn.scalars(sa.select(EVENTS.c.id).order_by(EVENTS.c.id)))


def links(app: Flask) -> list[sa.RowMapping]:
    with engine_of(app).connect() as conn:
        return [row._mapping for row in conn.execute(sa.select(SEALS).order_by(SEALS.c.id))]


def seal(app: Flask, **kwargs: t.Any) -> sealing.SealResult:
    return sealing.seal(engine_of(app), KEY.encode(), **kwargs)


def verify(app: Flask, **kwargs: t.Any) -> verification.VerifyReport:
    return verification.verify(engine_of(app), KEY.encode(), **kwargs)


def problem(app: Flask, **kwargs: t.Any) -> verification.Problem:
    report = verify(app, **kwargs)
    assert report.problem is not None, report
    return report.problem


@contextlib.contextmanager
def forged(app: Flask) -> c.Iterator[sa.Connection]:
    """A connection on which UPDATE and DELETE of events and seals go through."""
    engine = engine_of(app)
    with app.app_context():
        days = audit_of(app).config.retention_days
    with engine.begin() as conn:
        name = conn.dialect.name
        if name == "postgresql":
            for table in (EVENTS.name, SEALS.name):
                conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        else:
            for statement in drop_statements(name) + drop_seal_statements(name):
                conn.exec_driver_sql(statement)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        with engine.begin() as conn:
            if name == "postgresql":
                for table in (EVENTS.name, SEALS.name):
                    conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            else:
                create_triggers(conn, days, replace=True)
                create_seal_triggers(conn, replace=True)


def row_of(conn: sa.Connection, event_id: int) -> dict[str, t.Any]:
    return dict(conn.execute(sa.select(EVENTS).where(EVENTS.c.id == event_id)).one()._mapping)


def swap(conn: sa.Connection, first: int, second: int) -> None:
    """Exchange the contents of two events, keeping their ids (uids are unique: go via a spare)."""
    a, b = row_of(conn, first), row_of(conn, second)
    content = [name for name in a if name != "id"]
    conn.execute(sa.update(EVENTS).where(EVENTS.c.id == first).values(uid="spare"))
    conn.execute(sa.update(EVENTS).where(EVENTS.c.id == second).values({name: a[name] for name in content}))
    conn.execute(sa.update(EVENTS).where(EVENTS.c.id == first).values({name: b[name] for name in content}))
