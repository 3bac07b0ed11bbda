"""Exports too large to mail: stored once, served as stored, deleted after the link expires;
and links built from the configured address, never from the request's ``Host``."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import pathlib
import stat
import typing as t

import pytest
import sqlalchemy as sa
from werkzeug.http import parse_options_header

from flask_audit.export import files
from flask_audit.export import job_store
from flask_audit.export import jobs
from flask_audit.export import mail
from flask_audit.export.views import FILE_GONE
from flask_audit.export.views import LINK_EXPIRED
from flask_audit.store.immutability import create_triggers
from flask_audit.store.immutability import drop_statements
from flask_audit.store.models import audit_event_table

from ..conftest import MakeApp
from ..export_fixtures import attachment
from ..export_fixtures import build_site
from ..export_fixtures import html_body
from ..export_fixtures import link_in
from ..export_fixtures import PREFIX
from ..export_fixtures import read_csv
from ..export_fixtures import Site
from ..export_fixtures import SmtpServer
from ..export_fixtures import TENANT_LOADER
from ..export_fixtures import text_body

SITE_URL = "https://audit.example.test"
WORKER = {"AUDIT_EXPORT_MODE": "worker", "AUDIT_TENANT_LOADER": TENANT_LOADER}
LINKED: dict[str, t.Any] = {**WORKER, "AUDIT_EXPORT_ATTACHMENT_MAX_BYTES": 1, "AUDIT_EXTERNAL_URL": SITE_URL}
EVIL = {"Host": "evil.example"}


@pytest.fixture
def export_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "exports"


def run(site: Site) -> jobs.RunSummary:
    with site.app.app_context():
        return jobs.run_due()


def linked_site(make_app: MakeApp, smtp: SmtpServer, export_dir: pathlib.Path, **config: t.Any) -> Site:
    site = build_site(make_app, smtp, **{**LINKED, "AUDIT_EXPORT_DIR": str(export_dir), **config})
    site.insert(*(site.event(activity=f"acme {n}", tenant_id="acme") for n in range(3)))
    assert site.export(site.client(site.admin)).status_code == 303
    assert run(site) == jobs.RunSummary(sent=1)
    return site


def delete_every_event(site: Site) -> None:
    """What a prune past the rows, or someone bypassing the triggers, would leave."""
    with site.engine.begin() as conn:
        for statement in drop_statements(conn.dialect.name):
            conn.exec_driver_sql(statement)
        conn.execute(sa.delete(audit_event_table))
        create_triggers(conn, 90)
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_event_table)).scalar() == 0


def test_the_file_is_stored_once_and_every_download_serves_it(
    make_app: MakeApp, smtp_server: SmtpServer, export_dir: pathlib.Path
) -> None:
    site = linked_site(make_app, smtp_server, export_dir)
    job = site.job()
    path = export_dir / f"{job.id}.csv"
    assert [entry.name for entry in export_dir.iterdir()] == [path.name]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(export_dir.stat().st_mode) & 0o077 == 0
    link = link_in(smtp_server.messages[0])
    first = site.download(site.admin, link)
    assert first.status_code == 200
    assert first.get_data() == path.read_bytes()
    assert [row[3] for row in read_csv(first.get_data())[1:]] == ["acme 2", "acme 1", "acme 0"]
    delete_every_event(site)
    site.update_job(job.id, filters={"entity": "Login"})  # what regenerating would read now
    second = site.download(site.admin, link)
    assert second.status_code == 200
    assert second.get_data() == first.get_data()


def test_a_large_stored_file_is_gzipped(
    make_app: MakeApp, smtp_server: SmtpServer, export_dir: pathlib.Path
) -> None:
    site = linked_site(make_app, smtp_server, export_dir, AUDIT_EXPORT_COMPRESS_ABOVE_BYTES=10)
    job = site.job()
    assert [entry.name for entry in export_dir.iterdir()] == [f"{job.id}.csv.gz"]
    response = site.download(site.admin, link_in(smtp_server.messages[0]))
    assert response.status_code == 200
    assert response.mimetype == "application/gzip"
    disposition = parse_options_header(response.headers["Content-Disposition"])
    assert disposition == ("attachment", {"filename": mail.file_name(job, compressed=True)})
    data = gzip.decompress(response.get_data())
    assert len(data) == job.file_size
    assert len(read_csv(data)) == 1 + 3


def test_an_expired_link_gets_410_and_the_runner_deletes_its_file(
    make_app: MakeApp, smtp_server: SmtpServer, export_dir: pathlib.Path
) -> None:
    site = linked_site(make_app, smtp_server, export_dir)
    job = site.job()
    link = link_in(smtp_server.messages[0])
    result = site.app.test_cli_runner().invoke(args=["audit", "exports", "run", "--once"])
    assert result.exit_code == 0
    assert (export_dir / f"{job.id}.csv").exists()  # still valid: kept
    site.update_job(job.id, link_expires_at=job_store.utcnow() - dt.timedelta(seconds=1))
    response = site.download(site.admin, link)
    assert response.status_code == 410
    assert LINK_EXPIRED in response.get_data(as_text=True)
    result = site.app.test_cli_runner().invoke(args=["audit", "exports", "run", "--once"])
    assert result.exit_code == 0
    assert list(export_dir.iterdir()) == []


def test_an_attached_export_is_stored_for_the_exports_page_until_it_expires(
    make_app: MakeApp, smtp_server: SmtpServer, export_dir: pathlib.Path
) -> None:
    """The direct download beside the mail: the same bytes, for as long as a link would live."""
    site = build_site(make_app, smtp_server, **WORKER, AUDIT_EXPORT_DIR=str(export_dir))
    site.insert(site.event(activity="acme 0", tenant_id="acme"))
    assert site.export(site.client(site.admin)).status_code == 303
    assert run(site) == jobs.RunSummary(sent=1)
    job = site.job()
    assert job.delivery == "attachment" and job.link_expires_at is not None
    assert dt.timedelta(days=6, hours=23) < job.link_expires_at - job_store.utcnow() <= dt.timedelta(days=7)
    path = export_dir / f"{job.id}.csv"
    assert path.read_bytes() == attachment(smtp_server.messages[0])[2]
    site.update_job(job.id, link_expires_at=job_store.utcnow() - dt.timedelta(seconds=1))
    assert run(site) == jobs.RunSummary()
    assert list(export_dir.iterdir()) == []


def test_a_large_json_lines_export_is_stored_gzipped_under_its_own_name(
    make_app: MakeApp, smtp_server: SmtpServer, export_dir: pathlib.Path
) -> None:
    site = build_site(
        make_app,
        smtp_server,
        **{**LINKED, "AUDIT_EXPORT_DIR": str(export_dir)},
        AUDIT_EXPORT_COMPRESS_ABOVE_BYTES=10,
    )
    site.insert(*(site.event(activity=f"acme {n}", tenant_id="acme") for n in range(3)))
    assert site.export(site.client(site.admin), format="jsonl").status_code == 303
    assert run(site) == jobs.RunSummary(sent=1)
    job = site.job()
    assert [entry.name for entry in export_dir.iterdir()] == [f"{job.id}.jsonl.gz"]
    response = site.download(site.admin, link_in(smtp_server.messages[0]))
    assert response.status_code == 200 and response.mimetype == "application/gzip"
    disposition = parse_options_header(response.headers["Content-Disposition"])
    assert disposition == ("attachment", {"filename": mail.file_name(job, compressed=True)})
    assert disposition[1]["filename"].endswith(f"-{job.id}.jsonl.gz")
    lines = gzip.decompress(response.get_data()).decode("utf-8").splitlines()
    assert [json.loads(line)["activity"] for line in lines] == ["acme 2", "acme 1", "acme 0"]


def test_a_file_gone_before_its_link_expired_gets_410(
    make_app: MakeApp, smtp_server: SmtpServer, export_dir: pathlib.Path
) -> None:
    site = linked_site(make_app, smtp_server, export_dir)
    (export_dir / f"{site.job().id}.csv").unlink()
    response = site.download(site.admin, link_in(smtp_server.messages[0]))
    assert response.status_code == 410
    assert FILE_GONE in response.get_data(as_text=True)
    assert "Back to the audit log" in response.get_data(as_text=True)


def test_the_runner_deletes_files_of_failed_or_missing_jobs_and_keeps_the_rest(
    make_app: MakeApp, smtp_server: SmtpServer, export_dir: pathlib.Path
) -> None:
    site = build_site(make_app, smtp_server, **WORKER, AUDIT_EXPORT_DIR=str(export_dir))
    failed, waiting = site.queued_job(), site.queued_job()
    site.update_job(failed, status="failed")
    export_dir.mkdir()
    for name in (f"{failed}.csv", f"{failed}.jsonl", f"{waiting}.jsonl.gz", "999999.csv.gz", "notes.txt"):
        (export_dir / name).write_bytes(b"x")
    with site.app.app_context():
        config = site.app.extensions["audit"].config
        assert files.purge(site.engine, config, job_store.utcnow()) == 3
    assert sorted(entry.name for entry in export_dir.iterdir()) == [f"{waiting}.jsonl.gz", "notes.txt"]


def test_a_job_that_fails_for_good_leaves_no_file(
    make_app: MakeApp, smtp_server: SmtpServer, export_dir: pathlib.Path
) -> None:
    site = build_site(make_app, smtp_server, **LINKED, AUDIT_EXPORT_DIR=str(export_dir))
    smtp_server.inbox.rcpt_reply = "550 5.1.1 No such mailbox"
    assert site.export(site.client(site.admin)).status_code == 303
    assert run(site) == jobs.RunSummary(failed=1)
    assert list(export_dir.iterdir()) == []


# -- the address in links ------------------------------------------------------------


def test_a_forged_host_never_reaches_the_mail(make_app: MakeApp, smtp_server: SmtpServer) -> None:
    site = build_site(make_app, smtp_server, **LINKED)
    client = site.client(site.admin)
    assert site.export_with_headers(client, EVIL).status_code == 303
    assert run(site).sent == 1
    [message] = smtp_server.messages
    assert link_in(message).startswith(f"{SITE_URL}{PREFIX}/exports/{site.job().id}/download?token=")
    assert "evil.example" not in message.as_string()
    assert "evil.example" not in text_body(message) + html_body(message)


def test_server_name_gives_the_address_when_no_external_url_is_set(
    make_app: MakeApp, smtp_server: SmtpServer
) -> None:
    config: dict[str, t.Any] = {**LINKED, "AUDIT_EXTERNAL_URL": None, "SERVER_NAME": "audit.example.test"}
    site = build_site(make_app, smtp_server, **config, PREFERRED_URL_SCHEME="https")
    client = site.client(site.admin)
    assert site.export_with_headers(client, EVIL).status_code == 303
    assert run(site).sent == 1
    [message] = smtp_server.messages
    assert link_in(message).startswith(f"https://audit.example.test{PREFIX}/exports/")
    assert "evil.example" not in message.as_string()


def test_without_an_address_a_small_export_is_attached_without_a_link(
    make_app: MakeApp, smtp_server: SmtpServer
) -> None:
    site = build_site(make_app, smtp_server, **WORKER)
    assert site.export_with_headers(site.client(site.admin), EVIL).status_code == 303
    assert run(site).sent == 1
    [message] = smtp_server.messages
    assert len(list(message.iter_attachments())) == 1
    assert "http" not in text_body(message) and "evil.example" not in message.as_string()


def test_without_an_address_a_large_export_fails_at_once_naming_the_setting(
    make_app: MakeApp, smtp_server: SmtpServer
) -> None:
    site = build_site(make_app, smtp_server, **WORKER, AUDIT_EXPORT_ATTACHMENT_MAX_BYTES=1)
    assert site.export_with_headers(site.client(site.admin), EVIL).status_code == 303
    assert run(site) == jobs.RunSummary(failed=1)
    job = site.job()
    assert (job.status, job.attempts) == ("failed", 1)
    assert job.last_error is not None and "set AUDIT_EXTERNAL_URL" in job.last_error
    assert smtp_server.messages == []
    page = site.client(site.admin).get(f"{PREFIX}/exports").get_data(as_text=True)
    assert "set AUDIT_EXTERNAL_URL" in page
    assert os.listdir(site.app.config["AUDIT_EXPORT_DIR"]) == []
