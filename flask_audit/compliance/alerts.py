"""Alerts: mail the tenant's admins when a rule matches, folded, recorded, never in the request.

The :data:`~flask_audit.signals.event_recorded` receiver only matches the rules (no I/O)
and hands matches to a background thread of the app's own, so a request never waits for
a count, a mail server or a second write. That thread counts the trail for threshold
rules, folds, sends through the app's mailer (:mod:`flask_audit.export.mailers`) and
records ``audit.alert_sent`` (outcome ``failure`` when nobody could be mailed).

Folding: one mail per rule, tenant and key per window. Matches inside the window are
counted; when the window ends, one more mail says how many there were. The last alert of
a rule and key is also looked up in the trail, so a restarted process (or another one,
such as ``flask audit status``) does not mail again inside the window; the folded count
itself is kept by the process that folded.

Mails, their record and their retries live in :mod:`flask_audit.compliance.sending`.

Not durable: a match waiting in the thread's queue when the process ends is lost; its
event is in the trail, and the daily review lists it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import queue
import threading
import time
import typing as t
import weakref

import sqlalchemy as sa
from flask import Flask

from ..signals import event_recorded
from ..state import audit_state
from ..store.models import audit_event_table
from . import settings
from .rules import AlertRule
from .rules import SELF_TYPES
from .sending import ALERT_SENT
from .sending import retry_due
from .sending import send_alert

if t.TYPE_CHECKING:
    from ..store.models import AuditEvent

logger = logging.getLogger("flask_audit.alerts")
_EVENTS = audit_event_table.c
#: Columns an alert carries from its event to the thread that sends it.
SEEN = ("id", "event_type", "activity", "occurred_at", "tenant_id", "actor_email", "actor_id", "ip")
SEEN_KEYS = ("team", "target_id")
_IDLE_SECONDS = 5.0

Slot = tuple[str, str | None, str | None]  # rule name, tenant, key


@dataclasses.dataclass
class _Fold:
    sent_at: float
    last: dict[str, t.Any]
    folded: int = 0
    flush_due: bool = False


def snapshot(event: AuditEvent) -> dict[str, t.Any]:
    """The event's columns an alert needs, read now, in the recording thread."""
    return {name: getattr(event, name, None) for name in (*SEEN, *SEEN_KEYS)}


