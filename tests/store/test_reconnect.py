"""A standalone event survives a database connection that died while it sat in the pool.

The server really ends the connection (``pg_terminate_backend`` / ``KILL``), as a restart of
the database does to every idle pooled connection; no mock stands in for the failure.
"""

from __future__ import annotations

import pathlib

import pytest
import sqlalchemy as sa

from flask_audit.store import recorder
from flask_audit.store.rows import build_row
from flask_audit.testing import record_events

from ..conftest import audit_of
from ..conftest import db
from ..conftest import end_pooled_connection
from ..conftest import MakeApp
from ..conftest import stored
from ..conftest import writer_of

pytestmark = pytest.mark.backends("postgresql", "mariadb")


def test_record_reconnects_after_the_pooled_connection_died(
    make_app: MakeApp, tmp_path: pathlib.Path
) -> None:
    app = make_app()
    with app.app_context():
        end_pooled_connection(writer_of(app).writer_engine)
        with record_events(app) as seen:
            event = audit_of(app).record("user.login", details={"method": "password"})
    assert event.id is not None
    assert [(e.uid, e.id) for e in stored(app)] == [(event.uid, event.id)]
    assert [e.uid for e in seen] == [event.uid]
    assert not (tmp_path / "spool.jsonl").exists()


def test_retry_finds_an_event_whose_first_attempt_did_commit(make_app: MakeApp) -> None:
    """The connection died after COMMIT but before its answer: the retry must not add a copy."""
    app = make_app()
    with app.app_context(), app.test_request_context():
        row = build_row(audit_of(app).config, "team.created")
        engine = db(app).engine
        first = recorder._insert_reconnecting(engine, dict(row))
        end_pooled_connection(db(app).engine)
        again = recorder._insert_reconnecting(engine, dict(row))
    assert again == first
    assert [e.id for e in stored(app)] == [first]


def test_other_database_errors_are_not_retried(make_app: MakeApp) -> None:
    """Only a dead connection is retried: on a live one a refused row fails at once (a retry
    would have found the stored uid and answered its id instead)."""
    app = make_app()
    with app.app_context(), app.test_request_context():
        row = build_row(audit_of(app).config, "team.created")
        engine = db(app).engine
        recorder._insert_reconnecting(engine, dict(row))
        with pytest.raises(sa.exc.IntegrityError) as caught:
            recorder._insert_reconnecting(engine, dict(row))
    assert not caught.value.connection_invalidated
    assert len(stored(app)) == 1
