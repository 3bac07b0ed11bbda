"""The search language of the audit page and the JSON API's ``q``.

A query is a list of terms separated by spaces::

    actor:priya type:team.* -outcome:failure created:2026-11-01..2026-11-30 "Équipe Zoë"

- ``qualifier:value`` narrows one column: ``actor:``, ``team:`` (case-insensitive
  prefixes), ``entity:``, ``type:`` (a trailing ``*`` makes a prefix), ``action:``,
  ``outcome:``, ``target:`` (a type, or ``type:id``), ``ip:`` (an address or a network) and
  ``created:`` (``2026-11-01``, ``>=2026-11-01``, ``>``, ``<``, ``<=``, or a range ``a..b``;
  days in the display zone).
- ``-`` before a term excludes what it matches.
- The same qualifier given twice means either value; different qualifiers must all match.
- Other words must each appear in the activity text, ignoring case.
- ``"..."`` quotes a value or a word with spaces or colons (``\\"`` is a quote inside one).

:func:`parse` turns the text into a :class:`Search` of checked terms, or raises
:class:`SearchError` naming the column and the token at fault. Turning a search into SQL is
:mod:`flask_audit.query.search_sql`'s job.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import ipaddress
import re
import typing as t
import zoneinfo

from ..exceptions import InvalidFilterError
from ..taxonomy import ACTIONS
from ..taxonomy import ENTITIES
from ..taxonomy import EVENT_TYPES
from ..taxonomy import OUTCOMES

QUALIFIERS = ("actor", "team", "entity", "type", "action", "outcome", "target", "ip", "created")
#: Words people reach for, pointed at the qualifier that does it (only in error hints).
ALIASES = {
    "event_type": "type",
    "event": "type",
    "user": "actor",
    "email": "actor",
    "by": "actor",
    "date": "created",
    "time": "created",
    "when": "created",
    "address": "ip",
    "result": "outcome",
    "status": "outcome",
}
MAX_LENGTH = 1000
MAX_TERMS = 30
TEXT = "text"  # the field of a bare word: the activity text

_QUALIFIER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_TYPE_CHARS = re.compile(r"[A-Za-z0-9._-]+")
_UNESCAPE = re.compile(r'\\(["\\])')
_ONE_MICROSECOND = dt.timedelta(microseconds=1)
_CONTROL = frozenset(chr(code) for code in (*range(32), 127))

IPAddress: t.TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: t.TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclasses.dataclass(frozen=True)
class TypeMatch:
    """``type:`` value: an event type, or with ``prefix`` every type that starts with it."""

    value: str
    prefix: bool = False


@dataclasses.dataclass(frozen=True)
class Target:
    """``target:`` value: a target type (any case), and optionally its exact id."""

    type: str
    id: str | None = None


@dataclasses.dataclass(frozen=True)
class Span:
    """``created:`` value: the times from ``low`` (inclusive) to ``high`` (exclusive), UTC.

    ``None`` is open. Every form reduces to this: a day is midnight to midnight in the
    display zone, ``<=2026-11-30`` ends at the next midnight, ``>T`` starts a microsecond
    after ``T`` (the stored precision).
    """

    low: dt.datetime | None
    high: dt.datetime | None

    def contains(self, moment: dt.datetime) -> bool:
        return (self.low is None or moment >= self.low) and (self.high is None or moment < self.high)


@dataclasses.dataclass(frozen=True)
class Stored:
    """A prefix term (``actor:``, ``team:``, ``type:x*``) narrowed to the values the trail
    holds that match it, so that the query can use equality on an index (see
    :mod:`flask_audit.query.resolve`). Never parsed from text."""

    values: tuple[str, ...]


Value: t.TypeAlias = str | TypeMatch | Target | IPAddress | IPNetwork | Span | Stored


@dataclasses.dataclass(frozen=True)
class Term:
    """One checked term: ``field`` is a qualifier or :data:`TEXT`, ``column`` is 1-based."""

    field: str
    value: Value
    negated: bool
    column: int
    token: str


@dataclasses.dataclass(frozen=True)
class Search:
    """A parsed query: its text (as typed, trimmed) and its terms in order."""

    text: str
    terms: tuple[Term, ...]

    def groups(self) -> dict[str, tuple[list[Term], list[Term]]]:
        """Terms by field, in first-seen order: ``{field: (included, excluded)}``."""
        out: dict[str, tuple[list[Term], list[Term]]] = {}
        for term in self.terms:
            included, excluded = out.setdefault(term.field, ([], []))
            (excluded if term.negated else included).append(term)
        return out

    def span(self) -> Span | None:
        """The one time range every match lies in, when ``created:`` is given once (included)."""
        included, _ = self.groups().get("created", ([], []))
        if len(included) != 1:
            return None
        return t.cast(Span, included[0].value)


class SearchError(InvalidFilterError):
    """A query that cannot be used, with where it goes wrong (for the page's caret)."""

    def __init__(self, message: str, *, query: str, column: int, width: int) -> None:
        super().__init__(message)
        self.query = query
        #: 1-based column of the first character at fault, and how many characters.
        self.column = column
        self.width = max(width, 1)

    def pointer(self, size: int = 64) -> tuple[str, str]:
        """Two lines to show in a fixed-width font: the query (cut to about ``size``
        characters around the fault, marked with ``…``) and ``^`` under the fault."""
        start = max(0, min(self.column - 1 - size // 3, len(self.query) - size))
        shown = self.query[start : start + size]
        lead = "…" if start else ""
        tail = "…" if start + size < len(self.query) else ""
        offset = self.column - 1 - start + len(lead)
        width = min(self.width, len(shown) - (self.column - 1 - start))
        return lead + shown + tail, " " * offset + "^" * max(width, 1)


@dataclasses.dataclass
class _Token:
    negated: bool
    qualifier: str | None  # as typed, without the colon
    value: str
    column: int  # where the token starts, the "-" included
    value_column: int
    raw: str
    star: bool  # the value ends with an unquoted "*"


def parse(text: str, *, timezone: str = "UTC") -> Search | None:
    """Check ``text`` and read it into a :class:`Search` (``None`` for a blank query).

    Dates without an offset are read in ``timezone``, days from midnight to midnight there.
    """
    query = text.strip()
    if not query:
        return None
    if len(query) > MAX_LENGTH:
        raise InvalidFilterError(f"The search is too long (at most {MAX_LENGTH} characters).")
    if any("\ud800" <= ch <= "\udfff" or ch in _CONTROL for ch in query):
        raise InvalidFilterError("The search contains a control character or a broken one.")
    tz = zoneinfo.ZoneInfo(timezone)
    terms: list[Term] = []
    for token in _tokens(query):
        if len(terms) == MAX_TERMS:
            raise _error(
                query,
                token,
                f"The search has too many terms (at most {MAX_TERMS}):"
                f" '{_braces(token.raw)}' {{at}} is one more.",
            )
        terms.append(_term(query, token, tz))
    search = Search(query, tuple(terms))
    _check_created(query, search)
    return search


def quote(value: str) -> str:
    """``value`` as one search value: quoted when it holds a space, a quote or nothing."""
    if value and not any(ch.isspace() or ch in '"\\' for ch in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _error(query: str, token: _Token, message: str, *, value: bool = False) -> SearchError:
    """``message`` with ``{at}`` filled in ("at column N"), pointing at the token or its value."""
    column = token.value_column if value else token.column
    width = len(token.raw) - (column - token.column)
    return SearchError(message.format(at=f"at column {column}"), query=query, column=column, width=width)


def _tokens(query: str) -> t.Iterator[_Token]:
    """Split on unquoted spaces; read a leading ``-``, a ``name:`` and quoted parts."""
    at, end = 0, len(query)
    while at < end:
        if query[at].isspace():
            at += 1
            continue
        start = at
        negated = query[at] == "-"
        if negated:
            at += 1
            if at == end or query[at].isspace():
                raise SearchError(
                    f"Nothing follows the '-' at column {start + 1}: write it right before a term,"
                    " as in -outcome:failure.",
                    query=query,
                    column=start + 1,
                    width=1,
                )
        qualifier = None
        name = _QUALIFIER_NAME.match(query, at)
        if name and name.end() < end and query[name.end()] == ":":
            qualifier, at = name.group(), name.end() + 1
        value_start = at
        parts: list[str] = []
        star = False
        while at < end and not query[at].isspace():
            if query[at] == '"':
                closing = _closing_quote(query, at)
                parts.append(_UNESCAPE.sub(r"\1", query[at + 1 : closing]))
                star, at = False, closing + 1
            else:
                star = query[at] == "*"
                parts.append(query[at])
                at += 1
        yield _Token(
            negated=negated,
            qualifier=qualifier,
            value="".join(parts),
            column=start + 1,
            value_column=value_start + 1,
            raw=query[start:at],
            star=star,
        )


def _closing_quote(query: str, opening: int) -> int:
    at = opening + 1
    while at < len(query):
        if query[at] == "\\" and at + 1 < len(query):
            at += 2
            continue
        if query[at] == '"':
            return at
        at += 1
    raise SearchError(
        f'The quote at column {opening + 1} is not closed: end the value with ".',
        query=query,
        column=opening + 1,
        width=len(query) - opening,
    )


def _term(query: str, token: _Token, tz: zoneinfo.ZoneInfo) -> Term:
    if token.qualifier is None:
        if not token.value.strip():
            raise _error(query, token, "Empty quotes {at} find nothing: put a word between them.")
        return Term(TEXT, token.value, token.negated, token.column, token.raw)
    field = token.qualifier.lower()
    if field not in QUALIFIERS:
        raise _unknown_qualifier(query, token)
    if not token.value.strip():
        example = {"created": "created:>=2026-11-01", "ip": "ip:10.0.0.0/8"}.get(field, f"{field}:…")
        raise _error(query, token, f"'{field}:' {{at}} needs a value, as in {example}.")
    reader = _READERS[field]
    return Term(field, reader(query, token, tz), token.negated, token.column, token.raw)


def _unknown_qualifier(query: str, token: _Token) -> SearchError:
    name = t.cast(str, token.qualifier)
    lowered = name.lower()
    guess = ALIASES.get(lowered) or next(iter(difflib.get_close_matches(lowered, QUALIFIERS, n=1)), None)
    column = token.column + (1 if token.negated else 0)
    if guess:
        hint = f" (try {guess}:)"
    else:
        hint = f" (qualifiers: {', '.join(q + ':' for q in QUALIFIERS)}; quote text with a colon)"
    return SearchError(
        f"Unknown qualifier '{name}:' at column {column}{hint}.",
        query=query,
        column=column,
        width=len(name) + 1,
    )


def _choice(allowed: t.Sequence[str]) -> t.Callable[[str, _Token, zoneinfo.ZoneInfo], Value]:
    def read(query: str, token: _Token, tz: zoneinfo.ZoneInfo) -> Value:
        for choice in allowed:
            if token.value.strip().lower() == choice.lower():
                return choice
        field = t.cast(str, token.qualifier).lower()
        shown = ", ".join(f'"{c}"' if " " in c else c for c in allowed)
        message = f"Unknown {field} '{_braces(token.value)}' {{at}}. Choose one of: {shown}."
        raise _error(query, token, message, value=True)

    return read


def _prefix_text(query: str, token: _Token, tz: zoneinfo.ZoneInfo) -> Value:
    """``actor:`` and ``team:``: any text, matched as a prefix without regard to case."""
    if len(token.value) > 320:
        raise _error(
            query, token, f"The value of '{token.qualifier}:' {{at}} is too long (at most 320 characters)."
        )
    return token.value


def _event_type(query: str, token: _Token, tz: zoneinfo.ZoneInfo) -> Value:
    value = token.value[:-1] if token.star else token.value
    if token.star and not value:
        raise _error(
            query, token, "'type:*' {at} matches every event: give the start of a type, as in type:user.*."
        )
    if not _TYPE_CHARS.fullmatch(value):
        message = f"'{_braces(token.value)}' {{at}} is not an event type: they look like role.updated."
        raise _error(query, token, message, value=True)
    if token.star:
        return TypeMatch(value.lower(), prefix=True)
    entity, dot, verb = value.partition(".")
    if not (entity and dot and verb):
        message = f"'{_braces(token.value)}' {{at}} is not an event type: they look like role.updated."
        raise _error(query, token, message, value=True)
    known = {name.lower(): name for name in EVENT_TYPES}
    return TypeMatch(known.get(value.lower(), value))


def _target(query: str, token: _Token, tz: zoneinfo.ZoneInfo) -> Value:
    kind, colon, ident = token.value.partition(":")
    if not kind.strip() or (colon and not ident):
        message = (
            f"'{_braces(token.value)}' {{at}} is not a target: write a type or type:id, as in target:user:42."
        )
        raise _error(query, token, message, value=True)
    return Target(kind.strip().lower(), ident if colon else None)


def _ip(query: str, token: _Token, tz: zoneinfo.ZoneInfo) -> Value:
    text = token.value.strip()
    try:
        if "/" in text:
            return ipaddress.ip_network(text, strict=False)
        address = ipaddress.ip_address(text)
    except ValueError:
        raise _error(
            query,
            token,
            f"'{_braces(text)}' {{at}} is not an IP address or network (such as 203.0.113.7 or 10.0.0.0/8).",
            value=True,
        ) from None
    if getattr(address, "scope_id", None):
        raise _error(
            query,
            token,
            f"'{_braces(text)}' {{at}} has a zone id, which stored addresses never have.",
            value=True,
        )
    return address


_COMPARISONS = (">=", "<=", ">", "<")


def _braces(text: str) -> str:
    """``text`` safe inside a message that ``str.format`` fills in later."""
    return text.replace("{", "{{").replace("}", "}}")


def _created(query: str, token: _Token, tz: zoneinfo.ZoneInfo) -> Value:
    text = token.value.strip()
    op = next((op for op in _COMPARISONS if text.startswith(op)), "")

    def moment(part: str, *, upper: bool) -> dt.datetime | None:
        """The bound ``part`` gives: a day's first microsecond, or the one after it ends."""
        try:
            if len(part) == 10:
                day = dt.date.fromisoformat(part)
                if upper:
                    if day == dt.date.max:
                        return None
                    day += dt.timedelta(days=1)
                when = dt.datetime.combine(day, dt.time.min)
            else:
                when = dt.datetime.fromisoformat(part.replace("Z", "+00:00").replace("z", "+00:00"))
                if upper:
                    when += _ONE_MICROSECOND
        except (ValueError, OverflowError):
            raise _error(
                query,
                token,
                f"'{_braces(part)}' {{at}} is not a date: use YYYY-MM-DD or an ISO 8601 time,"
                " after >, >=, <, <= or in a range such as 2026-11-01..2026-11-30.",
                value=True,
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=tz)
        try:
            return when.astimezone(dt.timezone.utc)
        except OverflowError:
            raise _error(query, token, f"'{_braces(part)}' {{at}} is out of range.", value=True) from None

    if op:
        part = text[len(op) :].strip()
        if op == ">=":
            return Span(moment(part, upper=False), None)
        if op == ">":
            return Span(moment(part, upper=True), None)
        if op == "<":
            return Span(None, moment(part, upper=False))
        return Span(None, moment(part, upper=True))
    if ".." in text:
        first, _, last = text.partition("..")
        low = None if first.strip() in ("", "*") else moment(first.strip(), upper=False)
        high = None if last.strip() in ("", "*") else moment(last.strip(), upper=True)
        if low is not None and high is not None and low >= high:
            raise _error(
                query, token, f"The range '{_braces(text)}' {{at}} ends before it starts.", value=True
            )
        return Span(low, high)
    return Span(moment(text, upper=False), moment(text, upper=True))


def _check_created(query: str, search: Search) -> None:
    """Refuse ``created:>=a created:<b``: either one matches, so together they match all."""
    included, _ = search.groups().get("created", ([], []))
    opens_low = [term for term in included if t.cast(Span, term.value).low is None]
    opens_high = [term for term in included if t.cast(Span, term.value).high is None]
    pairs = [(a, b) for a in opens_low for b in opens_high if a is not b]
    if pairs:
        first, second = sorted(pairs[0], key=lambda term: term.column)
        raise SearchError(
            f"'{first.token}' or '{second.token}' (at column {second.column}) matches nearly every"
            " event: a repeated qualifier means either value. Write one range instead, such as"
            " created:2026-11-01..2026-11-30.",
            query=query,
            column=second.column,
            width=len(second.token),
        )


_READERS: dict[str, t.Callable[[str, _Token, zoneinfo.ZoneInfo], Value]] = {
    "actor": _prefix_text,
    "team": _prefix_text,
    "entity": _choice(ENTITIES),
    "type": _event_type,
    "action": _choice(ACTIONS),
    "outcome": _choice(OUTCOMES),
    "target": _target,
    "ip": _ip,
    "created": _created,
}
