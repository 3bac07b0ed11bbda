"""The Flask-AppBuilder adapter, driven through a real FAB app's forms, JWT API and CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_appbuilder.cli import fab  # type: ignore[import-untyped]
from flask_appbuilder.security.sqla.models import User  # type: ignore[import-untyped]
from flask_login import login_user

from .. import fab_fixtures as fixtures
from ..fab_fixtures import add_user
from ..fab_fixtures import db
from ..fab_fixtures import LiveServer
from ..fab_fixtures import MakeFabApp
from ..fab_fixtures import PASSWORD
from ..fab_fixtures import role_id
from ..fab_fixtures import sign_in
from ..fab_fixtures import signed_in
from ..fab_fixtures import summary

make_fab_app = fixtures.make_fab_app


def _ids(app: Flask) -> dict[str, int]:
    return {"admin": add_user(app, "admin"), "bob": add_user(app, "bob", role="Public")}


def test_import_does_not_load_fab() -> None:
    code = "import flask_audit, sys; assert 'flask_appbuilder' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("fab_first", [False, True], ids=["audit_first", "fab_first"])
def test_form_sign_in_failures_and_logout(make_fab_app: MakeFabApp, fab_first: bool) -> None:
    app = make_fab_app(fab_first=fab_first)
    _ids(app)
    with app.app_context():
        sm = app.appbuilder.sm  # type: ignore[attr-defined]
        carol = sm.add_user("carol", "Carol", "T", "carol@example.com", sm.find_role("Public"), PASSWORD)
        carol.active = False
        sm.update_user(carol)
        db.session.remove()
    client = app.test_client()
    assert sign_in(client, "admin", "wrong").location.startswith("/login/")
    assert sign_in(client, "nobody", "wrong").status_code == 302
    assert sign_in(client, "carol").status_code == 302
    response = sign_in(client, "admin@example.com")  # FAB accepts the email as the username
    assert response.status_code == 302 and "/login" not in response.location
    assert client.get("/logout/").status_code == 302
    assert summary(app, "user.login", "user.login_failed", "user.logout") == [
        (
            "user.login_failed",
            "admin@example.com",
            "Failed sign-in for admin@example.com (bad password)",
            {"method": "password", "reason": "bad_password", "username": "admin"},
        ),
        (
            "user.login_failed",
            "nobody",
            "Failed sign-in for nobody (unknown user)",
            {"method": "password", "reason": "unknown_user", "username": "nobody"},
        ),
        (
            "user.login_failed",
            "carol@example.com",
            "Failed sign-in for carol@example.com (inactive)",
            {"method": "password", "reason": "inactive", "username": "carol"},
        ),
        ("user.login", "admin@example.com", "Signed in", {"method": "password"}),
        ("user.logout", "admin@example.com", "Signed out", {}),
    ]
    failures = fixtures.events(app, "user.login_failed")
    assert [e.outcome for e in failures] == ["failure"] * 3
    assert failures[1].actor_id is None and failures[0].actor_id is not None


def test_jwt_api_and_form_through_a_live_server(make_fab_app: MakeFabApp) -> None:
    app = make_fab_app()
    ids = _ids(app)
    with LiveServer(app) as live:
        status, _, body = live.request(
            "/api/v1/security/login", payload={"username": "bob", "password": PASSWORD, "provider": "db"}
        )
        assert status == 200 and "access_token" in json.loads(body)
        status, _, _ = live.request(
            "/api/v1/security/login", payload={"username": "bob", "password": "nope", "provider": "db"}
        )
        assert status == 401
        status, _, _ = live.request("/api/v1/security/login", payload={"username": "x"})
        assert status == 400  # refused by FAB before any authentication: not a sign-in attempt
        status, headers, _ = live.request("/login/", form={"username": "admin", "password": PASSWORD})
        assert status == 302 and "/login" not in headers["Location"]
        status, _, body = live.request("/admin/audit/")
        assert status == 200 and b"Signed in to the API (JWT)" in body
    assert summary(app, "user.login", "user.login_failed") == [
        ("user.login", "bob@example.com", "Signed in to the API (JWT)", {"method": "jwt", "provider": "db"}),
        (
            "user.login_failed",
            "bob@example.com",
            "Failed sign-in to the API (JWT) for bob@example.com (bad password)",
            {"method": "jwt", "reason": "bad_password", "username": "bob", "provider": "db"},
        ),
        ("user.login", "admin@example.com", "Signed in", {"method": "password"}),
    ]
    logins = fixtures.events(app, "user.login")
    assert [(e.actor_id, e.ip) for e in logins] == [
        (str(ids["bob"]), "127.0.0.1"),
        (str(ids["admin"]), "127.0.0.1"),
    ]


def test_user_admin_views(make_fab_app: MakeFabApp) -> None:
    app = make_fab_app()
    ids = _ids(app)
    admin_role, public_role = role_id(app, "Admin"), role_id(app, "Public")
    client = signed_in(app, "admin")
    form = {
        "first_name": "Dora",
        "last_name": "Explorer",
        "username": "dora",
        "active": "y",
        "email": "dora@example.com",
        "roles": str(public_role),
        "password": PASSWORD,
        "conf_password": PASSWORD,
    }
    assert client.post("/users/add", data=form).status_code == 302
    with app.app_context():
        dora = db.session.scalar(sa.select(User.id).where(User.username == "dora"))
        db.session.remove()
    edit: dict[str, str | list[str]] = {
        key: form[key] for key in ("first_name", "username", "active", "email")
    }
    edit.update(last_name="Explorer-Smith", roles=[str(admin_role), str(public_role)])
    assert client.post(f"/users/edit/{dora}", data=edit).status_code == 302
    assert client.post(f"/users/delete/{dora}").status_code == 302
    # The form's role lookup flushes the name change first; the roles follow in the commit.
    expected = [
        (
            "user.created",
            "admin@example.com",
            "Created user dora (dora@example.com)",
            {
                "values": {
                    "username": "dora",
                    "email": "dora@example.com",
                    "first_name": "Dora",
                    "last_name": "Explorer",
                    "active": True,
                },
                "roles": ["Public"],
            },
        ),
        (
            "user.updated",
            "admin@example.com",
            "Updated user dora (dora@example.com): last_name",
            {"changes": {"last_name": ["Explorer", "Explorer-Smith"]}},
        ),
        (
            "role.updated",
            "admin@example.com",
            "Changed roles of dora (dora@example.com) from Public to Admin, Public",
            {"user": "dora@example.com", "before": ["Public"], "after": ["Admin", "Public"]},
        ),
        (
            "user.deleted",
            "admin@example.com",
            "Deleted user dora (dora@example.com)",
            {"values": {"username": "dora", "email": "dora@example.com"}, "roles": ["Admin", "Public"]},
        ),
    ]
    assert summary(app, "user.created", "role.updated", "user.updated", "user.deleted")[2:] == expected
    stored = fixtures.events(app, "user.updated", "role.updated")
    assert {(e.entity, e.action, e.target_type, e.target_id) for e in stored} == {
        ("User", "update", "user", str(dora)),
        ("Role", "update", "user", str(dora)),
    }
    assert all(e.actor_id == str(ids["admin"]) for e in stored)


def test_security_manager_changes_and_sign_in_bookkeeping(make_fab_app: MakeFabApp) -> None:
    app = make_fab_app()
    ids = _ids(app)
    signed_in(app, "bob")  # login_count and last_login change: not a user change
    with app.app_context():
        sm = app.appbuilder.sm  # type: ignore[attr-defined]
        bob = sm.get_user_by_id(ids["bob"])
        bob.roles = [sm.find_role("Admin")]
        sm.update_user(bob)
        sm.reset_password(ids["bob"], "Another-Pass-9")
        db.session.remove()
    assert summary(app, "role.updated", "user.updated", "user.password_changed") == [
        (
            "role.updated",
            "system",
            "Changed roles of bob (bob@example.com) from Public to Admin",
            {"user": "bob@example.com", "before": ["Public"], "after": ["Admin"]},
        ),
        (
            "user.password_changed",
            "system",
            "Changed the password of bob@example.com",
            {"method": "admin", "by_admin": True, "user": "bob@example.com"},
        ),
    ]


def test_a_rolled_back_user_change_leaves_no_event(make_fab_app: MakeFabApp) -> None:
    app = make_fab_app()
    ids = _ids(app)
    with app.app_context():
        sm = app.appbuilder.sm  # type: ignore[attr-defined]
        bob = sm.get_user_by_id(ids["bob"])
        bob.roles = [sm.find_role("Admin")]
        db.session.flush()
        db.session.rollback()
        db.session.remove()
    assert summary(app, "role.updated") == []


def test_tracked_user_and_unknown_username_is_no_server_error(make_fab_app: MakeFabApp) -> None:
    app = make_fab_app()
    _ids(app)
    app.extensions["audit"].track(User, entity="User", fields=["email"])
    client = app.test_client()
    response = sign_in(client, "ghost", "whatever")
    assert response.status_code == 302
    response = client.post(
        "/api/v1/security/login", json={"username": "ghost", "password": "x", "provider": "db"}
    )
    assert response.status_code == 401
    assert [(e.event_type, e.details["reason"]) for e in fixtures.events(app, "user.login_failed")] == [
        ("user.login_failed", "unknown_user"),
        ("user.login_failed", "unknown_user"),
    ]


def test_oauth_result_of_the_security_manager(make_fab_app: MakeFabApp) -> None:
    """FAB's OAuth callback calls ``auth_user_oauth(userinfo)`` then ``login_user``."""
    app = make_fab_app()
    _ids(app)
    sm = app.appbuilder.sm  # type: ignore[attr-defined]
    with app.test_request_context("/oauth-authorized/github"):
        app.preprocess_request()
        user = sm.auth_user_oauth({"username": "bob", "email": "bob@example.com"})
        login_user(user)
        assert sm.auth_user_oauth({"username": "stranger"}) is None
    assert summary(app, "user.login", "user.login_failed") == [
        ("user.login", "bob@example.com", "Signed in with OAuth", {"method": "oauth"}),
        (
            "user.login_failed",
            "stranger",
            "Failed sign-in with OAuth for stranger (unknown user)",
            {"method": "oauth", "reason": "unknown_user", "username": "stranger"},
        ),
    ]


