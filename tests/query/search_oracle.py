"""What a search should find, said in Python, and generated searches to hold the SQL to it.

``matches(row, search, fold)`` is the search language's meaning, term by term, written
without SQL: the property tests compare every backend's rows with it. ``fold`` is how the
backend lowers text: ASCII letters only on SQLite, every letter of the test data on
PostgreSQL and MariaDB. ``ROWS`` are stored values chosen to trip the SQL: case and accent
variants, ``%``, ``_`` and ``/``, NULLs, IPv4 and IPv6 addresses and junk, targets, tenants.
``searches(...)`` draws queries made of terms over those values.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import ipaddress
import typing as t

import hypothesis.strategies as st

from flask_audit.query import search as search_
from flask_audit.query.search import quote
from flask_audit.taxonomy import ACTIONS
from flask_audit.taxonomy import ENTITIES
from flask_audit.taxonomy import EVENT_TYPES
from flask_audit.taxonomy import OUTCOMES

Fold = c.Callable[[str], str]
TENANTS = ("acme", "globex", None)
ACTORS = (
    "priya@acme.test",
    "Priya.Shah@Acme.test",
    "PRIYA@example.com",
    "pri_ya@acme.test",
    "pri%ya@acme.test",
    "émile@école.fr",
    "Émile@École.fr",
    "kim@acme.test",
    "system",
    None,
)
TEAMS = ("Growth", "growth hackers", "Équipe Zoë", "équipe zoë", "50%_off", "a/b", "Platform", None)
TYPES = (
    "user.login",
    "user.login_failed",
    "team.created",
    "team.member_added",
    "role.updated",
    "billing.plan_changed",
)
IPS = (
    "203.0.113.7",
    "203.0.113.250",
    "10.1.2.3",
    "10.200.0.1",
    "192.168.0.10",
    "2001:db8::1",
    "2001:db8:1::ff",
    "::ffff:10.1.2.3",
    "unknown",
    None,
)
TARGETS = (("user", "42"), ("User", "7"), ("team", "Équipe Zoë"), ("invite", "x"), (None, None))
ACTIVITIES = (
    "Signed in",
    "Changed role of bob@acme.test from Member to Admin",
    "Renamed team to Équipe Zoë",
    "Exported 50% of the log",
    "Added a_b to growth",
    "path a/b changed",
)


def ascii_fold(text: str) -> str:
    """SQLite's ``lower()``: A-Z only."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold_for(backend: str) -> Fold:
    return ascii_fold if backend == "sqlite" else str.lower


