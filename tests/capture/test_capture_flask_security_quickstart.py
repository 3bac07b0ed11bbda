"""Flask-Security-Too's quickstart app plus ``Audit(app, db=db)``, used as its docs say.

Accounts and roles are made with Flask-Security's own ``flask users`` and ``flask roles``
commands, people sign in through its HTML login form (CSRF on, as in the quickstart), and
the audit page is opened by the app's admin and refused to another user.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .. import flask_security_fixtures as fixtures
from ..conftest import stored
from ..flask_security_fixtures import stored_text

quickstart_app = fixtures.quickstart_app

pytestmark = pytest.mark.filterwarnings("ignore:Passing SelectField choices:DeprecationWarning")

PASSWORD = "Correct-Horse-Battery-3"
REFUSAL = "Only audit admins may view this page (AUDIT_IS_ADMIN / AUDIT_ADMIN_ROLE)."


def _cli(app: Flask, *args: str) -> None:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output


def _sign_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token is not None, page
    reply = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token[1]})
    assert reply.status_code == 302, reply.text
    assert client.get("/").text == f"Hello {email}"
    return client


def test_zero_code_quickstart(quickstart_app: Flask) -> None:
    app = quickstart_app
    _cli(app, "users", "create", "admin@example.com", "--password", PASSWORD, "--active")
    _cli(app, "users", "create", "bob@example.com", "--password", PASSWORD, "--active")
    _cli(app, "roles", "create", "admin")
    _cli(app, "roles", "add", "admin@example.com", "admin")
    admin = _sign_in(app, "admin@example.com")
    assert admin.get("/admin/audit/").status_code == 200
    bob = _sign_in(app, "bob@example.com")
    refused = bob.get("/admin/audit/")
    assert refused.status_code == 403 and REFUSAL in refused.text
    assert [(e.event_type, e.activity, e.actor_email, e.details) for e in stored(app)] == [
        ("user.created", "Created user admin@example.com", "system", {}),
        ("user.created", "Created user bob@example.com", "system", {}),
        (
            "role.updated",
            "Changed roles of admin@example.com from none to Admin",
            "system",
            {"before": [], "after": ["admin"]},
        ),
        ("user.login", "Signed in", "admin@example.com", {"method": "password"}),
        ("user.login", "Signed in", "bob@example.com", {"method": "password"}),
    ]
    assert PASSWORD not in stored_text(app)
