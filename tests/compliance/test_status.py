"""``flask audit status``: one line per item, non-zero when any fails, and each failure
recorded as ``audit.health_failed`` and alerted (folded) through a real SMTP server."""

from __future__ import annotations

import datetime as dt
import pathlib
import typing as t

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask

from flask_audit.compliance import marks
from flask_audit.compliance.cli import status_command
from flask_audit.export import job_store
from flask_audit.query.filters import AuditFilter
from flask_audit.store import spool
from flask_audit.store.models import audit_event_table
from flask_audit.store.models import export_job_table
from flask_audit.store.rows import build_row
from flask_audit.stream import cursor
from flask_audit.stream import health as stream_health

from ..conftest import audit_of
from ..conftest import MakeApp
from ..conftest import refuse_audit_writes
from ..export_fixtures import SmtpServer
from ..sealing_fixtures import engine_of
from ..sealing_fixtures import forged
from ..sealing_fixtures import insert
from ..sealing_fixtures import KEY
from ..sealing_fixtures import seal
from .alert_fixtures import alerting_app
from .alert_fixtures import body
from .alert_fixtures import events_of
from .alert_fixtures import mails
from .alert_fixtures import record
from .alert_fixtures import settle

pytestmark = pytest.mark.backends("sqlite", "postgresql")
PIPELINE = "[Audit alert] The audit trail needs attention"


@pytest.fixture
def make(make_app: MakeApp, smtp: SmtpServer, tmp_path: pathlib.Path) -> t.Callable[..., Flask]:
    def factory(**config: t.Any) -> Flask:
        config.setdefault("AUDIT_HEALTH_FILE", str(tmp_path / "health.json"))
        return alerting_app(make_app, smtp, **config)

    return factory


def stored_then(app: Flask, occurred_at: dt.datetime) -> None:
    """An event stored when it happened (not late), as the seal has not come since."""
    with app.app_context():
        row = {**build_row(audit_of(app).config, "team.created", occurred_at=occurred_at), "late": False}
    with engine_of(app).begin() as conn:
        conn.execute(sa.insert(audit_event_table), row)


def status(app: Flask, *args: str) -> Result:
    result = app.test_cli_runner().invoke(status_command, args=list(args))
    settle(app)
    return result


def lines(result: Result) -> list[str]:
    return [line.split(":")[0] for line in result.output.splitlines() if not line.startswith("Error")]


def test_a_healthy_pipeline_prints_ok_lines_and_exits_zero(
    make: t.Callable[..., Flask], smtp: SmtpServer
) -> None:
    app = make()
    result = status(app)
    assert result.exit_code == 0, result.output
    assert lines(result) == [
        "OK   writes",
        "OK   spool",
        "OK   seal",
        "OK   verify",
        "OK   exports",
        "OK   streams",
    ]
    assert "OK   seal: automatic sealing is off" in result.output
    assert mails(smtp) == [] and events_of(app, "audit.health_failed") == []


def test_write_failures_and_the_spool_fail_and_are_alerted(
    make: t.Callable[..., Flask], smtp: SmtpServer
) -> None:
    app = make(AUDIT_ON_WRITE_ERROR="spool")
    refuse_audit_writes(engine_of(app))
    record(app, "team.created")  # refused: spooled, noted, reported from the alert thread
    settle(app)
    assert mails(smtp) == [(PIPELINE, ["ops@example.com"])]  # alerted though it could not be stored
    assert "An audit event (team.created) could not be stored" in body(smtp.messages[0])
    result = status(app)
    assert result.exit_code == 1
    assert lines(result) == [
        "FAIL writes",
        "FAIL spool",
        "OK   seal",
        "OK   verify",
        "OK   exports",
        "OK   streams",
    ]
    assert "FAIL writes: 1 write failure(s) noted, the last 0 seconds ago: " in result.output
    assert "wait in" in result.output and "run 'flask audit replay'" in result.output
    assert result.output.endswith("Error: 2 item(s) failing: writes, spool.\n")
    # writes was alerted within the window already: only the spool is new
    assert [subject for subject, _rcpt in mails(smtp)] == [PIPELINE, PIPELINE]
    assert "Latest: Audit spool: " in body(smtp.messages[1])


def test_with_alerting_off_a_write_failure_is_only_noted(
    make: t.Callable[..., Flask], smtp: SmtpServer
) -> None:
    app = make(AUDIT_ON_WRITE_ERROR="spool", AUDIT_ALERTS=[])
    refuse_audit_writes(engine_of(app))
    record(app, "team.created")
    settle(app)
    with app.app_context():
        assert spool.pending(audit_of(app).config.spool_path) == 1  # the app's event, nothing else
    result = status(app, "--no-report")
    assert "FAIL writes: 1 write failure(s) noted" in result.output
    assert mails(smtp) == []


