"""Shared by the benchmark scripts: the host app, fresh databases, SQLite settings, statistics.

Not a benchmark itself. The scripts import it as a sibling module, which works from any
working directory because Python puts a script's own directory first on ``sys.path``.
"""

from __future__ import annotations

import argparse
import collections.abc as c
import contextlib
import hashlib
import json
import os
import pathlib
import platform
import sqlite3
import statistics
import sys
import tempfile
import typing as t
import uuid

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import Flask
from flask_login import LoginManager
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy

import flask_audit

PG_URL = os.environ.get("FLASK_AUDIT_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("FLASK_AUDIT_MYSQL_URL", "mariadb+pymysql://root@127.0.0.1:3306/test")
DATABASES = ("sqlite", "postgresql")
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
REMOTE_ADDR = "203.0.113.7"


class Base(sa_orm.DeclarativeBase):
    pass


class User(UserMixin, Base):  # type: ignore[misc]
    __tablename__ = "bench_user"

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    email: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(255), unique=True)
    password: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(255))


#: One Flask-SQLAlchemy object per process; every app made by :func:`new_app` joins it.
db = SQLAlchemy(model_class=Base)


def _load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


def _sqlite_pragmas(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def tune_engine(engine: sa.Engine) -> None:
    """SQLite: WAL and ``synchronous=NORMAL`` on every new connection (what we recommend)."""
    if engine.dialect.name == "sqlite" and not sa.event.contains(engine, "connect", _sqlite_pragmas):
        sa.event.listen(engine, "connect", _sqlite_pragmas)


def new_app(name: str, url: str) -> Flask:
    """A Flask app on ``url`` with Flask-SQLAlchemy and Flask-Login, and no audit."""
    app = Flask(name)
    app.config.update(SECRET_KEY="bench", TESTING=True, SQLALCHEMY_DATABASE_URI=url)
    db.init_app(app)
    login = LoginManager(app)
    login.user_loader(_load_user)
    with app.app_context():
        tune_engine(db.engine)
    return app


def add_user(app: Flask, email: str = "bench@example.com") -> int:
    """Store a user with password ``"pw"`` and return its id."""
    with app.app_context():
        user = User(email=email, password="pw")
        db.session.add(user)
        db.session.commit()
        user_id = user.id
        db.session.remove()
    return user_id


def dispose(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        choices=(*DATABASES, "both"),
        default="both",
        help="which database to run on (default: both); PostgreSQL from FLASK_AUDIT_PG_URL",
    )


def positive(text: str) -> int:
    """An ``argparse`` type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def run_each(choice: str, run: c.Callable[[str], dict[str, t.Any]]) -> dict[str, dict[str, t.Any]]:
    """``run`` on each selected database; a failure is reported as ``{"error": ...}``, not raised."""
    results: dict[str, dict[str, t.Any]] = {}
    for kind in list(DATABASES) if choice == "both" else [choice]:
        try:
            results[kind] = run(kind)
        except Exception as err:  # one database failing must not lose the other's numbers
            results[kind] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0]}"}
    return results


@contextlib.contextmanager
def fresh_database(kind: str) -> c.Iterator[str]:
    """The URL of a new, empty database of ``kind`` (sqlite, postgresql, mariadb); removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="fa_bench_") as tmp:
            yield f"sqlite:///{os.path.join(tmp, 'bench.db')}"
        return
    admin_url = sa.make_url(MYSQL_URL if kind == "mariadb" else PG_URL)
    force = " WITH (FORCE)" if kind == "postgresql" else ""
    name = f"fa_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
    finally:
        admin.dispose()


def describe(engine: sa.Engine) -> dict[str, t.Any]:
    """What the numbers were measured on: server version and the durability settings in effect."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return {
                "version": sqlite3.sqlite_version,
                "journal_mode": conn.exec_driver_sql("PRAGMA journal_mode").scalar(),
                "synchronous": conn.exec_driver_sql("PRAGMA synchronous").scalar(),
            }
        return {
            "version": conn.exec_driver_sql("SHOW server_version").scalar(),
            "synchronous_commit": conn.exec_driver_sql("SHOW synchronous_commit").scalar(),
            "fsync": conn.exec_driver_sql("SHOW fsync").scalar(),
        }


def environment() -> dict[str, t.Any]:
    """Versions, CPUs, and a digest of flask_audit's sources: which code the numbers belong to."""
    package = pathlib.Path(flask_audit.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return {
        "python": platform.python_version(),
        "sqlalchemy": sa.__version__,
        "cpus": os.cpu_count(),
        "flask_audit_sources_sha256": digest.hexdigest()[:12],
    }


def median(values: c.Iterable[float]) -> float:
    return float(statistics.median(values))


def rotated(names: c.Sequence[str], shift: int) -> list[str]:
    """``names`` starting at ``shift``: each repeat runs the variants in a different order."""
    shift %= len(names)
    return [*names[shift:], *names[:shift]]


def emit(benchmark: str, options: dict[str, t.Any], results: dict[str, dict[str, t.Any]]) -> None:
    """Print the run as one JSON object; exit 1 when a database reported an error."""
    output = {"benchmark": benchmark, **options, "environment": environment(), "results": results}
    print(json.dumps(output, indent=2))
    if any("error" in result for result in results.values()):
        sys.exit(1)
