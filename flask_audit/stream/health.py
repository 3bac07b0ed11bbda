"""Each destination's health, and the pipeline's own troubles as audit events.

:func:`stream_status` serves the admin page and ``flask audit stream status``. Pausing,
resuming, rewinding, a destination failing for longer than ``AUDIT_STREAM_ALERT_AFTER``
and its recovery are recorded in the trail itself (entity "Audit log"), so they are
streamed like any other event (to the failing destination too, once it recovers).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t

import sqlalchemy as sa
from flask import current_app
from flask import Flask

from ..admin.api import iso_utc
from ..state import audit_state
from ..state import current_audit
from ..store.models import audit_event_table
from . import cursor
from .settings import load_destinations

_EVENTS = audit_event_table
_ENTITY = "Audit log"

#: The pipeline's own event types: (action, outcome, activity).
STREAM_EVENTS: dict[str, tuple[str, str, str]] = {
    "audit.stream_failing": ("update", "failure", "An audit log stream is failing"),
    "audit.stream_recovered": ("update", "success", "An audit log stream recovered"),
    "audit.stream_paused": ("update", "success", "Paused an audit log stream"),
    "audit.stream_resumed": ("update", "success", "Resumed an audit log stream"),
    "audit.stream_rewound": ("update", "success", "Rewound an audit log stream"),
}


def record_stream_event(event_type: str, name: str, activity: str | None = None, **details: t.Any) -> None:
    """Record one of :data:`STREAM_EVENTS` about destination ``name`` (in an app context)."""
    action, outcome, default = STREAM_EVENTS[event_type]
    current_audit().record(
        event_type,
        entity=_ENTITY,
        action=action,
        outcome=outcome,
        activity=activity or f"{default}: {name}",
        target=("stream", name),
        details={"stream": name, **details},
    )


def record_failing(name: str, state: cursor.StreamRow, seconds: float) -> None:
    since = state.failing_since
    record_stream_event(
        "audit.stream_failing",
        name,
        f"Audit log stream {name} has been failing for {int(seconds)} s",
        error=state.last_error,
        failing_since=iso_utc(since) if since else None,
        cursor=state.cursor,
    )


def record_recovered(name: str, state: cursor.StreamRow) -> None:
    since = state.failing_since
    record_stream_event("audit.stream_recovered", name, failing_since=iso_utc(since) if since else None)


@dataclasses.dataclass(frozen=True)
class StreamStatus:
    """One destination as the admin page and the CLI show it.

    ``state`` is ``paused``, ``failing`` (the last batch failed), ``running`` (a worker holds
    the lease), ``stopped`` (no worker) or ``new`` (no worker ever ran). ``lag_events`` is how
    many events wait after the cursor (filtered-out ones included); ``lag_seconds`` how long
    the oldest of them has waited.
    """

    name: str
    configured: bool
    state: str
    cursor: int
    lag_events: int
    lag_seconds: float
    delivered: int
    delivered_at: dt.datetime | None
    last_error: str | None
    failing_since: dt.datetime | None
    lease_holder: str | None
    lease_until: dt.datetime | None

    def as_dict(self) -> dict[str, t.Any]:
        data = dataclasses.asdict(self)
        for key in ("delivered_at", "failing_since", "lease_until"):
            data[key] = iso_utc(data[key]) if data[key] else None
        return data


def _state_of(row: cursor.StreamRow | None, now: dt.datetime) -> str:
    if row is None:
        return "new"
    if row.paused:
        return "paused"
    if row.failing_since is not None:
        return "failing"
    if row.lease_holder and row.lease_until and row.lease_until >= now:
        return "running"
    return "stopped"


def _lag(conn: sa.Connection, after: int, now: dt.datetime) -> tuple[int, float]:
    pending = sa.select(sa.func.count(), sa.func.min(_EVENTS.c.id)).where(_EVENTS.c.id > after)
    count, first = conn.execute(pending).one()
    if not count:
        return 0, 0.0
    oldest = conn.scalar(sa.select(_EVENTS.c.occurred_at).where(_EVENTS.c.id == first))
    return int(count), max((now - oldest).total_seconds(), 0.0) if oldest else 0.0


def stream_status(app: Flask | None = None) -> list[StreamStatus]:
    """Every configured destination's state, cursor, lag and last error, by name; then any
    destination still in the table but no longer configured."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    with app.app_context():
        engine = audit_state(app).engine
    configured = load_destinations(app)
    rows = cursor.read_all(engine)
    now = cursor.utcnow()
    found = []
    with engine.connect() as conn:
        for name in [*sorted(configured), *sorted(set(rows) - set(configured))]:
            row = rows.get(name)
            at = row.cursor if row else 0
            lag_events, lag_seconds = _lag(conn, at, now)
            found.append(
                StreamStatus(
                    name=name,
                    configured=name in configured,
                    state=_state_of(row, now),
                    cursor=at,
                    lag_events=lag_events,
                    lag_seconds=lag_seconds,
                    delivered=row.delivered if row else 0,
                    delivered_at=row.delivered_at if row else None,
                    last_error=row.last_error if row else None,
                    failing_since=row.failing_since if row else None,
                    lease_holder=row.lease_holder if row else None,
                    lease_until=row.lease_until if row else None,
                )
            )
    return found


def pause(name: str, paused: bool = True) -> bool:
    """Pause (or resume) a destination and record it; ``False`` if nothing changed."""
    changed = cursor.set_paused(audit_state().engine, name, paused)
    if changed:
        record_stream_event("audit.stream_paused" if paused else "audit.stream_resumed", name)
    return changed


def rewind(name: str, since: dt.datetime) -> tuple[int, int]:
    """Send ``name`` again every event since ``since`` (its cursor only moves back); recorded."""
    old, new = cursor.rewind(audit_state().engine, name, since)
    if new != old:
        record_stream_event(
            "audit.stream_rewound", name, since=iso_utc(since), old_cursor=old, new_cursor=new
        )
    return old, new
