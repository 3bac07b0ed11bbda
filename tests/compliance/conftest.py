"""The compliance tests' fixtures: a real SMTP server on the loopback address, and the
Flask-Security-Too app factory."""

from __future__ import annotations

import collections.abc as c

import pytest

from ..export_fixtures import running_smtp_server
from ..export_fixtures import SmtpServer
from ..flask_security_fixtures import make_security_app  # noqa: F401 (a fixture)


@pytest.fixture
def smtp() -> c.Iterator[SmtpServer]:
    with running_smtp_server() as server:
        yield server