def test_audit_page_in_fab(make_fab_app: MakeFabApp) -> None:
    app = make_fab_app()
    _ids(app)
    anonymous = app.test_client()
    response = anonymous.get("/admin/audit/")
    assert response.status_code == 302 and response.location.startswith("/login/?next=")
    assert anonymous.get("/auditlog/").location.startswith("/login/")
    member = signed_in(app, "bob")
    assert member.get("/admin/audit/").status_code == 403
    assert member.get("/auditlog/").status_code == 403
    assert b"Audit log" not in member.get("/users/userinfo/").data
    admin = signed_in(app, "admin")
    assert admin.get("/admin/audit/").status_code == 200
    page = admin.get("/auditlog/")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'href="/auditlog/"' in text  # the menu entry, in FAB's layout
    assert "Security" in text and "List Users" in text
    assert "Signed in" in text and 'href="/admin/audit/"' in text
    assert "Failed sign-in" not in text and "<td>admin@example.com</td>" in text


def test_fab_create_db_creates_the_audit_tables(make_fab_app: MakeFabApp) -> None:
    """A FAB database made before ``Audit`` was added: FAB's tables and roles, no audit tables."""
    before = make_fab_app()
    with before.app_context():
        db.drop_all()  # the app's own metadata holds only the audit tables
    app = make_fab_app(FAB_CREATE_DB=False)
    with app.app_context():
        assert not sa.inspect(db.engine).has_table("audit_event")
    runner = app.test_cli_runner()
    result = runner.invoke(fab, ["create-db"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert sa.inspect(db.engine).has_table("audit_event")
    result = runner.invoke(
        fab,
        ["create-admin", "--username", "root", "--firstname", "R", "--lastname", "T"]
        + ["--email", "root@example.com", "--password", PASSWORD],
    )
    assert result.exit_code == 0, result.output
    client = app.test_client()
    assert "/login" not in sign_in(client, "root").location
    assert summary(app) == [
        (
            "user.created",
            "system",
            "Created user root (root@example.com)",
            {
                "values": {
                    "username": "root",
                    "email": "root@example.com",
                    "first_name": "R",
                    "last_name": "T",
                    "active": True,
                },
                "roles": ["Admin"],
            },
        ),
        ("user.login", "root@example.com", "Signed in", {"method": "password"}),
    ]


def test_a_login_view_that_names_no_endpoint_is_a_401(make_fab_app: MakeFabApp) -> None:
    app = make_fab_app()
    app.test_client().get("/")  # FAB is hooked: its login view is the one sent to
    assert app.login_manager.login_view == "AuthDBView.login"  # type: ignore[attr-defined]
    app.login_manager.login_view = "login"  # type: ignore[attr-defined]  # FAB's own, unregistered
    response = app.test_client().get("/admin/audit/")
    assert response.status_code == 401
