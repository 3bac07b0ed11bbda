"""The export pages in real Chromium: they fit a phone and a laptop screen, axe-core finds
nothing serious, and without JavaScript an admin confirms an export, picks its format and
downloads the file from the exports page."""

from __future__ import annotations

import json
import pathlib
import typing as t

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import BrowserContext
from playwright.sync_api import expect

from flask_audit.export import jobs

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

WORKER = {"AUDIT_EXPORT_MODE": "worker", "AUDIT_TENANT_LOADER": TENANT_LOADER}
TEAM = "Équipe Zoë 🚀 / فريق"


@pytest.fixture
def site(make_app: MakeApp, smtp_server: SmtpServer) -> Site:
    site = build_site(make_app, smtp_server, **WORKER)
    long_actor = "someone.with.a.rather.long.address@subsidiary.acme-corporation.test"
    site.insert(
        *(site.event(team=TEAM, actor_email=long_actor, tenant_id="acme") for _ in range(3)),
        site.event("user.login", tenant_id="acme"),
    )
    return site


def run(site: Site) -> jobs.RunSummary:
    with site.app.app_context():
        return jobs.run_due()


def with_history(site: Site) -> None:
    """A sent export with a long filter, one that failed with a long error, one queued."""
    client = site.client(site.admin)
    long_actor = "someone.with.a.rather.long.address@subsidiary.acme-corporation.test"
    site.export(client, team=TEAM, actor=long_actor, start="2026-01-01", tz="Europe/Berlin")
    assert run(site).sent == 1
    site.export(client, format="jsonl")
    site.export(client, entity="Login")
    _, failed, _ = site.jobs()
    error = "SMTPRecipientsRefused: {'admin@acme.test': (550, b'5.1.1 mailbox unavailable: " + "x" * 200
    site.update_job(failed.id, status="failed", attempts=5, last_error=error)


def signed_in(
    browser: Browser, site: Site, url: str, user: int | None = None, **options: t.Any
) -> BrowserContext:
    context = browser.new_context(**options)
    cookie = signed_in_cookie(site.app, user or site.admin, url)
    context.add_cookies([cookie])  # type: ignore[list-item]
    return context


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_every_export_page_fits_and_axe_finds_nothing_serious(
    site: Site, browser: Browser, axe_script: str, width: int, height: int
) -> None:
    with_history(site)
    pages = [
        ("history", f"{PREFIX}/exports", site.admin),
        ("confirmation", f"{PREFIX}/exports/new?team={TEAM}&start=2026-01-01&tz=Asia/Tokyo", site.admin),
        ("empty result", f"{PREFIX}/exports/new?entity=SSO", site.admin),
        ("bad filter", f"{PREFIX}/exports/new?start=soon", site.admin),
        ("no exports", f"{PREFIX}/exports", site.second_admin),
    ]
    with LiveServer(site.app) as server:
        for name, path, user in pages:
            viewport = {"width": width, "height": height}
            context = signed_in(browser, site, server.url, user, viewport=viewport)
            try:
                page = context.new_page()
                page.goto(server.url + path)
                expect(page.get_by_role("heading", level=1)).to_be_visible()
                assert_fits_and_passes_axe(page, axe_script, name)
            finally:
                context.close()


def test_without_javascript_an_admin_confirms_picks_a_format_and_downloads(
    site: Site, browser: Browser, smtp_server: SmtpServer, tmp_path: pathlib.Path
) -> None:
    with LiveServer(site.app) as server:
        context = signed_in(browser, site, server.url, java_script_enabled=False, accept_downloads=True)
        try:
            page = context.new_page()
            page.goto(f"{server.url}{PREFIX}/exports/new?entity=Team&tz=Europe/Paris")
            expect(page.get_by_role("heading", name="Export 3 events matching:")).to_be_visible()
            page.get_by_label("JSON lines").check()
            page.get_by_role("button", name="Send 3 events by email").click()
            page.wait_for_url(f"{server.url}{PREFIX}/exports")
            expect(page.get_by_role("status")).to_contain_text(
                "Your export of 3 events matching Entity: Team"
            )
            expect(page.get_by_text("Waiting to be sent")).to_be_visible()
            assert run(site).sent == 1
            page.get_by_role("link", name="Refresh status").click()
            expect(page.get_by_text("Sent by email as an attachment")).to_be_visible()
            with page.expect_download() as download_info:
                page.get_by_role("link", name="Download").click()
            download = download_info.value
            assert download.suggested_filename.endswith(".jsonl")
            path = tmp_path / download.suggested_filename
            download.save_as(path)
            records = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
            assert [record["team"] for record in records] == [TEAM] * 3
        finally:
            context.close()
    assert len(smtp_server.messages) == 1
