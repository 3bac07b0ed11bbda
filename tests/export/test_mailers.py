"""Export mail through the app's own mailer, Flask-Mail or Flask-Mailman, over real SMTP; no
mailer; and which failures are retried."""

from __future__ import annotations

import logging

import pytest
from flask_mailman import Mail as Mailman

from flask_audit.export import jobs
from flask_audit.export import links
from flask_audit.export import mailers

from ..conftest import MakeApp
from ..export_fixtures import attachment
from ..export_fixtures import build_site
from ..export_fixtures import free_port
from ..export_fixtures import html_body
from ..export_fixtures import json_of
from ..export_fixtures import PREFIX
from ..export_fixtures import read_csv
from ..export_fixtures import SENDER
from ..export_fixtures import Site
from ..export_fixtures import SmtpServer
from ..export_fixtures import TENANT_LOADER
from ..export_fixtures import text_body

WORKER = {"AUDIT_EXPORT_MODE": "worker", "AUDIT_TENANT_LOADER": TENANT_LOADER}
each_mailer = pytest.mark.parametrize("mailer", ["mail", "mailman"])


def export_and_run(site: Site, **form: str) -> jobs.RunSummary:
    assert site.export(site.client(site.admin), **form).status_code == 303
    with site.app.app_context():
        return jobs.run_due()


@each_mailer
def test_the_export_goes_out_through_the_apps_mailer(
    make_app: MakeApp, smtp_server: SmtpServer, mailer: str
) -> None:
    site = build_site(make_app, smtp_server, mailer=mailer, **WORKER)
    site.insert(
        site.event(activity="acme team", tenant_id="acme"), site.event(activity="globex", tenant_id="globex")
    )
    assert export_and_run(site, entity="Team") == jobs.RunSummary(sent=1)
    [message] = smtp_server.messages
    assert smtp_server.inbox.recipients == [["admin@acme.test"]]
    assert (message["From"], message["To"], message["Subject"]) == (
        SENDER,
        "admin@acme.test",
        "Your audit log export",
    )
    name, content_type, data = attachment(message)
    assert (name, content_type) == (
        f"audit-log-{site.job().created_at:%Y%m%d-%H%M%S}-{site.job().id}.csv",
        "text/csv",
    )
    assert [row[3] for row in read_csv(data)[1:]] == ["acme team"]
    assert "1 event." in text_body(message)
    assert "<strong>1 event</strong>" in html_body(message)
    assert (site.job().status, site.job().attempts, site.job().delivery) == ("sent", 1, "attachment")


def test_flask_mail_goes_first_when_both_are_set_up(make_app: MakeApp, smtp_server: SmtpServer) -> None:
    """Flask-Mailman points at a port nobody listens on: the mail arrives, so Flask-Mail sent it."""
    site = build_site(make_app, smtp_server, mailer="mail", **WORKER)
    Mailman(site.app)
    site.app.extensions["mailman"].port = free_port()
    assert export_and_run(site) == jobs.RunSummary(sent=1)
    assert len(smtp_server.messages) == 1


@each_mailer
def test_without_a_sender_the_job_fails_at_once_and_says_why(
    make_app: MakeApp, smtp_server: SmtpServer, mailer: str
) -> None:
    site = build_site(make_app, smtp_server, mailer=mailer, **WORKER, MAIL_DEFAULT_SENDER=None)
    assert export_and_run(site) == jobs.RunSummary(failed=1)
    job = site.job()
    assert (job.status, job.attempts) == ("failed", 1)  # of AUDIT_EXPORT_MAX_ATTEMPTS = 5
    assert job.last_error == f"AuditConfigError: {mailers.NO_SENDER}"
    assert smtp_server.messages == []
    page = site.client(site.admin).get(f"{PREFIX}/exports").get_data(as_text=True)
    assert mailers.NO_SENDER in page and "failed" in page
    with site.app.app_context():
        assert jobs.run_due(now=job.next_attempt_at) == jobs.RunSummary()  # never tried again


