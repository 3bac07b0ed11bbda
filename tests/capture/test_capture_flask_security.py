"""The Flask-Security-Too adapter, driven through a real Flask-Security app's endpoints."""

from __future__ import annotations

import sys
import typing as t

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_security import admin_change_password
from flask_security import change_email_instructions_sent
from flask_security import reset_password_instructions_sent
from flask_security import tf_security_token_sent
from flask_security import user_registered
from flask_security.twofactor import tf_disable

from flask_audit.capture import flask_security as adapter

from .. import flask_security_fixtures as fixtures
from ..conftest import refuse_audit_writes
from ..flask_security_fixtures import add_user
from ..flask_security_fixtures import b32_key
from ..flask_security_fixtures import code
from ..flask_security_fixtures import db
from ..flask_security_fixtures import enable_two_factor
from ..flask_security_fixtures import get_user
from ..flask_security_fixtures import kinds
from ..flask_security_fixtures import login
from ..flask_security_fixtures import MakeSecurityApp
from ..flask_security_fixtures import NEW_PASSWORD
from ..flask_security_fixtures import PASSWORD
from ..flask_security_fixtures import post
from ..flask_security_fixtures import register_key
from ..flask_security_fixtures import security
from ..flask_security_fixtures import sign_in_with_key
from ..flask_security_fixtures import SoftKey
from ..flask_security_fixtures import stored_events
from ..flask_security_fixtures import stored_text
from ..flask_security_fixtures import wrong_code

fs_app = fixtures.fs_app
make_security_app = fixtures.make_security_app

pytestmark = [
    pytest.mark.backends("sqlite", "postgresql", "mariadb"),
    # Flask-Security 5.9 still builds WTForms choices from tuples (WTForms 3.3 deprecates it).
    pytest.mark.filterwarnings("ignore:Passing SelectField choices:DeprecationWarning"),
]


def _events(app: Flask) -> list[tuple[str, str, dict[str, t.Any]]]:
    return [(e.event_type, e.activity, e.details) for e in stored_events(app)]


def _sign_in_with_code(client: FlaskClient, key: str) -> None:
    assert login(client)["tf_required"] is True
    assert post(client, "/tf-validate", code=code(key))["status"] == 200


# -- sign-in and sign-out ---------------------------------------------------------------


def test_password_sign_in_is_one_login_with_its_method(fs_app: Flask) -> None:
    add_user(fs_app)
    assert login(fs_app.test_client())["status"] == 200
    [event] = stored_events(fs_app)
    assert (event.event_type, event.entity, event.action, event.outcome) == (
        "user.login",
        "Login",
        "login",
        "success",
    )
    assert (event.actor_email, event.activity, event.details) == (
        "alice@example.com",
        "Signed in",
        {"method": "password"},
    )
    assert (event.ip, event.target_id) == ("127.0.0.1", None)


def test_a_sign_in_whose_event_cannot_be_stored_does_not_stand(make_security_app: MakeSecurityApp) -> None:
    app = make_security_app(PROPAGATE_EXCEPTIONS=False)  # an error page, as in production
    add_user(app)
    with app.app_context():
        refuse_audit_writes(db.engine)
    client = app.test_client()
    response = client.post(
        "/login", json={"email": "alice@example.com", "password": PASSWORD, "remember": True}
    )
    assert response.status_code == 500
    assert client.get_cookie("remember_token") is None
    assert client.get("/whoami").text != "alice@example.com"


def test_actor_id_is_the_users_primary_key(fs_app: Flask) -> None:
    user_id = add_user(fs_app)
    login(fs_app.test_client())
    assert stored_events(fs_app)[0].actor_id == str(user_id)


def test_wrong_password_is_a_failed_sign_in_of_that_account(fs_app: Flask) -> None:
    add_user(fs_app)
    assert login(fs_app.test_client(), password="not-it-123")["status"] == 400
    [event] = stored_events(fs_app)
    assert (event.event_type, event.outcome, event.actor_email) == (
        "user.login_failed",
        "failure",
        "alice@example.com",
    )
    assert event.details == {"reason": "bad_password", "method": "password", "identity": "alice@example.com"}
    assert event.activity == "Failed sign-in for alice@example.com (bad password)"


