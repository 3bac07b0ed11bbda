"""A sink of your own: every event into an SQLite table keyed by uid (docs/streaming.rst shows it)."""

from __future__ import annotations

import collections.abc as c
import sqlite3
import typing as t

from flask_audit.stream.wire import Message


class SqliteSink:
    """Stores each event once: a batch sent again (at least once) finds its uids already there."""

    def __init__(self, name: str, options: c.Mapping[str, t.Any]) -> None:
        self.db = sqlite3.connect(options["path"], check_same_thread=False)
        self.db.execute("CREATE TABLE IF NOT EXISTS audit (uid TEXT PRIMARY KEY, id INTEGER, body TEXT)")

    def send(self, messages: c.Sequence[Message]) -> None:
        with self.db:  # one transaction: the whole batch or none of it
            self.db.executemany(
                "INSERT OR IGNORE INTO audit (uid, id, body) VALUES (?, ?, ?)",
                [(m.uid, m.id, m.body.decode()) for m in messages],
            )

    def close(self) -> None:
        self.db.close()
