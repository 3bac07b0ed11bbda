"""Per-admin export limits: jobs waiting, requests per period, counted in the job table."""

from __future__ import annotations

import datetime as dt
import threading

from flask_audit.export import job_store
from flask_audit.export import jobs
from flask_audit.export import limits
from flask_audit.query.filters import AuditFilter

from ..conftest import audit_of
from ..conftest import MakeApp
from ..export_fixtures import build_site
from ..export_fixtures import json_of
from ..export_fixtures import PREFIX
from ..export_fixtures import Site
from ..export_fixtures import SmtpServer
from ..export_fixtures import TENANT_LOADER

WORKER = {"AUDIT_EXPORT_MODE": "worker", "AUDIT_TENANT_LOADER": TENANT_LOADER}
PENDING = (
    "You already have 3 audit log exports waiting to be sent, the most allowed"
    " (AUDIT_EXPORT_MAX_PENDING). Wait for them to arrive before asking for another;"
    " the exports page shows their status."
)


def run(site: Site) -> jobs.RunSummary:
    with site.app.app_context():
        return jobs.run_due()


def test_an_admin_may_have_three_exports_waiting(make_app: MakeApp, smtp_server: SmtpServer) -> None:
    site = build_site(make_app, smtp_server, **WORKER, AUDIT_EXPORT_RATE=None)
    client = site.client(site.admin)
    assert [site.export(client).status_code for _ in range(3)] == [303, 303, 303]
    response = site.export(client, entity="Team")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == str(limits.HOLD_SECONDS)
    page = response.get_data(as_text=True)
    assert PENDING.replace("'", "&#39;") in page
    assert "on its way" not in page
    assert f'<a href="{PREFIX}/?entity=Team' in page
    response = site.export_json(client)
    assert (response.status_code, json_of(response)) == (429, {"error": PENDING})
    assert len(site.jobs()) == 3  # the refused requests left no job behind
    # Another admin has limits of their own.
    assert site.export(site.client(site.second_admin)).status_code == 303
    assert run(site) == jobs.RunSummary(sent=4)
    assert site.export(client).status_code == 303


def test_the_limit_counts_jobs_stored_by_any_process(make_app: MakeApp, smtp_server: SmtpServer) -> None:
    """Jobs another web process or host stored count as well: the limit is in the table."""
    site = build_site(make_app, smtp_server, **WORKER, AUDIT_EXPORT_MAX_PENDING=2, AUDIT_EXPORT_RATE=None)
    for _ in range(2):
        site.queued_job(site.admin)
    response = site.export_json(site.client(site.admin))
    assert response.status_code == 429
    assert json_of(response)["error"].startswith("You already have 2 audit log exports waiting")
    site.update_job(site.jobs()[0].id, status="failed")  # a failed job waits no longer
    assert site.export_json(site.client(site.admin)).status_code == 202


def test_an_admin_may_ask_for_so_many_exports_per_period(make_app: MakeApp, smtp_server: SmtpServer) -> None:
    site = build_site(
        make_app, smtp_server, **WORKER, AUDIT_EXPORT_MAX_PENDING=None, AUDIT_EXPORT_RATE="2/hour"
    )
    client = site.client(site.admin)
    assert [site.export(client).status_code for _ in range(2)] == [303, 303]
    assert run(site).sent == 2  # sent or not, a request counts
    first, second = site.jobs()
    response = site.export_json(client)
    assert response.status_code == 429
    free_at = first.created_at + dt.timedelta(hours=1)
    assert json_of(response)["error"] == (
        "You have asked for 2 audit log exports in the last hour, the most allowed (AUDIT_EXPORT_RATE)."
        f" You can export again after {free_at:%Y-%m-%d %H:%M:%S} UTC."
    )
    assert 3500 < int(response.headers["Retry-After"]) <= 3600
    assert len(site.jobs()) == 2
    site.update_job(first.id, created_at=first.created_at - dt.timedelta(hours=1))  # out of the window
    assert site.export_json(client).status_code == 202
    assert site.export_json(client).status_code == 429


def test_racing_requests_never_pass_the_limit(make_app: MakeApp, smtp_server: SmtpServer) -> None:
    """Six requests at once, two allowed: at most two jobs remain, and every one admitted
    is among them."""
    site = build_site(make_app, smtp_server, **WORKER, AUDIT_EXPORT_MAX_PENDING=2, AUDIT_EXPORT_RATE=None)
    with site.app.app_context():
        config = audit_of(site.app).config
    engine = site.engine
    start = threading.Barrier(6)
    admitted: list[int] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            start.wait()
            job_id = job_store.create_job(
                engine,
                requested_by_id=str(site.admin),
                requested_by_email="admin@acme.test",
                tenant_scoped=True,
                tenant_id="acme",
                team=None,
                flt=AuditFilter(),
                timezone="UTC",
                hold_seconds=limits.HOLD_SECONDS,
            )
            if limits.admit(engine, config, job_id, job_store.utcnow()) is None:
                admitted.append(job_id)
        except BaseException as err:  # reported below, in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    remaining = site.jobs()
    assert len(remaining) <= 2
    assert sorted(admitted) == [job.id for job in remaining]
    now = job_store.utcnow()
    assert all(job.next_attempt_at <= now for job in remaining)  # released to the runners


def test_a_held_job_is_not_taken_by_a_runner(make_app: MakeApp, smtp_server: SmtpServer) -> None:
    site = build_site(make_app, smtp_server, **WORKER)
    job_id = job_store.create_job(
        site.engine,
        requested_by_id=str(site.admin),
        requested_by_email="admin@acme.test",
        tenant_scoped=True,
        tenant_id="acme",
        team=None,
        flt=AuditFilter(),
        timezone="UTC",
        hold_seconds=limits.HOLD_SECONDS,
    )
    assert run(site) == jobs.RunSummary()
    job_store.release_hold(site.engine, job_id, job_store.utcnow())
    assert run(site) == jobs.RunSummary(sent=1)
