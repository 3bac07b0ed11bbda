"""Shared by the hostile-input tests: two seeded tenants, generated query strings, an oracle.

``seed(site)`` stores events of tenants ``acme`` and ``globex`` (plus tenantless and
expired ones) and returns every stored row, the truth the responses are checked against.
``queries()`` draws query strings as raw bytes: each parameter is absent, plausible or
garbage (any code point, lone surrogates sent as invalid UTF-8, NUL, 40 KB), so that
most draws mix valid filters with the odd bad one. ``expect_api``/``expect_page`` say what
the server must answer, reading the values as Werkzeug decodes them.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import typing as t
import urllib.parse

import hypothesis.strategies as st
from flask_login import current_user
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder

from flask_audit.admin.api import DEFAULT_LIMIT
from flask_audit.admin.api import MAX_LIMIT
from flask_audit.admin.views import PAGE_SIZE
from flask_audit.exceptions import InvalidFilterError
from flask_audit.query import filters
from flask_audit.store.models import AuditEvent
from flask_audit.taxonomy import ACTIONS
from flask_audit.taxonomy import ENTITIES
from flask_audit.taxonomy import EVENT_TYPES
from flask_audit.taxonomy import OUTCOMES

from .conftest import stored
from .query import search_oracle
from .views_fixtures import Site

TENANT_LOADER = "tests.hostile_fixtures:tenant_of_user"
TENANTS = ("acme", "globex")
PARAMS = (*filters.FILTER_NAMES, "limit", "tz")
ACTORS = ("ann@acme.test", "Bob@Example.com", "zoë@例え.jp", "system")
TEAMS = ("red", "Blue team", "ünïcode 🚀")
TYPES = ("user.login", "user.login_failed", "team.created", "role.updated", "sso.disabled", "audit.exported")
ZONES = (
    "UTC",
    "Europe/Berlin",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "America/St_Johns",
    "Asia/Kathmandu",
)


def tenant_of_user() -> str | None:
    """The tenant loader: the signed-in user's tenant (``None`` for anonymous visitors)."""
    if not current_user or not current_user.is_authenticated:
        return None
    return t.cast("str | None", current_user.tenant)


def seed(site: Site, now: dt.datetime) -> list[AuditEvent]:
    """Events of both tenants over the window, some sharing a time, some expired; all rows."""
    rows = []
    for tenant in (*TENANTS, None):
        for n in range(16):
            when = now - dt.timedelta(days=n * 5 + 0.5, minutes=n)
            if n in (3, 4):  # a tie on the time: the cursor breaks it by id
                when = now - dt.timedelta(days=15.5)
            rows.append(
                site.event(
                    TYPES[n % len(TYPES)],
                    tenant_id=tenant,
                    occurred_at=when if n < 14 else now - dt.timedelta(days=95 + n * 20),
                    activity=f"{tenant or 'none'} #{n}",
                    actor_email=ACTORS[n % len(ACTORS)],
                    team=TEAMS[n % len(TEAMS)] if n % 4 else None,
                )
            )
    site.insert(*rows)
    return stored(site.app, include_enabled=True)


# -- strategies ----------------------------------------------------------------------

_junk_text = st.text(max_size=40)  # any code point: controls, NUL, lone surrogates
_huge = st.builds(lambda part, times: part * times, st.text(min_size=1, max_size=3), st.integers(300, 15000))
_junk = st.one_of(
    _junk_text, st.binary(max_size=40), _huge, st.sampled_from(["", " ", "\t", "\u3000", "%00"])
)


def _cased(value: str) -> st.SearchStrategy[str]:
    return st.sampled_from([value, value.upper(), value.lower(), f"  {value} ", value.swapcase()])


