"""Every route of the ``audit`` blueprint against the wrong visitor, and forged export requests.

The routes are read from ``app.url_map``, so a route added later is covered without a
change here. What ``test_export_views`` already shows (a missing or wrong CSRF token, a
tampered, expired or other admin's link) is not repeated.
"""

from __future__ import annotations

import dataclasses
import time
import typing as t

import pytest
from flask import url_for
from itsdangerous import TimestampSigner
from itsdangerous import URLSafeTimedSerializer
from werkzeug.test import TestResponse

from flask_audit.export import jobs
from flask_audit.export import mail
from flask_audit.export.views import LINK_INVALID
from flask_audit.export.views import LINK_NOT_YOURS

from .apps import User
from .conftest import db
from .conftest import MakeApp
from .export_fixtures import build_site
from .export_fixtures import Site
from .export_fixtures import SmtpServer
from .export_fixtures import text_body
from .hostile_fixtures import TENANT_LOADER

SECRET = "acme secret"
CONFIG = {
    "AUDIT_EXPORT_MODE": "worker",
    "AUDIT_TENANT_LOADER": TENANT_LOADER,
    "AUDIT_EXPORT_ATTACHMENT_MAX_BYTES": 1,  # every file goes by link
    "AUDIT_EXTERNAL_URL": "http://localhost",  # where those links point
}
ODD_IDS = (0, 2**31)
#: Ids past BIGINT: the download looks them up once the token is good.
HUGE_IDS = (2**63, 10**30)


@dataclasses.dataclass
class Linked:
    """A site where each tenant's admin was mailed a download link."""

    site: Site
    acme_job: int
    globex_job: int
    acme_link: str


@pytest.fixture
def linked(make_app: MakeApp, smtp_server: SmtpServer) -> Linked:
    site = build_site(make_app, smtp_server, **CONFIG)
    site.insert(
        *(site.event(activity=f"{SECRET} {n}", tenant_id="acme", team="acme-team") for n in range(3)),
        site.event(activity="globex event", tenant_id="globex"),
    )
    site.export(site.client(site.admin), team="acme-team")
    site.export(site.client(site.other_admin))
    with site.app.app_context():
        assert jobs.run_due().sent == 2
    acme, globex = site.jobs()
    links = [line for m in smtp_server.messages for line in text_body(m).splitlines() if "token=" in line]
    [acme_link] = [link for link in links if f"/exports/{acme.id}/" in link]
    return Linked(site, acme.id, globex.id, acme_link.removeprefix("http://localhost"))


def _urls(linked: Linked) -> list[tuple[str, str, str]]:
    """``(endpoint, method, url)`` for each ``audit.*`` rule, its ids aimed at acme's job."""
    app, token = linked.site.app, linked.acme_link.split("token=")[1]
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("audit."):
            continue
        variants: list[dict[str, t.Any]] = [{}]
        if "job_id" in rule.arguments:
            ids = (linked.acme_job, linked.globex_job, *ODD_IDS)
            variants = [{"job_id": ident, "token": token} for ident in ids]
        if "filename" in rule.arguments:
            variants = [{"filename": name} for name in ("flask_audit/audit.css", "../../config.py", "%00")]
        if "event_id" in rule.arguments:  # acme's events are among the first ids
            variants = [{"event_id": ident} for ident in (*range(1, 8), *ODD_IDS)]
        unknown = set(rule.arguments) - {"job_id", "filename", "event_id"}
        assert not unknown, f"{rule.rule}: give test values for {sorted(unknown)}"
        with app.test_request_context():
            for method in sorted(t.cast(set[str], rule.methods) - {"HEAD", "OPTIONS"}):
                out += [(rule.endpoint, method, _build(rule.endpoint, values)) for values in variants]
    return out


def _build(endpoint: str, values: dict[str, t.Any]) -> str:
    return url_for(endpoint, **values)


def _send(site: Site, who: int | None, method: str, url: str, accept: str) -> TestResponse:
    client = site.client(who)
    data = {"csrf_token": site.csrf(client), "entity": "Team"} if method == "POST" else None
    return client.open(url, method=method, data=data, headers={"Accept": accept})


def test_routes_list_is_not_empty(linked: Linked) -> None:
    endpoints = {endpoint for endpoint, _, _ in _urls(linked)}
    assert {
        "audit.index",
        "audit.api_events",
        "audit.export",
        "audit.exports",
        "audit.export_download",
    } <= endpoints


