"""Adapters that turn the identity stack's signals into events, connected per app."""

from __future__ import annotations

import typing as t

from flask import Flask

from . import audit_signals
from . import flask_login

if t.TYPE_CHECKING:
    from ..extension import Audit


def connect(app: Flask, audit: Audit) -> None:
    """Connect every adapter that applies to ``app``."""
    flask_login.connect(app)
    audit_signals.connect(app)
