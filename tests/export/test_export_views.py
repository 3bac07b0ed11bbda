"""The export routes: CSRF, who may export, filters, the status view and the download link."""

from __future__ import annotations

import datetime as dt
import time
import typing as t
import urllib.parse

import itsdangerous
import pytest
from werkzeug.http import parse_options_header
from werkzeug.test import TestResponse

from flask_audit.export import job_store
from flask_audit.export import jobs
from flask_audit.export import mail
from flask_audit.export.views import LINK_EXPIRED
from flask_audit.export.views import LINK_INVALID
from flask_audit.export.views import LINK_NOT_YOURS
from flask_audit.store.models import ExportJob

from ..conftest import MakeApp
from ..conftest import stored
from ..export_fixtures import build_site
from ..export_fixtures import json_of
from ..export_fixtures import link_in
from ..export_fixtures import local
from ..export_fixtures import PREFIX
from ..export_fixtures import read_csv
from ..export_fixtures import Site
from ..export_fixtures import SmtpServer
from ..export_fixtures import TENANT_LOADER

CSRF_MISSING = "The export was refused: The CSRF token is missing. Reload the audit log page and try again."
CSRF_WRONG = "The export was refused: The CSRF token is invalid. Reload the audit log page and try again."
WORKER = {"AUDIT_EXPORT_MODE": "worker", "AUDIT_TENANT_LOADER": TENANT_LOADER}


@pytest.fixture
def site(make_app: MakeApp, smtp_server: SmtpServer) -> Site:
    return build_site(make_app, smtp_server, **WORKER)


def run_jobs(site: Site) -> jobs.RunSummary:
    with site.app.app_context():
        return jobs.run_due()


def test_a_missing_or_wrong_csrf_token_is_refused(site: Site) -> None:
    client = site.client(site.admin)
    response = client.post(f"{PREFIX}/export", data={"entity": "Login"})
    assert response.status_code == 400
    assert CSRF_MISSING in response.get_data(as_text=True)
    site.csrf(client)  # the session now holds a token, but the form sends another one
    response = client.post(f"{PREFIX}/export", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert CSRF_WRONG in response.get_data(as_text=True)
    response = client.post(f"{PREFIX}/export", headers={"Accept": "application/json"})
    assert (response.status_code, json_of(response)) == (400, {"error": CSRF_MISSING})
    assert site.jobs() == []


def test_the_token_may_come_in_a_header(site: Site) -> None:
    client = site.client(site.admin)
    headers = {"X-CSRFToken": site.csrf(client), "Accept": "application/json"}
    response = client.post(f"{PREFIX}/export", headers=headers)
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("member", 403), ("admin", 303), ("other_admin", 303)],
)
def test_who_may_export(site: Site, who: str, status: int) -> None:
    user = None if who == "anonymous" else getattr(site, who)
    response = site.export(site.client(user), entity="Team")
    assert response.status_code == status
    made = site.jobs()
    if status != 303:
        assert made == []
        return
    [job] = made
    expected = {"admin": ("admin@acme.test", "acme"), "other_admin": ("admin@globex.test", "globex")}
    email, tenant = expected[who]
    assert (job.requested_by_id, job.requested_by_email) == (str(user), email)
    assert (job.tenant_scoped, job.tenant_id, job.status, job.attempts) == (True, tenant, "queued", 0)
    assert job.filters == {"entity": "Team"}


def test_an_export_is_confirmed_on_the_page_with_the_same_filters(site: Site) -> None:
    """The flash names the filters, in the admin's words and zone, and the row count."""
    site.insert(
        site.event(actor_email="bob@example.com", tenant_id="acme"),
        site.event(actor_email="eve@example.com", tenant_id="acme"),
    )
    client = site.client(site.admin)
    response = site.export(
        client, entity="Team", actor="bob@example.com", start="2026-01-01", tz="Europe/Berlin"
    )
    assert response.status_code == 303
    location = urllib.parse.urlsplit(response.headers["Location"])
    assert location.path == f"{PREFIX}/"
    assert urllib.parse.parse_qs(location.query) == {
        "entity": ["Team"],
        "actor": ["bob@example.com"],
        "start": ["2026-01-01"],
        "tz": ["Europe/Berlin"],
    }
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert (
        "Your export of 1 event matching Entity: Team; Actor: bob@example.com; From: 2026-01-01"
        " (Europe/Berlin) is on its way to admin@acme.test: the CSV file will arrive by email shortly."
        " Once it is sent, you can also download it from Your exports."
    ) in page
    job = site.job()
    assert job.timezone == "Europe/Berlin"
    assert job.filters["start"] == "2025-12-31T23:00:00+00:00"


