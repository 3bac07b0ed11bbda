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
import sqlalchemy.orm as sa_orm

from .exceptions import InvalidFilterError
from .models import audit_event_table
from .models import AuditEvent
from .taxonomy import ACTIONS
from .taxonomy import ENTITIES
from .taxonomy import EVENT_TYPES
from .taxonomy import OUTCOMES

FILTER_NAMES = ("entity", "event_type", "actor", "team", "action", "outcome", "start", "end", "cursor")
MAX_VALUE_LENGTH = 320
MAX_ID = 2**63 - 1
_CONTROL = frozenset(chr(code) for code in (*range(32), 127))

Executor = sa.Connection | sa_orm.Session


class Scope(t.TypedDict):
    """Where a query may look: the retention window and, with a tenant loader, one tenant."""

    retention_days: int
    tenant_scoped: bool
    tenant_id: str | None


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

    @property
    def is_empty(self) -> bool:
        """No filter narrows the trail (a cursor only moves through it)."""
        return not self.to_args()


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


def window_start(retention_days: int, now: dt.datetime | None = None) -> dt.datetime:
    """The oldest moment the page shows: events before it may already be pruned."""
    return (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=retention_days)


def conditions(
    flt: AuditFilter,
    *,
    retention_days: int,
    tenant_scoped: bool,
    tenant_id: str | None,
    now: dt.datetime | None = None,
    with_cursor: bool = True,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[sa.ColumnElement[bool]]:
    """The WHERE clauses of ``flt``: window, tenant scope, filters and (optionally) cursor.

    The time bounds (window, start, end, cursor, and ``since`` inclusive and ``until``
    exclusive) are merged into one lower and one upper bound: given two, SQLite ranges its
    index scan on the first it meets. A start before the window is clamped to the window,
    so no backend sees a year 0001.
    """
    cols = audit_event_table.c
    cursor = flt.cursor if with_cursor else None
    lowest = [window_start(retention_days, now), flt.start, since]
    highest = [flt.end]
    if cursor is not None:
        (lowest if cursor.newer else highest).append(cursor.occurred_at)
    lower = max(moment for moment in lowest if moment is not None)
    upper = min((moment for moment in highest if moment is not None), default=None)
    where = [cols.occurred_at >= lower]
    if until is not None and (upper is None or until <= upper):
        where.append(cols.occurred_at < until)
    elif upper is not None:
        where.append(cols.occurred_at <= upper)
    if tenant_scoped:
        where.append(cols.tenant_id.is_(None) if tenant_id is None else _equals("tenant_id", tenant_id))
    for field in ("entity", "event_type", "team", "action", "outcome"):
        value = getattr(flt, field)
        if value is not None:
            where.append(_equals(field, value))
    if flt.actor is not None:
        where.append(_equals("actor_email", flt.actor))
    if cursor is not None:
        # The tie on the cursor's own time is broken by id; the bound above gives the range.
        at, ident = cursor.occurred_at, cursor.id
        if cursor.newer:
            where.append(sa.or_(cols.occurred_at > at, cols.id > ident))
        else:
            where.append(sa.or_(cols.occurred_at < at, cols.id < ident))
    return where


def _equals(column: str, value: str) -> sa.ColumnElement[bool]:
    """``column = 'value'``, the value written into the SQL (escaped by the dialect).

    A filter value decides the plan: ``action = 'export'`` matches a handful of rows,
    ``action = 'login'`` most of them. PostgreSQL drivers prepare a statement after a few
    runs, and its generic plan for ``action = $1`` then scans the whole window for a rare
    value; with the value in the text, every plan knows it. The times stay parameters.
    """
    col = audit_event_table.c[column]
    return col == sa.bindparam(f"filter_{column}", value, type_=col.type, literal_execute=True)


def _order(newer: bool, cols: t.Any = audit_event_table.c) -> tuple[sa.UnaryExpression[t.Any], ...]:
    if newer:
        return cols.occurred_at.asc(), cols.id.asc()
    return cols.occurred_at.desc(), cols.id.desc()


def select_events(
    flt: AuditFilter,
    *,
    retention_days: int,
    tenant_scoped: bool,
    tenant_id: str | None,
    now: dt.datetime | None = None,
) -> sa.Select[AuditEvent]:
    """Events matching ``flt`` inside the retention window, newest first.

    A ``newer`` cursor reads upwards (oldest first), so that a ``LIMIT`` takes the rows
    next to it; :func:`fetch_page` puts them back in order.

    :param tenant_scoped: an app with a tenant loader sees only ``tenant_id``'s events
        (``None`` matches only events without a tenant): the scope fails closed.
    """
    where = conditions(
        flt, retention_days=retention_days, tenant_scoped=tenant_scoped, tenant_id=tenant_id, now=now
    )
    newer = flt.cursor is not None and flt.cursor.newer
    return sa.select(AuditEvent).where(*where).order_by(*_order(newer))


def tenant_branches(executor: Executor, tenant_scoped: bool) -> list[list[sa.ColumnElement[bool]]]:
    """Extra clauses, one query each, so that the indexes that lead with the tenant serve.

    With a tenant loader, :func:`conditions` already pins the tenant. Without one, rows
    without a tenant (all of them, in practice) are read with ``tenant_id IS NULL``: a range
    of an index such as ``(tenant_id, action, occurred_at)`` in time order, where a rare
    filter would otherwise scan the whole window. Rows with a tenant, if an index probe
    finds any, are read apart.
    """
    if tenant_scoped:
        return [[]]
    tenant = audit_event_table.c.tenant_id
    probe = sa.select(sa.literal(1)).where(tenant.is_not(None)).limit(1)
    if executor.execute(probe).first() is None:
        return [[tenant.is_(None)]]
    return [[tenant.is_(None)], [tenant.is_not(None)]]


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of rows, newest first, with the cursors of its neighbours (``None``: none)."""

    rows: list[sa.Row[t.Any]]
    older: Cursor | None
    newer: Cursor | None
    first: bool


def fetch_page(
    executor: Executor,
    flt: AuditFilter,
    *,
    limit: int,
    retention_days: int,
    tenant_scoped: bool,
    tenant_id: str | None,
    columns: c.Sequence[str] | None = None,
    now: dt.datetime | None = None,
) -> Page:
    """Read one keyset page: ``limit`` rows after ``flt.cursor`` (the first page without one).

    Keyset pages stay put while new events arrive, and cost the same at any depth. A
    ``newer`` cursor that reaches the top returns the first page instead of a short one.

    :param columns: the column names to load (all by default): the page needs fewer.
    """
    cols = audit_event_table.c
    picked = [cols[name] for name in columns] if columns else list(cols)
    for needed in (cols.occurred_at, cols.id):
        if needed not in picked:
            picked.append(needed)
    scope = Scope(retention_days=retention_days, tenant_scoped=tenant_scoped, tenant_id=tenant_id)
    newer = flt.cursor is not None and flt.cursor.newer
    where = conditions(flt, now=now, **scope)
    parts = [
        sa.select(*picked).where(*where, *branch).order_by(*_order(newer)).limit(limit + 1)
        for branch in tenant_branches(executor, tenant_scoped)
    ]
    stmt = parts[0]
    if len(parts) > 1:
        merged = sa.union_all(*(sa.select(part.subquery()) for part in parts)).subquery()
        stmt = sa.select(merged).order_by(*_order(newer, merged.c)).limit(limit + 1)
    rows = list(executor.execute(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    if newer:
        if not more:
            return fetch_page(
                executor,
                dataclasses.replace(flt, cursor=None),
                limit=limit,
                columns=columns,
                now=now,
                **scope,
            )
        rows.reverse()
        return Page(rows, _cursor(rows[-1], newer=False), _cursor(rows[0], newer=True), first=False)
    older = _cursor(rows[-1], newer=False) if more else None
    first = flt.cursor is None
    newer_cursor = _cursor(rows[0], newer=True) if not first and rows else None
    return Page(rows, older, newer_cursor, first=first)


def _cursor(row: sa.Row[t.Any], *, newer: bool) -> Cursor:
    return Cursor(row.occurred_at, row.id, newer=newer)


def oldest_time(
    executor: Executor,
    *,
    retention_days: int,
    tenant_scoped: bool,
    tenant_id: str | None,
    now: dt.datetime | None = None,
) -> dt.datetime | None:
    """The time of the oldest event in the window and scope: "tracking since"."""
    cols = audit_event_table.c
    where = conditions(
        AuditFilter(),
        retention_days=retention_days,
        tenant_scoped=tenant_scoped,
        tenant_id=tenant_id,
        now=now,
    )
    value = executor.execute(sa.select(sa.func.min(cols.occurred_at)).where(*where)).scalar()
    return t.cast("dt.datetime | None", value)


def parse_limit(value: str | None, *, default: int = 50, maximum: int = 500) -> int:
    """The API's ``limit``: a whole number from 1 to ``maximum``."""
    if value is None or value.strip() == "":
        return default
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 6 or not 1 <= int(text) <= maximum:
        raise InvalidFilterError(f"The limit must be a whole number from 1 to {maximum}, not {text[:20]!r}.")
    return int(text)
