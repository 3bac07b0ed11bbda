"""Alert rules: each default rule mails the tenant's admins through a real SMTP server,
records ``audit.alert_sent``, folds repeats, and never holds up the request."""

from __future__ import annotations

import time
import typing as t

import pytest
from flask import Flask

from flask_audit import AuditConfigError
from flask_audit.compliance import settings
from flask_audit.compliance.alerts import dispatcher
from flask_audit.compliance.recipients import NO_RECIPIENTS

from ..apps import add_user
from ..apps import User
from ..conftest import db
from ..conftest import MakeApp
from ..conftest import signed_in_client
from ..export_fixtures import SmtpServer
from .alert_fixtures import alerting_app
from .alert_fixtures import alerts_sent
from .alert_fixtures import body
from .alert_fixtures import mails
from .alert_fixtures import record
from .alert_fixtures import settle

pytestmark = pytest.mark.backends("sqlite", "postgresql")
ACME = ["ann@acme.test", "bob@acme.test"]


@pytest.fixture
def app(make_app: MakeApp, smtp: SmtpServer) -> Flask:
    return alerting_app(make_app, smtp)


def _user(app: Flask, email: str, tenant: str | None = "acme") -> User:
    user_id = add_user(app, email, tenant=tenant)
    with app.app_context():
        user = db(app).session.get(User, user_id)
        assert user is not None
        db(app).session.expunge(user)
        return user


def test_two_factor_turned_off_by_someone_else_alerts_the_tenants_admins(
    app: Flask, smtp: SmtpServer
) -> None:
    victim = _user(app, "vic@acme.test")
    event = record(app, "two_factor.disabled", tenant_id="acme", target=("user", victim.id), actor=None)
    settle(app)
    subject = "[Audit alert] Two-factor authentication turned off or reset by someone else"
    assert mails(smtp) == [(subject, [ACME[0]]), (subject, [ACME[1]])]
    text = body(smtp.messages[0])
    assert f"Event id: {event.id}" in text and "Event type: two_factor.disabled" in text
    assert "Tenant: acme" in text and "By: the system" in text
    [sent] = alerts_sent(app)
    assert (sent.outcome, sent.tenant_id, sent.target_type, sent.target_id) == (
        "success",
        "acme",
        "alert_rule",
        "two_factor_by_other",
    )
    assert sent.details["sent"] == ACME and sent.details["event_id"] == event.id
    assert sent.details["count"] == 1 and sent.details["errors"] == []


def test_two_factor_reset_alerts_but_a_user_turning_off_their_own_does_not(
    app: Flask, smtp: SmtpServer
) -> None:
    user = _user(app, "self@acme.test")
    record(app, "two_factor.disabled", tenant_id="acme", target=("user", user.id), actor=user)
    settle(app)
    assert mails(smtp) == []
    record(app, "two_factor.reset", tenant_id="acme", target=("user", user.id), actor=None)
    settle(app)
    assert len(mails(smtp)) == 2


@pytest.mark.parametrize("event_type", ["sso.configured", "sso.updated", "sso.disabled"])
def test_sso_changes_alert(app: Flask, smtp: SmtpServer, event_type: str) -> None:
    record(app, event_type, tenant_id="globex")
    settle(app)
    assert mails(smtp) == [("[Audit alert] SSO changed", ["gil@globex.test"])]


@pytest.mark.parametrize(
    ("before", "after", "alerts"),
    [
        ("member", "admin", True),
        (["editor"], ["admin", "editor"], True),
        (False, True, True),
        ("admin", "member", False),
        (["admin"], ["admin", "editor"], False),
        ("member", "editor", False),
    ],
)
def test_an_admin_role_granted_alerts(
    app: Flask, smtp: SmtpServer, before: t.Any, after: t.Any, alerts: bool
) -> None:
    record(app, "role.updated", tenant_id="acme", details={"before": before, "after": after})
    settle(app)
    assert len(mails(smtp)) == (2 if alerts else 0)
    if alerts:
        assert str(smtp.messages[0]["Subject"]) == "[Audit alert] Admin role granted"


def test_an_audit_export_alerts(app: Flask, smtp: SmtpServer) -> None:
    record(app, "audit.exported", tenant_id=None, details={"rows": 3})
    settle(app)
    assert mails(smtp) == [("[Audit alert] Audit log exported", ["ops@example.com"])]


def test_a_prune_alerts(app: Flask, smtp: SmtpServer) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "prune"])
    assert result.exit_code == 0, result.output
    settle(app)
    assert mails(smtp) == [("[Audit alert] Audit log pruned", ["ops@example.com"])]
    assert "Latest: Pruned 0 audit events older than" in body(smtp.messages[0])


def _fail_sign_in(app: Flask, email: str, address: str) -> None:
    response = signed_in_client(app).post(
        "/login", data={"email": email, "password": "wrong"}, environ_base={"REMOTE_ADDR": address}
    )
    assert response.status_code == 401


def test_failed_sign_ins_for_one_account_alert_at_the_threshold(app: Flask, smtp: SmtpServer) -> None:
    for n in range(4):
        _fail_sign_in(app, "target@acme.test", f"10.0.0.{n}")
    settle(app)
    assert mails(smtp) == []
    _fail_sign_in(app, "target@acme.test", "10.0.0.9")
    settle(app)
    assert mails(smtp) == [("[Audit alert] Repeated failed sign-ins for one account", ["ops@example.com"])]
    [sent] = alerts_sent(app)
    assert (sent.details["rule"], sent.details["key"]) == ("failed_signins_account", "target@acme.test")


