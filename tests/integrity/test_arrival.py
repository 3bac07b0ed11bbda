"""Arrival order is sealed: a row inserted after a seal and dated back into the sealed
period fails ``verify`` (``backdated``), before and after the next seal takes it in; a
marked late write (spool replay, an explicit ``occurred_at``) does not.

The forgery needs nothing but ``INSERT`` on ``audit_event``, which the runtime role has.
"""

from __future__ import annotations

import datetime as dt
import pathlib

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit.store import spool
from flask_audit.store.rows import build_row

from ..conftest import audit_of
from ..conftest import db
from ..sealing_fixtures import days_ago
from ..sealing_fixtures import engine_of
from ..sealing_fixtures import EVENTS
from ..sealing_fixtures import KEY
from ..sealing_fixtures import problem
from ..sealing_fixtures import record
from ..sealing_fixtures import seal
from ..sealing_fixtures import verify

sealed_app = pytest.mark.audit_config(AUDIT_SEAL_KEY=KEY)


def _insert_dated(app: Flask, when: dt.datetime, *, late: bool = False) -> int:
    """What an attacker with INSERT alone does: a new row, dated ``when``; its id."""
    with app.app_context():
        row = build_row(
            audit_of(app).config,
            "role.updated",
            activity="Changed role of sam from Member to Admin",
            actor=None,
            actor_email="owner@acme.test",
            details={"before": "member", "after": "admin"},
        )
        row.update(occurred_at=when, late=late)
        with db(app).engine.begin() as conn:
            key = conn.execute(sa.insert(EVENTS), row).inserted_primary_key
    assert key is not None
    return int(key[0])


def _run_verify(app: Flask) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    return result.exit_code, result.output


@sealed_app
def test_a_backdated_insert_fails_verify_before_and_after_the_next_seal(app: Flask) -> None:
    record(app, 3)
    seal(app)
    forged = _insert_dated(app, days_ago(30))
    found = problem(app)
    assert (found.kind, found.event_id, found.seal_id) == ("backdated", forged, None)
    assert found.message.startswith(f"Event {forged} arrived after seal 1 yet is dated ")
    assert found.message.endswith("and is not marked late: it was inserted afterwards and backdated.")
    assert _run_verify(app) == (1, f"Error: Verification failed: {found.message}\n")

    record(app)
    seal(app)  # the next seal takes the row in: its date still gives it away
    found = problem(app)
    assert (found.kind, found.event_id, found.seal_id) == ("backdated", forged, 2)


@sealed_app
def test_marked_late_writes_pass(app: Flask) -> None:
    record(app, 2)
    seal(app)
    record(app, occurred_at=days_ago(3))  # an explicit time: marked late by record()
    _insert_dated(app, days_ago(10), late=True)  # marked: the page shows it as a late write
    record(app)
    seal(app)
    record(app)
    report = verify(app)
    assert report.problem is None, report.problem
    with engine_of(app).connect() as conn:
        marks = list(conn.execute(sa.select(EVENTS.c.late).where(EVENTS.c.id > 3).order_by(EVENTS.c.id)))
    assert [late for (late,) in marks] == [True, True, False, False]


@sealed_app
def test_a_replayed_spool_line_passes(app: Flask, tmp_path: pathlib.Path) -> None:
    spool_path = tmp_path / "spool.jsonl"
    with app.app_context():
        event = build_row(audit_of(app).config, "user.login", occurred_at=None)
    event["occurred_at"] = days_ago(2)  # written to the spool two days ago, while the database was away
    spool.append(str(spool_path), event)
    record(app, 2)
    seal(app)
    result = spool.replay(str(spool_path), engine_of(app))
    assert result.inserted == 1
    seal(app)
    report = verify(app)
    assert report.problem is None, report.problem
    with engine_of(app).connect() as conn:
        assert conn.scalar(sa.select(EVENTS.c.late).where(EVENTS.c.uid == event["uid"])) is True


@sealed_app
def test_an_event_dated_within_the_slack_passes(app: Flask) -> None:
    """In-flight events: one built a moment before the seal's newest event commits after it."""
    record(app, 2)
    seal(app)
    with engine_of(app).connect() as conn:
        newest = conn.scalar(sa.select(sa.func.max(EVENTS.c.occurred_at)))
    assert newest is not None
    _insert_dated(app, newest - dt.timedelta(seconds=20))
    assert verify(app).problem is None
    assert verify(app, late_after_seconds=10).problem is not None  # a tighter slack flags it


@sealed_app
def test_a_fast_clock_cannot_push_the_sealed_period_forward(app: Flask) -> None:
    """An event dated an hour ahead (a host's wrong clock) ends the period at the seal's own time."""
    record(app)
    _insert_dated(app, dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1), late=True)
    seal(app)
    record(app)  # now: after the seal, before the fast clock's time
    assert verify(app).problem is None


@pytest.mark.audit_config(AUDIT_SEAL_KEY=KEY, AUDIT_LATE_AFTER_SECONDS=3600)
def test_the_slack_is_the_setting(app: Flask) -> None:
    record(app, 2)
    seal(app)
    _insert_dated(app, days_ago(1 / 48))  # 30 minutes back: inside an hour's slack
    assert _run_verify(app)[0] == 0
    _insert_dated(app, days_ago(1 / 12))  # 2 hours back
    code, output = _run_verify(app)
    assert code == 1 and "is not marked late: it was inserted afterwards and backdated." in output