def rows(now: dt.datetime) -> list[dict[str, t.Any]]:
    """Every combination worth having, spread over the last 30 days (and a few older)."""
    out = []
    for n in range(160):
        target = TARGETS[n % len(TARGETS)]
        event_type = TYPES[n % len(TYPES)]
        kind = EVENT_TYPES.get(event_type)
        out.append(
            {
                "tenant_id": TENANTS[n % len(TENANTS)],
                "event_type": event_type,
                "entity": kind.entity if kind else "Billing",
                "action": kind.action if kind else "update",
                "outcome": (kind.outcome if kind else "success") if n % 7 else "failure",
                "actor_email": ACTORS[n % len(ACTORS)],
                "team": TEAMS[(n // 3) % len(TEAMS)],
                "ip": IPS[(n // 2) % len(IPS)],
                "target_type": target[0],
                "target_id": target[1],
                "activity": f"{ACTIVITIES[n % len(ACTIVITIES)]} #{n}",
                "occurred_at": now - dt.timedelta(days=(n * 7) % 31, hours=n % 24, minutes=n),
            }
        )
    return out


# -- the meaning ---------------------------------------------------------------------


def matches(row: c.Mapping[str, t.Any] | t.Any, search: search_.Search, fold: Fold) -> bool:
    """Whether ``row`` (a mapping or an :class:`~flask_audit.AuditEvent`) is found by
    ``search``, the time window and tenant aside."""
    if not isinstance(row, c.Mapping):
        row = {name: getattr(row, name) for name in _COLUMNS}
    for field, (included, excluded) in search.groups().items():
        if field == search_.TEXT:
            if not all(_term(row, term, fold) for term in included):
                return False
        elif included and not any(_term(row, term, fold) for term in included):
            return False
        if any(_term(row, term, fold) for term in excluded):
            return False
    return True


_COLUMNS: tuple[str, ...] = ("actor_email", "team", "event_type", "entity", "action", "outcome")
_COLUMNS += ("activity", "ip", "target_type", "target_id", "occurred_at")


def _prefix(value: str | None, prefix: str, fold: Fold) -> bool:
    return value is not None and fold(value).startswith(fold(prefix))


def _term(row: c.Mapping[str, t.Any], term: search_.Term, fold: Fold) -> bool:
    value = term.value
    if term.field == search_.TEXT:
        return fold(t.cast(str, value)) in fold(row["activity"])
    if term.field in ("actor", "team"):
        return _prefix(row["actor_email" if term.field == "actor" else "team"], t.cast(str, value), fold)
    if isinstance(value, search_.TypeMatch):
        if value.prefix:
            return _prefix(row["event_type"], value.value, fold)
        return bool(row["event_type"] == value.value)
    if isinstance(value, search_.Target):
        kind = row["target_type"]
        same = kind is not None and fold(kind) == fold(value.type)
        return same and (value.id is None or row["target_id"] == value.id)
    if isinstance(value, search_.Span):
        return value.contains(row["occurred_at"])
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        try:
            address = ipaddress.ip_address(row["ip"] or "")
        except ValueError:
            return False
        return address.version == value.version and address in value
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return bool(row["ip"] == str(value))
    return bool(row[term.field] == value)


# -- generated searches --------------------------------------------------------------


def _recased(text: str) -> st.SearchStrategy[str]:
    """``text`` with each character's case flipped or not."""
    return st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(
        lambda flips: "".join(ch.swapcase() if flip else ch for ch, flip in zip(text, flips, strict=True))
    )


def _prefix_of(values: t.Sequence[str | None]) -> st.SearchStrategy[str]:
    texts = [value for value in values if value]
    return st.sampled_from(texts).flatmap(
        lambda text: st.integers(1, len(text)).flatmap(lambda n: _recased(text[:n]))
    )


def _days(now: dt.datetime) -> st.SearchStrategy[str]:
    return st.integers(0, 35).map(lambda back: (now - dt.timedelta(days=back)).date().isoformat())


def _created(now: dt.datetime) -> st.SearchStrategy[str]:
    days = _days(now)
    compared = st.tuples(st.sampled_from([">=", ">", "<", "<=", ""]), days).map("".join)
    ranged = st.tuples(days, days).map(lambda pair: "..".join(sorted(pair)))
    return st.one_of(compared, ranged)


def terms(now: dt.datetime, *, sqlite: bool) -> st.SearchStrategy[str]:
    """One valid term, sometimes excluded."""
    networks = ["203.0.113.0/24", "10.0.0.0/8", "10.1.0.0/16", "192.168.0.10/32", "0.0.0.0/0"]
    if not sqlite:
        networks += [
            "10.0.0.0/9",
            "203.0.113.0/25",
            "2001:db8::/32",
            "2001:db8::/48",
            "::/0",
            "::ffff:0:0/96",
        ]
    addresses = [ip for ip in IPS if ip and ip != "unknown"]
    body = st.one_of(
        _prefix_of(ACTORS).map(lambda v: f"actor:{quote(v)}"),
        _prefix_of(TEAMS).map(lambda v: f"team:{quote(v)}"),
        st.sampled_from(ENTITIES).flatmap(_recased).map(lambda v: f"entity:{quote(v)}"),
        st.sampled_from(ACTIONS).flatmap(_recased).map(lambda v: f"action:{v}"),
        st.sampled_from(OUTCOMES).flatmap(_recased).map(lambda v: f"outcome:{v}"),
        st.sampled_from(TYPES).map(lambda v: f"type:{v}"),
        _prefix_of(TYPES).filter(lambda v: v.isascii()).map(lambda v: f"type:{v}*"),
        st.sampled_from([f"{k}:{i}" if i else k for k, i in TARGETS if k] + ["team", "USER"]).map(
            lambda v: f"target:{quote(v)}"
        ),
        st.sampled_from(networks + addresses).map(lambda v: f"ip:{v}"),
        _created(now).map(lambda v: f"created:{v}"),
        st.sampled_from(ACTIVITIES)
        .flatmap(
            lambda text: st.tuples(st.integers(0, len(text) - 1), st.integers(1, 8)).flatmap(
                lambda cut: _recased(text[cut[0] : cut[0] + cut[1]])
            )
        )
        .filter(lambda v: v.strip() != "" and not v.startswith("-"))
        .map(quote),
    )
    return st.tuples(st.booleans(), body).map(lambda pair: ("-" if pair[0] else "") + pair[1])


def searches(now: dt.datetime, *, sqlite: bool) -> st.SearchStrategy[str]:
    """A query of one to five valid terms (two open-ended created: terms may still be refused)."""
    return st.lists(terms(now, sqlite=sqlite), min_size=1, max_size=5).map(" ".join)


#: Text that is not a valid search, or only just: unknown qualifiers, bad values, quotes.
BROKEN = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=30),
    st.sampled_from(
        [
            "acter:priya",
            "action:rename",
            'team:"unclosed',
            "created:2026-13-01",
            "created:>=2026-11-01 created:<2026-11-30",
            "ip:999.1.1.1",
            "ip:10.0.0.0/33",
            "type:*",
            "- actor:x",
            '""',
            "target::",
            "entity:" + "x" * 400,
            "x " * 40,
            "a" * 1200,
            "created:0001-01-01",
            "created:9999-12-31",
            "ip:fe80::1%eth0",
        ]
    ),
)
