"""A small local file noting what ``flask audit status`` cannot read from the database.

A write failure happens when the database may be unreachable, and a verify result comes
from another process: both are noted in ``AUDIT_HEALTH_FILE`` (JSON, written whole under a
lock, owner-only), where the status command, run by a monitor, finds them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import typing as t

WRITE_FAILED = "write_failed"
VERIFY = "verify"
_REASON_LENGTH = 500


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _open(path: str) -> int:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


def read(path: str) -> dict[str, t.Any]:
    """Everything noted so far; empty when nothing was, or the file cannot be read."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _update(path: str, name: str, change: t.Callable[[dict[str, t.Any] | None], dict[str, t.Any]]) -> None:
    fd = _open(path)
    with os.fdopen(fd, "r+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            try:
                data = json.loads(fh.read() or "{}")
            except ValueError:
                data = {}
            data = data if isinstance(data, dict) else {}
            data[name] = change(data.get(name))
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(data, ensure_ascii=False))
            fh.flush()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def note_write_failure(path: str, reason: str, now: dt.datetime | None = None) -> None:
    """Count one write failure; never raises (it runs while an event is being refused)."""
    at = (now or utcnow()).isoformat()

    def change(old: dict[str, t.Any] | None) -> dict[str, t.Any]:
        count = int((old or {}).get("count", 0)) + 1
        return {
            "count": count,
            "first": (old or {}).get("first", at),
            "last": at,
            "reason": reason[:_REASON_LENGTH],
        }

    with contextlib.suppress(OSError):
        _update(path, WRITE_FAILED, change)


def note_verify(path: str, ok: bool, message: str, now: dt.datetime | None = None) -> None:
    """Keep the outcome of the latest verification."""
    at = (now or utcnow()).isoformat()
    _update(path, VERIFY, lambda old: {"at": at, "ok": ok, "message": message[:_REASON_LENGTH]})


def when(entry: dict[str, t.Any] | None, field: str) -> dt.datetime | None:
    """A noted time, or None if absent or unreadable."""
    try:
        return dt.datetime.fromisoformat(str((entry or {})[field]))
    except (KeyError, ValueError):
        return None
