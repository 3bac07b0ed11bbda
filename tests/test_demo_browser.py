"""The demo end to end in headless Chromium: what a visitor does, and the audit page after it.

The demo is served by werkzeug in a thread on a free port of 127.0.0.1, over a SQLite
file in WAL mode; Debian's ``chromium`` is driven by Playwright. The tour runs on the
seeded workspace and screenshots the audit page (``FLASK_AUDIT_SCREENSHOT`` names the file).
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import csv
import io
import os
import pathlib
import re
import time
import typing as t

import pyotp
import pytest
from playwright.sync_api import Browser
from playwright.sync_api import expect
from playwright.sync_api import Page

from demo_app import seed
from demo_app.extensions import db
from flask_audit.sso import read_idp_metadata

from .demo_fixtures import build_demo
from .demo_fixtures import Demo
from .demo_fixtures import drop
from .demo_fixtures import LiveServer
from .demo_fixtures import PASSWORD
from .demo_fixtures import running_demo
from .demo_fixtures import totp_code

pytestmark = pytest.mark.backends("sqlite")

#: Where the tour saves its screenshot; ``docs/_static/audit-page.png`` refreshes the README's.
SCREENSHOT_ENV = "FLASK_AUDIT_SCREENSHOT"
SAMPLE = pathlib.Path(seed.__file__).with_name("sample_idp_metadata.xml")


class Site(t.NamedTuple):
    demo: Demo
    url: str
    page: Page


@contextlib.contextmanager
def serve(demo: Demo, browser: Browser, width: int = 1440) -> c.Iterator[Site]:
    with LiveServer(demo.app) as server:
        context = browser.new_context(viewport={"width": width, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield Site(demo, server.url, page)
        finally:
            context.close()


@pytest.fixture
def site(db_url: str, browser: Browser) -> c.Iterator[Site]:
    """The demo with Ada, Ben and Cleo, served, and a fresh browser page."""
    with running_demo(db_url) as demo, serve(demo, browser) as served:
        yield served


@pytest.fixture
def seeded(db_url: str, browser: Browser) -> c.Iterator[Site]:
    """The seeded 120-day workspace, served, and a fresh browser page."""
    app = build_demo(db_url)
    try:
        with app.app_context():
            seed.seed()
            db.session.remove()
        with serve(Demo(app, {}, ""), browser, width=1600) as served:
            yield served
    finally:
        drop(app)


def sign_in(site: Site, email: str, password: str) -> None:
    page = site.page
    page.goto(f"{site.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def sign_out(site: Site) -> None:
    site.page.get_by_role("button", name="Sign out").click()
    expect(site.page.get_by_text("You have signed out.")).to_be_visible()


def open_audit_page(site: Site) -> Page:
    page = site.page
    page.get_by_role("link", name="Settings › Audit logs").click()
    expect(page.get_by_role("heading", name="Audit logs", exact=True)).to_be_visible()
    return page


def activities(page: Page) -> list[str]:
    return page.locator("table .fa-activity__text").all_inner_texts()


def test_sign_in_with_two_factor(site: Site) -> None:
    page = site.page
    sign_in(site, "cleo@example.com", PASSWORD)
    expect(page.get_by_role("heading", name="Enter your authentication code")).to_be_visible()
    page.get_by_label("Authentication code").fill("000000")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_have_text(re.compile("That code is not correct."))
    page.get_by_label("Authentication code").fill(totp_code(site.demo.totp_secret))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Good to see you, Cleo")).to_be_visible()
    types = [event.event_type for event in site.demo.events()]
    assert types == ["two_factor.failed", "two_factor.verified", "user.login"]


def test_enrol_two_factor_then_sign_in_with_it(site: Site) -> None:
    page = site.page
    sign_in(site, "ben@example.com", PASSWORD)
    page.get_by_role("link", name="Security").click()
    page.get_by_role("button", name="Set up two-factor authentication").click()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on two-factor").click()
    expect(page.get_by_text("Two-factor authentication is on.")).to_be_visible()
    sign_out(site)

    sign_in(site, "ben@example.com", PASSWORD)
    ben = site.demo.user("ben@example.com")
    assert ben is not None
    page.get_by_label("Authentication code").fill(totp_code(secret, after_step=ben.totp_last_step))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Good to see you, Ben")).to_be_visible()
    types = [event.event_type for event in site.demo.events()]
    assert types == ["user.login", "two_factor.enabled", "user.logout", "two_factor.verified", "user.login"]


def test_invite_from_members_and_accept_from_the_mailbox(site: Site) -> None:
    page = site.page
    sign_in(site, "ada@example.com", PASSWORD)
    page.get_by_role("link", name="Members").click()
    page.get_by_label("Invite by email").fill("dana@example.com")
    page.get_by_label("Team", exact=True).select_option(label="Design")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("Invitation sent to dana@example.com.")).to_be_visible()

    page.get_by_role("link", name="Mailbox").click()
    page.get_by_role("link", name=re.compile("Ada Admin invited you to Acme Workspace")).click()
    page.get_by_role("link", name=re.compile("invitations")).click()
    expect(
        page.get_by_text("You are signed in as ada@example.com. Accepting signs you out first.")
    ).to_be_visible()
    page.get_by_label("Your name").fill("Dana New")
    page.get_by_label("Choose a password").fill("a good password")
    page.get_by_role("button", name="Accept invitation").click()
    expect(page.get_by_text("Welcome to the workspace, Dana New.")).to_be_visible()
    tail = [event.event_type for event in site.demo.events()][-5:]
    assert tail == ["invite.sent", "user.logout", "user.created", "invite.accepted", "user.login"]


def test_admin_tour_shows_on_the_audit_page(seeded: Site, tmp_path: pathlib.Path) -> None:
    """Role, invitation, SSO and team changes in the browser, then the audit page lists them."""
    site, page = seeded, seeded.page
    sign_in(site, seed.ADMIN_EMAIL, seed.ADMIN_PASSWORD)
    expect(page.get_by_role("heading", name="Good to see you, Maya")).to_be_visible()

    page.get_by_role("link", name="Members").click()
    page.get_by_label("Role of Lucas Martin").select_option("admin")
    page.locator("form", has=page.get_by_label("Role of Lucas Martin")).get_by_role(
        "button", name="Save"
    ).click()
    expect(page.get_by_text("Lucas Martin is now an admin.")).to_be_visible()
    page.get_by_label("Invite by email").fill("ravi.k@example.com")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text("Invitation sent to ravi.k@example.com.")).to_be_visible()

    page.get_by_role("link", name="Single sign-on").click()
    page.get_by_role("link", name="Fill in the sample metadata").click()
    page.get_by_label(re.compile("Enforce SSO")).check()
    page.get_by_role("button", name="Save SSO settings").click()
    entity_id = read_idp_metadata(SAMPLE.read_bytes()).entity_id
    expect(page.get_by_test_id("sso-entity-id")).to_have_text(entity_id)

    page.get_by_role("link", name="Teams").click()
    page.locator("section.team", has_text="Support").get_by_text("Rename or delete").click()
    page.get_by_label("New name for Support").fill("Customer Success")
    page.locator("section.team", has_text="Support").get_by_role("button", name="Rename").click()
    expect(page.get_by_text("Renamed the team Support to Customer Success.")).to_be_visible()

    audit = open_audit_page(site)
    shown = activities(audit)
    for sentence in (
        "Renamed team Support to Customer Success",
        f"Configured SSO with {entity_id} and enforced it for all members",
        "Invited ravi.k@example.com as Member",
        "Changed role of lucas@example.com from Member to Admin",
        "Signed in",
    ):
        assert sentence in shown
    expect(audit.locator(".fa-chart__bar").first).to_be_attached()
    audit.get_by_label("Event type").select_option("user.login_failed")
    # Each form and link loads a page: its rows are read once it has loaded, not on its way.
    with audit.expect_navigation():
        audit.get_by_role("button", name="Apply filters").click()
    assert set(activities(audit)) and all(text.startswith("Failed") for text in activities(audit))
    with audit.expect_navigation():
        audit.get_by_role("link", name="Clear", exact=True).click()
    first_page = audit.locator("table time").all_inner_texts()
    with audit.expect_navigation():
        audit.get_by_role("link", name="Older →").click()
    expect(audit).to_have_url(re.compile(r"cursor="))
    older_page = audit.locator("table time").all_inner_texts()
    assert first_page and older_page and older_page[0] <= first_page[-1]
    with audit.expect_navigation():
        audit.get_by_role("link", name="← Newer").click()
    expect(audit.locator("table time")).to_have_text(first_page)
    audit.get_by_role("link", name="Clear", exact=True).click()
    screenshot = pathlib.Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "audit-page.png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    audit.screenshot(path=str(screenshot), full_page=False)
    assert screenshot.stat().st_size > 20_000


def _wait_for_mail(page: Page, url: str, subject: re.Pattern[str], timeout: float = 20.0) -> None:
    """Open the mailbox until the message is there: the export is sent after the response."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(f"{url}/dev/mailbox/")
        link = page.locator("a.mail-list__item", has_text=subject)
        if link.count() or time.monotonic() > deadline:
            link.first.click()
            return
        time.sleep(0.5)


