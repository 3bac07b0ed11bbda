"""Every failure of a write follows ``AUDIT_ON_WRITE_ERROR``: raise (and a sign-in does not
stand) or spool. A pool with no connection to give and an app loader that raises count
as failures, not as errors that slip past the policy."""

from __future__ import annotations

import collections.abc as c
import contextlib
import pathlib
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_audit import AuditWriteError
from flask_audit import signals
from flask_audit.store import spool

from ..apps import add_user
from ..apps import Team
from ..conftest import audit_of
from ..conftest import MakeApp
from ..conftest import stored
from ..conftest import writer_of

#: A writer pool of one connection that gives up at once when it is taken.
ONE_CONNECTION = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.1}


def _broken_tenant() -> str:
    raise LookupError("no tenant for this host")


@contextlib.contextmanager
def _writer_busy(app: Flask) -> c.Iterator[None]:
    """Hold the writer pool's only connection, as a stuck request would."""
    with app.app_context(), writer_of(app).writer_engine.connect():
        yield


def _failures(app: Flask) -> list[dict[str, t.Any]]:
    seen: list[dict[str, t.Any]] = []

    def receive(sender: Flask, **kwargs: t.Any) -> None:
        seen.append(kwargs)

    signals.write_failed.connect(receive, sender=app, weak=False)
    return seen


def _signed_in(client: FlaskClient) -> bool:
    with client.session_transaction() as session:
        return "_user_id" in session


def _sign_in(app: Flask) -> tuple[FlaskClient, int]:
    client = app.test_client()
    response = client.post("/login", data={"email": "alice@example.com", "password": "pw"})
    return client, response.status_code


def test_no_free_connection_under_raise_is_an_audit_write_error(make_app: MakeApp) -> None:
    app = make_app(AUDIT_ENGINE_OPTIONS=ONE_CONNECTION)
    failures = _failures(app)
    with _writer_busy(app), pytest.raises(AuditWriteError, match="could not be stored"):
        audit_of(app).record("team.created")
    assert [(f["event"].event_type, f["spooled"]) for f in failures] == [("team.created", False)]
    assert "QueuePool limit" in failures[0]["reason"]
    assert stored(app) == []


def test_no_free_connection_under_spool_is_spooled(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    app = make_app(AUDIT_ENGINE_OPTIONS=ONE_CONNECTION, AUDIT_ON_WRITE_ERROR="spool")
    with _writer_busy(app):
        event = audit_of(app).record("team.created")
    assert event.id is None
    assert spool.pending(str(tmp_path / "spool.jsonl")) == 1
    result = app.test_cli_runner().invoke(args=["audit", "replay"])
    assert result.exit_code == 0, result.output
    assert [e.uid for e in stored(app)] == [event.uid]


def test_a_sign_in_without_a_free_connection_does_not_stand(make_app: MakeApp) -> None:
    app = make_app(AUDIT_ENGINE_OPTIONS=ONE_CONNECTION, PROPAGATE_EXCEPTIONS=False)
    add_user(app, "alice@example.com")
    with _writer_busy(app):
        client, status = _sign_in(app)
    assert status == 500
    assert not _signed_in(client)
    assert stored(app) == []


def test_under_spool_the_sign_in_stands_with_its_spooled_event(
    make_app: MakeApp, tmp_path: pathlib.Path
) -> None:
    app = make_app(AUDIT_ENGINE_OPTIONS=ONE_CONNECTION, AUDIT_ON_WRITE_ERROR="spool")
    add_user(app, "alice@example.com")
    with _writer_busy(app):
        client, status = _sign_in(app)
    assert (status, _signed_in(client)) == (200, True)
    assert spool.pending(str(tmp_path / "spool.jsonl")) == 1


def test_a_tenant_loader_that_raises_fails_the_sign_in_under_raise(make_app: MakeApp) -> None:
    app = make_app(AUDIT_TENANT_LOADER=_broken_tenant, PROPAGATE_EXCEPTIONS=False)
    add_user(app, "alice@example.com")
    failures = _failures(app)
    client, status = _sign_in(app)
    assert (status, _signed_in(client)) == (500, False)
    assert [f["reason"] for f in failures] == [
        "AUDIT_TENANT_LOADER raised LookupError: no tenant for this host"
    ]
    assert stored(app) == []


def test_a_tenant_loader_that_raises_spools_the_event_under_spool(
    make_app: MakeApp, tmp_path: pathlib.Path
) -> None:
    """Never stored under a guessed tenant: spooled, for a person to replay once it is fixed."""
    app = make_app(AUDIT_TENANT_LOADER=_broken_tenant, AUDIT_ON_WRITE_ERROR="spool")
    add_user(app, "alice@example.com")
    client, status = _sign_in(app)
    assert (status, _signed_in(client)) == (200, True)
    assert stored(app) == []
    [line] = pathlib.Path(tmp_path / "spool.jsonl").read_text().splitlines()
    assert '"event_type":"user.login"' in line and '"tenant_id":null' in line


def test_a_tracked_change_whose_context_fails_is_refused_with_it(make_app: MakeApp) -> None:
    """No change commits without its event, whatever the policy for standalone events."""
    app = make_app(TEST_TRACK_MODELS=True, AUDIT_TEAM_LOADER="tests.store.test_write_failures:_broken_tenant")
    database = app.extensions["sqlalchemy"]
    with app.test_request_context():
        database.session.add(Team(name="Growth"))
        with pytest.raises(AuditWriteError, match="AUDIT_TEAM_LOADER raised LookupError"):
            database.session.commit()
        database.session.rollback()
        assert database.session.scalar(sa.select(sa.func.count()).select_from(Team)) == 0
    assert stored(app) == []


def test_standalone_events_never_take_a_connection_from_the_app_pool(make_app: MakeApp) -> None:
    """The request holds the app pool's only connection; the event is written all the same."""
    app = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.1})
    database = app.extensions["sqlalchemy"]
    with app.test_request_context():
        database.session.execute(sa.text("SELECT 1"))  # the session now holds the connection
        event = audit_of(app).record("team.created")
        assert writer_of(app).writer_engine is not database.engine
    assert [e.uid for e in stored(app)] == [event.uid]


def test_a_missing_table_spools_the_sign_in_instead_of_failing_it(
    make_app: MakeApp, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A set-up mistake (the tables were never created) is named in the log, and the events
    wait in the spool: the sign-in stands, even under ``raise``."""
    app = make_app(PROPAGATE_EXCEPTIONS=False)
    add_user(app, "alice@example.com")
    with app.app_context(), app.extensions["sqlalchemy"].engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE audit_event")
    client, status = _sign_in(app)
    assert (status, _signed_in(client)) == (200, True)
    assert "the audit tables are missing: run db.create_all()" in caplog.text
    assert spool.pending(str(tmp_path / "spool.jsonl")) == 1
    with app.app_context():
        app.extensions["sqlalchemy"].create_all()
    result = app.test_cli_runner().invoke(args=["audit", "replay"])
    assert result.exit_code == 0, result.output
    assert [e.event_type for e in stored(app)] == ["user.login"]
