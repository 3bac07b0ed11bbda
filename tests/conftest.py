"""Fixtures: apps built by a factory, on SQLite, PostgreSQL and MariaDB.

Each test module gets fresh databases; each test gets fresh tables. A server that cannot
be reached skips its tests with the reason, except under ``CI=true``, where it fails them.
Point at other servers with ``FLASK_AUDIT_PG_URL`` and ``FLASK_AUDIT_MYSQL_URL``.
"""

from __future__ import annotations

import collections.abc as c
import os
import re
import typing as t
import uuid

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner
from flask_sqlalchemy import SQLAlchemy

from flask_audit import Audit
from flask_audit import AuditEvent
from flask_audit.config import DEFAULTS
from flask_audit.state import audit_state
from flask_audit.state import AuditState

from .apps import create_app

if t.TYPE_CHECKING:
    from .export_fixtures import SmtpServer

BACKENDS = ("sqlite", "postgresql", "mariadb")
SERVER_URLS = {
    "postgresql": os.environ.get("FLASK_AUDIT_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("FLASK_AUDIT_MYSQL_URL", "mariadb+pymysql://root@127.0.0.1:3306/test"),
}
IN_CI = os.environ.get("CI", "").lower() == "true"
_reachable: dict[str, str | None] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect backend variants a test does not apply to (``@pytest.mark.backends(...)``)."""
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("backends")
        params = getattr(getattr(item, "callspec", None), "params", {})
        if marker is not None and params.get("backend") not in marker.args:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _require_server(backend: str) -> str:
    url = SERVER_URLS[backend]
    if backend not in _reachable:
        try:
            engine = sa.create_engine(url)
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            engine.dispose()
            _reachable[backend] = None
        except sa.exc.DBAPIError as err:
            _reachable[backend] = f"{backend} at {url} is unreachable: {err.orig}"
    reason = _reachable[backend]
    if reason is not None:
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: a missing database server is a failure)", pytrace=False)
        pytest.skip(reason)
    return url


def _server_database(backend: str, name: str) -> c.Iterator[str]:
    admin_url = sa.make_url(_require_server(backend))
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if backend == "postgresql" else ""
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
        admin.dispose()


def database_name(label: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")
    slug = re.sub(r"[^a-z0-9]+", "_", label.lower())[-30:]
    return f"fa_{worker}_{slug}_{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return t.cast(str, request.param)


@pytest.fixture(scope="module")
def db_url(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> c.Iterator[str]:
    """A fresh database for this test module on ``backend``."""
    name = database_name(request.module.__name__)
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / f"{name}.db"
        engine = sa.create_engine(f"sqlite:///{path}")
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        engine.dispose()
        yield f"sqlite:///{path}"
    else:
        yield from _server_database(backend, name)


MakeApp = c.Callable[..., Flask]

#: axe-core, installed by scripts/test.sh; FLASK_AUDIT_AXE names another copy.
AXE_DEFAULT = os.path.join(
    os.path.dirname(__file__), "..", ".cache", "axe", "node_modules", "axe-core", "axe.min.js"
)


@pytest.fixture(scope="module")
def browser() -> c.Iterator[t.Any]:
    """Headless Chromium from Debian, driven by Playwright (imported here only when asked)."""
    from playwright.sync_api import sync_playwright

    from .browser_fixtures import CHROMIUM
    from .browser_fixtures import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def smtp_server() -> c.Iterator[SmtpServer]:
    """A real SMTP server on the loopback address (aiosmtpd) that keeps what it receives."""
    from .export_fixtures import running_smtp_server

    with running_smtp_server() as server:
        yield server


@pytest.fixture(scope="session")
def axe_script() -> str:
    """The source of axe-core, for browser tests to inject into a page.

    Missing, it fails the test that needs it: an accessibility check never skips quietly.
    """
    path = os.environ.get("FLASK_AUDIT_AXE") or AXE_DEFAULT
    if not os.path.exists(path):
        pytest.fail(f"axe-core not found at {path}: run scripts/test.sh, or set FLASK_AUDIT_AXE")
    with open(path, encoding="utf-8") as fh:
        return fh.read()


@pytest.fixture(autouse=True)
def _own_seal_witness(tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's apps witness their seals in a file of the test's own.

    By default the witness sits in the app's instance folder, which the test apps share:
    one test's seal heads would read as a replaced chain to the next test's verify.
    """
    monkeypatch.setitem(DEFAULTS, "AUDIT_SEAL_WITNESS", str(tmp_path / "audit-seal-witness.jsonl"))


@pytest.fixture(autouse=True)
def _no_alerts_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Alert rules add ``audit.alert_sent`` rows a moment after the critical events they see;
    tests that count rows would count those too. tests/compliance asks for the rules."""
    monkeypatch.setitem(DEFAULTS, "AUDIT_ALERTS", [])


@pytest.fixture
def make_app(db_url: str, tmp_path: t.Any) -> c.Iterator[MakeApp]:
    """Build apps with their tables created; every table is dropped after the test."""
    made: list[Flask] = []

    def factory(**config: t.Any) -> Flask:
        config.setdefault("SQLALCHEMY_DATABASE_URI", db_url)
        config.setdefault("AUDIT_SPOOL_PATH", str(tmp_path / "spool.jsonl"))
        app = create_app(**config)
        with app.app_context():
            db(app).create_all()
        made.append(app)
        return app

    yield factory
    for app in made:
        with app.app_context():
            database = db(app)
            database.session.remove()
            writer_of(app).writer.dispose()
            try:
                database.drop_all()
            finally:
                for engine in database.engines.values():
                    engine.dispose()


@pytest.fixture
def app(make_app: MakeApp, request: pytest.FixtureRequest) -> Flask:
    marker = request.node.get_closest_marker("audit_config")
    return make_app(**(marker.kwargs if marker else {}))


@pytest.fixture
def app_ctx(app: Flask) -> c.Iterator[None]:
    with app.app_context():
        yield


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def db(app: Flask) -> SQLAlchemy:
    return t.cast(SQLAlchemy, app.extensions["sqlalchemy"])


def signed_in_client(app: Flask, user_id: int | None = None) -> FlaskClient:
    """A test client, signed in as ``user_id`` through Flask-Login's session keys (anonymous
    with ``None``)."""
    client = app.test_client()
    if user_id is not None:
        with client.session_transaction() as session:
            session["_user_id"] = str(user_id)
            session["_fresh"] = True
    return client


def audit_of(app: Flask) -> Audit:
    return t.cast(Audit, app.extensions["audit"])


def writer_of(app: Flask) -> AuditState:
    """The app's audit state, whose ``writer_engine`` commits standalone events."""
    return audit_state(app)


