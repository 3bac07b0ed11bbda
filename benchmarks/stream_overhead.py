"""``record()`` and a Flask-Login sign-in, with and without three destinations streaming.

One audited app (the ``audited`` app of ``login_overhead.py``: ``POST /login`` looks the
user up, checks the password and calls ``login_user``, which records ``user.login``) on a
fresh database. Each repeat runs two phases, in an order that rotates:

* ``quiet``: no stream worker runs;
* ``streaming``: a worker process (this script with ``--worker``, as ``flask audit stream
  run`` would be, a process of its own) relays to three destinations at once: ``jsonl`` (a
  file, fsynced per batch), ``webhook`` (a loopback receiver in the worker process that
  answers 204) and ``nats`` (a JetStream stream of its own on ``FLASK_AUDIT_NATS_URL``).

In each phase ``--calls`` sign-ins (``app.test_client()``, no cookies kept) and ``--calls``
``record()`` calls (in one request context) are timed one by one, in wall time and in the
calling thread's CPU time (``*_cpu``). The output gives the median microseconds of each
phase, the ratios ``streaming / quiet``, and the SQL statements the app sends per call
(mean): the same count and CPU ratios near 1.0 say the write path does no more work while
streaming; the wall-time ratios add what the worker, the peers and the database's extra
reads take from a machine with few cores. At the end, after a last worker
run catches up, it gives how many events each destination got.

    .venv/bin/python benchmarks/stream_overhead.py --calls 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
import uuid

import _common as common
import login_overhead as lo
import sqlalchemy as sa
import stream_relay
from flask import Flask
from flask_login import user_logged_in

from flask_audit.store.models import audit_event_table
from flask_audit.stream import stream_status
from flask_audit.stream.relay import Relay
from flask_audit.stream.settings import load_destinations

PHASES = ("quiet", "streaming")
SINKS = ("jsonl", "webhook", "nats")
audit = lo.audit


def streams(folder: str, subject: str, webhook_url: str) -> dict[str, dict[str, t.Any]]:
    """The three destinations (the parent only reads their state: its webhook URL is unused)."""
    common_options = {"poll_seconds": 0.05, "batch_size": 500}
    return {
        "jsonl": {"sink": "jsonl", "path": os.path.join(folder, "audit.jsonl"), **common_options},
        "webhook": {"sink": "webhook", "url": webhook_url, "secret": stream_relay.SECRET, **common_options},
        "nats": {"sink": "nats", "servers": stream_relay.NATS_URL, "subject": subject, **common_options},
    }


def build_app(url: str, config: dict[str, t.Any]) -> Flask:
    app = common.new_app("stream_overhead", url)
    app.config.update(config)
    app.add_url_rule("/login", view_func=lo.login_view, methods=["POST"])
    before = len(list(user_logged_in.receivers_for(app)))
    audit.init_app(app)
    if len(list(user_logged_in.receivers_for(app))) == before:  # no capture: record it ourselves
        user_logged_in.connect(
            lambda sender, **extra: audit.record("user.login", details={"method": "password"}),
            app,
            weak=False,
        )
    with app.app_context():
        common.db.create_all()
    return app


Samples = dict[str, list[float]]
MEASURES = ("login", "login_cpu", "login_sql", "record", "record_cpu", "record_sql")


class StatementCount:
    """SQL statements this process sends, on every engine: the write path's own work."""

    def __init__(self) -> None:
        self.count = 0
        sa.event.listen(sa.Engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: t.Any) -> None:
        self.count += 1


STATEMENTS = StatementCount()


def _timed(samples: Samples, name: str, call: t.Callable[[], t.Any]) -> t.Any:
    """``call()``: its wall and CPU microseconds appended to ``samples[name]`` and
    ``[name_cpu]``, its SQL statements to ``[name_sql]``."""
    statements, wall, cpu = STATEMENTS.count, time.perf_counter_ns(), time.thread_time_ns()
    result = call()
    samples[f"{name}_cpu"].append((time.thread_time_ns() - cpu) / 1000)
    samples[name].append((time.perf_counter_ns() - wall) / 1000)
    samples[f"{name}_sql"].append(STATEMENTS.count - statements)
    return result


