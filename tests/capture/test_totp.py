from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from flask import Flask

from flask_audit.capture.totp import verify_totp

from ..apps import User
from ..conftest import stored

pytestmark = pytest.mark.backends("sqlite", "postgresql")

SECRET = pyotp.random_base32()
NOW = dt.datetime.now(dt.timezone.utc)


def _check(app: Flask, code: str, **kwargs: object) -> tuple[bool, int | None, str | None]:
    user = User(id=7, email="bob@example.com", password="pw")
    with app.test_request_context():
        result = verify_totp(user, SECRET, code, now=NOW, **kwargs)  # type: ignore[arg-type]
    return result.ok, result.step, result.reason


def test_current_code_is_verified(app: Flask) -> None:
    code = pyotp.TOTP(SECRET).at(NOW)
    ok, step, reason = _check(app, code)
    assert (ok, reason) == (True, None)
    assert step == pyotp.TOTP(SECRET).timecode(NOW)
    [event] = stored(app)
    assert (event.event_type, event.outcome, event.actor_id, event.actor_email) == (
        "two_factor.verified",
        "success",
        "7",
        "bob@example.com",
    )
    assert event.activity == "Verified two-factor authentication (authenticator app) for bob@example.com"


def test_previous_step_is_accepted_within_the_window(app: Flask) -> None:
    code = pyotp.TOTP(SECRET).at(NOW - dt.timedelta(seconds=30))
    assert _check(app, code)[0] is True
    assert _check(app, pyotp.TOTP(SECRET).at(NOW - dt.timedelta(seconds=90)))[2] == "wrong_code"


def test_wrong_code_fails_and_nothing_secret_is_stored(app: Flask) -> None:
    right = pyotp.TOTP(SECRET).at(NOW)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    assert _check(app, wrong) == (False, None, "wrong_code")
    [event] = stored(app)
    assert (event.event_type, event.outcome, event.details["reason"]) == (
        "two_factor.failed",
        "failure",
        "wrong_code",
    )
    text = repr([getattr(event, column) for column in ("activity", "details", "target_id")])
    assert SECRET not in text and wrong not in text and right not in text


def test_replayed_code_is_refused(app: Flask) -> None:
    code = pyotp.TOTP(SECRET).at(NOW)
    ok, step, _ = _check(app, code)
    assert ok and step is not None
    assert _check(app, code, last_step=step) == (False, None, "replayed")
    assert [e.event_type for e in stored(app)] == ["two_factor.verified", "two_factor.failed"]


@pytest.mark.parametrize("code", ["", "12345", "abcdef", "1234567"])
def test_malformed_codes(app: Flask, code: str) -> None:
    assert _check(app, code) == (False, None, "malformed")
