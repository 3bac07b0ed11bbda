"""The chart's counts of closed days, kept in ``audit_day_total`` across restarts and processes.

A closed day changes only by a late write (a spool replay, an event recorded with an
explicit time, a fold's count) or a prune, so the chart counts each day once per display
zone and keeps the totals (by entity, type, action and outcome, and by team) per tenant.
The first view after a restart, and the chart for a filter on those fields, then reads
one row per day and tenant instead of every event of the window.

Late rows are what can change a counted day, and they are marked (``late``): each read
looks for late rows that arrived after the oldest total it uses (a short range of a partial
index), and counts the days they touch again. A day is kept only once it has been over for
:data:`KEEP_AFTER`, longer than a request or a business transaction that could still be
committing an event of that day without the late mark. Totals are written on the reading
request's connection, in a transaction of their own; a database that refuses them (a
missing table before the migration, a read-only account) costs a log line, never the page.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import datetime as dt
import json
import logging
import typing as t
import zoneinfo

import sqlalchemy as sa

from ..query.filters import AuditFilter
from ..query.search_sql import whole_values
from ..store.models import audit_event_table
from ..store.models import day_total_table
from .localdays import as_date
from .localdays import LocalDate
from .localdays import offset_runs

log = logging.getLogger(__name__)

#: A day's totals are kept once the day has been over this long.
KEEP_AFTER = dt.timedelta(hours=1)
#: A day with more teams than this keeps no team totals (a team filter then counts rows).
TEAM_LIMIT = 500

Kind = tuple[str, str, str, str]


@dataclasses.dataclass
class _Day:
    """One day's totals in one tenant scope."""

    kinds: dict[Kind, int] = dataclasses.field(default_factory=dict)
    teams: dict[str, int] | None = dataclasses.field(default_factory=dict)


#: The kept kinds' fields, by their place in a kind, under their filter and search names.
_KIND_FIELDS = {"entity": 0, "event_type": 1, "type": 1, "action": 2, "outcome": 3}

#: Values a field must be among (``None``: any) and values it must not be.
Allowed = tuple[frozenset[str] | None, frozenset[str]]


@dataclasses.dataclass(frozen=True)
class Wanted:
    """What a filter asks of the kept totals: allowed values per kind field, or per team."""

    kinds: dict[int, Allowed]
    team: Allowed | None


def wanted(flt: AuditFilter) -> Wanted | None:
    """``flt`` in terms of the kept totals, or ``None`` when they cannot count it: an actor,
    a word, an address, a target, a prefix not narrowed to stored values, or a team together
    with a kind field (teams are kept apart from kinds)."""
    if flt.actor is not None:
        return None
    fields: dict[str, Allowed] = {}

    def narrow(field: str, included: c.Iterable[str] | None, excluded: c.Iterable[str] = ()) -> None:
        before, out = fields.get(field, (None, frozenset()))
        allowed = None if included is None else frozenset(included)
        if before is not None:
            allowed = before if allowed is None else before & allowed
        fields[field] = (allowed, out | frozenset(excluded))

    for name in ("entity", "event_type", "action", "outcome", "team"):
        value = getattr(flt, name)
        if value is not None:
            narrow(name, [value])
    if flt.q is not None:
        single_span = flt.q.span()
        for field, (included, excluded) in flt.q.groups().items():
            if field == "created" and single_span is not None and not excluded:
                continue  # the chart's own bounds
            if field not in _KIND_FIELDS and field != "team":
                return None
            values = [whole_values(term) for term in (*included, *excluded)]
            if any(found is None for found in values):
                return None
            inside = [v for found in values[: len(included)] for v in t.cast(tuple[str, ...], found)]
            outside = [v for found in values[len(included) :] for v in t.cast(tuple[str, ...], found)]
            narrow("event_type" if field == "type" else field, inside if included else None, outside)
    team = fields.pop("team", None)
    if team is not None and fields:
        return None
    return Wanted({_KIND_FIELDS[name]: allowed for name, allowed in fields.items()}, team)


def answers(flt: AuditFilter) -> bool:
    """Whether the kept totals can count ``flt`` (see :func:`wanted`)."""
    return wanted(flt) is not None


def _scope_key(tenant_id: str | None) -> str:
    return "" if tenant_id is None else "=" + tenant_id


def _allows(allowed: Allowed, value: str) -> bool:
    among, out = allowed
    return (among is None or value in among) and value not in out


