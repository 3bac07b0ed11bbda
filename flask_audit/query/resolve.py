"""Prefix terms narrowed to the values the trail holds, so that indexes serve them.

``actor:priya`` means ``lower(actor_email) LIKE 'priya%'``, which no index can seek: at a
million events a rare prefix would read the whole window. But an index such as
``(tenant_id, actor_email, occurred_at)`` lists each actor once per run of rows, so the
distinct values a prefix can match are found by *skipping* through it, one seek per
value: a recursive query (the same on SQLite, PostgreSQL and MariaDB) reads the next few
distinct values, and a value that is no case variant of the prefix makes the walk jump to
the next string that could be one (after ``Paul`` for ``pri``: ``PrI``). Up to
:data:`MAX_VALUES` values, the term becomes a :class:`~flask_audit.query.search.Stored`
list: an ``IN`` for counting, and one keyset branch per value for a page (see
:func:`flask_audit.query.sql.fetch_page`). A prefix that matches more values is common
enough for a newest-first scan to find its rows quickly, and keeps its ``LIKE``.

Jumps compare strings by code point, so they need a database that orders text that way
(:func:`code_point_order`); on one that does not, prefixes keep their ``LIKE``. Excluded
terms always do.
"""

from __future__ import annotations

import dataclasses
import threading
import typing as t
import weakref

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm

from ..store.models import audit_event_table
from . import search_sql
from .filters import AuditFilter
from .search import Stored
from .search import Term
from .search import TypeMatch

Executor = sa.Connection | sa_orm.Session
#: A prefix matching more stored values than this keeps its ``LIKE``.
MAX_VALUES = 64
#: Distinct values read per query, and at most this many queries per prefix.
_BATCH = 16
_MAX_ROUNDS = 24

_ORDERS: weakref.WeakKeyDictionary[sa.Engine, bool] = weakref.WeakKeyDictionary()
_orders_lock = threading.Lock()
#: PostgreSQL collations that order text by code point, as SQLite and MariaDB's ``_bin`` do.
_CODE_POINT_COLLATIONS = frozenset({"C", "POSIX", "C.UTF-8", "C.utf8", "C.UTF8", "ucs_basic"})


def connection_of(executor: Executor) -> sa.Connection:
    return executor if isinstance(executor, sa.Connection) else executor.connection()


def code_point_order(executor: Executor) -> bool:
    """Whether the audit columns compare text by code point on ``executor``'s database.

    SQLite compares bytes, and :class:`~flask_audit.store.models.ExactString` gives MariaDB
    and MySQL binary collations; PostgreSQL uses the database's collation, read once per
    engine: ``C`` (or ``C.UTF-8``) orders by code point, a language's collation does not.
    """
    conn = connection_of(executor)
    name = conn.dialect.name
    if name != "postgresql":
        return name in ("sqlite", "mysql", "mariadb")
    engine = conn.engine
    with _orders_lock:
        known = _ORDERS.get(engine)
    if known is None:
        row = conn.exec_driver_sql(
            "SELECT to_jsonb(d) FROM pg_database d WHERE datname = current_database()"
        ).scalar()
        info = row if isinstance(row, dict) else {}
        provider = info.get("datlocprovider", "c")
        locale = info.get("datlocale") if provider == "b" else info.get("datcollate")
        known = provider in ("b", "c") and locale in _CODE_POINT_COLLATIONS
        with _orders_lock:
            _ORDERS[engine] = known
    return known


def resolve(
    executor: Executor, flt: AuditFilter, *, tenant_scoped: bool, tenant_id: str | None
) -> AuditFilter:
    """``flt`` with each included prefix term of its search narrowed to the stored values it
    matches in the scope (any time), where there are few; otherwise ``flt`` unchanged."""
    search = flt.q
    if search is None or not any(_resolvable(term) for term in search.terms):
        return flt
    scope = _scope(executor, tenant_scoped, tenant_id)
    if scope is None or not code_point_order(executor):
        return flt
    terms = []
    for term in search.terms:
        if _resolvable(term):
            values = _stored_values(connection_of(executor), term, scope)
            if values is not None:
                term = dataclasses.replace(term, value=Stored(values))
        terms.append(term)
    return dataclasses.replace(flt, q=dataclasses.replace(search, terms=tuple(terms)))


