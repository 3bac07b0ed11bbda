"""Flask-Login's signals → ``user.login`` and ``user.logout``.

Flask-Login announces sign-in, sign-out and a remember-me restore, but not a failed
sign-in: apps send :data:`flask_audit.signals.login_failed` for that. When
Flask-Security-Too is set up on the app, its adapter owns ``user.login`` (it knows how the
user authenticated and which re-logins are not sign-ins), so sign-ins are skipped here.
"""

from __future__ import annotations

import typing as t

from flask import Flask
from flask import g
from flask import has_app_context
from flask import has_request_context
from flask import session

from ..state import current_audit
from ..state import Recorder
from .names import describe_user

_METHOD = "_flask_audit_login_method"
_DETAILS = "_flask_audit_login_details"
_METHOD_LABELS = {
    "sso": "SSO",
    "magic_link": "a magic link",
    "webauthn": "a security key",
    "oauth": "OAuth",
    "ldap": "LDAP",
    "saml": "SAML",
    "remote_user": "REMOTE_USER",
}
#: What ``login_user()`` and a remember-me restore put in the session.
_SIGN_IN_KEYS = ("_user_id", "_fresh", "_id", "_remember", "_remember_seconds")


def mark_login(method: str, **details: t.Any) -> None:
    """Say how the sign-in about to happen was made (``"sso"``, ``"magic_link"``, ...).

    Call it before ``login_user()``; the ``user.login`` event then carries
    ``details.method`` and these details. Without it the method is ``"password"``.
    """
    setattr(g, _METHOD, method)
    setattr(g, _DETAILS, details)


def pop_login_mark() -> tuple[str, dict[str, t.Any]]:
    """Take what :func:`mark_login` said (``("password", {})`` if nothing), once."""
    return g.pop(_METHOD, "password"), g.pop(_DETAILS, {})


def _audit(app: Flask) -> Recorder:
    return current_audit(app)


def record_sign_in(app: Flask, user: t.Any, **fields: t.Any) -> None:
    """Record ``user.login``; if the event cannot be stored, the sign-in does not stand."""
    _audit(app).record("user.login", actor=user, **fields)


def _take_back_sign_in(app: Flask, event: t.Any = None, spooled: bool = True, **extra: t.Any) -> None:
    """A ``user.login`` that could not be stored, nor spooled: sign the browser out again.

    Flask saves the session even for an error response, so under ``AUDIT_ON_WRITE_ERROR =
    "raise"`` the browser would otherwise leave signed in (and remembered) with no event.
    This runs wherever the write failed: at once, or when an SQLite write deferred to the
    end of the request's transaction fails there.
    """
    if spooled or getattr(event, "event_type", None) != "user.login" or not has_request_context():
        return
    for key in _SIGN_IN_KEYS:
        session.pop(key, None)
    login_manager = getattr(app, "login_manager", None)
    if login_manager is not None:
        login_manager._update_request_context_with_user()  # back to anonymous


def _on_login(app: Flask, user: t.Any = None, **extra: t.Any) -> None:
    if not has_app_context() or app.extensions.get("security") is not None:
        return
    method, marked = pop_login_mark()
    details = {"method": method, **marked}
    label = _METHOD_LABELS.get(method, method.replace("_", " "))
    sentence = "Signed in" if method == "password" else f"Signed in with {label}"
    record_sign_in(app, user, activity=sentence, details=details)


def _on_cookie(app: Flask, user: t.Any = None, **extra: t.Any) -> None:
    if not has_app_context():
        return
    record_sign_in(
        app, user, activity="Signed in with a remember-me cookie", details={"method": "remember_cookie"}
    )


def _on_logout(app: Flask, user: t.Any = None, **extra: t.Any) -> None:
    # Flask-Login announces a logout even when nobody was signed in.
    if not has_app_context() or user is None or not getattr(user, "is_authenticated", False):
        return
    _audit(app).record("user.logout", actor=user)


def _on_login_failed(
    app: Flask,
    email: str | None = None,
    reason: str = "invalid_credentials",
    user: t.Any = None,
    **extra: t.Any,
) -> None:
    if not has_app_context():
        return
    who = describe_user(user) if user is not None else (email or "an unknown user")
    _audit(app).record(
        "user.login_failed",
        actor=user,
        actor_email=email if user is None else describe_user(user),
        activity=f"Failed sign-in for {who} ({reason.replace('_', ' ')})",
        details={"reason": reason, "email": email, **extra.get("details", {})},
    )


def connect(app: Flask) -> None:
    """Connect the receivers for ``app``'s signals only."""
    from flask_login import user_loaded_from_cookie
    from flask_login import user_logged_in
    from flask_login import user_logged_out

    from ..signals import login_failed
    from ..signals import write_failed

    user_logged_in.connect(_on_login, sender=app)
    user_loaded_from_cookie.connect(_on_cookie, sender=app)
    user_logged_out.connect(_on_logout, sender=app)
    login_failed.connect(_on_login_failed, sender=app)
    write_failed.connect(_take_back_sign_in, sender=app)
