"""Helpers for the stream tests: bulk events, a webhook receiver, the message servers."""

from __future__ import annotations

import base64
import collections.abc as c
import contextlib
import http.server
import json
import os
import pathlib
import socket
import threading
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from flask_audit.state import audit_state
from flask_audit.store.models import audit_event_table
from flask_audit.store.rows import build_row
from flask_audit.stream.relay import Relay
from flask_audit.stream.settings import load_destinations

from ..conftest import IN_CI

EVENTS = audit_event_table
NATS_URL = os.environ.get("FLASK_AUDIT_NATS_URL", "nats://127.0.0.1:4222")
AMQP_URL = os.environ.get("FLASK_AUDIT_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
SECRET = "whsec_" + base64.b64encode(b"a-webhook-secret-of-32-bytes-len").decode()
#: How many events the larger runs stream; FLASK_AUDIT_STREAM_EVENTS raises it for a longer run.
RUN_SIZE = int(os.environ.get("FLASK_AUDIT_STREAM_EVENTS", "2000"))


def add_events(app: Flask, count: int, *, event_type: str = "team.created", **fields: t.Any) -> list[str]:
    """``count`` events inserted in bulk, as a burst of writers would; their uids."""
    with app.app_context():
        state = audit_state(app)
        engine = state.engine
        rows = [
            build_row(state.config, event_type, details={"n": n}, actor=None, **fields) for n in range(count)
        ]
    with engine.begin() as conn:
        for start in range(0, count, 1000):
            conn.execute(sa.insert(EVENTS), rows[start : start + 1000])
    return [row["uid"] for row in rows]


def stored_uids(app: Flask) -> list[str]:
    """Every stored event's uid, in id order."""
    with engine_of(app).connect() as conn:
        return list(conn.scalars(sa.select(EVENTS.c.uid).order_by(EVENTS.c.id)))


def engine_of(app: Flask) -> sa.Engine:
    with app.app_context():
        return audit_state(app).engine


def relay(app: Flask, name: str, **kwargs: t.Any) -> Relay:
    return Relay(app, load_destinations(app)[name], **kwargs)


def drain(app: Flask, name: str, **kwargs: t.Any) -> None:
    """Run one worker for ``name`` until it has caught up."""
    stop = threading.Event()
    with app.app_context():
        relay(app, name, **kwargs).run(stop, until_idle=True)


def read_lines(path: pathlib.Path) -> list[dict[str, t.Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def require_port(url_host: str, port: int, what: str) -> None:
    """Fail under CI=true, skip elsewhere, when ``what`` is not listening."""
    try:
        with socket.create_connection((url_host, port), timeout=2):
            return
    except OSError as err:
        reason = f"{what} at {url_host}:{port} is unreachable: {err}"
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing server is a failure)", pytrace=False)
    pytest.skip(reason)


class Receiver:
    """A webhook receiver on a loopback port that verifies every signature it gets."""

    def __init__(self, port: int = 0) -> None:
        self.received: list[dict[str, t.Any]] = []
        self.ids: list[str] = []
        self.refused = 0
        self.lock = threading.Lock()
        self.port = port
        self._server: http.server.ThreadingHTTPServer | None = None
        self.verifier = Webhook(SECRET)
        self.down = False

    def start(self) -> None:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                if owner.down:  # stopped: drop even kept-alive connections, unanswered
                    self.close_connection = True
                    return
                body = self.rfile.read(int(self.headers["content-length"]))
                try:
                    payload = owner.verifier.verify(body, dict(self.headers.items()))
                    status = 204
                except WebhookVerificationError:
                    payload, status = None, 401
                with owner.lock:
                    if payload is None:
                        owner.refused += 1
                    else:
                        if payload["uid"] != self.headers["webhook-id"]:
                            status = 400
                        owner.received.append(payload)
                        owner.ids.append(self.headers["webhook-id"])
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: t.Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.down = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/audit"


@contextlib.contextmanager
def receiver() -> c.Iterator[Receiver]:
    found = Receiver()
    found.start()
    try:
        yield found
    finally:
        found.stop()
