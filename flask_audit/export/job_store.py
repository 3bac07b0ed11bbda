"""The export job table: storing a job, reading it back, claiming it and storing its outcome.

The SQL behind :mod:`flask_audit.export.jobs`, which runs the jobs. One ``UPDATE`` claims a job that
is due or whose runner's claim ran out, and an outcome is stored only by the runner that
still holds the claim.

A job's file format rides in its stored arguments (``filters``) under ``"format"``, absent
for CSV, so that jobs stored before JSON lines existed read as CSV and no column is needed:
:func:`job_format` and :func:`job_filters` take the two apart.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import typing as t
import uuid

import sqlalchemy as sa

from ..store.models import audit_event_table
from ..store.models import export_job_table
from ..store.models import ExportJob
from ..store.models import LENGTHS
from ..store.sanitize import clean_text

if t.TYPE_CHECKING:
    from ..config import AuditConfig
    from ..query.filters import AuditFilter

#: How long a runner holds a job before another may take it over; longer than any export.
CLAIM_SECONDS = 15 * 60
#: The longest wait between two attempts, however many have failed.
MAX_RETRY_DELAY = 6 * 3600
ERROR_LENGTH = 1000
#: What a job keeps of the request that asked for it (``requested_<name>`` columns).
ORIGIN_FIELDS = ("ip", "user_agent", "request_id")
#: The key of a job's stored arguments that holds its format; CSV when it is absent.
FORMAT_KEY = "format"
DEFAULT_FORMAT = "csv"

_jobs = export_job_table.c


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def create_job(
    engine: sa.Engine,
    *,
    requested_by_id: str | None,
    requested_by_email: str,
    tenant_scoped: bool,
    tenant_id: str | None,
    team: str | None,
    flt: AuditFilter,
    timezone: str,
    now: dt.datetime | None = None,
    origin: c.Mapping[str, str | None] | None = None,
    hold_seconds: float = 0,
    fmt: str = DEFAULT_FORMAT,
) -> int:
    """Store a queued job for ``flt`` as it stands now and return its id.

    :param origin: ``ip``, ``user_agent`` and ``request_id`` of the asking request, which
        the ``audit.exported`` event carries though it is recorded after that request.
    :param hold_seconds: keep runners off the job this long, until :func:`release_hold`
        (the export limits count it first; see :mod:`flask_audit.export.limits`).
    :param fmt: ``"csv"`` or ``"jsonl"`` (:data:`flask_audit.export.csv_export.FORMATS`).
    """
    stored = flt.to_args()
    if fmt != DEFAULT_FORMAT:
        stored[FORMAT_KEY] = fmt
    now, asked = now or utcnow(), origin or {}
    with engine.begin() as conn:
        newest = conn.execute(sa.select(sa.func.max(audit_event_table.c.id))).scalar()
        values = {
            "created_at": now,
            "requested_by_id": requested_by_id,
            "requested_by_email": requested_by_email,
            "tenant_scoped": tenant_scoped,
            "tenant_id": tenant_id,
            "team": team,
            **{f"requested_{name}": clean_text(asked.get(name), LENGTHS[name]) for name in ORIGIN_FIELDS},
            "filters": stored,
            "timezone": timezone,
            "snapshot_at": now,
            "max_event_id": newest or 0,
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": now + dt.timedelta(seconds=hold_seconds),
        }
        inserted = conn.execute(sa.insert(export_job_table), values).inserted_primary_key
    return int(t.cast(c.Sequence[t.Any], inserted)[0])


def job_format(job: ExportJob) -> str:
    """The job's file format: ``"csv"`` or ``"jsonl"``."""
    return str((job.filters or {}).get(FORMAT_KEY, DEFAULT_FORMAT))


def job_filters(job: ExportJob) -> dict[str, str]:
    """The job's filters as :meth:`AuditFilter.to_args` gave them, without its format."""
    return {name: value for name, value in (job.filters or {}).items() if name != FORMAT_KEY}


