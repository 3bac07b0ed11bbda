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

Retries: a mail refused for a reason that may pass (a mail server down, an SMTP 4xx) is
noted in its ``audit.alert_sent`` event (``details.retry``, ``details.retry_at``) and sent
again by :func:`retry_due`, after ``AUDIT_ALERT_RETRY_DELAY`` doubled each attempt, up to
``AUDIT_ALERT_MAX_ATTEMPTS``; each attempt is one more ``audit.alert_sent`` naming the one
it retries (``details.retry_of``). The trail is the queue, so a restarted process picks the
retries up (the alert thread runs a pass when it starts), and each attempt is visible on
the audit page. Two processes passing at once may both mail: at least once, never lost.

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
from markupsafe import escape

from ..export import mailers
from ..signals import event_recorded
from ..state import audit_state
from ..store.models import audit_event_table
from . import settings
from .recipients import NO_RECIPIENTS
from .recipients import recipients_for
from .recipients import split
from .recipients import STREAM_PREFIX
from .rules import AlertRule
from .rules import SELF_TYPES

if t.TYPE_CHECKING:
    from ..store.models import AuditEvent

logger = logging.getLogger("flask_audit.alerts")
_EVENTS = audit_event_table.c
#: Columns an alert carries from its event to the thread that sends it.
SEEN = ("id", "event_type", "activity", "occurred_at", "tenant_id", "actor_email", "actor_id", "ip")
SEEN_KEYS = ("team", "target_id")
_IDLE_SECONDS = 5.0
ALERT_SENT = "audit.alert_sent"

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
            _EVENTS.event_type == "audit.alert_sent",
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


def _message(rule: AlertRule, seen: dict[str, t.Any], count: int, folded: bool) -> tuple[str, str, str]:
    subject = f"[Audit alert] {rule.title}" + (f" ({count} events)" if count > 1 else "")
    when, who = seen.get("occurred_at"), seen.get("actor_email") or "the system"
    lines = [
        f"{count} more matching event(s) since the last alert." if folded else None,
        f"Latest: {seen.get('activity') or seen.get('event_type')}",
        f"Event type: {seen.get('event_type')}",
        f"When: {when:%Y-%m-%d %H:%M:%S} UTC" if isinstance(when, dt.datetime) else None,
        f"By: {who}" + (f" from {seen['ip']}" if seen.get("ip") else ""),
        f"Tenant: {seen['tenant_id']}" if seen.get("tenant_id") else None,
        f"Event id: {seen['id']}" if seen.get("id") else None,
        f"Rule: {rule.name}"
        + (f" ({rule.threshold} events within {int(rule.window)} seconds)" if rule.threshold > 1 else ""),
    ]
    shown = [line for line in lines if line is not None]
    body = "\n".join([rule.title, "", *shown]) + "\n"
    html = f"<h1>{escape(rule.title)}</h1>" + "".join(f"<p>{escape(line)}</p>" for line in shown)
    return subject, body, html


def send_alert(
    app: Flask, rule: AlertRule, seen: dict[str, t.Any], *, count: int, folded: bool = False
) -> float | None:
    """Mail the alert to its recipients and record ``audit.alert_sent``; never raises.

    The recorded event carries the alert itself (title, subject, message) and the stream
    destinations it names (``details.streams``): those receive it through the outbox.
    Returns the seconds until a failed mail is due to be sent again, if one is.
    """
    tenant = seen.get("tenant_id")
    subject, body, html = _message(rule, seen, count, folded)
    errors: list[str] = []
    try:
        recipients = recipients_for(app, rule, tenant)
    except Exception as err:
        logger.exception("The alert recipients could not be read.")
        recipients, errors = [], [f"recipients: {err}"]
    unknown = settings.unknown_streams(app, recipients)
    errors += [f"{STREAM_PREFIX}{name}: no such AUDIT_STREAMS destination" for name in unknown]
    addresses, streams = split(recipients)
    streams = [name for name in streams if name not in unknown]
    if not addresses and not streams and not errors:
        errors.append(NO_RECIPIENTS)
    sent, retry = _mail(rule, addresses, subject, body, html, errors)
    fields, delay = _retry_fields(app, retry, 1)
    details = {
        "rule": rule.name,
        "tenant": tenant,
        "key": seen.get(rule.key) if rule.key else None,
        "count": count,
        "folded": folded,
        "event_id": seen.get("id"),
        "event_type": seen.get("event_type"),
        "sent": sent,
        "streams": streams,
        "errors": errors,
        "title": rule.title,
        "subject": subject,
        "message": body,
        "attempt": 1,
        "retry_of": None,
        **fields,
    }
    outcome = "failure" if errors or not (sent or streams) else "success"
    _record_sent(app, rule, tenant, count, outcome, details)
    return delay


