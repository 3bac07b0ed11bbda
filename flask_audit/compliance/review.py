"""The daily review: which days an admin has not signed off yet, and what each one holds.

A day is a calendar day in ``AUDIT_TIMEZONE``. The review covers the days before today
within the last :data:`REVIEW_DAYS` (and the retention window), in the admin's tenant. A
sign-off is an ``audit.reviewed`` event naming its range (``details.from`` and ``to``, ISO
dates) and an optional note; the trail itself is the record of who reviewed what and when.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t
import zoneinfo

import sqlalchemy as sa

from ..config import AuditConfig
from ..query import sql
from ..store.models import audit_event_table
from .rules import DEFAULT_RULES
from .rules import grants_admin

REVIEWED = "audit.reviewed"
#: How many days back the review looks.
REVIEW_DAYS = 30
#: The event types a day's summary counts one by one: those of the default alert rules.
CRITICAL_TYPES = tuple(
    sorted({kind for rule in DEFAULT_RULES for kind in rule.events} - {"audit.health_failed"})
)
_EVENTS = audit_event_table.c


@dataclasses.dataclass(frozen=True)
class DaySummary:
    """What one day holds, for the reviewer."""

    day: dt.date
    events: int
    failures: int
    critical: dict[str, int]
    new_admins: list[str]


@dataclasses.dataclass(frozen=True)
class Review:
    """One sign-off, as recorded."""

    first: dt.date
    last: dt.date
    by: str | None
    at: dt.datetime
    note: str


def _scoped(scope: sql.Scope) -> list[sa.ColumnElement[bool]]:
    if not scope["tenant_scoped"]:
        return []
    tenant = scope["tenant_id"]
    return [_EVENTS.tenant_id.is_(None) if tenant is None else _EVENTS.tenant_id == tenant]


def _bounds(day: dt.date, tz: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tz)
    return start.astimezone(dt.timezone.utc), (start + dt.timedelta(days=1)).astimezone(dt.timezone.utc)


def review_days(config: AuditConfig, now: dt.datetime | None = None) -> list[dt.date]:
    """The days under review, oldest first: before today, inside the window."""
    today = (now or dt.datetime.now(dt.timezone.utc)).astimezone(zoneinfo.ZoneInfo(config.timezone)).date()
    back = min(REVIEW_DAYS, config.retention_days)
    return [today - dt.timedelta(days=n) for n in range(back, 0, -1)]


def reviews(conn: sa.Connection, scope: sql.Scope, limit: int = 100) -> list[Review]:
    """The sign-offs in scope, newest first."""
    query = (
        sa.select(_EVENTS.details, _EVENTS.actor_email, _EVENTS.occurred_at)
        .where(_EVENTS.event_type == REVIEWED, *_scoped(scope))
        .order_by(_EVENTS.id.desc())
        .limit(limit)
    )
    found = []
    for details, by, at in conn.execute(query):
        try:
            first = dt.date.fromisoformat(str(details["from"]))
            last = dt.date.fromisoformat(str(details["to"]))
        except (KeyError, TypeError, ValueError):
            continue
        found.append(Review(first, last, by, at, str(details.get("note") or "")))
    return found


def summarise(conn: sa.Connection, config: AuditConfig, scope: sql.Scope, day: dt.date) -> DaySummary:
    """The day's event count, failures, critical events by type and newly made admins."""
    start, end = _bounds(day, zoneinfo.ZoneInfo(config.timezone))
    where = [_EVENTS.occurred_at >= start, _EVENTS.occurred_at < end, *_scoped(scope)]
    total, failures = conn.execute(
        sa.select(sa.func.count(), sa.func.sum(sa.case((_EVENTS.outcome == "failure", 1), else_=0))).where(
            *where
        )
    ).one()
    by_type = sa.select(_EVENTS.event_type, sa.func.count()).where(
        *where, _EVENTS.event_type.in_(CRITICAL_TYPES)
    )
    critical = dict(sorted((kind, int(n)) for kind, n in conn.execute(by_type.group_by(_EVENTS.event_type))))
    admins = []
    if critical.get("role.updated"):
        roles = sa.select(audit_event_table).where(*where, _EVENTS.event_type == "role.updated")
        for row in conn.execute(roles):
            event = t.cast(t.Any, row)
            if grants_admin(event, config):
                admins.append(str(row.target_id or row.activity))
    return DaySummary(day, int(total), int(failures or 0), critical, admins)


def unreviewed(
    conn: sa.Connection, config: AuditConfig, scope: sql.Scope, now: dt.datetime | None = None
) -> list[DaySummary]:
    """The days under review that no sign-off covers, oldest first, each summarised."""
    done = reviews(conn, scope, limit=1000)
    days = [day for day in review_days(config, now) if not any(r.first <= day <= r.last for r in done)]
    return [summarise(conn, config, scope, day) for day in days]


def check_range(
    config: AuditConfig, first: str, last: str, now: dt.datetime | None = None
) -> tuple[dt.date, dt.date]:
    """The submitted range as dates: both under review, in order.

    :raises ValueError: with a sentence for the reviewer.
    """
    try:
        start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    except ValueError:
        raise ValueError("Give the days to mark reviewed as YYYY-MM-DD.") from None
    days = review_days(config, now)
    if start > end or start < days[0] or end > days[-1]:
        raise ValueError(f"Only the days from {days[0]} to {days[-1]} can be marked reviewed, in order.")
    return start, end
