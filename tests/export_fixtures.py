"""Shared by the export tests: a real SMTP server, the site with its users, events, CSRF.

``running_smtp_server()`` starts an aiosmtpd server on a free port of 127.0.0.1 that keeps every
message it receives; it can be stopped and started again on the same port, so a test can
show a mail server that is down, then up, and it can be told to answer ``DATA`` or ``RCPT``
with an error reply. ``build_site`` makes the test app with Flask-Mail (or Flask-Mailman, or
no mailer) pointed at it, export files in a temporary folder, and four users: two admins
and a member of tenant ``acme`` and an admin of tenant ``globex``.

Until ``flask_audit/views.py`` calls :func:`flask_audit.export.views.add_export_routes` on
its blueprint, :func:`build_site` mounts the same views on the app under the blueprint's
endpoint names (``audit.export``...), so the blueprint's own admin check runs first, as it
will once they are integrated; the blueprint itself is left alone for the other tests.
"""

from __future__ import annotations

import codecs
import collections.abc as c
import contextlib
import csv
import dataclasses
import datetime as dt
import email
import email.message
import email.policy
import html.parser
import io
import shutil
import socket
import tempfile
import time
import typing as t
import urllib.parse
import weakref

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from flask_login import current_user
from flask_mail import Mail
from flask_mailman import Mail as Mailman
from flask_wtf.csrf import generate_csrf
from werkzeug.test import TestResponse

from flask_audit.export import job_store
from flask_audit.export import jobs
from flask_audit.export.views import routes
from flask_audit.query.filters import AuditFilter
from flask_audit.store.models import audit_event_table
from flask_audit.store.models import export_job_table
from flask_audit.store.models import ExportJob
from flask_audit.store.rows import build_row

from .apps import add_user
from .conftest import audit_of
from .conftest import signed_in_client

PREFIX = "/admin/audit"
TENANT_LOADER = "tests.export_fixtures:tenant_of_current_user"
SENDER = "audit@example.com"


