"""The shipped Alembic revision builds exactly what ``db.create_all()`` builds.

The revision runs for real, through ``alembic.command`` and a minimal ``env.py``, on the
module's database; create_all runs there too, one after the other, never at once.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import os
import pathlib
import typing as t

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from flask import Flask

from flask_audit.migrations import VERSIONS_DIR
from flask_audit.store.immutability import installed_triggers
from flask_audit.store.models import audit_event_table
from flask_audit.store.models import AuditBase
from flask_audit.store.models import TABLE_NAME
from flask_audit.store.rows import enabled_row

from ..conftest import db
from ..conftest import MakeApp
from ..migration_fixtures import alembic_config

REVISION = "fa0009_partition_audit_event"
COMPARE = {"compare_type": True, "compare_server_default": True}
PG_FUNCTIONS = sa.text("SELECT proname FROM pg_proc WHERE proname LIKE 'audit_%_refuse_%'")


@pytest.fixture
def engine(db_url: str) -> c.Iterator[sa.Engine]:
    """The module database; everything the migrations made is dropped afterwards."""
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    yield engine
    with engine.begin() as conn:
        for table in reversed(AuditBase.metadata.sorted_tables):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        for (name,) in conn.execute(PG_FUNCTIONS) if conn.dialect.name == "postgresql" else []:
            conn.exec_driver_sql(f"DROP FUNCTION {name}()")
    assert sa.inspect(engine).get_table_names() == []
    engine.dispose()


@pytest.fixture
def alembic_cfg(db_url: str, tmp_path: pathlib.Path, engine: sa.Engine) -> Config:
    """What a user's setup amounts to: their script directory plus :data:`VERSIONS_DIR`."""
    cfg = alembic_config(db_url, tmp_path)
    return cfg


def _schema(conn: sa.Connection) -> dict[str, t.Any]:
    """Everything the database reports about flask_audit's tables, in a comparable form."""
    inspector = sa.inspect(conn)
    schema: dict[str, t.Any] = {"triggers": installed_triggers(conn), "all_triggers": _all_triggers(conn)}
    for name in sorted(AuditBase.metadata.tables):
        columns = inspector.get_columns(name)
        schema[name] = {
            "columns": [
                {**column, "type": column["type"].compile(dialect=conn.dialect)} for column in columns
            ],
            "primary_key": inspector.get_pk_constraint(name),
            "unique": sorted(inspector.get_unique_constraints(name), key=lambda item: str(item["name"])),
            "indexes": sorted(
                map(_comparable, inspector.get_indexes(name)), key=lambda index: str(index["name"])
            ),
            "checks": inspector.get_check_constraints(name),
        }
    return schema


def _comparable(index: t.Any) -> dict[str, t.Any]:
    """An index as reflected, its partial ``WHERE`` (a clause object) as text."""
    options = {key: str(value) for key, value in index.get("dialect_options", {}).items()}
    return {**index, "dialect_options": options}


def _all_triggers(conn: sa.Connection) -> set[str]:
    """Every trigger on flask_audit's tables (events and seals)."""
    if conn.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    elif conn.dialect.name == "postgresql":
        sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    else:
        sql = "SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = DATABASE()"
    return {row[0] for row in conn.exec_driver_sql(sql)}


def _enabled_rows(conn: sa.Connection) -> list[dict[str, t.Any]]:
    query = sa.select(audit_event_table).where(audit_event_table.c.event_type == "audit.enabled")
    return [dict(row._mapping) for row in conn.execute(query)]


