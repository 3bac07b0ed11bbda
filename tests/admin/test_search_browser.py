"""The search box in Chromium, without JavaScript, on a phone and a desktop.

Typing a search and pressing Enter submits the filter form: the page redirects to a clean
link, filters the table, and explains a bad search with a caret. axe-core (see
:func:`~tests.conftest.axe_script`) checks the search box, its syntax help and the error.
SQLite only: the browser sees the same HTML on every backend.
"""

from __future__ import annotations

import urllib.parse

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Page

from ..browser_fixtures import serious_violations
from ..browser_fixtures import signed_in_cookie
from ..browser_fixtures import SIZES
from ..conftest import MakeApp
from ..demo_fixtures import LiveServer
from ..views_fixtures import build_site
from ..views_fixtures import PREFIX
from ..views_fixtures import Site
from ..views_fixtures import TENANT_LOADER


def _site(make_app: MakeApp) -> Site:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    site.insert(
        site.event("user.login", tenant_id="acme", actor_email="priya@acme.test", activity="Priya signed in"),
        site.event(
            "user.login_failed", tenant_id="acme", actor_email="priya@acme.test", activity="Priya failed"
        ),
        site.event("team.updated", tenant_id="acme", team="Équipe Zoë", activity="Renamed Équipe Zoë"),
    )
    return site


def _serious(page: Page, axe_script: str) -> list[str]:
    """axe-core's serious and critical findings in the search box and the error, if any."""
    return serious_violations(page, axe_script, "{include: [['.fa-search'], ['.fa-alert']]}")


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_a_search_typed_and_sent_without_javascript(
    make_app: MakeApp, browser: Browser, axe_script: str, width: int, height: int
) -> None:
    site = _site(make_app)
    found = f"{PREFIX}/?q=actor:PRIYA+-outcome:failure&tz=UTC"
    refused = f"{PREFIX}/?" + urllib.parse.urlencode({"q": "team:x acter:priya", "tz": "UTC"}, safe=":")
    with LiveServer(site.app) as server:
        context = browser.new_context(java_script_enabled=False, viewport={"width": width, "height": height})
        try:
            context.add_cookies([signed_in_cookie(site.app, site.admin, server.url)])  # type: ignore[list-item]
            page = context.new_page()
            page.set_default_timeout(10_000)
            page.goto(f"{server.url}{PREFIX}/")
            # With its list of suggestions, a search box is a combobox to assistive technology.
            box = page.get_by_role("combobox", name="Search")
            box.fill("actor:PRIYA -outcome:failure")
            box.press("Enter")  # the form sends every field, blank ones too: a redirect drops them
            page.wait_for_url(server.url + found)
            assert page.locator(".fa-activity__text").all_inner_texts() == ["Priya signed in"]
            page.get_by_text("Search syntax").click()
            assert page.get_by_text("the same qualifier twice: either one").is_visible()

            box = page.get_by_role("combobox", name="Search")
            box.fill("team:x acter:priya")
            box.press("Enter")
            page.wait_for_url(server.url + refused)
            assert (
                "Unknown qualifier 'acter:' at column 8 (try actor:)."
                in page.get_by_role("alert").inner_text()
            )
            assert page.locator(".fa-search-caret").inner_text() == "team:x acter:priya\n       ^^^^^^"
            assert page.get_by_role("combobox", name="Search").get_attribute("aria-invalid") == "true"
        finally:
            context.close()

        # axe-core and the layout are measured with scripts on: the same pages, the help open.
        context = browser.new_context(viewport={"width": width, "height": height})
        try:
            context.add_cookies([signed_in_cookie(site.app, site.admin, server.url)])  # type: ignore[list-item]
            page = context.new_page()
            page.set_default_timeout(10_000)
            page.goto(server.url + found)
            page.get_by_text("Search syntax").click()
            assert _serious(page, axe_script) == []
            page.goto(server.url + refused)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"the error page scrolls sideways by {overflow}px at {width}px"
            assert _serious(page, axe_script) == []
        finally:
            context.close()
