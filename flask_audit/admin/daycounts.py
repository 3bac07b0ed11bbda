"""Events per calendar day for the admin chart, the same on every backend.

The stored times are UTC, and the chart counts days in the admin's display zone. SQLite,
PostgreSQL and MariaDB share no time zone function, so :func:`count_by_day` shifts by a
fixed UTC offset per stretch between offset changes, which all three can do. Past days
hardly change, so :func:`chart_counts` keeps their counts in a :class:`DayCountCache` and
counts only today and partly covered edge days on each request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t
import zoneinfo

import sqlalchemy as sa

from ..query.filters import AuditFilter
from ..query.sql import conditions
from ..query.sql import Executor
from ..query.sql import Scope
from ..query.sql import tenant_branches
from ..query.sql import window_start
from ..store.models import audit_event_table
from . import daytotals
from .localdays import as_date
from .localdays import LocalDate
from .localdays import offset_runs

ChartKey = tuple[t.Any, ...]


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
    runs = offset_runs(tz, begin, end) if begin <= end else []
    branches = tenant_branches(executor, tenant_scoped) if runs else []
    for number, (low, high, shift) in enumerate(runs):
        last = number == len(runs) - 1
        where = conditions(flt, with_cursor=False, now=now, since=low, until=until if last else high, **scope)
        day = (
            sa.func.date(cols.occurred_at, type_=sa.Date)
            if shift == 0
            else LocalDate(cols.occurred_at, sa.literal(shift, sa.Integer()))
        )
        for branch in branches:
            stmt = sa.select(day.label("day"), sa.func.count().label("events"))
            for row in executor.execute(stmt.where(*where, *branch).group_by(day)):
                key = as_date(row.day)
                counts[key] = counts.get(key, 0) + int(row.events)
    return counts


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
            past = _past_counts(executor, flt, done, timezone=timezone, bounds=bounds, now=now, **scope)
            cache.put(key, today_starts, now, past)
        counts.update({day: past.get(day, 0) for day in done})
    settled_days = set(done)
    for run in _runs([day for day in days if day not in settled_days]):
        since, until = bounds(run[0])[0], bounds(run[-1])[1]
        found = count_by_day(executor, flt, timezone=timezone, since=since, until=until, now=now, **scope)
        counts.update(found)
    return [(day, counts.get(day, 0)) for day in days]


def _past_counts(
    executor: Executor,
    flt: AuditFilter,
    days: list[dt.date],
    *,
    timezone: str,
    bounds: t.Callable[[dt.date], tuple[dt.datetime, dt.datetime]],
    now: dt.datetime,
    retention_days: int,
    tenant_scoped: bool,
    tenant_id: str | None,
) -> dict[dt.date, int]:
    """Counts of closed ``days``: from the kept day totals where they serve, else from the rows."""
    whole = dataclasses.replace(flt, start=None, end=None, cursor=None)
    counts: dict[dt.date, int] = {}
    if isinstance(executor, sa.Connection) and daytotals.answers(whole):
        counts = daytotals.kept_counts(
            executor,
            whole,
            days,
            timezone=timezone,
            tenant_scoped=tenant_scoped,
            tenant_id=tenant_id,
            window_starts=window_start(retention_days, now),
            now=now,
        )
    scope = Scope(retention_days=retention_days, tenant_scoped=tenant_scoped, tenant_id=tenant_id)
    for run in _runs([day for day in days if day not in counts]):
        since, until = bounds(run[0])[0], bounds(run[-1])[1]
        counts.update(
            count_by_day(executor, whole, timezone=timezone, since=since, until=until, now=now, **scope)
        )
    return counts


def _runs(days: list[dt.date]) -> list[list[dt.date]]:
    """Consecutive days grouped together: one query per run."""
    runs: list[list[dt.date]] = []
    for day in days:
        if runs and runs[-1][-1] + dt.timedelta(days=1) == day:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs
