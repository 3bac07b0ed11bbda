"""Arrival order: a row inserted after a seal and dated back into the sealed period.

Ids are drawn by the database as rows arrive, and seals cover ids, so the seals fix the
order in which rows arrived. A writer with nothing but ``INSERT`` can still add a row
today dated last month ("made sam an admin"); the next seal would take it in as genuine.
What gives it away is its date: earlier than events that arrived before it and were
already sealed.

The sealed period after a seal ends at the newest ``occurred_at`` it and the seals before
it cover, but never later than the time the seal was made (one host's fast clock cannot
move it forward). An event not marked ``late`` that arrived after that seal and is dated
more than ``AUDIT_LATE_AFTER_SECONDS`` before the period's end is flagged ``backdated``.
Events stored after the fact are marked ``late`` when they are written (see
:func:`flask_audit.store.rows.mark_late`), so a legitimate late write is never flagged.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import sqlalchemy as sa

from ..store.models import audit_event_table
from .canonical import iso_utc
from .canonical import Row

_EVENTS = audit_event_table


class Backdated(t.NamedTuple):
    """An event that arrived after a sealed period and is dated inside it."""

    event_id: int
    occurred_at: dt.datetime
    period_end: dt.datetime
    after_seal: int

    def message(self) -> str:
        return (
            f"Event {self.event_id} arrived after seal {self.after_seal} yet is dated"
            f" {iso_utc(self.occurred_at)}, inside the period sealed up to {iso_utc(self.period_end)},"
            " and is not marked late: it was inserted afterwards and backdated."
        )


class ArrivalCheck:
    """Walks the sealed events in id order, seal by seal, and finds the first backdated one."""

    def __init__(self, late_after_seconds: float) -> None:
        self.slack = dt.timedelta(seconds=late_after_seconds)
        self.period_end: dt.datetime | None = None  #: the sealed period so far
        self.after_seal: int | None = None  #: the seal that closed it
        self._newest: dt.datetime | None = None  #: the newest time seen in the current range

    def event(self, row: Row) -> Backdated | None:
        """Check one event of the range being walked; ``None`` if it is in order."""
        when = row["occurred_at"]
        if not isinstance(when, dt.datetime):
            return None  # an unreadable time is the seal check's finding, not this one's
        if self._newest is None or when > self._newest:
            self._newest = when
        return self._check(int(row["id"]), when, bool(row.get("late")))

    def close(self, seal: Row) -> None:
        """The range of ``seal`` is walked: its events now belong to the sealed period."""
        newest, sealed_at = self._newest, seal["sealed_at"]
        if newest is not None and isinstance(sealed_at, dt.datetime):
            end = min(newest, sealed_at)
            if self.period_end is None or end > self.period_end:
                self.period_end = end
        self.after_seal, self._newest = int(seal["id"]), None

    def unsealed(self, conn: sa.Connection, sealed_to: int) -> Backdated | None:
        """The first event after the last seal dated inside the sealed period, if any."""
        if self.period_end is None:
            return None
        query = (
            sa.select(_EVENTS.c.id, _EVENTS.c.occurred_at)
            .where(
                _EVENTS.c.id > sealed_to,
                _EVENTS.c.occurred_at < self.period_end - self.slack,
                _EVENTS.c.late == sa.false(),
            )
            .order_by(_EVENTS.c.id)
            .limit(1)
        )
        found = conn.execute(query).first()
        return None if found is None else self._check(int(found.id), found.occurred_at, False)

    def _check(self, event_id: int, when: dt.datetime, late: bool) -> Backdated | None:
        end, seal = self.period_end, self.after_seal
        if late or end is None or seal is None or when >= end - self.slack:
            return None
        return Backdated(event_id, when, end, seal)
