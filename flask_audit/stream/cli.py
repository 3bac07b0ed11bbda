"""``flask audit stream ...``: run the workers, show each destination, pause, resume, backfill."""

from __future__ import annotations

import datetime as dt
import json
import signal
import threading
import types
import typing as t

import click
from flask import current_app
from flask import Flask
from flask.cli import AppGroup

from ..exceptions import AuditConfigError
from . import health
from .relay import Relay
from .settings import Destination
from .settings import load_destinations

stream_cli = AppGroup("stream", help="Stream the audit trail to the AUDIT_STREAMS destinations.")


def _app() -> Flask:
    return t.cast(Flask, current_app._get_current_object())  # type: ignore[attr-defined]


def _destinations(names: t.Sequence[str]) -> list[Destination]:
    try:
        configured = load_destinations(_app())
    except AuditConfigError as err:
        raise click.ClickException(str(err)) from err
    unknown = [name for name in names if name not in configured]
    if unknown:
        known = ", ".join(sorted(configured)) or "none"
        raise click.ClickException(f"Not in AUDIT_STREAMS: {', '.join(unknown)} (configured: {known}).")
    return [configured[name] for name in names] if names else list(configured.values())


@stream_cli.command("run")
@click.argument("names", nargs=-1)
@click.option("--until-idle", is_flag=True, help="Stop once every destination has caught up.")
def run_command(names: tuple[str, ...], until_idle: bool) -> None:
    """Deliver events to NAMES (default: every destination) until stopped (SIGINT, SIGTERM).

    Several workers may run for one destination: one delivers while it holds the lease,
    the others stand by and take over when it stops.
    """
    destinations = _destinations(names)
    if not destinations:
        raise click.ClickException("AUDIT_STREAMS names no destination.")
    app = _app()
    stop = threading.Event()
    try:
        relays = [Relay(app, destination) for destination in destinations]
    except AuditConfigError as err:
        raise click.ClickException(str(err)) from err

    def work(relay: Relay) -> None:
        with app.app_context():
            relay.run(stop, until_idle=until_idle)

    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        stop.set()

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_signal) if main else None
    threads = [
        threading.Thread(target=work, args=(relay,), name=f"stream-{relay.destination.name}")
        for relay in relays
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)
    except KeyboardInterrupt:
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    click.echo(f"Streamed to {', '.join(relay.destination.name for relay in relays)}; stopped.")


@stream_cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per destination.")
def status_command(as_json: bool) -> None:
    """Each destination's state, cursor, lag and last error."""
    found = health.stream_status(_app())
    if as_json:
        click.echo(json.dumps([each.as_dict() for each in found], indent=2))
        return
    for each in found:
        line = (
            f"{each.name}: {each.state}, cursor {each.cursor}, lag {each.lag_events} event(s)"
            f" / {each.lag_seconds:.0f} s, delivered {each.delivered}"
        )
        click.echo(line + (f"; last error: {each.last_error}" if each.last_error else ""))
    if not found:
        click.echo("AUDIT_STREAMS names no destination.")


@stream_cli.command("pause")
@click.argument("name")
def pause_command(name: str) -> None:
    """Stop delivering to NAME; its cursor stays, and events wait in the table."""
    _destinations([name])
    changed = health.pause(name, True)
    click.echo(f"Paused stream {name}." if changed else f"Stream {name} was already paused.")


@stream_cli.command("resume")
@click.argument("name")
def resume_command(name: str) -> None:
    """Deliver to NAME again, from where it stopped."""
    _destinations([name])
    changed = health.pause(name, False)
    click.echo(f"Resumed stream {name}." if changed else f"Stream {name} was not paused.")


@stream_cli.command("backfill")
@click.argument("name")
@click.option("--since", required=True, help="ISO 8601 date or time (UTC unless it says otherwise).")
def backfill_command(name: str, since: str) -> None:
    """Send NAME again every event that occurred since --since (the cursor only moves back)."""
    _destinations([name])
    when = parse_since(since)
    old, new = health.rewind(name, when)
    if new == old:
        click.echo(f"Stream {name} is already at or before {since} (cursor {old}); nothing to send again.")
    else:
        click.echo(f"Stream {name} rewound from cursor {old} to {new}; events after it are sent again.")


def parse_since(value: str) -> dt.datetime:
    """``YYYY-MM-DD`` or an ISO 8601 time, as an aware UTC datetime (UTC when no offset)."""
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date: use YYYY-MM-DD or an ISO 8601 time.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)
