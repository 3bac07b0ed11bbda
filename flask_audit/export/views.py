"""The export routes of the ``audit`` blueprint: request an export, follow it, download it.

``POST /export`` checks the CSRF token (Flask-WTF, whether or not the app turned on
``CSRFProtect``), the admin and the filters, that the app has a mailer (503 without one) and
the admin's export limits (429 past them), stores a job and answers at once: a flash
message and a 303 back to the page, or 202 with the job in JSON. ``GET /exports`` lists the
admin's recent jobs; ``GET /exports/<id>/download`` serves the stored file of an export too
large to mail, to the admin it was made for only, until its link expires (410 after). The
rules match the page: anonymous visitors go to the app's login (401 without one), other
users get 403, and with a tenant loader an admin exports only their tenant's events.
"""

from __future__ import annotations

import datetime as dt
import typing as t
import weakref

from flask import abort
from flask import Blueprint
from flask import current_app
from flask import flash
from flask import jsonify
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import send_file
from flask import url_for
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature
from itsdangerous import SignatureExpired
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response

from ..exceptions import InvalidFilterError
from ..query.filters import AuditFilter
from ..query.filters import FILTER_NAMES
from ..query.filters import resolve_timezone
from ..state import audit_state
from ..state import AuditState
from ..state import current_audit
from ..store.context import actor_of
from ..store.context import current_team
from ..store.context import current_tenant
from ..store.context import current_user_or_none
from ..store.context import origin
from . import files
from . import job_store
from . import jobs
from . import limits
from . import links
from . import mail
from . import mailers
from .csv_export import format_time

if t.TYPE_CHECKING:
    from ..config import AuditConfig
    from ..store.models import ExportJob

LINK_INVALID = "This download link is not valid. Use the link from the export mail, or export again."
LINK_EXPIRED = "This download link has expired. Export the audit log again to get a new one."
LINK_NOT_YOURS = (
    "This download link belongs to another account: sign in as the admin who asked for the export."
)
FILE_GONE = "The file of this export is no longer available. Export the audit log again to get a new one."

_done: weakref.WeakSet[Blueprint] = weakref.WeakSet()


def add_export_routes(bp: Blueprint) -> None:
    """Add ``.export``, ``.exports`` and ``.export_download`` to ``bp`` (once, before it is registered)."""
    if bp in _done:
        return
    for rule, endpoint, view, methods in routes():
        bp.add_url_rule(rule, endpoint, view, methods=methods)
    bp.before_app_request(links.check_delivery)
    _done.add(bp)


def routes() -> list[tuple[str, str, t.Callable[..., ResponseReturnValue], list[str]]]:
    """``(rule, endpoint, view, methods)`` of each export route, relative to the blueprint."""
    return [
        ("/export", "export", export, ["POST"]),
        ("/exports", "exports", exports, ["GET"]),
        ("/exports/<int:job_id>/download", "export_download", download, ["GET"]),
    ]


def _state() -> AuditState:
    return audit_state()


def unavailable_reason() -> str | None:
    """Why the current app cannot export now (no mailer), for the page to show by the button."""
    return mailers.NO_MAILER if mailers.mailer_name(current_app) is None else None


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _refuse(status: int, message: str) -> t.NoReturn:
    if _wants_json():
        abort(make_response(jsonify(error=message), status))
    abort(status, description=message)


def _message_page(status: int, title: str, message: str, headers: dict[str, str] | None = None) -> t.NoReturn:
    """Stop with ``message``: JSON ``{"error": ...}``, or a page that leads back to the log."""
    if _wants_json():
        abort(make_response(jsonify(error=message), status, headers or {}))
    page = render_template(
        "flask_audit/export_message.html",
        title=title,
        message=message,
        back=_back(),
        exports=url_for(".exports"),
    )
    abort(make_response(page, status, headers or {}))


def _require_admin(config: AuditConfig) -> t.Any:
    user = current_user_or_none()
    if user is None:
        manager = getattr(current_app, "login_manager", None)
        if manager is None or _wants_json():
            _refuse(401, "Sign in as an administrator to export the audit log.")
        abort(make_response(manager.unauthorized()))  # the app's login page, or its 401
    if not config.is_admin(user):
        _refuse(403, "Only administrators can export the audit log.")
    return user


def _check_csrf() -> None:
    from flask_wtf.csrf import validate_csrf
    from wtforms import ValidationError  # type: ignore[import-untyped]

    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    token = request.form.get(field)
    for header in current_app.config.get("WTF_CSRF_HEADERS", ["X-CSRFToken", "X-CSRF-Token"]):
        token = token or request.headers.get(header)
    try:
        validate_csrf(token)
    except ValidationError as err:
        _refuse(400, f"The export was refused: {err.args[0]} Reload the audit log page and try again.")


