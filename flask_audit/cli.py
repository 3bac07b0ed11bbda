"""``flask audit ...``: thin commands over the Python API, one summary line each."""

from __future__ import annotations

import contextlib
import os
import sys
import typing as t

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from .cli_grants import grants_command
from .compliance import marks
from .compliance import settings as compliance_settings
from .compliance.cli import status_command
from .exceptions import AuditError
from .export import csv_export
from .export import jobs
from .integrity import retention
from .integrity import sealing
from .integrity import verification
from .integrity.canonical import UnreadableValue
from .integrity.witness import configured_witness
from .integrity.witness import FileWitness
from .integrity.witness import WitnessEntries
from .query.filters import AuditFilter
from .state import audit_state
from .state import AuditState
from .state import current_audit
from .store import folding
from .store import partitions
from .store import spool
from .store.immutability import create_triggers
from .stream.cli import stream_cli

if t.TYPE_CHECKING:
    from click._termui_impl import ProgressBar


audit_cli = AppGroup("audit", help="Manage the audit trail.")


def _state() -> AuditState:
    return audit_state()


@audit_cli.command("replay")
def replay_command() -> None:
    """Load spooled events into the database, each exactly once."""
    state = _state()
    result = spool.replay(state.config.spool_path, state.engine)
    click.echo(
        f"Replayed {result.inserted} spooled event(s); {result.duplicates} already stored,"
        f" {result.rejected} unreadable line(s) kept aside."
    )
    if result.rejected:
        raise click.ClickException(
            f"{result.rejected} line(s) could not be read: see {state.config.spool_path}.rejected"
        )


@audit_cli.command("triggers")
def triggers_command() -> None:
    """Reinstall the insert-only triggers with the current AUDIT_RETENTION_DAYS."""
    state = _state()
    days = state.config.retention_days
    with state.engine.begin() as conn:
        create_triggers(conn, days, replace=True)
    click.echo(f"Installed the audit triggers on {state.engine.dialect.name} with a {days}-day window.")


