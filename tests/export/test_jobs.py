"""Export jobs: claims, retries with back-off, killed runners, inline threads, the worker CLI."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask

from flask_audit.config import load_config
from flask_audit.export import job_store
from flask_audit.export import jobs

from ..conftest import MakeApp
from ..conftest import stored
from ..export_fixtures import attachment
from ..export_fixtures import build_site
from ..export_fixtures import read_csv
from ..export_fixtures import Site
from ..export_fixtures import SmtpServer
from ..export_fixtures import TENANT_LOADER
from ..export_fixtures import wait_until

WORKER = {"AUDIT_EXPORT_MODE": "worker", "AUDIT_TENANT_LOADER": TENANT_LOADER}


@pytest.fixture
def site(make_app: MakeApp, smtp_server: SmtpServer) -> Site:
    return build_site(make_app, smtp_server, **WORKER)


def request_export(site: Site, user: int | None = None, **form: str) -> int:
    assert site.export(site.client(user or site.admin), **form).status_code == 303
    return max(job.id for job in site.jobs())


def run(site: Site, *args: str) -> tuple[int, str]:
    result = site.app.test_cli_runner().invoke(args=["audit", "exports", "run", *args])
    return result.exit_code, result.output


def test_the_worker_sends_a_queued_export(site: Site, smtp_server: SmtpServer) -> None:
    site.insert(
        site.event(activity="acme team", tenant_id="acme"),
        site.event(activity="globex team", tenant_id="globex"),
        site.event("user.login", activity="acme login", tenant_id="acme"),
    )
    job_id = request_export(site, entity="Team")
    assert smtp_server.messages == []  # worker mode: nothing ran in the web process
    assert run(site, "--once") == (0, "Ran 1 export job(s): 1 sent, 0 to retry, 0 failed.\n")
    [message] = smtp_server.messages
    assert smtp_server.inbox.recipients == [["admin@acme.test"]]
    _, _, data = attachment(message)
    assert [row[3] for row in read_csv(data)[1:]] == ["acme team"]
    job = site.job(job_id)
    assert (job.status, job.attempts, job.row_count, job.delivery) == ("sent", 1, 1, "attachment")
    assert job.file_size == len(data) and job.last_error is None and job.claim_token is None
    [event] = [event for event in stored(site.app) if event.event_type == "audit.exported"]
    assert (event.actor_id, event.actor_email, event.tenant_id) == (
        str(site.admin),
        "admin@acme.test",
        "acme",
    )
    assert event.details == {
        "job_id": job_id,
        "filters": {"entity": "Team"},
        "rows": 1,
        "format": "csv",
        "delivery": "attachment",
    }
    assert run(site, "--once") == (0, "Ran 0 export job(s): 0 sent, 0 to retry, 0 failed.\n")


def test_a_mail_server_that_is_down_is_retried_and_the_mail_sent_once(
    make_app: MakeApp, smtp_server: SmtpServer
) -> None:
    site = build_site(make_app, smtp_server, **WORKER, AUDIT_EXPORT_RETRY_DELAY=0)
    smtp_server.stop()
    job_id = request_export(site)
    assert run(site, "--once") == (0, "Ran 1 export job(s): 0 sent, 1 to retry, 0 failed.\n")
    job = site.job(job_id)
    assert (job.status, job.attempts) == ("queued", 1)
    assert job.last_error is not None and job.last_error.startswith("ConnectionRefusedError: ")
    smtp_server.start()
    assert run(site, "--once") == (0, "Ran 1 export job(s): 1 sent, 0 to retry, 0 failed.\n")
    assert run(site, "--once") == (0, "Ran 0 export job(s): 0 sent, 0 to retry, 0 failed.\n")
    assert len(smtp_server.messages) == 1
    job = site.job(job_id)
    assert (job.status, job.attempts, job.last_error) == ("sent", 2, None)
    assert len([event for event in stored(site.app) if event.event_type == "audit.exported"]) == 1


def test_the_exported_event_carries_the_asking_request_though_recorded_later(site: Site) -> None:
    """The worker records ``audit.exported`` outside any request: the job kept the admin's
    address, user agent (cut to the column like any event's) and request id."""
    client = site.client(site.admin)
    client.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    agent = "Mozilla/5.0 " + "x" * 600
    headers = {"User-Agent": agent, "X-Request-ID": "req-export-42"}
    assert site.export_with_headers(client, headers, entity="Team").status_code == 303
    assert run(site, "--once")[0] == 0
    [event] = [event for event in stored(site.app) if event.event_type == "audit.exported"]
    assert (event.ip, event.request_id) == ("198.51.100.7", "req-export-42")
    assert event.user_agent == agent[:511] + "…"


def test_retries_back_off_then_fail_with_the_error_kept(make_app: MakeApp, smtp_server: SmtpServer) -> None:
    site = build_site(
        make_app, smtp_server, **WORKER, AUDIT_EXPORT_MAX_ATTEMPTS=3, AUDIT_EXPORT_RETRY_DELAY=60
    )
    smtp_server.stop()
    job_id = request_export(site)
    now = job_store.utcnow()
    waits = []
    for attempt in (1, 2, 3):
        with site.app.app_context():
            assert jobs.run_due(now=now) == jobs.RunSummary(
                retrying=int(attempt < 3), failed=int(attempt == 3)
            )
            assert jobs.run_due(now=now) == jobs.RunSummary()  # not due again yet
        job = site.job(job_id)
        assert job.attempts == attempt
        waits.append((job.next_attempt_at - now).total_seconds())
        now = job.next_attempt_at
    assert waits[:2] == [60, 120]
    assert job.status == "failed"
    assert job.last_error is not None and job.last_error.startswith("ConnectionRefusedError: ")
    smtp_server.start()
    with site.app.app_context():
        assert jobs.run_due(now=now + dt.timedelta(days=1)) == jobs.RunSummary()
    assert smtp_server.messages == []


def test_the_worker_command_fails_when_a_job_fails_for_good(
    make_app: MakeApp, smtp_server: SmtpServer
) -> None:
    site = build_site(make_app, smtp_server, **WORKER, AUDIT_EXPORT_MAX_ATTEMPTS=1)
    smtp_server.stop()
    request_export(site)
    assert run(site, "--once") == (
        1,
        "Ran 1 export job(s): 0 sent, 0 to retry, 1 failed.\n"
        "Error: 1 export job(s) failed for good: see 'last_error'.\n",
    )
    assert site.job().status == "failed"


def test_a_job_whose_runner_was_killed_is_taken_over_after_its_claim(
    site: Site, smtp_server: SmtpServer
) -> None:
    stale, held = request_export(site), request_export(site)
    past, future = job_store.utcnow() - dt.timedelta(seconds=1), job_store.utcnow() + dt.timedelta(minutes=5)
    site.update_job(stale, status="sending", attempts=1, claimed_until=past, claim_token="dead")
    site.update_job(held, status="sending", attempts=1, claimed_until=future, claim_token="alive")
    assert run(site, "--once") == (0, "Ran 1 export job(s): 1 sent, 0 to retry, 0 failed.\n")
    assert (site.job(stale).status, site.job(stale).attempts) == ("sent", 2)
    assert (site.job(held).status, site.job(held).claim_token) == ("sending", "alive")
    assert len(smtp_server.messages) == 1


def test_a_claim_is_taken_once(site: Site) -> None:
    job_id = request_export(site)
    now = job_store.utcnow()
    first = job_store.claim(site.engine, job_id, now)
    assert first is not None
    assert job_store.claim(site.engine, job_id, now) is None
    assert job_store.claim(
        site.engine, job_id, now + dt.timedelta(seconds=job_store.CLAIM_SECONDS + 1)
    ) not in (
        None,
        first,
    )
    assert site.job(job_id).attempts == 2


def test_a_runner_whose_claim_was_taken_over_does_not_overwrite_the_job(site: Site) -> None:
    job_id = request_export(site)
    now = job_store.utcnow()
    slow = job_store.claim(site.engine, job_id, now)
    later = now + dt.timedelta(seconds=job_store.CLAIM_SECONDS + 1)
    assert slow is not None and job_store.claim(site.engine, job_id, later) is not None
    with site.app.app_context():
        job_store._release(site.engine, job_id, slow, {"status": "failed", "last_error": "too slow"})
    job = site.job(job_id)
    assert (job.status, job.last_error) == ("sending", None)


def test_a_job_keeps_the_rows_of_its_request(site: Site, smtp_server: SmtpServer) -> None:
    site.insert(site.event(activity="before", tenant_id="acme"))
    request_export(site)
    site.insert(site.event(activity="after", tenant_id="acme"))
    run(site, "--once")
    _, _, data = attachment(smtp_server.messages[0])
    assert [row[3] for row in read_csv(data)[1:]] == ["before"]


def test_max_jobs_limits_a_pass(site: Site, smtp_server: SmtpServer) -> None:
    for _ in range(3):
        request_export(site)
    assert run(site, "--once", "--max-jobs", "2") == (
        0,
        "Ran 2 export job(s): 2 sent, 0 to retry, 0 failed.\n",
    )
    assert [job.status for job in site.jobs()] == ["sent", "sent", "queued"]
    request_export(site)
    # Without --once the worker keeps polling: here until it has run two more jobs.
    assert run(site, "--max-jobs", "2", "--interval", "0.1") == (
        0,
        "Ran 2 export job(s): 2 sent, 0 to retry, 0 failed.\n",
    )
    assert len(smtp_server.messages) == 4


def test_retry_delays_double_up_to_a_cap() -> None:
    app = Flask(__name__)
    app.config["AUDIT_EXPORT_RETRY_DELAY"] = 60
    config = load_config(app)
    assert [job_store.retry_delay(config, n) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert job_store.retry_delay(config, 30) == job_store.MAX_RETRY_DELAY


# -- inline: the web process runs the job after the response --------------------------

INLINE = {"AUDIT_TENANT_LOADER": TENANT_LOADER}


def test_inline_jobs_run_after_the_response(make_app: MakeApp, smtp_server: SmtpServer) -> None:
    site = build_site(make_app, smtp_server, **INLINE)
    site.insert(site.event(activity="acme team", tenant_id="acme"))
    response = site.export(site.client(site.admin))
    assert response.status_code == 303
    site.wait()
    [message] = smtp_server.messages
    assert message["To"] == "admin@acme.test"
    assert (site.job().status, site.job().attempts) == ("sent", 1)


def test_inline_jobs_retry_until_the_mail_server_is_back(make_app: MakeApp, smtp_server: SmtpServer) -> None:
    site = build_site(make_app, smtp_server, **INLINE, AUDIT_EXPORT_RETRY_DELAY=0.5)
    smtp_server.stop()
    site.export(site.client(site.admin))
    wait_until(lambda: site.job().attempts >= 1 and site.job().status == "queued")
    assert site.job().last_error is not None
    smtp_server.start()
    site.wait()
    job = site.job()
    assert job.status == "sent" and job.attempts >= 2
    assert len(smtp_server.messages) == 1


def test_an_inline_runner_also_takes_jobs_left_by_a_restart(
    make_app: MakeApp, smtp_server: SmtpServer
) -> None:
    site = build_site(make_app, smtp_server, **INLINE)
    with site.app.app_context():
        left = site.queued_job(site.second_admin, "second@acme.test")
    site.export(site.client(site.admin))
    site.wait()
    assert site.job(left).status == "sent"
    assert sorted(message["To"] for message in smtp_server.messages) == [
        "admin@acme.test",
        "second@acme.test",
    ]