def test_the_json_variant_answers_202_with_the_job(site: Site) -> None:
    response = site.export_json(site.client(site.admin), outcome="failure")
    assert response.status_code == 202
    assert response.headers["Location"] == f"{PREFIX}/exports"
    job = json_of(response)["job"]
    assert job["id"] == site.job().id
    assert (job["status"], job["attempts"], job["filters"]) == ("queued", 0, {"outcome": "failure"})


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"entity": "Nope"}, "Unknown entity 'Nope'. Choose one of:"),
        ({"start": "soon"}, "The start date 'soon' is not a valid date; use YYYY-MM-DD or an ISO 8601 time."),
        ({"start": "2026-02-01", "end": "2026-01-01"}, "The start date is after the end date."),
        (
            {"tz": "Mars/Olympus"},
            "Unknown time zone 'Mars/Olympus'; use an IANA name such as 'Europe/Berlin'.",
        ),
    ],
)
def test_bad_filters_are_refused_with_their_message(site: Site, form: dict[str, str], message: str) -> None:
    client = site.client(site.admin)
    response = site.export(client, **form)
    assert response.status_code == 400
    assert message.replace("'", "&#39;") in response.get_data(as_text=True)
    response = site.export_json(client, **form)
    assert response.status_code == 400
    assert json_of(response)["error"].startswith(message)
    assert site.jobs() == []


def test_the_status_view_lists_the_admins_own_jobs(site: Site) -> None:
    site.export(site.client(site.admin), entity="Team")
    site.export(site.client(site.second_admin), entity="Login")
    site.export(site.client(site.admin), entity="SSO")
    first, _, third = site.jobs()
    site.update_job(first.id, status="failed", attempts=5, last_error="SMTPServerDisconnected: gone")
    assert site.client().get(f"{PREFIX}/exports").status_code == 401
    assert site.client(site.member).get(f"{PREFIX}/exports").status_code == 403
    response = site.client(site.admin).get(f"{PREFIX}/exports", headers={"Accept": "application/json"})
    listed = json_of(response)["jobs"]
    assert [(job["id"], job["status"], job["attempts"]) for job in listed] == [
        (third.id, "queued", 0),
        (first.id, "failed", 5),
    ]
    assert listed[1]["last_error"] == "SMTPServerDisconnected: gone"
    page = site.client(site.admin).get(f"{PREFIX}/exports").get_data(as_text=True)
    assert "SMTPServerDisconnected: gone" in page and ">Failed</span>" in page


# -- the download link ---------------------------------------------------------------

SITE_URL = "https://audit.example.test"
LINKED: dict[str, t.Any] = {**WORKER, "AUDIT_EXPORT_ATTACHMENT_MAX_BYTES": 1, "AUDIT_EXTERNAL_URL": SITE_URL}


@pytest.fixture
def linked(make_app: MakeApp, smtp_server: SmtpServer) -> tuple[Site, ExportJob, str]:
    """A site whose admin was mailed a link (every file is too large to attach)."""
    site = build_site(make_app, smtp_server, **LINKED)
    site.insert(
        site.event(activity="in acme", tenant_id="acme"), site.event(activity="in globex", tenant_id="globex")
    )
    site.export(site.client(site.admin))
    assert run_jobs(site).sent == 1
    [message] = smtp_server.messages
    return site, site.job(), link_in(message)


def get(site: Site, user: int | None, link: str) -> TestResponse:
    return site.download(user, link)


def test_the_link_serves_the_admin_their_tenants_events(linked: tuple[Site, ExportJob, str]) -> None:
    site, job, link = linked
    assert link.startswith(f"{SITE_URL}{PREFIX}/exports/{job.id}/download?token=")
    assert job.delivery == "link"
    response = get(site, site.admin, link)
    assert response.status_code == 200
    disposition = parse_options_header(response.headers["Content-Disposition"])
    assert disposition == ("attachment", {"filename": mail.file_name(job)})
    assert response.mimetype == "text/csv"
    assert response.headers["Cache-Control"] == "private, no-store"
    rows = read_csv(response.get_data())
    assert [row[3] for row in rows[1:]] == ["in acme"]
    downloads = [event for event in stored(site.app) if event.details.get("delivery") == "download"]
    assert [(event.actor_email, event.tenant_id, event.details["job_id"]) for event in downloads] == [
        ("admin@acme.test", "acme", job.id)
    ]


