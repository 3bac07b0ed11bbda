"""The one write path: every event, whatever produced it, is stored here (built by ``rows``).

An event either commits in its own short transaction (the default: a request that fails
or never commits cannot lose it) or joins a caller's session to commit or roll back with
a business change. When the database refuses a standalone write, ``AUDIT_ON_WRITE_ERROR``
decides: raise :class:`AuditWriteError`, or spool the event to a local file for replay.
"""

from __future__ import annotations

import collections.abc as c
import logging
import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import Flask

if t.TYPE_CHECKING:
    from ..state import AuditState

from ..config import AuditConfig
from ..exceptions import AuditWriteError
from ..signals import event_recorded
from ..signals import write_failed
from . import folding
from . import spool
from .models import audit_event_table
from .models import AuditEvent
from .rows import mark_late

log = logging.getLogger("flask_audit")
MISSING_TABLE = (
    "the audit tables are missing: run db.create_all(), or flask db upgrade flask_audit@head"
    " with Flask-Migrate; events wait in AUDIT_SPOOL_PATH until then (flask audit replay)"
)
_INSERT = sa.insert(audit_event_table)
_ID_BY_UID = sa.select(audit_event_table.c.id).where(audit_event_table.c.uid == sa.bindparam("uid"))
_IDS_BY_UID = sa.select(audit_event_table.c.uid, audit_event_table.c.id).where(
    audit_event_table.c.uid.in_(sa.bindparam("uids", expanding=True))
)
#: Dialects whose driver parses a many-row ``INSERT ... RETURNING`` anew for every batch.
_MANY_ROWS_PARSED_PER_BATCH = frozenset({"postgresql"})
_IDS_PER_READ = 500  # well below every backend's limit on bound parameters
_PENDING = "_flask_audit_pending"
_DEFERRED = "_flask_audit_deferred"
_QUEUED = "_flask_audit_queued"
_WROTE = "_flask_audit_wrote"  # set when a session writes; SQLite then holds its lock

_MANAGER = sa_orm.attributes.manager_of_class(AuditEvent)


def _as_event(row: c.Mapping[str, t.Any], event_id: int | None) -> AuditEvent:
    """The returned object: a detached copy of the stored row, or a transient one if unstored.

    Filled the way the ORM fills loaded rows (attribute events cost more than the insert).
    """
    if not _MANAGER.mapper.configured:
        sa_orm.configure_mappers()
    event: AuditEvent = _MANAGER.new_instance()
    event.__dict__.update(row)
    if event_id is not None:
        _mark_stored(event, event_id)
    return event


def _mark_stored(event: AuditEvent, event_id: int) -> None:
    # Detached with its identity: a later session.add() never inserts it again, and any
    # change to it is refused at flush.
    event.__dict__["id"] = event_id
    sa_orm.make_transient_to_detached(event)


def write(
    app: Flask,
    state: AuditState,
    row: dict[str, t.Any],
    session: sa_orm.Session | sa_orm.scoped_session[t.Any] | None,
) -> AuditEvent:
    """Store ``row`` in its own transaction, or add it to ``session`` to share its fate."""
    config = state.config
    if not config.enabled:
        return _as_event(row, None)
    if session is not None:
        # Inserted in one batch as the session commits (see _insert_queued), not through
        # the unit of work: per-object ORM flushes cost several times the insert itself.
        event = _as_event(row, None)
        session.info.setdefault(_QUEUED, []).append((app, event, row))
        return event
    engine = state.writer_engine
    writer = _sqlite_writer(state.db, engine)
    if writer is not None:
        # SQLite has one writer at a time and this request's session holds the lock: a
        # second connection would wait for it forever. Write right after it lets go,
        # whether it commits or rolls back.
        writer.info.setdefault(_DEFERRED, []).append((app, config, engine, row))
        return _as_event(row, None)
    return store(app, config, engine, row)


def _insert_one(conn: sa.Connection, row: dict[str, t.Any]) -> int:
    key = conn.execute(_INSERT, row).inserted_primary_key
    return t.cast(int, key[0] if key else None)


#: Dialects whose driver spends a round trip of its own on BEGIN and another on COMMIT
#: (psycopg): there a lone INSERT in autocommit mode is the same one-statement transaction.
_AUTOCOMMIT_DIALECTS = frozenset({"postgresql"})


