"""The Flask-AppBuilder adapter beyond database sign-ins: self-registration, OAuth and LDAP
through the security manager, and role definitions changed in FAB's role admin.

No OAuth provider and no LDAP server take part. OAuth is driven as FAB's callback view
drives it once the provider has answered (``set_oauth_session``, ``auth_user_oauth`` with
the user info, ``login_user``); LDAP through FAB's own LDAP login form, which refuses
before any directory answers (no ``python-ldap`` or no server at the configured address):
its successful sign-in is not exercised here.
"""

from __future__ import annotations

import re
import typing as t

import sqlalchemy as sa
from flask import Flask
from flask_appbuilder import BaseView  # type: ignore[import-untyped]
from flask_appbuilder import expose
from flask_appbuilder import has_access
from flask_appbuilder.cli import fab  # type: ignore[import-untyped]
from flask_appbuilder.const import AUTH_LDAP  # type: ignore[import-untyped]
from flask_appbuilder.security.sqla.models import PermissionView  # type: ignore[import-untyped]
from flask_appbuilder.security.sqla.models import User
from flask_login import login_user
from flask_mail import email_dispatched
from flask_mail import Message

from .. import fab_fixtures as fixtures
from ..fab_fixtures import add_user
from ..fab_fixtures import db
from ..fab_fixtures import MakeFabApp
from ..fab_fixtures import PASSWORD
from ..fab_fixtures import role_id
from ..fab_fixtures import sign_in
from ..fab_fixtures import signed_in
from ..fab_fixtures import summary

make_fab_app = fixtures.make_fab_app

DORA = {"username": "dora", "first_name": "Dora", "last_name": "Explorer", "email": "dora@example.com"}
DORA_VALUES = {**DORA, "active": True}
GITHUB = [{"name": "github", "token_key": "access_token", "remote_app": {"client_id": "x"}}]


def _user_id(app: Flask, username: str) -> int:
    with app.app_context():
        found = db.session.scalar(sa.select(User.id).where(User.username == username))
        db.session.remove()
    assert found is not None
    return int(found)


# -- self-registration -------------------------------------------------------------------


def test_registration_is_a_user_created_when_activated(make_fab_app: MakeFabApp) -> None:
    app = make_fab_app(
        AUTH_USER_REGISTRATION=True,
        AUTH_USER_REGISTRATION_ROLE="Public",
        MAIL_DEFAULT_SENDER="fab@example.com",
    )
    add_user(app, "admin")
    sent: list[Message] = []
    client = app.test_client()
    with email_dispatched.connected_to(lambda sender, message, **_: sent.append(message)):
        form = {**DORA, "password": PASSWORD, "conf_password": PASSWORD}
        assert client.post("/register/form", data=form).status_code == 302
    # A registration request is no user yet.
    assert [e.activity for e in fixtures.events(app)] == ["Created user admin (admin@example.com)"]
    [message] = sent
    link = re.search(r'href="http://localhost(/register/activation/[^"]+)"', str(message.html))
    assert link is not None
    assert client.get(link.group(1)).status_code == 200
    assert summary(app, "user.created")[1:] == [
        (
            "user.created",
            "dora@example.com",
            "Signed up as dora (dora@example.com)",
            {"values": DORA_VALUES, "roles": ["Public"], "method": "registration"},
        ),
    ]
    [event] = fixtures.events(app, "user.created")[1:]
    dora = _user_id(app, "dora")
    assert (event.actor_id, event.target_type, event.target_id) == (str(dora), "user", str(dora))
    assert PASSWORD not in repr(event.details)
    assert "/login" not in sign_in(app.test_client(), "dora").location


# -- OAuth -------------------------------------------------------------------------------


def _oauth_callback(app: Flask, userinfo: dict[str, t.Any]) -> t.Any:
    """What FAB's ``/oauth-authorized/<provider>`` does after the provider's answer."""
    sm = app.appbuilder.sm  # type: ignore[attr-defined]
    with app.test_request_context("/oauth-authorized/github"):
        app.preprocess_request()
        sm.set_oauth_session("github", {"access_token": "token-from-github"})
        user = sm.auth_user_oauth(userinfo)
        if user:
            login_user(user)
        db.session.remove()
        return user


