from __future__ import annotations

import os
import typing as t

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_audit import Audit
from flask_audit import AuditConfigError
from flask_audit.config import DEFAULTS
from flask_audit.config import load_config

from .apps import Base


def is_staff(user: t.Any) -> bool:
    return bool(getattr(user, "staff", False))


def _app(**config: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.update(config)
    return app


def test_every_key_gets_its_documented_default() -> None:
    app = _app()
    config = load_config(app)
    for key, default in DEFAULTS.items():
        assert app.config[key] == default, key
    assert config.retention_days == 90
    assert config.url_prefix == "/admin/audit"
    assert config.on_write_error == "raise"
    assert config.trusted_proxies == 0
    assert config.spool_path == os.path.join(app.instance_path, "audit-spool.jsonl")
    assert config.seal_key is None
    assert config.export_attachment_max_bytes == 10 * 1024 * 1024
    assert config.timezone == "UTC"


def test_default_callables_read_is_admin_and_email() -> None:
    config = load_config(_app())

    class Person:
        is_admin = True
        email = "a@example.com"

    assert config.is_admin(Person()) is True
    assert config.is_admin(object()) is False
    assert config.actor_email(Person()) == "a@example.com"


def test_import_strings_are_resolved_at_start_up() -> None:
    config = load_config(_app(AUDIT_IS_ADMIN="tests.test_config:is_staff"))
    assert config.is_admin is is_staff


def test_bad_import_string_names_the_key() -> None:
    with pytest.raises(
        AuditConfigError, match=r"^AUDIT_TEAM_LOADER = 'nowhere.module:f' could not be imported"
    ):
        load_config(_app(AUDIT_TEAM_LOADER="nowhere.module:f"))


def test_non_callable_is_refused() -> None:
    with pytest.raises(
        AuditConfigError, match="^AUDIT_IS_ADMIN must be a callable or an import string, not 42."
    ):
        load_config(_app(AUDIT_IS_ADMIN=42))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("AUDIT_ON_WRITE_ERROR", "ignore", "AUDIT_ON_WRITE_ERROR must be one of raise, spool, not 'ignore'."),
        ("AUDIT_RETENTION_DAYS", 0, "AUDIT_RETENTION_DAYS must be an integer of at least 1, not 0."),
        ("AUDIT_RETENTION_DAYS", "90", "AUDIT_RETENTION_DAYS must be an integer of at least 1, not '90'."),
        ("AUDIT_TRUSTED_PROXIES", -1, "AUDIT_TRUSTED_PROXIES must be an integer of at least 0, not -1."),
        ("AUDIT_URL_PREFIX", "admin", "AUDIT_URL_PREFIX must be a path starting with '/', not 'admin'."),
        ("AUDIT_TIMEZONE", "Mars/Base", "AUDIT_TIMEZONE = 'Mars/Base' is not a known time zone"),
        ("AUDIT_SEAL_KEY", 7, "AUDIT_SEAL_KEY must be bytes or a string, not int."),
    ],
)
def test_invalid_values_are_refused_with_the_key(key: str, value: t.Any, message: str) -> None:
    with pytest.raises(AuditConfigError) as info:
        load_config(_app(**{key: value}))
    assert str(info.value).startswith(message)


def test_init_app_fails_at_start_up_on_bad_config() -> None:
    app = _app(SQLALCHEMY_DATABASE_URI="sqlite://", AUDIT_ON_WRITE_ERROR="later")
    with pytest.raises(AuditConfigError, match="AUDIT_ON_WRITE_ERROR"):
        Audit(app, db=SQLAlchemy(app, model_class=Base))
    assert "audit" not in app.extensions


def test_seal_key_string_becomes_bytes() -> None:
    assert load_config(_app(AUDIT_SEAL_KEY="s3cret")).seal_key == b"s3cret"


def test_a_username_only_user_is_named_by_username() -> None:
    class Person:
        username = "priya"

    assert load_config(_app()).actor_email(Person()) == "priya"
