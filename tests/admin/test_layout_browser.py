"""The audit page's layout in Chromium: a phone and a laptop screen, keyboard and touch.

On a phone the rows become cards and nothing scrolls sideways; on a laptop every column
fits and ten events show before any scrolling; an email wraps only at its ``@`` and dots;
the UTC time of a row is reached by Tab and by a tap; a day of the chart is a link. The
flows run with JavaScript off (the page has none); geometry is read with scripts on.
SQLite only: the browser sees the same HTML on every backend.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import re
import typing as t
import urllib.parse

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Page

from ..browser_fixtures import signed_in_cookie
from ..browser_fixtures import SIZES
from ..conftest import MakeApp
from ..demo_fixtures import LiveServer
from ..views_fixtures import build_site
from ..views_fixtures import PREFIX
from ..views_fixtures import Site
from ..views_fixtures import TENANT_LOADER

pytestmark = pytest.mark.backends("sqlite")

PHONE, DESKTOP = SIZES
ACTORS = (
    "priya.raman@acme-corporation.test",
    "someone.with.a.rather.long.address@subsidiary.acme-corporation.test",
    "ann@acme.test",
)
#: Realistic rows: sentences of several lengths, IPv4 and IPv6, targets, every action.
ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("role.updated", "Changed role of lucas@example.com from Member to Admin", "203.0.113.7", "Growth"),
    ("user.login", "Signed in", "2001:db8:85a3::8a2e:370:7334", "Équipe Zoë"),
    (
        "sso.updated",
        "Updated the SSO certificate of https://idp.example.com/metadata",
        "198.51.100.23",
        "Platform",
    ),
    ("team.member_added", "Added dana@example.com to Design", "10.0.0.12", "Design"),
    ("user.login_failed", "Failed sign-in: wrong password", "192.0.2.200", "Growth"),
    ("invite.sent", "Invited ravi.k@example.com as Member", "203.0.113.8", "Support"),
    ("two_factor.disabled", "Turned off two-factor authentication", "198.51.100.4", "Growth"),
    ("audit.exported", "Exported 1,204 audit events as CSV", "203.0.113.9", "Platform"),
)


@pytest.fixture
def site(make_app: MakeApp) -> Site:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    now = dt.datetime.now(dt.timezone.utc)
    rows = []
    for n in range(40):
        event_type, activity, ip, team = ROWS[n % len(ROWS)]
        rows.append(
            site.event(
                event_type,
                tenant_id="acme",
                occurred_at=now - dt.timedelta(hours=5 * n + 1),
                activity=activity,
                actor_email=ACTORS[n % len(ACTORS)],
                ip=ip,
                team=team,
                target_type="user",
                target_id=str(1000 + n),
                outcome="failure" if event_type.endswith("failed") else "success",
            )
        )
    site.insert(*rows)
    return site


@pytest.fixture
def served(site: Site) -> c.Iterator[str]:
    with LiveServer(site.app) as server:
        yield server.url


def open_page(
    browser: Browser, site: Site, url: str, path: str, size: tuple[int, int], **options: t.Any
) -> Page:
    """``path`` as the admin, in a new context of ``size`` (closed with the page's context)."""
    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, **options)
    context.add_cookies([signed_in_cookie(site.app, site.admin, url)])  # type: ignore[list-item]
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(url + path)
    return page


#: How far the table scrolls sideways inside its card.
TABLE_OVERFLOW = "(w => w.scrollWidth - w.clientWidth)(document.querySelector('.fa-table-wrap'))"

#: Where each line of each actor cell ends: the text before every break, and after it.
EMAIL_BREAKS = """() => [...document.querySelectorAll('td.fa-actor')].map(cell => {
  const text = cell.textContent, range = document.createRange();
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  const tops = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.length; i++) {
      range.setStart(node, i); range.setEnd(node, i + 1);
      const rect = range.getClientRects()[0];
      if (rect) tops.push([node.textContent[i], Math.round(rect.top)]);
    }
  }
  const breaks = [];
  for (let i = 1; i < tops.length; i++) {
    if (tops[i][1] > tops[i - 1][1] + 2) breaks.push([tops[i - 1][0], tops[i][0]]);
  }
  return {text, breaks};
})"""


def test_on_a_phone_rows_are_cards_and_nothing_scrolls_sideways(
    site: Site, served: str, browser: Browser
) -> None:
    page = open_page(browser, site, served, f"{PREFIX}/?tz=UTC", PHONE)
    try:
        assert page.locator("tbody tr").count() == 40
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        wrap = page.evaluate(TABLE_OVERFLOW)
        assert wrap <= 0
        first = page.locator("tbody tr").first
        # Each card shows the time, activity, target, action, actor, IP and team, on screen.
        for part in (
            "time",
            ".fa-activity__text",
            ".fa-activity__target",
            ".fa-badge",
            "td.fa-actor",
            "td.fa-ip",
            "td.fa-team",
        ):
            box = first.locator(part).first.bounding_box()
            assert box is not None and box["width"] > 0, part
            assert 0 <= box["x"] and box["x"] + box["width"] <= PHONE[0], part
        assert "Target: user 1000" in first.inner_text()
        labels = first.locator("td").evaluate_all(
            "cells => cells.map(c => getComputedStyle(c, '::before').content)"
        )
        assert [label for label in labels if label != "none"] == ['"Team"', '"Entity"', '"Actor"', '"IP"']
        apply = page.get_by_role("button", name="Apply filters").bounding_box()
        assert apply is not None and apply["x"] + apply["width"] <= PHONE[0]
        assert_emails_break_at_dots(page, wrapped=True)
    finally:
        page.context.close()


