from __future__ import annotations

import datetime as dt
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit import AuditEvent
from flask_audit import UnknownEventTypeError
from flask_audit.store.models import LENGTHS
from flask_audit.store.sanitize import MASK
from flask_audit.testing import record_events

from ..apps import add_user
from ..apps import Team
from ..conftest import audit_of
from ..conftest import db
from ..conftest import stored


def test_record_fills_entity_action_and_outcome_from_the_taxonomy(app: Flask, app_ctx: None) -> None:
    event = audit_of(app).record(
        "role.updated",
        activity="Changed role of bob@example.com from Member to Admin",
        team="Growth",
        target=("user", 42),
        details={"before": "member", "after": "admin"},
    )
    [row] = stored(app)
    assert row.id == event.id
    assert (row.event_type, row.entity, row.action, row.outcome) == (
        "role.updated",
        "Role",
        "update",
        "success",
    )
    assert row.activity == "Changed role of bob@example.com from Member to Admin"
    assert (row.team, row.target_type, row.target_id) == ("Growth", "user", "42")
    assert row.details == {"before": "member", "after": "admin"}


def test_time_is_utc_with_microseconds(app: Flask, app_ctx: None) -> None:
    when = dt.datetime(2026, 11, 20, 9, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    audit_of(app).record("team.created", occurred_at=when)
    audit_of(app).record("team.deleted")
    first, second = stored(app)
    assert first.occurred_at == dt.datetime(2026, 11, 20, 7, 30, 15, 123456, tzinfo=dt.timezone.utc)
    assert second.occurred_at.tzinfo == dt.timezone.utc
    assert abs(second.occurred_at - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)


def test_failure_types_default_to_failure(app: Flask, app_ctx: None) -> None:
    audit_of(app).record("user.login_failed", actor=None, actor_email="nobody@example.com")
    [row] = stored(app)
    assert (row.entity, row.action, row.outcome) == ("Login", "login", "failure")
    assert (row.actor_id, row.actor_email) == (None, "nobody@example.com")


def test_custom_type_needs_entity_and_action(app: Flask, app_ctx: None) -> None:
    with pytest.raises(
        UnknownEventTypeError, match=r"^Unknown event type 'billing.plan_changed': pass entity="
    ):
        audit_of(app).record("billing.plan_changed")
    audit_of(app).record(
        "billing.plan_changed", entity="Billing", action="update", activity="Upgraded to Pro"
    )
    [row] = stored(app)
    assert (row.entity, row.action, row.activity) == ("Billing", "update", "Upgraded to Pro")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"action": "rename"}, "Unknown action 'rename'"), ({"outcome": "maybe"}, "Unknown outcome 'maybe'")],
)
def test_action_and_outcome_are_checked(
    app: Flask, app_ctx: None, kwargs: dict[str, t.Any], message: str
) -> None:
    with pytest.raises(UnknownEventTypeError, match=message):
        audit_of(app).record("team.updated", **kwargs)
    assert stored(app) == []


def test_secrets_never_reach_a_row(app: Flask, app_ctx: None) -> None:
    audit_of(app).record(
        "user.password_changed",
        details={
            "password": "hunter2",
            "new_password": "hunter3",
            "tf_totp_secret": "JBSWY3DPEHPK3PXP",
            "code": "123456",
            "resetToken": "abc",
            "nested": {"api_key": "k", "recovery_codes": ["a", "b"], "kept": "yes"},
            "method": "password",
        },
    )
    [row] = stored(app)
    assert row.details == {
        "password": MASK,
        "new_password": MASK,
        "tf_totp_secret": MASK,
        "code": MASK,
        "resetToken": MASK,
        "nested": {"api_key": MASK, "recovery_codes": MASK, "kept": "yes"},
        "method": "password",
    }