def test_credentials_the_server_cannot_take_fail_the_job_at_once(
    make_app: MakeApp, smtp_server: SmtpServer
) -> None:
    """The server offers no AUTH on a plain connection: a setting to fix, not a wait.

    Flask-Mailman only: Flask-Mail 0.10 loses the socket when its login fails, and the
    warning of its collection would fail a later test.
    """
    mailer = "mailman"
    site = build_site(
        make_app, smtp_server, mailer=mailer, **WORKER, MAIL_USERNAME="audit", MAIL_PASSWORD="secret"
    )
    assert export_and_run(site) == jobs.RunSummary(failed=1)
    job = site.job()
    assert (job.status, job.attempts) == ("failed", 1)
    assert (job.last_error or "").startswith("SMTPNotSupportedError: ")


def test_contradicting_mail_settings_fail_the_job_at_once(make_app: MakeApp, smtp_server: SmtpServer) -> None:
    site = build_site(make_app, smtp_server, mailer="mailman", **WORKER, MAIL_USE_TLS=True, MAIL_USE_SSL=True)
    assert export_and_run(site) == jobs.RunSummary(failed=1)
    job = site.job()
    assert job.attempts == 1
    assert (job.last_error or "").startswith("AuditConfigError: The mail settings are invalid: ")


@each_mailer
def test_an_smtp_4xx_reply_is_retried(make_app: MakeApp, smtp_server: SmtpServer, mailer: str) -> None:
    site = build_site(make_app, smtp_server, mailer=mailer, **WORKER, AUDIT_EXPORT_RETRY_DELAY=0)
    smtp_server.inbox.data_reply = "451 4.3.0 Try again later"
    assert export_and_run(site) == jobs.RunSummary(retrying=1)
    job = site.job()
    assert (job.status, job.attempts) == ("queued", 1)
    assert (job.last_error or "").startswith("SMTPDataError: (451, ")
    smtp_server.inbox.data_reply = None
    with site.app.app_context():
        assert jobs.run_due() == jobs.RunSummary(sent=1)
    assert len(smtp_server.messages) == 1


@each_mailer
def test_an_smtp_5xx_reply_fails_the_job_at_once(
    make_app: MakeApp, smtp_server: SmtpServer, mailer: str
) -> None:
    site = build_site(make_app, smtp_server, mailer=mailer, **WORKER)
    smtp_server.inbox.rcpt_reply = "550 5.1.1 No such mailbox"
    assert export_and_run(site) == jobs.RunSummary(failed=1)
    job = site.job()
    assert (job.status, job.attempts) == ("failed", 1)
    assert (job.last_error or "").startswith("SMTPRecipientsRefused: ")


# -- no mailer at all -----------------------------------------------------------------


def test_without_a_mailer_the_export_is_refused_with_the_reason(
    make_app: MakeApp, smtp_server: SmtpServer
) -> None:
    site = build_site(make_app, smtp_server, mailer=None, **WORKER)
    client = site.client(site.admin)
    response = site.export(client, entity="Team")
    assert response.status_code == 503
    page = response.get_data(as_text=True)
    assert mailers.NO_MAILER in page
    assert "on its way" not in page
    assert f'<a href="{PREFIX}/?entity=Team' in page  # back to the same filters
    response = site.export_json(client)
    assert (response.status_code, json_of(response)) == (503, {"error": mailers.NO_MAILER})
    assert site.jobs() == []


def test_a_missing_mailer_or_address_is_logged_once_per_app(
    make_app: MakeApp, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Before the first request, not in init_app: the app may set up its mailer after Audit."""
    caplog.set_level(logging.WARNING, logger=links.__name__)

    def logged() -> list[str]:
        return [record.getMessage() for record in caplog.records if record.name == links.__name__]

    bare = build_site(make_app, smtp_server, mailer=None, **WORKER)
    assert logged() == []
    for _ in range(3):
        bare.client(bare.admin).get(f"{PREFIX}/exports")
    assert logged() == [f"{mailers.NO_MAILER} Until then the export is refused.", links.NO_ADDRESS]
    assert "Flask-Mail" in logged()[0] and "Flask-Mailman" in logged()[0]
    caplog.clear()
    another = make_app(**WORKER, AUDIT_EXTERNAL_URL="https://audit.example.test")  # no mailer
    another.test_client().get(f"{PREFIX}/exports")
    another.test_client().get(f"{PREFIX}/exports")
    assert logged() == [f"{mailers.NO_MAILER} Until then the export is refused."]
    caplog.clear()
    ready = make_app(**smtp_server.config(), SERVER_NAME="audit.example.test")
    Mailman(ready)
    ready.test_client().get(f"{PREFIX}/exports", base_url="http://audit.example.test")
    assert logged() == []
