from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import Blueprint
from flask import current_app
from flask import Flask
from flask import request
from flask_login import login_user
from flask_login import LoginManager
from flask_login import logout_user
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy

from flask_audit import Audit
from flask_audit import signals
from flask_audit.state import audit_state
from flask_audit.testing import record_events

from ..apps import add_user
from ..apps import Base
from ..conftest import db
from ..conftest import MakeApp
from ..conftest import refuse_audit_writes
from ..conftest import stored


def _login(app: Flask, email: str, password: str = "pw", **form: str) -> int:
    client = app.test_client()
    return client.post("/login", data={"email": email, "password": password, **form}).status_code


def test_sign_in_and_out_are_recorded_though_the_handlers_never_commit(app: Flask) -> None:
    user_id = add_user(app, "alice@example.com")
    client = app.test_client()
    with record_events(app) as seen:
        assert client.post("/login", data={"email": "alice@example.com", "password": "pw"}).status_code == 200
        assert client.post("/logout").status_code == 200
    login, logout = stored(app)
    assert [e.id for e in seen] == [login.id, logout.id]
    assert (login.event_type, login.entity, login.action, login.outcome) == (
        "user.login",
        "Login",
        "login",
        "success",
    )
    assert (login.actor_id, login.actor_email, login.details) == (
        str(user_id),
        "alice@example.com",
        {"method": "password"},
    )
    assert login.activity == "Signed in"
    assert (logout.event_type, logout.action, logout.actor_email) == (
        "user.logout",
        "logout",
        "alice@example.com",
    )


def test_wrong_password_is_a_failed_sign_in_without_the_password(app: Flask) -> None:
    add_user(app, "alice@example.com")
    assert _login(app, "alice@example.com", "guess-123") == 401
    [event] = stored(app)
    assert (event.event_type, event.outcome, event.actor_email) == (
        "user.login_failed",
        "failure",
        "alice@example.com",
    )
    assert event.activity == "Failed sign-in for alice@example.com (bad password)"
    assert event.details == {"reason": "bad_password", "email": "alice@example.com"}
    assert "guess-123" not in repr(event.details)


def test_unknown_email_is_recorded_too(app: Flask) -> None:
    assert _login(app, "mallory@example.com") == 401
    [event] = stored(app)
    assert (event.event_type, event.actor_id, event.actor_email) == (
        "user.login_failed",
        None,
        "mallory@example.com",
    )
    assert event.details["reason"] == "unknown_user"


def test_remember_cookie_restore_is_a_sign_in_with_its_method(app: Flask) -> None:
    add_user(app, "alice@example.com")
    client = app.test_client()
    client.post("/login", data={"email": "alice@example.com", "password": "pw", "remember": "1"})
    cookie = client.get_cookie("remember_token")
    assert cookie is not None
    fresh = app.test_client()
    fresh.set_cookie("remember_token", cookie.value)
    fresh.post("/record/team.created")
    methods = [(e.event_type, e.details.get("method")) for e in stored(app)]
    assert methods == [("user.login", "password"), ("user.login", "remember_cookie"), ("team.created", None)]


@pytest.mark.backends("sqlite")
def test_mark_login_names_the_method(app: Flask) -> None:
    from flask_audit.capture.flask_login import mark_login

    from ..apps import User
    from ..conftest import db

    user_id = add_user(app, "alice@example.com")
    with app.test_request_context():
        mark_login("sso", idp="https://idp.example.com")
        login_user(db(app).session.get_one(User, user_id))
    [event] = stored(app)
    assert event.details == {"method": "sso", "idp": "https://idp.example.com"}
    assert event.activity == "Signed in with SSO"


@pytest.mark.parametrize("remember", ["", "on"])
def test_a_sign_in_whose_event_cannot_be_stored_does_not_stand(make_app: MakeApp, remember: str) -> None:
    """Under ``raise``, Flask still saves the session of the error response: the sign-in must
    be taken back, or the browser leaves signed in with nothing recorded."""
    app = make_app(PROPAGATE_EXCEPTIONS=False)  # the production path: an error page, not a raise
    add_user(app, "ann@example.com")
    with app.app_context():
        refuse_audit_writes(db(app).engine)
    client = app.test_client()
    form = {"email": "ann@example.com", "password": "pw", "remember": remember}
    response = client.post("/login", data=form)
    assert response.status_code == 500
    assert "remember_token" not in " ".join(response.headers.getlist("Set-Cookie"))
    with client.session_transaction() as session:
        assert "_user_id" not in session and "_remember" not in session


# -- a plain Flask-Login app whose users have a username and no email ---------------------


class Person(UserMixin, Base):
    __tablename__ = "app_person"

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    username: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64), unique=True)
    password: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64))


def _username_app(db_url: str, spool: str) -> Flask:
    """Flask-Login's documented shape: a blueprint's login view, ``login_user``, and the one
    line of glue that Flask-Login cannot give, the failed sign-in signal."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", TESTING=True, SQLALCHEMY_DATABASE_URI=db_url, AUDIT_SPOOL_PATH=spool)
    database = SQLAlchemy(app, model_class=Base)
    Audit(app, db=database)
    login_manager = LoginManager(app)
    login_manager.user_loader(lambda user_id: database.session.get(Person, int(user_id)))
    auth = Blueprint("auth", __name__)

    @auth.post("/login")
    def login() -> tuple[str, int]:
        username = request.form["username"]
        person = database.session.scalar(sa.select(Person).where(Person.username == username))
        if person is None or person.password != request.form["password"]:
            reason = "unknown_user" if person is None else "bad_password"
            signals.login_failed.send(current_app, email=username, reason=reason, user=person)
            return "no", 401
        login_user(person)
        return "ok", 200

    @auth.post("/logout")
    def logout() -> str:
        logout_user()
        return "bye"

    app.register_blueprint(auth)
    with app.app_context():
        database.create_all()
        database.session.add(Person(username="priya", password="pw"))
        database.session.commit()
    return app


def test_username_only_users_and_a_blueprint_sending_with_current_app(db_url: str, tmp_path: t.Any) -> None:
    app = _username_app(db_url, str(tmp_path / "spool.jsonl"))
    try:
        client = app.test_client()
        assert client.post("/login", data={"username": "priya", "password": "guess"}).status_code == 401
        assert client.post("/login", data={"username": "mallory", "password": "pw"}).status_code == 401
        assert client.post("/login", data={"username": "priya", "password": "pw"}).status_code == 200
        assert client.post("/logout").status_code == 200
        events = stored(app)
        assert [(e.event_type, e.actor_email, e.activity, e.details) for e in events] == [
            (
                "user.login_failed",
                "priya",
                "Failed sign-in for priya (bad password)",
                {"reason": "bad_password", "email": "priya"},
            ),
            (
                "user.login_failed",
                "mallory",
                "Failed sign-in for mallory (unknown user)",
                {"reason": "unknown_user", "email": "mallory"},
            ),
            ("user.login", "priya", "Signed in", {"method": "password"}),
            ("user.logout", "priya", "Signed out", {}),
        ]
        with app.app_context():
            priya = db(app).session.scalar(sa.select(Person.id))
            db(app).session.remove()
        assert [e.actor_id for e in events] == [str(priya), None, str(priya), str(priya)]
    finally:
        with app.app_context():
            db(app).session.remove()
            audit_state(app).writer.dispose()
            db(app).drop_all()
            db(app).engine.dispose()
