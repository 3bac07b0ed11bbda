"""``flask audit check`` and the start-up log line: each problem named with its fix."""

from __future__ import annotations

import logging
import pathlib

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit.store.immutability import drop_statements

from .conftest import db
from .conftest import MakeApp


def _check(app: Flask) -> tuple[int, list[str]]:
    result = app.test_cli_runner().invoke(args=["audit", "check"])
    return result.exit_code, result.output.splitlines()


def test_a_set_up_app_passes_with_its_warnings(app: Flask) -> None:
    code, lines = _check(app)
    assert code == 0, lines
    names = [line.split(":")[0].split()[1] for line in lines]
    assert names == ["table", "triggers", "mailer", "admins", "proxies", "seal", "witness", "account"]
    assert lines[0].startswith("ok    table: audit_event on ")
    assert lines[1].startswith("ok    triggers: ")
    assert "AUDIT_TRUSTED_PROXIES" in lines[4] and "AUDIT_SEAL_KEY" in lines[5]


@pytest.mark.audit_config(AUDIT_SEAL_KEY="k", AUDIT_TRUSTED_PROXIES=1, AUDIT_IS_ADMIN="operator:truth")
def test_settings_that_are_made_read_ok(app: Flask) -> None:
    code, lines = _check(app)
    assert code == 0
    checked = [line.split()[0] for line in lines if "mailer" not in line and "account:" not in line]
    assert checked == ["ok"] * 6


def test_a_witness_that_cannot_be_written_fails(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    (tmp_path / "a-file").write_text("")
    witness = tmp_path / "a-file" / "witness.jsonl"  # under a file: no folder can be made there
    app = make_app(AUDIT_SEAL_KEY="k", AUDIT_SEAL_WITNESS=str(witness))
    code, lines = _check(app)
    assert code == 1
    assert f"FAIL  witness: {witness} cannot be written: point AUDIT_SEAL_WITNESS at a file" in lines[6]


def test_a_witness_in_a_folder_yet_to_be_made_passes(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    witness = tmp_path / "new" / "witness.jsonl"
    app = make_app(AUDIT_SEAL_KEY="k", AUDIT_SEAL_WITNESS=str(witness))
    assert _check(app)[1][6] == f"ok    witness: seal heads are also written to {witness}"


def test_no_witness_with_a_key_is_a_warning(make_app: MakeApp) -> None:
    app = make_app(AUDIT_SEAL_KEY="k", AUDIT_SEAL_WITNESS=False)
    code, lines = _check(app)
    assert code == 0
    assert lines[6].startswith("warn  witness: AUDIT_SEAL_WITNESS is False: removing the newest seals")


def test_the_account_check_names_what_lets_the_app_rewrite_the_trail(app: Flask) -> None:
    [line] = [line for line in _check(app)[1] if " account: " in line]
    with app.app_context():
        dialect = db(app).engine.dialect.name
    if dialect == "sqlite":
        assert line == "ok    account: SQLite: keep the database file writable by the app's user alone"
    else:  # the test databases are reached as their superuser (postgres, root)
        assert line.startswith("warn  account: ")
        assert line.endswith("Run the app as a runtime role: flask audit grants ROLE --apply, as the owner")


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
