"""Retention per tenant: prune keeps a tenant's events for its own, longer window."""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit import AuditConfigError
from flask_audit.compliance import settings
from flask_audit.integrity import retention
from flask_audit.store.models import audit_event_table

from ..conftest import audit_of
from ..conftest import stored
from ..sealing_fixtures import days_ago
from ..sealing_fixtures import forged
from ..sealing_fixtures import KEY
from ..sealing_fixtures import verify

TENANT_DAYS = {"acme": 365, "initech": 30}
per_tenant = pytest.mark.audit_config(AUDIT_TENANT_RETENTION_DAYS=TENANT_DAYS)
sealed_per_tenant = pytest.mark.audit_config(AUDIT_TENANT_RETENTION_DAYS=TENANT_DAYS, AUDIT_SEAL_KEY=KEY)


def record(app: Flask, tenant: str | None, days: float) -> int:
    with app.app_context():
        event = audit_of(app).record("team.created", tenant_id=tenant, occurred_at=days_ago(days))
        return event.id


def prune(app: Flask, **kwargs: t.Any) -> retention.PruneResult:
    with app.app_context():
        state = audit_of(app)._state(app)
        return retention.prune(state.engine, state.config, **kwargs)


def trail(app: Flask) -> list[tuple[str | None, int]]:
    """(tenant, age in whole days) of every stored event, oldest first."""
    now = dt.datetime.now(dt.timezone.utc)
    found = [(event.tenant_id, (now - event.occurred_at).days) for event in stored(app)]
    return sorted(found, key=lambda item: (item[0] or "", item[1]))


def _mixed_trail(app: Flask) -> None:
    record(app, "acme", 400)  # older than acme's 365 days: goes
    record(app, "acme", 100)  # inside acme's window: stays
    record(app, None, 100)  # the default 90 days: goes
    record(app, "globex", 100)  # no window of its own: goes
    record(app, "initech", 100)  # 30 days is below the floor: 90 days, goes
    record(app, "acme", 200)  # inside acme's window, after events that go: stays
    record(app, "globex", 10)  # young: stays


@per_tenant
def test_prune_keeps_a_tenants_events_for_its_own_window(app: Flask) -> None:
    _mixed_trail(app)
    result = prune(app)
    assert (result.count, dict(result.tenant_days)) == (4, {"acme": 365})
    assert trail(app) == [("acme", 100), ("acme", 200), ("globex", 10)]
    assert not [event for event in stored(app) if event.event_type == "audit.pruned"]  # only with audit=


@per_tenant
def test_the_record_of_a_prune_names_the_longer_windows(app: Flask) -> None:
    _mixed_trail(app)
    with app.app_context():
        state = audit_of(app)._state(app)
        retention.prune(state.engine, state.config, audit=audit_of(app))
    [pruned] = [event for event in stored(app) if event.event_type == "audit.pruned"]
    assert pruned.details["tenant_days"] == {"acme": 365}
    assert pruned.details["count"] == 4


@per_tenant
def test_a_dry_run_counts_what_the_windows_leave(app: Flask) -> None:
    _mixed_trail(app)
    assert prune(app, dry_run=True).count == 4
    assert len(stored(app)) == 7


@sealed_per_tenant
def test_on_a_sealed_trail_kept_events_stay_checked(app: Flask) -> None:
    _mixed_trail(app)
    result = prune(app)
    assert result.sealed and result.count == 4
    assert trail(app) == [("acme", 100), ("acme", 200), ("globex", 10)]
    assert verify(app).problem is None
    # A kept event is not covered by the prune link: deleting it is still caught.
    kept = min(event.id for event in stored(app) if event.tenant_id == "acme")
    with forged(app) as conn:
        conn.execute(sa.delete(audit_event_table).where(audit_event_table.c.id == kept))
    report = verify(app)
    assert report.problem is not None and report.problem.event_id == kept