def release_hold(engine: sa.Engine, job_id: int, now: dt.datetime) -> None:
    """Let runners take a held job now."""
    stmt = (
        sa.update(export_job_table)
        .where(_jobs.id == job_id, _jobs.status == "queued", _jobs.attempts == 0)
        .values(next_attempt_at=now)
    )
    with engine.begin() as conn:
        conn.execute(stmt)


def delete_held(engine: sa.Engine, job_id: int) -> None:
    """Delete a job no runner has taken yet (one the export limits refused)."""
    stmt = sa.delete(export_job_table).where(
        _jobs.id == job_id, _jobs.status == "queued", _jobs.attempts == 0
    )
    with engine.begin() as conn:
        conn.execute(stmt)


def get_job(engine: sa.Engine, job_id: int) -> ExportJob | None:
    """The job as stored now (a detached copy)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(export_job_table).where(_jobs.id == job_id)).one_or_none()
    return None if row is None else ExportJob(**row._asdict())


def recent_jobs(
    engine: sa.Engine,
    *,
    requested_by_id: str | None,
    tenant_scoped: bool,
    tenant_id: str | None,
    limit: int = 50,
) -> list[ExportJob]:
    """One requester's latest jobs, newest first, within their tenant."""
    stmt = sa.select(export_job_table).where(_jobs.requested_by_id == requested_by_id)
    if tenant_scoped:
        stmt = stmt.where(_jobs.tenant_id.is_(None) if tenant_id is None else _jobs.tenant_id == tenant_id)
    stmt = stmt.order_by(_jobs.created_at.desc(), _jobs.id.desc()).limit(limit)
    with engine.connect() as conn:
        return [ExportJob(**row._asdict()) for row in conn.execute(stmt)]


def _claimable(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.and_(_jobs.status == "queued", _jobs.next_attempt_at <= now),
        sa.and_(_jobs.status == "sending", _jobs.claimed_until < now),
    )


def claim(engine: sa.Engine, job_id: int, now: dt.datetime) -> str | None:
    """Take ``job_id`` if it is due or its runner's claim ran out; return the claim token."""
    token = uuid.uuid4().hex
    stmt = (
        sa.update(export_job_table)
        .where(_jobs.id == job_id, _claimable(now))
        .values(
            status="sending",
            attempts=_jobs.attempts + 1,
            claimed_until=now + dt.timedelta(seconds=CLAIM_SECONDS),
            claim_token=token,
        )
    )
    with engine.begin() as conn:
        return token if conn.execute(stmt).rowcount == 1 else None


def due_job_ids(engine: sa.Engine, now: dt.datetime, limit: int | None = None) -> list[int]:
    """Jobs a runner may claim now, oldest due first."""
    stmt = sa.select(_jobs.id).where(_claimable(now)).order_by(_jobs.next_attempt_at, _jobs.id).limit(limit)
    with engine.connect() as conn:
        return list(conn.execute(stmt).scalars())


def retry_delay(config: AuditConfig, attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failure."""
    return float(min(config.export_retry_delay * 2 ** max(attempts - 1, 0), MAX_RETRY_DELAY))


def _release(engine: sa.Engine, job_id: int, token: str, values: dict[str, t.Any]) -> None:
    """Store the outcome, if this runner still holds the claim."""
    stmt = (
        sa.update(export_job_table)
        .where(_jobs.id == job_id, _jobs.claim_token == token)
        .values(claimed_until=None, claim_token=None, **values)
    )
    with engine.begin() as conn:
        conn.execute(stmt)


def _failed(
    engine: sa.Engine,
    config: AuditConfig,
    job: ExportJob,
    token: str,
    err: Exception,
    now: dt.datetime,
    *,
    permanent: bool = False,
) -> str:
    """Put the job back in the queue, or fail it: after its last attempt, or at once when
    trying again cannot help (``permanent``)."""
    status = "failed" if permanent or job.attempts >= config.export_max_attempts else "queued"
    message = f"{type(err).__name__}: {err}"
    values = {
        "status": status,
        "last_error": message[: ERROR_LENGTH - 1] + "…" if len(message) > ERROR_LENGTH else message,
        "next_attempt_at": now + dt.timedelta(seconds=retry_delay(config, job.attempts)),
    }
    _release(engine, job.id, token, values)
    return status
