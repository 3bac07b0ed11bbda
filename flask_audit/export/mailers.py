"""The app's own mailer, Flask-Mail or Flask-Mailman, and which of its errors a retry can fix.

The mailer is looked up when a mail is sent, in ``app.extensions``: ``"mail"`` (Flask-Mail)
first, then ``"mailman"`` (Flask-Mailman, which Flask-Security-Too's documentation uses), so
the order in which the app sets up its extensions does not matter and nothing needs
configuring twice.

A runner retries only what may succeed later: a refused connection, a dropped one, or an
SMTP 4xx reply. A missing mailer or sender, settings that contradict each other, or an
SMTP 5xx reply (bad credentials, a refused sender or recipient) fail the job at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import smtplib
import typing as t

from flask import current_app
from flask import Flask

from ..exceptions import AuditConfigError

#: The extension names looked up, in order of preference.
MAILERS = ("mail", "mailman")
NO_MAILER = (
    "Audit log exports are sent by email, and this app has no mailer set up: install and set up"
    " Flask-Mail (flask_mail.Mail(app)) or Flask-Mailman (flask_mailman.Mail(app))."
)
NO_SENDER = "Set MAIL_DEFAULT_SENDER: the export mail needs a sender address."


@dataclasses.dataclass(frozen=True)
class Outgoing:
    """One mail to one recipient, with an optional ``(file name, content type, bytes)``."""

    subject: str
    recipient: str
    body: str
    html: str
    attachment: tuple[str, str, bytes] | None = None


def mailer_name(app: Flask) -> str | None:
    """``"mail"`` or ``"mailman"``: the extension that sends ``app``'s mail; None without one."""
    return next((name for name in MAILERS if app.extensions.get(name) is not None), None)


def send(message: Outgoing) -> None:
    """Send ``message`` through the current app's mailer; raise if it was not accepted.

    :raises AuditConfigError: no mailer, no sender, or settings the mailer refuses.
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    name = mailer_name(app)
    if name is None:
        raise AuditConfigError(NO_MAILER)
    state = app.extensions[name]
    try:
        if name == "mail":
            _send_with_flask_mail(state, message)
        else:
            _send_with_flask_mailman(state, message)
    except (ValueError, TypeError) as err:  # e.g. MAIL_USE_TLS and MAIL_USE_SSL both set
        raise AuditConfigError(f"The mail settings are invalid: {err}") from err


def _send_with_flask_mail(state: t.Any, message: Outgoing) -> None:
    from flask_mail import Message

    mail = Message(
        subject=message.subject, recipients=[message.recipient], body=message.body, html=message.html
    )
    if not mail.sender:
        raise AuditConfigError(NO_SENDER)
    if message.attachment is not None:
        name, content_type, data = message.attachment
        mail.attach(name, content_type, data)
    state.send(mail)


def _send_with_flask_mailman(state: t.Any, message: Outgoing) -> None:
    from flask_mailman import EmailMultiAlternatives

    if not state.default_sender:
        raise AuditConfigError(NO_SENDER)
    try:
        connection = state.get_connection()
    except RuntimeError as err:  # an unknown MAIL_BACKEND
        raise AuditConfigError(f"The mail settings are invalid: {err}") from err
    mail = EmailMultiAlternatives(
        message.subject, message.body, None, [message.recipient], connection=connection
    )
    mail.attach_alternative(message.html, "text/html")
    if message.attachment is not None:
        name, content_type, data = message.attachment
        mail.attach(name, data, content_type)
    try:
        mail.send()
    finally:  # Flask-Mailman leaves the connection open when the server refuses
        with contextlib.suppress(Exception):
            connection.close()


def is_permanent(err: BaseException) -> bool:
    """Whether trying again cannot help: a setting to fix, or an SMTP 5xx reply."""
    if isinstance(err, AuditConfigError | smtplib.SMTPNotSupportedError):
        return True
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        codes = [reply[0] for reply in err.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    if isinstance(err, smtplib.SMTPConnectError):  # a greeting refused: often a busy server
        return False
    if isinstance(err, smtplib.SMTPResponseException):
        return 500 <= err.smtp_code < 600
    return False
