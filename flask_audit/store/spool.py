"""A durable local file for events the database refused, and their idempotent replay.

Each line is one event as JSON, written with ``fsync`` under an exclusive lock. Replay
inserts the events whose ``uid`` is not stored yet, so running it twice, or after a crash
half-way, never duplicates an event.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import os
import typing as t

import sqlalchemy as sa

from ..exceptions import AuditWriteError
from .models import audit_event_table

REPLAY_BATCH = 500


@dataclasses.dataclass
class ReplayResult:
    """What one replay did: events inserted, already present, and unreadable lines kept aside."""

    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0


def _encode(row: c.Mapping[str, t.Any]) -> str:
    data = dict(row)
    data["occurred_at"] = t.cast(dt.datetime, row["occurred_at"]).isoformat()
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _decode(line: str) -> dict[str, t.Any]:
    data = json.loads(line)
    if not isinstance(data, dict) or "uid" not in data or "event_type" not in data:
        raise ValueError("not a spooled event")
    data["occurred_at"] = dt.datetime.fromisoformat(data["occurred_at"])
    data.pop("id", None)
    return data


def _private(path: str, flags: int) -> int:
    """Create files for the owner only (0600): spooled events are audit data. An existing
    file keeps its mode, so a deliberately wider one (a log shipper's group) stays so."""
    return os.open(path, flags, 0o600)


@contextlib.contextmanager
def _locked(path: str, mode: str) -> c.Iterator[t.IO[str]]:
    with open(path, mode, encoding="utf-8", opener=_private) as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield fh
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def append(path: str, row: c.Mapping[str, t.Any]) -> None:
    """Append one event and ``fsync`` it; raise :class:`AuditWriteError` if that fails."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with _locked(path, "a") as fh:
            fh.write(_encode(row) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        raise AuditWriteError(
            f"The audit event could not be stored in the database nor spooled to {path!r}:"
            f" {err.strerror or err}. Make AUDIT_SPOOL_PATH writable."
        ) from err


def pending(path: str) -> int:
    """How many lines wait in the spool."""
    if not os.path.exists(path):
        return 0
    with open(path, encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def replay(path: str, engine: sa.Engine) -> ReplayResult:
    """Insert the spooled events not yet stored, then empty the spool.

    Unreadable lines (a write torn by a crash) go to ``<path>.rejected`` for a person to read.
    """
    result = ReplayResult()
    if not os.path.exists(path):
        return result
    with _locked(path, "r+") as fh:
        rows: list[dict[str, t.Any]] = []
        rejected: list[str] = []
        for line in fh:
            if not line.strip():
                continue
            try:
                rows.append({**_decode(line), "late": True})  # stored after the fact
            except (ValueError, TypeError, KeyError):
                rejected.append(line if line.endswith("\n") else line + "\n")
        for start in range(0, len(rows), REPLAY_BATCH):
            inserted = _insert_missing(engine, rows[start : start + REPLAY_BATCH])
            result.inserted += inserted
            result.duplicates += len(rows[start : start + REPLAY_BATCH]) - inserted
        if rejected:
            with open(path + ".rejected", "a", encoding="utf-8", opener=_private) as bad:
                bad.writelines(rejected)
            result.rejected = len(rejected)
        fh.seek(0)
        fh.truncate()
        os.fsync(fh.fileno())
    return result


def _insert_missing(engine: sa.Engine, rows: list[dict[str, t.Any]]) -> int:
    table = audit_event_table
    with engine.begin() as conn:
        uids = [row["uid"] for row in rows]
        present = set(conn.scalars(sa.select(table.c.uid).where(table.c.uid.in_(uids))))
        fresh = {row["uid"]: row for row in rows if row["uid"] not in present}
        if fresh:
            conn.execute(sa.insert(table), list(fresh.values()))
    return len(fresh)
