from __future__ import annotations

import pytest
from flask import Flask

from ..apps import add_user
from ..conftest import audit_of
from ..conftest import MakeApp
from ..conftest import stored

pytestmark = pytest.mark.backends("sqlite")


def _record_via(app: Flask, headers: dict[str, str] | None = None, remote: str = "203.0.113.7") -> None:
    response = app.test_client().post(
        "/record/team.updated", headers=headers or {}, environ_base={"REMOTE_ADDR": remote}
    )
    assert response.status_code == 200


def _last_ip(app: Flask) -> str | None:
    return stored(app)[-1].ip


def test_ip_is_the_remote_address(app: Flask) -> None:
    _record_via(app)
    assert _last_ip(app) == "203.0.113.7"


def test_forged_forwarded_for_is_ignored_without_trusted_proxies(app: Flask) -> None:
    _record_via(app, {"X-Forwarded-For": "1.2.3.4"})
    assert _last_ip(app) == "203.0.113.7"


def test_ipv6_remote_address(app: Flask) -> None:
    _record_via(app, remote="2001:db8::1")
    assert _last_ip(app) == "2001:db8::1"


@pytest.mark.audit_config(AUDIT_TRUSTED_PROXIES=1)
def test_one_trusted_proxy_takes_the_last_entry(app: Flask) -> None:
    # The client forged "6.6.6.6"; the proxy appended the address it really saw.
    _record_via(app, {"X-Forwarded-For": "6.6.6.6, 198.51.100.20"}, remote="10.0.0.2")
    assert _last_ip(app) == "198.51.100.20"


@pytest.mark.audit_config(AUDIT_TRUSTED_PROXIES=2)
def test_two_trusted_proxies_take_the_second_from_the_right(app: Flask) -> None:
    _record_via(app, {"X-Forwarded-For": "6.6.6.6, 2001:db8::42, 10.0.0.9"}, remote="10.0.0.2")
    assert _last_ip(app) == "2001:db8::42"


@pytest.mark.audit_config(AUDIT_TRUSTED_PROXIES=2)
def test_too_few_forwarded_entries_fall_back_to_the_remote_address(app: Flask) -> None:
    _record_via(app, {"X-Forwarded-For": "198.51.100.20"}, remote="10.0.0.2")
    assert _last_ip(app) == "10.0.0.2"


@pytest.mark.audit_config(AUDIT_TRUSTED_PROXIES=1)
def test_garbage_in_forwarded_for_never_becomes_the_ip(app: Flask) -> None:
    _record_via(app, {"X-Forwarded-For": "1.2.3.4, <script>alert(1)</script>"}, remote="10.0.0.2")
    assert _last_ip(app) == "10.0.0.2"


def test_user_agent_and_request_id_come_from_the_request(app: Flask) -> None:
    _record_via(app, {"User-Agent": "Mozilla/5.0 test", "X-Request-ID": "req-123"})
    row = stored(app)[-1]
    assert (row.user_agent, row.request_id) == ("Mozilla/5.0 test", "req-123")


def test_events_of_one_request_share_a_generated_request_id(app: Flask) -> None:
    def handler() -> str:
        audit_of(app).record("team.created")
        audit_of(app).record("team.member_added")
        return "ok"

    app.add_url_rule("/two", "two", handler, methods=["POST"])
    app.test_client().post("/two", headers={"X-Request-ID": "bad id with spaces"})
    app.test_client().post("/two")
    first, second, third, fourth = stored(app)
    assert first.request_id == second.request_id
    assert third.request_id == fourth.request_id != first.request_id
    assert first.request_id is not None and len(first.request_id) == 32


def test_actor_is_the_signed_in_user(app: Flask) -> None:
    add_user(app, "alice@example.com")
    client = app.test_client()
    assert client.post("/login", data={"email": "alice@example.com", "password": "pw"}).status_code == 200
    client.post("/record/team.created")
    assert (stored(app)[-1].actor_id, stored(app)[-1].actor_email) == ("1", "alice@example.com")


def test_anonymous_request_has_no_actor_and_cli_has_the_system_actor(app: Flask) -> None:
    _record_via(app)
    with app.app_context():
        audit_of(app).record("audit.pruned")
    anonymous, system = stored(app)
    assert (anonymous.actor_id, anonymous.actor_email) == (None, None)
    assert (system.actor_id, system.actor_email) == ("system", "system")


def test_team_and_tenant_loaders_are_called_in_a_request(make_app: MakeApp) -> None:
    app = make_app(AUDIT_TEAM_LOADER=lambda: "Growth", AUDIT_TENANT_LOADER=lambda: 7)
    _record_via(app)
    with app.app_context():
        audit_of(app).record("audit.pruned", team="Ops", tenant_id="acme")
        audit_of(app).record("audit.pruned")
    in_request, explicit, outside = stored(app)
    assert (in_request.team, in_request.tenant_id) == ("Growth", "7")
    assert (explicit.team, explicit.tenant_id) == ("Ops", "acme")
    assert (outside.team, outside.tenant_id) == (None, None)


def test_actor_email_setting_is_used(make_app: MakeApp) -> None:
    app = make_app(AUDIT_ACTOR_EMAIL=lambda user: user.email.upper())
    add_user(app, "erin@example.com")
    client = app.test_client()
    client.post("/login", data={"email": "erin@example.com", "password": "pw"})
    client.post("/record/team.created")
    assert stored(app)[-1].actor_email == "ERIN@EXAMPLE.COM"
