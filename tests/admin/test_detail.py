"""The event detail page, ``<prefix>/events/<id>``: content, scope, seal status, and in Chromium.

Events are stored the way the capture paths shape them (or through those paths themselves),
then read as an admin would: the page as plain text, so each assertion says what a reader
sees. The browser tests run on SQLite only; they need ``axe-core`` (see :func:`axe_script`).
"""

from __future__ import annotations

import datetime as dt
import html as html_
import re
import typing as t
import zoneinfo

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser

from flask_audit import signals
from flask_audit.admin import details
from flask_audit.store.models import audit_event_table

from ..apps import Team
from ..apps import User
from ..browser_fixtures import assert_fits_and_passes_axe
from ..browser_fixtures import signed_in_cookie
from ..conftest import audit_of
from ..conftest import db
from ..conftest import MakeApp
from ..demo_fixtures import LiveServer
from ..sealing_fixtures import forged
from ..sealing_fixtures import KEY
from ..sealing_fixtures import links
from ..sealing_fixtures import seal
from ..views_fixtures import activities
from ..views_fixtures import build_site
from ..views_fixtures import PREFIX
from ..views_fixtures import Site
from ..views_fixtures import TENANT_LOADER
from ..views_fixtures import utcnow

EVENTS = audit_event_table
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def tenant_site(make_app: MakeApp, **config: t.Any) -> Site:
    return build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER, **config)


def stored_id(site: Site, row: dict[str, t.Any]) -> int:
    """The id the database gave the event built as ``row`` (found by its uid)."""
    with site.app.app_context():
        with audit_of(site.app)._state().engine.connect() as conn:
            return int(conn.execute(sa.select(EVENTS.c.id).where(EVENTS.c.uid == row["uid"])).scalar_one())


def add(site: Site, event_type: str = "team.created", **fields: t.Any) -> int:
    row = site.event(event_type, **fields)
    site.insert(row)
    return stored_id(site, row)


def newest_id(site: Site, event_type: str) -> int:
    with site.app.app_context():
        query = sa.select(sa.func.max(EVENTS.c.id)).where(EVENTS.c.event_type == event_type)
        return int(db(site.app).session.scalar(query))


def detail(site: Site, event_id: int, query: str = "", *, status: int = 200, user: int | None = None) -> str:
    response = site.client(site.admin if user is None else user).get(f"{PREFIX}/events/{event_id}{query}")
    assert response.status_code == status, response.text[:2000]
    return response.text


