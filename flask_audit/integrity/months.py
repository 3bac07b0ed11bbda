"""Retention by the month on a partitioned trail: whole months go as tables, not as rows.

On a trail partitioned by :mod:`flask_audit.store.partitions`, a month that lies wholly
before the cutoff is removed by detaching and dropping its table: a catalog change instead of
millions of row deletions, no bloat, no long transaction. :func:`plan` decides, month by
month, oldest first; a month stays, with the reason, when

- any of its events is younger than the cutoff (the partition bounds already say so; the
  rows are asked too, so that a bound never stands in for the data);
- a tenant's longer window (``AUDIT_TENANT_RETENTION_DAYS``) keeps any of its events;
- it holds the newest event of the trail (ids never restart) or, on a sealed trail, an event
  that the seal prune made first does not cover;
- an archive is required and none was asked for;
- the account does not own the partition (the least-privilege role of
  :mod:`flask_audit.integrity.grants` cannot drop tables: the owner runs the monthly prune).

:func:`drop` then, per month: writes the archive (gzip JSON lines) and a manifest naming the
month, its id range, the seal links covering it and the archive's SHA-256, reads both back,
appends a ``prune`` link to the seal chain, detaches the partition and drops it. Rows of
months that are only partly old, and of the ``DEFAULT`` partition, are left to the batched
``DELETE`` of :mod:`flask_audit.integrity.retention`.

PostgreSQL refuses ``DETACH PARTITION ... CONCURRENTLY`` while the table has a ``DEFAULT``
partition, which the partitioned trail keeps so that no insert ever fails. The plain
``DETACH`` is a catalog change held for milliseconds, but it takes an ``ACCESS EXCLUSIVE``
lock on ``audit_event``; it runs on its own autocommit connection with a short
``lock_timeout`` and tries again, so that a writer waits at most that long behind it and a
long export only postpones the month. Without a ``DEFAULT`` partition it detaches
``CONCURRENTLY``.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import datetime as dt
import hashlib
import json
import os
import pathlib
import time
import typing as t

import sqlalchemy as sa

from ..exceptions import AuditError
from ..store import partitions
from ..store.models import audit_event_table
from ..store.models import audit_seal_table
from ..store.models import TABLE_NAME
from . import sealing
from .witness import SealWitness

_EVENTS = audit_event_table
#: How long a plain ``DETACH`` may wait for its lock before it lets writers go and tries again.
LOCK_TIMEOUT_MS = 100
DETACH_ATTEMPTS = 20


@dataclasses.dataclass(frozen=True)
class Month:
    """One month partition before the cutoff: what it holds and, if it stays, why."""

    name: str
    start: dt.date
    end: dt.date
    count: int
    first_id: int | None
    last_id: int | None
    kept: str | None = None  #: why the month stays (``None``: it goes)
    archive: str | None = None  #: the archive written for it


def _moment(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)


def _in_month(month: partitions.Partition | Month) -> sa.ColumnElement[bool]:
    """The month's range on ``audit_event``: PostgreSQL reads that partition alone."""
    start, end = t.cast(dt.date, month.start), t.cast(dt.date, month.end)
    return sa.and_(_EVENTS.c.occurred_at >= _moment(start), _EVENTS.c.occurred_at < _moment(end))


def owns(conn: sa.Connection, name: str) -> bool:
    query = "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class WHERE oid = to_regclass(:t)"
    return bool(conn.scalar(sa.text(query), {"t": name}))


