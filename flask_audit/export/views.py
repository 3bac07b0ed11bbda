"""The export routes of the ``audit`` blueprint: confirm an export, request it, follow it,
download it.

``GET /exports/new`` shows what an export of the given filters would hold, and asks for a
format (:mod:`flask_audit.export.pages`). ``POST /export`` checks the CSRF token (Flask-WTF,
whether or not the app turned on ``CSRFProtect``), the admin and the filters, that the app
has a mailer (503 without one) and the admin's export limits (429 past them), stores a job
and answers at once: a flash message that names the filters and the row count and a 303
(to the exports page from the confirmation, else back to the log), or 202 with the job in
JSON. ``GET /exports`` lists the admin's recent jobs; ``GET /exports/<id>/download`` serves
the stored file of a sent export to the admin it was made for only, until its link
expires (410 after), from the mail's link or the exports page. Who may do what is in
:mod:`flask_audit.export.access`; with a tenant loader an admin exports only their
tenant's events.
"""

from __future__ import annotations

import typing as t
import weakref

from flask import Blueprint
from flask import flash
from flask import jsonify
from flask import redirect
from flask import request
from flask import send_file
from flask import url_for
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature
from itsdangerous import SignatureExpired
from werkzeug.wrappers import Response

from ..exceptions import InvalidFilterError
from ..query.filters import AuditFilter
from ..state import audit_state
from ..state import AuditState
from ..state import current_audit
from ..store.context import actor_of
from ..store.context import current_team
from ..store.context import current_tenant
from ..store.context import origin
from . import files
from . import job_store
from . import jobs
from . import limits
from . import links
from . import mail
from . import pages
from .access import back_link
from .access import check_csrf
from .access import display_zone
from .access import message_page
from .access import refuse
from .access import require_admin
from .access import unavailable_reason
from .access import wants_json
from .csv_export import count_rows
from .csv_export import FORMATS
from .formats import format_of
from .pages import job_info
from .words import selection_words

if t.TYPE_CHECKING:
    from ..config import AuditConfig
    from ..store.models import ExportJob

__all__ = ["add_export_routes", "routes", "unavailable_reason"]

LINK_INVALID = "This download link is not valid. Use the link from the export mail, or export again."
LINK_EXPIRED = "This download link has expired. Export the audit log again to get a new one."
LINK_NOT_YOURS = (
    "This download link belongs to another account: sign in as the admin who asked for the export."
)
FILE_GONE = "The file of this export is no longer available. Export the audit log again to get a new one."
#: The form value that sends the admin to the exports page after the export (the confirmation's).
THEN_EXPORTS = "exports"

_done: weakref.WeakSet[Blueprint] = weakref.WeakSet()


def add_export_routes(bp: Blueprint) -> None:
    """Add the export routes (see :func:`routes`) to ``bp`` (once, before it is registered)."""
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
        ("/exports", "exports", pages.exports, ["GET"]),
        ("/exports/new", "export_confirm", pages.confirm, ["GET"]),
        ("/exports/<int:job_id>/download", "export_download", download, ["GET"]),
    ]


def _state() -> AuditState:
    return audit_state()


def export() -> ResponseReturnValue:
    """Queue an export of the submitted filters, in the chosen format, for the signed-in admin."""
    state = _state()
    config = state.config
    check_csrf()
    user = require_admin(config)
    try:
        tzname = display_zone(config)
        flt = AuditFilter.from_args(request.form, timezone=tzname)
    except InvalidFilterError as err:
        refuse(400, str(err))
    fmt = request.form.get("format", "").strip() or "csv"
    if fmt not in FORMATS:
        refuse(400, f"Unknown export format {fmt[:20]!r}; choose csv (CSV) or jsonl (JSON lines).")
    actor = actor_of(user, config)
    if not actor.email:
        refuse(400, "Your account has no email address to send the export to.")
    reason = unavailable_reason()
    if reason is not None:
        message_page(503, "Export unavailable", reason)
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
        fmt=fmt,
    )
    refusal = limits.admit(state.engine, config, job_id, job_store.utcnow())
    if refusal is not None:
        retry = {"Retry-After": str(refusal.retry_after)}
        message_page(429, "Export limit reached", refusal.message, retry)
    job = t.cast("ExportJob", job_store.get_job(state.engine, job_id))
    with state.engine.connect() as conn:  # the rows the job pinned, before it may run
        count = count_rows(conn, jobs.job_statement(job))
    if config.export_mode == "inline":
        jobs.run_after_response(job_id)
    if wants_json():
        return jsonify(job=job_info(job), count=count), 202, {"Location": url_for(".exports")}
    flash(
        f"Your export of {selection_words(count, flt.to_args(), tzname)} is on its way to {actor.email}:"
        f" the {format_of(fmt).label} file will arrive by email shortly. Once it is sent, you can also"
        " download it from Your exports.",
        "success",
    )
    then_exports = request.form.get("then") == THEN_EXPORTS
    return redirect(url_for(".exports") if then_exports else back_link(), 303)


def download(job_id: int) -> ResponseReturnValue:
    """Serve a sent export's stored file to its own admin, until its link expires."""
    state = _state()
    config = state.config
    user = require_admin(config)
    try:
        payload = mail.read_download_token(request.args.get("token", ""), config.export_link_max_age)
    except SignatureExpired:
        message_page(410, "Link expired", LINK_EXPIRED)
    except BadSignature:
        refuse(403, LINK_INVALID)
    if payload.get("job") != job_id:  # before any lookup: the id in the URL is the visitor's
        refuse(403, LINK_INVALID)
    job = job_store.get_job(state.engine, job_id)
    if job is None or job.status != "sent":
        refuse(403, LINK_INVALID)
    requester = actor_of(user, config).id
    in_tenant = not job.tenant_scoped or current_tenant(config) == job.tenant_id
    if (
        requester is None
        or requester != job.requested_by_id
        or payload.get("user") != requester
        or not in_tenant
    ):
        refuse(403, LINK_NOT_YOURS)
    if job.link_expires_at is not None and job.link_expires_at < job_store.utcnow():
        message_page(410, "Link expired", LINK_EXPIRED)
    return _serve(job, config)


def _serve(job: ExportJob, config: AuditConfig) -> Response:
    """The job's stored file as a download, recorded as ``audit.exported``; 410 when it is gone."""
    path = files.stored_file(config, job.id)
    try:
        handle = open(path, "rb") if path is not None else None  # send_file closes it
    except FileNotFoundError:  # deleted since: expired, or removed by hand
        handle = None
    if handle is None or path is None:
        message_page(410, "Export unavailable", FILE_GONE)
    fmt = job_store.job_format(job)
    try:
        current_audit().record(
            "audit.exported",
            activity=f"Downloaded audit log export {job.id}",
            tenant_id=job.tenant_id,
            details={
                "job_id": job.id,
                "filters": job_store.job_filters(job),
                "rows": job.row_count,
                "format": fmt,
                "delivery": "download",
            },
        )
    except BaseException:
        handle.close()
        raise
    compressed = path.name.endswith(".gz")
    response = send_file(
        handle,
        mimetype=mail.GZIP_TYPE if compressed else format_of(fmt).mimetype,
        as_attachment=True,
        download_name=mail.file_name(job, compressed=compressed),
        conditional=False,
        etag=False,
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response