def text_of(markup: str) -> str:
    """What a reader sees: the tags gone, entities decoded, white space collapsed."""
    body = markup.split("<body", 1)[-1]
    return " ".join(html_.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def section(markup: str, heading: str) -> str:
    """The text of the card headed ``heading`` (Event, Changes, Details, Integrity)."""
    found = re.search(rf">{heading}</h2>(.*?)</section>", markup, re.S)
    assert found is not None, f"no {heading} section"
    return text_of(found.group(1))


# -- content ---------------------------------------------------------------------------------


def test_a_role_change_shows_every_field_and_its_before_and_after(make_app: MakeApp) -> None:
    site = tenant_site(make_app)
    when = (utcnow() - dt.timedelta(hours=2)).replace(microsecond=250000)
    event_id = add(
        site,
        "role.updated",
        tenant_id="acme",
        team="Growth",
        activity="Changed role of bob@acme.test from Member to Admin",
        actor_id="7",
        actor_email="alice@acme.test",
        ip="2001:db8::7",
        user_agent=UA,
        request_id="req-4f2a",
        target_type="user",
        target_id="42",
        details={"before": "member", "after": "admin"},
        occurred_at=when,
    )
    page = detail(site, event_id, "?tz=Asia/Kolkata")
    assert f"<title>Event {event_id} · Audit logs</title>" in page
    kolkata = when.astimezone(zoneinfo.ZoneInfo("Asia/Kolkata"))
    iso = when.strftime("%Y-%m-%dT%H:%M:%S.250Z")
    assert f'<time datetime="{iso}">{kolkata:%Y-%m-%d %H:%M:%S}</time>' in page  # no title-only UTC
    facts = section(page, "Event")
    expected = (
        f"Time {kolkata:%Y-%m-%d %H:%M:%S} (Asia/Kolkata) {when:%Y-%m-%d %H:%M:%S} UTC",
        "Actor alice@acme.test (id 7)",
        "Activity Changed role of bob@acme.test from Member to Admin",
        "Event type role.updated",
        "Entity Role",
        "Action Update",
        "Outcome Success",
        "Team Growth",
        "Target user 42",
        "IP address 2001:db8::7",
        f"User agent {UA}",
        "Request ID req-4f2a",
        "Tenant acme",
        f"Event ID {event_id} (uid ",
    )
    for fact in expected:
        assert fact in facts
    assert "Late" not in facts
    assert section(page, "Changes") == "Role Before member After admin"
    assert '<span class="fa-diff__mark">Before</span> <del>member</del>' in page
    assert '<span class="fa-diff__mark">After</span> <ins>admin</ins>' in page
    assert "Details</h2>" not in page  # nothing left beyond the change
    assert "<script" not in page  # nothing needs JavaScript
    assert section(page, "Integrity") == (
        "Sealing is off: AUDIT_SEAL_KEY is not set, so events are not sealed."
    )
    response = site.client(site.admin).get(f"{PREFIX}/events/{event_id}?tz=Mars/Olympus")
    assert f"{when:%Y-%m-%d %H:%M:%S} (UTC)" in section(response.text, "Event")  # the default zone
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_changes_in_each_captured_shape_read_as_diffs(make_app: MakeApp) -> None:
    """Roles as sets (Flask-Security, Flask-AppBuilder), settings as ``{field: {before, after}}``
    (SSO metadata) and members of a set as ``{added, removed}`` (role permissions)."""
    site = tenant_site(make_app)
    roles = add(
        site,
        "role.updated",
        tenant_id="acme",
        details={"user": "bob@acme.test", "before": ["billing", "member"], "after": ["admin", "member"]},
    )
    page = detail(site, roles)
    assert section(page, "Changes") == "Role Removed billing Added admin Kept member"
    assert section(page, "Details") == "User bob@acme.test"
    settings = add(
        site,
        "sso.updated",
        tenant_id="acme",
        details={
            "sso_url": {"before": "https://idp.test/a", "after": "https://idp.test/b"},
            "enforced": {"before": False, "after": True},
            "permissions": {"added": ["can_export"], "removed": []},
            "entity_id": "https://idp.test",
        },
    )
    page = detail(site, settings)
    assert section(page, "Changes") == (
        "Enforced Before No After Yes Permissions Added can_export"
        " SSO URL Before https://idp.test/a After https://idp.test/b"
    )
    assert section(page, "Details") == "Entity ID https://idp.test"


def test_tracked_updates_and_signalled_role_changes_show_each_change(make_app: MakeApp) -> None:
    site = build_site(make_app, TEST_TRACK_MODELS=True)
    database = db(site.app)
    with site.app.app_context():
        team = Team(name="Growth")
        database.session.add(team)
        database.session.commit()
        team.name = "Expansion"
        database.session.commit()
        user = database.session.get(User, site.member)
        assert user is not None
        user.email, user.role = "m@acme.test", "admin"
        database.session.commit()
        database.session.remove()
    renamed = detail(site, newest_id(site, "team.updated"))
    assert section(renamed, "Changes") == "Name Before Growth After Expansion"
    assert "Target team " in section(renamed, "Event")
    email = detail(site, newest_id(site, "user.updated"))
    assert section(email, "Changes") == "Email Before member@acme.test After m@acme.test"
    role = detail(site, newest_id(site, "role.updated"))
    assert section(role, "Changes") == "Role Before member After admin"
    with site.app.app_context():
        signals.role_updated.send(
            site.app, user=database.session.get(User, site.admin), old="admin", new="owner"
        )
        database.session.remove()
    sent = detail(site, newest_id(site, "role.updated"))
    assert section(sent, "Changes") == "Role Before admin After owner"
    assert f"Target user {site.admin}" in section(sent, "Event")


def test_a_failed_sign_in_shows_its_outcome_origin_and_reason(make_app: MakeApp) -> None:
    site = build_site(make_app)
    response = site.app.test_client().post(
        "/login",
        data={"email": "member@acme.test", "password": "wrong"},
        headers={"User-Agent": UA, "X-Request-ID": "r-1"},
    )
    assert response.status_code == 401
    event_id = newest_id(site, "user.login_failed")
    page = detail(site, event_id)
    assert '<span class="fa-badge fa-badge--failure">Failed</span>' in page
    facts = section(page, "Event")
    for fact in ("Outcome Failed", "Action Login", "IP address 127.0.0.1", f"User agent {UA}"):
        assert fact in facts
    assert section(page, "Details") == "Email member@acme.test Reason bad_password"
    assert "Changes</h2>" not in page
    # Without a tenant loader every admin sees every event.
    assert "Failed sign-in for member@acme.test" in detail(site, event_id, user=site.other_admin)


def test_a_late_write_is_marked_and_explained(make_app: MakeApp) -> None:
    site = build_site(make_app)
    with site.app.app_context():
        event = audit_of(site.app).record("team.created", occurred_at=utcnow() - dt.timedelta(days=2))
        event_id, late = event.id, event.late
    assert late
    page = detail(site, event_id)
    assert '<span class="fa-badge fa-badge--late">Late</span>' in page
    assert "Late Stored after the fact: replayed from the spool, recorded with an explicit time" in (
        section(page, "Event")
    )


def test_details_read_as_a_definition_list_and_missing_values_in_words(make_app: MakeApp) -> None:
    site = tenant_site(make_app)
    details = {
        "method": "password",
        "sso_url": "https://idp.test/sso",
        "remember": True,
        "attempts": 3,
        "note": None,
        "groups": ["ops", "dev"],
        "settings": {"entity_id": "https://idp.test", "tags": []},
    }
    event_id = add(site, "user.login", tenant_id="acme", details=details)
    page = detail(site, event_id)
    assert section(page, "Details") == (
        "Attempts 3 Groups ops dev Method password Note none Remember Yes"
        " Settings Entity ID https://idp.test Tags none SSO URL https://idp.test/sso"
    )
    assert '<ul class="fa-values"><li>ops</li><li>dev</li></ul>' in page
    bare = detail(site, add(site, tenant_id="acme", actor_email=None, team=None, details={}))
    facts = section(bare, "Event")
    for fact in ("Actor System or unknown", "Team No team", "Target None", "IP address Not recorded"):
        assert fact in facts
    assert "Changes</h2>" not in bare and "Details</h2>" not in bare


def test_text_in_an_event_is_escaped(make_app: MakeApp) -> None:
    site = tenant_site(make_app)
    event_id = add(
        site,
        tenant_id="acme",
        activity="<script>alert(1)</script>",
        details={"<b>key</b>": "<img src=x>", "changes": {"name": ["<i>", "</i>"]}},
    )
    page = detail(site, event_id)
    assert "<script>alert(1)" not in page and "<img src=x>" not in page and "<b>key" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert section(page, "Changes") == "Name Before <i> After </i>"


def test_shapes_that_are_not_changes_stay_details() -> None:
    changes, rest = details.split(
        {"changes": {"name": ["a", "b", "c"]}, "name": ["old", "new"], "limits": {"before": 1}},
        subject="Team",
    )
    assert changes == []
    assert rest == {"changes": {"name": ["a", "b", "c"]}, "name": ["old", "new"], "limits": {"before": 1}}
    assert details.split(None, subject="Team") == ([], {})
    assert details.split(["a"], subject="Team") == ([], {"value": ["a"]})


def test_a_set_from_nothing_lists_only_what_was_added() -> None:
    change = details.Change
    assert change.of("Roles", None, ["admin"]) == change("Roles", is_set=True, added=("admin",))
    assert change.of("Role", None, "admin") == change("Role", before="none", after="admin")
    assert change.of("Limit", {"a": 1}, [1]) == change("Limit", before='{"a": 1}', after="[1]")


def test_labels_and_deep_values_stay_readable() -> None:
    labels = [details.label(key) for key in ("sso_url", "entity-id", "x", "")]
    assert labels == ["SSO URL", "Entity ID", "X", ""]
    deep = {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}
    leaf = details.items(deep)[0].children[0].children[0].children[0].children[0]
    assert (leaf.label, leaf.text) == ("E", '{"f": 1}')


# -- the list and the way back ---------------------------------------------------------------


def test_each_row_links_to_its_event_with_the_list_query_and_shows_the_target(make_app: MakeApp) -> None:
    site = tenant_site(make_app)
    event_id = add(
        site,
        "role.updated",
        tenant_id="acme",
        activity="Made bob an admin",
        target_type="user",
        target_id="42",
    )
    query = "?entity=Role&tz=Europe/Paris"
    listing = site.client(site.admin).get(f"{PREFIX}/{query}").text
    link = f'<a class="fa-activity__link" href="{PREFIX}/events/{event_id}?entity=Role&amp;tz=Europe/Paris">'
    assert f'{link}<span class="fa-activity__text">Made bob an admin</span></a>' in listing
    assert activities(listing) == ["Made bob an admin"]
    assert 'Target: user <span class="fa-mono">42</span>' in listing
    page = detail(site, event_id, query)
    back = f'<a class="fa-button" href="{PREFIX}/?entity=Role&amp;tz=Europe/Paris">'
    assert f'{back}<span aria-hidden="true">←</span> Back to audit logs</a>' in page
    assert "(Europe/Paris)" in section(page, "Event")
    plain = site.client(site.admin).get(f"{PREFIX}/").text
    assert f'href="{PREFIX}/events/{event_id}"' in plain
    assert f'href="{PREFIX}/"' in detail(site, event_id)


# -- who may see it --------------------------------------------------------------------------


def test_only_admins_of_the_events_tenant_see_it(make_app: MakeApp) -> None:
    site = tenant_site(make_app)
    acme = add(site, tenant_id="acme", activity="acme event")
    globex = add(site, tenant_id="globex", activity="globex event")
    tenantless = add(site, tenant_id=None, activity="tenantless event")
    old = add(site, tenant_id="acme", activity="old event", occurred_at=utcnow() - dt.timedelta(days=91))
    assert "acme event" in detail(site, acme)
    assert "globex event" in detail(site, globex, user=site.other_admin)
    for event_id in (globex, tenantless, old, 10**9, 2**63):
        missing = detail(site, event_id, status=404)
        assert not any(f"{name} event" in missing for name in ("globex", "tenantless", "old"))
    detail(site, acme, status=404, user=site.other_admin)
    for path in ("abc", "-1", f"{acme}.0"):
        assert site.client(site.admin).get(f"{PREFIX}/events/{path}").status_code == 404
    member = site.client(site.member).get(f"{PREFIX}/events/{acme}")
    assert member.status_code == 403
    assert "acme event" not in member.text
    anonymous = site.client().get(f"{PREFIX}/events/{acme}")
    assert anonymous.status_code == 401
    assert "acme event" not in anonymous.text
    site.app.login_manager.login_view = "login_view"  # type: ignore[attr-defined]
    redirected = site.client().get(f"{PREFIX}/events/{acme}")
    assert redirected.status_code == 302
    assert redirected.headers["Location"].startswith("/login?next=")


# -- seal status -----------------------------------------------------------------------------


def integrity(site: Site, event_id: int) -> str:
    return section(detail(site, event_id), "Integrity")


def test_seal_status_before_and_after_a_seal_and_after_a_forgery(make_app: MakeApp) -> None:
    site = tenant_site(make_app, AUDIT_SEAL_KEY=KEY, AUDIT_TIMEZONE="Asia/Tokyo")
    event_id = add(site, tenant_id="acme", activity="Renamed team A to B")
    assert integrity(site, event_id) == "Not sealed yet: the next seal run covers it."
    seal(site.app)
    link = links(site.app)[-1]
    sealed_on = link["sealed_at"].astimezone(zoneinfo.ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M")
    assert integrity(site, event_id) == (
        f"Sealed in seal {link['id']} on {sealed_on} (Asia/Tokyo), intact:"
        " the event is exactly as it was when it was sealed."
    )
    with forged(site.app) as conn:
        conn.execute(sa.update(EVENTS).where(EVENTS.c.id == event_id).values(activity="Renamed team A to C"))
    assert integrity(site, event_id) == (
        f"Modified since seal {link['id']} (sealed on {sealed_on}, Asia/Tokyo): what is stored no longer"
        " matches what the seal recorded. Run flask audit verify to check the whole trail and its seals."
    )


def test_unreadable_details_are_a_modification_not_an_error(make_app: MakeApp) -> None:
    site = tenant_site(make_app, AUDIT_SEAL_KEY=KEY)
    event_id = add(site, tenant_id="acme", details={"n": 1})
    seal(site.app)
    with forged(site.app) as conn:
        name = conn.dialect.name
        if name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_event ALTER COLUMN details TYPE text USING details::text")
        elif name in ("mysql", "mariadb"):
            conn.exec_driver_sql("ALTER TABLE audit_event MODIFY details LONGTEXT NULL")
        conn.execute(sa.text("UPDATE audit_event SET details = '{\"n\": 1' WHERE id = :id"), {"id": event_id})
    page = detail(site, event_id)
    assert section(page, "Details").startswith("The stored details cannot be read: not valid JSON: ")
    assert section(page, "Integrity").startswith(
        f"Modified since seal {links(site.app)[-1]['id']} (sealed on "
    )
    assert "its details cannot be read (not valid JSON: " in section(page, "Integrity")


# -- in Chromium -----------------------------------------------------------------------------


def rich_event(site: Site) -> int:
    """An event with every field, a long user agent, a diff, nested details; late and failed."""
    return add(
        site,
        "role.updated",
        tenant_id="acme",
        team="Growth",
        outcome="failure",
        late=True,
        activity="Changed roles of bob.with.a.very.long.address@subsidiary.acme-corporation.test",
        actor_email="alice.with.a.long.address@acme-corporation.test",
        ip="2001:db8:85a3:0000:0000:8a2e:0370:7334",
        user_agent=UA + " " + "X" * 200,
        request_id="f" * 64,
        target_type="user",
        target_id="8f14e45fceea167a5a36dedd4bea2543",
        details={
            "before": ["member", "billing"],
            "after": ["admin", "member"],
            "changes": {"email": ["old.address@acme-corporation.test", "new.address@acme-corporation.test"]},
            "settings": {"certificate": "A" * 120, "nested": {"deeper": ["one", "two"]}},
        },
    )


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize(("width", "height"), [(390, 844), (1366, 900)])
def test_the_page_fits_the_screen_and_axe_finds_nothing_serious(
    make_app: MakeApp, browser: Browser, axe_script: str, width: int, height: int
) -> None:
    site = tenant_site(make_app, AUDIT_SEAL_KEY=KEY)
    event_id = rich_event(site)
    seal(site.app)
    with LiveServer(site.app) as server:
        context = browser.new_context(viewport={"width": width, "height": height})
        try:
            context.add_cookies([signed_in_cookie(site.app, site.admin, server.url)])  # type: ignore[list-item]
            page = context.new_page()
            page.goto(f"{server.url}{PREFIX}/events/{event_id}")
            assert page.get_by_role("heading", level=1).inner_text().startswith("Changed roles of bob")
            assert_fits_and_passes_axe(page, axe_script)
        finally:
            context.close()


@pytest.mark.backends("sqlite")
def test_without_javascript_a_row_opens_its_event_and_leads_back(make_app: MakeApp, browser: Browser) -> None:
    site = tenant_site(make_app)
    event_id = add(site, "role.updated", tenant_id="acme", activity="Made bob an admin")
    with LiveServer(site.app) as server:
        context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
        try:
            context.add_cookies([signed_in_cookie(site.app, site.admin, server.url)])  # type: ignore[list-item]
            page = context.new_page()
            page.goto(f"{server.url}{PREFIX}/?entity=Role")
            link = page.get_by_role("link", name="Made bob an admin")
            link.focus()
            page.keyboard.press("Enter")
            page.wait_for_url(f"{server.url}{PREFIX}/events/{event_id}?entity=Role")
            assert page.get_by_role("heading", level=1).inner_text() == "Made bob an admin"
            page.get_by_role("link", name="Back to audit logs").click()
            page.wait_for_url(f"{server.url}{PREFIX}/?entity=Role")
        finally:
            context.close()