def _resolvable(term: Term) -> bool:
    if term.negated:
        return False
    if term.field in ("actor", "team"):
        return isinstance(term.value, str)
    return isinstance(term.value, TypeMatch) and term.value.prefix


def _scope(executor: Executor, tenant_scoped: bool, tenant_id: str | None) -> sa.ColumnElement[bool] | None:
    """The one tenant the skip runs in: the indexes lead with ``tenant_id``, so a scan across
    tenants (an app without a tenant loader whose events have some) cannot skip."""
    tenant = audit_event_table.c.tenant_id
    if tenant_scoped:
        return tenant.is_(None) if tenant_id is None else tenant == tenant_id
    probe = sa.select(sa.literal(1)).where(tenant.is_not(None)).limit(1)
    if connection_of(executor).execute(probe).first() is not None:
        return None
    return tenant.is_(None)


def _stored_values(conn: sa.Connection, term: Term, scope: sa.ColumnElement[bool]) -> tuple[str, ...] | None:
    """The distinct values of ``term``'s column that match it, or ``None`` past :data:`MAX_VALUES`."""
    column = search_sql.COLUMNS[term.field]
    prefix = term.value.value if isinstance(term.value, TypeMatch) else t.cast(str, term.value)
    options = [search_sql.variants(char) for char in prefix]
    high = search_sql.successor("".join(chars[-1] for chars in options))
    walk = _walk(column, scope, search_sql.escaped(prefix) + "%", high)
    found: list[str] = []
    start, done = "".join(chars[0] for chars in options), None
    for _ in range(_MAX_ROUNDS):
        rows = conn.execute(walk, {"start": start}).all()
        jump: str | None = None
        for value, matches in rows:
            if value == done or (jump is not None and value < jump):
                continue  # read already, or between two variants: passed over
            if matches:
                found.append(value)
                if len(found) > MAX_VALUES:
                    return None
            following = next_variant(value, options)
            if following is None:
                return tuple(found)
            if following == value:  # a variant: go on with the values after it
                start, done, jump = value, value, None
            else:
                start, done, jump = following, None, following
        if len(rows) < _BATCH:
            return tuple(found)
    return None


def next_variant(value: str, options: list[list[str]]) -> str | None:
    """``value`` if it starts with a case variant of the prefix (``options``: each of its
    characters' variants, in order), else the smallest string after it that does; ``None``
    if none does."""
    size = len(options)
    at = 0
    while at < min(len(value), size) and value[at] in options[at]:
        at += 1
    if at == size:
        return value
    if at == len(value):
        return value + "".join(chars[0] for chars in options[at:])
    for back in range(at, -1, -1):
        later = [char for char in options[back] if char > value[back]]
        if later:
            return value[:back] + later[0] + "".join(chars[0] for chars in options[back + 1 :])
    return None


def _walk(
    column: sa.Column[t.Any], scope: sa.ColumnElement[bool], pattern: str, high: str | None
) -> sa.Select[t.Any]:
    """The first :data:`_BATCH` distinct values of ``column`` from ``:start`` up to ``high``,
    one index seek each, in order, with whether ``pattern`` matches each."""

    def first(bound: sa.ColumnElement[bool]) -> sa.ScalarSelect[t.Any]:
        bounds = [scope, bound] if high is None else [scope, bound, column < high]
        return sa.select(column).where(*bounds).order_by(column).limit(1).scalar_subquery()

    start = sa.select(
        first(column >= sa.bindparam("start", type_=column.type)).label("value"),
        sa.literal(1, sa.Integer).label("step"),
    )
    walk = start.cte("fa_walk", recursive=True)
    previous = walk.alias()
    walk = walk.union_all(
        sa.select(first(column > previous.c.value), previous.c.step + 1).where(
            previous.c.value.is_not(None), previous.c.step < _BATCH
        )
    )
    matches = sa.case((search_sql.like(walk.c.value, pattern), 1), else_=0)
    return (
        sa.select(walk.c.value, matches.label("matches"))
        .where(walk.c.value.is_not(None))
        .order_by(walk.c.step)
    )