def tenant_of_current_user() -> str | None:
    """The tenant loader of the multi-tenant tests: the signed-in user's tenant."""
    if not current_user or not current_user.is_authenticated:
        return None
    return t.cast("str | None", current_user.tenant)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Inbox:
    """An aiosmtpd handler that keeps each message, parsed, with its envelope."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.recipients: list[list[str]] = []
        #: Replies that refuse a message instead of accepting it, such as ``"451 Try later"``.
        self.data_reply: str | None = None
        self.rcpt_reply: str | None = None

    async def handle_RCPT(
        self, server: t.Any, session: t.Any, envelope: t.Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: t.Any, session: t.Any, envelope: t.Any) -> str:
        if self.data_reply:
            return self.data_reply
        raw = envelope.original_content or envelope.content
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        self.messages.append(parsed)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server on ``port``, which a test may stop and start."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[email.message.EmailMessage]:
        return self.inbox.messages

    def start(self) -> None:
        if self._controller is None:
            self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
            self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def config(self) -> dict[str, t.Any]:
        """The Flask-Mail and Flask-Mailman settings that send to this server for real, even
        with TESTING."""
        return {
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": self.port,
            "MAIL_SUPPRESS_SEND": False,
            "MAIL_BACKEND": "smtp",
            "MAIL_DEFAULT_SENDER": SENDER,
        }


@contextlib.contextmanager
def running_smtp_server() -> c.Iterator[SmtpServer]:
    """A running SMTP server that keeps what it receives (the ``smtp_server`` fixtures)."""
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclasses.dataclass
class Site:
    """The app under test with four users."""

    app: Flask
    admin: int
    second_admin: int
    member: int
    other_admin: int

    def client(self, user_id: int | None = None) -> FlaskClient:
        """A test client, signed in as ``user_id`` (anonymous with ``None``)."""
        return signed_in_client(self.app, user_id)

    def download(self, user_id: int | None, link: str, **kwargs: t.Any) -> TestResponse:
        """GET a download ``link`` as ``user_id``, reading the whole body (which closes the file)."""
        return self.client(user_id).get(local(link) if "://" in link else link, buffered=True, **kwargs)

    def csrf(self, client: FlaskClient) -> str:
        """A CSRF token bound to ``client``'s session."""
        return client.get("/test-csrf").get_data(as_text=True)

    def export(self, client: FlaskClient, **form: str) -> TestResponse:
        """POST the export form with a valid CSRF token."""
        return self._post_export(client, form, {})

    def export_with_headers(self, client: FlaskClient, headers: dict[str, str], **form: str) -> TestResponse:
        """:meth:`export` with these request headers."""
        return self._post_export(client, form, headers)

    def export_json(self, client: FlaskClient, **form: str) -> TestResponse:
        """:meth:`export`, asking for JSON."""
        return self._post_export(client, form, {"Accept": "application/json"})

    def _post_export(
        self, client: FlaskClient, form: dict[str, str], headers: dict[str, str]
    ) -> TestResponse:
        data = {"csrf_token": self.csrf(client), **form}
        host = headers.get("Host")
        if host:  # the same signed-in session, sent to whatever host the request names
            name = self.app.config["SESSION_COOKIE_NAME"]
            session = client.get_cookie(name, domain=self.app.config["SERVER_NAME"] or "localhost")
            assert session is not None
            client.set_cookie(name, session.value, domain=host)
        return client.post(f"{PREFIX}/export", data=data, headers=headers)

    @property
    def engine(self) -> sa.Engine:
        with self.app.app_context():
            return audit_of(self.app)._state().engine

    def queued_job(self, user_id: int | None = None, email: str = "admin@acme.test") -> int:
        """A job an acme admin (``admin`` by default) asked for (every event, UTC), not yet run."""
        return job_store.create_job(
            self.engine,
            requested_by_id=str(user_id or self.admin),
            requested_by_email=email,
            tenant_scoped=True,
            tenant_id="acme",
            team=None,
            flt=AuditFilter(),
            timezone="UTC",
        )

    def insert(self, *rows: dict[str, t.Any]) -> None:
        """Store events (from :meth:`event`) in one statement, bypassing ``record()``."""
        with self.engine.begin() as conn:
            conn.execute(sa.insert(audit_event_table), list(rows))

    def event(self, kind: str = "team.created", **fields: t.Any) -> dict[str, t.Any]:
        """The row ``record()`` builds for ``kind``, with ``fields`` (any column) on top."""
        with self.app.app_context():
            row = build_row(audit_of(self.app).config, kind, actor=None)
        row.update(fields)
        row.setdefault("occurred_at", dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1))
        return row

    def jobs(self) -> list[ExportJob]:
        """Every export job, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(export_job_table).order_by(export_job_table.c.id))
            return [ExportJob(**row._asdict()) for row in rows]

    def job(self, job_id: int | None = None) -> ExportJob:
        """One job (the only one by default)."""
        if job_id is None:
            [only] = self.jobs()
            return only
        return next(job for job in self.jobs() if job.id == job_id)

    def update_job(self, job_id: int, **values: t.Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(export_job_table).where(export_job_table.c.id == job_id).values(**values))

    def wait(self, timeout: float = 30.0) -> None:
        """Wait for the inline export threads of this process."""
        assert jobs.wait_for_threads(timeout), "the export thread did not finish"


def build_site(
    make_app: c.Callable[..., Flask], smtp: SmtpServer | None, *, mailer: object = "mail", **config: t.Any
) -> Site:
    """The app under test with ``mailer`` (``"mail"``: Flask-Mail, ``"mailman"``: Flask-Mailman,
    None: neither) pointed at ``smtp``, and the packaged templates.

    Export files go to a temporary folder (unless ``AUDIT_EXPORT_DIR`` is given), removed
    with the app.
    """
    if "AUDIT_EXPORT_DIR" not in config:
        config["AUDIT_EXPORT_DIR"] = tempfile.mkdtemp(prefix="flask-audit-exports-")
    app = make_app(**{**(smtp.config() if smtp else {}), **config})
    weakref.finalize(app, shutil.rmtree, config["AUDIT_EXPORT_DIR"], True)
    app.template_folder = None  # tests/templates overrides the page for another test
    if mailer == "mail":
        Mail(app)
    elif mailer == "mailman":
        Mailman(app)

    @app.get("/test-csrf")
    def test_csrf() -> str:
        return generate_csrf()  # type: ignore[no-any-return]

    if "audit.export" not in app.view_functions:
        for rule, endpoint, view, methods in routes():
            app.add_url_rule(PREFIX + rule, f"audit.{endpoint}", view, methods=methods)
    return Site(
        app=app,
        admin=add_user(app, "admin@acme.test", is_admin=True, tenant="acme"),
        second_admin=add_user(app, "second@acme.test", is_admin=True, tenant="acme"),
        member=add_user(app, "member@acme.test", tenant="acme"),
        other_admin=add_user(app, "admin@globex.test", is_admin=True, tenant="globex"),
    )


def attachment(message: email.message.EmailMessage) -> tuple[str, str, bytes]:
    """The one attachment of ``message``: file name, content type, bytes."""
    [part] = list(message.iter_attachments())
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return str(part.get_filename()), part.get_content_type(), payload


def link_in(message: email.message.EmailMessage) -> str:
    """The one download link in ``message``'s text."""
    [link] = [line for line in text_body(message).splitlines() if line.startswith(("http://", "https://"))]
    return link