class _Progress:
    """A click progress bar made on the first report; hidden when stdout is not a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._stack = contextlib.ExitStack()
        self._bar: ProgressBar[int] | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            bar = click.progressbar(length=total, label=self.label, hidden=not sys.stdout.isatty())
            self._bar = self._stack.enter_context(bar)
        self._bar.update(done - self._bar.pos)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def _fail(err: Exception) -> click.ClickException:
    return click.ClickException(str(err))


@audit_cli.command("partitions")
@click.option(
    "--ahead",
    type=click.IntRange(min=0),
    default=partitions.DEFAULT_AHEAD,
    show_default=True,
    help="Months to make after this one.",
)
def partitions_command(ahead: int) -> None:
    """Make the months ahead of a partitioned trail (AUDIT_PG_PARTITIONS, PostgreSQL)."""
    state = _state()
    try:
        with state.engine.begin() as conn:
            made = partitions.ensure(conn, ahead=ahead)
            present = partitions.partitions(conn)
    except AuditError as err:
        raise _fail(err) from err
    months = [each for each in present if each.start is not None]
    span = f"{months[0].start:%Y-%m} to {months[-1].start:%Y-%m}" if months else "none"
    click.echo(f"Made {len(made)} partition(s){': ' + ', '.join(made) if made else ''}; months held: {span}.")


@audit_cli.command("prune")
@click.option(
    "--days", type=click.IntRange(min=1), help="Age in days (default and minimum: AUDIT_RETENTION_DAYS)."
)
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option(
    "--archive",
    type=click.Path(dir_okay=False, writable=True),
    help=(
        "First write the events to this new gzip JSON-lines file and check it; on a trail"
        " partitioned by month, each month dropped goes beside it (FILE.YYYY-MM) with a manifest."
    ),
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=retention.DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Events deleted per transaction.",
)
def prune_command(days: int | None, dry_run: bool, archive: str | None, batch_size: int) -> None:
    """Delete the events older than the retention window, in batches."""
    state = _state()
    audit = state.audit
    try:
        folding.report_due(state.engine, state.config)
        with _Progress("Pruning") as progress:
            result = retention.prune(
                state.engine,
                state.config,
                days=days,
                dry_run=dry_run,
                archive=archive,
                batch_size=batch_size,
                progress=progress,
                audit=audit,
                require_archive=bool(current_app.config.get("AUDIT_PRUNE_REQUIRE_ARCHIVE", False)),
            )
    except (ValueError, AuditError, sa.exc.SQLAlchemyError) as err:
        raise _fail(err) from err
    older = f"older than {result.cutoff:%Y-%m-%d %H:%M:%S} UTC ({result.days} days)"
    notes = [f"archived to {result.archive}"] if result.archive else []
    notes += _month_notes(result, dry_run)
    if result.held_back:
        notes.append(
            f"{result.held_back} older event(s) kept (the newest, ones sealed after the run began,"
            " or ones behind a younger event)"
        )
    if result.sealed:
        notes.append("recorded in the seal chain")
    tail = "".join(f"; {note}" for note in notes)
    if dry_run:
        click.echo(f"Dry run: {result.count} event(s) {older} would be pruned{tail}.")
    else:
        click.echo(f"Pruned {result.count} event(s) {older}{tail}.")


def _month_notes(result: retention.PruneResult, dry_run: bool) -> list[str]:
    """What became of the whole months of a partitioned trail, for the summary line."""
    going = [f"{month.start:%Y-%m}" for month in result.months if month.kept is None]
    notes = []
    if going:
        notes.append(f"{'would drop' if dry_run else 'dropped'} month(s) {', '.join(going)}")
    notes += [f"kept month {month.start:%Y-%m}: {month.kept}" for month in result.months if month.kept]
    return notes


@audit_cli.command("seal")
def seal_command() -> None:
    """Seal every committed event not sealed yet (needs AUDIT_SEAL_KEY)."""
    state = _state()
    try:
        sealing.require_key(state.config.seal_key, "seal the audit trail")
        folding.report_due(state.engine, state.config)  # a closed window's count goes in the seal
        witness = configured_witness(state.config)
        result = sealing.seal(state.engine, state.config.seal_key, witness=witness)
    except (AuditError, UnreadableValue, sa.exc.SQLAlchemyError) as err:
        raise _fail(err) from err
    if not result.seals:
        click.echo("Nothing new to seal: every committed event is sealed.")
        return
    click.echo(
        f"Sealed {result.events} event(s), ids {result.first_id} to {result.last_id}, in"
        f" {result.seals} seal(s); chain head {result.head}."
    )
    if result.witness_error is not None:  # the seals are stored: say so, and fail for the operator
        raise click.ClickException(result.witness_error)


def _witness_summary(
    path: str | None, entries: WitnessEntries | None, report: verification.VerifyReport, no_witness: bool
) -> str:
    """The verify line's last sentence: which witness was checked, and how far it reaches."""
    if path is None:
        return (
            "Witness not checked (--no-witness)."
            if no_witness
            else "No witness (AUDIT_SEAL_WITNESS is False)."
        )
    if entries is None:
        return f"Witness {path}: no file yet, nothing to check."
    skipped = f"; {entries.skipped} unreadable line(s) skipped" if entries.skipped else ""
    if not report.witnessed:
        return f"Witness {path}: no entries yet, nothing to check{skipped}."
    beyond = f"; {report.beyond_witness} newer link(s) not in it" if report.beyond_witness else ""
    return (
        f"Witness {path}: its {report.witnessed} link(s) are in the chain, up to seal"
        f" {report.witness_head}{beyond}{skipped}."
    )


@audit_cli.command("verify")
@click.option("--anchor", help="A chain head printed by an earlier 'flask audit seal', kept elsewhere.")
@click.option(
    "--witness",
    "witness_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Check the chain against this witness file (default: AUDIT_SEAL_WITNESS).",
)
@click.option("--no-witness", is_flag=True, help="Do not check the chain against a witness.")
def verify_command(anchor: str | None, witness_path: str | None, no_witness: bool) -> None:
    """Check every sealed event against the HMAC chain and the witness; fail on the first difference."""
    state = _state()
    if no_witness and witness_path:
        raise click.UsageError("--witness and --no-witness exclude each other.")
    path = None if no_witness else witness_path or state.config.seal_witness
    entries = FileWitness(path).entries() if path is not None and os.path.exists(path) else None
    try:
        report = verification.verify(
            state.engine,
            state.config.seal_key,
            anchor=anchor,
            witness=entries,
            late_after_seconds=state.config.late_after_seconds,
        )
    except (AuditError, sa.exc.SQLAlchemyError) as err:
        raise _fail(err) from err
    health = compliance_settings.load(current_app._get_current_object()).health_file  # type: ignore[attr-defined]
    passed = f"{report.events} sealed event(s) verified"
    marks.note_verify(health, report.problem is None, report.problem.message if report.problem else passed)
    if report.problem is not None:
        raise click.ClickException(f"Verification failed: {report.problem.message}")
    witness = _witness_summary(path, entries, report, no_witness)
    if not report.links:
        click.echo(f"Nothing is sealed yet: {report.unsealed} event(s); run 'flask audit seal'. {witness}")
        return
    click.echo(
        f"Verified {report.events} sealed event(s) against {report.links} chain link(s);"
        f" {report.unsealed} newer event(s) not sealed yet. {witness}"
    )


