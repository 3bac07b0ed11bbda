"""Export jobs: rows that survive a restart, claimed atomically, retried with back-off.

A job is ``queued`` until a runner claims it: one ``UPDATE`` sets ``sending`` and a claim
that expires, so two runners never hold it at once, and the job of a runner that was
killed is taken again once its claim has run out. A sent mail makes it ``sent``; a failure
puts it back in the queue for ``AUDIT_EXPORT_RETRY_DELAY`` seconds, doubled each attempt,
until ``AUDIT_EXPORT_MAX_ATTEMPTS`` is reached: then it is ``failed``, with the error kept
in ``last_error``. Nothing is lost: at worst a runner killed right after sending makes the
mail go out twice, never zero times.

Runners: a thread started in the web process after the response (``AUDIT_EXPORT_MODE =
"inline"``, the default), ``flask audit exports run`` (a worker, or a cron job), or the
app's own queue calling :func:`run_job` inside an app context.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import datetime as dt
import logging
import tempfile
import threading
import time
import typing as t
import uuid

import sqlalchemy as sa
from flask import after_this_request
from flask import current_app
from flask import Flask
from flask import Response

from . import mail
from .csv_export import export_statement
from .csv_export import write_export
from .filters import AuditFilter
from .models import audit_event_table
from .models import export_job_table
from .models import ExportJob
from .models import LENGTHS
from .sanitize import clean_text

if t.TYPE_CHECKING:
    from .config import AuditConfig
    from .extension import _AuditState
    from .extension import Audit

log = logging.getLogger(__name__)

#: How long a runner holds a job before another may take it over; longer than any export.
CLAIM_SECONDS = 15 * 60
#: The longest wait between two attempts, however many have failed.
MAX_RETRY_DELAY = 6 * 3600
ERROR_LENGTH = 1000
#: What a job keeps of the request that asked for it (``requested_<name>`` columns).
ORIGIN_FIELDS = ("ip", "user_agent", "request_id")

_jobs = export_job_table.c
_threads: set[threading.Thread] = set()
_threads_lock = threading.Lock()


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """What one pass of :func:`run_due` did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def processed(self) -> int:
        return self.sent + self.retrying + self.failed

    def __add__(self, other: RunSummary) -> RunSummary:
        pairs = zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)
        return RunSummary(*(a + b for a, b in pairs))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _state(app: Flask | None = None) -> _AuditState:
    return t.cast("Audit", (app or current_app).extensions["audit"])._state(app)


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
    link_for: c.Callable[[int], str] | None = None,
    now: dt.datetime | None = None,
    origin: c.Mapping[str, str | None] | None = None,
) -> int:
    """Store a queued job for ``flt`` as it stands now and return its id.

    :param link_for: the absolute download URL of a job id, stored for a mail sent
        later outside the request (only a request knows the site's address).
    :param origin: ``ip``, ``user_agent`` and ``request_id`` of the asking request, which
        the ``audit.exported`` event carries though it is recorded after that request.
    """
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
            "filters": flt.to_args(),
            "timezone": timezone,
            "snapshot_at": now,
            "max_event_id": newest or 0,
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": now,
        }
        inserted = conn.execute(sa.insert(export_job_table), values).inserted_primary_key
        job_id = int(t.cast(c.Sequence[t.Any], inserted)[0])
        if link_for is not None:
            conn.execute(
                sa.update(export_job_table).where(_jobs.id == job_id).values(download_url=link_for(job_id))
            )
    return job_id


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


def job_statement(job: ExportJob, config: AuditConfig) -> sa.Select[t.Any]:
    """The rows of ``job``: its filters, tenant and window, as of when it was requested."""
    flt = AuditFilter.from_args(job.filters, timezone=job.timezone)
    return export_statement(
        flt,
        retention_days=config.retention_days,
        tenant_scoped=job.tenant_scoped,
        tenant_id=job.tenant_id,
        now=job.snapshot_at,
        max_event_id=job.max_event_id,
    )


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