def _pick(values: t.Sequence[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(list(values)).flatmap(_cased)


@st.composite
def iso_dates(draw: st.DrawFn) -> str:
    """ISO-ish times: real ones in the window, impossible ones, extreme years and offsets."""
    if draw(st.booleans()):
        moment = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=draw(st.floats(-2, 120)))
        text = moment.date().isoformat() if draw(st.booleans()) else moment.isoformat()
        return text.replace("+00:00", draw(st.sampled_from(["+00:00", "Z", "", "+05:45"])))
    year = draw(st.sampled_from([0, 1, 2, 1970, 2025, 2026, 9998, 9999, 10000]))
    month, day = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    text = f"{year:04d}-{month:02d}-{day:02d}"
    if draw(st.booleans()):
        hour, minute, second = draw(st.integers(0, 25)), draw(st.integers(0, 61)), draw(st.integers(0, 61))
        sep = draw(st.sampled_from(["T", " ", "t"]))
        frac = draw(st.sampled_from(["", ".5", ".123456", ".1234567"]))
        offset = draw(st.sampled_from(["", "Z", "+00:00", "+14:00", "-12:00", "+23:59", "+24:00", "-0030"]))
        text = f"{text}{sep}{hour:02d}:{minute:02d}:{second:02d}{frac}{offset}"
    return draw(st.sampled_from([text, text.replace("-", ""), "2026-W05-3", "2026-032", text + "x"]))


@st.composite
def cursors(draw: st.DrawFn, rows: list[AuditEvent]) -> str:
    """Real cursors (of any tenant's rows), forged ones and base64 of anything."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        row = draw(st.sampled_from(rows))
        return filters.Cursor(row.occurred_at, row.id, newer=draw(st.booleans())).encode()
    if kind == 1:
        when = draw(st.one_of(iso_dates(), st.sampled_from([r.occurred_at.isoformat() for r in rows])))
        ident = draw(st.one_of(st.sampled_from([r.id for r in rows]), st.integers(-(2**70), 2**70)))
        raw = f"{when}|{ident}{draw(st.sampled_from(['', '|n', '|x', '|n|n', '|']))}".encode()
    else:
        raw = draw(st.binary(max_size=60)) if kind == 2 else draw(_junk_text).encode("utf-8", "surrogatepass")
    encoded = base64.urlsafe_b64encode(raw).decode()
    return encoded if draw(st.booleans()) else encoded.rstrip("=")


def plausible(name: str, rows: list[AuditEvent]) -> st.SearchStrategy[str]:
    """Values a real visitor might send for parameter ``name``."""
    if name == "entity":
        return _pick(ENTITIES)
    if name == "event_type":
        return st.one_of(_pick(TYPES), st.sampled_from([*EVENT_TYPES, "app.thing", "a..b", ".x", "x."]))
    if name in ("action", "outcome"):
        return _pick(ACTIONS if name == "action" else OUTCOMES)
    if name == "actor":
        return _pick(ACTORS)
    if name == "team":
        return _pick(TEAMS)
    if name in ("start", "end"):
        return iso_dates()
    if name == "q":
        return search_oracle.searches(dt.datetime.now(dt.timezone.utc), sqlite=True)
    if name == "cursor":
        return cursors(rows)
    if name == "limit":
        values = ["1", "2", "7", "50", "500", "501", "0", "-1", "1e2", "١٢", "５", "9" * 30, " 3 ", "0x10"]
        return st.one_of(st.sampled_from(values), st.integers(-5, 600).map(str))
    zones = [
        *ZONES,
        "Mars/Olympus",
        "../../etc/passwd",
        "/etc/localtime",
        "America",
        "Etc/GMT+14",
        "zone.tab",
    ]
    return st.sampled_from(zones)


@st.composite
def queries(draw: st.DrawFn, rows: list[AuditEvent]) -> str:
    """A query string: each parameter absent (often), plausible, or garbage; every byte %-encoded."""
    parts = []
    for name in draw(st.permutations(PARAMS)):
        choice = draw(st.integers(0, 9))
        if choice < 5:
            continue
        value = draw(plausible(name, rows) if choice < 9 else _junk)
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
        parts.append(f"{name}={urllib.parse.quote_from_bytes(raw, safe='')}")
    return "&".join(parts)


def args_of(query_string: str) -> MultiDict[str, str]:
    """The values exactly as the server reads them."""
    return EnvironBuilder(query_string=query_string).get_request().args


# -- the oracle ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Expected:
    """What a response must hold: an error message, or the rows it may and must show."""

    error: str | None = None
    rows: list[AuditEvent] = dataclasses.field(default_factory=list)
    complete: bool = False


def expect_api(args: MultiDict[str, str], rows: list[AuditEvent], tenant: str) -> Expected:
    try:
        limit = filters.parse_limit(args.get("limit"), default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
        tzname = filters.resolve_timezone(args.get("tz"), "UTC")
        flt = filters.AuditFilter.from_args(args, timezone=tzname)
    except InvalidFilterError as err:
        return Expected(error=str(err))
    return _expected(flt, rows, tenant, limit)


def expect_page(args: MultiDict[str, str], rows: list[AuditEvent], tenant: str) -> Expected:
    try:
        tzname = filters.resolve_timezone(args.get("tz", ""), "UTC")
        flt = filters.AuditFilter.from_args(args, timezone=tzname)
    except InvalidFilterError as err:
        return Expected(error=str(err))
    return _expected(flt, rows, tenant, PAGE_SIZE)


def _expected(flt: filters.AuditFilter, rows: list[AuditEvent], tenant: str, limit: int) -> Expected:
    window = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=90)
    allowed = [row for row in rows if row.tenant_id == tenant and row.occurred_at >= window]
    keep = [row for row in allowed if matches(row, flt)]
    keep.sort(key=lambda row: (row.occurred_at, row.id), reverse=True)
    newer = flt.cursor is not None and flt.cursor.newer
    # A newer cursor may fall back to the first page: any in-scope row, unordered check.
    if newer:
        return Expected(rows=[row for row in allowed if matches(row, dataclasses.replace(flt, cursor=None))])
    return Expected(rows=keep[:limit], complete=True)


def matches(row: AuditEvent, flt: filters.AuditFilter) -> bool:
    """Whether ``row`` satisfies every filter of ``flt`` (an older cursor included)."""
    pairs = [(row.entity, flt.entity), (row.event_type, flt.event_type), (row.actor_email, flt.actor)]
    pairs += [(row.team, flt.team), (row.action, flt.action), (row.outcome, flt.outcome)]
    if any(wanted is not None and value != wanted for value, wanted in pairs):
        return False
    if flt.start is not None and row.occurred_at < flt.start:
        return False
    if flt.end is not None and row.occurred_at > flt.end:
        return False
    if flt.q is not None and not search_oracle.matches(row, flt.q, search_oracle.ascii_fold):
        return False
    cursor = flt.cursor
    return cursor is None or cursor.newer or (row.occurred_at, row.id) < (cursor.occurred_at, cursor.id)
