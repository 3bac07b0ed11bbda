"""The development mailbox: every message the app sends while no SMTP server is configured.

With ``MAIL_SUPPRESS_SEND`` on, Flask-Mail still sends its ``email_dispatched`` signal;
the receiver stores each message, attachments included, so invitation links and audit
exports can be opened at ``/dev/mailbox``. The message is stored on its own connection,
so a sender that never commits (a background export job, say) cannot lose it.

Everyone's mail is in one place, so only workspace admins may open it: an invitation link
read by anyone else is a way in, and an export attachment is the audit log itself.
"""

from __future__ import annotations

import email.utils
import io
import re
import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import abort
from flask import Blueprint
from flask import Flask
from flask import render_template
from flask import Response
from flask import send_file
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_mail import email_dispatched
from markupsafe import escape
from markupsafe import Markup

from .extensions import db
from .extensions import login_manager
from .models import MailAttachment
from .models import MailMessage

blueprint = Blueprint("mailbox", __name__, url_prefix="/dev/mailbox")
ADMINS_ONLY = (
    "The development mailbox is for workspace admins only: it holds everyone's invitations and exports."
)

_URL = re.compile(r"https?://[^\s<>\"']+")


def enabled(app: Flask) -> bool:
    return bool(app.config.get("MAIL_SUPPRESS_SEND"))


def _address(value: t.Any) -> str:
    if isinstance(value, tuple | list):
        return email.utils.formataddr((str(value[0]), str(value[1])))
    return str(value)


def _text(value: t.Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def store(sender: Flask, message: t.Any, **extra: t.Any) -> None:
    """Keep one dispatched message and its attachments."""
    row = MailMessage(
        sender=_address(message.sender)[:320],
        recipients=", ".join(_address(each) for each in message.send_to)[:2000],
        subject=_text(message.subject)[:500],
        body=_text(message.body),
        html=_text(message.html) if message.html else None,
        attachments=[
            MailAttachment(
                filename=(attachment.filename or "attachment")[:255],
                content_type=(attachment.content_type or "application/octet-stream")[:255],
                data=attachment.data.encode() if isinstance(attachment.data, str) else attachment.data,
            )
            for attachment in message.attachments
        ],
    )
    with sa_orm.Session(db.engine) as session:
        session.add(row)
        session.commit()


def linkify(text: str) -> Markup:
    """Plain text with its web addresses made clickable, everything else escaped."""
    parts, last = [], 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,)")
        parts += [escape(text[last : match.start()]), Markup('<a href="{0}">{0}</a>').format(url)]
        last = match.start() + len(url)
    parts.append(escape(text[last:]))
    return Markup("").join(parts)


@blueprint.before_request
def _admins_only() -> ResponseReturnValue | None:
    """Anonymous visitors go to sign in; members get 403."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()  # type: ignore[no-any-return]
    if not getattr(current_user, "is_admin", False):
        abort(403, ADMINS_ONLY)
    return None


@blueprint.get("/")
def index() -> ResponseReturnValue:
    query = sa.select(MailMessage).order_by(MailMessage.id.desc()).limit(200)
    return render_template("mailbox/index.html", messages=list(db.session.scalars(query)))


@blueprint.get("/<int:message_id>")
def message(message_id: int) -> ResponseReturnValue:
    row = db.get_or_404(MailMessage, message_id)
    return render_template("mailbox/message.html", message=row, body=linkify(row.body))


@blueprint.get("/<int:message_id>/attachments/<int:attachment_id>")
def attachment(message_id: int, attachment_id: int) -> ResponseReturnValue:
    row = db.get_or_404(MailAttachment, attachment_id)
    if row.message_id != message_id:
        return Response("No such attachment.", status=404)
    return send_file(io.BytesIO(row.data), row.content_type, as_attachment=True, download_name=row.filename)


def init_app(app: Flask) -> None:
    """Capture this app's mail and mount the mailbox, when mail is not really sent."""
    if not enabled(app):
        return
    email_dispatched.connect(store, sender=app)
    app.register_blueprint(blueprint)
    app.add_template_filter(linkify)