def run_job(job_id: int, *, now: dt.datetime | None = None) -> str | None:
    """Claim and run one job in the current app; return its new status (None: not claimed)."""
    state = _state()
    engine, config = state.engine, state.config
    now = now or utcnow()
    token = claim(engine, job_id, now)
    job = get_job(engine, job_id) if token else None
    if token is None or job is None:
        return None
    try:
        with tempfile.TemporaryFile(prefix="flask-audit-export-") as file:
            with engine.connect() as conn:
                stats = write_export(conn, job_statement(job, config), file)
            delivery = mail.send_export(job, file, stats, config)
    except Exception as err:  # every failure is kept on the job, which is retried
        log.warning("Export job %s failed (attempt %s): %s", job_id, job.attempts, err, exc_info=True)
        return _failed(engine, config, job, token, err, now)
    done = {
        "status": "sent",
        "sent_at": utcnow(),
        "row_count": stats.rows,
        "file_size": stats.bytes,
        "delivery": delivery.method,
        "link_expires_at": delivery.link_expires_at,
        "last_error": None,
    }
    _release(engine, job_id, token, done)
    _record(job, stats.rows, delivery.method, engine)
    return "sent"


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
    engine: sa.Engine, config: AuditConfig, job: ExportJob, token: str, err: Exception, now: dt.datetime
) -> str:
    status = "failed" if job.attempts >= config.export_max_attempts else "queued"
    message = f"{type(err).__name__}: {err}"
    values = {
        "status": status,
        "last_error": message[: ERROR_LENGTH - 1] + "…" if len(message) > ERROR_LENGTH else message,
        "next_attempt_at": now + dt.timedelta(seconds=retry_delay(config, job.attempts)),
    }
    _release(engine, job.id, token, values)
    return status


class _Requester(t.NamedTuple):
    """The admin who asked, as ``record()`` reads a user: the job may run outside their request."""

    id: str | None
    email: str
    is_authenticated: bool = True

    def get_id(self) -> str | None:
        return self.id


def _record(job: ExportJob, rows: int, delivery: str, engine: sa.Engine) -> None:
    """``audit.exported`` by the requester; a failure to record is kept on the sent job."""
    audit = t.cast("Audit", current_app.extensions["audit"])
    try:
        audit.record(
            "audit.exported",
            activity=f"Exported {rows} audit event(s) by email to {job.requested_by_email}",
            actor=_Requester(job.requested_by_id, job.requested_by_email),
            actor_email=job.requested_by_email,
            tenant_id=job.tenant_id,
            team=job.team,
            details={"job_id": job.id, "filters": job.filters, "rows": rows, "delivery": delivery},
            ip=job.requested_ip,
            user_agent=job.requested_user_agent,
            request_id=job.requested_request_id,
        )
    except Exception as err:
        log.error("Export job %s was sent but could not be recorded: %s", job.id, err, exc_info=True)
        with engine.begin() as conn:
            note = f"Sent, but the audit.exported event was not recorded: {type(err).__name__}: {err}"
            conn.execute(
                sa.update(export_job_table).where(_jobs.id == job.id).values(last_error=note[:ERROR_LENGTH])
            )


def run_due(*, max_jobs: int | None = None, now: dt.datetime | None = None) -> RunSummary:
    """Run each job due now once (a job that fails again waits for its next pass)."""
    engine = _state().engine
    counts = {"sent": 0, "queued": 0, "failed": 0, None: 0}
    for job_id in due_job_ids(engine, now or utcnow(), max_jobs):
        counts[run_job(job_id, now=now)] += 1
    return RunSummary(counts["sent"], counts["queued"], counts["failed"], counts[None])


def work(*, interval: float = 5.0, max_jobs: int | None = None) -> RunSummary:
    """Run due jobs until interrupted or ``max_jobs`` jobs, polling every ``interval`` seconds."""
    total = RunSummary()
    try:
        while max_jobs is None or total.processed < max_jobs:
            done = run_due(max_jobs=None if max_jobs is None else max_jobs - total.processed)
            total += done
            if not done.processed:
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
    return total


def run_after_response(job_id: int) -> None:
    """Run ``job_id`` in a thread of this process, started as the response goes out.

    Not from ``response.call_on_close``: Werkzeug's development server may close a
    response only when the browser drops its kept-alive connection, minutes later.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    @after_this_request
    def start(response: Response) -> Response:
        start_thread(app, job_id)
        return response


def start_thread(app: Flask, job_id: int) -> threading.Thread:
    """Run ``job_id`` (retrying as it falls due), then any other due job, in a daemon thread."""
    thread = threading.Thread(
        target=_drain, args=(app, job_id), name=f"flask-audit-export-{job_id}", daemon=True
    )
    with _threads_lock:
        _threads.add(thread)
    thread.start()
    return thread


def _drain(app: Flask, job_id: int) -> None:
    try:
        with app.app_context():
            engine = _state().engine
            while run_job(job_id) == "queued":
                job = get_job(engine, job_id)
                if job is None:
                    break
                time.sleep(max((job.next_attempt_at - utcnow()).total_seconds(), 0.0))
            # Jobs left by a restart, or retries due now, need no other runner either.
            run_due(max_jobs=10)
    except Exception:
        log.exception("The export runner thread of job %s stopped", job_id)
    finally:
        with _threads_lock:
            _threads.discard(threading.current_thread())


def wait_for_threads(timeout: float = 30.0) -> bool:
    """Wait for this process's export threads (tests, graceful shutdown); False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        with _threads_lock:
            running = [thread for thread in _threads if thread.is_alive()]
        if not running:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        running[0].join(left)
