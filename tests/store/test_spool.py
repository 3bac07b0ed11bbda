from __future__ import annotations

import json
import pathlib

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit import AuditWriteError
from flask_audit.store import spool
from flask_audit.testing import record_events

from ..apps import create_app
from ..conftest import audit_of
from ..conftest import MakeApp
from ..conftest import stored


def _unreachable_url(db_url: str, tmp_path: pathlib.Path) -> str:
    """The same backend, but nothing answers: a closed port, or a folder that does not exist."""
    url = sa.make_url(db_url)
    if url.get_backend_name() == "sqlite":
        return f"sqlite:///{tmp_path / 'missing-folder' / 'audit.db'}"
    return url.set(port=1).render_as_string(hide_password=False)


def _offline_app(db_url: str, tmp_path: pathlib.Path, **config: object) -> Flask:
    return create_app(
        SQLALCHEMY_DATABASE_URI=_unreachable_url(db_url, tmp_path),
        AUDIT_SPOOL_PATH=str(tmp_path / "spool.jsonl"),
        **config,
    )


def test_raise_policy_fails_the_caller_with_a_clear_error(db_url: str, tmp_path: pathlib.Path) -> None:
    app = _offline_app(db_url, tmp_path)
    with (
        app.app_context(),
        pytest.raises(AuditWriteError, match=r"^The audit event 'user.login' could not be stored: "),
    ):
        audit_of(app).record("user.login")
    assert not (tmp_path / "spool.jsonl").exists()


def test_spooled_events_are_replayed_exactly_once(
    make_app: MakeApp, db_url: str, tmp_path: pathlib.Path
) -> None:
    offline = _offline_app(db_url, tmp_path, AUDIT_ON_WRITE_ERROR="spool")
    with offline.app_context(), record_events(offline) as seen:
        first = audit_of(offline).record("user.login", details={"method": "password"})
        audit_of(offline).record("user.logout")
    assert first.id is None and [e.event_type for e in seen] == ["user.login", "user.logout"]
    assert spool.pending(str(tmp_path / "spool.jsonl")) == 2

    online = make_app(AUDIT_SPOOL_PATH=str(tmp_path / "spool.jsonl"))
    runner = online.test_cli_runner()
    result = runner.invoke(args=["audit", "replay"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Replayed 2 spooled event(s); 0 already stored")
    again = runner.invoke(args=["audit", "replay"])
    assert again.output.startswith("Replayed 0 spooled event(s)")

    rows = stored(online)
    assert [(r.event_type, r.uid, r.occurred_at) for r in rows] == [
        ("user.login", first.uid, first.occurred_at),
        ("user.logout", seen[1].uid, seen[1].occurred_at),
    ]
    assert rows[0].details == {"method": "password"}


def test_replay_after_a_crash_midway_does_not_duplicate(
    make_app: MakeApp, db_url: str, tmp_path: pathlib.Path
) -> None:
    """The spool was not emptied (crash after insert): the stored uid is skipped."""
    offline = _offline_app(db_url, tmp_path, AUDIT_ON_WRITE_ERROR="spool")
    with offline.app_context():
        audit_of(offline).record("team.created")
    path = tmp_path / "spool.jsonl"
    saved = path.read_text()
    online = make_app(AUDIT_SPOOL_PATH=str(path))
    online.test_cli_runner().invoke(args=["audit", "replay"])
    path.write_text(saved)
    result = online.test_cli_runner().invoke(args=["audit", "replay"])
    assert result.output.startswith("Replayed 0 spooled event(s); 1 already stored")
    assert len(stored(online)) == 1


def test_torn_lines_are_kept_aside_and_the_command_fails(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "spool.jsonl"
    app = make_app(AUDIT_SPOOL_PATH=str(path))
    with app.app_context():
        row = {
            "uid": "a" * 32,
            "event_type": "team.created",
            "occurred_at": "2026-11-20T10:00:00+00:00",
            "entity": "Team",
            "action": "create",
            "outcome": "success",
            "activity": "Created a team",
            "details": {},
        }
    path.write_text(json.dumps(row) + "\n" + '{"uid": "torn', encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["audit", "replay"])
    assert result.exit_code == 1
    assert "Replayed 1 spooled event(s); 0 already stored, 1 unreadable line(s) kept aside." in result.output
    assert (tmp_path / "spool.jsonl.rejected").read_text() == '{"uid": "torn\n'
    assert [e.uid for e in stored(app)] == ["a" * 32]


@pytest.mark.backends("sqlite")
def test_unwritable_spool_path_is_a_clear_error(db_url: str, tmp_path: pathlib.Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    app = create_app(
        SQLALCHEMY_DATABASE_URI=_unreachable_url(db_url, tmp_path),
        AUDIT_ON_WRITE_ERROR="spool",
        AUDIT_SPOOL_PATH=str(tmp_path / "not-a-folder" / "spool.jsonl"),
    )
    with (
        app.app_context(),
        pytest.raises(AuditWriteError, match="nor spooled to .*Make AUDIT_SPOOL_PATH writable"),
    ):
        audit_of(app).record("user.login")
