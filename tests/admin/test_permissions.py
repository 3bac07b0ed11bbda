"""Who may read the trail: the page and the API, for each kind of visitor."""

from __future__ import annotations

import typing as t

import pytest

from ..apps import User
from ..conftest import db
from ..conftest import MakeApp
from ..views_fixtures import activities
from ..views_fixtures import build_site
from ..views_fixtures import PREFIX
from ..views_fixtures import Site
from ..views_fixtures import TENANT_LOADER

PAGE = f"{PREFIX}/"
API = f"{PREFIX}/api/events"


def seeded(make_app: MakeApp, **config: object) -> Site:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER, **config)
    site.insert(
        site.event(tenant_id="acme", activity="acme event"),
        site.event(tenant_id="globex", activity="globex event"),
        site.event(tenant_id=None, activity="tenantless event"),
    )
    return site


@pytest.mark.parametrize(
    ("who", "page_status", "api_status", "api_error"),
    [
        ("anonymous", 401, 401, "Sign in as an administrator to read the audit log."),
        ("member", 403, 403, "Only audit admins may view this page (AUDIT_IS_ADMIN / AUDIT_ADMIN_ROLE)."),
        ("admin", 200, 200, None),
        ("other_admin", 200, 200, None),
    ],
)
def test_permission_matrix(
    make_app: MakeApp, who: str, page_status: int, api_status: int, api_error: str | None
) -> None:
    site = seeded(make_app)
    client = site.client(None if who == "anonymous" else getattr(site, who))
    page = client.get(PAGE)
    assert page.status_code == page_status
    api = client.get(API)
    assert api.status_code == api_status
    assert api.mimetype == "application/json"
    if api_error is not None:
        assert api.json == {"error": api_error}
        assert "acme event" not in page.text and "globex event" not in page.text
    else:
        own = "acme event" if who == "admin" else "globex event"
        assert activities(page.text) == [own]
        assert [event["activity"] for event in t.cast(dict[str, t.Any], api.json)["events"]] == [own]


def test_anonymous_visitors_are_sent_to_the_login_view(make_app: MakeApp) -> None:
    site = seeded(make_app)
    site.app.login_manager.login_view = "login_view"  # type: ignore[attr-defined]
    client = site.client()
    page = client.get(f"{PAGE}?entity=Team")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/login?next=")
    api = client.get(API)
    assert api.status_code == 401
    assert "Location" not in api.headers


def test_the_app_decides_who_is_an_admin(make_app: MakeApp) -> None:
    site = seeded(make_app, AUDIT_IS_ADMIN=lambda user: user.email.startswith("member@"))
    assert site.client(site.member).get(PAGE).status_code == 200
    assert site.client(site.admin).get(PAGE).status_code == 403
    assert site.client(site.admin).get(API).status_code == 403


def test_a_tenant_admin_cannot_filter_their_way_into_another_tenant(make_app: MakeApp) -> None:
    site = seeded(make_app)
    client = site.client(site.admin)
    for query in ("?team=", "?actor=system", "?event_type=team.created"):
        assert "globex event" not in client.get(PAGE + query).text
        assert "globex event" not in client.get(API + query).text


def test_an_admin_without_a_tenant_sees_only_tenantless_events(make_app: MakeApp) -> None:
    """Scoping fails closed: no tenant matches only events without one."""
    site = seeded(make_app)
    with site.app.app_context():
        user = db(site.app).session.get(User, site.admin)
        assert user is not None
        user.tenant = None
        db(site.app).session.commit()
        db(site.app).session.remove()
    page = site.client(site.admin).get(PAGE).text
    assert "tenantless event" in page
    assert "acme event" not in page and "globex event" not in page


def test_single_tenant_apps_show_every_event(make_app: MakeApp) -> None:
    site = build_site(make_app)
    site.insert(site.event(tenant_id="acme", activity="acme event"), site.event(activity="plain event"))
    shown = activities(site.client(site.admin).get(PAGE).text)
    assert {"acme event", "plain event"} <= set(shown)


def test_the_stylesheet_needs_no_sign_in(make_app: MakeApp) -> None:
    site = build_site(make_app)
    with site.client().get(f"{PREFIX}/static/flask_audit/audit.css") as response:
        assert response.status_code == 200


@pytest.mark.parametrize("path", ["/", "/events/1", "/review", "/exports", "/exports/new"])
def test_a_member_gets_the_styled_refusal_and_never_a_row(make_app: MakeApp, path: str) -> None:
    """Each HTML route refuses a member with the package's page; only an admin sees a row."""
    site = seeded(make_app)
    refused = site.client(site.member).get(PREFIX + path)
    assert refused.status_code == 403 and refused.mimetype == "text/html"
    assert "You cannot see the audit log" in refused.text and "audit.css" in refused.text
    assert "Ask an administrator of localhost" in refused.text
    assert "event" not in "".join(activities(refused.text)) and "acme event" not in refused.text
    assert site.client().get(PREFIX + path).status_code == 401  # anonymous: unchanged
    assert site.client(site.other_admin).get(PREFIX + path).status_code != 403
