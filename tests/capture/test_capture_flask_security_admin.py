"""What Flask-Security-Too does without a signal: roles, accounts, access resets, admins.

Driven through a real Flask-Security app: its datastore, its own ``flask users`` and
``flask roles`` commands (``app.test_cli_runner()``), its JSON endpoints with real pyotp
codes, and the audit page it guards.
"""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_audit import AuditConfigError
from flask_audit.config import load_config

from .. import flask_security_fixtures as fixtures
from ..conftest import stored
from ..flask_security_fixtures import add_user
from ..flask_security_fixtures import code
from ..flask_security_fixtures import db
from ..flask_security_fixtures import enable_two_factor
from ..flask_security_fixtures import get_user
from ..flask_security_fixtures import login
from ..flask_security_fixtures import MakeSecurityApp
from ..flask_security_fixtures import NEW_PASSWORD
from ..flask_security_fixtures import PASSWORD
from ..flask_security_fixtures import post
from ..flask_security_fixtures import security
from ..flask_security_fixtures import stored_text
from ..flask_security_fixtures import User
from ..flask_security_fixtures import wrong_code

fs_app = fixtures.fs_app
make_security_app = fixtures.make_security_app

pytestmark = [
    # Flask-Security 5.9 still builds WTForms choices from tuples (WTForms 3.3 deprecates it).
    pytest.mark.filterwarnings("ignore:Passing SelectField choices:DeprecationWarning"),
]

BOB = "bob@example.com"
ROOT = "root@example.com"