def test_export_arrives_in_the_mailbox_with_the_csv(seeded: Site) -> None:
    site, page = seeded, seeded.page
    sign_in(site, seed.ADMIN_EMAIL, seed.ADMIN_PASSWORD)
    audit = open_audit_page(site)
    audit.get_by_label("Entity").select_option("Team")
    audit.get_by_role("button", name="Apply filters").click()
    audit.get_by_role("button", name="Export audit logs").click()
    audit.get_by_role("button", name=re.compile(r"^Send [\d,]+ events? by email$")).click()
    expect(audit.get_by_role("status").filter(has_text=seed.ADMIN_EMAIL)).to_be_visible()

    _wait_for_mail(page, site.url, re.compile("export", re.I))
    expect(page.get_by_text(seed.ADMIN_EMAIL).first).to_be_visible()
    with page.expect_download() as download_info:
        page.locator("a.attachment").first.click()
    path = download_info.value.path()
    rows = list(csv.reader(io.StringIO(pathlib.Path(path).read_text("utf-8-sig"))))
    assert rows[0][:7] == ["Time", "Team", "Entity", "Activity", "Action", "Actor", "IP"]
    assert len(rows) > 5
    assert {row[2] for row in rows[1:]} == {"Team"}
    exported = site.demo.events("audit.exported")[-1]
    assert (exported.actor_email, exported.details["rows"]) == (seed.ADMIN_EMAIL, len(rows) - 1)
