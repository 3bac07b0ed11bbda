"""Export jobs: rows that survive a restart, claimed atomically, retried with back-off.

A job is ``queued`` until a runner claims it: one ``UPDATE`` sets ``sending`` and a claim
that expires, so two runners never hold it at once, and the job of a runner that was
killed is taken again once its claim has run out. A sent mail makes it ``sent``; a failure
that may pass (a mail server down, an SMTP 4xx reply) puts it back in the queue for
``AUDIT_EXPORT_RETRY_DELAY`` seconds, doubled each attempt, until
``AUDIT_EXPORT_MAX_ATTEMPTS`` is reached: then it is ``failed``, with the error kept in
``last_error``. A failure that cannot pass by waiting (no mailer, no sender, bad mail
settings, an SMTP 5xx reply; see :func:`flask_audit.export.mailers.is_permanent`) fails the
job at once, with its reason. Nothing is lost: at worst a runner killed right after sending
makes the mail go out twice, never zero times. The file is stored before it is mailed (see
:mod:`flask_audit.export.files`), so that the exports page can offer it for download once
the job is sent. Each pass of :func:`run_due` also deletes the stored files whose download
link has expired.

Runners: a thread started in the web process after the response (``AUDIT_EXPORT_MODE =
"inline"``, the default), ``flask audit exports run`` (a worker, or a cron job), or the
app's own queue calling :func:`run_job` inside an app context. Storing, reading and claiming
the rows is in :mod:`flask_audit.export.job_store`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import tempfile
import threading
import time
import typing as t

import sqlalchemy as sa
from flask import after_this_request
from flask import current_app
from flask import Flask
from flask import Response

from ..compliance.settings import tenant_window
from ..exceptions import AuditConfigError
from ..query.filters import AuditFilter
from ..state import audit_state
from ..state import AuditState
from ..state import current_audit
from ..store.models import export_job_table
from ..store.models import ExportJob
from . import files
from . import mail
from . import mailers
from .csv_export import export_statement
from .csv_export import write_export
from .formats import format_of
from .job_store import _failed
from .job_store import _jobs

# Re-exported: the tests and other callers use these as flask_audit.export.jobs.<name>.
from .job_store import _release
from .job_store import claim
from .job_store import due_job_ids
from .job_store import ERROR_LENGTH
from .job_store import get_job
from .job_store import job_filters
from .job_store import job_format
from .job_store import utcnow

if t.TYPE_CHECKING:
    from ..config import AuditConfig

log = logging.getLogger(__name__)

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


def _state(app: Flask | None = None) -> AuditState:
    return audit_state(app)


def job_statement(job: ExportJob) -> sa.Select[t.Any]:
    """The rows of ``job``: its filters, tenant and window, as of when it was requested."""
    flt = AuditFilter.from_args(job_filters(job), timezone=job.timezone)
    return export_statement(
        flt,
        retention_days=tenant_window(current_app._get_current_object(), job.tenant_id),  # type: ignore[attr-defined]
        tenant_scoped=job.tenant_scoped,
        tenant_id=job.tenant_id,
        now=job.snapshot_at,
        max_event_id=job.max_event_id,
    )


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
        if mailers.mailer_name(current_app) is None:  # before reading the trail for nothing
            raise AuditConfigError(mailers.NO_MAILER)
        fmt = job_format(job)
        with tempfile.TemporaryFile(prefix="flask-audit-export-") as file:
            with engine.connect() as conn:
                stats = write_export(conn, job_statement(job), file, fmt=fmt)
            compress = stats.bytes > config.export_compress_above_bytes
            files.store(config, job.id, file, compress=compress, extension=format_of(fmt).extension)
            delivery = mail.send_export(job, file, stats, config)
    except Exception as err:  # every failure is kept on the job, retried if that can help
        permanent = mailers.is_permanent(err)
        log.warning(
            "Export job %s failed (attempt %s): %s", job_id, job.attempts, err, exc_info=not permanent
        )
        status = _failed(engine, config, job, token, err, now, permanent=permanent)
        if status == "failed":
            files.remove(config, job_id)
        return status
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


class _Requester(t.NamedTuple):
    """The admin who asked, as ``record()`` reads a user: the job may run outside their request."""

    id: str | None
    email: str
    is_authenticated: bool = True

    def get_id(self) -> str | None:
        return self.id


def _record(job: ExportJob, rows: int, delivery: str, engine: sa.Engine) -> None:
    """``audit.exported`` by the requester; a failure to record is kept on the sent job."""
    audit = current_audit()
    try:
        audit.record(
            "audit.exported",
            activity=f"Exported {rows} audit event(s) by email to {job.requested_by_email}",
            actor=_Requester(job.requested_by_id, job.requested_by_email),
            actor_email=job.requested_by_email,
            tenant_id=job.tenant_id,
            team=job.team,
            details={
                "job_id": job.id,
                "filters": job_filters(job),
                "rows": rows,
                "format": job_format(job),
                "delivery": delivery,
            },
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
    """Run each job due now once (a job that fails again waits for its next pass), after
    deleting the stored files whose link has expired."""
    state = _state()
    engine = state.engine
    _purge(engine, state.config, now or utcnow())
    counts = {"sent": 0, "queued": 0, "failed": 0, None: 0}
    for job_id in due_job_ids(engine, now or utcnow(), max_jobs):
        counts[run_job(job_id, now=now)] += 1
    return RunSummary(counts["sent"], counts["queued"], counts["failed"], counts[None])


def _purge(engine: sa.Engine, config: AuditConfig, now: dt.datetime) -> None:
    """Delete expired export files; a failure to is logged, and sending goes on."""
    try:
        files.purge(engine, config, now)
    except Exception:
        log.exception("Deleting the expired export files in %s failed", config.export_dir)


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
