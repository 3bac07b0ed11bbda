"""SQL that has the database render the CSV cells of an export (the ``"sql"`` method).

The database builds ``"time","team",...,"user agent","`` for each row, leaving only Details
to Python: large exports are several times faster than formatting each cell in Python
(``benchmarks/export_bench.py``). Importing this module registers the per-dialect SQL of
the functions below; :mod:`flask_audit.export.csv_export` imports it when it loads.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from sqlalchemy.ext import compiler as sa_compiler

from ..store.models import audit_event_table

#: Cell starts a spreadsheet reads as a formula: both export methods put ``'`` before them.
DANGEROUS_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\x00")
#: The audit_event columns of the cells between Time and Details, in CSV order.
TEXT_COLUMNS = (
    "team",
    "entity",
    "activity",
    "action",
    "actor_email",
    "ip",
    "event_type",
    "outcome",
    "user_agent",
)


class _IsoTime(sa.sql.functions.GenericFunction[str]):
    """``occurred_at`` as :func:`.csv_export.format_time` writes it."""

    type = sa.String()
    name = "flask_audit_iso_time"
    inherit_cache = True


class _FirstCode(sa.sql.functions.GenericFunction[int]):
    """The code of a text's first character (0 or NULL for an empty text, by dialect)."""

    type = sa.Integer()
    name = "flask_audit_first_code"
    inherit_cache = True


def _argument(element: sa.sql.functions.FunctionElement[t.Any], compiler: t.Any, **kw: t.Any) -> str:
    return str(compiler.process(next(iter(element.clauses)), **kw))


def _bound(compiler: t.Any, value: str, **kw: t.Any) -> str:
    # A bound value: '%' in a literal would need escaping for pyformat drivers such as PyMySQL.
    return str(compiler.process(sa.literal(value), **kw))


@sa_compiler.compiles(_IsoTime, "sqlite")
def _iso_time_sqlite(element: _IsoTime, compiler: t.Any, **kw: t.Any) -> str:
    # SQLAlchemy stores SQLite times as 'YYYY-MM-DD HH:MM:SS.ffffff'.
    column = _argument(element, compiler, **kw)
    return f"replace({column}, ' ', 'T') || 'Z'"


@sa_compiler.compiles(_IsoTime, "postgresql")
def _iso_time_postgresql(element: _IsoTime, compiler: t.Any, **kw: t.Any) -> str:
    pattern = _bound(compiler, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"', **kw)
    return f"to_char({_argument(element, compiler, **kw)}, {pattern})"


@sa_compiler.compiles(_IsoTime, "mysql")
@sa_compiler.compiles(_IsoTime, "mariadb")
def _iso_time_mysql(element: _IsoTime, compiler: t.Any, **kw: t.Any) -> str:
    pattern = _bound(compiler, "%Y-%m-%dT%H:%i:%s.%fZ", **kw)
    return f"date_format({_argument(element, compiler, **kw)}, {pattern})"


@sa_compiler.compiles(_FirstCode, "sqlite")
def _first_code_sqlite(element: _FirstCode, compiler: t.Any, **kw: t.Any) -> str:
    # unicode() is NULL for a text that starts with NUL: instr() finds that NUL.
    value = _argument(element, compiler, **kw)
    return f"coalesce(unicode({value}), instr({value}, char(0)) - 1)"


@sa_compiler.compiles(_FirstCode, "postgresql")
def _first_code_postgresql(element: _FirstCode, compiler: t.Any, **kw: t.Any) -> str:
    return f"ascii({_argument(element, compiler, **kw)})"


@sa_compiler.compiles(_FirstCode, "mysql")
@sa_compiler.compiles(_FirstCode, "mariadb")
def _first_code_mysql(element: _FirstCode, compiler: t.Any, **kw: t.Any) -> str:
    return f"ord({_argument(element, compiler, **kw)})"


_CODES = tuple(ord(start) for start in DANGEROUS_STARTS if start != "\x00")


def _text(value: t.Any) -> sa.ColumnElement[str]:
    return sa.literal(value, sa.String())


def _neutralised(value: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """SQL for :func:`.csv_export.neutralise`, then quotes doubled: the inside of a quoted CSV cell.

    ``CASE <first code> WHEN ...`` computes the code once per cell, whatever the branch.
    """
    prefixed = _text("'") + value
    # Code 0 is also what some dialects give for '': only a non-empty text starts with NUL.
    nul = sa.case((value != _text(""), prefixed), else_=_text(""))
    whens: list[tuple[t.Any, t.Any]] = [(sa.literal_column(str(code)), prefixed) for code in _CODES]
    whens.append((sa.literal_column("0"), nul))
    kept = sa.func.coalesce(value, _text(""))
    risky = sa.case(*whens, value=_FirstCode(value), else_=kept)
    # Most cells start with a letter, past every dangerous code: one comparison decides.
    safe = sa.case((_FirstCode(value) > sa.literal_column(str(max(_CODES))), value), else_=risky)
    return sa.func.replace(safe, _text('"'), _text('""'), type_=sa.String())


def _capitalised(value: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """SQL for :meth:`str.capitalize` on the ASCII action names."""
    first = sa.func.upper(sa.func.substr(value, 1, 1), type_=sa.String())
    return first + sa.func.lower(sa.func.substr(value, 2), type_=sa.String())


def line_start() -> sa.ColumnElement[str]:
    """``"time","team",...,"user agent","``: each line up to the Details cell's content."""
    cols = audit_event_table.c
    line = _text('"') + _IsoTime(cols.occurred_at)
    for name in TEXT_COLUMNS:
        column: sa.ColumnElement[str] = cols[name]
        line = line + _text('","') + _neutralised(_capitalised(column) if name == "action" else column)
    return line + _text('","')
