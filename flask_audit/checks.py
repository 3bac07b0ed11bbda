"""Start-up checks: is this app's audit trail set up to work, and if not, what is the fix.

``flask audit check`` prints one line per check and exits 1 when one fails; the first
request of each worker logs the same in one line, so a missing table or mailer shows in
the app's log before an admin meets it. A warning is a choice worth knowing about (no
seal key, no proxy configured), not a failure.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import weakref

import sqlalchemy as sa
from flask import current_app
from flask import Flask

from .config import AuditConfig
from .exceptions import AuditConfigError
from .exceptions import AuditError
from .export import links
from .export import mailers
from .integrity import grants
from .state import audit_state
from .store import partitions
from .store.immutability import drop_statements
from .store.immutability import installed_triggers
from .store.immutability import TRIGGER_NAMES
from .store.models import TABLE_NAME

log = logging.getLogger("flask_audit")
OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclasses.dataclass(frozen=True)
class Check:
    """One thing checked: its name, ``ok``/``warn``/``FAIL``, and what was found or the fix."""

    name: str
    status: str
    message: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.name}: {self.message}"


def run_checks(app: Flask) -> list[Check]:
    """Every check for ``app`` (needs its app context for the database ones)."""
    state = audit_state(app)
    return [
        *_database(state.engine),
        _mailer(app),
        _admins(app, state.config),
        _proxies(state.config),
        _seal_key(state.config),
        _witness(state.config),
        _account(state.engine),
    ]


def _database(engine: sa.Engine) -> list[Check]:
    fix = "run db.create_all(), or flask db upgrade flask_audit@head with Flask-Migrate"
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(TABLE_NAME):
                return [Check("table", FAIL, f"{TABLE_NAME} is missing: {fix}")]
            found = installed_triggers(conn)
            wanted = {
                name
                for name in TRIGGER_NAMES
                if any(name in sql for sql in drop_statements(conn.dialect.name))
            }
    except sa.exc.SQLAlchemyError as err:
        return [Check("database", FAIL, f"cannot connect: {getattr(err, 'orig', None) or err}")]
    missing = sorted(wanted - found)
    triggers = (
        Check("triggers", FAIL, f"missing {', '.join(missing)}: run flask audit triggers")
        if missing
        else Check("triggers", OK, f"{len(wanted)} insert-only triggers on {TABLE_NAME}")
    )
    return [Check("table", OK, f"{TABLE_NAME} on {engine.url.get_backend_name()}"), triggers]


def _mailer(app: Flask) -> Check:
    found = mailers.mailer_name(app)
    if found is None:
        return Check("mailer", WARN, "none set up: exports are refused until Flask-Mail or Flask-Mailman is")
    name, sender = f"Flask-{found.capitalize()}", app.config.get("MAIL_DEFAULT_SENDER")
    if not sender:
        return Check("mailer", WARN, f"{name} without MAIL_DEFAULT_SENDER: exports will fail")
    link = "links from " + (links.base_url(app) or "nowhere (set AUDIT_EXTERNAL_URL for large exports)")
    return Check("mailer", OK, f"{name}, from {sender}; {link}")


def _admins(app: Flask, config: AuditConfig) -> Check:
    if app.config.get("AUDIT_IS_ADMIN") is not None:
        return Check("admins", OK, "AUDIT_IS_ADMIN decides")
    if app.extensions.get("security") is not None:
        return Check("admins", OK, f"Flask-Security-Too users with the role {config.admin_role!r}")
    if app.extensions.get("appbuilder") is not None:
        return Check("admins", OK, "Flask-AppBuilder's admin role, or can_access on AuditLog")
    return Check("admins", WARN, "users whose is_admin is truthy: set AUDIT_IS_ADMIN if yours differ")


def _proxies(config: AuditConfig) -> Check:
    if config.trusted_proxies:
        return Check("proxies", OK, f"the client address is read through {config.trusted_proxies} proxy(ies)")
    return Check(
        "proxies", WARN, "X-Forwarded-For ignored: behind a proxy, set AUDIT_TRUSTED_PROXIES to its count"
    )


def _seal_key(config: AuditConfig) -> Check:
    if config.seal_key:
        return Check("seal key", OK, "set: flask audit seal and verify can run")
    return Check("seal key", WARN, "AUDIT_SEAL_KEY not set: the trail is insert-only but not sealed")


def _witness(config: AuditConfig) -> Check:
    if not config.seal_key:
        return Check("witness", OK, "nothing to witness without a seal key")
    if config.seal_witness is None:
        return Check(
            "witness",
            WARN,
            "AUDIT_SEAL_WITNESS is False: removing the newest seals shows only with verify --anchor",
        )
    path = os.path.abspath(config.seal_witness)
    target = path if os.path.exists(path) else os.path.dirname(path)
    while not os.path.exists(target):  # the witness makes missing folders itself
        target = os.path.dirname(target)
    writable = os.access(target, os.W_OK) and (target == path or os.path.isdir(target))
    if not writable or os.path.isdir(path):
        fix = "point AUDIT_SEAL_WITNESS at a file the app's user may write"
        return Check("witness", FAIL, f"{config.seal_witness} cannot be written: {fix}")
    return Check("witness", OK, f"seal heads are also written to {path}")


def _account(engine: sa.Engine) -> Check:
    """Whether the app's own database account could rewrite the trail (it should not)."""
    if engine.dialect.name == "sqlite":
        return Check("account", OK, "SQLite: keep the database file writable by the app's user alone")
    try:
        with engine.connect() as conn:
            problems = grants.privilege_problems(conn)
    except (AuditError, sa.exc.SQLAlchemyError) as err:
        return Check("account", WARN, f"its privileges could not be read ({err})")
    if problems:
        return Check(
            "account",
            WARN,
            f"{problems[0]} Run the app as a runtime role: flask audit grants ROLE --apply, as the owner",
        )
    return Check("account", OK, "the app's account cannot alter, delete or truncate the trail")


_logged: weakref.WeakSet[Flask] = weakref.WeakSet()
_logged_lock = threading.Lock()


def log_once() -> None:
    """Log the checks in one line, once per app and process, before its first request."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if app in _logged:
        return
    with _logged_lock:
        if app in _logged:
            return
        _logged.add(app)
    _catch_up_partitions(app)
    checks = run_checks(app)
    summary = "; ".join(f"{check.name} {check.status}" for check in checks)
    failed = [check.line() for check in checks if check.status == FAIL]
    if failed:
        log.error("flask_audit start-up checks: %s. %s", summary, " ".join(failed))
    else:
        log.info("flask_audit start-up checks: %s (details: flask audit check)", summary)


def _catch_up_partitions(app: Flask) -> None:
    """A partitioned trail gets its missing months ahead before the first request."""
    state = audit_state(app)
    if not state.config.pg_partitions:
        return
    try:
        with state.engine.begin() as conn:
            made = partitions.catch_up(conn)
    except (sa.exc.SQLAlchemyError, AuditConfigError) as err:
        log.warning("flask_audit could not make the partitions ahead: %s (run: flask audit partitions)", err)
        return
    if made:
        log.info("flask_audit made the partitions %s", ", ".join(made))