def test_over_long_and_odd_values_are_cut_not_refused(app: Flask, app_ctx: None) -> None:
    audit_of(app).record(
        "team.updated",
        activity="A" * 5000,
        team="T" * 1000,
        target=("team", "x" * 500),
        details={
            "name": "n" * 10_000,
            "nul": "a\x00b",
            "when": dt.date(2026, 1, 2),
            "many": list(range(500)),
        },
    )
    [row] = stored(app)
    assert len(row.activity) == LENGTHS["activity"] and row.activity.endswith("…")
    assert len(row.team or "") == LENGTHS["team"]
    assert len(row.target_id or "") == LENGTHS["target_id"]
    assert len(row.details["name"]) == 2000
    assert row.details["nul"] == "a\ufffdb"
    assert row.details["when"] == "2026-01-02"
    assert row.details["many"][-1] == "… 300 more"


def test_disabled_audit_writes_nothing(make_app: t.Any) -> None:
    app = make_app(AUDIT_ENABLED=False)
    with app.app_context():
        event = audit_of(app).record("team.created")
    assert event.id is None
    assert stored(app) == []


def test_standalone_event_survives_a_rolled_back_request(app: Flask, app_ctx: None) -> None:
    session = db(app).session
    session.add(Team(name="Growth"))
    session.flush()
    audit_of(app).record("user.logout")
    session.rollback()
    assert [e.event_type for e in stored(app)] == ["user.logout"]
    assert session.scalar(sa.select(sa.func.count()).select_from(Team)) == 0


def test_joined_event_commits_with_the_business_change(app: Flask, app_ctx: None) -> None:
    session = db(app).session
    with record_events(app) as seen:
        session.add(Team(name="Growth"))
        event = audit_of(app).record("team.created", activity="Created team Growth", session=session)
        assert stored(app) == [] and seen == []
        session.commit()
    assert [e.id for e in stored(app)] == [event.id]
    assert seen == [event]


def test_joined_event_rolls_back_with_the_business_change(app: Flask, app_ctx: None) -> None:
    session = db(app).session
    with record_events(app) as seen:
        session.add(Team(name="Growth"))
        audit_of(app).record("team.created", session=session)
        session.flush()
        session.rollback()
    assert stored(app) == []
    assert seen == []


def test_actor_survives_the_users_deletion(app: Flask) -> None:
    user_id = add_user(app, "carol@example.com")
    with app.test_request_context():
        from flask_login import login_user

        from ..apps import User

        user = db(app).session.get_one(User, user_id)
        login_user(user)
        audit_of(app).record("team.created")
        db(app).session.delete(user)
        db(app).session.commit()
    login, row = stored(app)
    assert login.event_type == "user.login"
    assert (row.actor_id, row.actor_email) == (str(user_id), "carol@example.com")


def test_record_returns_a_stored_event(app: Flask, app_ctx: None) -> None:
    event = audit_of(app).record("invite.sent", details={"email": "dave@example.com"})
    assert isinstance(event, AuditEvent)
    assert db(app).session.get_one(AuditEvent, event.id).details == {"email": "dave@example.com"}


def test_event_of_a_request_that_wrote_and_never_committed_is_kept(app: Flask) -> None:
    """On SQLite the request's own session holds the write lock; the event waits for it, not forever."""

    def handler() -> str:
        db(app).session.add(Team(name="Never committed"))
        db(app).session.flush()
        event = audit_of(app).record("team.created")
        return str(event.id)

    app.add_url_rule("/write-then-record", view_func=handler, methods=["POST"])
    with record_events(app) as seen:
        response = app.test_client().post("/write-then-record")
    assert response.status_code == 200
    assert [e.event_type for e in stored(app)] == ["team.created"]
    assert [e.event_type for e in seen] == ["team.created"]
    with app.app_context():
        assert db(app).session.scalar(sa.select(sa.func.count()).select_from(Team)) == 0


def test_joined_event_of_a_closed_session_is_discarded(app: Flask, app_ctx: None) -> None:
    """Closing ends the transaction without a commit: its events must not ride on a later one."""
    session = db(app).session
    session.add(Team(name="Growth"))
    session.flush()
    audit_of(app).record("team.created", session=session)
    session.close()
    session.add(Team(name="Later"))
    session.commit()
    assert stored(app) == []
