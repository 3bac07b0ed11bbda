"""What prune removes, kept first: a gzip JSON-lines file, for its owner only, read back.

A prune with ``--archive`` (and each month a partitioned trail drops) writes the events it
is about to delete here; nothing is deleted unless the file reads back with the same ids in
the same order.
"""

from __future__ import annotations

import collections.abc as c
import gzip
import io
import json
import os
import pathlib
import typing as t

import sqlalchemy as sa

from ..exceptions import AuditError
from ..store.models import audit_event_table

_EVENTS = audit_event_table


def _archive_line(row: c.Mapping[t.Any, t.Any]) -> str:
    data = dict(row)
    data["occurred_at"] = row["occurred_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _owner_only(path: str, flags: int) -> int:
    """Open the archive being written for its owner only (0600): it holds audit data.

    A stale ``.partial`` left by a crash is narrowed too, since it becomes the archive."""
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def write_archive(
    engine: sa.Engine, path: str | os.PathLike[str], where: sa.ColumnElement[bool], batch: int
) -> int:
    """Write the events matching ``where`` to a new gzip JSON-lines file, then read it back.

    The file appears under its name only once it has been synced and re-read with the same
    ids in the same order; an existing file is never overwritten.

    :raises AuditError: the file exists, or did not read back as written.
    """
    target = pathlib.Path(path)
    if target.exists():
        raise AuditError(f"The archive {target} already exists: prune never overwrites an archive.")
    partial = target.with_name(target.name + ".partial")
    written: list[int] = []
    with open(partial, "wb", opener=_owner_only) as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb") as zipped, io.TextIOWrapper(zipped, "utf-8") as out:
            last: int | None = None
            while True:
                query = sa.select(_EVENTS).where(where)
                if last is not None:
                    query = query.where(_EVENTS.c.id > last)
                with engine.connect() as conn:
                    rows = conn.execute(query.order_by(_EVENTS.c.id).limit(batch)).all()
                if not rows:
                    break
                for row in rows:
                    out.write(_archive_line(row._mapping) + "\n")
                    written.append(int(row.id))
                last = written[-1]
        raw.flush()
        os.fsync(raw.fileno())
    with gzip.open(partial, "rt", encoding="utf-8") as back:
        read = [json.loads(line)["id"] for line in back]
    if read != written:
        partial.unlink()
        raise AuditError(
            f"The archive {target} did not read back as written ({len(read)} of {len(written)} events):"
            " nothing was deleted."
        )
    os.replace(partial, target)
    return len(written)
