from __future__ import annotations

import datetime as dt
import re
import typing as t

import pytest

from flask_audit.admin.api import FIELDS
from flask_audit.admin.api import iso_utc

from ..conftest import MakeApp
from ..views_fixtures import build_site
from ..views_fixtures import PREFIX
from ..views_fixtures import Site
from ..views_fixtures import TENANT_LOADER
from ..views_fixtures import utcnow

API = f"{PREFIX}/api/events"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def get(site: Site, query: str = "", *, status: int = 200) -> dict[str, t.Any]:
    response = site.client(site.admin).get(f"{API}{query}")
    assert response.status_code == status, response.text
    assert response.mimetype == "application/json"
    return t.cast(dict[str, t.Any], response.json)


def test_an_event_is_serialised_with_every_field(make_app: MakeApp) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    when = utcnow().replace(microsecond=5) - dt.timedelta(hours=3)
    site.insert(
        site.event(
            "role.updated",
            tenant_id="acme",
            team="Growth",
            activity="Changed role of bob@acme.test from Member to Admin",
            actor_id="7",
            actor_email="alice@acme.test",
            ip="198.51.100.4",
            user_agent="Mozilla/5.0",
            request_id="req-1",
            target_type="user",
            target_id="42",
            details={"before": "member", "after": "admin"},
            occurred_at=when,
        )
    )
    body = get(site)
    [event] = body["events"]
    assert set(event) == set(FIELDS)
    assert event["occurred_at"] == when.strftime("%Y-%m-%dT%H:%M:%S.000005Z")
    assert ISO_Z.match(event["occurred_at"])
    expected = {
        "tenant_id": "acme",
        "team": "Growth",
        "event_type": "role.updated",
        "entity": "Role",
        "action": "update",
        "outcome": "success",
        "actor_id": "7",
        "actor_email": "alice@acme.test",
        "ip": "198.51.100.4",
        "user_agent": "Mozilla/5.0",
        "request_id": "req-1",
        "target_type": "user",
        "target_id": "42",
        "details": {"before": "member", "after": "admin"},
    }
    assert {key: event[key] for key in expected} == expected
    assert body["next_cursor"] is None and body["limit"] == 50


def test_iso_utc_converts_other_offsets() -> None:
    tokyo = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    assert iso_utc(tokyo) == "2026-03-01T00:00:00.000000Z"


def test_cursor_pagination_visits_every_event_once(make_app: MakeApp) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    same_time = utcnow() - dt.timedelta(minutes=30)
    rows = site.series(23, every=dt.timedelta(minutes=1), tenant_id="acme")
    rows += [site.event(tenant_id="acme", activity=f"Tie {n}", occurred_at=same_time) for n in range(4)]
    site.insert(*rows)
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        body = get(site, f"?limit=5{cursor}")
        pages += 1
        assert len(body["events"]) <= 5
        seen += [event["activity"] for event in body["events"]]
        if body["next_cursor"] is None:
            break
        cursor = f"&cursor={body['next_cursor']}"
    assert pages == 6
    assert len(seen) == len(set(seen)) == 27
    times = [event["occurred_at"] for event in get(site, "?limit=500")["events"]]
    assert times == sorted(times, reverse=True)


def test_limit_bounds(make_app: MakeApp) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    site.insert(*site.series(60, every=dt.timedelta(minutes=1), tenant_id="acme"))
    assert len(get(site)["events"]) == 50
    assert len(get(site, "?limit=1")["events"]) == 1
    assert len(get(site, "?limit=500")["events"]) == 60


@pytest.mark.parametrize("limit", ["0", "501", "-1", "abc", "1.5", "1e3", "99999999999999999999", "٣"])
def test_a_bad_limit_is_a_400(make_app: MakeApp, limit: str) -> None:
    site = build_site(make_app)
    body = get(site, f"?limit={limit}", status=400)
    assert body["error"].startswith("The limit must be a whole number from 1 to 500, not ")


@pytest.mark.parametrize(
    ("query", "error"),
    [
        (
            "start=2026-13-01",
            "The start date '2026-13-01' is not a valid date; use YYYY-MM-DD or an ISO 8601 time.",
        ),
        ("start=2026-03-02&end=2026-03-01", "The start date is after the end date."),
        ("outcome=maybe", "Unknown outcome 'maybe'. Choose one of: success, failure."),
        ("event_type=drop table", "Unknown event type 'drop table': event types look like 'role.updated'."),
        ("cursor=%%%", "The page cursor is not valid; start again from the first page."),
        ("tz=Nowhere", "Unknown time zone 'Nowhere'; use an IANA name such as 'Europe/Berlin'."),
    ],
)
def test_bad_filters_are_a_json_400(make_app: MakeApp, query: str, error: str) -> None:
    site = build_site(make_app)
    assert get(site, f"?{query}", status=400) == {"error": error}


def test_filters_match_the_page(make_app: MakeApp) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    site.insert(
        site.event("team.created", tenant_id="acme", team="Growth", activity="growth"),
        site.event("team.created", tenant_id="acme", team="Platform", activity="platform"),
        site.event("audit.exported", tenant_id="acme", actor_email="eve@acme.test", activity="export"),
    )
    assert [e["activity"] for e in get(site, "?team=Growth")["events"]] == ["growth"]
    assert [e["activity"] for e in get(site, "?action=export")["events"]] == ["export"]
    assert [e["activity"] for e in get(site, "?actor=eve@acme.test&entity=Audit log")["events"]] == ["export"]
    assert get(site, f"?start={(utcnow() + dt.timedelta(days=1)).date()}")["events"] == []


def test_the_api_is_read_only(make_app: MakeApp) -> None:
    site = build_site(make_app)
    client = site.client(site.admin)
    for method in (client.post, client.put, client.delete):
        assert method(API).status_code == 405


def test_q_takes_the_search_language(make_app: MakeApp) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    site.insert(
        site.event("user.login", tenant_id="acme", actor_email="priya@acme.test", activity="in"),
        site.event("user.login_failed", tenant_id="acme", actor_email="Priya@acme.test", activity="failed"),
        site.event("team.created", tenant_id="acme", team="Growth", activity="team"),
        site.event("user.login", tenant_id="globex", actor_email="priya@globex.test", activity="other"),
    )
    assert [e["activity"] for e in get(site, "?q=actor:PRI")["events"]] == ["failed", "in"]
    assert [e["activity"] for e in get(site, "?q=actor:pri -outcome:failure")["events"]] == ["in"]
    assert [e["activity"] for e in get(site, "?q=actor:pri&outcome=failure")["events"]] == ["failed"]
    assert [e["activity"] for e in get(site, "?q=type:team.* type:user.login")["events"]] == ["team", "in"]
    assert get(site, "?q=%20%20")["events"] != []  # blank: no search


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("acter:priya", "Unknown qualifier 'acter:' at column 1 (try actor:)."),
        ("outcome:maybe", "Unknown outcome 'maybe' at column 9. Choose one of: success, failure."),
        ('team:"x', 'The quote at column 6 is not closed: end the value with ".'),
        (
            "created:2026-02-30",
            "'2026-02-30' at column 9 is not a date: use YYYY-MM-DD or an ISO 8601 time,"
            " after >, >=, <, <= or in a range such as 2026-11-01..2026-11-30.",
        ),
    ],
)
def test_a_bad_q_is_a_json_400_that_points_at_the_token(make_app: MakeApp, query: str, error: str) -> None:
    site = build_site(make_app)
    response = site.client(site.admin).get(API, query_string={"q": query})
    assert (response.status_code, response.json) == (400, {"error": error})
