"""The demo app as ``benchmarks/load_test.py`` serves it under gunicorn, and the people it needs.

gunicorn imports this module in each worker (``--pythonpath benchmarks load_app:app``) and
builds the app from ``LOAD_TEST_DB_URL``, ``LOAD_TEST_AUDIT`` (``1`` or ``0``) and, when set,
``LOAD_TEST_SPOOL_PATH``.
CSRF protection is off (``WTF_CSRF_ENABLED=False``) so each request of the load is one POST,
and passwords use a cheap hash so that the load measures the requests, not scrypt.
"""

from __future__ import annotations

import collections.abc as c
import os
import time
import typing as t

import sqlalchemy as sa
from flask import Flask
from werkzeug.security import generate_password_hash

import demo_app
from demo_app.extensions import db
from demo_app.models import Team
from demo_app.models import User

PASSWORD = "load-test-pass"
#: Seals the trail when ``LOAD_TEST_SEAL_EVERY`` is set; the multi-host load verifies with it.
SEAL_KEY = "load-test-seal-key"
#: Cheap on purpose: scrypt's cost per sign-in would hide the extension's.
HASH_METHOD = "pbkdf2:sha256:1000"


def admin_email(client: int) -> str:
    return f"admin{client}@load.example"


def member_email(number: int) -> str:
    return f"member{number}@load.example"


def target_email(client: int) -> str:
    return f"target{client}@load.example"


def build(url: str, *, audit: bool, spool_path: str | None = None, seal_every: int | None = None) -> Flask:
    """The demo app on ``url``; every worker and the load test itself build it the same way.

    With ``spool_path``, events the database refuses are spooled there (``AUDIT_ON_WRITE_ERROR
    = "spool"``) instead of failing their request. With ``seal_every``, the trail is sealed
    automatically every that many events. Every failed sign-in comes from one address, so
    folding is off: the load matches each request to its own event.
    """
    spool = {"AUDIT_ON_WRITE_ERROR": "spool", "AUDIT_SPOOL_PATH": spool_path} if spool_path else {}
    seal = {"AUDIT_SEAL_KEY": SEAL_KEY, "AUDIT_SEAL_EVERY_EVENTS": seal_every, "AUDIT_SEAL_WITNESS": False}
    seal = seal if seal_every else {}
    return demo_app.create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "load-test",
            "WTF_CSRF_ENABLED": False,
            "AUDIT_ENABLED": audit,
            "AUDIT_FAILED_LOGIN_BURST": None,
            "MAIL_SUPPRESS_SEND": True,
            **spool,
            **seal,
        }
    )


def populate(app: Flask, clients: int, members: int) -> dict[str, dict[str, int]]:
    """Create the tables and store, per client, an admin, a user whose role it flips and a team
    it renames, plus ``members`` who sign in; return the ids of the targets and teams."""
    password_hash = generate_password_hash(PASSWORD, method=HASH_METHOD)
    with app.app_context():
        db.create_all()
        db.session.execute(sa.insert(Team), [{"name": f"team-{n}"} for n in range(clients)])
        rows: list[dict[str, t.Any]] = [
            {"email": admin_email(n), "name": f"Admin {n}", "role": "admin"} for n in range(clients)
        ]
        rows += [{"email": target_email(n), "name": f"Target {n}", "role": "member"} for n in range(clients)]
        rows += [{"email": member_email(n), "name": f"Member {n}", "role": "member"} for n in range(members)]
        db.session.execute(sa.insert(User), [{**row, "password_hash": password_hash} for row in rows])
        db.session.commit()
        users = {user.email: user.id for user in db.session.scalars(sa.select(User))}
        teams = {team.name: team.id for team in db.session.scalars(sa.select(Team))}
        db.session.remove()
        db.engine.dispose()
    return {
        "targets": {str(n): users[target_email(n)] for n in range(clients)},
        "teams": {str(n): teams[f"team-{n}"] for n in range(clients)},
    }


def reset_targets(url: str) -> None:
    """Every target back to ``member``: each client's first role change makes an admin."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            table = t.cast(sa.Table, User.__table__)
            conn.execute(sa.update(table).where(table.c.email.like("target%")).values(role="member"))
    finally:
        engine.dispose()


if "LOAD_TEST_DB_URL" in os.environ:
    app = build(
        os.environ["LOAD_TEST_DB_URL"],
        audit=os.environ.get("LOAD_TEST_AUDIT", "1") == "1",
        spool_path=os.environ.get("LOAD_TEST_SPOOL_PATH") or None,
        seal_every=int(os.environ.get("LOAD_TEST_SEAL_EVERY") or 0) or None,
    )


def role_reader(url: str) -> tuple[c.Callable[[int], str], c.Callable[[], None]]:
    """A function reading a user's stored role, retried while the database is away, and its close."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    table = t.cast(sa.Table, User.__table__)
    query = sa.select(table.c.role).where(table.c.id == sa.bindparam("id"))

    def role_of(user_id: int) -> str:
        deadline = time.monotonic() + 60
        while True:
            try:
                with engine.connect() as conn:
                    return str(conn.execute(query, {"id": user_id}).scalar_one())
            except sa.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    return role_of, engine.dispose