def test_on_a_laptop_every_column_fits_and_ten_events_show(site: Site, served: str, browser: Browser) -> None:
    page = open_page(browser, site, served, f"{PREFIX}/?tz=UTC", DESKTOP)
    try:
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        wrap = page.evaluate(TABLE_OVERFLOW)
        assert wrap <= 0, f"the table scrolls sideways by {wrap}px"
        card = page.locator(".fa-table-card").bounding_box()
        assert card is not None
        for header in page.locator("thead th").all():
            box = header.bounding_box()
            assert box is not None and box["x"] + box["width"] <= card["x"] + card["width"] + 0.5
        visible = page.evaluate(
            "[...document.querySelectorAll('tbody tr')].filter(r => { const b = r.getBoundingClientRect();"
            " return b.top >= 0 && b.bottom <= window.innerHeight }).length"
        )
        assert visible >= 10, f"only {visible} events show before scrolling"
        assert_emails_break_at_dots(page, wrapped=False)
    finally:
        page.context.close()


def assert_emails_break_at_dots(page: Page, *, wrapped: bool) -> None:
    """Every actor cell wraps, if at all, after its ``@`` or before a dot: never inside a name.

    ``wrapped``: the long address must wrap at this size (a phone), so the check has breaks to see.
    """
    cells = page.evaluate(EMAIL_BREAKS)
    assert len(cells) == 40
    assert any(cell["breaks"] for cell in cells) or not wrapped
    for cell in cells:
        for before, after in cell["breaks"]:
            assert before == "@" or after == ".", f"{cell['text']!r} breaks between {before!r} and {after!r}"


def _utc_tooltip(page: Page) -> dict[str, t.Any]:
    return t.cast(
        dict[str, t.Any],
        page.evaluate(
            """(() => { const time = document.activeElement;
            if (!time || time.tagName !== 'TIME') return {focused: false};
            const tip = document.getElementById(time.getAttribute('aria-describedby'));
            const box = tip.getBoundingClientRect();
            return {focused: true, text: tip.textContent, width: box.width, height: box.height,
                    inside: box.left >= 0 && box.right <= window.innerWidth, datetime: time.dateTime} })()"""
        ),
    )


@pytest.mark.parametrize("size", SIZES)
def test_the_utc_time_is_reached_by_the_keyboard(
    site: Site, served: str, browser: Browser, size: tuple[int, int]
) -> None:
    page = open_page(browser, site, served, f"{PREFIX}/?tz=Asia/Kolkata", size)
    try:
        for _ in range(60):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.tagName") == "TIME":
                break
        tip = _utc_tooltip(page)
        assert tip["focused"], "Tab never reached a row's time"
        assert tip["width"] > 40 and tip["height"] > 10 and tip["inside"]
        assert tip["text"].endswith(" UTC") and tip["text"][:16].replace(" ", "T") == tip["datetime"][:16]
        assert (
            page.locator("tbody time").first.inner_text() != tip["text"][:19]
        )  # the visible time is Kolkata's
    finally:
        page.context.close()


def test_the_utc_time_is_reached_by_a_tap(site: Site, served: str, browser: Browser) -> None:
    page = open_page(
        browser, site, served, f"{PREFIX}/?tz=Asia/Kolkata", PHONE, has_touch=True, is_mobile=True
    )
    try:
        page.locator("tbody time").nth(2).tap()
        tip = _utc_tooltip(page)
        assert tip["focused"] and tip["width"] > 40 and tip["inside"] and tip["text"].endswith(" UTC")
    finally:
        page.context.close()


@pytest.mark.parametrize("size", SIZES)
def test_without_javascript_a_day_of_the_chart_filters_that_day(
    site: Site, served: str, browser: Browser, size: tuple[int, int]
) -> None:
    page = open_page(browser, site, served, f"{PREFIX}/?team=Growth&tz=UTC", size, java_script_enabled=False)
    try:
        days = page.locator("a.fa-chart__link")
        assert days.count() >= 5
        label = days.nth(1).get_attribute("aria-label") or ""
        days.nth(1).click()
        page.wait_for_load_state()
        query = urllib.parse.urlsplit(page.url).query
        day = dict(urllib.parse.parse_qsl(query))["start"]
        assert query == f"team=Growth&tz=UTC&start={day}&end={day}"  # other filters kept, nothing blank
        shown = page.locator("tbody time").evaluate_all("times => times.map(t => t.dateTime.slice(0, 10))")
        assert shown and set(shown) == {day}
        count = int(label.split(": ")[1].split(" ")[0])
        assert len(shown) == count and set(page.locator("td.fa-team").all_inner_texts()) == {"Growth"}
        assert page.locator("details.fa-more").get_attribute("open") is not None  # a date filter is applied
    finally:
        page.context.close()


def test_without_javascript_more_filters_opens_and_applies(site: Site, served: str, browser: Browser) -> None:
    page = open_page(browser, site, served, f"{PREFIX}/", DESKTOP, java_script_enabled=False)
    try:
        more = page.locator("details.fa-more")
        assert more.get_attribute("open") is None
        assert not page.get_by_label("Actor", exact=True).is_visible()
        assert (
            page.get_by_label("Event type").is_visible() and page.locator("select[name=entity]").is_visible()
        )
        page.get_by_text("More filters").click()
        page.get_by_label("Actor", exact=True).fill("ann@acme.test")
        page.get_by_role("button", name="Apply filters").click()
        page.wait_for_url(re.compile(r"[?&]actor=ann(@|%40)acme.test(&|$)"))
        assert more.get_attribute("open") is not None
        assert set(page.locator("td.fa-actor").all_inner_texts()) == {"ann@acme.test"}
    finally:
        page.context.close()
