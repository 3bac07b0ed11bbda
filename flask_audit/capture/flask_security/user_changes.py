"""The user model's own changes → events, written in the flush that makes them.

Flask-Security sends no signal when a user is created outside its sign-up view (``flask
users create``, ``datastore.create_user``), deactivated or activated, deleted, or given or
stripped of a role (``add_role_to_user``, ``remove_role_from_user``, ``flask roles
add|remove``, or any code that changes ``user.roles``). Each flush of a session is read for
such changes on the datastore's user model. Creation, deletion and (de)activation events
are inserted on the flushing connection by :func:`flask_audit.store.recorder.write_in_flush`,
as ``audit.track()`` does: a change and its event commit or roll back together. Role
changes are only noted here, and written as one ``role.updated`` per user as the
transaction commits (:mod:`.role_changes`).
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import current_app
from flask import Flask
from flask import has_app_context

from ...exceptions import AuditWriteError
from ...state import audit_state
from ...store import recorder
from ...store.rows import UnresolvedContext
from ..names import describe_user
from ..roles import names as role_names
from . import role_changes
from .helpers import CONNECTED
from .helpers import current_user
from .helpers import user_model
from .helpers import user_row
from .helpers import view

_REGISTERED = "_flask_audit_fs_registered"  # session.info: users the sign-up view is creating
_SIGN_UP_VIEWS = {"register"}


def announce_sign_up(user: t.Any) -> bool:
    """Let the flush that inserts ``user`` record it as signed up; ``False`` if it cannot.

    Called from ``user_registered``, which Flask-Security sends before it commits the new
    user. A user that is not an SQLAlchemy object is left to the caller.
    """
    try:
        session = sa_orm.object_session(user)
    except sa_orm.exc.UnmappedInstanceError:
        return False
    if session is None:
        return False
    if user in session.new:
        session.info.setdefault(_REGISTERED, []).append(user)
        try:
            session.flush()
        finally:
            session.info.pop(_REGISTERED, None)
    return True  # else an earlier flush of this transaction already recorded it


def after_flush(session: sa_orm.Session, flush_context: t.Any) -> None:
    """Record what this flush does to the current app's Flask-Security users."""
    if not has_app_context():
        return
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    model = user_model(app) if app.extensions.get(CONNECTED) else None
    if model is None or not audit_state(app).config.enabled:
        return
    config = audit_state(app).config
    signed_up = session.info.get(_REGISTERED, [])
    rows: list[dict[str, t.Any]] = []
    try:
        for user in session.new:
            if isinstance(user, model):
                rows.append(_created(config, user, any(user is other for other in signed_up)))
        for user in session.dirty:
            if isinstance(user, model) and session.is_modified(user):
                rows.extend(_activation(config, user))
                role_changes.note(session, app, user)
        for user in session.deleted:
            if isinstance(user, model):
                rows.append(user_row(config, "user.deleted", user, f"Deleted user {describe_user(user)}", {}))
    except UnresolvedContext as err:  # no change commits without its event
        raise AuditWriteError(f"The change could not be recorded: {err}.") from err
    if rows:
        recorder.write_in_flush(app, session, rows)


def _created(config: t.Any, user: t.Any, signed_up: bool) -> dict[str, t.Any]:
    who = describe_user(user)
    if signed_up or view() in _SIGN_UP_VIEWS:
        sign_up: dict[str, t.Any] = {"method": "registration"}
        actor = current_user() or user
        return user_row(config, "user.created", user, f"Signed up as {who}", sign_up, actor=actor)
    roles = role_names(role_changes.history(user, "roles").added)
    details: dict[str, t.Any] = {}
    activity = f"Created user {who}"
    if roles:
        details["roles"] = roles
        activity += f" with {'role' if len(roles) == 1 else 'roles'} {role_changes.listed(roles)}"
    if not getattr(user, "active", True):
        details["active"] = False
        activity += " (inactive)"
    return user_row(config, "user.created", user, activity, details)


def _activation(config: t.Any, user: t.Any) -> list[dict[str, t.Any]]:
    """``user.activated`` or ``user.deactivated``; an unknown old value counts as the opposite."""
    changed = role_changes.history(user, "active")
    if not changed.added:
        return []
    after = bool(changed.added[0])
    before = bool(changed.deleted[0]) if changed.deleted else not after
    if before == after:
        return []
    event_type, verb = ("user.activated", "Activated") if after else ("user.deactivated", "Deactivated")
    return [user_row(config, event_type, user, f"{verb} user {describe_user(user)}", {"active": after})]


def install() -> None:
    """Listen to every session once; the handlers look up the current app's user model."""
    if not sa.event.contains(sa_orm.Session, "after_flush", after_flush):
        sa.event.listen(sa_orm.Session, "after_flush", after_flush)
    role_changes.install()