def test_unknown_email_is_recorded_though_flask_security_sends_no_signal(fs_app: Flask) -> None:
    assert login(fs_app.test_client(), email="mallory@example.com")["status"] == 400
    [event] = stored_events(fs_app)
    assert (event.event_type, event.actor_id, event.actor_email) == (
        "user.login_failed",
        None,
        "mallory@example.com",
    )
    assert event.details == {
        "reason": "unknown_user",
        "method": "password",
        "identity": "mallory@example.com",
    }
    assert event.activity == "Failed sign-in for mallory@example.com (unknown user)"


def test_unknown_username_is_kept_out_of_the_actor_email(make_security_app: MakeSecurityApp) -> None:
    app = make_security_app(SECURITY_USERNAME_ENABLE=True)
    assert post(app.test_client(), "/login", username="mallory", password=PASSWORD)["status"] == 400
    [event] = stored_events(app)
    assert (event.actor_id, event.actor_email, event.activity) == (
        None,
        None,
        "Failed sign-in for mallory (unknown user)",
    )
    assert event.details == {"reason": "unknown_user", "method": "password", "identity": "mallory"}


def test_a_form_that_fails_its_own_checks_is_no_sign_in_attempt(fs_app: Flask) -> None:
    add_user(fs_app)
    client = fs_app.test_client()
    assert post(client, "/login", email="alice@example.com")["status"] == 400  # no password
    assert post(client, "/login", password=PASSWORD)["status"] == 400  # no email
    assert client.get("/login").status_code == 200
    assert stored_events(fs_app) == []


@pytest.mark.parametrize(
    ("fields", "config", "reason"),
    [
        ({"active": False}, {}, "inactive"),
        ({"confirmed_at": None}, {"SECURITY_CONFIRMABLE": True}, "unconfirmed"),
    ],
)
def test_right_password_on_a_refused_account(
    make_security_app: MakeSecurityApp, fields: dict[str, t.Any], config: dict[str, t.Any], reason: str
) -> None:
    app = make_security_app(**config)
    add_user(app, **fields)
    assert login(app.test_client())["status"] == 400
    [event] = stored_events(app)
    assert (event.event_type, event.actor_email, event.details["reason"]) == (
        "user.login_failed",
        "alice@example.com",
        reason,
    )


def test_logout_comes_from_the_flask_login_adapter_once(fs_app: Flask) -> None:
    add_user(fs_app)
    client = fs_app.test_client()
    login(client)
    assert post(client, "/logout")["status"] == 200
    assert kinds(fs_app) == ["user.login", "user.logout"]
    assert stored_events(fs_app)[1].actor_email == "alice@example.com"


def test_remember_cookie_restore_is_a_sign_in_with_its_method(fs_app: Flask) -> None:
    add_user(fs_app)
    client = fs_app.test_client()
    assert (
        post(client, "/login", email="alice@example.com", password=PASSWORD, remember=True)["status"] == 200
    )
    cookie = client.get_cookie("remember_token")
    assert cookie is not None
    fresh = fs_app.test_client()
    fresh.set_cookie("remember_token", cookie.value)
    assert fresh.get("/whoami").text == "alice@example.com"
    assert [(e.event_type, e.details["method"]) for e in stored_events(fs_app)] == [
        ("user.login", "password"),
        ("user.login", "remember_cookie"),
    ]


# -- two-factor -------------------------------------------------------------------------


