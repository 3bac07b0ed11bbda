"""The export mail, received by a real SMTP server: attachment, gzip, link, and set-up errors."""

from __future__ import annotations

import codecs
import gzip
import os

import itsdangerous
import pytest
from flask_mail import Mail

from flask_audit.export import jobs
from flask_audit.export import mail
from flask_audit.export import mailers
from flask_audit.store.models import ExportJob

from ..conftest import MakeApp
from ..export_fixtures import attachment
from ..export_fixtures import build_site
from ..export_fixtures import html_body
from ..export_fixtures import link_in
from ..export_fixtures import read_csv
from ..export_fixtures import SENDER
from ..export_fixtures import Site
from ..export_fixtures import SmtpServer
from ..export_fixtures import TENANT_LOADER
from ..export_fixtures import text_body

#: The mail does not depend on the database: two backends suffice.
backends = pytest.mark.backends("sqlite", "postgresql")
WORKER = {"AUDIT_EXPORT_MODE": "worker", "AUDIT_TENANT_LOADER": TENANT_LOADER}
NASTY = [
    '=HYPERLINK("http://evil.example")',
    "line\nbreak",
    'quote " inside',
    "Équipe Zoë 🚀 فريق 漢字",
    "@SUM(1)",
]


def export_and_run(site: Site, **form: str) -> ExportJob:
    assert site.export(site.client(site.admin), **form).status_code == 303
    with site.app.app_context():
        jobs.run_due()
    return site.job()


def fill(site: Site, count: int = 0) -> None:
    rows = [site.event(activity=value, team=value, tenant_id="acme") for value in NASTY]
    # Random text, so that gzip cannot make it small.
    rows += [
        site.event(activity=f"padding {n} {os.urandom(100).hex()}", tenant_id="acme") for n in range(count)
    ]
    site.insert(*rows)


@backends
def test_the_csv_is_attached_and_reads_back(make_app: MakeApp, smtp_server: SmtpServer) -> None:
    site = build_site(make_app, smtp_server, **WORKER)
    fill(site)
    job = export_and_run(site, entity="Team")
    [message] = smtp_server.messages
    assert (message["From"], message["To"], message["Subject"]) == (
        SENDER,
        "admin@acme.test",
        "Your audit log export",
    )
    name, content_type, data = attachment(message)
    assert (name, content_type) == (mail.file_name(job), "text/csv")
    assert name.endswith(f"-{job.id}.csv")
    assert data.startswith(codecs.BOM_UTF8)  # so that spreadsheets read it as UTF-8
    rows = read_csv(data)
    assert rows[0][:4] == ["Time", "Team", "Entity", "Activity"]
    assert sorted(row[3] for row in rows[1:]) == sorted(map(expected_cell, NASTY))
    body = text_body(message)
    assert "5 events." in body
    assert "  Entity: Team" in body
    assert f"The CSV file is attached as {name}." in body
    html = html_body(message)
    assert "<li>Entity: Team</li>" in html and "<strong>5 events</strong>" in html


def expected_cell(value: str) -> str:
    return "'" + value if value[0] in "=+-@\t\r\n\x00" else value


@backends
def test_a_large_csv_is_gzipped(make_app: MakeApp, smtp_server: SmtpServer) -> None:
    site = build_site(make_app, smtp_server, **WORKER, AUDIT_EXPORT_COMPRESS_ABOVE_BYTES=2000)
    fill(site, count=50)
    job = export_and_run(site)
    name, content_type, packed = attachment(smtp_server.messages[0])
    assert (name, content_type) == (mail.file_name(job, compressed=True), "application/gzip")
    data = gzip.decompress(packed)
    assert job.file_size is not None
    assert len(data) == job.file_size > len(packed)
    assert job.file_size > 2000
    assert len(read_csv(data)) == 1 + 5 + 50
    assert f"The CSV file is attached as {name} (gzip-compressed)." in text_body(smtp_server.messages[0])


@backends
def test_a_csv_too_large_to_attach_goes_as_a_link(make_app: MakeApp, smtp_server: SmtpServer) -> None:
    site = build_site(
        make_app,
        smtp_server,
        **WORKER,
        AUDIT_EXPORT_COMPRESS_ABOVE_BYTES=100_000,
        AUDIT_EXPORT_ATTACHMENT_MAX_BYTES=1000,
        AUDIT_EXTERNAL_URL="https://audit.example.test",
    )
    fill(site, count=50)
    job = export_and_run(site)
    [message] = smtp_server.messages
    assert list(message.iter_attachments()) == []
    body = text_body(message)
    link = link_in(message)
    assert link.startswith("https://audit.example.test/admin/audit/exports/")
    assert "is too large to attach. Download it while signed in as admin@acme.test" in body
    assert job.delivery == "link" and job.link_expires_at is not None
    assert job.link_expires_at.strftime("%Y-%m-%d %H:%M UTC") in body
    assert f'<a href="{link.replace("&", "&amp;")}">' in html_body(message)
    response = site.download(site.admin, link)
    assert response.status_code == 200
    assert len(read_csv(response.get_data())) == 1 + 5 + 50
    assert len(response.get_data()) == job.file_size


@backends
def test_a_mailer_removed_after_the_request_fails_the_job_at_once(
    make_app: MakeApp, smtp_server: SmtpServer
) -> None:
    """A queued job whose app lost its mailer is not retried: waiting cannot bring it back."""
    site = build_site(make_app, smtp_server, **WORKER)
    assert site.export(site.client(site.admin)).status_code == 303
    del site.app.extensions["mail"]
    with site.app.app_context():
        assert jobs.run_due() == jobs.RunSummary(failed=1)
    job = site.job()
    assert (job.status, job.attempts) == ("failed", 1)
    assert job.last_error == f"AuditConfigError: {mailers.NO_MAILER}"


@backends
def test_without_a_sender_the_job_fails_at_once_with_a_clear_error(
    make_app: MakeApp, smtp_server: SmtpServer
) -> None:
    site = build_site(make_app, smtp_server, **WORKER)
    site.app.config["MAIL_DEFAULT_SENDER"] = None
    Mail(site.app)
    job = export_and_run(site)
    assert (job.status, job.attempts) == ("failed", 1)
    assert job.last_error == f"AuditConfigError: {mailers.NO_SENDER}"
    assert smtp_server.messages == []


@backends
def test_a_download_token_names_the_job_and_its_admin(make_app: MakeApp) -> None:
    site = build_site(make_app, None)
    job = ExportJob(id=7, requested_by_id="3")
    with site.app.app_context():
        token = mail.download_token(job)
        assert mail.read_download_token(token, 60) == {"job": 7, "user": "3"}
        with pytest.raises(itsdangerous.BadSignature):
            mail.read_download_token(token + "x", 60)
        site.app.secret_key = "rotated"
        with pytest.raises(itsdangerous.BadSignature):
            mail.read_download_token(token, 60)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 bytes"),
        (999, "999 bytes"),
        (1000, "1.0 kB"),
        (12_345_678, "12.3 MB"),
        (5 * 10**12, "5000.0 GB"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    assert mail.human_size(size) == text
