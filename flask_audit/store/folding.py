"""Floods of failed sign-ins, folded: counted in place beyond a burst, stored as a few events.

One client guessing passwords can send hundreds of failed sign-ins a second; stored row by
row, that is millions of rows a day that nobody may delete inside the window, burying the
events an admin looks for. Within ``AUDIT_FAILED_LOGIN_WINDOW`` seconds of an address's
first failure (per tenant), its first ``AUDIT_FAILED_LOGIN_BURST`` failures are stored as
usual; the ones after are counted in ``audit_login_fold`` and reach the trail as folded
``user.login_failed`` events, each standing for :data:`FOLD_EVERY` attempts or for what was
left when the window closed, with the first and last time. An insert-only series: every
attempt is in exactly one event's count (``details.count``, 1 when absent), so the counts
add up to the attempts, as PCI DSS 10.2.1.4 asks.

The counter and the event it completes change in one transaction of the writer's own; if
that fails, the attempt is refused like any event (raised or spooled alone), never lost.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import typing as t
import uuid

import sqlalchemy as sa
from flask import Flask

from ..config import AuditConfig
from .models import audit_event_table
from .models import login_fold_table
from .rows import mark_late

#: Folded attempts per folded event while a flood goes on.
FOLD_EVERY = 1000
_FOLDS = login_fold_table
_INSERT_EVENT = sa.insert(audit_event_table)


def foldable(config: AuditConfig, row: t.Mapping[str, t.Any]) -> bool:
    """Whether ``row`` is a failed sign-in that folding applies to."""
    return config.failed_login_burst is not None and row["event_type"] == "user.login_failed"


def _source(row: t.Mapping[str, t.Any]) -> str:
    key = f"{row['tenant_id'] or ''}\x00{row['ip'] or ''}"
    return hashlib.sha256(key.encode()).hexdigest()


def count_failure(conn: sa.Connection, config: AuditConfig, row: dict[str, t.Any]) -> int | None:
    """Count one failed sign-in in ``conn``'s transaction; the id of the event it stored, if any.

    The UPDATE comes first so that the counter row is locked (SQLite: the write lock taken)
    before it is read: concurrent attempts from one address queue on it one by one.
    """
    source, now = _source(row), row["occurred_at"]
    window = dt.timedelta(seconds=config.failed_login_window)
    burst = t.cast(int, config.failed_login_burst)
    counted = conn.execute(
        sa.update(_FOLDS).where(_FOLDS.c.source == source).values(attempts=_FOLDS.c.attempts + 1)
    )
    if counted.rowcount == 0:
        fresh = {"source": source, "tenant_id": row["tenant_id"], "ip": row["ip"], "window_start": now}
        conn.execute(sa.insert(_FOLDS), {**fresh, "attempts": 1, "unreported": 0})
        return _store(conn, row)
    fold = conn.execute(sa.select(_FOLDS).where(_FOLDS.c.source == source)).one()._asdict()
    if now - fold["window_start"] > window:  # a new window: the old one's count goes out first
        _report(conn, config, fold)
        _update(conn, source, window_start=now, attempts=1, unreported=0, first_unreported_at=None)
        return _store(conn, row)
    if fold["attempts"] <= burst:
        return _store(conn, row)
    pending = {
        "unreported": fold["unreported"] + 1,
        "first_unreported_at": fold["first_unreported_at"] or now,
        "last_at": now,
        "email": row["actor_email"] or row["details"].get("email"),
        "user_agent": row["user_agent"],
    }
    if pending["unreported"] >= FOLD_EVERY:
        event_id = _report(conn, config, {**fold, **pending})
        _update(conn, source, unreported=0, first_unreported_at=None, last_at=now)
        return event_id
    _update(conn, source, **pending)
    return None


def report_due(engine: sa.Engine, config: AuditConfig, now: dt.datetime | None = None) -> int:
    """Store the counts of windows that have closed; how many folded events that made.

    Run by ``flask audit seal`` (so a seal covers them) and prune; a new attempt from the
    same address also reports its closed window itself.
    """
    if config.failed_login_burst is None:
        return 0
    now = now or dt.datetime.now(dt.timezone.utc)
    closed = now - dt.timedelta(seconds=config.failed_login_window)
    due = sa.select(_FOLDS.c.source).where(_FOLDS.c.unreported > 0, _FOLDS.c.window_start < closed)
    with engine.connect() as conn:
        sources = list(conn.scalars(due))
    made = 0
    for source in sources:
        with engine.begin() as conn:
            locked = conn.execute(
                sa.update(_FOLDS)
                .where(_FOLDS.c.source == source, _FOLDS.c.unreported > 0, _FOLDS.c.window_start < closed)
                .values(attempts=_FOLDS.c.attempts)  # takes the row's lock before it is read
            )
            if locked.rowcount:
                fold = conn.execute(sa.select(_FOLDS).where(_FOLDS.c.source == source)).one()._asdict()
                _report(conn, config, fold)
                _update(conn, source, unreported=0, first_unreported_at=None)
                made += 1
    return made


def _store(conn: sa.Connection, row: dict[str, t.Any]) -> int:
    key = conn.execute(_INSERT_EVENT, row).inserted_primary_key
    return int(key[0]) if key else 0


def _update(conn: sa.Connection, source: str, **values: t.Any) -> None:
    conn.execute(sa.update(_FOLDS).where(_FOLDS.c.source == source).values(**values))


def _report(conn: sa.Connection, config: AuditConfig, fold: dict[str, t.Any]) -> int | None:
    """The folded event for ``fold``'s unreported attempts, if there are any."""
    count = int(fold["unreported"])
    if count == 0:
        return None
    first, last = fold["first_unreported_at"], fold["last_at"]
    where = fold["ip"] or "an unknown address"
    event = {
        "uid": uuid.uuid4().hex,
        "occurred_at": last,
        "tenant_id": fold["tenant_id"],
        "team": None,
        "event_type": "user.login_failed",
        "entity": "Login",
        "action": "login",
        "outcome": "failure",
        "activity": f"{count} more failed sign-ins from {where} (folded)",
        "actor_id": None,
        "actor_email": None,
        "ip": fold["ip"],
        "user_agent": fold["user_agent"],
        "request_id": None,
        "target_type": None,
        "target_id": None,
        "details": {
            "folded": True,
            "count": count,
            "first_at": first.isoformat(),
            "last_at": last.isoformat(),
            "last_email": fold["email"],
            "burst": config.failed_login_burst,
            "window_seconds": config.failed_login_window,
        },
    }
    return _store(conn, mark_late(event, config))