def _insert_alone(engine: sa.Engine, row: dict[str, t.Any]) -> int:
    """Insert ``row`` in a transaction of its own, in as few round trips as the driver allows."""
    if engine.dialect.name in _AUTOCOMMIT_DIALECTS:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            return _insert_one(conn, row)
    with engine.begin() as conn:
        return _insert_one(conn, row)


def _insert_reconnecting(engine: sa.Engine, row: dict[str, t.Any]) -> int:
    """Insert ``row``, once more on a fresh connection if the pooled one had died.

    After a database restart every idle pooled connection is dead; SQLAlchemy invalidates
    the pool on the first failure, so one retry reaches the new server. ``uid`` is unique:
    if the first attempt did commit before its connection died, the retry finds that row
    instead of adding a second one.
    """
    try:
        return _insert_alone(engine, row)
    except sa.exc.DBAPIError as err:
        if not err.connection_invalidated:
            raise
    try:
        return _insert_alone(engine, row)
    except sa.exc.IntegrityError:
        with engine.connect() as conn:
            found = conn.execute(_ID_BY_UID, {"uid": row["uid"]}).scalar()
        if found is None:
            raise
        return int(found)


def store(app: Flask, config: AuditConfig, engine: sa.Engine, row: dict[str, t.Any]) -> AuditEvent:
    """Insert one event in its own transaction, applying ``AUDIT_ON_WRITE_ERROR`` on failure.

    Any failure of the database layer counts: a driver or network error, a pool that had
    no connection to give in time, a value the driver could not send.
    """
    mark_late(row, config)
    try:
        if folding.foldable(config, row):
            event_id = folding.store_failure(app, config, engine, row)
            if event_id is None:  # counted in its address's fold: in the trail with the fold's count
                return _as_event(row, None)
        else:
            event_id = _insert_reconnecting(engine, row)
    except sa.exc.SQLAlchemyError as err:
        if missing_table(err):  # a set-up mistake, not an outage: never a failed sign-in
            log.error(MISSING_TABLE)
            return refuse(app, config, row, MISSING_TABLE, err, spool_anyway=True)
        return refuse(app, config, row, str(getattr(err, "orig", None) or err), err)
    event = _as_event(row, event_id)
    event_recorded.send(app, event=event, spooled=False)
    return event


def missing_table(err: sa.exc.SQLAlchemyError) -> bool:
    """Whether the database said that the audit table does not exist."""
    orig = getattr(err, "orig", None)
    code = getattr(orig, "sqlstate", None) or (getattr(orig, "args", None) or (None,))[0]
    return code in ("42P01", "42S02", 1146) or f"no such table: {audit_event_table.name}" in str(orig)


def refuse(
    app: Flask,
    config: AuditConfig,
    row: dict[str, t.Any],
    reason: str,
    cause: BaseException | None,
    *,
    spool_anyway: bool = False,
) -> AuditEvent:
    """An event that cannot be stored now: spool it, or raise, as ``AUDIT_ON_WRITE_ERROR`` says.

    ``write_failed`` goes out first either way, so that a sign-in whose event is lost can
    be taken back before the error reaches the view. ``spool_anyway``: a missing table is
    spooled whatever the policy, until ``flask audit replay`` can load it.
    """
    spooled = spool_anyway or config.on_write_error == "spool"
    event = _as_event(row, None)
    write_failed.send(app, event=event, reason=reason, spooled=spooled)
    if not spooled:
        raise AuditWriteError(
            f"The audit event {row['event_type']!r} could not be stored: {reason}."
            " Set AUDIT_ON_WRITE_ERROR = 'spool' to keep such events in a local file instead."
        ) from cause
    spool.append(config.spool_path, row)
    event_recorded.send(app, event=event, spooled=True)
    return event


def _trail_connection(app: Flask, session: sa_orm.Session) -> sa.Connection:
    """The session's connection to the database of the trail (``AUDIT_BIND``'s, if set)."""
    from ..state import audit_state

    state = audit_state(app)
    if state.config.bind is None:
        return session.connection()
    return session.connection(bind_arguments={"bind": state.engine})