def test_oauth_sign_in_sign_up_and_refusals(make_fab_app: MakeFabApp) -> None:
    app = make_fab_app(
        OAUTH_PROVIDERS=GITHUB,
        AUTH_USER_REGISTRATION=True,
        AUTH_USER_REGISTRATION_ROLE="Public",
        AUTH_ROLES_MAPPING={"github-admins": ["Admin"]},
        AUTH_ROLES_SYNC_AT_LOGIN=True,
    )
    bob = add_user(app, "bob", role="Public")
    add_user(app, "carol", role="Public")
    with app.app_context():
        sm = app.appbuilder.sm  # type: ignore[attr-defined]
        carol = sm.find_user(username="carol")
        carol.active = False
        sm.update_user(carol)
        db.session.remove()
    assert _oauth_callback(app, {"username": "bob", "email": "bob@example.com"})
    assert _oauth_callback(app, {"username": "bob", "role_keys": ["github-admins"]})
    assert _oauth_callback(app, {**DORA})
    assert not _oauth_callback(app, {"username": "carol"})
    assert not _oauth_callback(app, {"first_name": "No name"})  # nothing to name: not an attempt
    dora = _user_id(app, "dora")
    github = {"provider": "github"}
    assert summary(app, "user.login", "user.login_failed", "user.created", "role.updated")[2:] == [
        ("user.login", "bob@example.com", "Signed in with OAuth", {"method": "oauth", **github}),
        (  # the roles mapped from the provider, synced as bob signs in
            "role.updated",
            "bob@example.com",
            "Changed roles of bob (bob@example.com) from Public to Admin, Public",
            {
                "user": "bob@example.com",
                "before": ["Public"],
                "after": ["Admin", "Public"],
                "method": "oauth",
            },
        ),
        ("user.login", "bob@example.com", "Signed in with OAuth", {"method": "oauth", **github}),
        (
            "user.created",
            "dora@example.com",
            "Signed up as dora (dora@example.com) with OAuth",
            {"values": DORA_VALUES, "roles": ["Public"], "method": "oauth"},
        ),
        ("user.login", "dora@example.com", "Signed in with OAuth", {"method": "oauth", **github}),
        (
            "user.login_failed",
            "carol@example.com",
            "Failed sign-in with OAuth for carol@example.com (inactive)",
            {"method": "oauth", "reason": "inactive", "username": "carol", **github},
        ),
    ]
    actors = [e.actor_id for e in fixtures.events(app, "user.login", "user.created", "role.updated")[2:]]
    assert actors == [str(bob), str(bob), str(bob), str(dora), str(dora)]
    assert "token-from-github" not in repr([e.details for e in fixtures.events(app)])


# -- LDAP --------------------------------------------------------------------------------


def test_ldap_refusals_through_fabs_ldap_form(make_fab_app: MakeFabApp) -> None:
    """Port 9 on the loopback: nothing answers, so FAB refuses every password it is given."""
    app = make_fab_app(AUTH_TYPE=AUTH_LDAP, AUTH_LDAP_SERVER="ldap://127.0.0.1:9")
    add_user(app, "bob", role="Public")
    add_user(app, "carol", role="Public")
    with app.app_context():
        sm = app.appbuilder.sm  # type: ignore[attr-defined]
        carol = sm.find_user(username="carol")
        carol.active = False
        sm.update_user(carol)
        db.session.remove()
    client = app.test_client()
    for username in ("bob", "nobody", "carol"):
        assert sign_in(client, username, "whatever").location.startswith("/login/")
    assert summary(app, "user.login", "user.login_failed") == [
        (
            "user.login_failed",
            "bob@example.com",
            "Failed sign-in with LDAP for bob@example.com (ldap rejected)",
            {"method": "ldap", "reason": "ldap_rejected", "username": "bob"},
        ),
        (
            "user.login_failed",
            "nobody",
            "Failed sign-in with LDAP for nobody (unknown user)",
            {"method": "ldap", "reason": "unknown_user", "username": "nobody"},
        ),
        (
            "user.login_failed",
            "carol@example.com",
            "Failed sign-in with LDAP for carol@example.com (inactive)",
            {"method": "ldap", "reason": "inactive", "username": "carol"},
        ),
    ]


# -- role definitions ------------------------------------------------------------------


