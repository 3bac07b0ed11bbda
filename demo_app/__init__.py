"""A small multi-user workspace that records its security and admin activity with flask_audit.

Run it with ``bash scripts/demo.sh``, or ``flask --app demo_app demo init`` and then
``flask --app demo_app run``. Every capture path of the extension is used: Flask-Login
sign-ins, ``signals.login_failed``, ``verify_totp`` for the second factor, ``audit.track``
for teams and roles, the flask_audit signals for members, invitations and two-factor
changes, ``record_sso_change`` for the SSO settings and ``mark_login`` for sign-ins that
are not a password.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import os
import secrets
import typing as t

import sqlalchemy as sa
from flask import current_app
from flask import Flask
from flask import render_template
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from flask_wtf.csrf import generate_csrf
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import ServiceUnavailable

from flask_audit import AuditWriteError

from . import auth
from . import cli
from . import invitations
from . import mailbox
from . import security_settings
from . import workspace
from .extensions import audit
from .extensions import csrf
from .extensions import db
from .extensions import login_manager
from .extensions import mail
from .models import Team
from .models import User

PRODUCT_NAME = "Acme Workspace"
CSRF_MESSAGE = "This form has expired or was sent from another site. Reload the page and try again."


def is_admin(user: t.Any) -> bool:
    """``AUDIT_IS_ADMIN``: workspace admins may read and export the audit log."""
    return getattr(user, "role", None) == "admin"


def _secret_key(app: Flask) -> str:
    """A key kept in the instance folder, so sessions survive a restart of the demo."""
    path = os.path.join(app.instance_path, "secret_key")
    os.makedirs(app.instance_path, exist_ok=True)
    if not os.path.exists(path):
        with open(path, "w", encoding="ascii") as fh:
            fh.write(secrets.token_hex(32))
    with open(path, encoding="ascii") as fh:
        return fh.read().strip()


def _sqlite_pragmas(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    """WAL lets the audit writes and the pages' reads run side by side."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _configure(app: Flask, config: c.Mapping[str, t.Any] | None) -> None:
    app.config.update(
        SQLALCHEMY_DATABASE_URI="sqlite:///demo.db",
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        MAIL_DEFAULT_SENDER=(PRODUCT_NAME, "no-reply@acme.example"),
        AUDIT_URL_PREFIX="/settings/audit-logs",
        AUDIT_IS_ADMIN=is_admin,
        AUDIT_TEAM_LOADER=auth.current_team_name,
        # Where download links in export mail point; FLASK_AUDIT_EXTERNAL_URL sets another.
        AUDIT_EXTERNAL_URL="http://127.0.0.1:5000",
        DEMO_PRODUCT_NAME=PRODUCT_NAME,
        # Cookies go with top-level navigations only, never with another site's forms or frames.
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SAMESITE="Lax",
    )
    # FLASK_MAIL_SERVER=smtp.example.com (and the like) sends real mail instead.
    app.config.from_prefixed_env()
    app.config.update(config or {})
    app.config.setdefault("MAIL_SUPPRESS_SEND", not app.config.get("MAIL_SERVER"))
    # Test each pooled connection before use: after a database restart, requests get a new one.
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(app)


def _error_page(err: HTTPException) -> ResponseReturnValue:
    message = CSRF_MESSAGE if isinstance(err, CSRFError) else None
    return render_template("error.html", error=err, message=message), err.code or 500


def _unavailable(err: Exception) -> ResponseReturnValue:
    """The database, or the audit write an action needs, is down: a 503 to retry, not a 500.

    The page is rendered without the context processors and the signed-in layout: both
    would load the user, and so ask the database again.
    """
    with contextlib.suppress(sa.exc.SQLAlchemyError):
        db.session.rollback()
    page = ServiceUnavailable("The workspace cannot reach its database just now. Try again in a moment.")
    template = current_app.jinja_env.get_template("error.html")
    body = template.render(error=page, message=None, standalone=True, **_layout_context())
    return body, 503, {"Retry-After": "5"}


def _end_session(exc: BaseException | None) -> None:
    """Close the request's session before Flask-SQLAlchemy removes it, and shrug off a
    connection the database ended after the response was made: a restart of the server
    must not turn a finished request into a 500."""
    with contextlib.suppress(sa.exc.OperationalError):
        db.session.close()


def create_app(config: dict[str, t.Any] | None = None) -> Flask:
    """Build the demo app; ``config`` overrides the defaults (tests pass a database URL)."""
    app = Flask(__name__, instance_relative_config=True)
    _configure(app, config)

    db.init_app(app)
    app.teardown_appcontext(_end_session)  # registered after db's, so it runs before it
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            sa.event.listen(db.engine, "connect", _sqlite_pragmas)
    audit.init_app(app, db=db)
    audit.track(Team, entity="Team", fields=["name"])
    audit.track(User, entity="User", fields=["role"], label=lambda user: str(user.email))
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to continue."
    login_manager.login_message_category = "info"
    mail.init_app(app)
    csrf.init_app(app)

    app.register_blueprint(auth.blueprint)
    app.register_blueprint(workspace.blueprint)
    app.register_blueprint(invitations.blueprint)
    app.register_blueprint(security_settings.blueprint)
    mailbox.init_app(app)
    cli.init_app(app)

    app.register_error_handler(HTTPException, _error_page)
    app.register_error_handler(sa.exc.OperationalError, _unavailable)
    app.register_error_handler(AuditWriteError, _unavailable)
    app.context_processor(_layout_context)
    # Not ``csrf_token``: the audit page passes a variable of that name to its templates.
    app.jinja_env.globals["form_token"] = generate_csrf
    return app


def _layout_context() -> dict[str, t.Any]:
    return {
        "product_name": current_app.config["DEMO_PRODUCT_NAME"],
        "mailbox_enabled": mailbox.enabled(current_app),
    }