def write_in_flush(app: Flask, session: sa_orm.Session, rows: list[dict[str, t.Any]]) -> None:
    """Insert tracked-change events on the flushing session's connection: one transaction."""
    conn = _trail_connection(app, session)
    pending = session.info.setdefault(_PENDING, [])
    for row in rows:
        pending.append((app, _as_event(row, _insert_one(conn, row))))


def _sqlite_writer(db: t.Any, engine: sa.Engine) -> sa_orm.Session | None:
    """The app's session if, on SQLite, it has written in its open transaction."""
    if engine.dialect.name != "sqlite":
        return None
    registry = db.session.registry
    if not registry.has():
        return None
    session: sa_orm.Session = registry()
    return session if session.info.get(_WROTE) and session.in_transaction() else None


def _mark_write(session: sa_orm.Session, *args: t.Any) -> None:
    session.info[_WROTE] = True


def _mark_dml(state: sa_orm.ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_WROTE] = True


def _announce_committed(session: sa_orm.Session) -> None:
    for app, event in session.info.pop(_PENDING, ()):
        event_recorded.send(app, event=event, spooled=False)


def _insert_queued(session: sa_orm.Session) -> None:
    """Insert the events that joined this session, in one batch, inside its transaction."""
    queued = session.info.pop(_QUEUED, None)
    if not queued:
        return
    from ..state import audit_state

    conn = _trail_connection(queued[0][0], session)
    rows = [mark_late(row, audit_state(app).config) for app, _event, row in queued]
    ids = _insert_many(conn, rows)
    pending = session.info.setdefault(_PENDING, [])
    for app, event, row in queued:
        event.__dict__["late"] = row["late"]
        _mark_stored(event, ids[row["uid"]])
        pending.append((app, event))


def _insert_many(conn: sa.Connection, rows: list[dict[str, t.Any]]) -> dict[str, int]:
    """Insert ``rows`` and return their ids by ``uid``.

    On PostgreSQL a plain executemany, then one read of the ids: there, an ``INSERT ...
    RETURNING`` of many rows is one long statement that psycopg parses anew for every batch,
    which costs more than the rows. Elsewhere ``RETURNING`` is the cheaper way.
    """
    table, ids = audit_event_table, dict[str, int]()
    if conn.dialect.name in _MANY_ROWS_PARSED_PER_BATCH:
        conn.execute(_INSERT, rows)
        uids = [row["uid"] for row in rows]
        for start in range(0, len(uids), _IDS_PER_READ):
            found = conn.execute(_IDS_BY_UID, {"uids": uids[start : start + _IDS_PER_READ]})
            ids.update((uid, event_id) for uid, event_id in found)
        return ids
    result = conn.execute(_INSERT.returning(table.c.uid, table.c.id), rows)
    ids.update((uid, event_id) for uid, event_id in result)
    missing = [row["uid"] for row in rows if row["uid"] not in ids]
    if missing:  # a driver that returned fewer rows than it inserted: ask by uid instead
        found = conn.execute(_IDS_BY_UID, {"uids": missing})
        ids.update((uid, event_id) for uid, event_id in found)
    return ids


def _forget_pending(session: sa_orm.Session, *args: t.Any) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_QUEUED, None)


def _store_deferred(session: sa_orm.Session, transaction: sa_orm.SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_WROTE, None)
        session.info.pop(_QUEUED, None)  # never committed: the events go with the transaction
        for app, config, engine, row in session.info.pop(_DEFERRED, ()):
            store(app, config, engine, row)


def install_session_hooks() -> None:
    """Announce joined events after commit; note sessions that write; store deferred events."""
    if not sa.event.contains(sa_orm.Session, "after_commit", _announce_committed):
        sa.event.listen(sa_orm.Session, "before_commit", _insert_queued)
        sa.event.listen(sa_orm.Session, "after_commit", _announce_committed)
        sa.event.listen(sa_orm.Session, "after_rollback", _forget_pending)
        sa.event.listen(sa_orm.Session, "after_transaction_end", _store_deferred)
        sa.event.listen(sa_orm.Session, "after_flush", _mark_write)
        sa.event.listen(sa_orm.Session, "do_orm_execute", _mark_dml)