def _cli(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _roles(app: Flask, *names: str) -> None:
    for name in names:
        _cli(app, "roles", "create", name)


def _summary(app: Flask) -> list[tuple[str, str, dict[str, t.Any], str | None]]:
    return [(e.event_type, e.activity, e.details, e.actor_email) for e in stored(app)]


def _user(app: Flask, email: str) -> t.Any:
    user = security(app).datastore.find_user(email=email)
    assert user is not None
    return user


def _role(app: Flask, name: str) -> t.Any:
    role = security(app).datastore.find_role(name)
    assert role is not None
    return role


def _signed_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    assert login(client, email)["status"] == 200
    return client


# -- roles ------------------------------------------------------------------------------


def test_roles_granted_and_removed_with_the_cli(fs_app: Flask) -> None:
    bob_id = add_user(fs_app, BOB)
    _roles(fs_app, "admin", "member")
    _cli(fs_app, "roles", "add", BOB, "member")
    _cli(fs_app, "roles", "add", BOB, "admin")
    _cli(fs_app, "roles", "remove", BOB, "member")
    assert _summary(fs_app) == [
        (
            "role.updated",
            "Changed roles of bob@example.com from none to Member",
            {"before": [], "after": ["member"]},
            "system",
        ),
        (
            "role.updated",
            "Changed roles of bob@example.com from Member to Admin, Member",
            {"before": ["member"], "after": ["admin", "member"]},
            "system",
        ),
        (
            "role.updated",
            "Changed roles of bob@example.com from Admin, Member to Admin",
            {"before": ["admin", "member"], "after": ["admin"]},
            "system",
        ),
    ]
    events = stored(fs_app)
    assert {(e.entity, e.action, e.outcome, e.actor_id) for e in events} == {
        ("Role", "update", "success", "system")
    }
    assert {(e.target_type, e.target_id) for e in events} == {("user", str(bob_id))}


def test_a_refused_cli_role_change_records_nothing(fs_app: Flask) -> None:
    add_user(fs_app, BOB)
    _roles(fs_app, "admin")
    result = fs_app.test_cli_runner().invoke(args=["roles", "remove", BOB, "admin"])
    assert result.exit_code != 0  # bob has no such role
    result = fs_app.test_cli_runner().invoke(args=["roles", "add", BOB, "no-such-role"])
    assert result.exit_code != 0
    assert stored(fs_app) == []


def test_role_change_by_a_signed_in_admin_names_them(fs_app: Flask) -> None:
    @fs_app.post("/members/<int:user_id>/promote")
    def promote(user_id: int) -> str:
        datastore = security(fs_app).datastore
        user = datastore.find_user(id=user_id)
        assert user is not None
        datastore.add_role_to_user(user, "admin")
        datastore.remove_role_from_user(user, "member")
        db.session.commit()
        return "ok"

    _roles(fs_app, "admin", "member")
    add_user(fs_app, ROOT)
    bob_id = add_user(fs_app, BOB)
    _cli(fs_app, "roles", "add", BOB, "member")
    root = _signed_in(fs_app, ROOT)
    assert root.post(f"/members/{bob_id}/promote").status_code == 200
    # remove_role_from_user("member") looks the role up, which flushes the grant first:
    # two flushes, one transaction, one event.
    promoted = stored(fs_app)[-1]
    assert [e.event_type for e in stored(fs_app)] == ["role.updated", "user.login", "role.updated"]
    assert (promoted.activity, promoted.details, promoted.actor_email, promoted.ip) == (
        "Changed roles of bob@example.com from Member to Admin",
        {"before": ["member"], "after": ["admin"]},
        ROOT,
        "127.0.0.1",
    )
    assert (promoted.target_type, promoted.target_id) == ("user", str(bob_id))


def test_roles_changed_through_the_orm_make_one_event_per_transaction(fs_app: Flask) -> None:
    _roles(fs_app, "admin", "member", "viewer")
    add_user(fs_app, BOB)
    _cli(fs_app, "roles", "add", BOB, "member")
    _cli(fs_app, "roles", "add", BOB, "viewer")
    with fs_app.app_context():
        admin, member, viewer = (_role(fs_app, name) for name in ("admin", "member", "viewer"))
        bob = db.session.scalars(sa.select(User).where(User.email == BOB)).one()
        db.session.commit()  # expires bob: the roles collection is not loaded when replaced
        bob.roles = [admin, viewer]
        db.session.commit()
        bob.roles.append(member)
        db.session.flush()
        bob.roles.remove(admin)
        db.session.flush()
        bob.roles.remove(member)  # back and forth in one transaction: only the net change
        db.session.commit()
        bob.roles.append(admin)
        db.session.flush()
        bob.roles.remove(admin)  # no net change: no event
        db.session.commit()
        db.session.remove()
    assert [e.details for e in stored(fs_app)[2:]] == [
        {"before": ["member", "viewer"], "after": ["admin", "viewer"]},
        {"before": ["admin", "viewer"], "after": ["viewer"]},
    ]


def test_the_roles_after_are_the_ones_the_database_holds(fs_app: Flask) -> None:
    """A role appended and removed before one flush still reaches the database through
    Flask-Security's ``Role.users`` backref, whatever the session's collection says: the
    event names the roles the user holds once the transaction commits."""
    _roles(fs_app, "admin", "viewer")
    add_user(fs_app, BOB)
    _cli(fs_app, "roles", "add", BOB, "viewer")
    with fs_app.app_context():
        admin = _role(fs_app, "admin")
        bob = _user(fs_app, BOB)
        bob.roles.append(admin)
        bob.roles.remove(admin)
        db.session.commit()
        db.session.remove()
        held = sorted(role.name for role in _user(fs_app, BOB).roles)
        db.session.remove()
    expected = [{"before": [], "after": ["viewer"]}]
    if held != ["viewer"]:
        expected.append({"before": ["viewer"], "after": held})
    assert [e.details for e in stored(fs_app)] == expected


def test_each_user_changed_in_a_transaction_gets_its_event(fs_app: Flask) -> None:
    _roles(fs_app, "admin")
    add_user(fs_app, BOB)
    add_user(fs_app, "carol@example.com")
    with fs_app.app_context():
        datastore = security(fs_app).datastore
        admin = _role(fs_app, "admin")
        datastore.add_role_to_user(_user(fs_app, BOB), admin)
        db.session.flush()  # bob's change is flushed, carol's waits for the commit
        datastore.add_role_to_user(_user(fs_app, "carol@example.com"), admin)
        db.session.commit()
        db.session.remove()
    assert sorted(e.activity for e in stored(fs_app)) == [
        "Changed roles of bob@example.com from none to Admin",
        "Changed roles of carol@example.com from none to Admin",
    ]


def test_savepoints_count_as_they_end(fs_app: Flask) -> None:
    _roles(fs_app, "admin", "member", "viewer")
    add_user(fs_app, BOB)
    with fs_app.app_context():
        datastore = security(fs_app).datastore
        admin, member, viewer = (_role(fs_app, name) for name in ("admin", "member", "viewer"))
        bob = _user(fs_app, BOB)
        with db.session.begin_nested():
            datastore.add_role_to_user(bob, admin)  # released: kept
        savepoint = db.session.begin_nested()
        datastore.add_role_to_user(bob, member)
        db.session.flush()
        savepoint.rollback()  # rolled back: not counted
        datastore.add_role_to_user(bob, viewer)
        db.session.commit()
        db.session.remove()
    assert [e.details for e in stored(fs_app)] == [{"before": [], "after": ["admin", "viewer"]}]


def test_a_rolled_back_role_change_leaves_no_event(fs_app: Flask) -> None:
    _roles(fs_app, "admin")
    add_user(fs_app, BOB)
    with fs_app.app_context():
        security(fs_app).datastore.add_role_to_user(_user(fs_app, BOB), "admin")
        db.session.flush()
        db.session.rollback()
        db.session.remove()
    assert stored(fs_app) == []
    with fs_app.app_context():
        assert [role.name for role in _user(fs_app, BOB).roles] == []
        db.session.remove()


# -- accounts ---------------------------------------------------------------------------


def test_users_created_with_the_cli_and_the_datastore(fs_app: Flask) -> None:
    _roles(fs_app, "admin", "member")
    out = _cli(fs_app, "users", "create", "carol@example.com", "--password", PASSWORD)
    assert "User created successfully" in out
    _cli(fs_app, "users", "create", "dave@example.com", "--password", PASSWORD, "--active")
    with fs_app.app_context():
        security(fs_app).datastore.create_user(email=BOB, password=PASSWORD, roles=["member", "admin"])
        db.session.commit()
        db.session.remove()
    assert _summary(fs_app) == [
        ("user.created", "Created user carol@example.com (inactive)", {"active": False}, "system"),
        ("user.created", "Created user dave@example.com", {}, "system"),
        (
            "user.created",
            "Created user bob@example.com with roles Admin, Member",
            {"roles": ["admin", "member"]},
            "system",
        ),
    ]
    events = stored(fs_app)
    assert [(e.entity, e.action, e.target_id) for e in events] == [
        ("User", "create", str(get_user(fs_app, email).id))
        for email in ("carol@example.com", "dave@example.com", BOB)
    ]
    assert PASSWORD not in stored_text(fs_app)


def test_deactivated_activated_and_deleted(fs_app: Flask) -> None:
    bob_id = add_user(fs_app, BOB)
    _cli(fs_app, "users", "deactivate", BOB)
    assert "already" in _cli(fs_app, "users", "deactivate", BOB)  # no change: no event
    _cli(fs_app, "users", "activate", BOB)
    with fs_app.app_context():
        datastore = security(fs_app).datastore
        datastore.toggle_active(_user(fs_app, BOB))
        db.session.commit()
        datastore.delete_user(_user(fs_app, BOB))
        db.session.commit()
        db.session.remove()
    assert _summary(fs_app) == [
        ("user.deactivated", "Deactivated user bob@example.com", {"active": False}, "system"),
        ("user.activated", "Activated user bob@example.com", {"active": True}, "system"),
        ("user.deactivated", "Deactivated user bob@example.com", {"active": False}, "system"),
        ("user.deleted", "Deleted user bob@example.com", {}, "system"),
    ]
    assert [(e.entity, e.action, e.target_id) for e in stored(fs_app)] == [
        ("User", "update", str(bob_id)),
        ("User", "update", str(bob_id)),
        ("User", "update", str(bob_id)),
        ("User", "delete", str(bob_id)),
    ]


def test_active_set_on_an_expired_user_records_only_a_change(fs_app: Flask) -> None:
    add_user(fs_app, BOB, active=False)
    with fs_app.app_context():
        bob = _user(fs_app, BOB)
        db.session.commit()  # expires bob: ``active`` is set without being read first
        bob.active = False
        db.session.commit()
        bob.active = True
        db.session.commit()
        db.session.remove()
    assert [(e.event_type, e.details) for e in stored(fs_app)] == [("user.activated", {"active": True})]


def test_deactivated_by_a_signed_in_admin(fs_app: Flask) -> None:
    @fs_app.post("/members/<int:user_id>/deactivate")
    def deactivate(user_id: int) -> str:
        user = security(fs_app).datastore.find_user(id=user_id)
        assert user is not None
        security(fs_app).datastore.deactivate_user(user)
        db.session.commit()
        return "ok"

    add_user(fs_app, ROOT)
    bob_id = add_user(fs_app, BOB)
    root = _signed_in(fs_app, ROOT)
    assert root.post(f"/members/{bob_id}/deactivate").status_code == 200
    event = stored(fs_app)[-1]
    assert (event.event_type, event.actor_email, event.ip, event.target_id) == (
        "user.deactivated",
        ROOT,
        "127.0.0.1",
        str(bob_id),
    )
    assert login(fs_app.test_client(), BOB)["status"] == 400  # and bob is refused
    assert stored(fs_app)[-1].details["reason"] == "inactive"


def test_sign_up_is_one_user_created(fs_app: Flask) -> None:
    client = fs_app.test_client()
    reply = post(client, "/register", email=BOB, password=PASSWORD, password_confirm=PASSWORD)
    assert reply["status"] == 200, reply
    assert [(e.event_type, e.details) for e in stored(fs_app)] == [
        ("user.created", {"method": "registration"}),
        ("user.login", {"method": "register"}),
    ]


def test_access_reset_with_the_cli(fs_app: Flask) -> None:
    alice_id = add_user(fs_app)
    client = _signed_in(fs_app, "alice@example.com")
    key, _ = enable_two_factor(fs_app, client)
    secret = get_user(fs_app).tf_totp_secret
    _cli(fs_app, "users", "reset_access", "alice@example.com")
    event, two_factor = stored(fs_app)[-2:]
    assert (event.event_type, event.entity, event.action, event.actor_id, event.target_id) == (
        "user.access_reset",
        "User",
        "update",
        "system",
        str(alice_id),
    )
    # The second factor it removed is in the two-factor history too.
    assert (two_factor.event_type, two_factor.activity, two_factor.details, two_factor.target_id) == (
        "two_factor.reset",
        "Reset two-factor authentication (authenticator app) of alice@example.com",
        {"method": "authenticator", "user": "alice@example.com"},
        str(alice_id),
    )
    assert event.activity == "Reset the sign-in credentials of alice@example.com"
    assert event.details == {
        "user": "alice@example.com",
        "two_factor_method": "authenticator",
        "sign_in_methods": [],
        "security_keys": 0,
    }
    assert get_user(fs_app).tf_primary_method is None
    assert client.get("/whoami").status_code != 200  # the session ended with the reset
    text = stored_text(fs_app)
    assert key not in text and str(secret) not in text


def test_access_reset_that_rolls_back_leaves_no_event(fs_app: Flask) -> None:
    add_user(fs_app)
    with fs_app.app_context():
        security(fs_app).datastore.reset_user_access(_user(fs_app, "alice@example.com"))
        db.session.rollback()
        db.session.remove()
    assert stored(fs_app) == []


# -- two-factor set-up ------------------------------------------------------------------


def _setup(client: FlaskClient) -> tuple[str, str]:
    setup = post(client, "/tf-setup", setup="authenticator")
    assert setup["status"] == 200, setup
    return t.cast(str, setup["tf_authr_b32key"]), t.cast(str, setup["tf_state_token"])


def test_wrong_set_up_code_then_a_new_key(fs_app: Flask) -> None:
    add_user(fs_app)
    client = _signed_in(fs_app, "alice@example.com")
    key, token = _setup(client)
    assert post(client, f"/tf-setup/{token}", code=wrong_code(key))["status"] == 400
    assert post(client, f"/tf-setup/{token}", code=code(key))["status"] == 200
    key, token = _setup(client)  # set up again: a new key replaces the old one
    assert post(client, f"/tf-setup/{token}", code=code(key))["status"] == 200
    assert _summary(fs_app)[1:] == [
        (
            "two_factor.failed",
            "Entered a wrong two-factor set-up code (authenticator app)",
            {"method": "authenticator", "reason": "bad_code", "setup": True},
            "alice@example.com",
        ),
        (
            "two_factor.enabled",
            "Enabled two-factor authentication (authenticator app)",
            {"method": "authenticator"},
            "alice@example.com",
        ),
        (
            "two_factor.enabled",
            "Set up two-factor authentication again with a new key (authenticator app)",
            {"method": "authenticator", "rekeyed": True},
            "alice@example.com",
        ),
    ]
    assert stored(fs_app)[1].outcome == "failure"


def test_wrong_set_up_code_through_the_session_path(fs_app: Flask) -> None:
    """``/tf-validate`` while signed in: Flask-Security's older set-up path, no signal either."""
    add_user(fs_app)
    client = _signed_in(fs_app, "alice@example.com")
    key, _ = _setup(client)
    assert post(client, "/tf-validate", code=wrong_code(key))["status"] == 400
    assert [(e.event_type, e.details) for e in stored(fs_app)[1:]] == [
        ("two_factor.failed", {"method": "authenticator", "reason": "bad_code", "setup": True}),
    ]


def test_wrong_set_up_code_inside_a_required_sign_in(make_security_app: MakeSecurityApp) -> None:
    app = make_security_app(SECURITY_TWO_FACTOR_REQUIRED=True)
    add_user(app)
    client = app.test_client()
    assert login(client)["tf_required"] is True
    setup = post(client, "/tf-setup", setup="authenticator")
    key = setup["tf_authr_b32key"]
    assert post(client, "/tf-validate", code=wrong_code(key))["status"] == 400
    assert post(client, "/tf-validate", code=code(key))["status"] == 200
    assert [(e.event_type, e.details) for e in stored(app)] == [
        ("two_factor.failed", {"method": "authenticator", "reason": "bad_code", "setup": True}),
        ("two_factor.enabled", {"method": "authenticator"}),
        ("two_factor.verified", {"method": "authenticator"}),
        ("user.login", {"method": "password", "second_factor": "authenticator"}),
    ]


# -- who may read the audit log ---------------------------------------------------------

PAGE = "/admin/audit/"
API = "/admin/audit/api/events"
REFUSAL = "Only audit admins may view this page (AUDIT_IS_ADMIN / AUDIT_ADMIN_ROLE)."


def _people(app: Flask) -> None:
    _roles(app, "admin", "auditor")
    for email, role in ((ROOT, "admin"), ("auditor@example.com", "auditor"), (BOB, None)):
        add_user(app, email)
        if role:
            _cli(app, "roles", "add", email, role)


def _access(app: Flask, email: str) -> tuple[int, int, t.Any]:
    client = _signed_in(app, email)
    page, api = client.get(PAGE), client.get(API)
    if page.status_code == 403:
        assert REFUSAL in page.text
    return page.status_code, api.status_code, api.json if api.status_code == 403 else None


def test_admins_are_the_users_with_the_admin_role(fs_app: Flask) -> None:
    _people(fs_app)
    assert _access(fs_app, ROOT) == (200, 200, None)
    assert _access(fs_app, "auditor@example.com") == (403, 403, {"error": REFUSAL})
    assert _access(fs_app, BOB) == (403, 403, {"error": REFUSAL})


def test_audit_admin_role_names_another_role(make_security_app: MakeSecurityApp) -> None:
    app = make_security_app(AUDIT_ADMIN_ROLE="auditor")
    _people(app)
    assert _access(app, "auditor@example.com") == (200, 200, None)
    assert _access(app, ROOT) == (403, 403, {"error": REFUSAL})


def test_an_apps_own_is_admin_wins(make_security_app: MakeSecurityApp) -> None:
    app = make_security_app(AUDIT_IS_ADMIN=lambda user: user.email == BOB)
    _people(app)
    assert _access(app, BOB) == (200, 200, None)
    assert _access(app, ROOT) == (403, 403, {"error": REFUSAL})


def test_security_set_up_before_audit_gets_the_role_check_too(make_security_app: MakeSecurityApp) -> None:
    app = make_security_app(security_first=True)
    _people(app)
    assert _access(app, ROOT)[:2] == (200, 200)
    assert _access(app, BOB)[:2] == (403, 403)


@pytest.mark.parametrize("value", ["", "  ", 42, None])
def test_audit_admin_role_must_name_a_role(value: object) -> None:
    app = Flask(__name__)
    app.config["AUDIT_ADMIN_ROLE"] = value
    with pytest.raises(AuditConfigError, match="^AUDIT_ADMIN_ROLE must be the name of a role"):
        load_config(app)


def test_password_changed_with_the_cli(fs_app: Flask) -> None:
    bob_id = add_user(fs_app, BOB)
    _cli(fs_app, "users", "change_password", BOB, "--password", NEW_PASSWORD)
    [event] = stored(fs_app)
    assert (event.event_type, event.activity, event.actor_id, event.target_id) == (
        "user.password_changed",
        "Changed the password of bob@example.com",
        "system",
        str(bob_id),
    )
    assert event.details == {"method": "admin", "by_admin": True, "user": BOB}
    assert NEW_PASSWORD not in stored_text(fs_app)
