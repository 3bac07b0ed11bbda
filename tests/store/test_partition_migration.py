"""The shipped revision that converts a plain ``audit_event`` into monthly partitions.

It runs for real through ``alembic.command`` on a trail made by a plain app (events in
several months, sealed), inside an app that asks for ``AUDIT_PG_PARTITIONS = "monthly"``;
elsewhere it changes nothing.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import pathlib

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from flask import Flask

from flask_audit.store import partitions

from ..conftest import audit_of
from ..conftest import db
from ..conftest import MakeApp
from ..migration_fixtures import alembic_config
from ..sealing_fixtures import KEY

REVISION = "fa0009_partition_audit_event"
PREVIOUS = "fa0008_create_audit_day_total"


@pytest.fixture
def alembic_cfg(db_url: str, tmp_path: pathlib.Path) -> c.Iterator[Config]:
    cfg = alembic_config(db_url, tmp_path)
    yield cfg
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()


def _months_ago(months: int) -> dt.datetime:
    now = dt.datetime.now(dt.timezone.utc)
    index = now.year * 12 + now.month - 1 - months
    return dt.datetime(index // 12, index % 12 + 1, 10, 12, tzinfo=dt.timezone.utc)


def _run(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["audit", *args])
    return result.exit_code, result.output


def _rows(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text("SELECT * FROM audit_event ORDER BY id"))]


@pytest.mark.backends("postgresql")
def test_a_plain_trail_becomes_monthly_partitions_and_still_verifies(
    make_app: MakeApp, alembic_cfg: Config
) -> None:
    plain = make_app(AUDIT_SEAL_KEY=KEY, AUDIT_RETENTION_DAYS=400)
    with plain.app_context():
        audit = audit_of(plain)
        for months in (7, 3, 1, 0):
            audit.record("team.created", occurred_at=_months_ago(months), details={"months": months})
        engine = db(plain).engine
    assert _run(plain, "seal")[0] == 0
    before = _rows(engine)
    app = make_app(AUDIT_SEAL_KEY=KEY, AUDIT_RETENTION_DAYS=400, AUDIT_PG_PARTITIONS="monthly")
    command.stamp(alembic_cfg, PREVIOUS)
    with app.app_context():
        command.upgrade(alembic_cfg, REVISION)
    with engine.connect() as conn:
        assert partitions.is_partitioned(conn)
        names = [each.name for each in partitions.partitions(conn)]
        oldest = _months_ago(7)
        assert names[0] == f"audit_event_p{oldest:%Y_%m}" and names[-1] == "audit_event_default"
        assert conn.scalar(sa.text("SELECT to_regclass('audit_event_plain')")) is None
        index_names = set(
            conn.scalars(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'audit_event'"))
        )
        keys = conn.scalars(
            sa.text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = 'audit_event'::regclass AND contype IN ('p', 'u') ORDER BY contype"
            )
        )
        assert list(keys) == ["PRIMARY KEY (id, occurred_at)", "UNIQUE (uid, occurred_at)"]
    assert {"ix_audit_event_time", "ix_audit_event_tenant_time", "audit_event_pkey"} <= index_names
    assert _rows(engine) == before  # the same rows, ids and all
    code, output = _run(app, "verify")
    assert code == 0 and output.startswith(f"Verified {len(before)} sealed event(s)"), output
    with app.app_context():
        following = audit_of(app).record("team.created").id
    assert following == max(int(str(row[0])) for row in before) + 1  # the same sequence goes on
    for statement in ("UPDATE audit_event SET activity = 'x'", f"UPDATE {names[0]} SET activity = 'x'"):
        with pytest.raises(sa.exc.DBAPIError, match="UPDATE refused"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    with pytest.raises(sa.exc.DBAPIError, match="TRUNCATE refused"), engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {names[0]}")
    assert _run(app, "seal")[0] == 0
    assert _run(app, "verify")[0] == 0


@pytest.mark.backends("sqlite", "postgresql")
def test_without_the_setting_the_revision_changes_nothing(make_app: MakeApp, alembic_cfg: Config) -> None:
    app = make_app()
    with app.app_context():
        audit_of(app).record("team.created")
        engine = db(app).engine
    before = _rows(engine)
    command.stamp(alembic_cfg, PREVIOUS)
    with app.app_context():
        command.upgrade(alembic_cfg, REVISION)
    with engine.connect() as conn:
        assert not partitions.is_partitioned(conn)
    assert _rows(engine) == before
