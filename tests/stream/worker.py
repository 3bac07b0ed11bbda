"""A stream worker in a process of its own, for the SIGKILL test.

``python -m tests.stream.worker DATABASE_URL STREAMS_JSON [--until-idle]``. Its sink writes
line by line, so that a kill lands in the middle of a batch.
"""

from __future__ import annotations

import collections.abc as c
import json
import os
import sys
import threading
import time
import typing as t

from flask_audit.stream.relay import Relay
from flask_audit.stream.settings import load_destinations
from flask_audit.stream.sinks.files import JsonLinesSink
from flask_audit.stream.wire import Message

from ..apps import create_app


class SlowLines(JsonLinesSink):
    """JSON lines written and flushed one by one; with ``stall_after``, it hangs after that
    many lines, so that a kill then lands inside a batch for certain."""

    def __init__(self, name: str, options: c.Mapping[str, t.Any]) -> None:
        super().__init__(name, options)
        self.stall_after = options.get("stall_after")
        self.written = 0

    def send(self, messages: c.Sequence[Message]) -> None:
        out = self._open()
        for message in messages:
            out.write(message.body + b"\n")
            out.flush()
            self.written += 1
            if self.written == self.stall_after:
                time.sleep(3600)
        os.fsync(out.fileno())


def main(argv: list[str]) -> None:
    url, streams = argv[0], json.loads(argv[1])
    app = create_app(SQLALCHEMY_DATABASE_URI=url, AUDIT_STREAMS=streams, AUDIT_SEAL_WITNESS=False)
    with app.app_context():
        (destination,) = load_destinations(app).values()
        Relay(app, destination).run(threading.Event(), until_idle="--until-idle" in argv)


if __name__ == "__main__":
    main(sys.argv[1:])
