"""``AUDIT_BIND``: the trail in a database of its own, named in ``SQLALCHEMY_BINDS``.

``db.create_all()`` creates the audit tables there; standalone events, tracked changes
and the page all use it; the app's own database holds none of it.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import pathlib

import pytest
import sqlalchemy as sa

from flask_audit import AuditConfigError
from flask_audit import AuditEvent

from ..apps import add_user
from ..apps import create_app
from ..apps import Team
from ..conftest import _server_database
from ..conftest import audit_of
from ..conftest import database_name
from ..conftest import db
from ..conftest import MakeApp
from ..conftest import signed_in_client
from ..conftest import writer_of


@pytest.fixture
def audit_db_url(backend: str, tmp_path: pathlib.Path) -> c.Iterator[str]:
    """A second, empty database on the same backend for the trail."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'trail.db'}"
        return
    with contextlib.contextmanager(_server_database)(backend, database_name("trail")) as url:
        yield url


def _table_names(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _event_types(url: str) -> list[str]:
    """The events stored in the database at ``url``; none where it has no audit table."""
    if "audit_event" not in _table_names(url):
        return []
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(sa.select(AuditEvent.event_type).order_by(AuditEvent.id)))
    finally:
        engine.dispose()


def test_the_trail_lives_in_the_bound_database(audit_db_url: str, make_app: MakeApp, db_url: str) -> None:
    app = make_app(SQLALCHEMY_BINDS={"audit": audit_db_url}, AUDIT_BIND="audit", TEST_TRACK_MODELS=True)
    assert {"audit_event", "audit_seal"} <= _table_names(audit_db_url)
    admin = add_user(app, "admin@example.com", is_admin=True)
    with app.test_request_context():
        audit_of(app).record("team.created", activity="Created a team by hand")
        db(app).session.add(Team(name="Growth"))  # tracked: its event joins the session's commit
        db(app).session.commit()
    assert _event_types(audit_db_url) == ["audit.enabled", "user.created", "team.created", "team.created"]
    # The test apps share one declarative base, so the app's database may have the table
    # (from other tests' apps, with its "tracking since" row), but never an event of this app.
    assert [kind for kind in _event_types(db_url) if kind != "audit.enabled"] == []
    response = signed_in_client(app, admin).get("/admin/audit/api/events")
    assert response.status_code == 200
    assert {e["event_type"] for e in response.get_json()["events"]} >= {"team.created", "user.created"}


def test_an_unknown_bind_is_refused_at_start_up(db_url: str) -> None:
    with pytest.raises(AuditConfigError, match="AUDIT_BIND = 'audit' is not a key of SQLALCHEMY_BINDS"):
        create_app(SQLALCHEMY_DATABASE_URI=db_url, AUDIT_BIND="audit")


def test_writer_options_that_make_no_engine_are_a_clear_error(make_app: MakeApp) -> None:
    app = make_app(AUDIT_ENGINE_OPTIONS={"no_such_option": 1})
    with app.app_context(), pytest.raises(AuditConfigError, match="AUDIT_ENGINE_OPTIONS"):
        audit_of(app).record("team.created")


def test_engine_options_must_be_a_mapping(db_url: str) -> None:
    with pytest.raises(AuditConfigError, match="AUDIT_ENGINE_OPTIONS must be a dict"):
        create_app(SQLALCHEMY_DATABASE_URI=db_url, AUDIT_ENGINE_OPTIONS="pool_size=1")


def test_the_writer_runs_the_apps_own_connect_listeners(make_app: MakeApp) -> None:
    """Pragmas set in a ``connect`` listener (WAL, ``busy_timeout``) hold for the writer too."""
    app = make_app()
    seen: list[object] = []
    with app.app_context():
        sa.event.listen(db(app).engine, "connect", lambda dbapi, record: seen.append(dbapi))
        writer = writer_of(app).writer_engine
        assert writer is not db(app).engine
        with writer.connect():
            pass
    assert len(seen) == 1
