"""The ``audit_stream`` rows: each destination's cursor, lease, pause flag and failures.

Every change is one short UPDATE whose WHERE clause states what must still hold (the
lease is ours and unexpired, the cursor is where we read it), so that a worker that lost
its lease, or was paused, can never move the cursor behind another's back.

Lease times are read from the workers' clocks: keep the hosts' clocks in step (NTP) to
well within ``lease_seconds``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t

import sqlalchemy as sa

from ..store.models import audit_event_table
from ..store.models import stream_table

_STREAMS = stream_table
_EVENTS = audit_event_table
ERROR_LENGTH = 1000


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class StreamRow:
    """One destination's row as read."""

    name: str
    cursor: int
    lease_holder: str | None
    lease_until: dt.datetime | None
    paused: bool
    last_error: str | None
    failing_since: dt.datetime | None
    failures: int
    alerted: bool
    delivered: int
    delivered_at: dt.datetime | None
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: t.Any) -> StreamRow:
        return cls(**{field.name: getattr(row, field.name) for field in dataclasses.fields(cls)})


def _fresh(name: str) -> dict[str, t.Any]:
    return {
        "name": name,
        "cursor": 0,
        "paused": False,
        "failures": 0,
        "alerted": False,
        "delivered": 0,
        "updated_at": utcnow(),
    }


def ensure(engine: sa.Engine, name: str) -> None:
    """Create ``name``'s row at cursor 0 (every retained event) unless it exists."""
    with engine.connect() as conn:
        if conn.scalar(sa.select(_STREAMS.c.name).where(_STREAMS.c.name == name)) is not None:
            return
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(_STREAMS), _fresh(name))
    except sa.exc.IntegrityError:
        pass  # another worker made it first


def read(engine: sa.Engine, name: str) -> StreamRow | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(_STREAMS).where(_STREAMS.c.name == name)).one_or_none()
    return None if row is None else StreamRow.of(row)


def read_all(engine: sa.Engine) -> dict[str, StreamRow]:
    with engine.connect() as conn:
        return {row.name: StreamRow.of(row) for row in conn.execute(sa.select(_STREAMS))}


def _update(engine: sa.Engine, where: t.Any, **values: t.Any) -> bool:
    with engine.begin() as conn:
        result = conn.execute(sa.update(_STREAMS).where(where).values(updated_at=utcnow(), **values))
    return result.rowcount == 1


def _ours(name: str, holder: str, now: dt.datetime) -> t.Any:
    c = _STREAMS.c
    return sa.and_(c.name == name, c.lease_holder == holder, c.lease_until >= now)


def take_lease(engine: sa.Engine, name: str, holder: str, seconds: float) -> StreamRow | None:
    """Take or renew ``name``'s lease for ``seconds``; the row, or ``None`` if another holds it."""
    ensure(engine, name)
    now = utcnow()
    c = _STREAMS.c
    free = sa.or_(c.lease_holder.is_(None), c.lease_holder == holder, c.lease_until < now)
    until = now + dt.timedelta(seconds=seconds)
    if not _update(engine, sa.and_(c.name == name, free), lease_holder=holder, lease_until=until):
        return None
    return read(engine, name)


def advance(
    engine: sa.Engine, name: str, holder: str, *, old: int, new: int, delivered: int, lease_seconds: float
) -> bool:
    """Move the cursor from ``old`` to ``new`` and renew the lease, only while it is ours.

    Clears the failure: a batch went through. ``False`` when the lease expired or was taken,
    or the cursor moved meanwhile (a backfill): nothing changes, the batch will be re-read.
    """
    now = utcnow()
    c = _STREAMS.c
    return _update(
        engine,
        sa.and_(_ours(name, holder, now), c.cursor == old),
        cursor=new,
        delivered=c.delivered + delivered,
        delivered_at=now if delivered else c.delivered_at,
        lease_until=now + dt.timedelta(seconds=lease_seconds),
        last_error=None,
        failing_since=None,
        failures=0,
        alerted=False,
    )


def fail(engine: sa.Engine, name: str, holder: str, error: str) -> StreamRow | None:
    """Note a failed delivery; the row after it (``failing_since`` kept from the first failure)."""
    c = _STREAMS.c
    now = utcnow()
    _update(
        engine,
        _ours(name, holder, now),
        last_error=error[:ERROR_LENGTH],
        failures=c.failures + 1,
        failing_since=sa.func.coalesce(c.failing_since, now),
    )
    return read(engine, name)


def mark_alerted(engine: sa.Engine, name: str) -> bool:
    """Note that the failure was reported; ``False`` if it already was (by another worker)."""
    c = _STREAMS.c
    return _update(
        engine, sa.and_(c.name == name, c.alerted.is_(False), c.failing_since.is_not(None)), alerted=True
    )


def release(engine: sa.Engine, name: str, holder: str) -> None:
    """Give the lease up, so that another worker can start at once."""
    c = _STREAMS.c
    _update(engine, sa.and_(c.name == name, c.lease_holder == holder), lease_holder=None, lease_until=None)


def set_paused(engine: sa.Engine, name: str, paused: bool) -> bool:
    """Pause or resume ``name``; ``False`` if it already was."""
    ensure(engine, name)
    c = _STREAMS.c
    return _update(engine, sa.and_(c.name == name, c.paused.is_(not paused)), paused=paused)


def first_id_since(engine: sa.Engine, since: dt.datetime) -> int | None:
    """The lowest id of an event that occurred at or after ``since``."""
    with engine.connect() as conn:
        found = conn.scalar(sa.select(sa.func.min(_EVENTS.c.id)).where(_EVENTS.c.occurred_at >= since))
    return None if found is None else int(found)


def rewind(engine: sa.Engine, name: str, since: dt.datetime) -> tuple[int, int]:
    """Move ``name``'s cursor back to just before the first event since ``since``.

    Never forward: a later date than the cursor changes nothing. A worker holding the lease
    finds the cursor moved and re-reads from there. Returns the old and the new cursor.
    """
    ensure(engine, name)
    first = first_id_since(engine, since)
    with engine.begin() as conn:
        query = sa.select(_STREAMS.c.cursor).where(_STREAMS.c.name == name).with_for_update()
        old = int(conn.execute(query).scalar_one())
        new = old if first is None else min(old, first - 1)
        if new != old:
            conn.execute(
                sa.update(_STREAMS).where(_STREAMS.c.name == name).values(cursor=new, updated_at=utcnow())
            )
    return old, new
