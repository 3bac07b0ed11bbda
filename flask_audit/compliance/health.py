"""The health of the audit pipeline, one item at a time, for ``flask audit status``.

Each check reads what it needs and says in one sentence whether its part is working:

- ``writes``: no event failed to be stored within ``AUDIT_STATUS_WINDOW`` (noted in the
  health file by the failing request: see :mod:`flask_audit.compliance.marks`);
- ``spool``: no event waits in the spool for ``flask audit replay``;
- ``seal``: with automatic sealing on, no event has waited for its seal much longer than
  the interval (twice it, plus a minute), nor twice ``AUDIT_SEAL_EVERY_EVENTS`` events;
- ``verify``: the latest recorded verification passed;
- ``exports``: no export job failed for good within the window;
- ``streams``: every ``AUDIT_STREAMS`` destination delivers (none failing, paused, or
  behind by more than ``AUDIT_STREAM_ALERT_AFTER``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import typing as t

import sqlalchemy as sa
from flask import Flask

from ..integrity import sealing
from ..integrity import verification
from ..integrity.witness import FileWitness
from ..state import audit_state
from ..store import spool
from ..store.models import audit_event_table
from ..store.models import audit_seal_table
from ..store.models import export_job_table
from . import marks
from . import settings

_EVENTS = audit_event_table.c
#: Slack on top of twice the seal interval before a waiting event counts as stale.
SEAL_GRACE_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class HealthItem:
    """One line of ``flask audit status``."""

    name: str
    ok: bool
    message: str

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'} {self.name}: {self.message}"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{int(seconds)} seconds"
    if seconds < 7200:
        return f"{int(seconds // 60)} minutes"
    return f"{round(seconds / 3600, 1):g} hours"


def check_writes(app: Flask, now: dt.datetime) -> HealthItem:
    window = settings.load(app).status_window
    noted = marks.read(settings.load(app).health_file).get(marks.WRITE_FAILED)
    last = marks.when(noted, "last")
    if last is None or (now - last).total_seconds() > window:
        return HealthItem("writes", True, f"no write failure in the last {_ago(window)}")
    count = int((noted or {}).get("count", 0))
    reason = str((noted or {}).get("reason", "")).strip().split("\n")[0]
    return HealthItem(
        "writes",
        False,
        f"{count} write failure(s) noted, the last {_ago((now - last).total_seconds())} ago: {reason}",
    )


def check_spool(app: Flask, now: dt.datetime) -> HealthItem:
    path = audit_state(app).config.spool_path
    waiting = spool.pending(path)
    if not waiting:
        return HealthItem("spool", True, "empty")
    return HealthItem("spool", False, f"{waiting} event(s) wait in {path}: run 'flask audit replay'")


def check_seal(app: Flask, now: dt.datetime) -> HealthItem:
    config = audit_state(app).config
    every, interval = config.seal_every_events, config.seal_interval_seconds
    if every is None and interval is None:
        return HealthItem("seal", True, "automatic sealing is off")
    seals = audit_seal_table.c
    with audit_state(app).engine.connect() as conn:
        sealed_to = sealing.last_sealed_id(conn) or 0
        newest = conn.scalar(sa.select(sa.func.max(seals.sealed_at)).where(seals.kind == "seal"))
        waiting = sa.and_(_EVENTS.id > sealed_to, _EVENTS.late.is_(False))
        count, oldest = conn.execute(
            sa.select(sa.func.count(), sa.func.min(_EVENTS.occurred_at)).where(waiting)
        ).one()
    sealed = f"newest seal {newest:%Y-%m-%d %H:%M:%S} UTC" if newest else "nothing sealed yet"
    if every is not None and count >= 2 * every:
        return HealthItem("seal", False, f"{count} events wait for a seal ({sealed}); is the app sealing?")
    if interval is not None and oldest is not None:
        age = (now - oldest).total_seconds()
        if age > 2 * interval + SEAL_GRACE_SECONDS:
            return HealthItem(
                "seal", False, f"an event has waited {_ago(age)} for a seal every {_ago(interval)} ({sealed})"
            )
    return HealthItem("seal", True, f"{count} event(s) wait for the next seal; {sealed}")


def run_verify(app: Flask, now: dt.datetime | None = None) -> None:
    """Verify the trail now and note the outcome for :func:`check_verify`."""
    state = audit_state(app)
    path = state.config.seal_witness
    entries = FileWitness(path).entries() if path is not None and os.path.exists(path) else None
    try:
        report = verification.verify(
            state.engine,
            state.config.seal_key,
            witness=entries,
            late_after_seconds=state.config.late_after_seconds,
        )
    except Exception as err:
        ok, message = False, f"could not run: {err}"
    else:
        ok = report.problem is None
        message = f"{report.events} sealed event(s) verified" if ok else t.cast(t.Any, report.problem).message
    marks.note_verify(settings.load(app).health_file, ok, message, now)


def check_verify(app: Flask, now: dt.datetime) -> HealthItem:
    noted = marks.read(settings.load(app).health_file).get(marks.VERIFY)
    at = marks.when(noted, "at")
    if noted is None or at is None:
        return HealthItem("verify", True, "no verification recorded; run 'flask audit status --verify'")
    when = f"{at:%Y-%m-%d %H:%M:%S} UTC"
    if noted.get("ok"):
        return HealthItem("verify", True, f"passed at {when}: {noted.get('message')}")
    return HealthItem("verify", False, f"failed at {when}: {noted.get('message')}")


def check_exports(app: Flask, now: dt.datetime) -> HealthItem:
    window = settings.load(app).status_window
    jobs = export_job_table.c
    since = now - dt.timedelta(seconds=window)
    query = sa.select(sa.func.count(), sa.func.max(jobs.id)).where(
        jobs.status == "failed", jobs.next_attempt_at >= since
    )
    with audit_state(app).engine.connect() as conn:
        count, newest = conn.execute(query).one()
        error = conn.scalar(sa.select(jobs.last_error).where(jobs.id == newest)) if newest else None
    if not count:
        return HealthItem("exports", True, f"no export failed for good in the last {_ago(window)}")
    return HealthItem(
        "exports", False, f"{count} export job(s) failed for good; the latest (job {newest}): {error}"
    )


def check_streams(app: Flask, now: dt.datetime) -> HealthItem:
    """Every ``AUDIT_STREAMS`` destination delivers: none failing, paused, or behind by more
    than ``AUDIT_STREAM_ALERT_AFTER`` seconds."""
    from ..stream.health import stream_status
    from ..stream.settings import alert_after

    statuses = [status for status in stream_status(app) if status.configured]
    if not statuses:
        return HealthItem("streams", True, "no stream destination is configured")
    limit = alert_after(app)
    troubles = []
    for status in statuses:
        if status.state == "failing":
            troubles.append(f"{status.name} failing: {status.last_error}")
        elif status.state == "paused":
            troubles.append(f"{status.name} paused")
        elif status.lag_events and status.lag_seconds > limit:
            troubles.append(f"{status.name} {_ago(status.lag_seconds)} behind ({status.lag_events} event(s))")
    if troubles:
        return HealthItem("streams", False, "; ".join(troubles))
    return HealthItem("streams", True, f"{len(statuses)} destination(s) delivering")


CHECKS = (check_writes, check_spool, check_seal, check_verify, check_exports, check_streams)


def check_health(app: Flask, *, now: dt.datetime | None = None) -> list[HealthItem]:
    """Every item, in order; a check that cannot run is itself a failing item."""
    now = now or utcnow()
    found = []
    for check in CHECKS:
        name = check.__name__.removeprefix("check_")
        try:
            found.append(check(app, now))
        except Exception as err:
            found.append(HealthItem(name, False, f"could not be checked: {err}"))
    return found
