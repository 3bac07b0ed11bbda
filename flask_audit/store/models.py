"""The ``audit_event`` table and its typed model.

``AuditEvent`` lives on flask_audit's own metadata so that it can be imported before any
app exists; :meth:`flask_audit.Audit.init_app` copies the table into the app's
``db.metadata`` so that the app's own ``db.create_all()`` creates it, triggers included.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects import postgresql

TABLE_NAME = "audit_event"

# Column sizes: values longer than these are cut by the recorder, never refused.
LENGTHS: dict[str, int] = {
    "uid": 32,
    "tenant_id": 64,
    "team": 255,
    "event_type": 64,
    "entity": 64,
    "action": 16,
    "outcome": 16,
    "activity": 1000,
    "actor_id": 64,
    "actor_email": 320,
    "ip": 45,
    "user_agent": 512,
    "request_id": 64,
    "target_type": 64,
    "target_id": 128,
}


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Stores naive UTC with microseconds on every backend; returns aware UTC datetimes."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[t.Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("audit times must be timezone-aware; use datetime.now(timezone.utc).")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.timezone.utc)


_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class ExactString(sa.TypeDecorator[str]):
    """A string column that compares exactly on every backend.

    MariaDB's and MySQL's default collations ignore case, accents and trailing spaces, so
    ``tenant_id = 'ACME'`` would also match ``'acme'`` and ``'acme '``: one tenant reading
    another's events. A binary collation without padding keeps every comparison exact, as
    on SQLite and PostgreSQL (MariaDB ``utf8mb4_nopad_bin``, MySQL 8 ``utf8mb4_0900_bin``).
    """

    impl = sa.String
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[t.Any]:
        length = t.cast(sa.String, self.impl_instance).length
        if dialect.name in ("mysql", "mariadb"):
            mariadb = getattr(dialect, "is_mariadb", False)
            collation = "utf8mb4_nopad_bin" if mariadb else "utf8mb4_0900_bin"
            return dialect.type_descriptor(mysql.VARCHAR(length, charset="utf8mb4", collation=collation))
        return dialect.type_descriptor(sa.String(length))


def text(length: int) -> ExactString:
    """An :class:`ExactString` of ``length`` characters (the migrations use it too)."""
    return ExactString(length)


def _str(name: str) -> ExactString:
    return text(LENGTHS[name])


class AuditBase(sa_orm.DeclarativeBase):
    """flask_audit's own declarative base; apps never subclass it."""

    metadata = sa.MetaData()


class AuditEvent(AuditBase):
    """One recorded event. Insert-only: the session and the database refuse changes."""

    __tablename__ = TABLE_NAME

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(_BIGINT, primary_key=True, autoincrement=True)
    uid: sa_orm.Mapped[str] = sa_orm.mapped_column(_str("uid"), unique=True)
    occurred_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(UTCDateTime())
    tenant_id: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("tenant_id"))
    team: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("team"))
    event_type: sa_orm.Mapped[str] = sa_orm.mapped_column(_str("event_type"))
    entity: sa_orm.Mapped[str] = sa_orm.mapped_column(_str("entity"))
    action: sa_orm.Mapped[str] = sa_orm.mapped_column(_str("action"))
    outcome: sa_orm.Mapped[str] = sa_orm.mapped_column(_str("outcome"))
    activity: sa_orm.Mapped[str] = sa_orm.mapped_column(_str("activity"))
    actor_id: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("actor_id"))
    actor_email: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("actor_email"))
    ip: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("ip"))
    user_agent: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("user_agent"))
    request_id: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("request_id"))
    target_type: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("target_type"))
    target_id: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("target_id"))
    details: sa_orm.Mapped[dict[str, t.Any]] = sa_orm.mapped_column(_JSON, default=dict)
    #: A marked late write: stored after the fact (replayed from the spool, recorded with an
    #: explicit ``occurred_at``, or stored long after it happened). Arrival order is the id.
    late: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=False, server_default="0")

    # The admin page lists newest first within a tenant, optionally narrowed by one filter.
    __table_args__ = (
        sa.Index("ix_audit_event_tenant_time", "tenant_id", "occurred_at", "id"),
        sa.Index("ix_audit_event_tenant_actor_time", "tenant_id", "actor_email", "occurred_at"),
        sa.Index("ix_audit_event_tenant_type_time", "tenant_id", "event_type", "occurred_at"),
        sa.Index("ix_audit_event_tenant_entity_time", "tenant_id", "entity", "occurred_at"),
        sa.Index("ix_audit_event_tenant_team_time", "tenant_id", "team", "occurred_at"),
        sa.Index("ix_audit_event_tenant_action_time", "tenant_id", "action", "occurred_at"),
        sa.Index("ix_audit_event_time", "occurred_at"),
        # The few late rows, by arrival: the chart's stored day totals look for any that
        # arrived after they were counted (:mod:`flask_audit.admin.daytotals`). Partial
        # where the database can (nothing to maintain for the rows on time).
        sa.Index(
            "ix_audit_event_late",
            "late",
            "id",
            postgresql_where=sa.text("late"),
            sqlite_where=sa.text("late = 1"),
        ),
    )

    def __repr__(self) -> str:
        return f"<AuditEvent {self.id} {self.event_type} {self.outcome} by {self.actor_email!r}>"


