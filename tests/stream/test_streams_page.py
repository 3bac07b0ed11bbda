"""The stream health page: who may see it, what it shows, and axe-core in Chromium."""

from __future__ import annotations

import pathlib
import re
import typing as t

import pytest
from playwright.sync_api import Browser

import flask_audit.admin.streams  # noqa: F401 - the page's route, before an app mounts the blueprint
from flask_audit.stream import cursor
from flask_audit.stream import health

from ..apps import add_user
from ..browser_fixtures import serious_violations
from ..browser_fixtures import signed_in_cookie
from ..browser_fixtures import SIZES
from ..conftest import MakeApp
from ..demo_fixtures import LiveServer
from ..views_fixtures import build_site
from ..views_fixtures import PREFIX
from ..views_fixtures import Site
from ..views_fixtures import TENANT_LOADER
from .fixtures import add_events
from .fixtures import engine_of
from .fixtures import relay
from .fixtures import SECRET

pytestmark = pytest.mark.backends("sqlite")
PAGE = f"{PREFIX}/streams"


def _site(make_app: MakeApp, tmp_path: pathlib.Path, **config: t.Any) -> tuple[Site, int]:
    streams = {
        "file": {"sink": "jsonl", "path": str(tmp_path / "audit.jsonl")},
        # Nothing listens on port 9 of the loopback: every delivery fails.
        "siem": {"sink": "webhook", "url": "http://127.0.0.1:9/hooks", "secret": SECRET, "timeout": 2},
        "quiet": {"sink": "stdout"},
    }
    site = build_site(make_app, AUDIT_STREAMS=streams, **config)
    operator = add_user(site.app, "ops@example.test", is_admin=True, tenant=None)
    return site, operator


def _row(html: str, name: str) -> str:
    """The card of destination ``name``."""
    found = re.search(rf'<section class="[^"]*" data-stream="{name}".*?</section>', html, re.S)
    assert found, f"no card for {name}"
    return found.group(0)


def _cell(row: str, css: str) -> str:
    found = re.search(rf'class="{css}">(.*?)</dd>', row, re.S)
    assert found, css
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("member", 403), ("admin", 403), ("other_admin", 403), ("operator", 200)],
)
def test_only_an_admin_without_a_tenant_sees_the_destinations(
    make_app: MakeApp, tmp_path: pathlib.Path, who: str, status: int
) -> None:
    site, operator = _site(make_app, tmp_path, AUDIT_TENANT_LOADER=TENANT_LOADER)
    user = {"anonymous": None, "operator": operator}.get(who, getattr(site, who, None))
    page = site.client(user).get(PAGE)
    assert page.status_code == status
    assert ("siem" in page.text) == (status == 200)
    if who in ("admin", "other_admin"):
        assert "only an admin without a tenant may view them" in page.text


def test_the_audit_page_links_to_it_for_those_who_may_see_it(
    make_app: MakeApp, tmp_path: pathlib.Path
) -> None:
    link = f'href="{PAGE}"'
    site, operator = _site(make_app, tmp_path, AUDIT_TENANT_LOADER=TENANT_LOADER)
    assert link in site.client(operator).get(f"{PREFIX}/").text
    assert link not in site.client(site.admin).get(f"{PREFIX}/").text  # a tenant's admin


def test_without_streams_the_audit_page_has_no_link(make_app: MakeApp) -> None:
    site = build_site(make_app)
    page = site.client(site.admin).get(f"{PREFIX}/")
    assert page.status_code == 200 and f'href="{PAGE}"' not in page.text


def test_without_tenants_every_admin_sees_them_and_members_do_not(
    make_app: MakeApp, tmp_path: pathlib.Path
) -> None:
    site, _ = _site(make_app, tmp_path)
    assert site.client(site.admin).get(PAGE).status_code == 200
    assert site.client(site.member).get(PAGE).status_code == 403


def _exercise(site: Site) -> None:
    """``file`` delivers, ``siem`` fails, ``quiet`` is paused, ``gone`` left only in the table."""
    add_events(site.app, 7)
    worker = relay(site.app, "file")
    assert worker.step().outcome == "delivered"
    worker.close()
    failing = relay(site.app, "siem")
    assert failing.step().outcome == "failed"
    failing.close()
    with site.app.app_context():
        health.pause("quiet")
    cursor.ensure(engine_of(site.app), "gone")
    add_events(site.app, 2)


def test_each_destination_shows_its_state_cursor_lag_and_error(
    make_app: MakeApp, tmp_path: pathlib.Path
) -> None:
    site, _ = _site(make_app, tmp_path)
    _exercise(site)
    with site.app.app_context():
        status = {each.name: each for each in health.stream_status()}
    html = site.client(site.admin).get(PAGE).text
    file, siem = _row(html, "file"), _row(html, "siem")
    assert "Stopped" in file and _cell(file, "fa-streams__cursor") == str(status["file"].cursor)
    assert _cell(file, "fa-streams__lag-events") == "3"  # the two added after, and the pause event
    assert _cell(file, "fa-streams__delivered") == str(status["file"].delivered)
    assert "<time datetime=" in _row(html, "file") and _cell(file, "fa-streams__error") == "None"
    assert "Failing" in siem and "Never" in siem and _cell(siem, "fa-streams__cursor") == "0"
    assert "Connection refused" in _cell(siem, "fa-streams__error")
    assert "Paused" in _row(html, "quiet")
    assert "No longer configured" in _row(html, "gone")


def test_a_bad_setting_is_a_message_not_a_500(make_app: MakeApp) -> None:
    site = build_site(make_app, AUDIT_STREAMS={"bad name": {"sink": "stdout"}})
    page = site.client(site.admin).get(PAGE)
    assert page.status_code == 200
    assert "AUDIT_STREAMS is not valid: AUDIT_STREAMS: &#39;bad name&#39; is not a valid" in page.text


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_page_passes_axe_core(
    make_app: MakeApp, tmp_path: pathlib.Path, browser: Browser, axe_script: str, width: int, height: int
) -> None:
    site, _ = _site(make_app, tmp_path)
    _exercise(site)
    with LiveServer(site.app) as server:
        context = browser.new_context(viewport={"width": width, "height": height})
        try:
            context.add_cookies([signed_in_cookie(site.app, site.admin, server.url)])  # type: ignore[list-item]
            page = context.new_page()
            page.set_default_timeout(10_000)
            page.goto(server.url + PAGE)
            assert page.get_by_role("heading", name="Streams").is_visible()
            assert serious_violations(page, axe_script) == []
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {width}px"
            assert page.get_by_role("heading", name="siem").is_visible()
        finally:
            context.close()
