"""Per-day counts for the chart: local days in any zone, past days cached."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
import sqlalchemy as sa

from flask_audit.admin.daycounts import chart_counts
from flask_audit.admin.daycounts import count_by_day
from flask_audit.admin.daycounts import DayCountCache
from flask_audit.query.filters import AuditFilter
from flask_audit.query.sql import oldest_time
from flask_audit.query.sql import Scope

from ..conftest import audit_of
from ..conftest import MakeApp
from ..views_fixtures import build_site
from ..views_fixtures import Site

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TENANT_T = Scope(retention_days=90, tenant_scoped=True, tenant_id="t")


def test_the_day_cache_expires_and_forgets() -> None:
    cache = DayCountCache(ttl=dt.timedelta(minutes=5))
    counts = {NOW.date(): 3}
    today = NOW.replace(hour=0)
    cache.put(("k",), today, NOW, counts)
    assert cache.get(("k",), today, NOW + dt.timedelta(minutes=4)) == counts
    assert cache.get(("k",), today, NOW + dt.timedelta(minutes=5)) is None
    assert cache.get(("k",), today + dt.timedelta(days=1), NOW) is None  # another day
    cache.forget_before(today + dt.timedelta(seconds=1))
    assert cache.get(("k",), today, NOW) == counts
    cache.forget_before(today - dt.timedelta(seconds=1))
    assert cache.get(("k",), today, NOW) is None


# Against the database: the SQL must mean the same on every backend.


def _site(make_app: MakeApp) -> Site:
    return build_site(make_app, AUDIT_TENANT_LOADER="tests.views_fixtures:tenant_of_current_user")


def _engine(site: Site) -> sa.Engine:
    with site.app.app_context():
        return audit_of(site.app)._state().engine


def test_count_by_day_groups_by_utc_day(make_app: MakeApp) -> None:
    site = _site(make_app)
    midnight = dt.datetime.combine(
        dt.datetime.now(UTC).date() - dt.timedelta(days=5), dt.time.min, tzinfo=UTC
    )
    site.insert(
        site.event(tenant_id="t", occurred_at=midnight - dt.timedelta(microseconds=1)),
        site.event(tenant_id="t", occurred_at=midnight),
        site.event(tenant_id="t", occurred_at=midnight + dt.timedelta(hours=23, minutes=59)),
        site.event(tenant_id="other", occurred_at=midnight),
    )
    scope = TENANT_T
    with _engine(site).connect() as conn:
        counts = count_by_day(conn, AuditFilter(), **scope)
        assert counts == {midnight.date() - dt.timedelta(days=1): 1, midnight.date(): 2}
        since = count_by_day(
            conn, AuditFilter(), since=midnight, until=midnight + dt.timedelta(hours=1), **scope
        )
        assert since == {midnight.date(): 1}
        assert oldest_time(conn, **scope) == midnight - dt.timedelta(microseconds=1)


def _last_change(zone: zoneinfo.ZoneInfo, before: dt.datetime) -> dt.datetime:
    """About when ``zone`` last changed its UTC offset within a year before ``before`` (else then)."""
    probe = before
    offset = before.astimezone(zone).utcoffset()
    while probe.astimezone(zone).utcoffset() == offset:
        probe -= dt.timedelta(hours=6)
        if probe < before - dt.timedelta(days=360):
            return before
    return probe


@pytest.mark.parametrize(
    "zone", ["UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns", "Australia/Lord_Howe"]
)
def test_count_by_day_matches_python_across_offset_changes(make_app: MakeApp, zone: str) -> None:
    """Local days, whatever the zone's offset (half hours too) and its daylight saving changes."""
    site = _site(make_app)
    tz = zoneinfo.ZoneInfo(zone)
    now = dt.datetime.now(UTC)
    change = _last_change(tz, now - dt.timedelta(days=3))
    times = [change + dt.timedelta(minutes=37 * n) for n in range(-120, 120)]
    site.insert(*[site.event(tenant_id="t", occurred_at=when) for when in times])
    expected: dict[dt.date, int] = {}
    for when in times:
        expected[when.astimezone(tz).date()] = expected.get(when.astimezone(tz).date(), 0) + 1
    scope = Scope(retention_days=400, tenant_scoped=True, tenant_id="t")
    with _engine(site).connect() as conn:
        assert count_by_day(conn, AuditFilter(), timezone=zone, **scope) == expected
        half = count_by_day(conn, AuditFilter(), timezone=zone, until=change, **scope)
        assert sum(half.values()) == 120


def test_chart_counts_use_the_cache_for_past_days_only(make_app: MakeApp) -> None:
    site = _site(make_app)
    now = dt.datetime.now(UTC)
    today = dt.datetime.combine(now.date(), dt.time.min, tzinfo=UTC)
    site.insert(site.event(tenant_id="t", occurred_at=today - dt.timedelta(hours=1)))
    scope = TENANT_T
    flt = AuditFilter(start=today - dt.timedelta(days=1))
    cache = DayCountCache()
    with _engine(site).connect() as conn:
        assert chart_counts(conn, flt, cache=cache, now=now, **scope)[-2:] == [
            (today.date() - dt.timedelta(days=1), 1),
            (today.date(), 0),
        ]
    # Rows written behind record()'s back: today is live, past days wait for the cache. A
    # row stored hours after it happened is marked late, as the recorder marks it: the
    # kept day totals count its day again.
    site.insert(
        site.event(tenant_id="t", occurred_at=today - dt.timedelta(hours=2), late=True),
        site.event(tenant_id="t", occurred_at=now - dt.timedelta(seconds=1)),
    )
    with _engine(site).connect() as conn:
        cached = chart_counts(conn, flt, cache=cache, now=now, **scope)
        assert cached[-2:] == [(today.date() - dt.timedelta(days=1), 1), (today.date(), 1)]
        fresh = chart_counts(conn, flt, cache=DayCountCache(), now=now, **scope)
        assert fresh[-2:] == [(today.date() - dt.timedelta(days=1), 2), (today.date(), 1)]


def test_chart_counts_partial_edge_days_live(make_app: MakeApp) -> None:
    site = _site(make_app)
    day = dt.datetime.combine(dt.datetime.now(UTC).date() - dt.timedelta(days=4), dt.time.min, tzinfo=UTC)
    site.insert(*[site.event(tenant_id="t", occurred_at=day + dt.timedelta(hours=h)) for h in (1, 10, 20)])
    scope = TENANT_T
    flt = AuditFilter(start=day + dt.timedelta(hours=5), end=day + dt.timedelta(hours=15))
    with _engine(site).connect() as conn:
        assert chart_counts(conn, flt, cache=DayCountCache(), **scope) == [(day.date(), 1)]
        empty = AuditFilter(start=day + dt.timedelta(hours=15), end=day + dt.timedelta(hours=5))
        assert chart_counts(conn, empty, cache=DayCountCache(), **scope) == []
