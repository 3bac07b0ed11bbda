"""A destination down in the middle of a run, while events keep coming: nothing is lost.

CI takes the receiver away for :data:`OUTAGE` seconds (5 by default); the full proof is a
minute: ``FLASK_AUDIT_STREAM_OUTAGE_SECONDS=60 CI=true .venv/bin/pytest -p no:cacheprovider
tests/stream/test_outage.py``.
"""

from __future__ import annotations

import collections
import os
import threading
import time
import typing as t

import pytest

from flask_audit.stream import stream_status

from ..conftest import MakeApp
from .fixtures import add_events
from .fixtures import Receiver
from .fixtures import relay
from .fixtures import SECRET
from .fixtures import stored_uids

pytestmark = pytest.mark.backends("sqlite")
OUTAGE = float(os.environ.get("FLASK_AUDIT_STREAM_OUTAGE_SECONDS", "5"))


def _wait(condition: t.Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _write_until(app: t.Any, stop: threading.Event) -> None:
    """Events in small bursts, as requests would record them, until ``stop``."""
    while not stop.is_set():
        add_events(app, 5)
        stop.wait(0.05)


def test_a_receiver_down_mid_run_loses_nothing_and_repeats_only_with_the_same_id(make_app: MakeApp) -> None:
    peers = [Receiver()]
    peers[0].start()
    streams = {
        "hook": {
            "sink": "webhook",
            "url": peers[0].url,
            "secret": SECRET,
            "batch_size": 50,
            "poll_seconds": 0.05,
            "retry_min_seconds": 0.1,
            "retry_max_seconds": 1,
            "timeout": 2,
        }
    }
    app = make_app(AUDIT_STREAMS=streams, AUDIT_STREAM_ALERT_AFTER=min(OUTAGE / 2, 30))
    stop_relay, stop_writer = threading.Event(), threading.Event()
    worker = relay(app, "hook")
    relaying = threading.Thread(target=worker.run, args=(stop_relay,))
    writing = threading.Thread(target=_write_until, args=(app, stop_writer))
    relaying.start()
    writing.start()
    try:
        _wait(lambda: len(peers[0].ids) >= 200, 60)
        peers[0].stop()  # the SIEM goes away, mid-batch, while events keep being recorded
        time.sleep(OUTAGE)
        with app.app_context():
            (status,) = stream_status()
        assert status.state == "failing" and status.lag_events > 0, status
        assert "Connection refused" in (status.last_error or "")
        peers.append(Receiver(peers[0].port))
        peers[-1].start()
        time.sleep(min(OUTAGE, 2))  # writes go on after the receiver is back
        stop_writer.set()
        writing.join(30)
        expected = stored_uids(app)
        _wait(lambda: expected[-1] in peers[-1].ids, 60 + OUTAGE)
    finally:
        stop_writer.set()
        stop_relay.set()
        relaying.join(30)
        for peer in peers:
            peer.stop()
    with app.app_context():
        (status,) = stream_status()
    assert status.state == "stopped" and status.lag_events == 0, status
    uids = stored_uids(app)
    received = [body for peer in peers for body in peer.received]
    ids = [body["uid"] for body in received]
    assert sum(peer.refused for peer in peers) == 0
    assert list(dict.fromkeys(ids)) == uids  # every event, first seen in id order
    bodies = collections.defaultdict(list)
    for body in received:
        bodies[body["uid"]].append(body)
    repeated = {uid: each for uid, each in bodies.items() if len(each) > 1}
    assert all(all(copy == each[0] for copy in each) for each in repeated.values())
    kinds = {body["event_type"] for body in received}
    assert {"audit.stream_failing", "audit.stream_recovered"} <= kinds
