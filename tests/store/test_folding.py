"""Floods of failed sign-ins are folded into counted events whose counts add up.

``FLASK_AUDIT_FLOOD_ATTEMPTS`` sets the flood's size (2,500 by default; the documented full
run is 100,000: ``FLASK_AUDIT_FLOOD_ATTEMPTS=100000 pytest tests/store/test_folding.py``).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import math
import os
import typing as t

import pytest
from flask import Flask

from flask_audit import AuditEvent
from flask_audit import signals
from flask_audit.store import folding

from ..conftest import audit_of
from ..conftest import MakeApp
from ..conftest import stored

FLOOD = int(os.environ.get("FLASK_AUDIT_FLOOD_ATTEMPTS", "2500"))
BURST = 5


def _fail(app: Flask, ip: str, email: str = "victim@example.com", **environ: str) -> None:
    """One failed sign-in as the app announces it, from ``ip``."""
    with app.test_request_context(environ_base={"REMOTE_ADDR": ip, **environ}):
        signals.login_failed.send(app, email=email, reason="bad_password")


def _count(event: AuditEvent) -> int:
    return int(event.details.get("count", 1))


def _close_windows(app: Flask) -> int:
    """Report every open window as if its time were up, as a seal after the window does."""
    with app.app_context():
        state = audit_of(app)._state(app)
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(
            days=1, seconds=state.config.failed_login_window
        )
        return folding.report_due(state.engine, state.config, now=later)


def _failures(app: Flask) -> list[AuditEvent]:
    return [e for e in stored(app) if e.event_type == "user.login_failed"]


def test_a_flood_from_one_address_is_a_few_rows_whose_counts_add_up(make_app: MakeApp) -> None:
    # One window for the whole flood, however long the machine takes to send it.
    app = make_app(AUDIT_FAILED_LOGIN_BURST=BURST, AUDIT_FAILED_LOGIN_WINDOW=86400)
    for _ in range(FLOOD):
        _fail(app, "203.0.113.9")
    _close_windows(app)
    events = _failures(app)
    assert sum(_count(e) for e in events) == FLOOD
    single = [e for e in events if not e.details.get("folded")]
    folded = [e for e in events if e.details.get("folded")]
    assert len(single) == BURST
    assert len(folded) == math.ceil((FLOOD - BURST) / folding.FOLD_EVERY)
    for event in folded:
        assert event.ip == "203.0.113.9" and event.outcome == "failure"
        assert event.details["first_at"] <= event.details["last_at"]
        assert event.details["last_email"] == "victim@example.com"
        assert event.activity == f"{event.details['count']} more failed sign-ins from 203.0.113.9 (folded)"


def test_addresses_and_tenants_are_counted_apart(make_app: MakeApp) -> None:
    app = make_app(AUDIT_FAILED_LOGIN_BURST=2)
    for ip in ("198.51.100.1", "198.51.100.2"):
        for _ in range(5):
            _fail(app, ip)
    _close_windows(app)
    events = _failures(app)
    for ip in ("198.51.100.1", "198.51.100.2"):
        mine = [e for e in events if e.ip == ip]
        assert sum(_count(e) for e in mine) == 5
        assert [bool(e.details.get("folded")) for e in mine] == [False, False, True]


def test_a_new_window_reports_the_old_one_first_and_starts_a_new_burst(make_app: MakeApp) -> None:
    app = make_app(AUDIT_FAILED_LOGIN_BURST=1, AUDIT_FAILED_LOGIN_WINDOW=60)
    start = dt.datetime.now(dt.timezone.utc)
    with app.test_request_context(environ_base={"REMOTE_ADDR": "192.0.2.7"}):
        for minute in (0, 0, 0, 2, 2):
            audit_of(app).record(
                "user.login_failed", actor=None, occurred_at=start + dt.timedelta(minutes=minute, seconds=1)
            )
    kinds = [(bool(e.details.get("folded")), _count(e)) for e in _failures(app)]
    assert kinds == [(False, 1), (True, 2), (False, 1)]  # the 5th waits in the new window
    assert _close_windows(app) == 1
    assert sum(_count(e) for e in _failures(app)) == 5


def test_concurrent_attempts_from_one_address_add_up(make_app: MakeApp) -> None:
    app = make_app(AUDIT_FAILED_LOGIN_BURST=BURST)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: _fail(app, "203.0.113.50", email=f"u{n}@example.com"), range(400)))
    _close_windows(app)
    events = _failures(app)
    assert sum(_count(e) for e in events) == 400
    assert len([e for e in events if not e.details.get("folded")]) == BURST


def test_without_a_burst_setting_every_attempt_is_a_row(make_app: MakeApp) -> None:
    app = make_app(AUDIT_FAILED_LOGIN_BURST=None)
    for _ in range(30):
        _fail(app, "203.0.113.9")
    assert [_count(e) for e in _failures(app)] == [1] * 30


def test_anonymous_text_is_cut_short(make_app: MakeApp) -> None:
    app = make_app()
    email = "a" * 300 + "@example.com"
    _fail(app, "203.0.113.9", email=email, HTTP_USER_AGENT="x" * 600)
    [event] = _failures(app)
    assert len(t.cast(str, event.actor_email)) == 254
    assert len(t.cast(str, event.details["email"])) == 254
    assert len(t.cast(str, event.user_agent)) == 256


@pytest.mark.audit_config(AUDIT_FAILED_LOGIN_BURST=2, AUDIT_SEAL_KEY="fold-key")
def test_a_seal_reports_closed_windows_first(app: Flask) -> None:
    with app.test_request_context(environ_base={"REMOTE_ADDR": "203.0.113.9"}):
        old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
        for _ in range(4):
            audit_of(app).record("user.login_failed", actor=None, occurred_at=old)
    assert sum(_count(e) for e in _failures(app)) == 2
    result = app.test_cli_runner().invoke(args=["audit", "seal"])
    assert result.exit_code == 0, result.output
    assert sum(_count(e) for e in _failures(app)) == 4
