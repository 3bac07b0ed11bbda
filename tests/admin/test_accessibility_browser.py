"""axe-core on every page of the audit log, on a phone and a laptop screen.

The list with rows, its empty and no-match states, a bad filter, an event's page, the export
history and confirmation, the daily review and the 403 page a member gets: no serious or
critical violation, and no sideways scroll. The 403 page says who can see the log and how
to ask; the JSON API keeps its JSON 403. SQLite only: the browser sees the same HTML on
every backend.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import expect

from ..browser_fixtures import assert_fits_and_passes_axe
from ..browser_fixtures import signed_in_cookie
from ..browser_fixtures import SIZES
from ..conftest import MakeApp
from ..demo_fixtures import LiveServer
from ..export_fixtures import build_site
from ..export_fixtures import PREFIX
from ..export_fixtures import Site
from ..export_fixtures import SmtpServer
from ..export_fixtures import TENANT_LOADER

pytestmark = pytest.mark.backends("sqlite")


@pytest.fixture
def site(make_app: MakeApp, smtp_server: SmtpServer) -> Site:
    site = build_site(make_app, smtp_server, AUDIT_TENANT_LOADER=TENANT_LOADER)
    now = dt.datetime.now(dt.timezone.utc)
    site.insert(
        *(
            site.event(
                event_type,
                tenant_id="acme",
                occurred_at=now - dt.timedelta(hours=7 * n + 1),
                activity=activity,
                actor_email="priya.raman@acme-corporation.test",
                ip="2001:db8:85a3::8a2e:370:7334" if n % 2 else "203.0.113.7",
                team="Équipe Zoë 🚀",
                target_type="user",
                target_id=str(n),
                outcome="failure" if event_type == "user.login_failed" else "success",
                details={"before": "member", "after": "admin"} if event_type == "role.updated" else {},
            )
            for n, (event_type, activity) in enumerate(
                [
                    ("role.updated", "Changed role of lucas@example.com from Member to Admin"),
                    ("user.login_failed", "Failed sign-in"),
                    ("audit.exported", "Exported the audit log"),
                    ("team.created", "Created team Growth"),
                    ("user.login", "Signed in"),
                ]
                * 4
            )
        )
    )
    return site


def newest_event_id(site: Site) -> int:
    client = site.client(site.admin)
    return t.cast(int, client.get(f"{PREFIX}/api/events").get_json()["events"][0]["id"])


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_axe_finds_nothing_serious_on_any_page(
    site: Site, browser: Browser, axe_script: str, width: int, height: int
) -> None:
    event_id = newest_event_id(site)
    pages = [
        ("list", f"{PREFIX}/?tz=UTC", site.admin, 200),
        (
            "list, more filters open",
            f"{PREFIX}/?actor=priya.raman@acme-corporation.test&tz=UTC",
            site.admin,
            200,
        ),
        ("no events", f"{PREFIX}/", site.other_admin, 200),
        ("no match", f"{PREFIX}/?entity=SSO", site.admin, 200),
        ("bad filter", f"{PREFIX}/?start=soon", site.admin, 400),
        ("bad search", f"{PREFIX}/?q=acter:x", site.admin, 400),
        ("detail", f"{PREFIX}/events/{event_id}", site.admin, 200),
        ("export history", f"{PREFIX}/exports", site.admin, 200),
        ("export confirmation", f"{PREFIX}/exports/new?team=Équipe Zoë 🚀", site.admin, 200),
        ("review", f"{PREFIX}/review", site.admin, 200),
        ("403", f"{PREFIX}/", site.member, 403),
    ]
    with LiveServer(site.app) as server:
        for name, path, user, status in pages:
            context = browser.new_context(viewport={"width": width, "height": height})
            context.add_cookies([signed_in_cookie(site.app, user, server.url)])  # type: ignore[list-item]
            try:
                page = context.new_page()
                page.set_default_timeout(10_000)
                response = page.goto(server.url + path)
                assert response is not None and response.status == status, name
                expect(page.get_by_role("heading", level=1)).to_be_visible()
                assert_fits_and_passes_axe(page, axe_script, name)
            finally:
                context.close()


def test_a_member_gets_a_page_that_says_who_can_see_the_log_and_how_to_ask(site: Site) -> None:
    member = site.client(site.member)
    page = member.get(f"{PREFIX}/")
    assert page.status_code == 403 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<h1 class="fa-title">You cannot see the audit log</h1>' in html
    assert "audit.css" in html  # the package's own layout
    assert (
        'open to the administrators of\n      your organisation (<span class="fa-mono">acme</span>) only.'
        in html
    )
    assert 'You are signed in as <strong class="fa-forbidden__email">member@acme.test</strong>' in html
    assert "Ask an administrator of localhost to make you an administrator" in html
    assert "Priya" not in html and "Changed role" not in html
    for path in ("/events/1", "/exports", "/exports/new", "/review"):
        assert member.get(PREFIX + path).status_code == 403, path
    api = member.get(f"{PREFIX}/api/events")
    assert api.status_code == 403 and api.mimetype == "application/json"
    assert api.json == {"error": "Only audit admins may view this page (AUDIT_IS_ADMIN / AUDIT_ADMIN_ROLE)."}
    anonymous = site.client().get(f"{PREFIX}/")
    assert anonymous.status_code == 401  # unchanged: no login view in this app
