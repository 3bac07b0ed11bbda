"""A worker killed with SIGKILL in the middle of a batch, then started again: nothing lost."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import typing as t

from ..conftest import MakeApp
from .fixtures import add_events
from .fixtures import read_lines
from .fixtures import stored_uids

ROOT = pathlib.Path(__file__).resolve().parents[2]


def worker(
    db_url: str, streams: t.Mapping[str, object], log: pathlib.Path, *args: str
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tests.stream.worker", db_url, json.dumps(streams), *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stderr=out)


def test_a_killed_worker_loses_nothing_and_resends_with_the_same_ids(
    make_app: MakeApp, db_url: str, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "audit.jsonl"
    spec = {"sink": "tests.stream.worker:SlowLines", "path": str(path), "batch_size": 200}
    streams = {"file": {**spec, "lease_seconds": 1, "poll_seconds": 0.05}}
    app = make_app(AUDIT_STREAMS=streams)
    add_events(app, 1000)
    log = tmp_path / "worker.log"
    stalling = {"file": {**streams["file"], "stall_after": 300}}  # inside the second batch
    first = worker(db_url, stalling, log)
    try:
        deadline = time.monotonic() + 60
        while len(read_lines(path)) < 300:
            assert first.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the worker delivered too little"
            time.sleep(0.01)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    at_kill = [line["uid"] for line in read_lines(path)]
    assert len(at_kill) == 300

    second = worker(db_url, streams, log, "--until-idle")
    try:
        assert second.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    uids = [line["uid"] for line in read_lines(path)]
    expected = stored_uids(app)
    assert list(dict.fromkeys(uids)) == expected  # nothing lost, nothing out of order
    assert uids[: len(at_kill)] == at_kill
    resumed = uids[len(at_kill)]
    assert uids[len(at_kill) :] == expected[expected.index(resumed) :]  # a re-send, then the rest
    assert expected.index(resumed) == 200  # the interrupted second batch, sent again whole
    assert len(uids) == len(expected) + 100
