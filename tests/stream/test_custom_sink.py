"""The sink example of docs/streaming.rst, run as a user would configure it."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import sqlite3

import pytest

from flask_audit.stream import health

from ..conftest import MakeApp
from .fixtures import add_events
from .fixtures import drain
from .fixtures import stored_uids

pytestmark = pytest.mark.backends("sqlite")


def test_the_documented_sink_stores_every_event_once(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "warehouse.db"
    sink = "tests.stream.example_sink:SqliteSink"
    app = make_app(AUDIT_STREAMS={"warehouse": {"sink": sink, "path": str(path), "batch_size": 40}})
    add_events(app, 150)
    drain(app, "warehouse")
    with app.app_context():
        health.rewind("warehouse", dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))
    drain(app, "warehouse")  # everything again: the uid key keeps one copy
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT uid, body FROM audit ORDER BY id").fetchall()
    assert [uid for uid, _ in rows] == stored_uids(app)
    assert all(json.loads(body)["uid"] == uid for uid, body in rows)
