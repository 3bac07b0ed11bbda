"""What the admin asked for: filters read from a query string and checked, page cursors,
the display time zone and the API's ``limit``.

``q`` is a search in the language of :mod:`flask_audit.query.search`; the other filters
are one value each, and all of them must match.

The page, the JSON API, the export job and ``flask audit export`` all parse through
:class:`AuditFilter`, so they can never disagree on what a filter means; turning a filter
into SQL is :mod:`flask_audit.query.sql`'s job.
"""

from __future__ import annotations

import base64
import binascii
import collections.abc as c
import dataclasses
import datetime as dt
import typing as t
import zoneinfo

from ..exceptions import InvalidFilterError
from ..taxonomy import ACTIONS
from ..taxonomy import ENTITIES
from ..taxonomy import EVENT_TYPES
from ..taxonomy import OUTCOMES
from . import search as search_

FILTER_NAMES = ("q", "entity", "event_type", "actor", "team", "action", "outcome", "start", "end", "cursor")
MAX_VALUE_LENGTH = 320
MAX_ID = 2**63 - 1
_CONTROL = frozenset(chr(code) for code in (*range(32), 127))


@dataclasses.dataclass(frozen=True)
class Cursor:
    """Where a page ended: a row's time and id. ``newer`` pages upwards from it."""

    occurred_at: dt.datetime
    id: int
    newer: bool = False

    def encode(self) -> str:
        raw = f"{self.occurred_at.isoformat()}|{self.id}" + ("|n" if self.newer else "")
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            when, ident, *direction = raw.split("|")
            occurred_at = dt.datetime.fromisoformat(when)
            number = int(ident)
            if occurred_at.tzinfo is None or not 0 < number <= MAX_ID or direction not in ([], ["n"]):
                raise ValueError(raw)
            return cls(occurred_at.astimezone(dt.timezone.utc), number, newer=bool(direction))
        except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError) as err:
            raise InvalidFilterError(
                "The page cursor is not valid; start again from the first page."
            ) from err


@dataclasses.dataclass(frozen=True)
class AuditFilter:
    """A checked set of filters; every field is optional.

    ``start`` and ``end`` are the time bounds of everything asked for: with one
    ``created:`` range in ``q``, they are narrowed to it, so that the chart and the page
    see one range.
    """

    q: search_.Search | None = None
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
            if name == "q":  # the search checks its own length and characters
                values[name] = text
                continue
            if len(text) > MAX_VALUE_LENGTH:
                raise InvalidFilterError(
                    f"The {name} filter is too long (at most {MAX_VALUE_LENGTH} characters)."
                )
            if not _CONTROL.isdisjoint(text):
                raise InvalidFilterError(f"The {name} filter contains a control character.")
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
        search = search_.parse(values["q"], timezone=timezone) if "q" in values else None
        span = search.span() if search else None
        if span is not None:
            start, end = _narrowed(start, end, span)
        return cls(
            q=search,
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
        if self.q is not None:
            out["q"] = self.q.text
        for field in ("entity", "event_type", "actor", "team", "action", "outcome"):
            value = getattr(self, field)
            if value is not None:
                out[field] = value
        # A bound that the search's own range gives is left to ``q``: read again, it comes back.
        span = self.q.span() if self.q is not None else None
        implied = _narrowed(None, None, span) if span is not None else (None, None)
        if self.start is not None and self.start != implied[0]:
            out["start"] = self.start.isoformat()
        if self.end is not None and self.end != implied[1]:
            out["end"] = self.end.isoformat()
        if with_cursor and self.cursor is not None:
            out["cursor"] = self.cursor.encode()
        return out

    @property
    def is_empty(self) -> bool:
        """No filter narrows the trail (a cursor only moves through it)."""
        return not self.to_args()


def _narrowed(
    start: dt.datetime | None, end: dt.datetime | None, span: search_.Span
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``start`` and (inclusive) ``end`` narrowed to ``span`` (whose end is exclusive)."""
    if span.low is not None:
        start = span.low if start is None else max(start, span.low)
    if span.high is not None:
        last = span.high - dt.timedelta(microseconds=1)
        end = last if end is None else min(end, last)
    return start, end


def resolve_timezone(name: str | None, default: str) -> str:
    """The IANA zone ``name`` (``default`` when blank), or :class:`InvalidFilterError`."""
    if name is None or not name.strip():
        return default
    name = name.strip()
    try:
        if len(name) > 64:
            raise ValueError(name)
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        shown = name if len(name) <= 64 else name[:64] + "…"
        raise InvalidFilterError(
            f"Unknown time zone {shown!r}; use an IANA name such as 'Europe/Berlin'."
        ) from None
    return name


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


def parse_limit(value: str | None, *, default: int = 50, maximum: int = 500) -> int:
    """The API's ``limit``: a whole number from 1 to ``maximum``."""
    if value is None or value.strip() == "":
        return default
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 6 or not 1 <= int(text) <= maximum:
        raise InvalidFilterError(f"The limit must be a whole number from 1 to {maximum}, not {text[:20]!r}.")
    return int(text)
