"""Sending an alert: the mail to each recipient, its record in the trail, and its retries.

Retries: a mail refused for a reason that may pass (a mail server down, an SMTP 4xx) is
noted in its ``audit.alert_sent`` event (``details.retry``, ``details.retry_at``) and sent
again by :func:`retry_due`, after ``AUDIT_ALERT_RETRY_DELAY`` doubled each attempt, up to
``AUDIT_ALERT_MAX_ATTEMPTS``; each attempt is one more ``audit.alert_sent`` naming the one
it retries (``details.retry_of``). The trail is the queue, so a restarted process picks the
retries up (the alert thread runs a pass when it starts), and each attempt is visible on
the audit page. Two processes passing at once may both mail: at least once, never lost.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing as t

import sqlalchemy as sa
from flask import Flask
from markupsafe import escape

from ..export import mailers
from ..state import audit_state
from ..store.models import audit_event_table
from . import settings
from .recipients import NO_RECIPIENTS
from .recipients import recipients_for
from .recipients import split
from .recipients import STREAM_PREFIX
from .rules import AlertRule

logger = logging.getLogger("flask_audit.alerts")
_EVENTS = audit_event_table.c
ALERT_SENT = "audit.alert_sent"


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
