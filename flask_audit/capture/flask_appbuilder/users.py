"""FAB users created, changed and deleted, read from the ORM flush that writes them.

FAB's user admin writes through its generic model views (``SQLAInterface``), not through
the security manager, so its ``user_*`` signals miss most changes; the flush sees them all,
from the admin views, ``add_user``/``update_user``/``delete_user``, ``reset_password`` and
the ``flask fab`` commands alike. Events go in with :func:`~flask_audit.store.recorder.write_in_flush`,
inside the change's own transaction. What a sign-in bumps (``login_count``,
``fail_login_count``, ``last_login``) and FAB's bookkeeping (``changed_on``...) are not
changes anyone made.

A user who makes their own account is its actor, and ``details.method`` says how:
``registration`` (FAB's registration form, when the emailed link activates it) or the
sign-in method that created it on a first sign-in (``oauth``, ``ldap``... with
``AUTH_USER_REGISTRATION``). Roles that a sign-in syncs from the identity provider
(``AUTH_ROLES_SYNC_AT_LOGIN``) are that user's doing too. The same flush hands the roles it
changes to :mod:`.roles`.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import current_app
from flask import has_app_context

from ...store import recorder
from ...store.context import current_user_or_none
from ...store.context import stable_id
from ..names import describe_user
from ..roles import names as role_names
from . import role_side
from . import roles
from . import sign_in
from .rows import CONNECTED
from .rows import Rows

#: The columns whose changes are ``user.updated``; the password has an event of its own.
FIELDS = ("username", "email", "first_name", "last_name", "active")


def _collection(user: t.Any, name: str) -> tuple[list[str], list[str]] | None:
    """Whole before and after of a changed collection (names, sorted), else ``None``."""
    history = sa.inspect(user).attrs[name].history
    if not history.has_changes():
        return None
    kept = list(history.unchanged or ())
    before = role_names([*kept, *(history.deleted or ())])
    after = role_names([*kept, *(history.added or ())])
    return None if before == after else (before, after)


def _changes(user: t.Any) -> dict[str, list[t.Any]]:
    state = sa.inspect(user)
    out: dict[str, list[t.Any]] = {}
    for name in FIELDS:
        history = state.attrs[name].history
        if history.has_changes():
            before = history.deleted[0] if history.deleted else None
            after = history.added[0] if history.added else None
            if before != after:
                out[name] = [before, after]
    return out


def _password_changed(user: t.Any) -> bool:
    history = sa.inspect(user).attrs.password.history
    return bool(history.added) and bool(history.deleted) and history.added[0] != history.deleted[0]


def _label(user: t.Any) -> str:
    username = getattr(user, "username", None)
    email = getattr(user, "email", None)
    return f"{username} ({email})" if username and email and username != email else str(username or email)


def _target(user: t.Any) -> tuple[str, t.Any]:
    return ("user", stable_id(user))


def _created(rows: Rows, user: t.Any, sm: t.Any) -> None:
    values = {name: getattr(user, name, None) for name in FIELDS}
    names = role_names(getattr(user, "roles", None) or ())
    details: dict[str, t.Any] = {"values": values, "roles": names}
    method = sign_in.signing_up(sm)
    if method is None:
        rows.add("user.created", _target(user), f"Created user {_label(user)}", details)
        return
    details["method"] = method  # the user made their own account: they are the actor
    activity = f"Signed up as {_label(user)}{sign_in.label(method)}"
    rows.add("user.created", _target(user), activity, details, actor=user)


def _deleted(rows: Rows, user: t.Any) -> None:
    values = {name: getattr(user, name, None) for name in ("username", "email")}
    details = {"values": values, "roles": role_names(getattr(user, "roles", None) or ())}
    rows.add("user.deleted", _target(user), f"Deleted user {_label(user)}", details)


def _roles_changed(rows: Rows, user: t.Any, before: list[str], after: list[str]) -> None:
    activity = (
        f"Changed roles of {_label(user)} from {', '.join(before) or 'none'} to {', '.join(after) or 'none'}"
    )
    details = {"user": describe_user(user), "before": before, "after": after}
    method = sign_in.signing_in()
    if method is None:
        rows.add("role.updated", _target(user), activity, details)
    else:  # synced from the identity provider as the user signs in (AUTH_ROLES_SYNC_AT_LOGIN)
        rows.add("role.updated", _target(user), activity, {**details, "method": method}, actor=user)


def _updated(rows: Rows, user: t.Any, roles_known: bool) -> None:
    """``roles_known``: the role side's change of this flush already holds the user's roles."""
    label = _label(user)
    changed = None if roles_known else _collection(user, "roles")
    if changed is not None:
        _roles_changed(rows, user, *changed)
    changes = _changes(user)
    if "groups" in sa.inspect(user).attrs:
        groups = _collection(user, "groups")
        if groups is not None:
            changes["groups"] = list(groups)
    if changes:
        activity = f"Updated user {label}: {', '.join(sorted(changes))}"
        rows.add("user.updated", _target(user), activity, {"changes": changes})
    if _password_changed(user):
        actor = current_user_or_none()
        if actor is not None and stable_id(actor) == stable_id(user):
            rows.add("user.password_changed", _target(user), "Changed password", {"method": "change"})
        else:
            who = describe_user(user)
            by_admin = {"method": "admin", "by_admin": True, "user": who}
            rows.add("user.password_changed", _target(user), f"Changed the password of {who}", by_admin)


def _security_manager() -> tuple[t.Any, t.Any] | None:
    """The audit extension and FAB's security manager, when the current app has both hooked."""
    if not has_app_context():
        return None
    app = current_app
    audit = app.extensions.get("audit")
    appbuilder = app.extensions.get("appbuilder")
    if audit is None or appbuilder is None or not app.extensions.get(CONNECTED):
        return None
    return audit, appbuilder.sm


def _after_flush(session: sa_orm.Session, flush_context: t.Any) -> None:
    found = _security_manager()
    if found is None or not found[0].config.enabled:
        return
    audit, sm = found
    user_model, role_model = sm.user_model, sm.role_model
    users = user_model not in getattr(audit, "_tracked", {})  # else the app tracks it: its events win
    from_roles = role_side.flushed(session)
    rows = Rows(audit.config)
    for obj in session.new:
        if users and isinstance(obj, user_model):
            _created(rows, obj, sm)
    for obj in session.dirty:
        if not session.is_modified(obj):
            continue
        if users and isinstance(obj, user_model):
            _updated(rows, obj, roles_known=id(obj) in from_roles)
        elif isinstance(obj, role_model):
            roles.updated(rows, obj)
    for user, before, after in from_roles.values():
        if users:
            _roles_changed(rows, user, before, after)
    for obj in session.deleted:
        if users and isinstance(obj, user_model):
            _deleted(rows, obj)
    if rows.rows:
        recorder.write_in_flush(current_app._get_current_object(), session, rows.rows)  # type: ignore[attr-defined]


def install() -> None:
    """Listen to every session once; the handler looks up the current app's FAB."""
    if not sa.event.contains(sa_orm.Session, "after_flush", _after_flush):
        sa.event.listen(sa_orm.Session, "after_flush", _after_flush)
        sa.event.listen(sa_orm.Session, "after_transaction_end", role_side.forget)