def local(link: str) -> str:
    """The path and query of ``link``: what the test client, whose session cookie is for
    ``localhost``, requests."""
    parts = urllib.parse.urlsplit(link)
    return f"{parts.path}?{parts.query}"


def json_of(response: TestResponse) -> dict[str, t.Any]:
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def read_csv(data: bytes) -> list[list[str]]:
    """Parse an export's CSV bytes as the stdlib reader does (RFC 4180 quoting), after
    checking that they start with the UTF-8 byte order mark every CSV export carries."""
    assert data.startswith(codecs.BOM_UTF8), data[:20]
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def text_body(message: email.message.EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return t.cast(str, body.get_content())


def html_body(message: email.message.EmailMessage) -> str:
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    return t.cast(str, body.get_content())


def wait_until(check: c.Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll ``check`` until it holds (for state another thread changes)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for the export thread"
        time.sleep(0.02)


@dataclasses.dataclass
class Form:
    """One ``<form>`` of a page, as a browser without JavaScript would submit it."""

    attrs: dict[str, str]
    #: ``(name, value)`` of every successful control: inputs (checked boxes and radios
    #: only), the selected option of each select, textareas.
    fields: list[tuple[str, str]]
    #: The values each radio group offers, checked or not.
    choices: dict[str, list[str]]

    def values(self) -> dict[str, str]:
        return dict(self.fields)


class _FormReader(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(Form(found, [], {}))
        elif not self.forms:
            return
        elif tag == "input" and "name" in found:
            self._input(found)
        elif tag == "select":
            self._select, self._options = found.get("name"), []
        elif tag == "option" and self._select is not None:
            self._options.append((found.get("value", ""), "selected" in found))
        elif tag == "textarea":
            self._textarea, self._text = found.get("name"), ""

    def _input(self, found: dict[str, str]) -> None:
        form, kind = self.forms[-1], found.get("type", "text")
        if kind in ("radio", "checkbox"):
            form.choices.setdefault(found["name"], []).append(found.get("value", "on"))
            if "checked" not in found:
                return
        if kind not in ("submit", "button", "image", "reset"):
            form.fields.append((found["name"], found.get("value", "")))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None:
            chosen = [value for value, selected in self._options if selected] or [
                value for value, _ in self._options[:1]
            ]
            self.forms[-1].fields.extend((self._select, value) for value in chosen[-1:])
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.forms[-1].fields.append((self._textarea, self._text))
            self._textarea = None


def forms_of(page: str) -> list[Form]:
    """The forms of an HTML page, in document order."""
    reader = _FormReader()
    reader.feed(page)
    reader.close()
    return reader.forms
