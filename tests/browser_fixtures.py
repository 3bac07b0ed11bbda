"""Shared by the browser tests: Debian's Chromium as Playwright launches it, and a signed-in cookie.

Chromium is never downloaded here; the flags keep it from reaching for the network, which
this machine refuses (see README: the suite's Debian packages).
"""

from __future__ import annotations

import typing as t

from flask import Flask

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SIZES = [(390, 844), (1366, 900)]


def signed_in_cookie(app: Flask, user_id: int, url: str) -> dict[str, t.Any]:
    """Flask-Login's session for ``user_id``, as the browser's cookie."""
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    value = serializer.dumps({"_user_id": str(user_id), "_fresh": True})
    return {"name": app.config["SESSION_COOKIE_NAME"], "value": value, "url": url}


def serious_violations(page: t.Any, axe_script: str, context: str = "document") -> list[str]:
    """axe-core's serious and critical findings on ``page`` (within ``context``, a JS value)."""
    page.evaluate(axe_script)
    result = page.evaluate(f"axe.run({context}, {{resultTypes: ['violations']}})")
    return [
        f"{v['id']} ({v['impact']}): {[node['target'] for node in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def assert_fits_and_passes_axe(page: t.Any, axe_script: str, name: str = "the page") -> None:
    """No sideways scroll at the page's width, and no serious or critical axe-core finding."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    width = page.viewport_size["width"] if page.viewport_size else "?"
    assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
    assert serious_violations(page, axe_script) == [], name
