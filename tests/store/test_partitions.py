"""``AUDIT_PG_PARTITIONS = "monthly"``: the trail as a table partitioned by month on PostgreSQL.

Writers, seals, verify and exports see the same ``audit_event``; the triggers guard every
partition; ``flask audit partitions`` makes the months ahead; other databases refuse the
setting instead of ignoring it.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import datetime as dt
import json
import pathlib
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit import AuditConfigError
from flask_audit.query.filters import AuditFilter
from flask_audit.query.filters import Cursor
from flask_audit.query.sql import fetch_page
from flask_audit.store import partitions

from ..conftest import _server_database
from ..conftest import audit_of
from ..conftest import database_name
from ..conftest import db
from ..conftest import MakeApp
from ..sealing_fixtures import KEY

on_postgresql = pytest.mark.backends("postgresql")


def _month(day: dt.date, shift: int) -> str:
    index = day.year * 12 + day.month - 1 + shift
    return f"audit_event_p{index // 12:04d}_{index % 12 + 1:02d}"


def _month_start(day: dt.date, shift: int) -> dt.datetime:
    index = day.year * 12 + day.month - 1 + shift
    return dt.datetime(index // 12, index % 12 + 1, 2, tzinfo=dt.timezone.utc)


def _partitioned(make_app: MakeApp, **config: object) -> Flask:
    return make_app(AUDIT_PG_PARTITIONS="monthly", AUDIT_SEAL_KEY=KEY, **config)


def _run(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["audit", *args])
    return result.exit_code, result.output


def _refused(app: Flask, statement: str) -> str:
    with app.app_context(), db(app).engine.connect() as conn:
        with pytest.raises(sa.exc.DBAPIError) as caught:
            conn.exec_driver_sql(statement)
        conn.rollback()
    return str(caught.value.orig)


@on_postgresql
def test_create_all_makes_the_months_around_today(make_app: MakeApp) -> None:
    app = _partitioned(make_app)
    today = dt.datetime.now(dt.timezone.utc).date()
    with app.app_context(), db(app).engine.connect() as conn:
        assert partitions.is_partitioned(conn)
        names = [each.name for each in partitions.partitions(conn)]
        keys = conn.execute(
            sa.text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = 'audit_event'::regclass AND contype IN ('p', 'u') ORDER BY contype"
            )
        ).scalars()
        assert list(keys) == ["PRIMARY KEY (id, occurred_at)", "UNIQUE (uid, occurred_at)"]
        enabled = conn.execute(sa.text("SELECT event_type FROM audit_event")).scalars()
        assert list(enabled) == ["audit.enabled"]
    assert names == [_month(today, shift) for shift in range(4)] + ["audit_event_default"]


@on_postgresql
def test_events_seal_verify_and_export_as_on_a_plain_table(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    app = _partitioned(make_app)
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=40)
    with app.app_context():
        audit = audit_of(app)
        ids = [audit.record("team.created", details={"n": n}).id for n in range(5)]
        imported = audit.record("team.created", occurred_at=old, details={"imported": True})
    assert None not in ids and imported.id is not None
    with app.app_context(), db(app).engine.connect() as conn:
        where = conn.execute(
            sa.text("SELECT tableoid::regclass::text FROM audit_event WHERE id = :id"), {"id": imported.id}
        ).scalar()
    assert where in ("audit_event_default", _month(old.date(), 0))
    assert _run(app, "seal")[0] == 0
    code, output = _run(app, "verify")
    assert code == 0 and output.startswith("Verified 7 sealed event(s)"), output
    out = tmp_path / "trail.csv"
    code, output = _run(app, "export", "--out", str(out))
    assert code == 0, output
    assert len(out.read_text(encoding="utf-8-sig").splitlines()) == 1 + 7


@on_postgresql
def test_the_triggers_guard_the_parent_and_every_partition(make_app: MakeApp) -> None:
    app = _partitioned(make_app)
    with app.app_context():
        event = audit_of(app).record("user.login")
    this_month = _month(event.occurred_at.date(), 0)
    assert "UPDATE refused" in _refused(app, "UPDATE audit_event SET activity = 'x'")
    assert "UPDATE refused" in _refused(app, f"UPDATE {this_month} SET activity = 'x'")
    assert "DELETE refused" in _refused(app, f"DELETE FROM {this_month}")
    assert "TRUNCATE refused" in _refused(app, "TRUNCATE audit_event")
    assert "TRUNCATE refused" in _refused(app, f"TRUNCATE {this_month}")
    assert "TRUNCATE refused" in _refused(app, "TRUNCATE audit_event_default")
    code, output = _run(app, "partitions", "--ahead", "5")
    assert code == 0, output
    later = _month(event.occurred_at.date(), 5)
    with app.app_context():  # a row in the month just made: its row triggers are there too
        audit_of(app).record("user.login", occurred_at=_month_start(event.occurred_at.date(), 5))
    assert "TRUNCATE refused" in _refused(app, f"TRUNCATE {later}")
    assert "UPDATE refused" in _refused(app, f"UPDATE {later} SET activity = 'x'")


@on_postgresql
def test_partitions_makes_the_months_ahead_once(make_app: MakeApp) -> None:
    app = _partitioned(make_app)
    today = dt.datetime.now(dt.timezone.utc).date()
    code, output = _run(app, "partitions", "--ahead", "5")
    assert (code, output) == (
        0,
        f"Made 2 partition(s): {_month(today, 4)}, {_month(today, 5)};"
        f" months held: {_month_start(today, 0):%Y-%m} to {_month_start(today, 5):%Y-%m}.\n",
    )
    code, output = _run(app, "partitions", "--ahead", "5")
    assert code == 0 and output.startswith("Made 0 partition(s); months held: ")


@on_postgresql
def test_a_month_whose_events_sit_in_the_default_partition_is_refused(make_app: MakeApp) -> None:
    app = _partitioned(make_app)
    far = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=200)  # beyond the months made
    with app.app_context():
        audit_of(app).record("user.login", occurred_at=far)
    code, output = _run(app, "partitions", "--ahead", "9")
    assert code == 1
    assert (
        f"Cannot make {_month(far.date(), 0)}: 1 event(s) of that month sit in audit_event_default." in output
    )


@pytest.mark.backends("sqlite", "mariadb")
def test_other_databases_refuse_the_setting(make_app: MakeApp) -> None:
    with pytest.raises(AuditConfigError, match=r"^AUDIT_PG_PARTITIONS is for PostgreSQL; this database is "):
        make_app(AUDIT_PG_PARTITIONS="monthly")


@pytest.mark.backends("sqlite")
def test_a_plain_trail_is_no_partitioned_one(make_app: MakeApp) -> None:
    app = make_app()
    code, output = _run(app, "partitions")
    assert code == 1
    assert "audit_event is not partitioned: set AUDIT_PG_PARTITIONS = 'monthly'" in output


@pytest.mark.backends("sqlite")
def test_an_unknown_mode_is_refused(make_app: MakeApp) -> None:
    with pytest.raises(
        AuditConfigError, match=r"AUDIT_PG_PARTITIONS must be None or 'monthly', not 'weekly'"
    ):
        make_app(AUDIT_PG_PARTITIONS="weekly")


@contextlib.contextmanager
def _partitions_read(engine: sa.Engine) -> c.Iterator[list[set[str]]]:
    """The tables each keyset page statement would read: ``EXPLAIN`` of it, with its parameters."""
    plans: list[set[str]] = []

    def explain(conn: t.Any, cursor: t.Any, statement: str, parameters: t.Any, *args: t.Any) -> None:
        if "ORDER BY audit_event.occurred_at" in statement and not statement.startswith("EXPLAIN"):
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
            found: set[str] = set()
            _relations(cursor.fetchone()[0], found)
            plans.append(found)

    sa.event.listen(engine, "before_cursor_execute", explain)
    try:
        yield plans
    finally:
        sa.event.remove(engine, "before_cursor_execute", explain)


def _relations(node: t.Any, found: set[str]) -> None:
    if isinstance(node, list):
        for each in node:
            _relations(each, found)
    elif isinstance(node, dict):
        if "Relation Name" in node:
            found.add(node["Relation Name"])
        for value in node.values():
            _relations(value, found)
    elif isinstance(node, str) and node.startswith("["):
        _relations(json.loads(node), found)


@on_postgresql
def test_keyset_pages_read_only_the_months_they_need(make_app: MakeApp) -> None:
    """The cursor's time bounds the page on the side it reads, so other months are never scanned."""
    app = _partitioned(make_app, AUDIT_RETENTION_DAYS=400)
    today = dt.datetime.now(dt.timezone.utc).date()
    with app.app_context():
        engine = db(app).engine
        with engine.begin() as conn:
            partitions.ensure(conn, since=_month_start(today, -6).date())
        for shift in range(-6, 0):
            for hour in (1, 2):
                moment = _month_start(today, shift) + dt.timedelta(hours=hour)
                audit_of(app).record("user.login", occurred_at=moment)
    scope: dict[str, t.Any] = {"retention_days": 400, "tenant_scoped": False, "tenant_id": None}
    with engine.connect() as conn, _partitions_read(engine) as plans:
        first = fetch_page(conn, AuditFilter(), limit=3, **scope)  # audit.enabled and month -1
        assert first.older is not None
        older = fetch_page(conn, AuditFilter(cursor=first.older), limit=3, **scope)
        assert older.older is not None
        up = Cursor(older.older.occurred_at, older.older.id, newer=True)
        newer = fetch_page(conn, AuditFilter(cursor=up), limit=2, **scope)
    assert len(plans) == 3
    assert plans[0] >= {_month(today, 0), _month(today, -1)}
    assert _month(first.older.occurred_at.date(), 0) == _month(today, -1)
    assert {_month(today, shift) for shift in range(0, 4)} & plans[1] == set(), plans[1]
    assert plans[1] >= {_month(today, -1), _month(today, -2)}
    assert _month(up.occurred_at.date(), 0) == _month(today, -3)
    assert {_month(today, shift) for shift in range(-6, -3)} & plans[2] == set(), plans[2]
    assert [row.id for row in newer.rows] == [row.id for row in older.rows[:-1]]