def plan(
    conn: sa.Connection,
    cutoff: dt.datetime,
    *,
    keep: sa.ColumnElement[bool] | None,
    sealed_up_to: int | None,
    archive_missing: str | None = None,
) -> list[Month]:
    """The month partitions that end before ``cutoff``, oldest first, each with why it stays.

    :param keep: the events a tenant's longer window keeps (see ``retention._keep``).
    :param sealed_up_to: on a sealed trail, the highest sealed id (``None``: not sealed).
    :param archive_missing: why a month may not go unarchived (``None``: it may).
    """
    if not partitions.is_partitioned(conn):
        return []
    newest = conn.scalar(sa.select(sa.func.max(_EVENTS.c.id)))
    months = []
    for part in partitions.partitions(conn):
        if part.start is None or part.end is None or _moment(part.end) > cutoff:
            continue
        count, first, last, latest = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.min(_EVENTS.c.id),
                sa.func.max(_EVENTS.c.id),
                sa.func.max(_EVENTS.c.occurred_at),
            ).where(_in_month(part))
        ).one()
        month = Month(part.name, part.start, part.end, int(count), first, last)
        months.append(
            dataclasses.replace(
                month,
                kept=_why_kept(conn, month, latest, cutoff, keep, newest, sealed_up_to, archive_missing),
            )
        )
    return months


def _why_kept(
    conn: sa.Connection,
    month: Month,
    latest: dt.datetime | None,
    cutoff: dt.datetime,
    keep: sa.ColumnElement[bool] | None,
    newest: int | None,
    sealed_up_to: int | None,
    archive_missing: str | None,
) -> str | None:
    if latest is not None and latest >= cutoff:
        return "it holds events younger than the retention window"
    if keep is not None and conn.scalar(sa.select(sa.literal(1)).where(_in_month(month), keep).limit(1)):
        return "a tenant's longer retention window keeps some of its events"
    if month.last_id is not None and month.last_id == newest:
        return "it holds the newest event, which always stays"
    if sealed_up_to is not None and month.last_id is not None and month.last_id > sealed_up_to:
        return "it holds events committed after prune sealed the trail"
    if archive_missing is not None:
        return archive_missing
    if not owns(conn, month.name):
        return "this account does not own the partition: the owner of the audit tables prunes months"
    return None


def archive_path(base: str | os.PathLike[str], month: Month) -> pathlib.Path:
    """Where ``month``'s archive goes beside ``base``: ``trail.jsonl.gz`` -> ``trail.2026-01.jsonl.gz``."""
    target = pathlib.Path(base)
    stem = target.name.removesuffix(".gz").removesuffix(".jsonl")
    return target.with_name(f"{stem}.{month.start:%Y-%m}.jsonl.gz")


