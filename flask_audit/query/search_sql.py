"""A parsed search turned into WHERE clauses: bound values, the same meaning on every backend.

Terms of one field are ORed (an excluded one is ANDed as ``NOT``), fields are ANDed, and
each bare word must appear in the activity. How each field matches:

- ``actor:``, ``team:``, ``type:x*``, words: ``lower(column) LIKE lower('value%')``, with
  ``%``, ``_`` and ``/`` escaped. ASCII letters fold on every backend; other letters as the
  database's ``lower()`` folds them (PostgreSQL and MariaDB fold ``É``/``é``, SQLite only
  ASCII). A ``LIKE`` on ``lower()`` cannot seek an index, so the page first narrows such a
  prefix to the few values stored that match it (:mod:`flask_audit.query.resolve`): those
  become ``IN`` lists and equalities the indexes serve.
- ``entity:``, ``action:``, ``outcome:``, exact ``type:``: one ``IN`` list per field.
- ``ip:`` with a network: PostgreSQL ``CAST(ip AS inet) <<= network`` (only for text shaped
  like an address, so a stray value never breaks the cast), MariaDB ``INET6_ATON`` ranges,
  SQLite the text of IPv4 networks on octet boundaries (``/8``, ``/16``, ``/24``, ``/32``);
  other networks are refused there by :func:`unsupported`. An address is compared as text,
  in the canonical form the capture stores.
- ``created:``: the time range; a single one is folded into the page's time bounds by
  :func:`flask_audit.query.sql.conditions` instead (one range for the index).
"""

from __future__ import annotations

import functools
import ipaddress
import typing as t

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext import compiler as sa_compiler
from sqlalchemy.sql import visitors

from ..exceptions import InvalidFilterError
from ..store.models import audit_event_table
from .search import IPNetwork
from .search import Search
from .search import Span
from .search import Stored
from .search import Target
from .search import Term
from .search import TEXT
from .search import TypeMatch

Clause = sa.ColumnElement[bool]
#: The column of each field that compares whole values.
COLUMNS: dict[str, sa.Column[t.Any]] = {
    "actor": audit_event_table.c.actor_email,
    "team": audit_event_table.c.team,
    "type": audit_event_table.c.event_type,
    "entity": audit_event_table.c.entity,
    "action": audit_event_table.c.action,
    "outcome": audit_event_table.c.outcome,
}
_ESCAPE = "/"


def clauses(search: Search) -> list[Clause]:
    """The clauses of ``search``, to AND with the scope; without the single ``created:`` range."""
    where: list[Clause] = []
    single_span = search.span()
    for field, (included, excluded) in search.groups().items():
        if field == TEXT:
            where += [_match(term) for term in included]
        elif field == "created" and single_span is not None:
            pass
        elif included:
            where.append(_any(field, included))
        where += [_excluded(_match(term)) for term in excluded]
    return where


def exact_values(search: Search, field: str) -> list[str] | None:
    """The values ``field``'s included terms allow, when each names whole values (``None`` if
    a term is still a prefix, or the field is not given)."""
    included, _ = search.groups().get(field, ([], []))
    if not included or field not in COLUMNS:
        return None
    values: set[str] = set()
    for term in included:
        found = whole_values(term)
        if found is None:
            return None
        values.update(found)
    return sorted(values)