def phase(app: Flask, n: int, samples: Samples) -> None:
    """``n`` sign-ins, then ``n`` ``record()`` calls in one request context, each timed."""
    gc.collect()
    client = app.test_client(use_cookies=False)
    for _ in range(n):
        response = _timed(
            samples, "login", lambda: client.post("/login", data=lo.FORM, environ_base=lo.ENVIRON)
        )
        if response.status_code != 200:
            raise RuntimeError(f"POST /login answered {response.status}")
    with app.test_request_context("/", environ_base=lo.ENVIRON):
        for number in range(n):
            record = functools.partial(audit.record, "team.updated", team="core", details={"n": number})
            _timed(samples, "record", record)


# -- the worker process ----------------------------------------------------------------------


def worker_main(url: str, folder: str, subject: str) -> None:
    """Relay to the three destinations until standard input closes; the webhook peer lives here."""
    with stream_relay.receiver() as hook:
        app = common.new_app("stream_worker", url)
        app.config["AUDIT_STREAMS"] = streams(folder, subject, hook)
        audit.init_app(app)
        destinations = load_destinations(app)
        stop = threading.Event()
        relays = [Relay(app, destinations[name]) for name in SINKS]
        threads = [threading.Thread(target=each.run, args=(stop,)) for each in relays]
        for thread in threads:
            thread.start()
        print("ready", flush=True)
        sys.stdin.read()  # the parent closes it to stop us
        stop.set()
        for thread in threads:
            thread.join(60)


@contextlib.contextmanager
def worker(url: str, folder: str, subject: str) -> t.Iterator[None]:
    """The worker process, ready, for the duration of the block."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", url, folder, subject]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdin is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("the stream worker did not start")
        yield
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()


def caught_up(app: Flask, timeout: float = 300) -> dict[str, dict[str, t.Any]]:
    """Each destination's cursor, lag and delivered count once no lag is left (or the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            found = {each.name: each for each in stream_status()}
        if all(each.lag_events == 0 for each in found.values()) or time.monotonic() > deadline:
            return {
                name: {"delivered": each.delivered, "lag_events": each.lag_events, "error": each.last_error}
                for name, each in found.items()
            }
        time.sleep(0.2)


# -- the run ------------------------------------------------------------------------------------


def run_database(kind: str, args: argparse.Namespace) -> dict[str, t.Any]:
    tag = uuid.uuid4().hex[:8]
    name, subject = f"bench_{tag}", f"bench_{tag}.events"
    asyncio.run(stream_relay._nats_stream(name, subject, True))
    try:
        with common.fresh_database(kind) as url, tempfile.TemporaryDirectory(prefix="fa_overhead_") as folder:
            app = build_app(url, {"AUDIT_STREAMS": streams(folder, subject, "http://127.0.0.1:9/")})
            common.add_user(app, lo.FORM["email"])
            phase(app, lo.WARMUP, {name: [] for name in MEASURES})
            samples: dict[str, Samples] = {p: {name: [] for name in MEASURES} for p in PHASES}
            for repeat in range(args.repeats):
                for which in common.rotated(PHASES, repeat):
                    if which == "streaming":
                        with worker(url, folder, subject):
                            time.sleep(0.5)  # the worker has started reading
                            phase(app, args.calls, samples[which])
                    else:
                        phase(app, args.calls, samples[which])
            with worker(url, folder, subject):
                delivered = caught_up(app)
            with app.app_context():
                stored = common.db.session.scalar(sa.select(sa.func.count()).select_from(audit_event_table))
                setting = common.describe(common.db.engine)
            common.dispose(app)
    finally:
        asyncio.run(stream_relay._nats_stream(name, subject, False))
    timed = [what for what in MEASURES if not what.endswith("_sql")]
    med = {p: {what: round(common.median(samples[p][what]), 1) for what in timed} for p in PHASES}
    sql = {
        p: {
            what[:-4]: round(sum(samples[p][what]) / len(samples[p][what]), 3)
            for what in MEASURES
            if what[-4:] == "_sql"
        }
        for p in PHASES
    }
    return {
        "database": setting,
        "median_us": med,
        "ratio_streaming_vs_quiet": {
            what: round(med["streaming"][what] / med["quiet"][what], 3) for what in timed
        },
        "sql_statements_per_call": sql,
        "events_stored": stored,
        "destinations": delivered,
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        worker_main(*argv[1:4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=common.positive, default=2000, help="sign-ins and records per phase")
    parser.add_argument(
        "--repeats", type=common.positive, default=3, help="interleaved repeats of each phase"
    )
    common.add_db_option(parser)
    args = parser.parse_args(argv)
    results = common.run_each(args.db, functools.partial(run_database, args=args))
    common.emit("stream_overhead", {"calls": args.calls, "repeats": args.repeats, "sinks": SINKS}, results)


if __name__ == "__main__":
    main()
