from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from flask_audit import InvalidFilterError
from flask_audit.admin.daycounts import count_by_day
from flask_audit.query.filters import AuditFilter
from flask_audit.query.filters import Cursor
from flask_audit.query.filters import parse_limit
from flask_audit.query.filters import resolve_timezone
from flask_audit.query.sql import fetch_page
from flask_audit.query.sql import Scope
from flask_audit.query.sql import select_events
from flask_audit.query.sql import window_start
from flask_audit.store.models import audit_event_table

from ..conftest import audit_of
from ..conftest import MakeApp
from ..views_fixtures import build_site
from ..views_fixtures import Site

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
SCOPE = Scope(retention_days=90, tenant_scoped=False, tenant_id=None)
TENANT_T = Scope(retention_days=90, tenant_scoped=True, tenant_id="t")


def parse(**args: str) -> AuditFilter:
    return AuditFilter.from_args(args)


def refused(message: str, **args: str) -> None:
    with pytest.raises(InvalidFilterError) as info:
        AuditFilter.from_args(args)
    assert str(info.value) == message
    assert info.value.code == 400


# Parsing: no database.


def test_choices_are_matched_without_case_and_stored_canonically() -> None:
    flt = parse(entity="two-factor authentication", action="LOGIN", outcome="Failure")
    assert (flt.entity, flt.action, flt.outcome) == ("Two-factor authentication", "login", "failure")


def test_blank_values_are_no_filter() -> None:
    assert parse(entity="", actor="  ", start="") == AuditFilter()
    assert AuditFilter().is_empty and not parse(team="Growth").is_empty


def test_dates_are_read_in_the_zone_and_an_end_date_covers_its_day() -> None:
    flt = AuditFilter.from_args({"start": "2026-03-01", "end": "2026-03-01"}, timezone="Europe/Berlin")
    assert flt.start == dt.datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    assert flt.end == dt.datetime(2026, 3, 1, 22, 59, 59, 999999, tzinfo=UTC)
    assert parse(start="2026-03-01T10:00:00Z").start == dt.datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse(start="2026-03-01T10:00+02:00").start == dt.datetime(2026, 3, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"start": "2026-02-30"},
            "The start date '2026-02-30' is not a valid date; use YYYY-MM-DD or an ISO 8601 time.",
        ),
        ({"end": "soon"}, "The end date 'soon' is not a valid date; use YYYY-MM-DD or an ISO 8601 time."),
        ({"start": "2026-03-02", "end": "2026-03-01"}, "The start date is after the end date."),
        (
            {"start": "0001-01-01T00:00:00+01:00"},
            "The start date '0001-01-01T00:00:00+01:00' is out of range.",
        ),
        (
            {"entity": "Billing"},
            "Unknown entity 'Billing'. Choose one of: Login, User, Two-factor authentication, SSO, Team,"
            " Invitation, Role, Audit log.",
        ),
        (
            {"action": "rename"},
            "Unknown action 'rename'. Choose one of: create, update, delete, export, login, logout.",
        ),
        ({"outcome": "maybe"}, "Unknown outcome 'maybe'. Choose one of: success, failure."),
        ({"event_type": "<script>"}, "Unknown event type '<script>': event types look like 'role.updated'."),
        ({"team": "x" * 321}, "The team filter is too long (at most 320 characters)."),
        ({"actor": "a\x00b"}, "The actor filter contains a control character."),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(args: dict[str, str], message: str) -> None:
    refused(message, **args)


def test_custom_event_types_are_allowed() -> None:
    assert parse(event_type="billing.plan_changed").event_type == "billing.plan_changed"


def test_to_args_round_trips() -> None:
    cursor = Cursor(dt.datetime(2026, 3, 1, 8, 30, 1, 5, tzinfo=UTC), 42)
    flt = AuditFilter.from_args(
        {
            "entity": "Team",
            "actor": "a@b.c",
            "start": "2026-03-01",
            "end": "2026-03-02",
            "cursor": cursor.encode(),
        },
        timezone="Asia/Tokyo",
    )
    assert AuditFilter.from_args(flt.to_args(with_cursor=True)) == flt
    assert "cursor" not in flt.to_args()


@pytest.mark.parametrize("newer", [False, True])
def test_cursor_round_trips(newer: bool) -> None:
    cursor = Cursor(dt.datetime(2026, 3, 1, 8, 30, 1, 5, tzinfo=UTC), 2**63 - 1, newer=newer)
    assert Cursor.decode(cursor.encode()) == cursor
    assert "=" not in cursor.encode()


def _b64(text: str) -> str:
    import base64

    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "value",
    [
        "not-a-cursor!",
        _b64("2026-03-01T08:00:00|12"),  # naive time
        _b64("2026-03-01T08:00:00+00:00|0"),
        _b64("2026-03-01T08:00:00+00:00|-4"),
        _b64(f"2026-03-01T08:00:00+00:00|{2**63}"),
        _b64("2026-03-01T08:00:00+00:00|12|sideways"),
        _b64("2026-03-01T08:00:00+00:00"),
        _b64("0001-01-01T00:00:00+05:00|1"),
        "////",
    ],
)
def test_malformed_cursors_are_refused(value: str) -> None:
    refused("The page cursor is not valid; start again from the first page.", cursor=value)


