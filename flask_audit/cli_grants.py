"""``flask audit grants ROLE [--apply]``: the runtime role that records but cannot rewrite.

A command of its own module because it alone speaks SQL's account language; the Python API
is :mod:`flask_audit.integrity.grants`.
"""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from .exceptions import AuditError
from .integrity import grants
from .state import audit_state


@click.command("grants")
@click.argument("role")
@click.option(
    "--apply",
    "apply_now",
    is_flag=True,
    help="Run the statements now, as the connected account, which must own the audit tables.",
)
@with_appcontext
def grants_command(role: str, apply_now: bool) -> None:
    """Print (or --apply) the grants of ROLE, a runtime role that may record, read, seal and
    export the trail, and prune it only through the owner's routine.

    On MariaDB and MySQL, ROLE is 'user' (any host) or 'user@host'.
    """
    state = audit_state()
    engine = state.engine
    days = state.config.retention_days
    try:
        if not apply_now:
            with engine.connect() as conn:
                click.echo(grants.runtime_grants(conn, role, days).script(), nl=False)
            return
        made = grants.apply(engine, role, days)
    except (AuditError, ValueError, sa.exc.SQLAlchemyError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(
        f"Applied {len(made.statements)} statement(s) for {made.account} on {made.dialect} database"
        f" {made.database}: it may record, read, seal and export, and prunes through"
        f" {grants.PRUNE_ROUTINE}() outside the last {days} days."
    )
    try:
        with engine.connect() as conn:
            problems = grants.privilege_problems(conn, role)
    except AuditError as err:
        click.echo(f"Could not check what else {made.account} may do: {err}")
        return
    if problems:
        raise click.ClickException(
            f"{made.account} can still rewrite the trail:\n" + "\n".join(f"- {line}" for line in problems)
        )
