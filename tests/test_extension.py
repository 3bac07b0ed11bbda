from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_audit import Audit
from flask_audit import AuditConfigError
from flask_audit import AuditEvent

from .apps import Base


def _app(name: str = "one", **config: object) -> Flask:
    app = Flask(name)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", **config)
    return app


def test_init_app_registers_the_instance() -> None:
    app = _app()
    audit = Audit(app, db=SQLAlchemy(app, model_class=Base))
    assert app.extensions["audit"] is audit
    assert "audit" in app.cli.commands


def test_init_app_twice_on_one_app_is_refused() -> None:
    app = _app()
    db = SQLAlchemy(app, model_class=Base)
    audit = Audit(app, db=db)
    with pytest.raises(
        RuntimeError, match="^An 'Audit' instance has already been registered on this Flask app."
    ):
        audit.init_app(app, db=db)


def test_missing_db_is_a_clear_error() -> None:
    with pytest.raises(
        AuditConfigError, match=r"^Audit needs the app's Flask-SQLAlchemy object: Audit\(app, db=db\)"
    ):
        Audit(_app())


def test_one_instance_serves_two_apps_with_their_own_settings() -> None:
    db = SQLAlchemy(model_class=Base)
    audit = Audit(db=db)
    first, second = (
        _app("first"),
        _app("second", AUDIT_URL_PREFIX="/settings/audit", AUDIT_RETENTION_DAYS=365),
    )
    for app in (first, second):
        db.init_app(app)
        audit.init_app(app)
    with first.app_context():
        assert (audit.config.url_prefix, audit.config.retention_days) == ("/admin/audit", 90)
    with second.app_context():
        assert (audit.config.url_prefix, audit.config.retention_days) == ("/settings/audit", 365)
    assert repr(audit) == "<Audit apps=[first, second]>"


def test_app_factory_pattern_records_on_each_app() -> None:
    db = SQLAlchemy(model_class=Base)
    audit = Audit(db=db)
    apps = [_app("a"), _app("b")]
    for app in apps:
        db.init_app(app)
        audit.init_app(app)
        with app.app_context():
            db.create_all()
            audit.record("team.created", team=app.name)
            teams = db.session.scalars(
                sa.select(AuditEvent.team).where(AuditEvent.event_type == "team.created")
            )
            assert list(teams) == [app.name]


def test_unregistered_app_is_a_clear_error() -> None:
    audit = Audit(db=SQLAlchemy(model_class=Base))
    app = _app("stranger")
    with app.app_context(), pytest.raises(AuditConfigError, match="^The app 'stranger' is not registered"):
        audit.record("team.created")


def test_db_not_initialised_on_the_app_is_a_clear_error() -> None:
    app = _app()
    audit = Audit(app, db=SQLAlchemy(model_class=Base))
    with app.app_context(), pytest.raises(AuditConfigError, match=r"call db.init_app\(app\)"):
        audit.record("team.created")