def test_two_factor_setup_then_sign_in_with_a_wrong_and_a_right_code(fs_app: Flask) -> None:
    user_id = add_user(fs_app)
    client = fs_app.test_client()
    login(client)
    key, _ = enable_two_factor(fs_app, client)
    post(client, "/logout")
    assert login(client)["tf_required"] is True
    assert kinds(fs_app) == ["user.login", "two_factor.enabled", "user.logout"]  # no login before the code
    assert post(client, "/tf-validate", code=wrong_code(key))["status"] == 400
    assert post(client, "/tf-validate", code=code(key))["status"] == 200
    events = stored_events(fs_app)
    assert _events(fs_app)[1:] == [
        (
            "two_factor.enabled",
            "Enabled two-factor authentication (authenticator app)",
            {"method": "authenticator"},
        ),
        ("user.logout", "Signed out", {}),
        (
            "two_factor.failed",
            "Entered a wrong two-factor code (authenticator app)",
            {"method": "authenticator", "reason": "bad_code"},
        ),
        (
            "two_factor.verified",
            "Verified a two-factor code (authenticator app)",
            {"method": "authenticator"},
        ),
        (
            "user.login",
            "Signed in with two-factor authentication (authenticator app)",
            {"method": "password", "second_factor": "authenticator"},
        ),
    ]
    assert (events[1].target_type, events[1].target_id) == ("user", str(user_id))
    assert {e.actor_email for e in events} == {"alice@example.com"}
    assert [e.outcome for e in events[3:]] == ["failure", "success", "success"]


def test_two_factor_required_set_up_inside_the_sign_in(make_security_app: MakeSecurityApp) -> None:
    app = make_security_app(SECURITY_TWO_FACTOR_REQUIRED=True)
    add_user(app)
    client = app.test_client()
    assert login(client)["tf_required"] is True
    setup = post(client, "/tf-setup", setup="authenticator")
    assert setup["status"] == 200, setup
    assert post(client, "/tf-validate", code=code(setup["tf_authr_b32key"]))["status"] == 200
    assert kinds(app) == ["two_factor.enabled", "two_factor.verified", "user.login"]
    assert stored_events(app)[2].details == {"method": "password", "second_factor": "authenticator"}


def test_two_factor_disabled_by_the_user(fs_app: Flask) -> None:
    add_user(fs_app)
    client = fs_app.test_client()
    login(client)
    enable_two_factor(fs_app, client)
    assert post(client, "/tf-setup", setup="disable")["status"] == 200
    assert _events(fs_app)[-1] == (
        "two_factor.disabled",
        "Disabled two-factor authentication (authenticator app)",
        {"method": "authenticator"},
    )
    assert stored_events(fs_app)[-1].action == "delete"


def test_changing_the_two_factor_method_names_both(make_security_app: MakeSecurityApp) -> None:
    """The emailed code (``tf_security_token_sent``) is no event and is never stored."""
    app = make_security_app(SECURITY_TWO_FACTOR_ENABLED_METHODS=["email", "authenticator"])
    add_user(app)
    client = app.test_client()
    login(client)
    mailed: list[str] = []
    with tf_security_token_sent.connected_to(lambda s, token, **k: mailed.append(token), sender=app):
        setup = post(client, "/tf-setup", setup="email")
    assert post(client, f"/tf-setup/{setup['tf_state_token']}", code=mailed[0])["status"] == 200
    enable_two_factor(app, client)
    assert _events(app)[1:] == [
        ("two_factor.enabled", "Enabled two-factor authentication (email)", {"method": "email"}),
        (
            "two_factor.enabled",
            "Changed two-factor authentication from email to authenticator app",
            {"method": "authenticator", "previous_method": "email"},
        ),
    ]
    assert mailed[0] not in stored_text(app, all_columns=False)


