"""What auditors ask for: alerts on critical events, the pipeline watching itself, retention
per tenant, ``flask audit status`` and the daily review (see ``docs/compliance.rst``)."""

from __future__ import annotations

from flask import Flask

from . import settings
from .alerts import dispatcher
from .watch import connect_write_watch


def connect(app: Flask) -> None:
    """Check the compliance settings and start alerting and write watching for ``app``."""
    settings.load(app)
    dispatcher(app)
    connect_write_watch(app)


__all__ = ["connect"]
