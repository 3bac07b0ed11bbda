"""Every response of the ``audit`` blueprint refuses framing and sniffing, errors included.

A framed, signed-in audit page could be clicked into an export by a decoy page; a JSON
or CSV answer sniffed as HTML could run script. So: ``X-Frame-Options: DENY`` and CSP
``frame-ancestors 'none'`` (merged into a policy the response already has), and
``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import pytest
from werkzeug.test import TestResponse

from flask_audit.admin.views import _no_framing

from ..conftest import MakeApp
from ..export_fixtures import build_site
from ..export_fixtures import PREFIX
from ..export_fixtures import Site
from ..export_fixtures import SmtpServer
from ..export_fixtures import TENANT_LOADER


@pytest.fixture
def site(make_app: MakeApp, smtp_server: SmtpServer) -> Site:
    return build_site(make_app, smtp_server, AUDIT_EXPORT_MODE="worker", AUDIT_TENANT_LOADER=TENANT_LOADER)


def hardened(response: TestResponse, status: int) -> None:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"


def test_the_page_and_its_error_pages(site: Site) -> None:
    admin = site.client(site.admin)
    hardened(admin.get(f"{PREFIX}/"), 200)
    hardened(admin.get(f"{PREFIX}/?entity=Team&start=2026-01-01"), 200)
    hardened(admin.get(f"{PREFIX}/?start=soon"), 400)
    hardened(site.client(site.member).get(f"{PREFIX}/"), 403)
    hardened(site.client().get(f"{PREFIX}/"), 401)
    hardened(admin.get(f"{PREFIX}/exports"), 200)
    hardened(admin.get(f"{PREFIX}/exports/999999/download"), 403)  # no valid token


def test_the_json_api_and_its_errors(site: Site) -> None:
    api = f"{PREFIX}/api/events"
    response = site.client(site.admin).get(api)
    hardened(response, 200)
    assert response.mimetype == "application/json"
    hardened(site.client(site.admin).get(api, query_string={"limit": "many"}), 400)
    hardened(site.client(site.member).get(api), 403)
    hardened(site.client().get(api), 401)


def test_the_export_post_and_its_refusals(site: Site) -> None:
    admin = site.client(site.admin)
    hardened(site.export(admin, entity="Team"), 303)
    hardened(site.export_json(admin, outcome="failure"), 202)
    hardened(admin.post(f"{PREFIX}/export", data={"entity": "Team"}), 400)
    hardened(site.export(site.client(site.member)), 403)
    hardened(site.export_json(admin, entity="Nope"), 400)


def test_the_stylesheet_is_not_sniffed(site: Site) -> None:
    response = site.client().get(f"{PREFIX}/static/flask_audit/audit.css")
    try:
        hardened(response, 200)
        assert response.mimetype == "text/css"
    finally:
        response.close()


def test_the_sign_in_redirect_is_not_framed_either(site: Site) -> None:
    site.app.login_manager.login_view = "test_csrf"  # type: ignore[attr-defined]
    hardened(site.client().get(f"{PREFIX}/"), 302)


@pytest.mark.parametrize(
    ("policy", "merged"),
    [
        (None, "frame-ancestors 'none'"),
        ("", "frame-ancestors 'none'"),
        ("default-src 'self'", "default-src 'self'; frame-ancestors 'none'"),
        (
            "default-src 'self'; img-src 'self' data:; frame-ancestors https://portal.example;",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
        ("Frame-Ancestors *; style-src 'self'", "style-src 'self'; frame-ancestors 'none'"),
    ],
)
def test_an_existing_policy_keeps_its_directives(policy: str | None, merged: str) -> None:
    assert _no_framing(policy) == merged


def test_a_policy_set_by_the_view_is_merged(site: Site) -> None:
    """A response that already carries a policy (an app's own view under the prefix) keeps it."""

    @site.app.get(f"{PREFIX}/with-policy", endpoint="audit.with_policy")
    def with_policy() -> tuple[str, dict[str, str]]:
        return "ok", {"Content-Security-Policy": "default-src 'self'; style-src 'self'"}

    response = site.client(site.admin).get(f"{PREFIX}/with-policy")
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'self'; style-src 'self'; frame-ancestors 'none'"
    )
    assert response.headers["X-Frame-Options"] == "DENY"
