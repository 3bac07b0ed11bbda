"""Calendar days in the admin's display zone, counted in SQL on every backend.

The stored times are UTC. SQLite, PostgreSQL and MariaDB share no time zone function, so a
day in a zone is ``date(occurred_at + offset)`` for each stretch of constant UTC offset
(:func:`offset_runs`), which all three can compute.
"""

from __future__ import annotations

import datetime as dt
import math
import typing as t

import sqlalchemy as sa
from sqlalchemy.ext import compiler as sa_compiler


class LocalDate(sa.sql.functions.GenericFunction[dt.date]):
    """``date(occurred_at + shift)``: the calendar date at a fixed UTC offset, per dialect."""

    type = sa.Date()
    name = "flask_audit_local_date"
    inherit_cache = True


@sa_compiler.compiles(LocalDate)
def _local_date_sqlite(element: LocalDate, compiler: sa.sql.compiler.SQLCompiler, **kw: t.Any) -> str:
    column, shift = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"date({column}, {shift} || ' seconds')"


@sa_compiler.compiles(LocalDate, "postgresql")
def _local_date_postgresql(element: LocalDate, compiler: sa.sql.compiler.SQLCompiler, **kw: t.Any) -> str:
    column, shift = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"date({column} + make_interval(secs => {shift}))"


@sa_compiler.compiles(LocalDate, "mysql")
@sa_compiler.compiles(LocalDate, "mariadb")
def _local_date_mysql(element: LocalDate, compiler: sa.sql.compiler.SQLCompiler, **kw: t.Any) -> str:
    column, shift = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"date({column} + INTERVAL {shift} SECOND)"


def offset_runs(
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


def as_date(value: t.Any) -> dt.date:
    """A driver's day value (a date, a datetime or ISO text) as a date."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))
