"""The host app the tests drive: Flask-Login users on the app's own declarative base."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import abort
from flask import Flask
from flask import request
from flask_login import login_user
from flask_login import LoginManager
from flask_login import logout_user
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy

from flask_audit import Audit
from flask_audit import signals


class Base(sa_orm.DeclarativeBase):
    pass


class User(UserMixin, Base):
    __tablename__ = "app_user"

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    email: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(255), unique=True)
    password: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(255))
    is_admin: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=False)
    role: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(32), default="member")
    tenant: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(64))


class Team(Base):
    __tablename__ = "app_team"

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    name: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(255))


def create_app(**config: t.Any) -> Flask:
    """A small app whose ``/login`` and ``/logout`` never commit.

    ``TEST_TRACK_MODELS=True`` tracks ``Team.name`` and ``User.email``/``User.role``.
    """
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", TESTING=True, WTF_CSRF_ENABLED=False)
    app.config.update(config)
    db = SQLAlchemy(app, model_class=Base)
    audit = Audit(app, db=db)
    if app.config.get("TEST_TRACK_MODELS"):
        audit.track(Team, entity="Team", fields=["name"])
        audit.track(User, entity="User", fields=["email", "role"])
    login = LoginManager(app)

    @login.user_loader
    def load_user(user_id: str) -> User | None:
        return db.session.get(User, int(user_id))

    @app.post("/login")
    def login_view() -> str:
        email = request.form["email"]
        user = db.session.scalar(sa.select(User).where(User.email == email))
        if user is None or user.password != request.form["password"]:
            reason = "unknown_user" if user is None else "bad_password"
            signals.login_failed.send(
                app, email=email, reason=reason, user=user, password=request.form["password"]
            )
            abort(401)
        login_user(user, remember=bool(request.form.get("remember")))
        return "ok"

    @app.post("/record/<event_type>")
    def record_view(event_type: str) -> str:
        event = t.cast(Audit, app.extensions["audit"]).record(event_type)
        return str(event.id)

    @app.post("/logout")
    def logout_view() -> str:
        logout_user()
        return "bye"

    return app


def add_user(app: Flask, email: str, *, is_admin: bool = False, tenant: str | None = None) -> int:
    """Store a user with password ``"pw"`` and return its id."""
    db = t.cast(SQLAlchemy, app.extensions["sqlalchemy"])
    with app.app_context():
        user = User(email=email, password="pw", is_admin=is_admin, tenant=tenant)
        db.session.add(user)
        db.session.commit()
        user_id = user.id
        db.session.remove()
    return user_id