def _count(want: Wanted, totals: c.Iterable[_Day]) -> int | None:
    """Events ``want`` matches in a day's totals; ``None`` if a team count was not kept."""
    found = 0
    for day in totals:
        if want.team is not None:
            if day.teams is None:
                return None
            among, out = want.team
            if among is not None:
                found += sum(day.teams.get(team, 0) for team in among - out)
            else:  # a team excluded: every event but its own (events without a team stay)
                found += sum(day.kinds.values()) - sum(day.teams.get(team, 0) for team in out)
        else:
            found += sum(
                n
                for kind, n in day.kinds.items()
                if all(_allows(allowed, kind[place]) for place, allowed in want.kinds.items())
            )
    return found


def kept_counts(
    conn: sa.Connection,
    flt: AuditFilter,
    days: list[dt.date],
    *,
    timezone: str,
    tenant_scoped: bool,
    tenant_id: str | None,
    window_starts: dt.datetime,
    now: dt.datetime,
) -> dict[dt.date, int]:
    """Counts of ``flt`` for those of ``days`` (closed, in ``timezone``) that totals can serve.

    Days not yet kept are counted here, grouped, and kept when they qualify; the window's
    first day (partly pruned), the days before the oldest event, and days over for less than
    :data:`KEEP_AFTER` are left out of the result, for the caller to count from the rows.
    """
    want = wanted(flt)
    if want is None:
        return {}
    tz = zoneinfo.ZoneInfo(timezone)

    def bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        begins = dt.datetime.combine(day, dt.time.min, tzinfo=tz).astimezone(dt.timezone.utc)
        ends = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        return begins, ends.astimezone(dt.timezone.utc)

    # Days before the oldest event were pruned since their totals were kept (a tenant may
    # keep longer than the window: the oldest event, not the window, says what is gone).
    oldest = conn.scalar(sa.select(sa.func.min(audit_event_table.c.occurred_at)))
    if oldest is None:
        return {}
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.timezone.utc)
    served = [
        day for day in days if bounds(day)[0] >= window_starts and oldest < bounds(day)[1] <= now - KEEP_AFTER
    ]
    if not served:
        return {}
    kept = _read(conn, timezone, served[0], served[-1], tenant_scoped, tenant_id)
    stale = _late_since(conn, kept)
    fresh = [day for day in served if day not in kept or (stale is not None and day >= stale)]
    if fresh:
        counted, through = _tally(conn, tz, fresh, bounds)
        _keep(conn, timezone, fresh, counted, through, now, before=(oldest - dt.timedelta(days=1)).date())
        for day in fresh:
            kept[day] = _select(counted.get(day, {}), tenant_scoped, tenant_id)
    out: dict[dt.date, int] = {}
    for day in served:
        found = _count(want, kept[day].values())
        if found is not None:
            out[day] = found
    return out


def _read(
    conn: sa.Connection,
    zone: str,
    first: dt.date,
    last: dt.date,
    tenant_scoped: bool,
    tenant_id: str | None,
) -> dict[dt.date, dict[str, t.Any]]:
    """The kept days between ``first`` and ``last``, each ``{scope: _Day}``, with ``through_id``."""
    cols = day_total_table.c
    stmt = sa.select(cols.day, cols.scope, cols.kinds, cols.teams, cols.through_id).where(
        cols.zone == zone, cols.day >= first, cols.day <= last
    )
    if tenant_scoped:
        stmt = stmt.where(cols.scope.in_(sorted({"", _scope_key(tenant_id)})))
    try:
        rows = conn.execute(stmt).all()
    except sa.exc.SQLAlchemyError as err:
        _forgive(conn, "read", err)
        return {}
    kept: dict[dt.date, dict[str, t.Any]] = {}
    marks: set[dt.date] = set()
    for row in rows:
        day = as_date(row.day)
        scopes = kept.setdefault(day, {"through_id": row.through_id})
        scopes["through_id"] = min(scopes["through_id"], row.through_id)
        if row.scope == "":
            marks.add(day)
        if not tenant_scoped or row.scope == _scope_key(tenant_id):
            teams = None if row.teams is None else json.loads(row.teams)
            kinds = {tuple(item[:4]): int(item[4]) for item in json.loads(row.kinds)}
            scopes[row.scope] = _Day(t.cast(dict[Kind, int], kinds), teams)
    # A day without its mark row was caught half written: count it again.
    return {day: scopes for day, scopes in kept.items() if day in marks}


def _late_since(conn: sa.Connection, kept: dict[dt.date, dict[str, t.Any]]) -> dt.date | None:
    """The first UTC day, less one for zones ahead, touched by a late row counted after a total."""
    if not kept:
        return None
    through = min(scopes.pop("through_id") for scopes in kept.values())
    cols = audit_event_table.c
    stmt = sa.select(sa.func.min(cols.occurred_at)).where(cols.late == sa.true(), cols.id > through)
    earliest = conn.execute(stmt).scalar()
    if earliest is None:
        return None
    if earliest.tzinfo is None:  # read back from a driver that drops the zone
        earliest = earliest.replace(tzinfo=dt.timezone.utc)
        return None
    return t.cast(dt.date, earliest.astimezone(dt.timezone.utc).date() - dt.timedelta(days=1))