class Dispatcher:
    """Sends one app's alerts from a background thread; see the module."""

    def __init__(self, app: Flask) -> None:
        self._app = weakref.ref(app)
        self._queue: queue.Queue[tuple[t.Any, ...]] = queue.Queue()
        self._lock = threading.Lock()
        self._folds: dict[Slot, _Fold] = {}
        self._thread: threading.Thread | None = None
        self._retries_checked = False

    # In the recording thread: match and hand over, nothing more.

    def event_recorded(self, sender: Flask, event: AuditEvent | None = None, **extra: t.Any) -> None:
        if event is None or event.event_type in SELF_TYPES:
            return
        try:
            self.consider(event)
        except Exception:  # an alert must never fail the request that recorded the event
            logger.exception("Matching the audit alert rules failed.")

    def consider(self, event: AuditEvent) -> None:
        """Queue an alert for each rule ``event`` matches."""
        app = self._app()
        if app is None:
            return
        rules = settings.load(app).rules_by_type.get(event.event_type)
        if not rules:
            return
        config = audit_state(app).config
        for rule in rules:
            if rule.matches(event, config):
                self.put("rule", rule, snapshot(event))

    def put(self, *item: t.Any) -> None:
        with self._lock:
            if not self._retries_checked:  # first use in this process: retries left by another
                self._retries_checked = True
                self._queue.put(("retry",))
            self._queue.put(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="flask-audit-alerts", daemon=True)
                self._thread.start()

    # In the alert thread.

    def _loop(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            try:
                app = self._app()
                if app is not None:
                    with app.app_context():
                        self._handle(app, *item)
            except Exception:
                logger.exception("An audit alert could not be handled.")
            finally:
                self._queue.task_done()

    def _handle(self, app: Flask, kind: str, *args: t.Any) -> None:
        if kind == "rule":
            self._on_match(app, *args)
        elif kind == "flush":
            self._flush(app, *args)
        elif kind == "call":
            args[0](app)
        elif kind == "retry":
            self.retry_later(retry_due(app))

    def retry_later(self, delay: float | None) -> None:
        """A retry pass in ``delay`` seconds (none for ``None``)."""
        if delay is not None:
            timer = threading.Timer(delay + 0.1, self.put, ("retry",))
            timer.daemon = True
            timer.start()

    def _on_match(self, app: Flask, rule: AlertRule, seen: dict[str, t.Any]) -> None:
        key = seen.get(rule.key) if rule.key else None
        tenant = seen.get("tenant_id")
        if rule.threshold > 1 and _count_recent(app, rule, tenant, key) < rule.threshold:
            return
        slot, now = (rule.name, tenant, key), time.time()
        fold = self._folds.get(slot) or _fold_from_trail(app, rule, slot, now)
        if fold is not None and now - fold.sent_at < rule.window:
            fold.folded, fold.last = fold.folded + 1, seen
            self._folds[slot] = fold
            if not fold.flush_due:
                fold.flush_due = True
                timer = threading.Timer(fold.sent_at + rule.window - now, self.put, ("flush", rule, slot))
                timer.daemon = True
                timer.start()
            return
        self._folds[slot] = _Fold(now, seen)
        self.retry_later(send_alert(app, rule, seen, count=1))

    def _flush(self, app: Flask, rule: AlertRule, slot: Slot) -> None:
        fold = self._folds.get(slot)
        if fold is None or not fold.folded:
            self._folds.pop(slot, None)
            return
        self._folds[slot] = _Fold(time.time(), fold.last)
        self.retry_later(send_alert(app, rule, fold.last, count=fold.folded, folded=True))

    def join(self, timeout: float = 30.0) -> bool:
        """Wait until every queued alert is handled; ``False`` on timeout (for tests and CLI)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._queue.unfinished_tasks:
                return True
            time.sleep(0.02)
        return False


def _count_recent(app: Flask, rule: AlertRule, tenant: str | None, key: str | None) -> int:
    """Events of the rule's types with the same tenant and key inside its window."""
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=rule.window)
    query = sa.select(sa.func.count()).where(
        _EVENTS.event_type.in_(sorted(rule.events)),
        _EVENTS.occurred_at >= since,
        _EVENTS.tenant_id.is_(None) if tenant is None else _EVENTS.tenant_id == tenant,
    )
    if rule.key is not None:
        column = _EVENTS[rule.key]
        query = query.where(column.is_(None) if key is None else column == key)
    with audit_state(app).engine.connect() as conn:
        return int(conn.scalar(query) or 0)


def _fold_from_trail(app: Flask, rule: AlertRule, slot: Slot, now: float) -> _Fold | None:
    """The fold of an alert another process (or this one, before a restart) sent in the window."""
    since = dt.datetime.fromtimestamp(now - rule.window, dt.timezone.utc)
    query = (
        sa.select(_EVENTS.occurred_at, _EVENTS.details)
        .where(
            _EVENTS.event_type == ALERT_SENT,
            _EVENTS.target_id == rule.name,
            _EVENTS.occurred_at >= since,
        )
        .order_by(_EVENTS.id.desc())
        .limit(200)
    )
    with audit_state(app).engine.connect() as conn:
        for occurred_at, details in conn.execute(query):
            details = details or {}
            if (details.get("tenant"), details.get("key")) == slot[1:] and details.get("sent"):
                return _Fold(occurred_at.timestamp(), {})
    return None


_DISPATCHERS: weakref.WeakKeyDictionary[Flask, Dispatcher] = weakref.WeakKeyDictionary()


def dispatcher(app: Flask) -> Dispatcher:
    """The app's dispatcher, made and connected to ``event_recorded`` on first use."""
    found = _DISPATCHERS.get(app)
    if found is None:
        found = _DISPATCHERS[app] = Dispatcher(app)
        event_recorded.connect(found.event_recorded, sender=app)
    return found
