"""Shared by the compliance tests: an app with Flask-Mail pointed at a real SMTP server,
alerting connected, admins per tenant, and helpers to wait for the alert thread."""

from __future__ import annotations

import email.message
import typing as t

import sqlalchemy as sa
from flask import Flask
from flask_mail import Mail

from flask_audit import compliance
from flask_audit.compliance.alerts import dispatcher
from flask_audit.store.models import AuditEvent

from ..conftest import audit_of
from ..conftest import MakeApp
from ..conftest import stored
from ..export_fixtures import SmtpServer

ADMINS = {
    "acme": ["ann@acme.test", "bob@acme.test"],
    "globex": ["gil@globex.test"],
    None: ["ops@example.com"],
}
RECIPIENTS = "tests.compliance.alert_fixtures:admins_of"


def admins_of(tenant_id: str | None) -> list[str]:
    """The ``AUDIT_ALERT_RECIPIENTS`` of the tests: each tenant's admins, ops for the rest."""
    return ADMINS.get(tenant_id, [])


def alerting_app(make_app: MakeApp, smtp: SmtpServer, **config: t.Any) -> Flask:
    config.setdefault("AUDIT_ALERT_RECIPIENTS", RECIPIENTS)
    config.setdefault("AUDIT_ALERTS", None)  # the default rules, whatever the test app defaults to
    app = make_app(**smtp.config(), **config)
    Mail(app)
    compliance.connect(app)
    return app


def settle(app: Flask) -> None:
    """Wait until the alert thread has handled everything queued so far."""
    assert dispatcher(app).join(15), "the alert thread did not finish"


def record(app: Flask, event_type: str, **fields: t.Any) -> AuditEvent:
    with app.app_context():
        return audit_of(app).record(event_type, **fields)


def alerts_sent(app: Flask) -> list[AuditEvent]:
    return [event for event in stored(app) if event.event_type == "audit.alert_sent"]


def events_of(app: Flask, event_type: str) -> list[AuditEvent]:
    return [event for event in stored(app) if event.event_type == event_type]


def mails(smtp: SmtpServer) -> list[tuple[str, list[str]]]:
    """(subject, envelope recipients) of every message received, in order."""
    return [
        (" ".join(str(m["Subject"]).split()), rcpt)
        for m, rcpt in zip(smtp.messages, smtp.inbox.recipients, strict=True)
    ]


def body(message: email.message.EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return t.cast(str, part.get_content())


def count_events(app: Flask) -> int:
    with app.app_context():
        engine = audit_of(app)._state().engine
    with engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) or 0)
