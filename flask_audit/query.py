"""Filters over the audit trail: parsed from a query string, checked, turned into SQL.

The page, the JSON API, the export job and ``flask audit export`` all go through
:class:`AuditFilter` and :func:`select_events`, so they can never disagree on what a
filter means, on the retention window or on the tenant scope.
"""

from __future__ import annotations

import base64
import binascii
import collections.abc as c
import dataclasses
import datetime as dt
import typing as t
import zoneinfo

import sqlalchemy as sa

from .exceptions import InvalidFilterError
from .models import AuditEvent
from .taxonomy import ACTIONS
from .taxonomy import ENTITIES
from .taxonomy import EVENT_TYPES
from .taxonomy import OUTCOMES

FILTER_NAMES = ("entity", "event_type", "actor", "team", "action", "outcome", "start", "end", "cursor")
MAX_VALUE_LENGTH = 320


@dataclasses.dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last row's time and id (newest first)."""

    occurred_at: dt.datetime
    id: int

    def encode(self) -> str:
        raw = f"{self.occurred_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            when, _, ident = raw.partition("|")
            occurred_at = dt.datetime.fromisoformat(when)
            if occurred_at.tzinfo is None:
                raise ValueError("naive time")
            return cls(occurred_at.astimezone(dt.timezone.utc), int(ident))
        except (ValueError, binascii.Error, UnicodeDecodeError) as err:
            raise InvalidFilterError(
                "The page cursor is not valid; start again from the first page."
            ) from err


@dataclasses.dataclass(frozen=True)
class AuditFilter:
    """A checked set of filters; every field is optional."""

    entity: str | None = None
    event_type: str | None = None
    actor: str | None = None
    team: str | None = None
    action: str | None = None
    outcome: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    cursor: Cursor | None = None

    @classmethod
    def from_args(cls, args: c.Mapping[str, t.Any], *, timezone: str = "UTC") -> AuditFilter:
        """Parse query-string values; raise :class:`InvalidFilterError` with a clear message.

        Dates without an offset are read in ``timezone``; an end *date* includes its whole day.
        """
        values: dict[str, str] = {}
        for name in FILTER_NAMES:
            raw = args.get(name)
            if raw is None or str(raw).strip() == "":
                continue
            text = str(raw).strip()
            if len(text) > MAX_VALUE_LENGTH:
                raise InvalidFilterError(
                    f"The {name} filter is too long (at most {MAX_VALUE_LENGTH} characters)."
                )
            values[name] = text
        _check_choice(values, "entity", ENTITIES)
        _check_choice(values, "action", ACTIONS)
        _check_choice(values, "outcome", OUTCOMES)
        if "event_type" in values and values["event_type"] not in EVENT_TYPES:
            _check_custom_type(values["event_type"])
        tz = zoneinfo.ZoneInfo(timezone)
        start = _parse_time(values.get("start"), "start", tz, end_of_day=False)
        end = _parse_time(values.get("end"), "end", tz, end_of_day=True)
        if start and end and start > end:
            raise InvalidFilterError("The start date is after the end date.")
        return cls(
            entity=values.get("entity"),
            event_type=values.get("event_type"),
            actor=values.get("actor"),
            team=values.get("team"),
            action=values.get("action"),
            outcome=values.get("outcome"),
            start=start,
            end=end,
            cursor=Cursor.decode(values["cursor"]) if "cursor" in values else None,
        )

    def to_args(self, *, with_cursor: bool = False) -> dict[str, str]:
        """The filters as query-string values (for links and stored export jobs)."""
        out: dict[str, str] = {}
        for field in ("entity", "event_type", "actor", "team", "action", "outcome"):
            value = getattr(self, field)
            if value is not None:
                out[field] = value
        if self.start is not None:
            out["start"] = self.start.isoformat()
        if self.end is not None:
            out["end"] = self.end.isoformat()
        if with_cursor and self.cursor is not None:
            out["cursor"] = self.cursor.encode()
        return out


def _check_choice(values: dict[str, str], name: str, allowed: c.Sequence[str]) -> None:
    value = values.get(name)
    if value is None:
        return
    for choice in allowed:
        if value.lower() == choice.lower():
            values[name] = choice
            return
    raise InvalidFilterError(f"Unknown {name} {value!r}. Choose one of: {', '.join(allowed)}.")


def _check_custom_type(value: str) -> None:
    entity, dot, verb = value.partition(".")
    if not dot or not entity or not verb or not all(ch.isalnum() or ch in "._-" for ch in value):
        raise InvalidFilterError(f"Unknown event type {value!r}: event types look like 'role.updated'.")


def _parse_time(value: str | None, name: str, tz: dt.tzinfo, *, end_of_day: bool) -> dt.datetime | None:
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            moment = dt.datetime.combine(day, dt.time.max if end_of_day else dt.time.min)
        else:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidFilterError(
            f"The {name} date {value!r} is not a valid date; use YYYY-MM-DD or an ISO 8601 time."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    try:
        return moment.astimezone(dt.timezone.utc)
    except OverflowError:
        raise InvalidFilterError(f"The {name} date {value!r} is out of range.") from None


def window_start(retention_days: int, now: dt.datetime | None = None) -> dt.datetime:
    """The oldest moment the page shows: events before it may already be pruned."""
    return (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=retention_days)


def select_events(
    flt: AuditFilter,
    *,
    retention_days: int,
    tenant_scoped: bool,
    tenant_id: str | None,
    now: dt.datetime | None = None,
) -> sa.Select[AuditEvent]:
    """Events matching ``flt`` inside the retention window, newest first.

    :param tenant_scoped: an app with a tenant loader sees only ``tenant_id``'s events
        (``None`` matches only events without a tenant): the scope fails closed.
    """
    cols = AuditEvent
    stmt = sa.select(AuditEvent).where(cols.occurred_at >= window_start(retention_days, now))
    if tenant_scoped:
        stmt = stmt.where(cols.tenant_id.is_(None) if tenant_id is None else cols.tenant_id == tenant_id)
    for field in ("entity", "event_type", "team", "action", "outcome"):
        value = getattr(flt, field)
        if value is not None:
            stmt = stmt.where(getattr(cols, field) == value)
    if flt.actor is not None:
        stmt = stmt.where(cols.actor_email == flt.actor)
    if flt.start is not None:
        stmt = stmt.where(cols.occurred_at >= flt.start)
    if flt.end is not None:
        stmt = stmt.where(cols.occurred_at <= flt.end)
    if flt.cursor is not None:
        stmt = stmt.where(
            sa.or_(
                cols.occurred_at < flt.cursor.occurred_at,
                sa.and_(cols.occurred_at == flt.cursor.occurred_at, cols.id < flt.cursor.id),
            )
        )
    return stmt.order_by(cols.occurred_at.desc(), cols.id.desc())
