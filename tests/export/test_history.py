"""The exports page: statuses, filters, rows, sizes, attempts and errors in words, times in
the admin's zone, a download beside the mail while the stored file is valid; admins only,
each their own exports in their own tenant."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import pytest
from markupsafe import escape

from flask_audit.export import jobs
from flask_audit.export import mail
from flask_audit.export.csv_export import format_time
from flask_audit.export.views import LINK_NOT_YOURS
from flask_audit.export.words import local_text
from flask_audit.store.models import ExportJob

from ..conftest import MakeApp
from ..conftest import stored
from ..export_fixtures import attachment
from ..export_fixtures import build_site
from ..export_fixtures import json_of
from ..export_fixtures import PREFIX
from ..export_fixtures import read_csv
from ..export_fixtures import Site
from ..export_fixtures import SmtpServer
from ..export_fixtures import TENANT_LOADER

EXPORTS = f"{PREFIX}/exports"
WORKER = {"AUDIT_EXPORT_MODE": "worker", "AUDIT_TENANT_LOADER": TENANT_LOADER}
TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
DOWNLOAD = re.compile(r'<a href="(/admin/audit/exports/(\d+)/download\?token=[^"]+)">Download')


@pytest.fixture
def site(make_app: MakeApp, smtp_server: SmtpServer) -> Site:
    site = build_site(make_app, smtp_server, **WORKER)
    site.insert(
        site.event(activity="Équipe Zoë 🚀 renamed to فريق", team="فريق", tenant_id="acme"),
        site.event("user.login", tenant_id="acme"),
        site.event(activity="globex secret", tenant_id="globex"),
    )
    return site


def run(site: Site) -> jobs.RunSummary:
    with site.app.app_context():
        return jobs.run_due()


def three_exports(site: Site) -> tuple[ExportJob, ExportJob, ExportJob]:
    """A sent export, then one that failed and one waiting to retry, all acme's admin's."""
    client = site.client(site.admin)
    assert site.export(client, entity="Team", start="2026-01-01", tz="Asia/Tokyo").status_code == 303
    assert run(site).sent == 1
    assert site.export(client, format="jsonl").status_code == 303
    assert site.export(client, outcome="failure").status_code == 303
    sent, failed, retrying = site.jobs()
    site.update_job(failed.id, status="failed", attempts=5, last_error="SMTPRecipientsRefused: 550 no <b>")
    retry_at = dt.datetime(2026, 12, 24, 3, 30, tzinfo=dt.timezone.utc)
    site.update_job(
        retrying.id,
        status="queued",
        attempts=1,
        next_attempt_at=retry_at,
        last_error="ConnectionRefusedError",
    )
    return site.job(sent.id), site.job(failed.id), site.job(retrying.id)


def rows_of(html: str) -> list[str]:
    return re.findall(r"<tr>\s*<th scope=\"row\".*?</tr>", html, re.S)


def test_the_page_says_everything_in_words(site: Site, smtp_server: SmtpServer) -> None:
    sent, failed, retrying = three_exports(site)
    response = site.client(site.admin).get(EXPORTS, query_string={"tz": "Asia/Tokyo"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<link rel="stylesheet" href="/admin/audit/static/flask_audit/audit.css">' in html
    assert '<h1 class="fa-title">Your exports</h1>' in html and "Times in Asia/Tokyo" in html
    assert f'<a href="{PREFIX}/">Audit logs</a>' in html
    assert "Refresh status" in html  # two are not done yet
    headers = re.findall(r'<th scope="col">(.*?)</th>', html)
    assert headers == ["Requested", "Filters", "Status", "Rows", "Attempts", "Last error", "File"]
    newest, middle, oldest = rows_of(html)  # newest first

    assert "Waiting to retry at Dec 24, 12:30" in newest  # 03:30 UTC in Tokyo
    assert "Outcome:</span> <bdi>Failure</bdi>" in newest and ">1 of 5<" in newest
    assert "ConnectionRefused" in newest and "Not available for download" in newest

    assert '<span class="fa-exports-status fa-exports-status--failed">Failed</span>' in middle
    assert "No filters" in middle and ">JSON lines</span>" in middle and ">5<" in middle
    assert str(escape("SMTPRecipientsRefused: 550 no <b>")) in middle

    assert "Sent by email as an attachment" in oldest
    assert "Entity:</span> <bdi>Team</bdi>" in oldest
    assert "From:</span> <bdi>2026-01-01 (Asia/Tokyo)</bdi>" in oldest
    assert sent.file_size is not None and f">CSV, {mail.human_size(sent.file_size)}</span>" in oldest
    assert ">1<" in oldest and ">None<" in oldest  # one row, one attempt, no error
    # Times are text in the admin's zone; the ISO form is only the machine-readable attribute.
    assert (
        f'<time datetime="{format_time(sent.created_at)}">{local_text(sent.created_at, TOKYO)}</time>'
        in oldest
    )
    assert html.count(format_time(sent.created_at)) == 1
    assert sent.link_expires_at is not None
    assert f"until {local_text(sent.link_expires_at, TOKYO)}" in oldest
    [(link, job_id)] = DOWNLOAD.findall(html)
    assert int(job_id) == sent.id

    download = site.download(site.admin, link)
    assert download.status_code == 200
    assert download.get_data() == attachment(smtp_server.messages[0])[2]
    assert [row[3] for row in read_csv(download.get_data())[1:]] == ["Équipe Zoë 🚀 renamed to فريق"]
    [event] = [e for e in stored(site.app) if e.details.get("delivery") == "download"]
    assert (event.actor_email, event.tenant_id, event.details["job_id"]) == (
        "admin@acme.test",
        "acme",
        sent.id,
    )


def test_the_zone_the_audit_page_remembered_is_used(site: Site) -> None:
    three_exports(site)
    client = site.client(site.admin)
    client.get(f"{PREFIX}/", query_string={"tz": "America/New_York"})  # remembered in a cookie
    html = client.get(EXPORTS).get_data(as_text=True)
    assert "Times in America/New_York" in html and "Waiting to retry at Dec 23, 22:30" in html


def test_the_download_goes_once_the_file_expires(site: Site) -> None:
    sent, _, _ = three_exports(site)
    site.update_job(sent.id, link_expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
    html = site.client(site.admin).get(EXPORTS).get_data(as_text=True)
    assert DOWNLOAD.findall(html) == []
    assert "Not available for download" in rows_of(html)[-1]


def test_an_admin_without_exports_is_told_so(site: Site) -> None:
    html = site.client(site.admin).get(EXPORTS).get_data(as_text=True)
    assert "No exports yet" in html and "<table" not in html


@pytest.mark.parametrize(("who", "status"), [("anonymous", 401), ("member", 403)])
def test_only_admins_see_the_page(site: Site, who: str, status: int) -> None:
    three_exports(site)
    response = site.client(None if who == "anonymous" else site.member).get(EXPORTS)
    assert response.status_code == status
    assert "Équipe" not in response.get_data(as_text=True)


def test_another_admin_sees_only_their_own_exports(site: Site) -> None:
    sent, _, _ = three_exports(site)
    acme = site.client(site.admin).get(EXPORTS).get_data(as_text=True)
    [(link, _)] = DOWNLOAD.findall(acme)
    for other in (site.other_admin, site.second_admin):
        html = site.client(other).get(EXPORTS).get_data(as_text=True)
        assert "No exports yet" in html and "Team" not in html and "SMTP" not in html
        response = site.download(other, link)
        assert response.status_code == 403
        assert str(escape(LINK_NOT_YOURS)) in response.get_data(as_text=True)


def test_the_json_variant(site: Site) -> None:
    sent, failed, retrying = three_exports(site)
    response = site.client(site.admin).get(EXPORTS, headers={"Accept": "application/json"})
    listed = json_of(response)["jobs"]
    assert [(job["id"], job["status"], job["attempts"], job["format"]) for job in listed] == [
        (retrying.id, "queued", 1, "csv"),
        (failed.id, "failed", 5, "jsonl"),
        (sent.id, "sent", 1, "csv"),
    ]
    assert listed[1]["filters"] == {} and listed[2]["filters"]["entity"] == "Team"
    assert (listed[2]["rows"], listed[2]["size"], listed[2]["delivery"]) == (1, sent.file_size, "attachment")
    assert listed[0]["next_attempt_at"] == "2026-12-24T03:30:00.000000Z"