audit_event_table: sa.Table = t.cast(sa.Table, AuditEvent.__table__)


SEAL_TABLE_NAME = "audit_seal"
SEAL_KINDS = ("seal", "prune")
_BLOB = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


class AuditSeal(AuditBase):
    """One link of the HMAC chain over ``audit_event`` (see :mod:`flask_audit.integrity.sealing`).

    A ``seal`` covers the ids after the previous seal's ``last_id`` up to its own; a
    ``prune`` records that every id up to its ``last_id`` was removed on purpose. Each
    ``hmac`` signs the row's fields and the previous ``hmac``; ``prev_hmac`` is unique, so
    two concurrent writers cannot fork the chain. Insert-only, like the events.
    """

    __tablename__ = SEAL_TABLE_NAME

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(_BIGINT, primary_key=True, autoincrement=True)
    kind: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(8))
    sealed_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(UTCDateTime())
    first_id: sa_orm.Mapped[int | None] = sa_orm.mapped_column(sa.BigInteger())
    last_id: sa_orm.Mapped[int] = sa_orm.mapped_column(sa.BigInteger())
    event_count: sa_orm.Mapped[int] = sa_orm.mapped_column(sa.BigInteger())
    cutoff: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime())
    merkle_root: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64))
    manifest: sa_orm.Mapped[bytes] = sa_orm.mapped_column(_BLOB)
    prev_hmac: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64), unique=True)
    hmac: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64), unique=True)

    def __repr__(self) -> str:
        return f"<AuditSeal {self.id} {self.kind} up to {self.last_id}>"


audit_seal_table: sa.Table = t.cast(sa.Table, AuditSeal.__table__)


EXPORT_JOB_TABLE_NAME = "audit_export_job"
EXPORT_STATUSES = ("queued", "sending", "sent", "failed")


class ExportJob(AuditBase):
    """One requested export, durable until its mail is sent (see :mod:`flask_audit.export.jobs`).

    Unlike events, a job is updated as it moves from ``queued`` through ``sending`` to
    ``sent`` or ``failed``. ``snapshot_at`` and ``max_event_id`` pin the rows: a retry or a
    download link later sends exactly what the admin asked for when they asked.
    """

    __tablename__ = EXPORT_JOB_TABLE_NAME

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(_BIGINT, primary_key=True, autoincrement=True)
    created_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(UTCDateTime())
    requested_by_id: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("actor_id"))
    requested_by_email: sa_orm.Mapped[str] = sa_orm.mapped_column(_str("actor_email"))
    tenant_scoped: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=False)
    tenant_id: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("tenant_id"))
    team: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("team"))
    filters: sa_orm.Mapped[dict[str, str]] = sa_orm.mapped_column(_JSON, default=dict)
    timezone: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64), default="UTC")
    snapshot_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(UTCDateTime())
    max_event_id: sa_orm.Mapped[int] = sa_orm.mapped_column(sa.BigInteger(), default=0)
    download_url: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(2000))
    status: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(16), default="queued")
    attempts: sa_orm.Mapped[int] = sa_orm.mapped_column(default=0)
    next_attempt_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(UTCDateTime())
    claimed_until: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime())
    claim_token: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(32))
    last_error: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(1000))
    row_count: sa_orm.Mapped[int | None] = sa_orm.mapped_column(sa.BigInteger())
    file_size: sa_orm.Mapped[int | None] = sa_orm.mapped_column(sa.BigInteger())
    delivery: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(16))
    link_expires_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime())
    sent_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime())
    #: The request that asked for the export, for its ``audit.exported`` event recorded later.
    requested_ip: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("ip"))
    requested_user_agent: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("user_agent"))
    requested_request_id: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("request_id"))

    __table_args__ = (
        sa.Index("ix_audit_export_job_due", "status", "next_attempt_at"),
        sa.Index("ix_audit_export_job_requester", "requested_by_id", "created_at"),
    )

    def __repr__(self) -> str:
        return f"<ExportJob {self.id} {self.status} for {self.requested_by_email!r}>"


