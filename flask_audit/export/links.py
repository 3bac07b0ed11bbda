"""Links in export mail, built from the site's configured address, and the delivery check.

A mail is read outside the request that asked for it, and the request's ``Host`` header is
the client's to choose: a link built from it (``url_for(..., _external=True)``) would send
an admin to any host an attacker names. Links therefore start with ``AUDIT_EXTERNAL_URL``,
else with ``SERVER_NAME`` (with ``PREFERRED_URL_SCHEME`` and ``APPLICATION_ROOT``); with
neither, the mail carries no link.

:func:`check_delivery` logs, once per app, what would make exports fail: no mailer, no
address for links. It runs before the app's first request rather than in ``init_app``, so
that an app which sets up Flask-Mail after the extension is not warned for nothing.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
import weakref

from flask import current_app
from flask import Flask

from ..state import audit_state
from . import mailers

log = logging.getLogger(__name__)

DOWNLOAD_ENDPOINT = "audit.export_download"
NO_ADDRESS = (
    "Neither AUDIT_EXTERNAL_URL nor SERVER_NAME is set, so audit log export mails carry no download"
    " link, and an export too large to attach (AUDIT_EXPORT_ATTACHMENT_MAX_BYTES) fails: set"
    " AUDIT_EXTERNAL_URL to the site's public address, such as 'https://app.example.com'."
)

_checked: weakref.WeakSet[Flask] = weakref.WeakSet()
_checked_lock = threading.Lock()


def base_url(app: Flask) -> str | None:
    """The site's public base URL: ``AUDIT_EXTERNAL_URL``, else from ``SERVER_NAME``; or None."""
    configured = audit_state(app).config.external_url
    if configured:
        return configured
    server = app.config.get("SERVER_NAME")
    if not server:
        return None
    scheme = app.config.get("PREFERRED_URL_SCHEME") or "http"
    root = (app.config.get("APPLICATION_ROOT") or "/").rstrip("/")
    return f"{scheme}://{server}{root}"


def download_link(app: Flask, job_id: int, token: str) -> str | None:
    """The absolute URL of a job's download with ``token``; None when no base URL is set."""
    base = base_url(app)
    if base is None:
        return None
    parts = urllib.parse.urlsplit(base)
    adapter = app.url_map.bind(parts.netloc, script_name=parts.path or "/", url_scheme=parts.scheme)
    return adapter.build(DOWNLOAD_ENDPOINT, {"job_id": job_id, "token": token}, force_external=True)


def check_delivery() -> None:
    """Warn once per app, before its first request, about what would make exports fail."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if app in _checked:  # every request after the first
        return
    with _checked_lock:
        if app in _checked:
            return
        _checked.add(app)
    if mailers.mailer_name(app) is None:
        log.warning("%s Until then the export is refused.", mailers.NO_MAILER)
    if base_url(app) is None:
        log.warning(NO_ADDRESS)
