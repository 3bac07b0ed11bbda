"""Adapters that turn the identity stack's signals into events, connected per app."""

from __future__ import annotations

import sys
import typing as t

from flask import Flask

from . import audit_signals
from . import flask_login

if t.TYPE_CHECKING:
    from ..state import Recorder


def connect(app: Flask, audit: Recorder) -> None:
    """Connect every adapter that applies to ``app``.

    The Flask-Security-Too adapter connects whether or not ``Security`` is set up yet:
    its signals are sent with the app as sender, so nothing fires until it is. The
    Flask-AppBuilder adapter is imported only if the app has imported FAB (``import
    flask_audit`` never does), and hooks FAB once it is set up on the app.
    """
    flask_login.connect(app)
    audit_signals.connect(app)
    if "flask_appbuilder" in sys.modules:  # imported by the app: FAB is, or will be, set up
        from . import flask_appbuilder

        flask_appbuilder.connect(app, audit)
    try:
        from . import flask_security
    except ImportError:  # pragma: no cover - the adapter module is optional
        return
    flask_security.connect(app, audit)