def _tally(
    conn: sa.Connection,
    tz: zoneinfo.ZoneInfo,
    days: list[dt.date],
    bounds: c.Callable[[dt.date], tuple[dt.datetime, dt.datetime]],
) -> tuple[dict[dt.date, dict[str, _Day]], int]:
    """Every tenant's totals of ``days``, one grouped query per stretch of consecutive days."""
    cols = audit_event_table.c
    through = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(cols.id), 0))).scalar_one())
    counted: dict[dt.date, dict[str, _Day]] = {}
    for low, high in _stretches(days, bounds):
        for begin, end, shift in offset_runs(tz, low, high):
            day = (
                sa.func.date(cols.occurred_at, type_=sa.Date)
                if shift == 0
                else LocalDate(cols.occurred_at, sa.literal(shift, sa.Integer()))
            )
            keys = (day, cols.tenant_id, cols.entity, cols.event_type, cols.action, cols.outcome, cols.team)
            stmt = (
                sa.select(*keys, sa.func.count())
                .where(cols.occurred_at >= begin, cols.occurred_at < end, cols.id <= through)
                .group_by(*keys)
            )
            for local, tenant, entity, event_type, action, outcome, team, n in conn.execute(stmt):
                scopes = counted.setdefault(as_date(local), {})
                totals = scopes.setdefault(_scope_key(tenant), _Day())
                kind = (entity, event_type, action, outcome)
                totals.kinds[kind] = totals.kinds.get(kind, 0) + int(n)
                if team is not None and totals.teams is not None:
                    totals.teams[team] = totals.teams.get(team, 0) + int(n)
                    if len(totals.teams) > TEAM_LIMIT:
                        totals.teams = None
    return counted, through


def _stretches(
    days: list[dt.date], bounds: c.Callable[[dt.date], tuple[dt.datetime, dt.datetime]]
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Runs of consecutive days as UTC ranges: one query each."""
    stretches: list[tuple[dt.datetime, dt.datetime]] = []
    previous: dt.date | None = None
    for day in days:
        low, high = bounds(day)
        if previous is not None and previous + dt.timedelta(days=1) == day:
            stretches[-1] = (stretches[-1][0], high)
        else:
            stretches.append((low, high))
        previous = day
    return stretches


def _select(scopes: dict[str, _Day], tenant_scoped: bool, tenant_id: str | None) -> dict[str, _Day]:
    if not tenant_scoped:
        return scopes
    key = _scope_key(tenant_id)
    return {key: scopes.get(key, _Day())}


def _keep(
    conn: sa.Connection,
    zone: str,
    days: list[dt.date],
    counted: dict[dt.date, dict[str, _Day]],
    through: int,
    now: dt.datetime,
    *,
    before: dt.date,
) -> None:
    """Replace the kept rows of ``days`` and drop the zone's rows of days ``before`` the
    oldest event (pruned since they were counted); a refusal is logged, never raised."""
    rows = []
    for day in days:
        scopes = counted.setdefault(day, {})
        scopes.setdefault("", _Day())
        for scope, totals in scopes.items():
            kinds = [[*kind, n] for kind, n in sorted(totals.kinds.items())]
            teams = None if totals.teams is None else json.dumps(totals.teams, sort_keys=True)
            rows.append(
                {
                    "zone": zone,
                    "day": day,
                    "scope": scope,
                    "kinds": json.dumps(kinds),
                    "teams": teams,
                    "through_id": through,
                    "counted_at": now,
                }
            )
    cols = day_total_table.c
    try:
        conn.commit()  # end the read transaction: the totals are written in one of their own
        with conn.begin():
            conn.execute(sa.delete(day_total_table).where(cols.zone == zone, cols.day.in_(days)))
            conn.execute(sa.delete(day_total_table).where(cols.zone == zone, cols.day < before))
            conn.execute(sa.insert(day_total_table), rows)
    except sa.exc.SQLAlchemyError as err:
        _forgive(conn, "keep", err)


def _forgive(conn: sa.Connection, what: str, err: sa.exc.SQLAlchemyError) -> None:
    """Totals are a shortcut: without them the chart counts rows, as it did before them."""
    if conn.in_transaction():
        conn.rollback()
    log.warning("Could not %s the audit chart's day totals (%s); counting rows instead.", what, err)