def test_recovery_code_as_second_factor(make_security_app: MakeSecurityApp) -> None:
    app = make_security_app(SECURITY_MULTI_FACTOR_RECOVERY_CODES=True)
    add_user(app)
    client = app.test_client()
    login(client)
    enable_two_factor(app, client)
    codes = post(client, "/mf-recovery-codes")["recovery_codes"]
    post(client, "/logout")
    assert login(client)["tf_required"] is True
    assert post(client, "/mf-recovery", code="0000-0000-0000")["status"] == 400
    assert post(client, "/mf-recovery", code=codes[0])["status"] == 200
    assert _events(app)[-3:] == [
        (
            "two_factor.failed",
            "Entered a wrong two-factor code (recovery code)",
            {"method": "recovery_code", "reason": "bad_code"},
        ),
        (
            "two_factor.verified",
            "Verified two-factor authentication (recovery code)",
            {"method": "recovery_code"},
        ),
        (
            "user.login",
            "Signed in with two-factor authentication (recovery code)",
            {"method": "password", "second_factor": "recovery_code"},
        ),
    ]
    assert codes[0] not in stored_text(app)


def test_the_apps_own_login_view_may_name_its_method(fs_app: Flask) -> None:
    from flask_security import login_user

    from flask_audit.capture.flask_login import mark_login

    @fs_app.post("/sso-callback")
    def sso_callback() -> str:
        user = security(fs_app).datastore.find_user(email="alice@example.com")
        assert user is not None
        mark_login("sso", idp="https://idp.example.com")
        login_user(user)
        db.session.commit()
        return "ok"

    @fs_app.post("/plain-login")
    def plain_login() -> str:
        user = security(fs_app).datastore.find_user(email="alice@example.com")
        assert user is not None
        login_user(user)
        return "ok"

    add_user(fs_app)
    assert fs_app.test_client().post("/sso-callback").status_code == 200
    assert fs_app.test_client().post("/plain-login").status_code == 200
    assert [e.details for e in stored_events(fs_app)] == [
        {"method": "sso", "idp": "https://idp.example.com"},
        {"method": "password"},
    ]


# -- WebAuthn ---------------------------------------------------------------------------


def test_security_key_as_second_factor(fs_app: Flask) -> None:
    add_user(fs_app)
    client = fs_app.test_client()
    login(client)
    key = SoftKey()
    assert register_key(client, key, "YubiKey", "secondary")["status"] == 200
    post(client, "/logout")
    assert login(client)["tf_method"] == "webauthn"
    assert sign_in_with_key(client, key, tamper=True)["status"] == 400
    assert sign_in_with_key(client, key)["status"] == 200
    assert post(client, "/wan-delete", name="YubiKey")["status"] == 200
    assert _events(fs_app)[1:6] == [
        (
            "two_factor.enabled",
            "Registered security key 'YubiKey' for two-factor authentication",
            {"method": "webauthn", "key_name": "YubiKey"},
        ),
        ("user.logout", "Signed out", {}),
        (
            "two_factor.failed",
            "Failed two-factor authentication with a security key",
            {"method": "webauthn", "reason": "bad_passkey"},
        ),
        ("two_factor.verified", "Verified two-factor authentication (security key)", {"method": "webauthn"}),
        (
            "user.login",
            "Signed in with two-factor authentication (security key)",
            {"method": "password", "second_factor": "webauthn"},
        ),
    ]
    assert _events(fs_app)[6:] == [
        (
            "two_factor.disabled",
            "Removed security key 'YubiKey' for two-factor authentication",
            {"method": "webauthn", "key_name": "YubiKey"},
        )
    ]


def test_passkey_as_first_factor(fs_app: Flask) -> None:
    add_user(fs_app)
    client = fs_app.test_client()
    login(client)
    passkey = SoftKey()
    assert register_key(client, passkey, "Phone", "first")["status"] == 200
    post(client, "/logout")
    assert sign_in_with_key(client, passkey, identity="alice@example.com")["status"] == 200
    assert post(client, "/wan-delete", name="Phone")["status"] == 200
    assert _events(fs_app)[1:] == [
        (
            "user.signin_method_added",
            "Added sign-in method: passkey",
            {"methods": ["webauthn"], "key_name": "Phone"},
        ),
        ("user.logout", "Signed out", {}),
        ("user.login", "Signed in with a passkey", {"method": "webauthn"}),
        (
            "user.signin_method_removed",
            "Removed sign-in method: passkey",
            {"methods": ["webauthn"], "key_name": "Phone"},
        ),
    ]