@pytest.mark.parametrize("accept", ["text/html", "application/json"])
def test_no_route_shows_acme_data_to_anyone_else(linked: Linked, accept: str) -> None:
    """As anonymous, member of acme, and globex's admin: no 500, and never acme's events
    or jobs. Globex's admin may export, but only globex's events."""
    site = linked.site
    for endpoint, method, url in _urls(linked):
        for who in (None, site.member, site.other_admin):
            with _send(site, who, method, url, accept) as response:
                body = response.get_data(as_text=True)
            context = f"{method} {url} as {who}: {response.status_code}"
            assert response.status_code < 500, context
            assert SECRET not in body and "acme-team" not in body and "admin@acme.test" not in body, context
            if who is None or who == site.member:
                assert response.status_code in (401, 403, 404, 405) or endpoint == "audit.static", context
    mine = [job for job in site.jobs() if job.requested_by_id == str(site.other_admin)]
    assert {(job.tenant_id, job.tenant_scoped) for job in mine} == {("globex", True)}
    assert len(mine) == 2  # the fixture's, and the POST of this test


@pytest.mark.parametrize("job_id", HUGE_IDS)
def test_a_job_id_past_bigint_with_a_good_token_is_refused(
    linked: Linked, job_id: int, backend: str, request: pytest.FixtureRequest
) -> None:
    """Any admin holding one good link can reach the job lookup with any id."""
    site = linked.site
    site.app.config["PROPAGATE_EXCEPTIONS"] = False  # the 500 a visitor would get
    token = linked.acme_link.split("token=")[1]
    response = site.client(site.admin).get(f"/admin/audit/exports/{job_id}/download?token={token}")
    assert response.status_code == 403
    assert LINK_INVALID in response.get_data(as_text=True)


# -- forged export requests ----------------------------------------------------------

REFUSED = "The export was refused: {} Reload the audit log page and try again."


class _SignedLongAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 2 * 86400


def _csrf_signed(site: Site, raw: str, *, signer: type[TimestampSigner] = TimestampSigner) -> str:
    secret = t.cast(str, site.app.config["SECRET_KEY"])
    return URLSafeTimedSerializer(secret, salt="wtf-csrf-token", signer=signer).dumps(raw)


def _raw_csrf(site: Site, who: int) -> tuple[t.Any, str]:
    client = site.client(who)
    site.csrf(client)
    with client.session_transaction() as session:
        return client, t.cast(str, session["csrf_token"])


def test_csrf_tokens_of_another_session_or_too_old_are_refused(linked: Linked) -> None:
    site = linked.site
    before = len(site.jobs())
    other_token = site.csrf(site.client(site.other_admin))
    client, raw = _raw_csrf(site, site.admin)
    cases = [
        ({"csrf_token": other_token}, {}, "The CSRF tokens do not match."),
        ({}, {"X-CSRFToken": other_token}, "The CSRF tokens do not match."),
        ({"csrf_token": _csrf_signed(site, raw, signer=_SignedLongAgo)}, {}, "The CSRF token has expired."),
        ({"csrf_token": _csrf_signed(site, raw + "x")}, {}, "The CSRF tokens do not match."),
        ({"csrf_token": "\x00" * 10_000}, {}, "The CSRF token is invalid."),
    ]
    for form, headers, reason in cases:
        response = client.post(
            "/admin/audit/export", data=form, headers={"Accept": "application/json", **headers}
        )
        assert (response.status_code, response.get_json()) == (400, {"error": REFUSED.format(reason)})
    query_string = client.post(f"/admin/audit/export?csrf_token={site.csrf(client)}")
    assert query_string.status_code == 400
    assert client.get("/admin/audit/export").status_code == 405
    assert len(site.jobs()) == before


def test_forged_download_tokens_are_refused(linked: Linked) -> None:
    """Signed with the app's key but not as a link, naming no job, or a job not yet sent."""
    site = linked.site
    client, raw = _raw_csrf(site, site.admin)
    with site.app.app_context():
        queued = site.queued_job()
        tokens = {
            linked.acme_job: [_csrf_signed(site, raw), mail.serializer().dumps([linked.acme_job])],
            queued: [mail.download_token(site.job(queued))],
        }
        tokens[linked.acme_job].append(
            mail.serializer().dumps({"job": str(linked.acme_job), "user": str(site.admin)})
        )
    for job_id, forged in tokens.items():
        for token in forged:
            response = client.get(f"/admin/audit/exports/{job_id}/download?token={token}")
            assert response.status_code == 403, token
            assert LINK_INVALID in response.get_data(as_text=True)


def test_a_link_dies_when_its_admin_leaves_the_tenant(linked: Linked) -> None:
    site = linked.site
    with site.app.app_context():
        user = db(site.app).session.get(User, site.admin)
        assert user is not None
        user.tenant = "globex"
        db(site.app).session.commit()
        db(site.app).session.remove()
    response = site.client(site.admin).get(linked.acme_link)
    assert response.status_code == 403
    assert LINK_NOT_YOURS.replace("'", "&#39;") in response.get_data(as_text=True)
