"""The outbox on SQLite, PostgreSQL and MariaDB: order, completeness, leases, pause and backfill."""

from __future__ import annotations

import datetime as dt
import pathlib
import threading
import time
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit.admin.api import serialize
from flask_audit.state import audit_state
from flask_audit.store.models import stream_table
from flask_audit.store.rows import build_row
from flask_audit.stream import cursor
from flask_audit.stream import SCHEMA
from flask_audit.stream import stream_status
from flask_audit.stream.cli import stream_cli
from flask_audit.stream.wire import Message

from ..conftest import end_pooled_connection
from ..conftest import MakeApp
from .fixtures import add_events
from .fixtures import drain
from .fixtures import engine_of
from .fixtures import EVENTS
from .fixtures import read_lines
from .fixtures import relay
from .fixtures import RUN_SIZE
from .fixtures import stored_uids


def file_app(make_app: MakeApp, path: pathlib.Path, **options: t.Any) -> Flask:
    streams = {"file": {"sink": "jsonl", "path": str(path), "batch_size": 500, **options}}
    return make_app(AUDIT_STREAMS=streams, AUDIT_STREAM_ALERT_AFTER=0)


def test_every_committed_event_reaches_the_file_once_in_order(
    make_app: MakeApp, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "audit.jsonl"
    app = file_app(make_app, path)
    add_events(app, RUN_SIZE)
    drain(app, "file")
    lines = read_lines(path)
    assert [line["uid"] for line in lines] == stored_uids(app)
    with engine_of(app).connect() as conn:
        rows = list(conn.execute(sa.select(EVENTS).order_by(EVENTS.c.id)))
    assert lines == [{"schema": SCHEMA, **serialize(row), "seal_id": None} for row in rows]

    add_events(app, 7)
    drain(app, "file")
    assert [line["uid"] for line in read_lines(path)] == stored_uids(app)
    with app.app_context():
        (status,) = stream_status()
    assert (status.name, status.state, status.lag_events, status.delivered) == (
        "file",
        "stopped",
        0,
        RUN_SIZE + 8,
    )
    assert status.cursor > rows[-1].id


@pytest.mark.backends("postgresql", "mariadb")
def test_an_id_drawn_before_a_later_commit_is_never_jumped(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.jsonl"
    app = file_app(make_app, path)
    drain(app, "file")
    engine = engine_of(app)
    with app.app_context():
        row = build_row(audit_state(app).config, "team.created", actor=None)
    with engine.connect() as slow:
        slow.execute(sa.insert(EVENTS), row)  # its id is drawn now; the commit comes later
        later = add_events(app, 3)
        worker = relay(app, "file", bound_timeout=0.3)
        assert worker.step().outcome == "waiting"
        assert [line["uid"] for line in read_lines(path)][-1] != later[-1]
        slow.commit()
    assert worker.step().outcome == "delivered"
    uids = [line["uid"] for line in read_lines(path)]
    assert uids == stored_uids(app)
    assert uids[-4:] == [row["uid"], *later]  # the held event's id is the lowest of the four
    worker.close()


class Overlap:
    """A sink shared by two workers that notes whether two sends ever overlapped."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = self.most = 0
        self.uids: list[str] = []

    def __call__(self, name: str, options: t.Mapping[str, t.Any]) -> Overlap:
        return self

    def send(self, messages: t.Sequence[Message]) -> None:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        time.sleep(0.002)
        self.uids.extend(message.uid for message in messages)
        with self.lock:
            self.active -= 1

    def close(self) -> None:
        pass


def test_two_workers_on_one_destination_never_deliver_in_parallel(make_app: MakeApp) -> None:
    sink = Overlap()
    streams = {"shared": {"sink": sink, "batch_size": 50, "lease_seconds": 5, "poll_seconds": 0.05}}
    app = make_app(AUDIT_STREAMS=streams)
    add_events(app, 1000)
    threads = [threading.Thread(target=drain, args=(app, "shared")) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sink.most == 1
    assert sink.uids == stored_uids(app)


def test_an_expired_lease_is_taken_over_and_the_late_holder_cannot_move_the_cursor(make_app: MakeApp) -> None:
    app = make_app(AUDIT_STREAMS={"x": {"sink": Overlap(), "lease_seconds": 0.3}})
    engine = engine_of(app)
    first = cursor.take_lease(engine, "x", "worker-a", 60)
    assert first is not None
    assert cursor.take_lease(engine, "x", "worker-b", 60) is None
    with engine.begin() as conn:  # worker-a is gone without releasing, and its lease runs out
        past = cursor.utcnow() - dt.timedelta(seconds=1)
        conn.execute(sa.update(stream_table).values(lease_until=past))
    second = cursor.take_lease(engine, "x", "worker-b", 60)
    assert second is not None and second.lease_holder == "worker-b"
    assert not cursor.advance(engine, "x", "worker-a", old=0, new=5, delivered=5, lease_seconds=1)
    assert cursor.advance(engine, "x", "worker-b", old=0, new=5, delivered=5, lease_seconds=1)
    assert t.cast(cursor.StreamRow, cursor.read(engine, "x")).cursor == 5


def test_pause_resume_and_backfill(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.jsonl"
    app = file_app(make_app, path)
    runner = app.test_cli_runner()
    early = add_events(app, 10)
    drain(app, "file")
    result = runner.invoke(stream_cli, ["pause", "file"])
    assert result.output == "Paused stream file.\n", result.output
    paused_at = len(read_lines(path))
    add_events(app, 5)
    drain(app, "file")
    assert len(read_lines(path)) == paused_at
    with app.app_context():
        (status,) = stream_status()
    assert (status.state, status.lag_events) == ("paused", 6)  # the pause itself is an event
    assert runner.invoke(stream_cli, ["resume", "file"]).output == "Resumed stream file.\n"
    drain(app, "file")
    types = [line["event_type"] for line in read_lines(path)]
    assert types[-7:] == ["audit.stream_paused", *["team.created"] * 5, "audit.stream_resumed"]
    assert [line["uid"] for line in read_lines(path)] == stored_uids(app)

    with engine_of(app).connect() as conn:
        since = conn.scalar(sa.select(EVENTS.c.occurred_at).where(EVENTS.c.uid == early[5]))
    assert since is not None
    result = runner.invoke(stream_cli, ["backfill", "file", "--since", since.isoformat()])
    assert "rewound" in result.output, result.output
    before = len(read_lines(path))
    drain(app, "file")
    again = [line["uid"] for line in read_lines(path)][before:]
    assert again == stored_uids(app)[stored_uids(app).index(early[5]) :]
    assert read_lines(path)[-1]["event_type"] == "audit.stream_rewound"
    bad = runner.invoke(stream_cli, ["pause", "nowhere"])
    assert bad.exit_code == 1 and "Not in AUDIT_STREAMS: nowhere (configured: file)." in bad.output


class Flaky:
    """A sink that fails until told to work."""

    def __init__(self) -> None:
        self.working = False
        self.uids: list[str] = []

    def __call__(self, name: str, options: t.Mapping[str, t.Any]) -> Flaky:
        return self

    def send(self, messages: t.Sequence[Message]) -> None:
        if not self.working:
            raise ConnectionRefusedError("the SIEM is down")
        self.uids.extend(message.uid for message in messages)

    def close(self) -> None:
        pass


def test_a_failing_destination_is_reported_and_its_recovery_too(make_app: MakeApp) -> None:
    sink = Flaky()
    app = make_app(AUDIT_STREAMS={"siem": {"sink": sink}}, AUDIT_STREAM_ALERT_AFTER=0)
    add_events(app, 3)
    worker = relay(app, "siem")
    assert worker.step().outcome == "failed"
    assert worker.step().outcome == "failed"
    with app.app_context():
        (status,) = stream_status()
    assert (status.state, status.last_error) == ("failing", "ConnectionRefusedError: the SIEM is down")
    with engine_of(app).connect() as conn:
        alerts = list(conn.execute(sa.select(EVENTS).where(EVENTS.c.event_type.like("audit.stream_%"))))
    assert [(row.event_type, row.outcome, row.details["stream"]) for row in alerts] == [
        ("audit.stream_failing", "failure", "siem")
    ]
    sink.working = True
    while worker.step().outcome == "delivered":
        pass
    worker.close()
    assert sink.uids == stored_uids(app)
    with app.app_context():
        (status,) = stream_status()
    assert (status.state, status.last_error, status.lag_events) == ("stopped", None, 0)
    with engine_of(app).connect() as conn:
        kinds = list(
            conn.scalars(sa.select(EVENTS.c.event_type).where(EVENTS.c.event_type.like("audit.stream_%")))
        )
    assert kinds == ["audit.stream_failing", "audit.stream_recovered"]


def test_filters_and_masks_apply_and_the_cursor_passes_what_is_filtered_out(make_app: MakeApp) -> None:
    sink = Flaky()
    sink.working = True
    streams = {
        "login": {
            "sink": sink,
            "event_types": ["user.*"],
            "tenants": ["acme"],
            "mask": {"ip": "hash", "actor_email": "drop", "details.email": "drop"},
            "mask_key": "k",
        }
    }
    app = make_app(AUDIT_STREAMS=streams)
    add_events(app, 3, tenant_id="other")
    wanted = add_events(app, 2, event_type="user.login", tenant_id="acme", ip="10.0.0.1", actor_email="a@b.c")
    add_events(app, 2, event_type="user.login", tenant_id="globex")
    captured: list[Message] = []
    original = sink.send

    def keep(messages: t.Sequence[Message]) -> None:
        captured.extend(messages)
        original(messages)

    sink.send = keep  # type: ignore[method-assign]
    drain(app, "login")
    assert sink.uids == wanted
    record = captured[0].record
    assert "actor_email" not in record
    assert record["ip"].startswith("hmac-sha256:") and record["ip"] == captured[1].record["ip"]
    with app.app_context():
        (status,) = stream_status()
    assert status.lag_events == 0 and status.delivered == 2


def test_status_of_a_destination_no_worker_ran_yet(make_app: MakeApp) -> None:
    app = make_app(AUDIT_STREAMS={"new": {"sink": "stdout"}})
    with app.app_context():
        (status,) = stream_status()
    assert (status.state, status.cursor, status.lag_events) == ("new", 0, 1)
    assert status.lag_seconds >= 0
    assert status.as_dict()["delivered_at"] is None
    result = app.test_cli_runner().invoke(stream_cli, ["status"])
    assert result.output.startswith("new: new, cursor 0, lag 1 event(s)")


@pytest.mark.backends("postgresql", "mariadb")
def test_a_dropped_database_connection_is_a_retried_step(
    make_app: MakeApp, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The server ends the worker's pooled connection, as a restart does: the worker goes on."""
    path = tmp_path / "audit.jsonl"
    app = file_app(make_app, path, retry_min_seconds=0.05, poll_seconds=0.05)
    add_events(app, 50)
    worker = relay(app, "file")
    assert worker.step().outcome == "delivered"
    add_events(app, 50)
    end_pooled_connection(worker.engine)
    with app.app_context():
        worker.run(threading.Event(), until_idle=True)
    assert "the database failed" in caplog.text
    assert worker.failures == 0  # reset by the batch delivered after the failed step
    assert [line["uid"] for line in read_lines(path)] == stored_uids(app)


@pytest.mark.backends("sqlite")
def test_the_run_command_delivers_until_idle(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit.jsonl"
    app = file_app(make_app, path)
    add_events(app, 20)
    result = app.test_cli_runner().invoke(stream_cli, ["run", "--until-idle"])
    assert result.output == "Streamed to file; stopped.\n", result.output
    assert [line["uid"] for line in read_lines(path)] == stored_uids(app)
    missing = app.test_cli_runner().invoke(stream_cli, ["run", "elsewhere"])
    assert missing.exit_code == 1 and "Not in AUDIT_STREAMS: elsewhere" in missing.output