# -- unified sign-in --------------------------------------------------------------------


def test_unified_sign_in(fs_app: Flask) -> None:
    add_user(fs_app)
    client = fs_app.test_client()
    assert post(client, "/us-signin", identity="alice@example.com", passcode=PASSWORD)["status"] == 200
    setup = post(client, "/us-setup", chosen_method="authenticator")
    assert post(client, f"/us-setup/{setup['state']}", passcode=code(setup["authr_b32key"]))["status"] == 200
    post(client, "/logout")
    assert post(client, "/us-signin", identity="nobody@example.com", passcode=PASSWORD)["status"] == 400
    assert post(client, "/us-signin", identity="alice@example.com", passcode="wrong-one-1")["status"] == 400
    passcode = code(setup["authr_b32key"])
    assert post(client, "/us-signin", identity="alice@example.com", passcode=passcode)["status"] == 200
    assert post(client, "/us-setup", delete_method=["authenticator"])["status"] == 200
    assert _events(fs_app) == [
        ("user.login", "Signed in", {"method": "password", "flow": "unified_signin"}),
        (
            "user.signin_method_added",
            "Added sign-in method: authenticator app",
            {"methods": ["authenticator"], "flow": "unified_signin"},
        ),
        ("user.logout", "Signed out", {}),
        (
            "user.login_failed",
            "Failed sign-in for nobody@example.com (unknown user)",
            {
                "reason": "unknown_user",
                "method": "passcode",
                "identity": "nobody@example.com",
                "flow": "unified_signin",
            },
        ),
        (  # a known account is named under the same key
            "user.login_failed",
            "Failed sign-in for alice@example.com (bad passcode)",
            {
                "reason": "bad_passcode",
                "method": "passcode",
                "identity": "alice@example.com",
                "flow": "unified_signin",
            },
        ),
        (
            "user.login",
            "Signed in with an authenticator app code",
            {"method": "authenticator", "flow": "unified_signin"},
        ),
        (
            "user.signin_method_removed",
            "Removed sign-in method: authenticator app",
            {"methods": ["authenticator"], "flow": "unified_signin"},
        ),
    ]


# -- passwords and accounts -------------------------------------------------------------


def test_password_change_is_not_a_second_login(fs_app: Flask) -> None:
    user_id = add_user(fs_app)
    client = fs_app.test_client()
    login(client)
    reply = post(
        client, "/change", password=PASSWORD, new_password=NEW_PASSWORD, new_password_confirm=NEW_PASSWORD
    )
    assert reply["status"] == 200, reply
    assert _events(fs_app) == [
        ("user.login", "Signed in", {"method": "password"}),
        ("user.password_changed", "Changed password", {"method": "change"}),
    ]
    change = stored_events(fs_app)[1]
    assert (change.actor_email, change.target_type, change.target_id) == (
        "alice@example.com",
        "user",
        str(user_id),
    )


def test_password_change_with_two_factor_is_not_a_second_login(fs_app: Flask) -> None:
    add_user(fs_app)
    client = fs_app.test_client()
    login(client)
    key, _ = enable_two_factor(fs_app, client)
    post(client, "/logout")
    _sign_in_with_code(client, key)
    post(client, "/change", password=PASSWORD, new_password=NEW_PASSWORD, new_password_confirm=NEW_PASSWORD)
    assert kinds(fs_app).count("user.login") == 2  # the first sign-in and the one with a code
    assert kinds(fs_app)[-1] == "user.password_changed"