def test_the_link_serves_the_same_rows_later(linked: tuple[Site, ExportJob, str]) -> None:
    """Events recorded after the request are not in the file: it is the admin's snapshot."""
    site, job, link = linked
    before = get(site, site.admin, link).get_data()
    site.insert(site.event(activity="later", tenant_id="acme"))
    assert get(site, site.admin, link).get_data() == before


@pytest.mark.parametrize(
    ("who", "status", "message"),
    [
        ("anonymous", 401, None),
        ("member", 403, None),
        ("second_admin", 403, LINK_NOT_YOURS),
        ("other_admin", 403, LINK_NOT_YOURS),
    ],
)
def test_the_link_works_for_its_admin_only(
    linked: tuple[Site, ExportJob, str], who: str, status: int, message: str | None
) -> None:
    site, _, link = linked
    user = None if who == "anonymous" else getattr(site, who)
    response = get(site, user, link)
    assert response.status_code == status
    if message:
        assert message.replace("'", "&#39;") in response.get_data(as_text=True)


def test_a_tampered_link_is_refused(linked: tuple[Site, ExportJob, str]) -> None:
    site, job, link = linked
    token = link.split("token=")[1]
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for bad in (forged, "", "not-a-token"):
        response = site.download(site.admin, f"{PREFIX}/exports/{job.id}/download?token={bad}")
        assert response.status_code == 403
        assert LINK_INVALID in response.get_data(as_text=True)
    other = site.client(site.admin)
    other_job = site.queued_job()
    response = other.get(f"{PREFIX}/exports/{other_job}/download?token={token}")
    assert response.status_code == 403
    assert LINK_INVALID in response.get_data(as_text=True)


def test_an_expired_link_is_refused(linked: tuple[Site, ExportJob, str]) -> None:
    site, job, link = linked
    assert job.link_expires_at is not None
    assert dt.timedelta(days=6, hours=23) < job.link_expires_at - job_store.utcnow() <= dt.timedelta(days=7)
    site.update_job(job.id, link_expires_at=job_store.utcnow() - dt.timedelta(seconds=1))
    response = get(site, site.admin, link)
    assert response.status_code == 410
    assert LINK_EXPIRED in response.get_data(as_text=True)
    response = site.download(site.admin, link, headers={"Accept": "application/json"})
    assert (response.status_code, json_of(response)) == (410, {"error": LINK_EXPIRED})


class _SignedAnHourAgo(itsdangerous.TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 3600


def test_the_token_itself_expires(make_app: MakeApp, smtp_server: SmtpServer) -> None:
    """Even with the job row untouched, the signature's own age limit applies."""
    site = build_site(make_app, smtp_server, **LINKED, AUDIT_EXPORT_LINK_MAX_AGE=60)
    site.export(site.client(site.admin))
    assert run_jobs(site).sent == 1
    job = site.job()
    site.update_job(job.id, link_expires_at=None)
    assert get(site, site.admin, link_in(smtp_server.messages[0])).status_code == 200
    assert site.app.secret_key is not None
    signer = itsdangerous.URLSafeTimedSerializer(
        site.app.secret_key, salt=mail.TOKEN_SALT, signer=_SignedAnHourAgo
    )
    token = signer.dumps({"job": job.id, "user": job.requested_by_id})
    response = site.download(site.admin, f"{PREFIX}/exports/{job.id}/download?token={token}")
    assert response.status_code == 410
    assert LINK_EXPIRED in response.get_data(as_text=True)


def test_an_anonymous_visitor_of_a_link_goes_to_the_login_page(
    linked: tuple[Site, ExportJob, str],
) -> None:
    """After signing in, Flask-Login's ``next`` brings the admin back to the download."""
    site, _, link = linked
    site.app.login_manager.login_view = "login_view"  # type: ignore[attr-defined]
    response = get(site, None, link)
    assert response.status_code == 302
    location = urllib.parse.urlsplit(response.headers["Location"])
    assert location.path == "/login"
    [target] = urllib.parse.parse_qs(location.query)["next"]
    assert target == local(link)