@sealed_per_tenant
def test_a_shorter_window_later_prunes_what_was_kept(app: Flask) -> None:
    _mixed_trail(app)
    prune(app)
    result = prune(app, tenant_days={"acme": 150}.get)
    assert (result.count, dict(result.tenant_days)) == (1, {"acme": 150})
    assert trail(app) == [("acme", 100), ("globex", 10)]
    assert verify(app).problem is None


def test_a_callable_passed_to_prune_wins(app: Flask) -> None:
    record(app, "acme", 100)
    record(app, "globex", 100)
    record(app, None, 1)
    result = prune(app, tenant_days=lambda tenant: 120 if tenant == "globex" else None)
    assert (result.count, dict(result.tenant_days)) == (1, {"globex": 120})
    assert [tenant for tenant, _age in trail(app)] == [None, "globex"]


def test_events_without_a_tenant_may_have_a_window_too(app: Flask) -> None:
    record(app, None, 100)
    record(app, "acme", 100)
    record(app, "acme", 1)
    result = prune(app, tenant_days={None: 180}.get)
    assert result.count == 1
    assert [tenant for tenant, _age in trail(app)] == [None, "acme"]


@per_tenant
def test_the_window_stated_for_a_tenant_never_falls_below_the_floor(app: Flask) -> None:
    assert settings.tenant_window(app, "acme") == 365
    assert settings.tenant_window(app, "initech") == 90
    assert settings.tenant_window(app, "globex") == 90
    assert settings.tenant_window(app, None) == 90


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"acme": 0}, "AUDIT_TENANT_RETENTION_DAYS gives tenant 'acme' 0: use a whole number of days."),
        (
            {"acme": "365"},
            "AUDIT_TENANT_RETENTION_DAYS gives tenant 'acme' '365': use a whole number of days.",
        ),
        (
            365,
            "AUDIT_TENANT_RETENTION_DAYS must be a mapping of tenant to days or callable(tenant_id),"
            " not 365.",
        ),
    ],
)
def test_bad_tenant_windows_are_refused_at_start_up(app: Flask, value: t.Any, message: str) -> None:
    fresh = Flask("other")
    fresh.config.update(AUDIT_TENANT_RETENTION_DAYS=value)
    with pytest.raises(AuditConfigError) as info:
        settings.load(fresh)
    assert str(info.value) == message


def test_a_loader_giving_nonsense_stops_prune(app: Flask) -> None:
    record(app, "acme", 100)
    with pytest.raises(ValueError, match="gives tenant 'acme' -1"):
        prune(app, tenant_days=lambda tenant: -1)
    assert len(stored(app)) == 1


def test_a_tenant_sees_its_own_window_on_the_page_the_api_and_the_export(make_app: t.Any) -> None:
    """acme keeps a year: its admin finds a 200-day-old event everywhere; globex keeps the
    default 90 days, so its 100-day-old event (kept for now) is outside what it is shown."""
    from ..views_fixtures import build_site
    from ..views_fixtures import PREFIX
    from ..views_fixtures import TENANT_LOADER

    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER, AUDIT_TENANT_RETENTION_DAYS={"acme": 365})
    site.insert(
        site.event(tenant_id="acme", occurred_at=days_ago(200), activity="Old acme rename"),
        site.event(tenant_id="globex", occurred_at=days_ago(100), activity="Old globex rename"),
    )
    acme, globex = site.client(site.admin), site.client(site.other_admin)
    assert "Old acme rename" in acme.get(f"{PREFIX}/").text
    assert "Events are kept for 365 days" in acme.get(f"{PREFIX}/").text
    assert [e["activity"] for e in acme.get(f"{PREFIX}/api/events").get_json()["events"]] == [
        "Old acme rename"
    ]
    assert acme.get(f"{PREFIX}/exports/new", headers={"Accept": "application/json"}).get_json()["count"] == 1
    assert "Old globex rename" not in globex.get(f"{PREFIX}/").text
    assert globex.get(f"{PREFIX}/api/events").get_json()["events"] == []
    assert (
        globex.get(f"{PREFIX}/exports/new", headers={"Accept": "application/json"}).get_json()["count"] == 0
    )
