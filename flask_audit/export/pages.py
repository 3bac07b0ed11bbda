"""The export's two pages: the confirmation before an export, and the admin's exports.

``GET /exports/new?<filters>`` reads and counts, and changes nothing: it says how many
events the filters match and names the filters in words, then offers the format and the
button that posts to ``/export``. The filters it passes on are the ones it was given, so
the filter form's current values (its "Export" button sends them here) are what is
exported; with no match it says so and offers nothing to send.

``GET /exports`` lists the admin's own recent exports in their tenant: status, filters,
rows, size, attempts and the last error in words, times in the admin's display zone, and a
download link while the stored file of a sent export is valid. The link carries the same
signed token as the mail's, so the download route checks it in the same way.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t
import zoneinfo

from flask import current_app
from flask import jsonify
from flask import render_template
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue

from ..compliance.settings import tenant_window
from ..exceptions import InvalidFilterError
from ..query.filters import AuditFilter
from ..state import audit_state
from ..store.context import actor_of
from ..store.context import current_tenant
from . import files
from . import job_store
from . import mail
from .access import back_link
from .access import display_zone
from .access import message_page
from .access import require_admin
from .access import unavailable_reason
from .access import wants_json
from .csv_export import count_rows
from .csv_export import export_statement
from .csv_export import format_time
from .formats import BY_NAME
from .formats import format_of
from .words import count_words
from .words import filter_pairs
from .words import local_text
from .words import status_words

if t.TYPE_CHECKING:
    from ..config import AuditConfig
    from ..store.models import ExportJob

NO_EMAIL = "Your account has no email address to send the export to."


def confirm() -> ResponseReturnValue:
    """Say what an export of the given filters holds, and ask for its format."""
    state = audit_state()
    config = state.config
    user = require_admin(config)
    try:
        tzname = display_zone(config)
        flt = AuditFilter.from_args(request.args, timezone=tzname)
    except InvalidFilterError as err:
        message_page(400, "These filters cannot be exported", str(err))
    args = flt.to_args()
    tenant = current_tenant(config)
    window = tenant_window(current_app._get_current_object(), tenant)  # type: ignore[attr-defined]
    stmt = export_statement(
        flt,
        retention_days=window,
        tenant_scoped=config.tenant_loader is not None,
        tenant_id=tenant,
    )
    with state.engine.connect() as conn:
        count = count_rows(conn, stmt)
    if wants_json():
        return jsonify(count=count, filters=args, timezone=tzname)
    from flask_wtf.csrf import generate_csrf

    email = actor_of(user, config).email
    chosen = request.args.get("format", "")
    return render_template(
        "flask_audit/export_confirm.html",
        count=count,
        count_text=count_words(count),
        filters=filter_pairs(args, tzname),
        # The admin's own text for each filter, re-read by the POST as this page read it.
        fields={name: request.args.get(name, "").strip() or value for name, value in args.items()},
        tzname=tzname,
        formats=list(BY_NAME.values()),
        chosen=chosen if chosen in BY_NAME else "csv",
        email=email,
        problem=unavailable_reason() or (None if email else NO_EMAIL),
        retention_days=window,
        csrf_token=generate_csrf(),
        export_url=url_for(".export"),
        exports_url=url_for(".exports"),
        back=back_link(),
    )


def exports() -> ResponseReturnValue:
    """The signed-in admin's recent exports, with their status, file and last error."""
    state = audit_state()
    config = state.config
    user = require_admin(config)
    recent = job_store.recent_jobs(
        state.engine,
        requested_by_id=actor_of(user, config).id,
        tenant_scoped=config.tenant_loader is not None,
        tenant_id=current_tenant(config),
    )
    if wants_json():
        return jsonify(jobs=[job_info(job) for job in recent])
    try:
        tzname = display_zone(config)
    except InvalidFilterError:
        tzname = config.timezone
    tz = zoneinfo.ZoneInfo(tzname)
    now = job_store.utcnow()
    rows = [JobRow.of(job, tz, config, now) for job in recent]
    return render_template(
        "flask_audit/exports.html",
        rows=rows,
        tzname=tzname,
        pending=any(row.kind == "pending" for row in rows),
        log_url=url_for(".index"),
        refresh_url=url_for(".exports"),
    )


def job_info(job: ExportJob) -> dict[str, t.Any]:
    """A job as the JSON status view shows it."""

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
        "size": job.file_size,
        "format": job_store.job_format(job),
        "delivery": job.delivery,
        "link_expires_at": when(job.link_expires_at),
        "filters": job_store.job_filters(job),
    }


@dataclasses.dataclass(frozen=True)
class JobRow:
    """One export as the exports page shows it: every value already in words."""

    id: int
    requested: str
    requested_iso: str
    status: str
    kind: str
    filters: list[tuple[str, str]]
    format: str
    rows: str
    size: str | None
    attempts: str
    last_error: str | None
    download_url: str | None
    download_until: str | None

    @classmethod
    def of(cls, job: ExportJob, tz: zoneinfo.ZoneInfo, config: AuditConfig, now: dt.datetime) -> JobRow:
        status, kind = status_words(job, tz)
        url, until = _download(job, tz, config, now)
        return cls(
            id=job.id,
            requested=local_text(job.created_at, tz),
            requested_iso=format_time(job.created_at),
            status=status,
            kind=kind,
            filters=filter_pairs(job_store.job_filters(job), job.timezone),
            format=format_of(job_store.job_format(job)).label,
            rows="—" if job.row_count is None else f"{job.row_count:,}",
            size=None if job.file_size is None else mail.human_size(job.file_size),
            attempts=_attempts(job, config),
            last_error=job.last_error,
            download_url=url,
            download_until=until,
        )


def _attempts(job: ExportJob, config: AuditConfig) -> str:
    if job.status in ("queued", "sending"):
        return f"{job.attempts} of {config.export_max_attempts}"
    return str(job.attempts)


def _download(
    job: ExportJob, tz: zoneinfo.ZoneInfo, config: AuditConfig, now: dt.datetime
) -> tuple[str | None, str | None]:
    """The link to the job's stored file and until when it works, while it does."""
    expires = job.link_expires_at
    if job.status != "sent" or (expires is not None and expires <= now):
        return None, None
    if files.stored_file(config, job.id) is None:
        return None, None
    url = url_for(".export_download", job_id=job.id, token=mail.download_token(job))
    return url, None if expires is None else local_text(expires, tz)