def _retry_fields(app: Flask, retry: list[str], attempt: int) -> tuple[dict[str, t.Any], float | None]:
    """``details.retry`` and ``retry_at`` after ``attempt`` (or ``given_up``), and the delay."""
    config = settings.load(app)
    if not retry or attempt >= config.max_attempts:
        return {"retry": [], "retry_at": None, "given_up": retry}, None
    delay = config.retry_delay * 2 ** (attempt - 1)
    at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=delay)
    return {"retry": retry, "retry_at": at.isoformat(), "given_up": []}, delay


def _mail(
    rule: AlertRule, addresses: list[str], subject: str, body: str, html: str, errors: list[str]
) -> tuple[list[str], list[str]]:
    """Mail each address: the ones that took it, and those worth trying again (failures
    appended to ``errors``)."""
    sent: list[str] = []
    retry: list[str] = []
    for address in addresses:
        try:
            mailers.send(mailers.Outgoing(subject, address, body, html))
            sent.append(address)
        except Exception as err:
            logger.warning("The audit alert %r could not be mailed to %s: %s", rule.name, address, err)
            errors.append(f"{address}: {err}")
            if not mailers.is_permanent(err):
                retry.append(address)
    return sent, retry


def _record_sent(
    app: Flask, rule: AlertRule, tenant: str | None, count: int, outcome: str, details: dict[str, t.Any]
) -> None:
    parts = [f"{len(details['sent'])} recipient(s)"] if details["sent"] else []
    if details["streams"]:
        parts.append("stream " + ", ".join(details["streams"]))
    to = " and ".join(parts) or "nobody"
    again = f" again (attempt {details['attempt']})" if details["attempt"] > 1 else ""
    try:
        audit_state(app).audit.record(
            ALERT_SENT,
            entity="Audit log",
            action="create",
            outcome=outcome,
            activity=f"Sent the alert '{rule.title}'{again} ({count} event(s)) to {to}",
            tenant_id=tenant,
            team=None,
            target=("alert_rule", rule.name),
            details=details,
        )
    except Exception:
        logger.exception("The audit alert %r could not be recorded.", rule.name)


def retry_due(app: Flask, now: dt.datetime | None = None) -> float | None:
    """Mail again every alert whose retry is due (see the module); the seconds until the
    next one that is not due yet, or ``None``. For a cron job as well as the alert thread."""
    now = now or dt.datetime.now(dt.timezone.utc)
    config = settings.load(app)
    horizon = config.retry_delay * 2**config.max_attempts + 3600
    query = (
        sa.select(_EVENTS.id, _EVENTS.tenant_id, _EVENTS.details)
        .where(_EVENTS.event_type == ALERT_SENT, _EVENTS.occurred_at >= now - dt.timedelta(seconds=horizon))
        .order_by(_EVENTS.id)
    )
    with audit_state(app).engine.connect() as conn:
        rows = [(row.id, row.tenant_id, row.details or {}) for row in conn.execute(query)]
    retried = {details.get("retry_of") for _, _, details in rows}
    later: float | None = None
    for event_id, tenant, details in rows:
        if not details.get("retry") or event_id in retried or not details.get("retry_at"):
            continue
        wait = (dt.datetime.fromisoformat(details["retry_at"]) - now).total_seconds()
        delay = _retry(app, event_id, tenant, details) if wait <= 0 else wait
        if delay is not None:
            later = delay if later is None else min(later, delay)
    return later


def _retry(app: Flask, event_id: int, tenant: str | None, details: dict[str, t.Any]) -> float | None:
    """Send one failed alert again to the addresses that failed; record the attempt."""
    rules = {rule.name: rule for rule in settings.load(app).alerts}
    rule = rules.get(details["rule"]) or AlertRule(details["rule"], frozenset(), details.get("title", ""))
    subject, body = str(details.get("subject", rule.title)), str(details.get("message", ""))
    html = "".join(f"<p>{escape(line)}</p>" for line in body.splitlines() if line)
    errors: list[str] = []
    sent, retry = _mail(rule, list(details["retry"]), subject, body, html, errors)
    attempt = int(details.get("attempt", 1)) + 1
    fields, delay = _retry_fields(app, retry, attempt)
    again = {"sent": sent, "streams": [], "errors": errors, "attempt": attempt, "retry_of": event_id}
    outcome = "failure" if errors or not sent else "success"
    _record_sent(app, rule, tenant, int(details.get("count", 1)), outcome, {**details, **again, **fields})
    return delay


_DISPATCHERS: weakref.WeakKeyDictionary[Flask, Dispatcher] = weakref.WeakKeyDictionary()


def dispatcher(app: Flask) -> Dispatcher:
    """The app's dispatcher, made and connected to ``event_recorded`` on first use."""
    found = _DISPATCHERS.get(app)
    if found is None:
        found = _DISPATCHERS[app] = Dispatcher(app)
        event_recorded.connect(found.event_recorded, sender=app)
    return found
