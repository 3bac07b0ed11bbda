"""Refused codes and sign-ins on Flask-Security-Too's other paths: the account tried is
always under ``identity``, and a wrong unified sign-in set-up code is ``two_factor.failed``."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .. import flask_security_fixtures as fixtures
from ..conftest import stored
from ..flask_security_fixtures import add_user
from ..flask_security_fixtures import code
from ..flask_security_fixtures import get_user
from ..flask_security_fixtures import login
from ..flask_security_fixtures import MakeSecurityApp
from ..flask_security_fixtures import PASSWORD
from ..flask_security_fixtures import post
from ..flask_security_fixtures import register_key
from ..flask_security_fixtures import sign_in_with_key
from ..flask_security_fixtures import SoftKey
from ..flask_security_fixtures import stored_text
from ..flask_security_fixtures import wrong_code

fs_app = fixtures.fs_app
make_security_app = fixtures.make_security_app

pytestmark = [
    # Flask-Security 5.9 still builds WTForms choices from tuples (WTForms 3.3 deprecates it).
    pytest.mark.filterwarnings("ignore:Passing SelectField choices:DeprecationWarning"),
]

ALICE = "alice@example.com"


def _failures(app: Flask) -> list[tuple[str, str, dict[str, t.Any], str | None]]:
    return [
        (e.event_type, e.activity, e.details, e.actor_email) for e in stored(app) if e.outcome == "failure"
    ]


def _signed_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert login(client)["status"] == 200
    return client


def test_wrong_unified_sign_in_set_up_code(fs_app: Flask) -> None:
    add_user(fs_app)
    client = _signed_in(fs_app)
    setup = post(client, "/us-setup", chosen_method="authenticator")
    key = setup["authr_b32key"]
    assert post(client, f"/us-setup/{setup['state']}", passcode=wrong_code(key))["status"] == 400
    assert post(client, f"/us-setup/{setup['state']}", passcode="")["status"] == 400  # no code: no try
    assert post(client, f"/us-setup/{setup['state']}", passcode=code(key))["status"] == 200
    events = stored(fs_app)
    assert [(e.event_type, e.activity, e.details, e.actor_email) for e in events[1:]] == [
        (
            "two_factor.failed",
            "Entered a wrong unified sign-in set-up code (authenticator app)",
            {"method": "authenticator", "reason": "bad_code", "setup": True, "flow": "unified_signin"},
            ALICE,
        ),
        (
            "user.signin_method_added",
            "Added sign-in method: authenticator app",
            {"methods": ["authenticator"], "flow": "unified_signin"},
            ALICE,
        ),
    ]
    assert (events[1].outcome, events[1].target_id) == ("failure", None)
    assert key not in stored_text(fs_app)


def test_the_account_tried_is_under_identity_on_every_path(make_security_app: MakeSecurityApp) -> None:
    """Login form (unknown, known by username), unified sign-in and its email link,
    passkey, re-authentication: one key, ``identity``."""
    app = make_security_app(
        SECURITY_USERNAME_ENABLE=True, SECURITY_US_ENABLED_METHODS=["password", "email", "authenticator"]
    )
    add_user(app, username="alice")
    client = app.test_client()
    assert post(client, "/login", username="mallory", password=PASSWORD)["status"] == 400
    assert post(client, "/login", username="alice", password="not-it-123")["status"] == 400
    assert post(client, "/us-signin", identity="alice", passcode="not-it-123")["status"] == 400
    link = client.get("/us-verify-link", query_string={"id": get_user(app).fs_uniquifier, "code": "123456"})
    assert link.status_code == 302
    passkey = SoftKey()
    signed_in = _signed_in(app)
    assert register_key(signed_in, passkey, "Phone", "first")["status"] == 200
    assert sign_in_with_key(client, passkey, tamper=True, identity="alice")["status"] == 400
    assert post(signed_in, "/verify", password="not-it-123")["status"] == 400
    identity = {"identity": ALICE}
    assert _failures(app) == [
        (
            "user.login_failed",
            "Failed sign-in for mallory (unknown user)",
            {"reason": "unknown_user", "method": "password", "identity": "mallory"},
            None,
        ),
        (
            "user.login_failed",
            "Failed sign-in for alice@example.com (bad password)",
            {"reason": "bad_password", "method": "password", **identity},
            ALICE,
        ),
        (
            "user.login_failed",
            "Failed sign-in for alice@example.com (bad passcode)",
            {"reason": "bad_passcode", "method": "passcode", **identity, "flow": "unified_signin"},
            ALICE,
        ),
        (
            "user.login_failed",
            "Failed sign-in for alice@example.com (bad passcode)",
            {"reason": "bad_passcode", "method": "passcode", **identity, "flow": "unified_signin"},
            ALICE,
        ),
        (
            "user.login_failed",
            "Failed sign-in for alice@example.com (bad passkey)",
            {"reason": "bad_passkey", "method": "passkey", **identity},
            ALICE,
        ),
        (
            "user.login_failed",
            "Failed re-authentication for alice@example.com (bad password)",
            {"reason": "bad_password", "method": "password", **identity, "reauthentication": True},
            ALICE,
        ),
    ]