@pytest.mark.parametrize("auto_login", [False, True])
@pytest.mark.filterwarnings("ignore:The auto-login after successful password reset:DeprecationWarning")
def test_password_reset_by_email_link(make_security_app: MakeSecurityApp, auto_login: bool) -> None:
    app = make_security_app(SECURITY_AUTO_LOGIN_AFTER_RESET=auto_login)
    add_user(app)
    client = app.test_client()
    tokens: list[str] = []
    with reset_password_instructions_sent.connected_to(
        lambda s, token, **k: tokens.append(token), sender=app
    ):
        assert post(client, "/reset", email="alice@example.com")["status"] == 200
    assert stored_events(app) == []  # asking for a link changes nothing
    reply = post(client, f"/reset/{tokens[0]}", password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)
    assert reply["status"] == 200, reply
    expected = [("user.password_changed", "Reset password by email link", {"method": "reset"})]
    if auto_login:
        expected.append(("user.login", "Signed in after resetting the password", {"method": "reset"}))
    assert _events(app) == expected
    assert stored_events(app)[0].actor_email == "alice@example.com"
    assert tokens[0] not in stored_text(app)


def test_admin_changes_a_password_and_resets_two_factor(fs_app: Flask) -> None:
    @fs_app.post("/admin/reset-access/<int:user_id>")
    def reset_access(user_id: int) -> str:
        user = security(fs_app).datastore.find_user(id=user_id)
        assert user is not None
        admin_change_password(user, NEW_PASSWORD, notify=False)
        tf_disable(user)
        db.session.commit()
        return "ok"

    alice_id = add_user(fs_app)
    add_user(fs_app, "root@example.com")
    alice = fs_app.test_client()
    login(alice)
    enable_two_factor(fs_app, alice)
    admin = fs_app.test_client()
    login(admin, "root@example.com")
    assert admin.post(f"/admin/reset-access/{alice_id}").status_code == 200
    with fs_app.app_context():  # as a CLI command would
        alice_user = security(fs_app).datastore.find_user(id=alice_id)
        assert alice_user is not None
        admin_change_password(alice_user, PASSWORD, notify=False)
        db.session.commit()
    changed, reset, by_cli = stored_events(fs_app)[-3:]
    assert (changed.event_type, changed.actor_email, changed.target_id) == (
        "user.password_changed",
        "root@example.com",
        str(alice_id),
    )
    assert changed.activity == "Changed the password of alice@example.com"
    assert changed.details == {"method": "admin", "by_admin": True, "user": "alice@example.com"}
    assert (reset.event_type, reset.actor_email, reset.activity) == (
        "two_factor.reset",
        "root@example.com",
        "Reset two-factor authentication (authenticator app) of alice@example.com",
    )
    assert (by_cli.event_type, by_cli.actor_id, by_cli.details["method"]) == (
        "user.password_changed",
        "system",
        "admin",
    )
    assert kinds(fs_app).count("user.login") == 2


def test_registration_creates_the_user_and_signs_in_once(fs_app: Flask) -> None:
    client = fs_app.test_client()
    reply = post(client, "/register", email="bob@example.com", password=PASSWORD, password_confirm=PASSWORD)
    assert reply["status"] == 200, reply
    created, signed_in = stored_events(fs_app)
    assert (created.event_type, created.entity, created.action) == ("user.created", "User", "create")
    assert (created.activity, created.details, created.actor_email) == (
        "Signed up as bob@example.com",
        {"method": "registration"},
        "bob@example.com",
    )
    assert created.target_id == str(get_user(fs_app, "bob@example.com").id)
    assert (signed_in.event_type, signed_in.details) == ("user.login", {"method": "register"})


