"""Automatic sealing: every N events, after an interval, off by default; the seal table's ORM guard."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit import AuditConfigError
from flask_audit import ImmutableAuditEventError
from flask_audit.integrity import autoseal
from flask_audit.store.models import AuditSeal

from ..conftest import audit_of
from ..conftest import db
from ..conftest import MakeApp
from ..sealing_fixtures import engine_of
from ..sealing_fixtures import KEY
from ..sealing_fixtures import record
from ..sealing_fixtures import seal
from ..sealing_fixtures import verify


def _auto(app: Flask) -> autoseal.AutoSealer:
    sealer = autoseal.connect_auto_seal(app, audit_of(app)._state(app).config)
    assert sealer is not None
    return sealer


def test_auto_sealing_every_n_events(make_app: MakeApp) -> None:
    app = make_app(AUDIT_SEAL_KEY=KEY, AUDIT_SEAL_EVERY_EVENTS=3)
    sealer = _auto(app)
    assert autoseal.connect_auto_seal(app, audit_of(app)._state(app).config) is sealer
    record(app, 6)
    assert sealer.join()
    record(app)
    assert sealer.join()
    report = verify(app)
    assert (report.ok, report.events, report.unsealed) == (True, 7, 1)
    sealer.close()


def test_auto_sealing_after_an_interval(make_app: MakeApp) -> None:
    app = make_app(AUDIT_SEAL_KEY=KEY, AUDIT_SEAL_INTERVAL_SECONDS=0.05)
    sealer = _auto(app)
    record(app, 2)
    assert sealer.join()
    report = verify(app)
    assert (report.ok, report.unsealed) == (True, 0)
    sealer.close()


def test_auto_sealing_is_off_by_default(app: Flask) -> None:
    assert autoseal.connect_auto_seal(app, audit_of(app)._state(app).config) is None


def test_auto_sealing_failure_is_logged_not_raised(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(AUDIT_SEAL_KEY=KEY, AUDIT_SEAL_EVERY_EVENTS=1)
    sealer = _auto(app)
    with engine_of(app).begin() as conn:
        conn.exec_driver_sql("DROP TABLE audit_seal")
    assert record(app)  # stored; the seal behind it fails
    assert sealer.join()
    assert "Automatic sealing failed; it runs again at the next trigger." in caplog.text


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"AUDIT_SEAL_EVERY_EVENTS": 10},
            "AUDIT_SEAL_EVERY_EVENTS turns on automatic sealing, which needs AUDIT_SEAL_KEY to be set.",
        ),
        (
            {"AUDIT_SEAL_INTERVAL_SECONDS": 60},
            "AUDIT_SEAL_INTERVAL_SECONDS turns on automatic sealing, which needs AUDIT_SEAL_KEY to be set.",
        ),
        (
            {"AUDIT_SEAL_KEY": KEY, "AUDIT_SEAL_EVERY_EVENTS": 0},
            "AUDIT_SEAL_EVERY_EVENTS must be an integer of at least 1, not 0.",
        ),
        (
            {"AUDIT_SEAL_KEY": KEY, "AUDIT_SEAL_INTERVAL_SECONDS": "soon"},
            "AUDIT_SEAL_INTERVAL_SECONDS must be a positive number of seconds or None, not 'soon'.",
        ),
    ],
)
def test_auto_sealing_settings_are_checked_at_start_up(config: dict[str, t.Any], message: str) -> None:
    from flask_audit.config import load_config

    app = Flask(__name__)
    app.config.update(config)
    with pytest.raises(AuditConfigError) as info:
        load_config(app)
    assert str(info.value) == message


def test_auto_sealing_settings_default_to_off() -> None:
    from flask_audit.config import load_config

    config = load_config(Flask(__name__))
    assert (config.seal_every_events, config.seal_interval_seconds) == (None, None)


def test_orm_refuses_to_change_or_remove_a_seal(app: Flask, app_ctx: None) -> None:
    autoseal.install_seal_guard()
    record(app)
    seal(app)
    session = db(app).session
    link = session.get_one(AuditSeal, 1)
    link.event_count = 0
    with pytest.raises(
        ImmutableAuditEventError, match=r"^AuditSeal 1 cannot be changed: seals are insert-only\.$"
    ):
        session.flush()
    session.rollback()
    session.delete(session.get_one(AuditSeal, 1))
    with pytest.raises(ImmutableAuditEventError, match="^AuditSeal 1 cannot be changed"):
        session.flush()
    session.rollback()
    with pytest.raises(ImmutableAuditEventError, match="^Seals cannot be changed in bulk"):
        session.execute(sa.delete(AuditSeal))
    session.rollback()