def export() -> ResponseReturnValue:
    """Queue an export of the page's filters for the signed-in admin."""
    state = _state()
    config = state.config
    _check_csrf()
    user = _require_admin(config)
    try:
        tzname = resolve_timezone(request.form.get("tz"), config.timezone)
        flt = AuditFilter.from_args(request.form, timezone=tzname)
    except InvalidFilterError as err:
        _refuse(400, str(err))
    actor = actor_of(user, config)
    if not actor.email:
        _refuse(400, "Your account has no email address to send the export to.")
    reason = unavailable_reason()
    if reason is not None:
        _message_page(503, "Export unavailable", reason)
    job_id = job_store.create_job(
        state.engine,
        requested_by_id=actor.id,
        requested_by_email=actor.email,
        tenant_scoped=config.tenant_loader is not None,
        tenant_id=current_tenant(config),
        team=current_team(config),
        flt=flt,
        timezone=tzname,
        origin=origin(config),
        hold_seconds=limits.HOLD_SECONDS,
    )
    refusal = limits.admit(state.engine, config, job_id, job_store.utcnow())
    if refusal is not None:
        retry = {"Retry-After": str(refusal.retry_after)}
        _message_page(429, "Export limit reached", refusal.message, retry)
    if config.export_mode == "inline":
        jobs.run_after_response(job_id)
    if _wants_json():
        job = t.cast("ExportJob", job_store.get_job(state.engine, job_id))
        return jsonify(job=job_info(job)), 202, {"Location": url_for(".exports")}
    flash(
        f"Your export is on its way to {actor.email}: the CSV file will arrive by email shortly.", "success"
    )
    return redirect(_back(), 303)


def _back() -> str:
    """The page with the filters the export was made from."""
    names = [name for name in FILTER_NAMES if name != "cursor"] + ["tz"]
    args = {name: request.form[name] for name in names if request.form.get(name)}
    try:
        return url_for(".index", **t.cast("dict[str, t.Any]", args))
    except BuildError:
        return url_for(".exports")


def job_info(job: ExportJob) -> dict[str, t.Any]:
    """A job as the status view shows it."""

    def when(value: dt.datetime | None) -> str | None:
        return None if value is None else format_time(value)

    return {
        "id": job.id,
        "status": job.status,
        "attempts": job.attempts,
        "created_at": when(job.created_at),
        "next_attempt_at": when(job.next_attempt_at) if job.status == "queued" else None,
        "sent_at": when(job.sent_at),
        "last_error": job.last_error,
        "rows": job.row_count,
        "delivery": job.delivery,
        "link_expires_at": when(job.link_expires_at),
        "filters": job.filters,
    }


def exports() -> ResponseReturnValue:
    """The signed-in admin's recent export jobs, with their status and last error."""
    state = _state()
    config = state.config
    user = _require_admin(config)
    recent = job_store.recent_jobs(
        state.engine,
        requested_by_id=actor_of(user, config).id,
        tenant_scoped=config.tenant_loader is not None,
        tenant_id=current_tenant(config),
    )
    if _wants_json():
        return jsonify(jobs=[job_info(job) for job in recent])
    context = {"jobs": [job_info(job) for job in recent]}
    return render_template("flask_audit/exports.html", **context)


def download(job_id: int) -> ResponseReturnValue:
    """Serve a mailed link's stored file to its own admin, until the link expires."""
    state = _state()
    config = state.config
    user = _require_admin(config)
    try:
        payload = mail.read_download_token(request.args.get("token", ""), config.export_link_max_age)
    except SignatureExpired:
        _message_page(410, "Link expired", LINK_EXPIRED)
    except BadSignature:
        _refuse(403, LINK_INVALID)
    if payload.get("job") != job_id:  # before any lookup: the id in the URL is the visitor's
        _refuse(403, LINK_INVALID)
    job = job_store.get_job(state.engine, job_id)
    if job is None or job.status != "sent":
        _refuse(403, LINK_INVALID)
    requester = actor_of(user, config).id
    in_tenant = not job.tenant_scoped or current_tenant(config) == job.tenant_id
    if (
        requester is None
        or requester != job.requested_by_id
        or payload.get("user") != requester
        or not in_tenant
    ):
        _refuse(403, LINK_NOT_YOURS)
    if job.link_expires_at is not None and job.link_expires_at < job_store.utcnow():
        _message_page(410, "Link expired", LINK_EXPIRED)
    return _serve(job, config)


def _serve(job: ExportJob, config: AuditConfig) -> Response:
    """The job's stored file as a download, recorded as ``audit.exported``; 410 when it is gone."""
    path = files.stored_file(config, job.id)
    try:
        handle = open(path, "rb") if path is not None else None  # send_file closes it
    except FileNotFoundError:  # deleted since: expired, or removed by hand
        handle = None
    if handle is None or path is None:
        _message_page(410, "Export unavailable", FILE_GONE)
    try:
        current_audit().record(
            "audit.exported",
            activity=f"Downloaded audit log export {job.id}",
            tenant_id=job.tenant_id,
            details={"job_id": job.id, "filters": job.filters, "rows": job.row_count, "delivery": "download"},
        )
    except BaseException:
        handle.close()
        raise
    compressed = path.name.endswith(".gz")
    response = send_file(
        handle,
        mimetype=mail.GZIP_TYPE if compressed else "text/csv",
        as_attachment=True,
        download_name=mail.file_name(job, compressed=compressed),
        conditional=False,
        etag=False,
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response
