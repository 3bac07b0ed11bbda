"""What the Flask-Security receivers share: recording, this request's state, factor names."""

from __future__ import annotations

import contextlib
import typing as t

from flask import current_app
from flask import Flask
from flask import g
from flask import has_app_context
from flask import has_request_context
from flask import request
from flask import session

from ...state import current_audit
from ...store.rows import build_row
from ...taxonomy import EVENT_TYPES

CONNECTED = "audit.flask_security"  # app.extensions key: connect() ran for this app
_REQUEST = "_flask_audit_fs"  # g: what this request has seen so far

_FACTORS = {
    "authenticator": "authenticator app",
    "google_authenticator": "authenticator app",
    "sms": "SMS",
    "email": "email",
    "mail": "email",
    "webauthn": "security key",
    "recovery_code": "recovery code",
    "password": "password",
}


def user_model(app: Flask) -> type | None:
    """The datastore's user class, when Flask-Security is set up on ``app``."""
    datastore = getattr(app.extensions.get("security"), "datastore", None)
    model = getattr(datastore, "user_model", None)
    return model if isinstance(model, type) else None


def context_of(app: Flask) -> t.ContextManager[t.Any]:
    """``app``'s context, pushed unless it is the current one (a commit may come from anywhere)."""
    same = has_app_context() and current_app._get_current_object() is app  # type: ignore[attr-defined]
    return contextlib.nullcontext() if same else app.app_context()


def real(user: t.Any) -> t.Any:
    """The object behind ``current_user``: Flask-Security sometimes passes the proxy itself."""
    get = getattr(user, "_get_current_object", None)
    return get() if callable(get) else user


def record(event_type: str, **fields: t.Any) -> None:
    current_audit().record(event_type, **fields)


def on_user(event_type: str, user: t.Any, activity: str, *, by_user: bool = False, **fields: t.Any) -> None:
    """An event about ``user``'s account; ``by_user`` when they act before being signed in."""
    if event_type not in EVENT_TYPES:
        fields.setdefault("entity", "User")
        fields.setdefault("action", "update")
    if by_user:
        fields["actor"] = user
    record(event_type, target=_target(user), activity=activity, **fields)


def user_row(
    config: t.Any, event_type: str, user: t.Any, activity: str, details: dict[str, t.Any], **fields: t.Any
) -> dict[str, t.Any]:
    """The row of an event about ``user``'s account, to insert in a flush (not recorded here)."""
    if event_type not in EVENT_TYPES:
        fields.setdefault("entity", "User")
        fields.setdefault("action", "update")
    return build_row(config, event_type, activity=activity, target=_target(user), details=details, **fields)


def pop_session(key: str) -> t.Any:
    """``session.pop`` that leaves an untouched session unmodified (no needless cookie)."""
    return session.pop(key) if has_request_context() and key in session else None


def state() -> dict[str, t.Any]:
    state: dict[str, t.Any] | None = g.get(_REQUEST)
    if state is None:
        state = {}
        setattr(g, _REQUEST, state)
    return state


def view() -> str | None:
    """The Flask-Security view handling this request (``"login"``), or ``None``."""
    if not has_request_context() or not request.endpoint:
        return None
    blueprint, _, view = request.endpoint.rpartition(".")
    return view if blueprint == current_app.config.get("SECURITY_BLUEPRINT_NAME", "security") else None


def current_user() -> t.Any:
    from ...store.context import current_user_or_none

    return current_user_or_none()


def _uid(user: t.Any) -> str | None:
    """The primary key: Flask-Security's ``get_id()`` is ``fs_uniquifier``, which rotates."""
    value = getattr(user, "id", None)
    return None if value is None else str(value)


def is_self(user: t.Any) -> bool:
    """Whether the signed-in user acts on their own account (not an admin or the CLI)."""
    current = current_user()
    return current is not None and _uid(current) == _uid(user)


def factor(method: str | None) -> str:
    return _FACTORS.get(method or "", (method or "unknown").replace("_", " "))


def value_before(user: t.Any, attribute: str) -> t.Any:
    """The value ``attribute`` had before this unflushed change, when SQLAlchemy knows it."""
    import sqlalchemy as sa

    try:
        history = sa.inspect(user).attrs[attribute].history
    except (sa.exc.NoInspectionAvailable, KeyError, AttributeError):
        return None
    return history.deleted[0] if history.added and history.deleted else None


def _target(user: t.Any) -> tuple[str, str] | None:
    uid = _uid(user)
    return None if uid is None else ("user", uid)
