"""``flask audit ...``: thin commands over the Python API, one summary line each."""

from __future__ import annotations

import typing as t

import click
from flask import current_app
from flask.cli import AppGroup

from . import spool
from .immutability import create_triggers

if t.TYPE_CHECKING:
    from .extension import _AuditState
    from .extension import Audit

audit_cli = AppGroup("audit", help="Manage the audit trail.")


def _state() -> _AuditState:
    return t.cast("Audit", current_app.extensions["audit"])._state()


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
