"""Helpers for testing an app that uses flask_audit."""

from __future__ import annotations

import collections.abc as c
import contextlib
import typing as t

from flask import Flask

from .signals import event_recorded
from .store.models import AuditEvent


@contextlib.contextmanager
def record_events(app: Flask | None = None) -> c.Iterator[list[AuditEvent]]:
    """Collect the events recorded inside the block, in order.

    .. code-block:: python

        with record_events(app) as events:
            client.post("/members/42/role", data={"role": "admin"})
        assert events[0].event_type == "role.updated"

    :param app: only collect this app's events; by default every app's.

    Joined events appear once their transaction commits; spooled events appear too.
    """
    events: list[AuditEvent] = []

    def collect(sender: Flask, event: AuditEvent, **extra: t.Any) -> None:
        events.append(event)

    sender: t.Any = app if app is not None else event_recorded.ANY
    with event_recorded.connected_to(collect, sender=sender):
        yield events