def test_a_stale_seal_fails(make: t.Callable[..., Flask], smtp: SmtpServer) -> None:
    app = make(AUDIT_SEAL_KEY=KEY, AUDIT_SEAL_INTERVAL_SECONDS=60)
    stored_then(app, dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    result = status(app)
    assert result.exit_code == 1
    assert (
        "FAIL seal: an event has waited 60 minutes for a seal every 60 seconds (nothing sealed yet)"
        in result.output
    )
    [event] = events_of(app, "audit.health_failed")
    assert (event.outcome, event.target_type, event.target_id) == ("failure", "audit_check", "seal")
    assert mails(smtp) == [(PIPELINE, ["ops@example.com"])]
    seal(app)
    result = status(app)
    assert result.exit_code == 0, result.output
    assert "OK   seal: 0 event(s) wait for the next seal; newest seal" in result.output


def test_too_many_events_waiting_for_a_count_seal_fail(make: t.Callable[..., Flask]) -> None:
    app = make(AUDIT_SEAL_KEY=KEY, AUDIT_SEAL_EVERY_EVENTS=2)
    insert(app, range(50, 54))
    result = status(app, "--no-report")
    assert result.exit_code == 1
    assert "FAIL seal: 5 events wait for a seal (nothing sealed yet); is the app sealing?" in result.output


def test_a_failed_verify_fails_until_a_passing_one(make: t.Callable[..., Flask], smtp: SmtpServer) -> None:
    app = make(AUDIT_SEAL_KEY=KEY)
    record(app, "team.created")
    seal(app)
    result = status(app, "--verify")
    assert result.exit_code == 0, result.output
    assert "OK   verify: passed at " in result.output
    with forged(app) as conn:
        conn.execute(sa.update(audit_event_table).values(activity="Forged"))
    result = status(app, "--verify")
    assert result.exit_code == 1
    assert "FAIL verify: failed at " in result.output
    # without --verify, the last result stands
    assert "FAIL verify" in status(app).output
    assert [subject for subject, _rcpt in mails(smtp)] == [PIPELINE]


def test_an_export_failed_for_good_fails(make: t.Callable[..., Flask], smtp: SmtpServer) -> None:
    app = make()
    engine = engine_of(app)
    job = job_store.create_job(
        engine,
        requested_by_id="1",
        requested_by_email="ann@acme.test",
        tenant_scoped=False,
        tenant_id=None,
        team=None,
        flt=AuditFilter(),
        timezone="UTC",
    )
    with engine.begin() as conn:
        failed = {"status": "failed", "last_error": "SMTPRecipientsRefused: 550 no such user"}
        conn.execute(sa.update(export_job_table).where(export_job_table.c.id == job).values(**failed))
    result = status(app)
    assert result.exit_code == 1
    assert (
        f"FAIL exports: 1 export job(s) failed for good; the latest (job {job}):"
        " SMTPRecipientsRefused: 550 no such user"
    ) in result.output


def test_old_write_failures_no_longer_count(make: t.Callable[..., Flask], tmp_path: pathlib.Path) -> None:
    app = make(AUDIT_STATUS_WINDOW=3600)
    marks.note_write_failure(
        str(tmp_path / "health.json"), "gone", dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    )
    assert status(app).exit_code == 0


def test_no_report_only_prints(
    make: t.Callable[..., Flask], smtp: SmtpServer, tmp_path: pathlib.Path
) -> None:
    app = make()
    marks.note_write_failure(str(tmp_path / "health.json"), "gone")
    result = status(app, "--no-report")
    assert result.exit_code == 1 and "FAIL writes" in result.output
    assert mails(smtp) == [] and events_of(app, "audit.health_failed") == []


def test_runs_every_minute_mail_once_per_window(
    make: t.Callable[..., Flask], smtp: SmtpServer, tmp_path: pathlib.Path
) -> None:
    app = make()
    marks.note_write_failure(str(tmp_path / "health.json"), "gone")
    for _ in range(3):
        assert status(app).exit_code == 1
    assert len(events_of(app, "audit.health_failed")) == 3
    assert mails(smtp) == [(PIPELINE, ["ops@example.com"])]


def test_a_check_that_cannot_run_is_failing(make: t.Callable[..., Flask]) -> None:
    app = make()
    with app.app_context():
        engine = audit_of(app)._state().engine
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE audit_export_job"))
    result = status(app, "--no-report")
    assert result.exit_code == 1
    assert "FAIL exports: could not be checked: " in result.output


def test_a_stream_failing_paused_or_behind_fails(
    make: t.Callable[..., Flask], tmp_path: pathlib.Path
) -> None:
    """``streams``: each configured destination delivers; otherwise the line says which and why."""
    streams = {
        name: {"sink": "jsonl", "path": str(tmp_path / f"{name}.jsonl")} for name in ("siem", "lake", "bus")
    }
    app = make(AUDIT_STREAMS=streams, AUDIT_STREAM_ALERT_AFTER=60, AUDIT_ALERTS=[])
    assert "OK   streams: 3 destination(s) delivering" in status(app).output
    engine = engine_of(app)
    holder = "worker-1"
    with engine.connect() as conn:
        newest = conn.scalar(sa.select(sa.func.max(audit_event_table.c.id)))
    for name in streams:  # every destination has delivered all there is, and still runs
        cursor.ensure(engine, name)
        assert cursor.take_lease(engine, name, holder, 300) is not None
        assert cursor.advance(engine, name, holder, old=0, new=newest, delivered=newest, lease_seconds=300)
    assert "OK   streams: 3 destination(s) delivering" in status(app).output
    stored_then(app, dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5))  # waits 5 minutes
    with app.app_context():
        stream_health.pause("lake")
    cursor.fail(engine, "bus", holder, "connection refused")
    result = status(app)
    assert result.exit_code == 1, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("FAIL streams: "))
    assert "bus failing: connection refused" in line
    assert "lake paused" in line
    assert "siem 5 minutes behind (" in line  # its lag counts the events recorded since
