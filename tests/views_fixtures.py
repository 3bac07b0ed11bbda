"""Shared by the page, API, permission, query and template tests: users, clients, events.

``build_site(make_app, **config)`` makes the test app with three users: an admin and a
member of tenant ``acme`` and an admin of tenant ``globex``. Clients sign in by setting
Flask-Login's session keys, so no ``user.login`` event is recorded by the sign-in itself.
Events are inserted in one Core statement with times chosen by the test.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import datetime as dt
import re
import typing as t

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_login import current_user

from flask_audit.store.models import audit_event_table
from flask_audit.store.rows import build_row

from .apps import add_user
from .conftest import audit_of
from .conftest import signed_in_client

TENANT_LOADER = "tests.views_fixtures:tenant_of_current_user"
PREFIX = "/admin/audit"
ROW = re.compile(r"<tr(?: class=\"fa-row--failure\")?>\s*<td class=\"fa-nowrap fa-muted\">")
ACTIVITY = re.compile(r'<span class="fa-activity__text">(.*?)</span>', re.S)


def tenant_of_current_user() -> str | None:
    """The tenant loader of the multi-tenant tests: the signed-in user's tenant."""
    if not current_user or not current_user.is_authenticated:
        return None
    return t.cast("str | None", current_user.tenant)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclasses.dataclass
class Site:
    """An app with the audit page and three users."""

    app: Flask
    admin: int
    member: int
    other_admin: int

    def client(self, user_id: int | None = None) -> FlaskClient:
        """A test client, signed in as ``user_id`` (anonymous with ``None``)."""
        return signed_in_client(self.app, user_id)

    def insert(self, *rows: dict[str, t.Any]) -> None:
        """Store events (from :func:`event`) in one statement, bypassing ``record()``."""
        with self.app.app_context():
            engine = audit_of(self.app)._state().engine
            with engine.begin() as conn:
                conn.execute(sa.insert(audit_event_table), list(rows))

    def event(self, event_type: str = "team.created", **fields: t.Any) -> dict[str, t.Any]:
        """The row ``record()`` would build, with ``fields`` (any column) applied on top."""
        with self.app.app_context():
            row = build_row(audit_of(self.app).config, event_type, actor=None)
        row.update(fields)
        row.setdefault("occurred_at", utcnow())
        return row

    def series(self, count: int, *, every: dt.timedelta, **fields: t.Any) -> list[dict[str, t.Any]]:
        """``count`` events, the newest a minute ago, each ``every`` older than the last."""
        start = utcnow() - dt.timedelta(minutes=1)
        return [
            self.event(occurred_at=start - n * every, activity=f"Event {n}", **fields) for n in range(count)
        ]


def build_site(make_app: c.Callable[..., Flask], **config: t.Any) -> Site:
    """The app under test, rendering the packaged templates.

    ``tests/apps.py`` roots its app in ``tests/``, so ``tests/templates`` would be the
    app's template folder and its override of ``flask_audit/index.html`` would replace the
    packaged page; ``test_templates`` asks for that override explicitly.
    """
    app = make_app(**config)
    app.template_folder = None
    return Site(
        app=app,
        admin=add_user(app, "admin@acme.test", is_admin=True, tenant="acme"),
        member=add_user(app, "member@acme.test", tenant="acme"),
        other_admin=add_user(app, "admin@globex.test", is_admin=True, tenant="globex"),
    )


def activities(html: str) -> list[str]:
    """The activity texts of the page's table rows, top to bottom (still HTML-escaped)."""
    return ACTIVITY.findall(html)


def row_count(html: str) -> int:
    return len(ROW.findall(html))
