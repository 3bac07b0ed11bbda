"""Each of flask_audit's signals, sent as an app would, yields its event."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from blinker import NamedSignal
from flask import Flask
from flask_login import login_user

from flask_audit import AuditEvent
from flask_audit import signals
from flask_audit.testing import record_events

from ..apps import add_user
from ..apps import Team
from ..apps import User
from ..conftest import db
from ..conftest import stored


def _as_admin(app: Flask, send: t.Callable[[User, User], object]) -> list[AuditEvent]:
    """Send inside a request where admin@example.com is signed in; bob is the subject.

    Returns the stored events the signals made (the sign-in's own event left out).
    """
    add_user(app, "admin@example.com", is_admin=True)
    add_user(app, "bob@example.com")
    with app.test_request_context(environ_base={"REMOTE_ADDR": "198.51.100.4"}):
        session = db(app).session
        admin = session.scalars(sa.select(User).where(User.email == "admin@example.com")).one()
        bob = session.scalars(sa.select(User).where(User.email == "bob@example.com")).one()
        login_user(admin)
        send(admin, bob)
    return [event for event in stored(app) if event.event_type != "user.login"]


CASES: list[tuple[NamedSignal, dict[str, t.Any], str, str, dict[str, t.Any]]] = [
    (
        signals.role_updated,
        {"old": "member", "new": "admin"},
        "role.updated",
        "Changed role of bob@example.com from Member to Admin",
        {"before": "member", "after": "admin"},
    ),
    (
        signals.two_factor_enabled,
        {"method": "authenticator_app"},
        "two_factor.enabled",
        "Enabled two-factor authentication (authenticator app) for bob@example.com",
        {"method": "authenticator_app", "user": "bob@example.com"},
    ),
    (
        signals.two_factor_disabled,
        {},
        "two_factor.disabled",
        "Disabled two-factor authentication for bob@example.com",
        {"user": "bob@example.com"},
    ),
    (
        signals.two_factor_reset,
        {},
        "two_factor.reset",
        "Reset two-factor authentication of bob@example.com",
        {"user": "bob@example.com"},
    ),
    (signals.user_created, {}, "user.created", "Created user bob@example.com", {"email": "bob@example.com"}),
    (signals.user_deleted, {}, "user.deleted", "Deleted user bob@example.com", {"email": "bob@example.com"}),
    (
        signals.password_changed,
        {"by_admin": True},
        "user.password_changed",
        "Reset the password of bob@example.com",
        {"by_admin": True},
    ),
    (
        signals.team_member_added,
        {"team": "Growth"},
        "team.member_added",
        "Added bob@example.com to team Growth",
        {"team": "Growth", "member": "bob@example.com"},
    ),
    (
        signals.team_member_removed,
        {"team": "Growth"},
        "team.member_removed",
        "Removed bob@example.com from team Growth",
        {"team": "Growth", "member": "bob@example.com"},
    ),
]


@pytest.mark.parametrize(
    ("signal", "kwargs", "event_type", "activity", "details"), CASES, ids=[case[2] for case in CASES]
)
def test_user_signals(
    app: Flask,
    signal: NamedSignal,
    kwargs: dict[str, t.Any],
    event_type: str,
    activity: str,
    details: dict[str, t.Any],
) -> None:
    [event] = _as_admin(app, lambda admin, bob: signal.send(app, user=bob, **kwargs))
    assert (event.event_type, event.activity, event.details) == (event_type, activity, details)
    assert (event.actor_email, event.ip) == ("admin@example.com", "198.51.100.4")
    assert event.target_type in ("user", "team")


def test_team_signals(app: Flask) -> None:
    def send(admin: User, bob: User) -> None:
        signals.team_created.send(app, team="Growth")
        signals.team_updated.send(app, team="Expansion", old_name="Growth")
        signals.team_deleted.send(app, team=Team(name="Expansion"))

    created, renamed, deleted = _as_admin(app, send)
    assert created.activity == "Created team Growth"
    assert (renamed.activity, renamed.details) == (
        "Renamed team Growth to Expansion",
        {"team": "Expansion", "changes": {"name": ["Growth", "Expansion"]}},
    )
    assert (deleted.event_type, deleted.activity, deleted.target_id) == (
        "team.deleted",
        "Deleted team Expansion",
        "Expansion",
    )


def test_invitation_signals(app: Flask) -> None:
    def send(admin: User, bob: User) -> None:
        signals.invite_sent.send(app, email="dave@example.com", role="admin", team="Growth")
        signals.invite_revoked.send(app, email="dave@example.com")
        signals.invite_accepted.send(app, user=bob)

    sent, revoked, accepted = _as_admin(app, send)
    assert (sent.activity, sent.details) == (
        "Invited dave@example.com as Admin",
        {"email": "dave@example.com", "role": "admin", "team": "Growth"},
    )
    assert (sent.entity, sent.action) == ("Invitation", "create")
    assert (revoked.action, revoked.activity) == ("delete", "Revoked the invitation of dave@example.com")
    assert (accepted.action, accepted.actor_email) == ("update", "bob@example.com")


def test_sso_signals(app: Flask) -> None:
    before = {"entity_id": "https://idp.example.com", "fingerprints": ["AA:01"], "enforced": False}
    after = {**before, "fingerprints": ["BB:02"], "enforced": True}

    def send(admin: User, bob: User) -> None:
        signals.sso_configured.send(app, settings=before)
        signals.sso_updated.send(app, old=before, new=after)
        signals.sso_disabled.send(app, settings=after)

    configured, updated, disabled = _as_admin(app, send)
    assert (configured.event_type, configured.activity) == (
        "sso.configured",
        "Configured SSO with https://idp.example.com",
    )
    assert updated.details == {"changes": {"enforced": [False, True], "fingerprints": [["AA:01"], ["BB:02"]]}}
    assert (disabled.action, disabled.entity) == ("delete", "SSO")


def test_extra_details_are_merged_and_secrets_masked(app: Flask) -> None:
    [event] = _as_admin(
        app,
        lambda admin, bob: signals.two_factor_enabled.send(
            app, user=bob, method="totp", details={"device": "Pixel", "totp_secret": "JBSWY3DP"}
        ),
    )
    assert event.details == {
        "method": "totp",
        "user": "bob@example.com",
        "device": "Pixel",
        "totp_secret": "***",
    }


def test_signal_joins_a_session_when_asked(app: Flask) -> None:
    def send(admin: User, bob: User) -> None:
        session = db(app).session
        bob.role = "admin"
        signals.role_updated.send(app, user=bob, old="member", new="admin", session=session)
        session.rollback()

    assert _as_admin(app, send) == []


def test_signals_of_another_app_are_not_recorded_here(make_app: t.Any) -> None:
    first, second = make_app(), make_app()
    with record_events(first) as in_first, record_events(second) as in_second, second.app_context():
        signals.team_created.send(second, team="Elsewhere")
    assert in_first == []
    assert [e.activity for e in in_second] == ["Created team Elsewhere"]


def test_a_signal_sent_with_the_current_app_proxy_is_recorded(app: Flask) -> None:
    """``send(current_app, ...)``, the natural spelling in a blueprint, reaches the app's receivers."""
    from flask import current_app

    with app.test_request_context():
        signals.team_created.send(current_app, team="Growth")
    assert [(e.event_type, e.target_id) for e in stored(app)] == [("team.created", "Growth")]