def _permission_ids(app: Flask, *labels: str) -> list[str]:
    with app.app_context():
        found = {str(pv): str(pv.id) for pv in db.session.scalars(sa.select(PermissionView))}
        db.session.remove()
    return [found[label] for label in labels]


def test_role_permissions_changed_in_fabs_role_admin(make_fab_app: MakeFabApp) -> None:
    app = make_fab_app()
    admin = add_user(app, "admin")
    with app.app_context():
        app.appbuilder.sm.add_role("Editor")  # type: ignore[attr-defined]
        db.session.remove()
    editor = role_id(app, "Editor")
    can_list, can_show, can_edit = (
        "can list on UserDBModelView",
        "can show on UserDBModelView",
        ("can edit on UserDBModelView"),
    )
    client = signed_in(app, "admin")
    form = {"name": "Editor", "permissions": _permission_ids(app, can_list, can_show)}
    assert client.post(f"/roles/edit/{editor}", data=form).status_code == 302
    form = {"name": "Writer", "permissions": _permission_ids(app, can_list, can_edit)}
    assert client.post(f"/roles/edit/{editor}", data=form).status_code == 302
    with app.app_context():  # through the security manager, as code or a command would
        sm = app.appbuilder.sm  # type: ignore[attr-defined]
        sm.del_permission_role(
            sm.find_role("Writer"), sm.find_permission_view_menu("can_edit", "UserDBModelView")
        )
        db.session.remove()
    assert summary(app, "role.updated") == [
        (
            "role.updated",
            "admin@example.com",
            f"Changed the permissions of role Editor: added {can_list}, {can_show}",
            {"role": "Editor", "permissions": {"added": [can_list, can_show], "removed": []}},
        ),
        # The form's permission lookup flushes the new name first; the permissions follow.
        (
            "role.updated",
            "admin@example.com",
            "Renamed role Editor to Writer",
            {"role": "Writer", "name": ["Editor", "Writer"]},
        ),
        (
            "role.updated",
            "admin@example.com",
            f"Changed the permissions of role Writer: added {can_edit}; removed {can_show}",
            {"role": "Writer", "permissions": {"added": [can_edit], "removed": [can_show]}},
        ),
        (
            "role.updated",
            "system",
            f"Changed the permissions of role Writer: removed {can_edit}",
            {"role": "Writer", "permissions": {"added": [], "removed": [can_edit]}},
        ),
    ]
    events = fixtures.events(app, "role.updated")
    assert {(e.entity, e.action, e.target_type, e.target_id) for e in events} == {
        ("Role", "update", "role", str(editor))
    }
    assert [e.actor_id for e in events] == [str(admin), str(admin), str(admin), "system"]


def test_fabs_own_permission_sync_is_not_recorded(make_fab_app: MakeFabApp) -> None:
    """Views added after start-up and ``flask fab create-permissions`` grant the Admin role
    their permissions: bookkeeping, no event."""

    class ReportView(BaseView):
        route_base = "/reports"

        @expose("/")
        @has_access
        def index(self) -> str:
            return "reports"

    app = make_fab_app(fab_first=True)  # FAB is hooked at once
    with app.app_context():
        app.appbuilder.add_view_no_menu(ReportView())  # type: ignore[attr-defined]
        db.session.remove()
    result = app.test_cli_runner().invoke(fab, ["create-permissions"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        admin_role = app.appbuilder.sm.find_role("Admin")  # type: ignore[attr-defined]
        assert "can index on ReportView" in {str(pv) for pv in admin_role.permissions}
        db.session.remove()
    assert summary(app, "role.updated") == []


def test_users_given_a_role_from_the_role_side(make_fab_app: MakeFabApp) -> None:
    app = make_fab_app()
    add_user(app, "bob", role="Public")
    with app.app_context():
        sm = app.appbuilder.sm  # type: ignore[attr-defined]
        bob = db.session.scalars(sa.select(User).where(User.username == "bob")).one()
        admin = sm.find_role("Admin")
        admin.user.append(bob)
        db.session.commit()
        db.session.remove()
    assert summary(app, "role.updated") == [
        (
            "role.updated",
            "system",
            "Changed roles of bob (bob@example.com) from Public to Admin, Public",
            {"user": "bob@example.com", "before": ["Public"], "after": ["Admin", "Public"]},
        )
    ]