def manifest_path(archive: pathlib.Path) -> pathlib.Path:
    return archive.with_name(archive.name.removesuffix(".jsonl.gz") + ".manifest.json")


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as raw:
        for block in iter(lambda: raw.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _seal_links(conn: sa.Connection, month: Month) -> list[dict[str, t.Any]]:
    """The seal links whose id range overlaps the month's: what vouched for its events."""
    if month.first_id is None or month.last_id is None:
        return []
    seals = audit_seal_table.c
    query = (
        sa.select(seals.id, seals.first_id, seals.last_id, seals.hmac)
        .where(seals.kind == "seal", seals.last_id >= month.first_id, seals.first_id <= month.last_id)
        .order_by(seals.id)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def write_month_archive(
    engine: sa.Engine,
    base: str | os.PathLike[str],
    month: Month,
    batch: int,
    cutoff: dt.datetime,
    write: c.Callable[[sa.Engine, pathlib.Path, sa.ColumnElement[bool], int], int],
) -> pathlib.Path:
    """Archive ``month`` beside ``base`` with its manifest, and check both against the table.

    :raises AuditError: either file exists already, or the archive holds another number of
        events than the month.
    """
    path = archive_path(base, month)
    manifest = manifest_path(path)
    if manifest.exists():
        raise AuditError(f"The manifest {manifest} already exists: prune never overwrites an archive.")
    written = write(engine, path, _in_month(month), batch)
    if written != month.count:
        raise AuditError(
            f"The archive {path} holds {written} events but {month.name} held {month.count}:"
            " another process changed it while prune ran. The month is kept; run prune again."
        )
    with engine.connect() as conn:
        links = _seal_links(conn, month)
    record = {
        "table": TABLE_NAME,
        "partition": month.name,
        "from": month.start.isoformat(),
        "to": month.end.isoformat(),
        "cutoff": cutoff.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "events": month.count,
        "first_id": month.first_id,
        "last_id": month.last_id,
        "seals": links,
        "archive": path.name,
        "sha256": _sha256(path),
    }
    partial = manifest.with_name(manifest.name + ".partial")
    partial.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.chmod(partial, 0o600)
    if json.loads(partial.read_text(encoding="utf-8"))["sha256"] != _sha256(path):
        raise AuditError(f"The archive {path} changed while its manifest was written: the month is kept.")
    os.replace(partial, manifest)
    return path


def record_removal(
    engine: sa.Engine, key: bytes, month: Month, cutoff: dt.datetime, witness: SealWitness | None
) -> None:
    """Append the ``prune`` links for ``month``: the id prefix it completes, and its ids above.

    The prefix reaches up to the lowest id that stays anywhere in the trail, so the usual
    month (the oldest ids) is one link with no id list.
    """
    if month.first_id is None or month.last_id is None:
        return
    with engine.connect() as conn:
        staying = conn.scalar(sa.select(sa.func.min(_EVENTS.c.id)).where(sa.not_(_in_month(month))))
        prefix = month.last_id if staying is None else min(month.last_id, int(staying) - 1)
        above = list(
            conn.scalars(
                sa.select(_EVENTS.c.id).where(_in_month(month), _EVENTS.c.id > prefix).order_by(_EVENTS.c.id)
            )
        )
    sealing.append_prune(
        engine,
        key,
        first_id=month.first_id,
        last_id=prefix,
        count=month.count,
        cutoff=cutoff,
        removed=[int(each) for each in above],
        witness=witness,
    )


def _has_default(conn: sa.Connection) -> bool:
    return any(each.start is None for each in partitions.partitions(conn))


def _check_detached(conn: sa.Connection, month: Month) -> None:
    """Drop only what was archived and recorded: a month that gained events meanwhile stays."""
    held = int(conn.scalar(sa.text(f"SELECT count(*) FROM {month.name}")) or 0)
    if held != month.count:
        raise AuditError(
            f"{month.name} holds {held} events, not the {month.count} prune archived and recorded:"
            f" it is detached but kept. Attach it again with ALTER TABLE {TABLE_NAME} ATTACH PARTITION"
            f" {month.name} FOR VALUES FROM ('{month.start}') TO ('{month.end}'), then run prune again."
        )


def detach_and_drop(engine: sa.Engine, month: Month) -> None:
    """Detach ``month`` from ``audit_event`` and drop it, outside any transaction block.

    :raises AuditError: the lock could not be had in :data:`DETACH_ATTEMPTS` short tries.
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        concurrently = "" if _has_default(conn) else " CONCURRENTLY"
        detach = f"ALTER TABLE {TABLE_NAME} DETACH PARTITION {month.name}{concurrently}"
        conn.exec_driver_sql(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
        try:
            for attempt in range(DETACH_ATTEMPTS):
                try:
                    conn.exec_driver_sql(detach)
                    break
                except sa.exc.OperationalError as err:
                    if getattr(err.orig, "sqlstate", None) != "55P03":  # lock_not_available
                        raise
                    time.sleep(min(0.05 * 2**attempt, 2.0))
            else:
                raise AuditError(
                    f"Could not detach {month.name}: other sessions held {TABLE_NAME} for"
                    f" {DETACH_ATTEMPTS} tries. Its prune link is recorded; run prune again."
                )
            _check_detached(conn, month)
            conn.exec_driver_sql(f"DROP TABLE {month.name}")
        finally:
            conn.exec_driver_sql("RESET lock_timeout")