@audit_cli.command("export")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="The file to write.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(csv_export.FORMATS),
    default="csv",
    show_default=True,
    help="csv (UTF-8 with a byte order mark, for spreadsheets) or jsonl (one JSON object per event).",
)
@click.option("--entity", help="Such as 'Login' or 'Team'.")
@click.option("--event-type", help="Such as 'role.updated'.")
@click.option("--actor", help="The actor's email address.")
@click.option("--team")
@click.option("--action", help="create, update, delete, export, login or logout.")
@click.option("--outcome", help="success or failure.")
@click.option("--start", help="YYYY-MM-DD or an ISO 8601 time (in AUDIT_TIMEZONE without an offset).")
@click.option("--end", help="YYYY-MM-DD (the whole day) or an ISO 8601 time.")
@click.option(
    "--q", "q", help="A search, as in the page's search box: 'actor:priya type:team.* -outcome:failure'."
)
@click.option("--tenant", help="Only this tenant's events (default: every tenant).")
def export_command(out: str, fmt: str, tenant: str | None, **filters: str | None) -> None:
    """Write the events of the retention window that match the filters, newest first."""
    state = _state()
    try:
        flt = AuditFilter.from_args(filters, timezone=state.config.timezone)
    except AuditError as err:
        raise _fail(err) from err
    stmt = csv_export.export_statement(
        flt, retention_days=state.config.retention_days, tenant_scoped=tenant is not None, tenant_id=tenant
    )
    part = f"{out}.part"
    try:
        with open(part, "wb") as file, state.engine.connect() as conn:
            stats = csv_export.write_export(conn, stmt, file, fmt=fmt)
        os.replace(part, out)
    except (OSError, sa.exc.SQLAlchemyError, AuditError) as err:
        with contextlib.suppress(OSError):
            os.remove(part)
        raise _fail(err) from err
    current_audit().record(
        "audit.exported",
        activity=f"Exported {stats.rows} audit event(s) to a file",
        tenant_id=tenant,
        details={"filters": flt.to_args(), "rows": stats.rows, "format": fmt, "delivery": "file"},
    )
    click.echo(f"Exported {stats.rows} event(s) to {out} ({fmt}, {stats.bytes} bytes).")


@audit_cli.group("exports")
def exports_cli() -> None:
    """The export jobs that admins request from the audit log page."""


@exports_cli.command("run")
@click.option("--once", is_flag=True, help="Run the jobs due now, then exit.")
@click.option("--max-jobs", type=click.IntRange(min=1), help="Stop after this many jobs.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, help="Seconds between polls (5).")
def exports_run_command(once: bool, max_jobs: int | None, interval: float) -> None:
    """Send queued exports and due retries; without --once, keep polling until interrupted."""
    summary = jobs.run_due(max_jobs=max_jobs) if once else jobs.work(interval=interval, max_jobs=max_jobs)
    click.echo(
        f"Ran {summary.processed} export job(s): {summary.sent} sent, {summary.retrying} to retry,"
        f" {summary.failed} failed."
    )
    if summary.failed:
        raise click.ClickException(f"{summary.failed} export job(s) failed for good: see 'last_error'.")


@audit_cli.command("check")
def check_command() -> None:
    """Check the set-up: table, triggers, mailer, admins, proxies and seal key, each with its fix."""
    from flask import current_app

    from .checks import FAIL
    from .checks import run_checks

    found = run_checks(current_app._get_current_object())  # type: ignore[attr-defined]
    for check in found:
        click.echo(check.line())
    failed = sum(1 for check in found if check.status == FAIL)
    if failed:
        raise click.ClickException(f"{failed} check(s) failed: see the lines marked FAIL.")


audit_cli.add_command(grants_command)
audit_cli.add_command(stream_cli)
audit_cli.add_command(status_command)