#: Server answers that mean "try the transaction again": a deadlock or serialization
#: failure (MariaDB 1213, PostgreSQL 40P01 and 40001), SQLite busy.
_RETRY_CODES = {1213, 1205, "40P01", "40001"}
ATTEMPTS = 5


def _worth_retrying(err: sa.exc.DBAPIError) -> bool:
    if isinstance(err, sa.exc.IntegrityError):  # two first attempts from a new address
        return True
    orig = err.orig
    args = getattr(orig, "args", None) or (None,)
    code = getattr(orig, "sqlstate", None) or args[0]
    return code in _RETRY_CODES or "database is locked" in str(orig)


def store_failure(app: Flask, config: AuditConfig, engine: sa.Engine, row: dict[str, t.Any]) -> int | None:
    """Count (and maybe store) one failed sign-in in a transaction of its own.

    Attempts from one address queue on its counter row; one that loses a race (two first
    attempts creating the row, a deadlock) is rolled back whole and tried again, so it is
    counted once. READ COMMITTED keeps InnoDB from locking the gap where a new address's
    row goes, which would make two first attempts deadlock.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with engine.connect() as conn:
                if conn.dialect.name in ("mysql", "mariadb"):
                    conn = conn.execution_options(isolation_level="READ COMMITTED")
                with conn.begin():
                    return count_failure(conn, config, row)
        except sa.exc.DBAPIError as err:
            if attempt == ATTEMPTS or not _worth_retrying(err):
                raise
    return None  # pragma: no cover - the loop returns or raises