@pytest.fixture
def trail_db_url(backend: str) -> c.Iterator[str]:
    """A second, empty database on the same server for the trail (``AUDIT_BIND``)."""
    with contextlib.contextmanager(_server_database)(backend, database_name("parts_trail")) as url:
        yield url


@on_postgresql
def test_a_partitioned_trail_in_a_database_of_its_own(trail_db_url: str, make_app: MakeApp) -> None:
    """``AUDIT_BIND``: months, writes, seals, verify and the monthly prune reach the bound database."""
    app = _partitioned(make_app, SQLALCHEMY_BINDS={"audit": trail_db_url}, AUDIT_BIND="audit")
    engine = sa.create_engine(trail_db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            assert partitions.is_partitioned(conn)
            today = dt.datetime.now(dt.timezone.utc).date()
            partitions.ensure(conn, since=_month_start(today, -6).date())
        with app.app_context():
            audit_of(app).record("user.login", occurred_at=_month_start(today, -6))
            audit_of(app).record("user.login")
        assert _run(app, "seal")[0] == 0
        code, output = _run(app, "prune")
        assert code == 0 and f"dropped month(s) {_month_start(today, -6):%Y-%m}" in output, output
        code, output = _run(app, "verify")
        assert code == 0, output
        with engine.connect() as conn:
            names = [each.name for each in partitions.partitions(conn)]
            assert _month(today, -6) not in names and _month(today, 0) in names
            assert conn.scalar(sa.text("SELECT count(*) FROM audit_event")) == 3  # enabled, login, pruned
    finally:
        engine.dispose()


@on_postgresql
def test_a_month_ahead_that_went_missing_is_made_before_the_first_request(make_app: MakeApp) -> None:
    app = _partitioned(make_app)
    ahead = _month(dt.datetime.now(dt.timezone.utc).date(), 3)
    with app.app_context(), db(app).engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {ahead}")
    app.test_client().get("/")  # any request: the first one catches up
    with app.app_context(), db(app).engine.connect() as conn:
        assert ahead in [each.name for each in partitions.partitions(conn)]