def test_email_confirmed_and_changed(make_security_app: MakeSecurityApp) -> None:
    app = make_security_app(SECURITY_CONFIRMABLE=True, SECURITY_CHANGE_EMAIL=True)
    client = app.test_client()
    confirm: list[str] = []
    with user_registered.connected_to(
        lambda s, confirmation_token, **k: confirm.append(confirmation_token), sender=app
    ):
        post(client, "/register", email="bob@example.com", password=PASSWORD, password_confirm=PASSWORD)
    assert client.get(f"/confirm/{confirm[0]}").status_code == 302
    login(client, "bob@example.com")
    change: list[str] = []
    with change_email_instructions_sent.connected_to(lambda s, token, **k: change.append(token), sender=app):
        assert post(client, "/change-email", email="robert@example.com")["status"] == 200
    assert client.get(f"/change-email/{change[0]}").status_code == 302
    # Confirming calls flask_login.logout_user() for the anonymous visitor: see the next test.
    assert [event for event in _events(app) if event[0] != "user.logout"] == [
        ("user.created", "Signed up as bob@example.com", {"method": "registration"}),
        ("user.email_confirmed", "Confirmed the email address bob@example.com", {}),
        ("user.login", "Signed in", {"method": "password"}),
        (
            "user.email_changed",
            "Changed email address from bob@example.com to robert@example.com",
            {"old_email": "bob@example.com", "new_email": "robert@example.com"},
        ),
    ]
    confirmed, changed = (e for e in stored_events(app) if e.event_type.startswith("user.email"))
    assert (confirmed.entity, confirmed.action, changed.entity, changed.action) == (
        "User",
        "update",
        "User",
        "update",
    )
    text = stored_text(app)
    assert confirm[0] not in text and change[0] not in text


def test_confirming_while_signed_out_is_no_logout(make_security_app: MakeSecurityApp) -> None:
    app = make_security_app(SECURITY_CONFIRMABLE=True)
    client = app.test_client()
    confirm: list[str] = []
    with user_registered.connected_to(
        lambda s, confirmation_token, **k: confirm.append(confirmation_token), sender=app
    ):
        post(client, "/register", email="bob@example.com", password=PASSWORD, password_confirm=PASSWORD)
    assert client.get(f"/confirm/{confirm[0]}").status_code == 302
    assert kinds(app) == ["user.created", "user.email_confirmed"]


# -- wiring -----------------------------------------------------------------------------


def test_security_set_up_before_audit_and_connect_called_again(make_security_app: MakeSecurityApp) -> None:
    app = make_security_app(security_first=True)
    adapter.connect(app, app.extensions["audit"])
    add_user(app)
    client = app.test_client()
    login(client, email="mallory@example.com")
    login(client)
    assert kinds(app) == ["user.login_failed", "user.login"]


def test_connect_does_nothing_without_flask_security(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    """Needs no database; ``backend`` only keeps it among the module's selected tests."""
    monkeypatch.setitem(sys.modules, "flask_security", None)  # as if it were not installed
    app = Flask(__name__)
    adapter.connect(app, t.cast(t.Any, None))
    assert "audit.flask_security" not in app.extensions


def test_no_secret_reaches_any_column(make_security_app: MakeSecurityApp) -> None:
    """Passwords, TOTP keys and secrets, codes, and every token of every flow stay out."""
    app = make_security_app(SECURITY_MULTI_FACTOR_RECOVERY_CODES=True)
    add_user(app)
    client = app.test_client()
    login(client, password="Wrong-Guess-Pass-9")
    login(client)
    key, setup = enable_two_factor(app, client)
    secret = get_user(app).tf_totp_secret
    post(client, "/logout")
    bad = wrong_code(key)
    assert login(client)["tf_required"] is True
    post(client, "/tf-validate", code=bad)
    good = code(key)
    post(client, "/tf-validate", code=good)
    post(client, "/change", password=PASSWORD, new_password=NEW_PASSWORD, new_password_confirm=NEW_PASSWORD)
    us = post(client, "/us-setup", chosen_method="authenticator")
    post(client, f"/us-setup/{us['state']}", passcode=code(us["authr_b32key"]))
    session_cookie = client.get_cookie("session")
    post(client, "/logout")
    assert b32_key(app) == key
    everything = stored_text(app)
    for value in [
        PASSWORD,
        NEW_PASSWORD,
        "Wrong-Guess-Pass-9",
        key,
        secret,
        setup["tf_state_token"],
        us["state"],
    ]:
        assert value not in everything
    assert session_cookie is not None and session_cookie.value not in everything
    typed = stored_text(app, all_columns=False)  # codes are short: skip ids, times and request ids
    for value in [bad, good]:
        assert value not in typed
    assert kinds(app).count("user.login") == 2
