"""Per-admin export limits, counted in the job table so that every process sees them.

An admin may have ``AUDIT_EXPORT_MAX_PENDING`` jobs waiting (queued or sending) and ask for
at most ``AUDIT_EXPORT_RATE`` exports per period. Each export reads the trail, writes a
file and sends a mail, so without a cap a held-down button fills the mailbox and the disk.

A new job is stored first, held back from the runners, and only then counted together
with every committed job of its admin. Of two requests that race, the later one to count
sees the earlier one, so the limits hold across processes and hosts without a lock; at
worst both are refused and the admin asks again. A refused job is deleted; an admitted
one is released to the runners at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import typing as t

import sqlalchemy as sa

from ..store.models import export_job_table
from . import job_store

if t.TYPE_CHECKING:
    from ..config import AuditConfig
    from ..store.models import ExportJob

#: How long a new job waits for its admission; one whose request died runs after it anyway.
HOLD_SECONDS = 60
PERIOD_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}

_jobs = export_job_table.c


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why an export was refused, and in how many seconds asking again may succeed."""

    message: str
    retry_after: int


def admit(engine: sa.Engine, config: AuditConfig, job_id: int, now: dt.datetime) -> Refusal | None:
    """Release the held job ``job_id`` to the runners, or delete it and say why not."""
    job = job_store.get_job(engine, job_id)
    refusal = None if job is None else check(engine, config, job, now)
    if refusal is None:
        job_store.release_hold(engine, job_id, now)
    else:
        job_store.delete_held(engine, job_id)
    return refusal


def check(engine: sa.Engine, config: AuditConfig, job: ExportJob, now: dt.datetime) -> Refusal | None:
    """The limit that ``job``, already stored, goes beyond; None within both."""
    with engine.connect() as conn:
        if config.export_max_pending is not None:
            pending = conn.execute(
                sa.select(sa.func.count()).where(_owner(job), _jobs.status.in_(("queued", "sending")))
            ).scalar_one()
            if pending > config.export_max_pending:
                return _too_many_pending(config.export_max_pending)
        if config.export_rate is not None:
            count, period = config.export_rate
            since = now - dt.timedelta(seconds=period)
            earlier = conn.execute(
                sa.select(_jobs.created_at)
                .where(_owner(job), _jobs.created_at > since, _jobs.id != job.id)
                .order_by(_jobs.created_at)
            ).scalars()
            times = list(earlier)
            if len(times) >= count:
                # Asking again succeeds once enough of these have left the window.
                free_at = times[len(times) - count] + dt.timedelta(seconds=period)
                return _too_many_requests(count, period, free_at, now)
    return None


def _owner(job: ExportJob) -> sa.ColumnElement[bool]:
    """The jobs of the same admin: by their id, or by address for a user without one."""
    if job.requested_by_id is not None:
        return _jobs.requested_by_id == job.requested_by_id
    return sa.and_(_jobs.requested_by_id.is_(None), _jobs.requested_by_email == job.requested_by_email)


def _too_many_pending(limit: int) -> Refusal:
    return Refusal(
        f"You already have {limit} audit log export{'' if limit == 1 else 's'} waiting to be sent,"
        " the most allowed (AUDIT_EXPORT_MAX_PENDING). Wait for them to arrive before asking for"
        " another; the exports page shows their status.",
        HOLD_SECONDS,
    )


def _too_many_requests(count: int, period: int, free_at: dt.datetime, now: dt.datetime) -> Refusal:
    name = PERIOD_NAMES.get(period, f"{period} seconds")
    return Refusal(
        f"You have asked for {count} audit log export{'' if count == 1 else 's'} in the last {name},"
        f" the most allowed (AUDIT_EXPORT_RATE). You can export again after"
        f" {free_at:%Y-%m-%d %H:%M:%S} UTC.",
        max(math.ceil((free_at - now).total_seconds()), 1),
    )