def test_time_zones() -> None:
    assert resolve_timezone(None, "UTC") == "UTC"
    assert resolve_timezone("  ", "Europe/Paris") == "Europe/Paris"
    assert resolve_timezone("Asia/Kolkata", "UTC") == "Asia/Kolkata"
    for bad in ("Mars/Olympus", "America", "../etc/passwd", "x\x00", "utc"):
        with pytest.raises(InvalidFilterError, match=r"^Unknown time zone .*; use an IANA name"):
            resolve_timezone(bad, "UTC")
    with pytest.raises(InvalidFilterError) as info:
        resolve_timezone("A" * 100, "UTC")
    assert str(info.value) == f"Unknown time zone '{'A' * 64}…'; use an IANA name such as 'Europe/Berlin'."


def test_limits() -> None:
    assert parse_limit(None) == 50
    assert parse_limit(" 7 ") == 7
    assert parse_limit("500") == 500
    with pytest.raises(InvalidFilterError) as info:
        parse_limit("501")
    assert str(info.value) == "The limit must be a whole number from 1 to 500, not '501'."


def test_select_events_orders_newest_first_and_reads_upwards_for_a_newer_cursor() -> None:
    older = select_events(AuditFilter(), now=NOW, **SCOPE)
    assert "ORDER BY audit_event.occurred_at DESC, audit_event.id DESC" in str(older)
    cursor = Cursor(NOW, 10, newer=True)
    newer = select_events(AuditFilter(cursor=cursor), now=NOW, **SCOPE)
    assert "ORDER BY audit_event.occurred_at ASC, audit_event.id ASC" in str(newer)


def test_a_start_before_the_window_is_clamped_to_it() -> None:
    flt = parse(start="1990-01-01")
    params = select_events(flt, now=NOW, **SCOPE).compile().params
    assert window_start(90, NOW) in params.values()
    assert dt.datetime(1990, 1, 1, tzinfo=UTC) not in params.values()


# Against the database: the SQL must mean the same on every backend.


def _site(make_app: MakeApp) -> Site:
    return build_site(make_app, AUDIT_TENANT_LOADER="tests.views_fixtures:tenant_of_current_user")


def _engine(site: Site) -> sa.Engine:
    with site.app.app_context():
        return audit_of(site.app)._state().engine


@pytest.mark.parametrize(
    "value",
    ["o'brien@x.io", "back\\slash@x.io", "100%(x)s@x.io", "a?b:c@x.io", "'); DROP TABLE audit_event; --"],
)
def test_filter_values_written_into_the_sql_match_exactly(make_app: MakeApp, value: str) -> None:
    """Filter values go into the SQL text (for the planner): quotes, backslashes and percents stay data."""
    site = _site(make_app)
    site.insert(
        site.event(tenant_id="t", actor_email=value, team=value, activity="match"),
        site.event(tenant_id="t", actor_email="other@x.io", team="other", activity="other"),
    )
    with _engine(site).connect() as conn:
        for args in ({"actor": value}, {"team": value}):
            page = fetch_page(conn, AuditFilter.from_args(args), limit=5, **TENANT_T)
            assert [row.activity for row in page.rows] == ["match"]
        single = fetch_page(conn, AuditFilter(actor=value), limit=5, **SCOPE)
        assert [row.activity for row in single.rows] == ["match"]
        assert sum(count_by_day(conn, AuditFilter(team=value), **TENANT_T).values()) == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_event_table)).scalar() == 3


def test_fetch_page_keyset_in_both_directions(make_app: MakeApp) -> None:
    site = _site(make_app)
    site.insert(*site.series(7, every=dt.timedelta(minutes=1), tenant_id="t"))
    scope = TENANT_T
    with _engine(site).connect() as conn:
        first = fetch_page(conn, AuditFilter(), limit=3, columns=("activity",), **scope)
        assert [row.activity for row in first.rows] == ["Event 0", "Event 1", "Event 2"]
        assert first.first and first.newer is None and first.older is not None
        second = fetch_page(conn, AuditFilter(cursor=first.older), limit=3, **scope)
        assert [row.activity for row in second.rows] == ["Event 3", "Event 4", "Event 5"]
        assert second.newer is not None and second.older is not None
        last = fetch_page(conn, AuditFilter(cursor=second.older), limit=3, **scope)
        assert [row.activity for row in last.rows] == ["Event 6"] and last.older is None
        back = fetch_page(conn, AuditFilter(cursor=last.newer), limit=3, **scope)
        assert [row.activity for row in back.rows] == ["Event 3", "Event 4", "Event 5"]
        top = fetch_page(conn, AuditFilter(cursor=second.newer), limit=3, columns=("activity",), **scope)
        assert top == first
