"""Filters over the audit trail turned into SQL, and keyset pages read with them.

The page, the JSON API, the export job and ``flask audit export`` all go through
:class:`~flask_audit.query.filters.AuditFilter` and :func:`select_events`, so they can never
disagree on what a filter means, on the retention window or on the tenant scope. Reading
and checking the filters is in :mod:`flask_audit.query.filters`.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import datetime as dt
import typing as t

import sqlalchemy as sa

from ..exceptions import InvalidFilterError
from ..store.models import audit_event_table
from ..store.models import AuditEvent
from . import search_sql

# Re-exported: the tests, the benchmarks and other callers import these from here.
from .filters import AuditFilter
from .filters import Cursor
from .resolve import connection_of
from .resolve import Executor as Executor
from .resolve import resolve


class Scope(t.TypedDict):
    """Where a query may look: the retention window and, with a tenant loader, one tenant."""

    retention_days: int
    tenant_scoped: bool
    tenant_id: str | None


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
    """The WHERE clauses of ``flt``: window, tenant scope, filters, search and (optionally) cursor.

    The time bounds (window, start, end, a single ``created:`` range of the search, cursor,
    and ``since`` inclusive and ``until`` exclusive) are merged into one lower and one upper
    bound: given two, SQLite ranges its index scan on the first it meets. The cursor's time
    is redundant beside the row comparison, but without it a trail partitioned by month
    (``AUDIT_PG_PARTITIONS``) reads every month newer than the cursor too. A start before
    the window is clamped to the window, so no backend sees a year 0001.
    """
    cols = audit_event_table.c
    cursor = flt.cursor if with_cursor else None
    lowest = [window_start(retention_days, now), flt.start, since]
    highest = [flt.end]
    span = flt.q.span() if flt.q is not None else None
    if span is not None:
        lowest.append(span.low)
        highest.append(None if span.high is None else span.high - dt.timedelta(microseconds=1))
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
    if flt.q is not None:
        where += search_sql.clauses(flt.q)
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


#: A search for at most this many whole values of one field reads one keyset branch each.
MAX_BRANCHES = 8


def check_backend(executor: Executor, flt: AuditFilter) -> None:
    """Raise :class:`InvalidFilterError` for a search this database cannot run (an ``ip:``
    network SQLite cannot compare), before any statement does."""
    reason = search_sql.unsupported(flt.q, connection_of(executor).dialect.name)
    if reason is not None:
        raise InvalidFilterError(reason)


def value_branches(flt: AuditFilter) -> list[list[sa.ColumnElement[bool]]]:
    """One extra equality per value when the search allows a few whole values of one field.

    ``actor_email IN (a, b)`` newest first is a scan of the window in time order on SQLite
    (its planner prefers the index that gives the order), however rare ``a`` and ``b``
    are; ``actor_email = a`` and ``actor_email = b`` are each a range of
    ``(tenant_id, actor_email, occurred_at)`` already in order, merged by :func:`fetch_page`.
    The most specific field with an index is chosen.
    """
    if flt.q is not None:
        for field in ("actor", "team", "type", "entity", "action"):
            values = search_sql.exact_values(flt.q, field)
            if values is not None and 1 < len(values) <= MAX_BRANCHES:
                column = search_sql.COLUMNS[field]
                return [[search_sql.equals(column, value)] for value in values]
    return [[]]


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
    A search this database cannot run raises :class:`InvalidFilterError` first; its prefixes
    are narrowed to stored values (:func:`~flask_audit.query.resolve.resolve`) unless the
    caller did so already.

    :param columns: the column names to load (all by default): the page needs fewer.
    """
    cols = audit_event_table.c
    picked = [cols[name] for name in columns] if columns else list(cols)
    for needed in (cols.occurred_at, cols.id):
        if needed not in picked:
            picked.append(needed)
    scope = Scope(retention_days=retention_days, tenant_scoped=tenant_scoped, tenant_id=tenant_id)
    newer = flt.cursor is not None and flt.cursor.newer
    check_backend(executor, flt)
    flt = resolve(executor, flt, tenant_scoped=tenant_scoped, tenant_id=tenant_id)
    where = conditions(flt, now=now, **scope)
    parts = [
        sa.select(*picked).where(*where, *tenants, *values).order_by(*_order(newer)).limit(limit + 1)
        for tenants in tenant_branches(executor, tenant_scoped)
        for values in value_branches(flt)
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
