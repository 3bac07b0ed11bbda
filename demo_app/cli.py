"""``flask --app demo_app demo init``: create the tables, seed a new workspace, print the logins."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from . import seed
from .extensions import db

demo_cli = AppGroup("demo", help="Set up the demo workspace.")


@demo_cli.command("init")
def init_command() -> None:
    """Create the tables; seed them when the workspace is empty; print the sign-in details."""
    db.create_all()
    if seed.is_empty():
        result = seed.seed()
        click.echo(
            f"Seeded {result.users} users, {result.teams} teams and {result.events:,} audit events"
            f" over 120 days in {result.seconds:.1f}s."
        )
    else:
        click.echo("The workspace already has data: nothing seeded.")
    click.echo("Sign in as")
    click.echo(f"  admin   {seed.ADMIN_EMAIL:<20} password {seed.ADMIN_PASSWORD}")
    click.echo(f"  member  {seed.MEMBER_EMAIL:<20} password {seed.MEMBER_PASSWORD}")


def init_app(app: Flask) -> None:
    app.cli.add_command(demo_cli)
