"""``flask audit status``: the pipeline's health in one line per item, for a monitor to run."""

from __future__ import annotations

import click
from flask import current_app
from flask import Flask
from flask.cli import with_appcontext

from .alerts import dispatcher
from .health import check_health
from .health import run_verify
from .watch import report


@click.command("status")
@click.option("--verify", "verify_now", is_flag=True, help="Verify the trail first and note the result.")
@click.option("--no-report", is_flag=True, help="Only print: record no event and send no alert.")
@with_appcontext
def status_command(verify_now: bool, no_report: bool) -> None:
    """Print the health of writes, spool, seals, verification and exports; fail if any is failing.

    Each failing item is recorded as an ``audit.health_failed`` event and alerted (folded:
    one mail per item per window however often a monitor runs this).
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if verify_now:
        run_verify(app)
    items = check_health(app)
    for item in items:
        click.echo(item.line())
    failing = [item for item in items if not item.ok]
    if failing and not no_report:
        for item in failing:
            report(app, item.name, f"Audit {item.name}: {item.message}")
        dispatcher(app).join()
    if failing:
        names = ", ".join(item.name for item in failing)
        raise click.ClickException(f"{len(failing)} item(s) failing: {names}.")
