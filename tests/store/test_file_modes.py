"""Audit data written to files is for the owner only: the spool, its rejects, prune's archive.

The process umask here is the common 022, under which a plain ``open()`` makes 0644 files.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import os
import pathlib
import stat

import pytest
from flask import Flask

from flask_audit.store import spool

from ..conftest import audit_of
from ..sealing_fixtures import days_ago
from ..sealing_fixtures import record


@pytest.fixture(autouse=True)
def usual_umask() -> c.Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


ROW = {
    "uid": "b" * 32,
    "event_type": "team.created",
    "occurred_at": dt.datetime(2026, 11, 20, 10, tzinfo=dt.timezone.utc),
    "entity": "Team",
    "action": "create",
    "outcome": "success",
    "activity": "Created a team",
    "details": {},
}


def test_a_new_spool_is_created_for_the_owner_only(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "spool" / "audit-spool.jsonl"
    spool.append(str(path), ROW)
    spool.append(str(path), {**ROW, "uid": "c" * 32})
    assert mode(path) == 0o600
    assert spool.pending(str(path)) == 2


def test_an_existing_spool_keeps_its_own_mode(tmp_path: pathlib.Path) -> None:
    """Narrower stays narrow; wider (a group that ships the file) is the owner's choice."""
    for wanted in (0o400 | 0o200, 0o640):
        path = tmp_path / f"spool-{wanted:o}.jsonl"
        path.touch()
        path.chmod(wanted)
        spool.append(str(path), ROW)
        assert mode(path) == wanted


def test_rejected_lines_are_kept_for_the_owner_only(app: Flask, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "torn.jsonl"
    path.write_text('{"uid": "torn\n', encoding="utf-8")
    with app.app_context():
        result = spool.replay(str(path), audit_of(app)._state(app).engine)
    assert result.rejected == 1
    assert mode(tmp_path / "torn.jsonl.rejected") == 0o600


def test_the_prune_archive_is_for_the_owner_only(app: Flask, tmp_path: pathlib.Path) -> None:
    record(app, 3, occurred_at=days_ago(100))
    target = tmp_path / "archive.jsonl.gz"
    stale = tmp_path / "archive.jsonl.gz.partial"  # left by a run that crashed, made wide
    stale.write_bytes(b"")
    stale.chmod(0o666)
    result = app.test_cli_runner().invoke(args=["audit", "prune", "--archive", str(target)])
    assert result.exit_code == 0, result.output
    assert mode(target) == 0o600
    assert not stale.exists()
