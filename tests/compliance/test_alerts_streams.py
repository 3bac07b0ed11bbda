"""Alerts to stream destinations: a rule's ``"stream:NAME"`` recipient, delivered through the outbox.

The alert travels as its ``audit.alert_sent`` event, which carries it (title, subject,
message); the named destination receives that event whatever its event type filter says,
through a real sink (a webhook receiver that verifies each signature).
"""

from __future__ import annotations

import pathlib

import pytest
from flask import Flask

from flask_audit import AuditConfigError

from ..conftest import MakeApp
from ..conftest import stored
from ..export_fixtures import SmtpServer
from ..stream.fixtures import drain
from ..stream.fixtures import read_lines
from ..stream.fixtures import receiver
from ..stream.fixtures import relay
from ..stream.fixtures import SECRET
from .alert_fixtures import alerting_app
from .alert_fixtures import alerts_sent
from .alert_fixtures import mails
from .alert_fixtures import record
from .alert_fixtures import settle

pytestmark = pytest.mark.backends("sqlite", "postgresql")
SUBJECT = "[Audit alert] SSO changed"


def _app(make_app: MakeApp, smtp: SmtpServer, url: str, folder: pathlib.Path) -> Flask:
    streams = {
        # Only sign-ins, by its filter: the alert reaches it because the rule names it.
        "siem": {"sink": "webhook", "url": url, "secret": SECRET, "event_types": ["user.*"]},
        "signins": {"sink": "jsonl", "path": str(folder / "signins.jsonl"), "event_types": ["user.*"]},
        "everything": {"sink": "jsonl", "path": str(folder / "all.jsonl")},
        "globex": {"sink": "jsonl", "path": str(folder / "globex.jsonl"), "tenants": ["globex"]},
    }
    alerts = {"sso_changed": {"recipients": ["soc@example.com", "stream:siem", "stream:globex"]}}
    return alerting_app(make_app, smtp, AUDIT_STREAMS=streams, AUDIT_ALERTS=alerts)


def test_a_rule_naming_a_destination_sends_the_alert_there(
    make_app: MakeApp, smtp: SmtpServer, tmp_path: pathlib.Path
) -> None:
    with receiver() as peer:
        app = _app(make_app, smtp, peer.url, tmp_path)
        record(app, "user.login", tenant_id="acme")
        event = record(app, "sso.updated", tenant_id="acme", activity="Replaced the IdP certificate")
        settle(app)
        for name in ("siem", "signins", "everything", "globex"):
            drain(app, name)
    assert mails(smtp) == [(SUBJECT, ["soc@example.com"])]
    [sent] = alerts_sent(app)
    assert sent.outcome == "success" and sent.details["streams"] == ["siem", "globex"]
    assert (
        sent.activity == "Sent the alert 'SSO changed' (1 event(s)) to 1 recipient(s) and stream siem, globex"
    )
    assert peer.refused == 0
    assert [body["event_type"] for body in peer.received] == ["user.login", "audit.alert_sent"]
    alert = peer.received[-1]
    assert alert["uid"] == sent.uid and alert["details"]["event_id"] == event.id
    assert alert["details"]["subject"] == SUBJECT and alert["details"]["title"] == "SSO changed"
    assert "Latest: Replaced the IdP certificate" in alert["details"]["message"]
    # A destination the rule does not name gets the alert only if its filters select it.
    assert [line["event_type"] for line in read_lines(tmp_path / "signins.jsonl")] == ["user.login"]
    assert "audit.alert_sent" in [line["event_type"] for line in read_lines(tmp_path / "all.jsonl")]
    # Named, but for tenant globex only: acme's alert stays out.
    assert read_lines(tmp_path / "globex.jsonl") == []


def test_a_rule_may_alert_only_a_destination(
    make_app: MakeApp, smtp: SmtpServer, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "alerts.jsonl"
    streams = {"soc": {"sink": "jsonl", "path": str(path), "event_types": ["audit.alert_sent"]}}
    app = alerting_app(
        make_app,
        smtp,
        AUDIT_STREAMS=streams,
        AUDIT_ALERTS={"audit_exported": {"recipients": ["stream:soc"]}},
        AUDIT_ALERT_RECIPIENTS=None,
    )
    record(app, "audit.exported", tenant_id=None, details={"rows": 3})
    settle(app)
    drain(app, "soc")
    assert mails(smtp) == []
    [sent] = alerts_sent(app)
    assert (sent.outcome, sent.details["sent"], sent.details["errors"]) == ("success", [], [])
    assert [line["uid"] for line in read_lines(path)] == [sent.uid]


def test_an_unknown_destination_is_refused_at_start_up(make_app: MakeApp, smtp: SmtpServer) -> None:
    with pytest.raises(
        AuditConfigError, match=r"AUDIT_ALERTS\['sso_changed'\]: 'stream:siem' names no AUDIT_STREAMS"
    ):
        alerting_app(make_app, smtp, AUDIT_ALERTS={"sso_changed": {"recipients": ["stream:siem"]}})
    with pytest.raises(AuditConfigError, match=r"AUDIT_ALERT_RECIPIENTS: 'stream:x' names no AUDIT_STREAMS"):
        alerting_app(make_app, smtp, AUDIT_ALERT_RECIPIENTS=["ops@example.com", "stream:x"])
    with pytest.raises(
        AuditConfigError, match=r"recipients must be a list of addresses or 'stream:<destination>'"
    ):
        alerting_app(make_app, smtp, AUDIT_ALERTS={"sso_changed": {"recipients": "stream:siem"}})


def test_a_loader_naming_an_unknown_destination_is_a_recorded_error(
    make_app: MakeApp, smtp: SmtpServer
) -> None:
    app = alerting_app(
        make_app, smtp, AUDIT_ALERT_RECIPIENTS=lambda tenant: ["ops@example.com", "stream:gone"]
    )
    record(app, "sso.disabled", tenant_id=None)
    settle(app)
    [sent] = alerts_sent(app)
    assert sent.outcome == "failure" and sent.details["sent"] == ["ops@example.com"]
    assert sent.details["errors"] == ["stream:gone: no such AUDIT_STREAMS destination"]


def test_a_failing_destination_is_alerted_once_per_window(make_app: MakeApp, smtp: SmtpServer) -> None:
    # Nothing listens on port 9 of the loopback: every delivery fails.
    streams = {"siem": {"sink": "webhook", "url": "http://127.0.0.1:9/hooks", "secret": SECRET, "timeout": 2}}
    app = alerting_app(make_app, smtp, AUDIT_STREAMS=streams, AUDIT_STREAM_ALERT_AFTER=0)
    worker = relay(app, "siem")
    for _ in range(3):
        assert worker.step().outcome == "failed"
    worker.close()
    settle(app)
    [failing] = [event for event in stored(app) if event.event_type == "audit.stream_failing"]
    assert mails(smtp) == [("[Audit alert] An audit log stream is failing", ["ops@example.com"])]
    [sent] = alerts_sent(app)
    assert sent.details["event_id"] == failing.id and sent.details["key"] == "siem"