export_job_table: sa.Table = t.cast(sa.Table, ExportJob.__table__)


LOGIN_FOLD_TABLE_NAME = "audit_login_fold"


class LoginFold(AuditBase):
    """Failed sign-ins from one address counted beyond the burst (see :mod:`flask_audit.store.folding`).

    Not an event: a counter, updated in place, whose counts reach ``audit_event`` as folded
    ``user.login_failed`` events (each carrying how many attempts it stands for), so that a
    flood stores a few rows and the counts still add up to the attempts.
    """

    __tablename__ = LOGIN_FOLD_TABLE_NAME

    source: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64), primary_key=True)
    tenant_id: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("tenant_id"))
    ip: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("ip"))
    window_start: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(UTCDateTime())
    attempts: sa_orm.Mapped[int] = sa_orm.mapped_column(sa.BigInteger(), default=0)
    unreported: sa_orm.Mapped[int] = sa_orm.mapped_column(sa.BigInteger(), default=0)
    first_unreported_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime())
    last_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime())
    email: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("actor_email"))
    user_agent: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_str("user_agent"))

    __table_args__ = (sa.Index("ix_audit_login_fold_due", "unreported", "window_start"),)


login_fold_table: sa.Table = t.cast(sa.Table, LoginFold.__table__)


STREAM_TABLE_NAME = "audit_stream"


class StreamState(AuditBase):
    """Where one ``AUDIT_STREAMS`` destination stands (see :mod:`flask_audit.stream`).

    The event table is the outbox; this row is the destination's durable cursor (every id
    up to ``cursor`` was delivered, or filtered out) and its lease: one worker at a time
    holds ``lease_holder`` until ``lease_until`` and moves the cursor only while it does.
    Updated in place, unlike the events.
    """

    __tablename__ = STREAM_TABLE_NAME

    name: sa_orm.Mapped[str] = sa_orm.mapped_column(text(64), primary_key=True)
    cursor: sa_orm.Mapped[int] = sa_orm.mapped_column(sa.BigInteger(), default=0)
    lease_holder: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(64))
    lease_until: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime())
    paused: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=False)
    last_error: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(1000))
    failing_since: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime())
    failures: sa_orm.Mapped[int] = sa_orm.mapped_column(default=0)
    alerted: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=False)
    delivered: sa_orm.Mapped[int] = sa_orm.mapped_column(sa.BigInteger(), default=0)
    delivered_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column(UTCDateTime())
    updated_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<StreamState {self.name!r} at {self.cursor}>"


stream_table: sa.Table = t.cast(sa.Table, StreamState.__table__)


DAY_TOTAL_TABLE_NAME = "audit_day_total"


class DayTotal(AuditBase):
    """The chart's counts of one closed calendar day in one zone, for one tenant scope.

    Closed days change only by a late write or a prune, so the admin chart counts each once
    and keeps it here (see :mod:`flask_audit.admin.daytotals`): the first view after a
    restart reads ninety rows instead of a million events. ``scope`` is ``""`` for the
    events without a tenant (that row is written for every counted day, as its mark) and
    ``"=" + tenant_id`` for a tenant's. ``kinds`` is JSON: ``[[entity, event_type, action,
    outcome, count], ...]``; ``teams`` is JSON ``{team: count}``, or NULL when the day had
    too many teams to keep. ``through_id`` is the newest event id when counted. Rows are
    replaced, not updated: a fresh count deletes and inserts.
    """

    __tablename__ = DAY_TOTAL_TABLE_NAME

    zone: sa_orm.Mapped[str] = sa_orm.mapped_column(text(64), primary_key=True)
    day: sa_orm.Mapped[dt.date] = sa_orm.mapped_column(sa.Date(), primary_key=True)
    scope: sa_orm.Mapped[str] = sa_orm.mapped_column(text(LENGTHS["tenant_id"] + 1), primary_key=True)
    kinds: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.Text())
    teams: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.Text())
    through_id: sa_orm.Mapped[int] = sa_orm.mapped_column(sa.BigInteger())
    counted_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<DayTotal {self.zone} {self.day} {self.scope!r}>"


day_total_table: sa.Table = t.cast(sa.Table, DayTotal.__table__)
