"""The export delivery settings, checked at start-up with the key named."""

from __future__ import annotations

import os
import typing as t

import pytest
from flask import Flask

from flask_audit.config import load_config
from flask_audit.exceptions import AuditConfigError


def loaded(**config: t.Any) -> t.Any:
    app = Flask(__name__)
    app.config.update(config)
    return load_config(app)


def test_the_defaults() -> None:
    app = Flask(__name__)
    config = load_config(app)
    assert config.export_max_pending == 3
    assert config.export_rate == (10, 3600)
    assert config.export_dir == os.path.join(app.instance_path, "audit-exports")
    assert config.external_url is None


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("10/hour", (10, 3600)),
        (" 3 / minutes ", (3, 60)),
        ("1/second", (1, 1)),
        ("50/Day", (50, 86400)),
        (None, None),
    ],
)
def test_the_rate(value: str | None, parsed: tuple[int, int] | None) -> None:
    assert loaded(AUDIT_EXPORT_RATE=value).export_rate == parsed


@pytest.mark.parametrize("value", ["ten/hour", "10/fortnight", "0/hour", "10", 10, "-1/hour", "١٠/hour"])
def test_a_bad_rate_is_refused_at_start_up(value: t.Any) -> None:
    with pytest.raises(AuditConfigError, match="^AUDIT_EXPORT_RATE must be a count per second"):
        loaded(AUDIT_EXPORT_RATE=value)


@pytest.mark.parametrize("value", [0, -1, "3", 2.5, True])
def test_a_bad_pending_limit_is_refused(value: t.Any) -> None:
    with pytest.raises(AuditConfigError, match="^AUDIT_EXPORT_MAX_PENDING must be an integer of at least 1"):
        loaded(AUDIT_EXPORT_MAX_PENDING=value)


def test_no_pending_limit() -> None:
    assert loaded(AUDIT_EXPORT_MAX_PENDING=None).export_max_pending is None


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("https://app.example.com", "https://app.example.com"),
        ("https://app.example.com/tools/", "https://app.example.com/tools"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("", None),
    ],
)
def test_the_external_url(value: str, kept: str | None) -> None:
    assert loaded(AUDIT_EXTERNAL_URL=value).external_url == kept


@pytest.mark.parametrize(
    "value",
    [
        "app.example.com",
        "ftp://app.example.com",
        "https://",
        "https://app.example.com/?next=x",
        "https://app.example.com/#top",
        "https://user:pw@app.example.com",
        "http://[::1",
        42,
    ],
)
def test_a_bad_external_url_is_refused(value: t.Any) -> None:
    with pytest.raises(AuditConfigError, match="^AUDIT_EXTERNAL_URL must be the site's public base URL"):
        loaded(AUDIT_EXTERNAL_URL=value)


def test_the_export_folder_may_be_set(tmp_path: t.Any) -> None:
    assert loaded(AUDIT_EXPORT_DIR=str(tmp_path)).export_dir == str(tmp_path)
