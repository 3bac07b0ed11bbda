"""Flask-Security-Too datastore calls that no signal announces: roles changed from the role
side, and two-factor set or reset by the app's own code (``tf_set``, ``tf_reset``)."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask

from .. import flask_security_fixtures as fixtures
from ..conftest import stored
from ..flask_security_fixtures import add_user
from ..flask_security_fixtures import db
from ..flask_security_fixtures import enable_two_factor
from ..flask_security_fixtures import login
from ..flask_security_fixtures import post
from ..flask_security_fixtures import security
from ..flask_security_fixtures import stored_text
from ..flask_security_fixtures import User

fs_app = fixtures.fs_app
make_security_app = fixtures.make_security_app

pytestmark = [
    # Flask-Security 5.9 still builds WTForms choices from tuples (WTForms 3.3 deprecates it).
    pytest.mark.filterwarnings("ignore:Passing SelectField choices:DeprecationWarning"),
]

BOB = "bob@example.com"
ROOT = "root@example.com"


def _summary(app: Flask) -> list[tuple[str, str, dict[str, t.Any], str | None]]:
    return [(e.event_type, e.activity, e.details, e.actor_email) for e in stored(app)]


def _user(email: str) -> t.Any:
    return db.session.scalars(sa.select(User).where(User.email == email)).one()


def _role(app: Flask, name: str) -> t.Any:
    role = security(app).datastore.find_role(name)
    assert role is not None
    return role


def _id_of(app: Flask, email: str) -> int:
    with app.app_context():
        found = int(_user(email).id)
        db.session.remove()
    return found


def _new_secret(app: Flask) -> str:
    return str(security(app).totp_factory.generate_totp_secret())


# -- roles from the role side ------------------------------------------------------------


def test_users_added_to_and_removed_from_a_role(fs_app: Flask) -> None:
    """``role.users`` is the backref of ``user.roles``: the same whole before/after sets."""
    bob_id = add_user(fs_app, BOB)
    with fs_app.app_context():
        datastore = security(fs_app).datastore
        for name in ("admin", "member"):
            datastore.create_role(name=name)
        db.session.commit()
        _role(fs_app, "member").users.append(_user(BOB))
        db.session.commit()
        _role(fs_app, "admin").users.append(_user(BOB))
        db.session.commit()
        _role(fs_app, "member").users.remove(_user(BOB))
        db.session.commit()
        _role(fs_app, "admin").users.append(_user(BOB))  # already there: no change
        db.session.commit()
        db.session.remove()
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
    assert {(e.entity, e.target_type, e.target_id) for e in stored(fs_app)} == {("Role", "user", str(bob_id))}


def test_role_side_and_user_side_in_one_transaction_make_one_event(fs_app: Flask) -> None:
    add_user(fs_app, BOB)
    with fs_app.app_context():
        datastore = security(fs_app).datastore
        for name in ("admin", "member"):
            datastore.create_role(name=name)
        db.session.commit()
        bob = _user(BOB)
        _role(fs_app, "member").users.append(bob)
        db.session.flush()
        datastore.add_role_to_user(bob, "admin")
        db.session.commit()
        db.session.remove()
    assert [e.details for e in stored(fs_app)] == [{"before": [], "after": ["admin", "member"]}]


# -- two-factor through the datastore ---------------------------------------------------


def test_tf_set_and_tf_reset_by_the_apps_code(fs_app: Flask) -> None:
    """Set up beforehand, re-keyed, switched to another method, reset: no signal for any."""
    bob_id = add_user(fs_app, BOB)
    with fs_app.app_context():
        datastore = security(fs_app).datastore
        datastore.tf_set(_user(BOB), "authenticator", totp_secret=_new_secret(fs_app))
        db.session.commit()
        datastore.tf_set(_user(BOB), "authenticator")  # nothing changes: no event
        db.session.commit()
        datastore.tf_set(_user(BOB), "authenticator", totp_secret=_new_secret(fs_app))
        db.session.commit()
        datastore.tf_set(_user(BOB), "sms", phone="+15555550100")
        db.session.commit()
        datastore.tf_reset(_user(BOB))
        db.session.commit()
        datastore.tf_reset(_user(BOB))  # already off: no event
        db.session.commit()
        db.session.remove()
    assert _summary(fs_app) == [
        (
            "two_factor.enabled",
            "Enabled two-factor authentication (authenticator app) for bob@example.com",
            {"method": "authenticator", "user": BOB},
            "system",
        ),
        (
            "two_factor.enabled",
            "Set up two-factor authentication again with a new key (authenticator app) for bob@example.com",
            {"method": "authenticator", "rekeyed": True, "user": BOB},
            "system",
        ),
        (
            "two_factor.enabled",
            "Changed two-factor authentication from authenticator app to SMS for bob@example.com",
            {"method": "sms", "previous_method": "authenticator", "user": BOB},
            "system",
        ),
        (
            "two_factor.reset",
            "Reset two-factor authentication (SMS) of bob@example.com",
            {"method": "sms", "user": BOB},
            "system",
        ),
    ]
    events = stored(fs_app)
    assert {(e.entity, e.target_type, e.target_id) for e in events} == {
        ("Two-factor authentication", "user", str(bob_id))
    }
    assert [e.action for e in events] == ["create", "create", "create", "update"]
    assert "+15555550100" not in stored_text(fs_app)


def test_tf_set_by_a_signed_in_admin_and_by_the_user(fs_app: Flask) -> None:
    @fs_app.post("/members/<int:user_id>/require-2fa")
    def require_two_factor(user_id: int) -> str:
        datastore = security(fs_app).datastore
        user = datastore.find_user(id=user_id)
        assert user is not None
        datastore.tf_set(user, "authenticator", totp_secret=_new_secret(fs_app))
        db.session.commit()
        return "ok"

    @fs_app.post("/me/drop-2fa")
    def drop_two_factor() -> str:
        from flask_security import current_user

        security(fs_app).datastore.tf_reset(current_user)
        db.session.commit()
        return "ok"

    add_user(fs_app, ROOT)
    bob_id = add_user(fs_app, BOB)
    root = fs_app.test_client()
    assert login(root, ROOT)["status"] == 200
    assert root.post(f"/members/{bob_id}/require-2fa").status_code == 200
    bob = fs_app.test_client()
    assert login(bob, BOB)["tf_required"] is True  # the app turned it on for bob
    assert root.post("/me/drop-2fa").status_code == 200  # root has none: no event
    enable_two_factor(fs_app, root)
    assert root.post("/me/drop-2fa").status_code == 200
    assert [
        (e.event_type, e.activity, e.details, e.actor_email, e.target_id)
        for e in stored(fs_app)
        if e.event_type.startswith("two_factor.")
    ] == [
        (
            "two_factor.enabled",
            "Enabled two-factor authentication (authenticator app) for bob@example.com",
            {"method": "authenticator", "user": BOB},
            ROOT,
            str(bob_id),
        ),
        (  # through Flask-Security's own view: its signal, one event
            "two_factor.enabled",
            "Enabled two-factor authentication (authenticator app)",
            {"method": "authenticator"},
            ROOT,
            str(_id_of(fs_app, ROOT)),
        ),
        (
            "two_factor.disabled",
            "Disabled two-factor authentication (authenticator app)",
            {"method": "authenticator"},
            ROOT,
            str(_id_of(fs_app, ROOT)),
        ),
    ]


def test_a_rolled_back_tf_set_leaves_no_event(fs_app: Flask) -> None:
    add_user(fs_app, BOB)
    with fs_app.app_context():
        datastore = security(fs_app).datastore
        datastore.tf_set(_user(BOB), "authenticator", totp_secret=_new_secret(fs_app))
        db.session.flush()
        db.session.rollback()
        savepoint = db.session.begin_nested()
        datastore.tf_set(_user(BOB), "authenticator", totp_secret=_new_secret(fs_app))
        db.session.flush()
        savepoint.rollback()  # rolled back inside the transaction: not counted
        db.session.commit()
        db.session.remove()
    assert stored(fs_app) == []


def test_the_views_own_set_up_and_disable_are_one_event_each(fs_app: Flask) -> None:
    """Flask-Security's views call ``tf_set`` / ``tf_reset`` and then send their signal."""
    add_user(fs_app)
    client = fs_app.test_client()
    login(client)
    enable_two_factor(fs_app, client)
    enable_two_factor(fs_app, client)
    assert post(client, "/tf-setup", setup="disable")["status"] == 200
    assert [(e.event_type, e.details) for e in stored(fs_app)] == [
        ("user.login", {"method": "password"}),
        ("two_factor.enabled", {"method": "authenticator"}),
        ("two_factor.enabled", {"method": "authenticator", "rekeyed": True}),
        ("two_factor.disabled", {"method": "authenticator"}),
    ]