def stored(app: Flask, *, include_enabled: bool = False) -> list[AuditEvent]:
    """Every stored event, oldest first (without the table's own ``audit.enabled`` row)."""
    with app.app_context():
        query = sa.select(AuditEvent).order_by(AuditEvent.id)
        if not include_enabled:
            query = query.where(AuditEvent.event_type != "audit.enabled")
        events = list(db(app).session.scalars(query))
        db(app).session.remove()
        return events


_WHO_AM_I = {"postgresql": "SELECT pg_backend_pid()", "mariadb": "SELECT CONNECTION_ID()"}
_END = {"postgresql": "SELECT pg_terminate_backend({})", "mariadb": "KILL {}"}


def _dialect(engine: sa.Engine) -> str:
    return "mariadb" if engine.dialect.name in ("mysql", "mariadb") else engine.dialect.name


def server_connection_id(conn: sa.Connection) -> int:
    """The server's id for ``conn``: the PostgreSQL backend pid, the MariaDB thread id."""
    return int(conn.exec_driver_sql(_WHO_AM_I[_dialect(conn.engine)]).scalar_one())


def end_server_connection(engine: sa.Engine, server_id: int) -> None:
    """Have the server end one connection, from a connection of its own, as a restart does."""
    killer = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)
    try:
        with killer.connect() as conn:
            conn.exec_driver_sql(_END[_dialect(engine)].format(server_id))
    finally:
        killer.dispose()


def end_pooled_connection(engine: sa.Engine) -> None:
    """Leave exactly one connection in ``engine``'s pool, then have the server end it, as a
    restart of the database server does to every idle pooled connection."""
    engine.dispose()
    with engine.connect() as conn:
        server_id = server_connection_id(conn)
    end_server_connection(engine, server_id)


def refuse_audit_writes(engine: sa.Engine) -> None:
    """Make the database refuse every audit insert, as a broken schema does: a column the
    insert names is gone. (A missing table is a set-up mistake that is spooled instead.)"""
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE audit_event DROP COLUMN user_agent")
