"""Accounts for the grants tests: an owner and a runtime role per test module, on real servers.

Both are made by the server's admin account (the one the suite connects as) with names of
their own, so parallel workers never share one, and dropped when the module ends. The
owner is no superuser: on PostgreSQL it owns the module's database (and so its ``public``
schema), on MariaDB it holds every privilege on that database, with GRANT OPTION.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import typing as t
import uuid

import sqlalchemy as sa

PASSWORD = "runtime-test-password"

#: How each server says "you may not": PostgreSQL's SQLSTATE; MariaDB's error numbers for a
#: command, column, database or routine denied, and a privilege missing.
PG_DENIED = {"42501"}
MARIADB_DENIED = {1142, 1143, 1044, 1370, 1227}


@dataclasses.dataclass(frozen=True)
class Accounts:
    backend: str
    database_url: sa.URL  # the module's database, as the server's admin
    owner: str
    runtime: str

    def url(self, name: str) -> str:
        return self.database_url.set(username=name, password=PASSWORD).render_as_string(hide_password=False)


def _admin(url: sa.URL) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def _run(conn: sa.Connection, *statements: str) -> None:
    for statement in statements:
        conn.exec_driver_sql(statement.replace("%", "%%"))


def make_accounts(backend: str, db_url: str) -> c.Iterator[Accounts]:
    """An owner and a runtime role for the database at ``db_url``; dropped afterwards."""
    url = sa.make_url(db_url)
    tag = uuid.uuid4().hex[:8]
    accounts = Accounts(backend, url, f"fa_own_{tag}", f"fa_rt_{tag}")
    admin = _admin(url)
    with admin.connect() as conn:
        if backend == "postgresql":
            _run(
                conn,
                f"CREATE ROLE {accounts.owner} LOGIN PASSWORD '{PASSWORD}'",
                f"CREATE ROLE {accounts.runtime} LOGIN PASSWORD '{PASSWORD}'",
                f"ALTER DATABASE {url.database} OWNER TO {accounts.owner}",
            )
        else:
            _run(
                conn,
                f"CREATE USER '{accounts.owner}'@'%' IDENTIFIED BY '{PASSWORD}'",
                f"GRANT ALL PRIVILEGES ON `{url.database}`.* TO '{accounts.owner}'@'%' WITH GRANT OPTION",
                f"CREATE USER '{accounts.runtime}'@'%' IDENTIFIED BY '{PASSWORD}'",
            )
    try:
        yield accounts
    finally:
        with admin.connect() as conn:
            if backend == "postgresql":
                roles = f"{accounts.owner}, {accounts.runtime}"
                _run(
                    conn,
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename IN"
                    f" ('{accounts.owner}', '{accounts.runtime}')",
                    f"ALTER DATABASE {url.database} OWNER TO CURRENT_USER",
                    f"DROP OWNED BY {roles} CASCADE",
                    f"DROP ROLE {roles}",
                )
            else:
                _run(conn, f"DROP USER IF EXISTS '{accounts.owner}'@'%', '{accounts.runtime}'@'%'")
        admin.dispose()


def as_admin(accounts: Accounts, *statements: str) -> None:
    """Run ``statements`` as the server's admin account, on the module's database."""
    admin = _admin(accounts.database_url)
    try:
        with admin.connect() as conn:
            _run(conn, *statements)
    finally:
        admin.dispose()


def denied(err: sa.exc.DBAPIError) -> bool:
    """Whether the server refused for want of a privilege (not a trigger, not bad SQL)."""
    orig: t.Any = err.orig
    if err.connection_invalidated or orig is None:
        return False
    if isinstance(orig.args[0], int):  # PyMySQL: (error number, message)
        return orig.args[0] in MARIADB_DENIED
    return getattr(orig, "sqlstate", None) in PG_DENIED
