"""The demo app under test: built on the module's database, with a few known people.

``demo`` builds ``demo_app.create_app`` on the ``db_url`` backend with its tables and an
admin (Ada, Engineering), a member (Ben, Engineering and Design) and a member with TOTP
enrolled (Cleo). CSRF protection stays on: :func:`form_token` reads the token from a page
as a browser would. ``serve`` runs an app in a werkzeug server thread for the browser.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import dataclasses
import datetime as dt
import re
import threading
import typing as t

import pyotp
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import make_server

import demo_app
from demo_app.extensions import db
from demo_app.models import Team
from demo_app.models import team_member
from demo_app.models import User
from flask_audit import AuditEvent

PASSWORD = "correct horse battery"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclasses.dataclass
class Demo:
    """The app and the ids of its people and teams."""

    app: Flask
    ids: dict[str, int]
    totp_secret: str

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def sign_in(self, email: str, password: str = PASSWORD) -> FlaskClient:
        """A client signed in with a password (for users without a second factor)."""
        client = self.client()
        response = post(client, "/login", {"email": email, "password": password})
        assert response.status_code == 302, response.text
        return client

    def events(self, *types: str) -> list[AuditEvent]:
        """Stored events of these types (all but ``audit.enabled`` by default), oldest first."""
        with self.app.app_context():
            query = sa.select(AuditEvent).order_by(AuditEvent.id)
            query = query.where(AuditEvent.event_type.in_(types)) if types else query
            rows = list(db.session.scalars(query.where(AuditEvent.event_type != "audit.enabled")))
            db.session.remove()
        return rows

    def user(self, email: str) -> User | None:
        with self.app.app_context():
            user = db.session.scalar(sa.select(User).where(User.email == email))
            if user is not None:
                db.session.expunge(user)
            db.session.remove()
        return user


def form_token(client: FlaskClient, page: str = "/login") -> str:
    """The CSRF token a form on ``page`` carries for this client's session."""
    match = TOKEN.search(client.get(page).text)
    assert match is not None, f"no CSRF token on {page}"
    return match.group(1)


def post(
    client: FlaskClient, path: str, data: dict[str, t.Any] | None = None, *, page: str = "/login", **kw: t.Any
) -> t.Any:
    """POST a form the way the browser does: with the token of a page of this session."""
    return client.post(path, data={"csrf_token": form_token(client, page), **(data or {})}, **kw)


def add_people(app: Flask) -> tuple[dict[str, int], str]:
    """Store the people and teams of the tests; return their ids and Cleo's TOTP secret."""
    secret = pyotp.random_base32()
    password_hash = generate_password_hash(PASSWORD)
    with app.app_context():
        db.session.execute(sa.insert(Team), [{"name": "Engineering"}, {"name": "Design"}])
        teams = {team.name: team.id for team in db.session.scalars(sa.select(Team))}
        people = [
            ("ada@example.com", "Ada Admin", "admin", "Engineering", None),
            ("ben@example.com", "Ben Member", "member", "Engineering", None),
            ("cleo@example.com", "Cleo Secure", "member", "Design", secret),
        ]
        for email, name, role, team, totp in people:
            db.session.execute(
                sa.insert(User),
                [
                    {
                        "email": email,
                        "name": name,
                        "role": role,
                        "password_hash": password_hash,
                        "primary_team_id": teams[team],
                        "totp_secret": totp,
                    }
                ],
            )
        users = {user.email.split("@")[0]: user.id for user in db.session.scalars(sa.select(User))}
        rows = [{"team_id": teams["Engineering"], "user_id": users[name]} for name in ("ada", "ben")]
        rows += [{"team_id": teams["Design"], "user_id": users[name]} for name in ("ben", "cleo")]
        db.session.execute(sa.insert(team_member), rows)
        db.session.commit()
        db.session.remove()
    return {**users, **{name.lower(): team_id for name, team_id in teams.items()}}, secret


def build_demo(db_url: str, **config: t.Any) -> Flask:
    """The demo app on ``db_url`` with its tables created (empty)."""
    app = demo_app.create_app({"SQLALCHEMY_DATABASE_URI": db_url, "SECRET_KEY": "test", **config})
    with app.app_context():
        db.create_all()
    return app


def drop(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        try:
            db.drop_all()
        finally:
            db.engine.dispose()


@contextlib.contextmanager
def running_demo(db_url: str, **config: t.Any) -> c.Iterator[Demo]:
    """The demo app with Ada, Ben and Cleo; its tables are dropped afterwards."""
    app = build_demo(db_url, **config)
    try:
        ids, secret = add_people(app)
        yield Demo(app, ids, secret)
    finally:
        drop(app)


_Served = t.TypeVar("_Served", bound="LiveServer")


class LiveServer:
    """An app served by werkzeug on 127.0.0.1 in a thread, on a free port."""

    def __init__(self, app: Flask) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self: _Served) -> _Served:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()


def totp_code(secret: str, *, after_step: int | None = None) -> str:
    """The current code, or the next step's when the current one was used (``after_step``).

    The next step's code is inside the one-step drift window that ``verify_totp`` allows,
    so no test waits 30 seconds for a fresh code.
    """
    totp = pyotp.TOTP(secret)
    now = dt.datetime.now(dt.timezone.utc)
    if after_step is not None and totp.timecode(now) <= after_step:
        return totp.at(now + dt.timedelta(seconds=totp.interval * (after_step + 1 - totp.timecode(now))))
    return totp.now()
