from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit import AuditEvent
from flask_audit import ImmutableAuditEventError
from flask_audit.store.immutability import installed_triggers
from flask_audit.store.models import audit_event_table

from ..conftest import audit_of
from ..conftest import db
from ..conftest import MakeApp
from ..conftest import stored


def _old_and_new(app: Flask) -> tuple[int, int]:
    """One event 91 days old (outside the default window) and one from now."""
    with app.app_context():
        old = audit_of(app).record(
            "team.created", occurred_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=91)
        )
        new = audit_of(app).record("team.created")
    return old.id, new.id


def test_create_all_installs_triggers(app: Flask, backend: str) -> None:
    expected = {"audit_event_no_update", "audit_event_no_delete"}
    if backend == "postgresql":
        expected.add("audit_event_no_truncate")
    with app.app_context(), db(app).engine.connect() as conn:
        assert installed_triggers(conn) == expected


def test_raw_update_is_refused(app: Flask) -> None:
    _, new_id = _old_and_new(app)
    with app.app_context():
        with pytest.raises(sa.exc.DBAPIError, match="insert-only: UPDATE refused"):
            with db(app).engine.begin() as conn:
                conn.execute(
                    sa.update(audit_event_table).where(audit_event_table.c.id == new_id).values(activity="x")
                )
    assert [e.activity for e in stored(app)] == ["Created a team", "Created a team"]


def test_raw_update_of_old_rows_is_refused_too(app: Flask) -> None:
    old_id, _ = _old_and_new(app)
    with app.app_context():
        with pytest.raises(sa.exc.DBAPIError, match="UPDATE refused"):
            with db(app).engine.begin() as conn:
                conn.execute(
                    sa.text("UPDATE audit_event SET actor_email = 'x' WHERE id = :id"), {"id": old_id}
                )


def test_raw_delete_inside_window_is_refused(app: Flask) -> None:
    _, new_id = _old_and_new(app)
    with app.app_context():
        with pytest.raises(sa.exc.DBAPIError, match="DELETE refused inside the retention window"):
            with db(app).engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM audit_event WHERE id = :id"), {"id": new_id})
    assert len(stored(app)) == 2


def test_raw_delete_outside_window_succeeds(app: Flask) -> None:
    old_id, new_id = _old_and_new(app)
    with app.app_context(), db(app).engine.begin() as conn:
        deleted = conn.execute(sa.text("DELETE FROM audit_event WHERE id = :id"), {"id": old_id})
        assert deleted.rowcount == 1
    assert [e.id for e in stored(app)] == [new_id]


@pytest.mark.audit_config(AUDIT_RETENTION_DAYS=30)
def test_window_follows_retention_setting(app: Flask) -> None:
    with app.app_context():
        event = audit_of(app).record(
            "team.created", occurred_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=31)
        )
        with db(app).engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM audit_event WHERE id = :id"), {"id": event.id})
    assert stored(app) == []


def test_triggers_command_applies_a_changed_window(make_app: MakeApp) -> None:
    app = make_app()
    old_id, _ = _old_and_new(app)
    app.config["AUDIT_RETENTION_DAYS"] = 120
    # The setting is read once at start-up: a restarted app carries the new value.
    restarted = make_app(AUDIT_RETENTION_DAYS=120)
    result = restarted.test_cli_runner().invoke(args=["audit", "triggers"])
    assert result.exit_code == 0, result.output
    assert "120-day window" in result.output
    with app.app_context():
        with pytest.raises(sa.exc.DBAPIError, match="DELETE refused"):
            with db(app).engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM audit_event WHERE id = :id"), {"id": old_id})


@pytest.mark.backends("postgresql")
def test_truncate_is_refused_on_postgresql(app: Flask) -> None:
    _old_and_new(app)
    with app.app_context():
        with pytest.raises(sa.exc.DBAPIError, match="TRUNCATE refused"):
            with db(app).engine.begin() as conn:
                conn.exec_driver_sql("TRUNCATE audit_event")
    assert len(stored(app)) == 2


def test_orm_update_is_refused(app: Flask, app_ctx: None) -> None:
    event_id = audit_of(app).record("team.created").id
    session = db(app).session
    event = session.get_one(AuditEvent, event_id)
    event.activity = "rewritten"
    with pytest.raises(ImmutableAuditEventError, match=rf"^AuditEvent {event_id} cannot be updated"):
        session.commit()
    session.rollback()


def test_orm_delete_is_refused(app: Flask, app_ctx: None) -> None:
    event_id = audit_of(app).record("team.created").id
    session = db(app).session
    session.delete(session.get_one(AuditEvent, event_id))
    with pytest.raises(ImmutableAuditEventError, match=rf"^AuditEvent {event_id} cannot be deleted"):
        session.flush()
    session.rollback()


def test_returned_event_cannot_be_changed_through_a_session(app: Flask, app_ctx: None) -> None:
    event = audit_of(app).record("team.created")
    session = db(app).session
    session.add(event)
    event.team = "Other"
    with pytest.raises(ImmutableAuditEventError, match="cannot be updated"):
        session.commit()
    session.rollback()


@pytest.mark.parametrize("verb", ["update", "delete"])
def test_orm_bulk_statements_are_refused(app: Flask, app_ctx: None, verb: str) -> None:
    audit_of(app).record("team.created")
    stmt = sa.update(AuditEvent).values(team="x") if verb == "update" else sa.delete(AuditEvent)
    with pytest.raises(ImmutableAuditEventError, match=f"cannot be {verb}d in bulk"):
        db(app).session.execute(stmt)
    db(app).session.rollback()
