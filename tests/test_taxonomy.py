"""Every event type of the taxonomy comes from its real path, on every database."""

from __future__ import annotations

import datetime as dt

import pyotp
import sqlalchemy as sa
from flask import Flask
from flask_login import login_user

from flask_audit import signals
from flask_audit.capture.totp import verify_totp
from flask_audit.sso import IdpMetadata
from flask_audit.sso import record_sso_change
from flask_audit.taxonomy import EVENT_TYPES

from .apps import add_user
from .apps import Team
from .apps import User
from .conftest import db
from .conftest import MakeApp
from .conftest import stored

IDP = IdpMetadata("https://idp.example.com", "https://idp.example.com/sso", ("AA:BB",), None)
ROTATED = IdpMetadata("https://idp.example.com", "https://idp.example.com/sso", ("CC:DD",), None)


def _sign_in_paths(app: Flask) -> None:
    add_user(app, "alice@example.com")
    client = app.test_client()
    client.post("/login", data={"email": "alice@example.com", "password": "wrong"})
    client.post("/login", data={"email": "alice@example.com", "password": "pw"})
    client.post("/logout")


def _admin_paths(app: Flask) -> None:
    secret = pyotp.random_base32()
    with app.test_request_context():
        session = db(app).session
        admin = session.scalars(sa.select(User).where(User.email == "alice@example.com")).one()
        login_user(admin)
        bob = User(email="bob@example.com", password="pw")  # tracked: user.created
        team = Team(name="Growth")  # tracked: team.created
        session.add_all([bob, team])
        session.commit()
        team.name = "Expansion"  # team.updated
        bob.role = "admin"  # role.updated
        session.commit()
        signals.team_member_added.send(app, team=team, user=bob)
        signals.team_member_removed.send(app, team=team, user=bob)
        signals.invite_sent.send(app, email="dave@example.com", role="member")
        signals.invite_accepted.send(app, email="dave@example.com")
        signals.invite_revoked.send(app, email="erin@example.com")
        signals.password_changed.send(app, user=bob, by_admin=True)
        signals.two_factor_enabled.send(app, user=admin, method="totp")
        signals.two_factor_reset.send(app, user=bob)
        verify_totp(admin, secret, pyotp.TOTP(secret).now())
        verify_totp(admin, secret, "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
        signals.two_factor_disabled.send(app, user=admin)
        record_sso_change(None, IDP)
        record_sso_change(IDP, ROTATED)
        record_sso_change(ROTATED, None)
        session.delete(team)  # team.deleted
        session.delete(bob)  # user.deleted
        session.commit()


def test_every_event_type_has_a_real_path(make_app: MakeApp) -> None:
    app = make_app(TEST_TRACK_MODELS=True)
    _sign_in_paths(app)
    _admin_paths(app)
    produced = {event.event_type for event in stored(app, include_enabled=True)}
    # Exports, prunes and the streams' own events are exercised in their own modules.
    streams = {kind for kind in EVENT_TYPES if kind.startswith("audit.stream_")}
    compliance = {"audit.alert_sent", "audit.health_failed", "audit.reviewed"}
    assert produced == set(EVENT_TYPES) - {"audit.exported", "audit.pruned"} - streams - compliance
    assert all(e.occurred_at <= dt.datetime.now(dt.timezone.utc) for e in stored(app))
