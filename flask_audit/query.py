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
import math
import typing as t
import zoneinfo

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from sqlalchemy.ext import compiler as sa_compiler

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
ChartKey = tuple[t.Any, ...]


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


def _branches(executor: Executor, tenant_scoped: bool) -> list[list[sa.ColumnElement[bool]]]:
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
        for branch in _branches(executor, tenant_scoped)
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


class _LocalDate(sa.sql.functions.GenericFunction[dt.date]):
    """``date(occurred_at + shift)``: the calendar date at a fixed UTC offset, per dialect."""

    type = sa.Date()
    name = "flask_audit_local_date"
    inherit_cache = True


@sa_compiler.compiles(_LocalDate)
def _local_date_sqlite(element: _LocalDate, compiler: sa.sql.compiler.SQLCompiler, **kw: t.Any) -> str:
    column, shift = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"date({column}, {shift} || ' seconds')"


@sa_compiler.compiles(_LocalDate, "postgresql")
def _local_date_postgresql(element: _LocalDate, compiler: sa.sql.compiler.SQLCompiler, **kw: t.Any) -> str:
    column, shift = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"date({column} + make_interval(secs => {shift}))"


@sa_compiler.compiles(_LocalDate, "mysql")
@sa_compiler.compiles(_LocalDate, "mariadb")
def _local_date_mysql(element: _LocalDate, compiler: sa.sql.compiler.SQLCompiler, **kw: t.Any) -> str:
    column, shift = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"date({column} + INTERVAL {shift} SECOND)"


def _offset_runs(
    tz: dt.tzinfo, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime, int]]:
    """``[start, end)`` cut where ``tz``'s UTC offset changes, with each run's offset in seconds.

    Probes every six hours and bisects to the second: zones change offset at most a few
    times a year, never twice within six hours.
    """

    def offset(moment: dt.datetime) -> int:
        return int(t.cast(dt.timedelta, moment.astimezone(tz).utcoffset()).total_seconds())

    runs: list[tuple[dt.datetime, dt.datetime, int]] = []
    begin, current, probe = start, offset(start), start
    step = dt.timedelta(hours=6)
    while probe < end:
        ahead = min(probe + step, end)
        if offset(ahead) != current:
            # Offsets change on whole seconds: bisect over epoch seconds.
            low, high = math.floor(probe.timestamp()), math.ceil(ahead.timestamp())
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(_at(middle)) == current else (low, middle)
            runs.append((begin, _at(high), current))
            begin, current = _at(high), offset(_at(high))
        probe = ahead
    runs.append((begin, end, current))
    return runs


