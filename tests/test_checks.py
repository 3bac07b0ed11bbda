"""``flask audit check`` and the start-up log line: each problem named with its fix."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit.store.immutability import drop_statements

from .conftest import db


def _check(app: Flask) -> tuple[int, list[str]]:
    result = app.test_cli_runner().invoke(args=["audit", "check"])
    return result.exit_code, result.output.splitlines()


def test_a_set_up_app_passes_with_its_warnings(app: Flask) -> None:
    code, lines = _check(app)
    assert code == 0, lines
    names = [line.split(":")[0].split()[1] for line in lines]
    assert names == ["table", "triggers", "mailer", "admins", "proxies", "seal"]
    assert lines[0].startswith("ok    table: audit_event on ")
    assert lines[1].startswith("ok    triggers: ")
    assert "AUDIT_TRUSTED_PROXIES" in lines[4] and "AUDIT_SEAL_KEY" in lines[5]


@pytest.mark.audit_config(AUDIT_SEAL_KEY="k", AUDIT_TRUSTED_PROXIES=1, AUDIT_IS_ADMIN="operator:truth")
def test_settings_that_are_made_read_ok(app: Flask) -> None:
    code, lines = _check(app)
    assert code == 0
    assert [line.split()[0] for line in lines if "mailer" not in line] == ["ok"] * 5


def test_a_missing_table_fails_with_the_fix(app: Flask) -> None:
    with app.app_context(), db(app).engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE audit_event")
    code, lines = _check(app)
    assert code == 1
    assert "FAIL  table: audit_event is missing: run db.create_all()" in lines[0]
    assert "flask db upgrade flask_audit@head" in lines[0]


def test_a_dropped_trigger_fails_with_the_fix(app: Flask) -> None:
    with app.app_context(), db(app).engine.begin() as conn:
        conn.exec_driver_sql(drop_statements(conn.dialect.name)[0])
    code, lines = _check(app)
    assert code == 1
    assert lines[1] == "FAIL  triggers: missing audit_event_no_update: run flask audit triggers"
    with app.app_context(), db(app).engine.connect() as conn:
        assert sa.inspect(conn).has_table("audit_event")


def test_the_first_request_logs_the_checks_once(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="flask_audit")
    client = app.test_client()
    client.post("/logout")
    client.post("/logout")
    lines = [r.getMessage() for r in caplog.records if "start-up checks" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith("flask_audit start-up checks: table ok; triggers ok; mailer warn")
