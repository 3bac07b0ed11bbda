"""Who may use the export routes, and how they are told no.

Shared by the export's views (:mod:`flask_audit.export.views`) and pages
(:mod:`flask_audit.export.pages`). The rules match the audit page: anonymous visitors go to
the app's login (401 without one, or when they ask for JSON), other users get 403. A
refusal is JSON ``{"error": ...}`` for a client that asks for JSON, else a page that leads
back to the log.
"""

from __future__ import annotations

import typing as t

from flask import abort
from flask import current_app
from flask import jsonify
from flask import make_response
from flask import render_template
from flask import request
from flask import url_for
from werkzeug.routing import BuildError

from ..admin.views import TZ_COOKIE
from ..exceptions import InvalidFilterError
from ..query.filters import FILTER_NAMES
from ..query.filters import resolve_timezone
from ..store.context import current_user_or_none
from . import mailers

if t.TYPE_CHECKING:
    from ..config import AuditConfig


def unavailable_reason() -> str | None:
    """Why the current app cannot export now (no mailer), for the pages to show by the button."""
    return mailers.NO_MAILER if mailers.mailer_name(current_app) is None else None


def wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def refuse(status: int, message: str) -> t.NoReturn:
    """Stop with ``message``: JSON for a JSON client, else the app's error page for ``status``."""
    if wants_json():
        abort(make_response(jsonify(error=message), status))
    abort(status, description=message)


def message_page(status: int, title: str, message: str, headers: dict[str, str] | None = None) -> t.NoReturn:
    """Stop with ``message``: JSON ``{"error": ...}``, or a page that leads back to the log."""
    if wants_json():
        abort(make_response(jsonify(error=message), status, headers or {}))
    page = render_template(
        "flask_audit/export_message.html",
        title=title,
        message=message,
        back=back_link(),
        exports=url_for(".exports"),
    )
    abort(make_response(page, status, headers or {}))


def require_admin(config: AuditConfig) -> t.Any:
    """The signed-in admin; stops anyone else (see the module's rules)."""
    user = current_user_or_none()
    if user is None:
        manager = getattr(current_app, "login_manager", None)
        if manager is None or wants_json():
            refuse(401, "Sign in as an administrator to export the audit log.")
        abort(make_response(manager.unauthorized()))  # the app's login page, or its 401
    if not config.is_admin(user):
        refuse(403, "Only administrators can export the audit log.")
    return user


def check_csrf() -> None:
    """Refuse a POST without a valid Flask-WTF CSRF token (form field or header)."""
    from flask_wtf.csrf import validate_csrf
    from wtforms import ValidationError  # type: ignore[import-untyped]

    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    token = request.form.get(field)
    for header in current_app.config.get("WTF_CSRF_HEADERS", ["X-CSRFToken", "X-CSRF-Token"]):
        token = token or request.headers.get(header)
    try:
        validate_csrf(token)
    except ValidationError as err:
        refuse(400, f"The export was refused: {err.args[0]} Reload the audit log page and try again.")


def request_values() -> t.Any:
    """The submitted values: the form of a POST, the query string of a GET."""
    return request.form if request.method == "POST" else request.args


def back_link() -> str:
    """The audit page with the filters (and zone) of this request, as the admin typed them."""
    values = request_values()
    names = [name for name in FILTER_NAMES if name != "cursor"] + ["tz"]
    args: dict[str, t.Any] = {name: values[name] for name in names if values.get(name)}
    try:
        return url_for(".index", **args)
    except BuildError:
        return url_for(".exports")


def display_zone(config: AuditConfig) -> str:
    """The admin's display zone, as the audit page picks it: ``tz`` given, else the zone the
    page remembered (its cookie), else ``AUDIT_TIMEZONE``. A bad ``tz`` raises
    :class:`InvalidFilterError`."""
    given = request_values().get("tz", "")
    if given.strip():
        return resolve_timezone(given, config.timezone)
    try:
        return resolve_timezone(request.cookies.get(TZ_COOKIE), config.timezone)
    except InvalidFilterError:
        return config.timezone