def unsupported(search: Search | None, dialect: str) -> str | None:
    """Why ``search`` cannot run on ``dialect`` (a SQLite limit on ``ip:`` networks), or ``None``."""
    if search is None or dialect != "sqlite":
        return None
    for term in search.terms:
        if term.field == "ip" and isinstance(term.value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            if not _text_network(term.value):
                return (
                    f"'{term.token}' at column {term.column} cannot be searched on SQLite, which"
                    " stores addresses as text: use an address or an IPv4 network of /8, /16, /24"
                    " or /32 (PostgreSQL and MariaDB take any network)."
                )
    return None


def whole_values(term: Term) -> tuple[str, ...] | None:
    """The whole values ``term`` names, or ``None`` for a prefix, a word or a range."""
    value = term.value
    if isinstance(value, Stored):
        return value.values
    if isinstance(value, TypeMatch):
        return None if value.prefix else (value.value,)
    if term.field in ("entity", "action", "outcome"):
        return (t.cast(str, value),)
    return None


def _any(field: str, terms: list[Term]) -> Clause:
    """One field's included terms: any may match. Whole values become one ``IN``."""
    whole = [found for found in map(whole_values, terms) if found is not None]
    parts = [_in(COLUMNS[field], sorted({v for values in whole for v in values}))] if whole else []
    parts += [_match(term) for term in terms if whole_values(term) is None]
    return sa.or_(*parts)


def _match(term: Term) -> Clause:
    """What one term matches (excluded or not)."""
    cols = audit_event_table.c
    value = term.value
    found = whole_values(term)
    if found is not None:
        return _in(COLUMNS[term.field], list(found))
    if term.field == TEXT:
        return like(cols.activity, "%" + escaped(t.cast(str, value)) + "%")
    if isinstance(value, TypeMatch):
        return like(cols.event_type, escaped(value.value) + "%")
    if isinstance(value, Target):
        kind = sa.func.lower(cols.target_type) == sa.func.lower(_literal(value.type))
        return kind if value.id is None else sa.and_(kind, equals(cols.target_id, value.id))
    if isinstance(value, Span):
        return _span(value)
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return InNetwork(cols.ip, str(value))
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return equals(cols.ip, str(value))
    return like(COLUMNS[term.field], escaped(t.cast(str, value)) + "%")  # actor:, team:


def _excluded(match: Clause) -> Clause:
    """``NOT match``, where a match on a NULL column (unknown) counts as no match."""
    return sa.not_(sa.func.coalesce(match, sa.false(), type_=sa.Boolean))


def _span(span: Span) -> Clause:
    column = audit_event_table.c.occurred_at
    parts = []
    if span.low is not None:
        parts.append(column >= span.low)
    if span.high is not None:
        parts.append(column < span.high)
    return sa.and_(sa.true(), *parts)


# -- values in the SQL text ------------------------------------------------------------
# Values are written into the SQL (escaped by the dialect), as the filters' ``_equals``
# does, so that PostgreSQL plans for the value: a rare actor and a common one differ.


def _literal(value: str, column: sa.ColumnElement[t.Any] | None = None) -> sa.BindParameter[str]:
    type_ = column.type if column is not None else sa.String()
    return sa.bindparam(None, value, type_=type_, literal_execute=True)


def equals(column: sa.ColumnElement[t.Any], value: str) -> Clause:
    return column == _literal(value, column)


def _in(column: sa.ColumnElement[t.Any], values: list[str]) -> Clause:
    if not values:
        return sa.false()
    if len(values) == 1:
        return equals(column, values[0])
    return column.in_(sa.bindparam(None, values, type_=column.type, expanding=True, literal_execute=True))


def escaped(text: str) -> str:
    """``text`` for a ``LIKE`` pattern with ``/`` as the escape: ``%`` and ``_`` are literal."""
    return text.replace(_ESCAPE, _ESCAPE * 2).replace("%", _ESCAPE + "%").replace("_", _ESCAPE + "_")


def like(column: sa.ColumnElement[t.Any], pattern: str) -> Clause:
    """``lower(column) LIKE lower(pattern)``: the same folding on both sides, per backend."""
    return sa.func.lower(column).like(sa.func.lower(_literal(pattern)), escape=_ESCAPE)


# -- case variants -------------------------------------------------------------------------


@functools.cache
def _preimages() -> dict[str, frozenset[str]]:
    """For each lowercase letter, every character that lowercases to it (``K``, ``k`` and the
    Kelvin sign for ``k``). The few outside the obvious pairs all lie below U+3000."""
    found: dict[str, set[str]] = {}
    for code in range(0x3000):
        char = chr(code)
        lowered = char.lower()
        if lowered != char:
            # "İ" lowers to two characters in Python, to "i" in C libraries: keep the first.
            found.setdefault(lowered[0], {lowered[0]}).add(char)
    return {lower: frozenset(chars) for lower, chars in found.items()}


def variants(char: str) -> list[str]:
    """The characters a database may fold to the same letter as ``char``, in code point order."""
    lowered = char.lower()
    found = {char}
    if len(lowered) == 1:
        found |= {lowered} | _preimages().get(lowered, frozenset())
    if len(upper := char.upper()) == 1:
        found.add(upper)
    return sorted(found)


def successor(text: str) -> str | None:
    """The first string after every string that starts with ``text`` (code point order)."""
    while text:
        code = ord(text[-1]) + 1
        if 0xD800 <= code <= 0xDFFF:
            code = 0xE000
        if code <= 0x10FFFF:
            return text[:-1] + chr(code)
        text = text[:-1]
    return None


# -- ip: networks, per dialect ------------------------------------------------------------


class InNetwork(sa.ColumnElement[bool]):
    """``column`` holds an address inside ``network``: compiled per dialect."""

    type = sa.Boolean()
    inherit_cache = True
    _traverse_internals = [
        ("column", visitors.InternalTraversal.dp_clauseelement),
        ("network", visitors.InternalTraversal.dp_string),
    ]

    def __init__(self, column: sa.ColumnElement[t.Any], network: str) -> None:
        self.column = column
        self.network = network


def _net(element: InNetwork) -> IPNetwork:
    return ipaddress.ip_network(element.network)


_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: Text PostgreSQL's ``inet`` surely reads: IPv4 dotted quads, IPv6 per RFC 4291 (RFC 3986's
#: grammar). Anything else is no match rather than a failed cast.
IPV4_TEXT = rf"^{_OCTET}(\.{_OCTET}){{3}}$"


def _ipv6_text() -> str:
    h16 = "[0-9A-Fa-f]{1,4}"
    ls32 = rf"({h16}:{h16}|{_OCTET}(\.{_OCTET}){{3}})"
    forms = [rf"({h16}:){{6}}{ls32}", rf"::({h16}:){{5}}{ls32}"]
    for before, after in ((0, 4), (1, 3), (2, 2), (3, 1), (4, 0)):
        head = f"{h16}" if before == 0 else rf"(({h16}:){{0,{before}}}{h16})"
        tail = rf"({h16}:){{{after}}}{ls32}" if after else ls32
        forms.append(rf"({head})?::{tail}")
    forms.append(rf"((({h16}:){{0,5}}{h16})?::{h16})")
    forms.append(rf"((({h16}:){{0,6}}{h16})?::)")
    return "^(" + "|".join(forms) + ")$"


IPV6_TEXT = _ipv6_text()


@sa_compiler.compiles(InNetwork, "postgresql")
def _in_network_postgresql(element: InNetwork, compiler: sa.sql.compiler.SQLCompiler, **kw: t.Any) -> str:
    net = _net(element)
    column = element.column
    shaped = column.regexp_match(_literal(IPV4_TEXT if net.version == 4 else IPV6_TEXT))
    inside = sa.cast(column, postgresql.INET).op("<<=", is_comparison=True)(
        sa.cast(_literal(str(net)), postgresql.INET)
    )
    return f"({compiler.process(sa.case((shaped, inside), else_=sa.false()), **kw)})"


@sa_compiler.compiles(InNetwork, "mysql")
@sa_compiler.compiles(InNetwork, "mariadb")
def _in_network_mysql(element: InNetwork, compiler: sa.sql.compiler.SQLCompiler, **kw: t.Any) -> str:
    net = _net(element)
    packed = sa.func.inet6_aton(element.column)
    clause = sa.and_(
        sa.func.length(packed) == (4 if net.version == 4 else 16),
        packed >= sa.func.inet6_aton(_literal(str(net.network_address))),
        packed <= sa.func.inet6_aton(_literal(str(net.broadcast_address))),
    )
    return f"({compiler.process(clause, **kw)})"


def _text_network(net: IPNetwork) -> bool:
    return net.version == 4 and net.prefixlen % 8 == 0


@sa_compiler.compiles(InNetwork)
def _in_network_text(element: InNetwork, compiler: sa.sql.compiler.SQLCompiler, **kw: t.Any) -> str:
    """SQLite (and any other backend): the leading octets as text, for octet-aligned IPv4."""
    net = _net(element)
    if not _text_network(net):
        raise InvalidFilterError(
            f"'ip:{net}' cannot be searched on this database: use an IPv4 network of /8, /16, /24 or /32."
        )
    column = element.column
    octets = str(net.network_address).split(".")[: net.prefixlen // 8]
    if len(octets) == 4:
        clause: Clause = column == _literal(str(net.network_address))
    else:
        dotted = column.op("GLOB", is_comparison=True)(_literal("*.*.*.*"))
        clause = sa.and_(
            column.like(_literal(escaped(".".join(octets) + ".") + "%" if octets else "%"), escape=_ESCAPE),
            dotted,
            sa.not_(column.op("GLOB", is_comparison=True)(_literal("*.*.*.*.*"))),
            sa.not_(column.op("GLOB", is_comparison=True)(_literal("*[^0-9.]*"))),
        )
    return f"({compiler.process(clause, **kw)})"
