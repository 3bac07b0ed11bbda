"""PostgreSQL restarted under a streaming worker, twice, while events keep being written.

The server is a private one (``benchmarks/_pgcluster.py``: ``initdb`` in a temporary
folder, on a free loopback port), never the shared server the other tests use. It is
stopped with ``-m fast`` and then ``-m immediate`` (crash recovery) in the middle of the
run. Every committed event must reach the file, first seen in id order, and an event
written twice must be the same bytes both times.
"""

from __future__ import annotations

import collections.abc as c
import functools
import pathlib
import threading
import time
import typing as t

import pytest
import sqlalchemy as sa

from flask_audit.stream import stream_status

from ..conftest import MakeApp
from ..pgcluster_fixtures import private_cluster
from .fixtures import add_events
from .fixtures import read_lines
from .fixtures import relay
from .fixtures import stored_uids

pytestmark = pytest.mark.backends("postgresql")


@pytest.fixture
def cluster() -> c.Iterator[t.Any]:
    """A private PostgreSQL server for this test; it outlives the app (torn down after it)."""
    with private_cluster() as found:
        yield found


def _write_until(app: t.Any, stop: threading.Event, failures: list[str]) -> None:
    """Small bursts of events until ``stop``; a burst refused while the server is away is
    noted and the next one tried."""
    while not stop.is_set():
        try:
            add_events(app, 5)
        except sa.exc.DBAPIError as err:
            failures.append(type(err.orig).__name__)
            stop.wait(0.1)
        stop.wait(0.02)


def _grown(path: pathlib.Path, lines: int) -> bool:
    return len(read_lines(path)) >= lines


def _wait(condition: c.Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_database_restarted_mid_run_loses_nothing(
    cluster: t.Any, make_app: MakeApp, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "audit.jsonl"
    options = {"sink": "jsonl", "path": str(path), "batch_size": 40, "poll_seconds": 0.05}
    options |= {"retry_min_seconds": 0.1, "retry_max_seconds": 0.5}
    app = make_app(SQLALCHEMY_DATABASE_URI=cluster.url, AUDIT_STREAMS={"file": options})
    stop_relay, stop_writer = threading.Event(), threading.Event()
    refused: list[str] = []
    worker = relay(app, "file")
    relaying = threading.Thread(target=worker.run, args=(stop_relay,))
    writing = threading.Thread(target=_write_until, args=(app, stop_writer, refused))
    relaying.start()
    writing.start()
    try:
        for mode in ("fast", "immediate"):
            _wait(lambda: len(read_lines(path)) >= 150, 60)
            before = len(read_lines(path))
            cluster.restart(mode)
            _wait(functools.partial(_grown, path, before + 150), 60)  # delivering again
        stop_writer.set()
        writing.join(30)
        expected = stored_uids(app)
        _wait(lambda: expected[-1] in {line["uid"] for line in read_lines(path)}, 60)
    finally:
        stop_writer.set()
        stop_relay.set()
        writing.join(30)
        relaying.join(30)
    lines = read_lines(path)
    uids = stored_uids(app)
    assert list(dict.fromkeys(line["uid"] for line in lines)) == uids
    first: dict[str, dict[str, t.Any]] = {}
    for line in lines:
        assert first.setdefault(line["uid"], line) == line
    assert refused, "the writer never saw the server go away: the restart proved nothing"
    with app.app_context():
        (status,) = stream_status()
    assert status.lag_events == 0 and status.cursor == max(line["id"] for line in lines)
