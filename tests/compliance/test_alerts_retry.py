"""Alert mails that fail are sent again later, from the trail, and every attempt is visible."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from flask import Flask

from flask_audit import AuditConfigError
from flask_audit import compliance
from flask_audit.compliance.sending import retry_due

from ..conftest import MakeApp
from ..export_fixtures import SmtpServer
from .alert_fixtures import alerting_app
from .alert_fixtures import alerts_sent
from .alert_fixtures import mails
from .alert_fixtures import RECIPIENTS
from .alert_fixtures import record
from .alert_fixtures import settle

pytestmark = pytest.mark.backends("sqlite", "postgresql")
SUBJECT = "[Audit alert] SSO changed"


def later(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)


def _failed_once(make_app: MakeApp, smtp: SmtpServer, **config: object) -> Flask:
    app = alerting_app(make_app, smtp, AUDIT_ALERT_RETRY_DELAY=600, **config)
    smtp.stop()  # the mail server is down when the alert goes out
    record(app, "sso.updated", tenant_id="globex", activity="Replaced the IdP certificate")
    settle(app)
    return app


def test_a_failed_alert_mail_is_sent_again_once_the_server_is_back(
    make_app: MakeApp, smtp: SmtpServer
) -> None:
    app = _failed_once(make_app, smtp)
    [first] = alerts_sent(app)
    assert first.outcome == "failure" and first.details["retry"] == ["gil@globex.test"]
    assert first.details["attempt"] == 1 and first.details["retry_at"]
    with app.app_context():
        assert retry_due(app) == pytest.approx(600, abs=30)  # not due yet: nothing sent
    assert len(alerts_sent(app)) == 1
    smtp.start()
    with app.app_context():
        assert retry_due(app, now=later(601)) is None
        assert retry_due(app, now=later(601)) is None  # done: never sent twice
    assert mails(smtp) == [(SUBJECT, ["gil@globex.test"])]
    assert "Latest: Replaced the IdP certificate" in str(smtp.messages[0].get_body(("plain",)))
    first, again = alerts_sent(app)
    assert (again.outcome, again.details["sent"], again.details["retry"]) == (
        "success",
        ["gil@globex.test"],
        [],
    )
    assert again.details["retry_of"] == first.id and again.details["attempt"] == 2
    assert again.activity == "Sent the alert 'SSO changed' again (attempt 2) (1 event(s)) to 1 recipient(s)"
    assert again.tenant_id == "globex"


def test_attempts_back_off_and_stop_at_the_limit(make_app: MakeApp, smtp: SmtpServer) -> None:
    app = _failed_once(make_app, smtp, AUDIT_ALERT_MAX_ATTEMPTS=3)
    with app.app_context():
        assert retry_due(app, now=later(601)) == pytest.approx(1200, abs=30)  # doubled
        assert retry_due(app, now=later(601 + 1201)) is None  # the third and last attempt
        assert retry_due(app, now=later(10_000)) is None
    attempts = alerts_sent(app)
    assert [event.details["attempt"] for event in attempts] == [1, 2, 3]
    assert [event.outcome for event in attempts] == ["failure"] * 3
    assert attempts[-1].details["retry"] == [] and attempts[-1].details["given_up"] == ["gil@globex.test"]
    assert mails(smtp) == []


def test_the_alert_thread_sends_it_when_due(make_app: MakeApp, smtp: SmtpServer) -> None:
    app = alerting_app(make_app, smtp, AUDIT_ALERT_RETRY_DELAY=0.5)
    smtp.stop()
    record(app, "sso.updated", tenant_id="globex")
    settle(app)
    smtp.start()
    deadline = time.monotonic() + 20
    while len(alerts_sent(app)) < 2:  # no call: the thread scheduled the retry itself
        assert time.monotonic() < deadline, "the retry never ran"
        time.sleep(0.05)
    settle(app)
    assert mails(smtp) == [(SUBJECT, ["gil@globex.test"])]
    assert [event.outcome for event in alerts_sent(app)] == ["failure", "success"]


def test_a_refusal_that_waiting_cannot_fix_is_not_tried_again(make_app: MakeApp, smtp: SmtpServer) -> None:
    app = make_app(**smtp.config(), AUDIT_ALERTS=None, AUDIT_ALERT_RECIPIENTS=RECIPIENTS)
    compliance.connect(app)  # and no Flask-Mail: no mailer to send through
    record(app, "sso.updated", tenant_id=None)
    settle(app)
    [sent] = alerts_sent(app)
    assert sent.outcome == "failure" and "no mailer" in sent.details["errors"][0]
    assert sent.details["retry"] == [] and sent.details["given_up"] == []
    with app.app_context():
        assert retry_due(app, now=later(10_000)) is None
    assert len(alerts_sent(app)) == 1


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "AUDIT_ALERT_RETRY_DELAY",
            0,
            "AUDIT_ALERT_RETRY_DELAY must be a positive number of seconds, not 0.",
        ),
        (
            "AUDIT_ALERT_MAX_ATTEMPTS",
            "3",
            "AUDIT_ALERT_MAX_ATTEMPTS must be a whole number of at least 1, not '3'.",
        ),
    ],
)
def test_bad_retry_settings_are_clear(
    make_app: MakeApp, smtp: SmtpServer, key: str, value: object, message: str
) -> None:
    with pytest.raises(AuditConfigError, match=message):
        alerting_app(make_app, smtp, **{key: value})
