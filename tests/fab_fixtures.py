"""A real Flask-AppBuilder app on the test databases: FAB's quickstart plus ``Audit(app, db=db)``.

Built as FAB 5's documentation builds it (``get_sqla_class()``, ``AppBuilder`` initialised
inside an app context); each app gets its own ``AppBuilder``, all share FAB's models. The
security manager creates FAB's tables as the app starts, unless ``FAB_CREATE_DB`` is off.
"""

from __future__ import annotations

import collections.abc as c
import gc
import http.cookiejar
import json
import typing as t
import urllib.error
import urllib.parse
import urllib.request

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_appbuilder import AppBuilder  # type: ignore[import-untyped]
from flask_appbuilder.models.sqla import Model  # type: ignore[import-untyped]
from flask_appbuilder.utils.legacy import get_sqla_class  # type: ignore[import-untyped]

from flask_audit import Audit
from flask_audit import AuditEvent
from flask_audit.state import audit_state

from . import demo_fixtures

db = get_sqla_class()()

PASSWORD = "Correct-Horse-7"
SETTINGS: dict[str, t.Any] = {
    "SECRET_KEY": "fab-tests-secret-key-0123456789-abcdefghij",
    "TESTING": True,
    "WTF_CSRF_ENABLED": False,
    "FAB_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
}


def create_fab_app(db_url: str, spool: str, *, fab_first: bool = False, **config: t.Any) -> Flask:
    """FAB's quickstart app with ``Audit``; ``Audit`` comes first unless told otherwise."""
    app = Flask(__name__)
    app.config.update(SETTINGS, SQLALCHEMY_DATABASE_URI=db_url, AUDIT_SPOOL_PATH=spool)
    app.config.update(config)
    appbuilder = AppBuilder()
    with app.app_context():
        db.init_app(app)
        if fab_first:
            appbuilder.init_app(app, db.session)
            Audit(app, db=db)
        else:
            Audit(app, db=db)
            appbuilder.init_app(app, db.session)
    return app


def drop(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        audit_state(app).writer.dispose()
        engine = db.engine
        Model.metadata.drop_all(engine)
        db.drop_all()
        engine.dispose()
    gc.collect()  # a connection a test left open is reported by that test, not a later one


MakeFabApp = c.Callable[..., Flask]


@pytest.fixture
def make_fab_app(db_url: str, tmp_path: t.Any) -> c.Iterator[MakeFabApp]:
    made: list[Flask] = []

    def factory(**config: t.Any) -> Flask:
        app = create_fab_app(db_url, str(tmp_path / "spool.jsonl"), **config)
        made.append(app)
        return app

    yield factory
    for app in made:
        drop(app)


def add_user(app: Flask, username: str, role: str = "Admin", **fields: t.Any) -> int:
    """A user made through FAB's security manager, as ``flask fab create-user`` does."""
    with app.app_context():
        sm = app.appbuilder.sm  # type: ignore[attr-defined]
        user = sm.add_user(
            username,
            fields.get("first_name", username.title()),
            fields.get("last_name", "Tester"),
            fields.get("email", f"{username}@example.com"),
            sm.find_role(role),
            PASSWORD,
        )
        assert user, f"FAB could not add {username}"
        user_id = int(user.id)
        db.session.remove()
        return user_id


def role_id(app: Flask, name: str) -> int:
    with app.app_context():
        role = app.appbuilder.sm.find_role(name)  # type: ignore[attr-defined]
        found = int(role.id)
        db.session.remove()
        return found


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> t.Any:
    """FAB's own login form (``AuthDBView.login``)."""
    return client.post("/login/", data={"username": username, "password": password})


def signed_in(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    response = sign_in(client, username)
    assert response.status_code == 302 and "/login" not in response.location
    return client


def events(app: Flask, *types: str) -> list[AuditEvent]:
    """Stored events, oldest first, without the table's own ``audit.enabled``."""
    with app.app_context():
        query = sa.select(AuditEvent).where(AuditEvent.event_type != "audit.enabled").order_by(AuditEvent.id)
        if types:
            query = query.where(AuditEvent.event_type.in_(types))
        found = list(db.session.scalars(query))
        db.session.remove()
        return found


def summary(app: Flask, *types: str) -> list[tuple[str, str | None, str, dict[str, t.Any]]]:
    """``(event_type, actor_email, activity, details)`` of each stored event."""
    return [(e.event_type, e.actor_email, e.activity, e.details) for e in events(app, *types)]


class LiveServer(demo_fixtures.LiveServer):
    """The demo tests' live server, with a cookie-keeping HTTP client."""

    def __init__(self, app: Flask) -> None:
        super().__init__(app)
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect()
        )

    def request(
        self, path: str, *, form: dict[str, str] | None = None, payload: t.Any = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body; redirects are returned, not followed."""
        data, headers = None, {}
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, headers=headers)
        try:
            with self.opener.open(req, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: t.Any, **kwargs: t.Any) -> None:
        return None
