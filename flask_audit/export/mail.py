"""The export mail: the file attached, or a signed link to the stored file when it is too large.

Sent through the app's own mailer (see :mod:`flask_audit.export.mailers`) to the requesting
admin's own address. A file over ``AUDIT_EXPORT_COMPRESS_ABOVE_BYTES`` (1 MiB) is attached
gzip-compressed; when the attachment would still exceed ``AUDIT_EXPORT_ATTACHMENT_MAX_BYTES``
(10 MiB) the mail carries a link to the stored file (see :mod:`flask_audit.export.files`),
signed with the app's ``SECRET_KEY`` and valid for ``AUDIT_EXPORT_LINK_MAX_AGE`` seconds,
that works only for the same admin, signed in, in the same tenant. The link starts with the
configured site address (:mod:`flask_audit.export.links`), never a request's ``Host``;
without one, a file too large to attach fails the job, with the setting named. The
exports page links to the same stored file, attached or not, for as long.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import tempfile
import typing as t

from flask import current_app
from flask import render_template
from itsdangerous import URLSafeTimedSerializer

from ..exceptions import AuditConfigError
from . import links
from . import mailers
from .formats import format_of
from .job_store import job_filters
from .job_store import job_format
from .words import filter_pairs

if t.TYPE_CHECKING:
    from ..config import AuditConfig
    from ..store.models import ExportJob
    from .csv_export import ExportStats

SUBJECT = "Your audit log export"
TOKEN_SALT = "flask-audit.export-download"
CSV_TYPE = "text/csv; charset=utf-8"
GZIP_TYPE = "application/gzip"
_COPY_CHUNK = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Delivery:
    """How the file went out, ``"attachment"`` or ``"link"``, and until when its stored copy
    may be downloaded (through the mail's link or the exports page)."""

    method: str
    filename: str
    size: int
    compressed: bool
    link_expires_at: dt.datetime | None = None


def serializer() -> URLSafeTimedSerializer:
    """Signs download tokens with the app's ``SECRET_KEY``, apart from its other tokens."""
    if not current_app.secret_key:
        raise AuditConfigError("Export download links are signed with SECRET_KEY: set it on the app.")
    return URLSafeTimedSerializer(current_app.secret_key, salt=TOKEN_SALT)


def download_token(job: ExportJob) -> str:
    """A token naming the job and the admin it belongs to."""
    return serializer().dumps({"job": job.id, "user": job.requested_by_id})


def read_download_token(token: str, max_age: int) -> dict[str, t.Any]:
    """The token's payload; raises :class:`itsdangerous.BadSignature` (or its subclass
    :class:`~itsdangerous.SignatureExpired`) when it was altered or is too old."""
    payload = serializer().loads(token, max_age=max_age)
    return payload if isinstance(payload, dict) else {}


def file_name(job: ExportJob, *, compressed: bool = False) -> str:
    extension = format_of(job_format(job)).extension
    return f"audit-log-{job.created_at:%Y%m%d-%H%M%S}-{job.id}.{extension}" + (".gz" if compressed else "")


def _attachment(file: t.BinaryIO, size: int, config: AuditConfig) -> tuple[bytes, bool] | None:
    """The bytes to attach and whether they are gzipped; None when they would be too large."""
    limit = config.export_attachment_max_bytes
    file.seek(0)
    if size <= config.export_compress_above_bytes:
        return (file.read(), False) if size <= limit else None
    with tempfile.TemporaryFile(prefix="flask-audit-export-gz-") as packed:
        with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as writer:
            while chunk := file.read(_COPY_CHUNK):
                writer.write(chunk)
                if packed.tell() > limit:
                    return None
        if packed.tell() > limit:
            return None
        packed.seek(0)
        return packed.read(), True


def send_export(job: ExportJob, file: t.BinaryIO, stats: ExportStats, config: AuditConfig) -> Delivery:
    """Mail the export in ``file``, already stored, to the admin who asked; raise if that fails."""
    attached = _attachment(file, stats.bytes, config)
    expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=config.export_link_max_age)
    link = None
    if attached is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        link = links.download_link(app, job.id, download_token(job))
        if link is None:
            raise AuditConfigError(
                f"The export is {human_size(stats.bytes)}, too large to attach"
                f" (AUDIT_EXPORT_ATTACHMENT_MAX_BYTES), and no download link can be made:"
                " set AUDIT_EXTERNAL_URL to the site's public address, such as 'https://app.example.com'."
            )
        compressed = stats.bytes > config.export_compress_above_bytes
        delivery = Delivery("link", file_name(job, compressed=compressed), stats.bytes, compressed, expires)
    else:
        data, compressed = attached
        name = file_name(job, compressed=compressed)
        delivery = Delivery("attachment", name, len(data), compressed, expires)
    fmt = format_of(job_format(job))
    context = {
        "job": job,
        "stats": stats,
        "delivery": delivery,
        "link": link,
        "filters": describe(job),
        "size": human_size(stats.bytes),
        "format": fmt,
    }
    content_type = GZIP_TYPE if delivery.compressed else fmt.attachment_type
    mailers.send(
        mailers.Outgoing(
            subject=SUBJECT,
            recipient=job.requested_by_email,
            body=render_template("flask_audit/email/export.txt", **context),
            html=render_template("flask_audit/email/export.html", **context),
            attachment=None if attached is None else (delivery.filename, content_type, attached[0]),
        )
    )
    return delivery


def describe(job: ExportJob) -> list[tuple[str, str]]:
    """The job's filters as (label, value) pairs for the mail, times in the job's zone."""
    return filter_pairs(job_filters(job), job.timezone)


def human_size(size: int) -> str:
    """``size`` bytes as people read it: ``"950 bytes"``, ``"12.3 MB"``."""
    if size < 1000:
        return f"{size} bytes"
    value, unit = size / 1000, "kB"
    for bigger in ("MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit}"
