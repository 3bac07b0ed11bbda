"""The pipeline watching itself: its failures become ``audit.health_failed`` events and alerts.

A write failure (:data:`~flask_audit.signals.write_failed`) is noted in the health file at
once, in the failing request (no database needed), and reported from the alert thread
when a rule alerts on ``audit.health_failed`` (``AUDIT_ALERTS = []`` leaves only the note,
so a spool holds exactly the app's own events).
``flask audit status`` reports the rest: a spool that is not empty, a stale seal, a failed
verify, an export failing for good. A report is recorded as ``audit.health_failed`` (target
``("audit_check", <item>)``) and matched against the rules directly, so it is alerted even
when it could only be spooled or not stored at all. No loop: failures to record or mail
an alert or a report are logged, never reported, and rules never match these types
through the trail (:data:`~flask_audit.compliance.rules.SELF_TYPES`).
"""

from __future__ import annotations

import datetime as dt
import logging
import typing as t
import weakref

from flask import Flask

from ..signals import write_failed
from ..state import audit_state
from ..store.models import AuditEvent
from . import marks
from . import settings
from .alerts import dispatcher
from .rules import SELF_TYPES

logger = logging.getLogger("flask_audit.alerts")
HEALTH_FAILED = "audit.health_failed"


def report(app: Flask, item: str, message: str) -> None:
    """Record that ``item`` is failing and queue its alert; never raises."""
    now = dt.datetime.now(dt.timezone.utc)
    event: AuditEvent | None = None
    try:
        event = audit_state(app).audit.record(
            HEALTH_FAILED,
            entity="Audit log",
            action="update",
            outcome="failure",
            activity=message,
            tenant_id=None,
            team=None,
            target=("audit_check", item),
            details={"item": item, "message": message},
        )
    except Exception:
        logger.exception("The audit health report %r could not be recorded.", item)
    if event is None:  # not even spooled: alert all the same
        event = AuditEvent(
            event_type=HEALTH_FAILED,
            activity=message,
            occurred_at=now,
            tenant_id=None,
            target_type="audit_check",
            target_id=item,
            details={"item": item, "message": message},
        )
    try:
        dispatcher(app).consider(event)
    except Exception:
        logger.exception("The audit health report %r could not be alerted.", item)


class _WriteWatch:
    def __init__(self, app: Flask) -> None:
        self._app = weakref.ref(app)

    def write_failed(self, sender: Flask, event: t.Any = None, reason: str = "", **extra: t.Any) -> None:
        if getattr(event, "event_type", None) in SELF_TYPES:
            return  # recording a report or an alert failed: logged where it happened
        app = self._app()
        if app is None:
            return
        try:
            found = settings.load(app)
            marks.note_write_failure(found.health_file, reason)
            if not any(HEALTH_FAILED in rule.events for rule in found.alerts):
                return  # alerting is off: noted for `flask audit status` only
            what = getattr(event, "event_type", "an event")
            message = f"An audit event ({what}) could not be stored: {reason}"
            dispatcher(app).put("call", lambda app: report(app, "writes", message))
        except Exception:  # the request is failing already: never add to it
            logger.exception("The audit write failure could not be noted.")


_WATCHES: weakref.WeakKeyDictionary[Flask, _WriteWatch] = weakref.WeakKeyDictionary()


def connect_write_watch(app: Flask) -> None:
    """Note and report ``app``'s write failures; calling it again is harmless."""
    if app not in _WATCHES:
        watch = _WATCHES[app] = _WriteWatch(app)
        write_failed.connect(watch.write_failed, sender=app)