def _at(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


def count_by_day(
    executor: Executor,
    flt: AuditFilter,
    *,
    retention_days: int,
    tenant_scoped: bool,
    tenant_id: str | None,
    timezone: str = "UTC",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> dict[dt.date, int]:
    """Events matching ``flt`` per calendar day in ``timezone`` (the cursor is ignored).

    Works the same on SQLite, PostgreSQL and MariaDB: the stored times are UTC, so each
    stretch of constant UTC offset is one ``GROUP BY date(occurred_at + offset)``; a zone
    with daylight saving time takes one query more per change in the range.

    :param since: count only events at or after this moment.
    :param until: count only events before this moment.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    cols = audit_event_table.c
    scope = Scope(retention_days=retention_days, tenant_scoped=tenant_scoped, tenant_id=tenant_id)
    tz = zoneinfo.ZoneInfo(timezone)
    begin = max(moment for moment in (window_start(retention_days, now), flt.start, since) if moment)
    ends = [moment for moment in (until, flt.end) if moment]
    end = min(ends) if ends else now + dt.timedelta(days=1)
    counts: dict[dt.date, int] = {}
    runs = _offset_runs(tz, begin, end) if begin <= end else []
    branches = _branches(executor, tenant_scoped) if runs else []
    for number, (low, high, shift) in enumerate(runs):
        last = number == len(runs) - 1
        where = conditions(flt, with_cursor=False, now=now, since=low, until=until if last else high, **scope)
        day = (
            sa.func.date(cols.occurred_at, type_=sa.Date)
            if shift == 0
            else _LocalDate(cols.occurred_at, sa.literal(shift, sa.Integer()))
        )
        for branch in branches:
            stmt = sa.select(day.label("day"), sa.func.count().label("events"))
            for row in executor.execute(stmt.where(*where, *branch).group_by(day)):
                key = _as_date(row.day)
                counts[key] = counts.get(key, 0) + int(row.events)
    return counts


def _as_date(value: t.Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


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


@dataclasses.dataclass(frozen=True)
class _Settled:
    today_starts: dt.datetime
    expires: dt.datetime
    counts: dict[dt.date, int]


class DayCountCache:
    """Per-day counts of past days, per filter, tenant and zone, kept for ``ttl``.

    Past days hardly change (a replayed or back-dated event, the window's sliding first
    day), so the chart counts them once every few minutes and counts only today and
    partly covered edge days on every request. :meth:`forget_before` drops the counts an
    event on a past day makes wrong.
    """

    def __init__(self, ttl: dt.timedelta = dt.timedelta(minutes=5), max_entries: int = 256) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[ChartKey, _Settled] = {}

    def get(self, key: ChartKey, today_starts: dt.datetime, now: dt.datetime) -> dict[dt.date, int] | None:
        """The counts stored for ``key`` on the same day (``today_starts``), if not expired."""
        entry = self._entries.get(key)
        if entry is None or entry.today_starts != today_starts or entry.expires <= now:
            return None
        return entry.counts

    def put(
        self, key: ChartKey, today_starts: dt.datetime, now: dt.datetime, counts: dict[dt.date, int]
    ) -> None:
        if key not in self._entries and len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)), None)
        self._entries[key] = _Settled(today_starts, now + self.ttl, counts)

    def forget_before(self, when: dt.datetime) -> None:
        """An event at ``when`` was stored: drop the counts of every day before it."""
        for key, entry in list(self._entries.items()):
            if when < entry.today_starts:
                self._entries.pop(key, None)


def chart_counts(
    executor: Executor,
    flt: AuditFilter,
    *,
    cache: DayCountCache,
    retention_days: int,
    tenant_scoped: bool,
    tenant_id: str | None,
    timezone: str = "UTC",
    first_day: dt.date | None = None,
    now: dt.datetime | None = None,
) -> list[tuple[dt.date, int]]:
    """Events per day (in ``timezone``) over the range ``flt`` shows, zeros included.

    :param first_day: start no earlier than this day (say, the oldest event's).
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    tz = zoneinfo.ZoneInfo(timezone)
    scope = Scope(retention_days=retention_days, tenant_scoped=tenant_scoped, tenant_id=tenant_id)
    lower = window_start(retention_days, now)
    low = max(lower, flt.start) if flt.start else lower
    high = min(now, flt.end) if flt.end else now
    if low > high:
        return []
    today = now.astimezone(tz).date()
    first = max(low.astimezone(tz).date(), first_day or dt.date.min)
    days = [first + dt.timedelta(days=n) for n in range((high.astimezone(tz).date() - first).days + 1)]

    def bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        following = day + dt.timedelta(days=1)
        return (
            dt.datetime.combine(day, dt.time.min, tzinfo=tz).astimezone(dt.timezone.utc),
            dt.datetime.combine(following, dt.time.min, tzinfo=tz).astimezone(dt.timezone.utc),
        )

    def settled(day: dt.date) -> bool:
        begins, ends = bounds(day)
        left = flt.start is None or flt.start <= max(begins, lower)
        right = flt.end is None or flt.end >= ends - dt.timedelta(microseconds=1)
        return day < today and left and right

    done = [day for day in days if settled(day)]
    counts: dict[dt.date, int] = {}
    if done:
        key: ChartKey = (timezone, tenant_scoped, tenant_id, flt.entity, flt.event_type, flt.actor)
        key += (flt.team, flt.action, flt.outcome)
        today_starts = bounds(today)[0]
        past = cache.get(key, today_starts, now)
        if past is None:
            whole = dataclasses.replace(flt, start=None, end=None, cursor=None)
            past = count_by_day(executor, whole, timezone=timezone, until=today_starts, now=now, **scope)
            cache.put(key, today_starts, now, past)
        counts.update({day: past.get(day, 0) for day in done})
    settled_days = set(done)
    for run in _runs([day for day in days if day not in settled_days]):
        since, until = bounds(run[0])[0], bounds(run[-1])[1]
        found = count_by_day(executor, flt, timezone=timezone, since=since, until=until, now=now, **scope)
        counts.update(found)
    return [(day, counts.get(day, 0)) for day in days]


def _runs(days: list[dt.date]) -> list[list[dt.date]]:
    """Consecutive days grouped together: one query per run."""
    runs: list[list[dt.date]] = []
    for day in days:
        if runs and runs[-1][-1] + dt.timedelta(days=1) == day:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def parse_limit(value: str | None, *, default: int = 50, maximum: int = 500) -> int:
    """The API's ``limit``: a whole number from 1 to ``maximum``."""
    if value is None or value.strip() == "":
        return default
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 6 or not 1 <= int(text) <= maximum:
        raise InvalidFilterError(f"The limit must be a whole number from 1 to {maximum}, not {text[:20]!r}.")
    return int(text)
