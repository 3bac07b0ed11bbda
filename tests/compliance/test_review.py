"""The daily review: days not yet reviewed with their summary, an admin's sign-off recorded
as ``audit.reviewed``, members refused, each tenant reviewing its own days."""

from __future__ import annotations

import datetime as dt
import typing as t
import zoneinfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_wtf.csrf import generate_csrf

from flask_audit.admin import review as review_page  # noqa: F401 (mounts the review routes)
from flask_audit.compliance import review

from ..apps import add_user
from ..conftest import audit_of
from ..conftest import MakeApp
from ..conftest import signed_in_client
from ..conftest import stored
from ..export_fixtures import TENANT_LOADER

pytestmark = pytest.mark.backends("sqlite", "mariadb")
URL = "/admin/audit/review"
TZ = "Europe/Berlin"


class Site(t.NamedTuple):
    app: Flask
    admin: int
    member: int
    other_admin: int


@pytest.fixture
def site(make_app: MakeApp) -> Site:
    app = make_app(AUDIT_TENANT_LOADER=TENANT_LOADER, AUDIT_TIMEZONE=TZ)
    app.add_url_rule("/test-csrf", "test_csrf", generate_csrf)
    return Site(
        app,
        add_user(app, "ann@acme.test", is_admin=True, tenant="acme"),
        add_user(app, "mem@acme.test", tenant="acme"),
        add_user(app, "gil@globex.test", is_admin=True, tenant="globex"),
    )


def _day(days_back: int) -> dt.date:
    return dt.datetime.now(zoneinfo.ZoneInfo(TZ)).date() - dt.timedelta(days=days_back)


def _at_noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12), zoneinfo.ZoneInfo(TZ))


def _record(app: Flask, event_type: str, day: dt.date, tenant: str = "acme", **fields: t.Any) -> None:
    with app.app_context():
        audit_of(app).record(event_type, tenant_id=tenant, occurred_at=_at_noon(day), actor=None, **fields)


def _mark(client: FlaskClient, first: dt.date, last: dt.date | None = None, note: str = "") -> t.Any:
    token = client.get("/test-csrf").get_data(as_text=True)
    form = {"csrf_token": token, "from": first.isoformat(), "to": (last or first).isoformat(), "note": note}
    return client.post(URL, data=form)


def test_the_days_not_yet_reviewed_are_listed_with_their_summary(site: Site) -> None:
    yesterday = _day(1)
    _record(site.app, "two_factor.disabled", yesterday)
    _record(site.app, "user.login_failed", yesterday)
    _record(site.app, "user.login_failed", yesterday)
    _record(
        site.app,
        "role.updated",
        yesterday,
        target=("user", "7"),
        details={"before": "member", "after": "admin"},
    )
    _record(site.app, "sso.updated", yesterday, tenant="globex")
    with site.app.app_context():
        state = audit_of(site.app)._state()
        scope = {"retention_days": 90, "tenant_scoped": True, "tenant_id": "acme"}
        with state.engine.connect() as conn:
            days = review.unreviewed(conn, state.config, t.cast(t.Any, scope))
    assert [d.day for d in days] == [_day(n) for n in range(30, 0, -1)]
    last = days[-1]
    assert (last.events, last.failures, last.new_admins) == (4, 2, ["7"])
    assert last.critical == {"role.updated": 1, "two_factor.disabled": 1, "user.login_failed": 2}
    assert days[0].events == 0
    page = signed_in_client(site.app, site.admin).get(URL)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "<h1>Daily review</h1>" in text and yesterday.isoformat() in text
    assert "two_factor.disabled: 1" in text and "Mark all 30 days reviewed" in text
    assert "sso.updated" not in text  # another tenant's


def test_an_admin_marks_a_day_reviewed_with_a_note(site: Site) -> None:
    client = signed_in_client(site.app, site.admin)
    yesterday = _day(1)
    response = _mark(client, yesterday, note="Checked the 2FA change with Bob.")
    assert response.status_code == 303 and response.location.endswith(URL)
    [event] = [e for e in stored(site.app) if e.event_type == "audit.reviewed"]
    assert (event.actor_email, event.tenant_id, event.entity, event.action) == (
        "ann@acme.test",
        "acme",
        "Audit log",
        "update",
    )
    assert event.activity == f"Reviewed the audit log of {yesterday}"
    assert event.details == {
        "from": yesterday.isoformat(),
        "to": yesterday.isoformat(),
        "note": "Checked the 2FA change with Bob.",
        "timezone": TZ,
    }
    text = client.get(URL).get_data(as_text=True)
    assert "Mark all 29 days reviewed" in text
    assert "ann@acme.test" in text and "Checked the 2FA change with Bob." in text


def test_a_range_is_marked_at_once_and_other_tenants_still_have_theirs(site: Site) -> None:
    assert _mark(signed_in_client(site.app, site.admin), _day(30), _day(1)).status_code == 303
    text = signed_in_client(site.app, site.admin).get(URL).get_data(as_text=True)
    assert "Every day is reviewed." in text
    assert f"{_day(30).isoformat()} to {_day(1).isoformat()}" in text
    other = signed_in_client(site.app, site.other_admin).get(URL).get_data(as_text=True)
    assert "Mark all 30 days reviewed" in other and "No day has been reviewed yet." in other


def test_a_member_may_not_review(site: Site) -> None:
    client = signed_in_client(site.app, site.member)
    assert client.get(URL).status_code == 403
    assert _mark(client, _day(1)).status_code == 403
    assert [e for e in stored(site.app) if e.event_type == "audit.reviewed"] == []


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (0, 0, "Only the days from"),  # today is not over
        (31, 31, "Only the days from"),
        (1, 2, "Only the days from"),  # out of order
    ],
)
def test_days_outside_the_review_are_refused(site: Site, first: int, last: int, message: str) -> None:
    response = _mark(signed_in_client(site.app, site.admin), _day(first), _day(last))
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert [e for e in stored(site.app) if e.event_type == "audit.reviewed"] == []


def test_a_sign_off_needs_the_csrf_token(site: Site) -> None:
    client = signed_in_client(site.app, site.admin)
    response = client.post(URL, data={"from": _day(1).isoformat(), "to": _day(1).isoformat()})
    assert response.status_code == 400 and "The review was not recorded" in response.get_data(as_text=True)