def test_failed_sign_ins_from_one_address_alert_at_the_threshold(app: Flask, smtp: SmtpServer) -> None:
    for n in range(19):
        _fail_sign_in(app, f"user{n}@acme.test", "203.0.113.7")
    settle(app)
    assert mails(smtp) == []
    _fail_sign_in(app, "user19@acme.test", "203.0.113.7")
    settle(app)
    assert mails(smtp) == [("[Audit alert] Repeated failed sign-ins from one address", ["ops@example.com"])]
    [sent] = alerts_sent(app)
    assert (sent.details["rule"], sent.details["key"]) == ("failed_signins_address", "203.0.113.7")


# -- folding -------------------------------------------------------------------------------------


@pytest.fixture
def folding_app(make_app: MakeApp, smtp: SmtpServer) -> Flask:
    return alerting_app(make_app, smtp, AUDIT_ALERTS={"audit_exported": {"window": 1}})


def test_repeats_inside_the_window_are_folded_into_one_more_mail(
    folding_app: Flask, smtp: SmtpServer
) -> None:
    app = folding_app
    for _ in range(4):
        record(app, "audit.exported", tenant_id="globex")
    settle(app)
    assert mails(smtp) == [("[Audit alert] Audit log exported", ["gil@globex.test"])]
    time.sleep(1.2)  # the window ends: the folded ones are told in one mail
    settle(app)
    assert mails(smtp)[1:] == [("[Audit alert] Audit log exported (3 events)", ["gil@globex.test"])]
    assert "3 more matching event(s) since the last alert." in body(smtp.messages[1])
    assert [(e.details["count"], e.details["folded"]) for e in alerts_sent(app)] == [(1, False), (3, True)]


def test_folding_is_per_tenant(folding_app: Flask, smtp: SmtpServer) -> None:
    record(folding_app, "audit.exported", tenant_id="globex")
    record(folding_app, "audit.exported", tenant_id="acme")
    settle(folding_app)
    assert sorted(rcpt[0] for _subject, rcpt in mails(smtp)) == [
        "ann@acme.test",
        "bob@acme.test",
        "gil@globex.test",
    ]


def test_another_process_does_not_mail_again_inside_the_window(app: Flask, smtp: SmtpServer) -> None:
    record(app, "sso.updated", tenant_id="acme")
    settle(app)
    dispatcher(app)._folds.clear()  # what a restarted process, or another one, knows
    record(app, "sso.updated", tenant_id="acme")
    settle(app)
    assert len(mails(smtp)) == 2  # the first alert's two admins, once


# -- delivery ------------------------------------------------------------------------------------


def test_an_alert_never_holds_up_or_fails_the_request(app: Flask, smtp: SmtpServer) -> None:
    smtp.stop()
    started = time.monotonic()
    response = app.test_client().post("/record/sso.updated")
    assert response.status_code == 200
    assert time.monotonic() - started < 1
    settle(app)
    [sent] = alerts_sent(app)
    assert sent.outcome == "failure" and sent.details["sent"] == []
    assert sent.details["errors"] and sent.details["errors"][0].startswith("ops@example.com: ")


def test_without_recipients_the_alert_is_recorded_as_failed(make_app: MakeApp, smtp: SmtpServer) -> None:
    app = alerting_app(make_app, smtp, AUDIT_ALERT_RECIPIENTS=None)
    record(app, "sso.updated")
    settle(app)
    assert mails(smtp) == []
    [sent] = alerts_sent(app)
    assert (sent.outcome, sent.details["errors"]) == ("failure", [NO_RECIPIENTS])


def test_a_rule_of_the_apps_own_with_fixed_recipients(make_app: MakeApp, smtp: SmtpServer) -> None:
    rules = {
        "audit_exported": False,
        "teams_deleted": {
            "events": ["team.deleted"],
            "recipients": ["soc@example.com"],
            "when": {"team": "core"},
        },
    }
    app = alerting_app(make_app, smtp, AUDIT_ALERTS=rules)
    record(app, "audit.exported")
    record(app, "team.deleted", team="other")
    record(app, "team.deleted", team="core")
    settle(app)
    assert mails(smtp) == [("[Audit alert] Teams deleted", ["soc@example.com"])]


def test_an_alert_is_never_alerted_about(app: Flask, smtp: SmtpServer) -> None:
    record(app, "audit.alert_sent", entity="Audit log", action="create", tenant_id="acme")
    settle(app)
    assert mails(smtp) == []


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nonsense", "AUDIT_ALERTS must be None, a list of rules or a mapping, not 'nonsense'."),
        ({"x": {"events": "sso.updated"}}, "AUDIT_ALERTS['x']: events must be a list of event types."),
        (
            {"sso_changed": {"key": "email"}},
            "AUDIT_ALERTS['sso_changed']: key must be one of actor_email, "
            "actor_id, ip, tenant_id, team, target_id, not 'email'.",
        ),
        (
            {"sso_changed": {"threshold": 0}},
            "AUDIT_ALERTS['sso_changed']: threshold must be a number of at least 1.",
        ),
        ({"sso_changed": {"colour": "red"}}, "AUDIT_ALERTS['sso_changed']: unknown field(s) colour."),
        ([{"events": ["sso.updated"]}], "AUDIT_ALERTS: each rule in a list is a mapping with a name."),
    ],
)
def test_bad_rules_are_refused_at_start_up(app: Flask, value: t.Any, message: str) -> None:
    fresh = Flask("other")
    fresh.config.update(AUDIT_ALERTS=value)
    with pytest.raises(AuditConfigError) as info:
        settings.load(fresh)
    assert str(info.value) == message