def test_upgrade_builds_what_create_all_builds(
    make_app: MakeApp, alembic_cfg: Config, engine: sa.Engine
) -> None:
    app = make_app()
    with engine.connect() as conn:
        expected = _schema(conn)
    with app.app_context():
        db(app).drop_all()
    assert expected["triggers"] >= {"audit_event_no_update", "audit_event_no_delete"}
    assert {"audit_seal_no_update", "audit_seal_no_delete"} <= expected["all_triggers"]

    command.upgrade(alembic_cfg, "flask_audit@head")

    with engine.connect() as conn:
        assert _schema(conn) == expected
        context = MigrationContext.configure(conn, opts=COMPARE)
        assert compare_metadata(context, AuditBase.metadata) == []
        assert context.get_current_heads() == (REVISION,)
        [enabled] = _enabled_rows(conn)
        assert enabled["details"] == {"retention_days": 90}
        assert enabled["occurred_at"].tzinfo is dt.timezone.utc
    with pytest.raises(sa.exc.DBAPIError, match="insert-only: UPDATE refused"):
        with engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE {TABLE_NAME} SET activity = 'changed'")


def test_downgrade_removes_everything_and_upgrade_works_again(alembic_cfg: Config, engine: sa.Engine) -> None:
    command.upgrade(alembic_cfg, "flask_audit@head")
    command.downgrade(alembic_cfg, "flask_audit@base")
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == ["alembic_version"]
        assert _all_triggers(conn) == set()
        if conn.dialect.name == "postgresql":
            assert conn.execute(PG_FUNCTIONS).all() == []
        assert MigrationContext.configure(conn).get_current_heads() == ()

    command.upgrade(alembic_cfg, "flask_audit@head")
    with engine.connect() as conn:
        assert len(installed_triggers(conn)) >= 2
        assert len(_enabled_rows(conn)) == 1


def test_retention_window_comes_from_the_running_app(alembic_cfg: Config, engine: sa.Engine) -> None:
    with Flask(__name__).app_context() as ctx:
        ctx.app.config["AUDIT_RETENTION_DAYS"] = 30
        command.upgrade(alembic_cfg, "flask_audit@head")
    now = dt.datetime.now(dt.timezone.utc)
    with engine.begin() as conn:
        assert [row["details"] for row in _enabled_rows(conn)] == [{"retention_days": 30}]
        for days in (29, 31):
            conn.execute(
                sa.insert(audit_event_table), {**enabled_row(30), "occurred_at": now - dt.timedelta(days)}
            )
    with engine.begin() as conn:
        old = audit_event_table.c.occurred_at < now - dt.timedelta(days=30)
        assert conn.execute(sa.delete(audit_event_table).where(old)).rowcount == 1
    with pytest.raises(sa.exc.DBAPIError, match="DELETE refused inside the retention window"):
        with engine.begin() as conn:
            conn.execute(sa.delete(audit_event_table))


def test_the_documented_merge_leaves_one_head(
    alembic_cfg: Config, engine: sa.Engine, tmp_path: pathlib.Path
) -> None:
    """An app's own revisions, then flask_audit's branch merged in as the docs say: plain
    ``upgrade head`` works afterwards, and the audit tables are there."""
    from alembic import __file__ as alembic_init
    from alembic.script import ScriptDirectory

    own = tmp_path / "alembic" / "versions"
    own.mkdir()
    template = pathlib.Path(alembic_init).parent / "templates" / "generic" / "script.py.mako"
    (tmp_path / "alembic" / "script.py.mako").write_text(template.read_text())
    alembic_cfg.set_main_option("version_locations", f"{own}{os.pathsep}{VERSIONS_DIR}")
    command.revision(alembic_cfg, "the app's first", rev_id="app0001", head="base", version_path=str(own))
    command.upgrade(alembic_cfg, "flask_audit@head")
    command.merge(alembic_cfg, ["app0001", "flask_audit@head"], message="merge flask_audit", rev_id="app0002")
    assert (own / "app0002_merge_flask_audit.py").exists()  # next to the app's head, not in the package
    assert ScriptDirectory.from_config(alembic_cfg).get_heads() == ["app0002"]
    command.upgrade(alembic_cfg, "head")
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == ("app0002",)
        assert TABLE_NAME in sa.inspect(conn).get_table_names()
