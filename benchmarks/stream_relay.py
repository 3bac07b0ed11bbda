"""Events per second that one stream worker relays to each sink, from a table of ``--events``.

The table is filled as ``prune_bench.py`` fills it. Then, for each sink in ``--sinks``, a
destination starting at cursor 0 is drained by one worker (``Relay.run(until_idle=True)``)
and timed: ``jsonl`` (a file, fsynced per batch), ``webhook`` (a loopback receiver that
answers 204), ``otlp`` (the same receiver, one JSON ``ExportLogsServiceRequest`` per
batch), ``nats`` (a JetStream stream of its own on ``FLASK_AUDIT_NATS_URL``),
``rabbitmq`` (a durable queue of its own on ``FLASK_AUDIT_AMQP_URL``) and ``null`` (the
worker's own cost: read, encode, cursor). Each database is run ``--repeats`` times.

    .venv/bin/python benchmarks/stream_relay.py --events 20000 --sinks jsonl,webhook,otlp,nats,rabbitmq
"""

from __future__ import annotations

import argparse
import asyncio
import collections.abc as c
import contextlib
import http.server
import os
import tempfile
import threading
import time
import typing as t
import uuid

import _common as common
import prune_bench
from flask import Flask

from flask_audit.stream.relay import Relay
from flask_audit.stream.settings import load_destinations
from flask_audit.stream.wire import Message

NATS_URL = os.environ.get("FLASK_AUDIT_NATS_URL", "nats://127.0.0.1:4222")
AMQP_URL = os.environ.get("FLASK_AUDIT_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
SECRET = "whsec_YmVuY2htYXJrLXdlYmhvb2stc2VjcmV0LTMyYnl0ZXM="
SINKS = ("null", "jsonl", "webhook", "otlp", "nats", "rabbitmq")


class NullSink:
    """Accepts everything: what is left is the worker's own cost."""

    def __init__(self, name: str, options: c.Mapping[str, t.Any]) -> None:
        self.count = 0

    def send(self, messages: c.Sequence[Message]) -> None:
        self.count += len(messages)

    def close(self) -> None:
        pass


class _Accept(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: t.Any) -> None:
        pass


@contextlib.contextmanager
def receiver() -> c.Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


async def _nats_stream(name: str, subject: str, create: bool) -> None:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        if create:
            await js.add_stream(name=name, subjects=[subject])
        else:
            await js.delete_stream(name)
    finally:
        await nc.close()


async def _delete_queue(queue: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        await channel.queue_delete(queue)
    finally:
        await connection.close()


@contextlib.contextmanager
def destination(sink: str, folder: str) -> c.Iterator[dict[str, t.Any]]:
    """The ``AUDIT_STREAMS`` entry for ``sink``, with its peer set up and removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    if sink == "null":
        yield {"sink": NullSink}
    elif sink == "jsonl":
        yield {"sink": "jsonl", "path": os.path.join(folder, f"{tag}.jsonl")}
    elif sink == "webhook":
        with receiver() as url:
            yield {"sink": "webhook", "url": url, "secret": SECRET}
    elif sink == "otlp":
        with receiver() as url:
            yield {"sink": "otlp", "endpoint": url}
    elif sink == "nats":
        name, subject = f"bench_{tag}", f"bench_{tag}.events"
        asyncio.run(_nats_stream(name, subject, True))
        try:
            yield {"sink": "nats", "servers": NATS_URL, "subject": subject}
        finally:
            asyncio.run(_nats_stream(name, subject, False))
    else:
        queue = f"bench-{tag}"
        try:
            yield {"sink": "rabbitmq", "url": AMQP_URL, "queue": queue}
        finally:
            asyncio.run(_delete_queue(queue))


def relay_rate(app: Flask, sink: str, batch: int, folder: str) -> float:
    """Events per second one worker relays to ``sink``, from cursor 0 to the newest event."""
    with destination(sink, folder) as spec:
        name = f"bench-{sink}-{uuid.uuid4().hex[:6]}"
        app.config["AUDIT_STREAMS"] = {name: {**spec, "batch_size": batch, "poll_seconds": 0.01}}
        worker = Relay(app, load_destinations(app)[name])
        began = time.perf_counter()
        with app.app_context():
            worker.run(threading.Event(), until_idle=True)
        seconds = time.perf_counter() - began
        with app.app_context():
            delivered = prune_bench.count(app)
    return delivered / seconds


def run_once(kind: str, args: argparse.Namespace) -> dict[str, t.Any]:
    with common.fresh_database(kind) as url, tempfile.TemporaryDirectory(prefix="fa_stream_") as folder:
        app = prune_bench.make_app(kind, url, sealed=False)
        prune_bench.fill(app, args.events, 10_000)
        rates = {sink: relay_rate(app, sink, args.batch_size, folder) for sink in args.sinks}
        with app.app_context():
            setting = common.describe(common.db.engine)
        common.dispose(app)
    return {"database": setting, **{f"{sink}_events_per_s": rate for sink, rate in rates.items()}}


def run_database(kind: str, args: argparse.Namespace) -> dict[str, t.Any]:
    runs = [run_once(kind, args) for _ in range(args.repeats)]
    names = [name for name in runs[0] if name.endswith("_per_s")]
    return {
        **{name: round(common.median(run[name] for run in runs)) for name in names},
        "runs": [{name: round(run[name]) if name in names else run[name] for name in run} for run in runs],
    }


def sinks(text: str) -> list[str]:
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SINKS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"choose among {', '.join(SINKS)}, not {', '.join(unknown) or text!r}"
        )
    return chosen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=common.positive, default=20_000, help="events in the table")
    parser.add_argument("--batch-size", type=common.positive, default=500, help="events per batch")
    parser.add_argument(
        "--sinks", type=sinks, default=list(SINKS), help=f"comma-separated: {','.join(SINKS)}"
    )
    parser.add_argument("--repeats", type=common.positive, default=1, help="fresh databases per backend")
    common.add_db_option(parser)
    args = parser.parse_args(argv)
    results = common.run_each(args.db, lambda kind: run_database(kind, args))
    options = {"events": args.events, "batch_size": args.batch_size, "sinks": args.sinks}
    common.emit("stream_relay", options, results)


if __name__ == "__main__":
    main()
