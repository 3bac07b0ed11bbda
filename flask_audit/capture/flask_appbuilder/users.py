"""FAB users created, changed and deleted, read from the ORM flush that writes them.

FAB's user admin writes through its generic model views (``SQLAInterface``), not through
the security manager, so its ``user_*`` signals miss most changes; the flush sees them all,
from the admin views, ``add_user``/``update_user``/``delete_user``, ``reset_password`` and
the ``flask fab`` commands alike. Events go in with :func:`~flask_audit.store.recorder.write_in_flush`,
inside the change's own transaction. What a sign-in bumps (``login_count``,
``fail_login_count``, ``last_login``) and FAB's bookkeeping (``changed_on``...) are not
changes anyone made.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import current_app
from flask import has_app_context

from ...exceptions import AuditWriteError
from ...store import recorder
from ...store.context import current_user_or_none
from ...store.context import stable_id
from ...store.rows import build_row
from ...store.rows import UnresolvedContext
from ..names import describe_user

#: The columns whose changes are ``user.updated``; the password has an event of its own.
FIELDS = ("username", "email", "first_name", "last_name", "active")
CONNECTED = "audit.flask_appbuilder"  # app.extensions key: FAB was hooked for this app


def _role_names(roles: t.Iterable[t.Any]) -> list[str]:
    return sorted(str(getattr(role, "name", role)) for role in roles)


def _collection(user: t.Any, name: str) -> tuple[list[str], list[str]] | None:
    """Whole before and after of a changed collection (names, sorted), else ``None``."""
    history = sa.inspect(user).attrs[name].history
    if not history.has_changes():
        return None
    kept = list(history.unchanged or ())
    before = _role_names([*kept, *(history.deleted or ())])
    after = _role_names([*kept, *(history.added or ())])
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


class _Rows:
    def __init__(self, config: t.Any) -> None:
        self.config = config
        self.rows: list[dict[str, t.Any]] = []

    def add(self, event_type: str, user: t.Any, activity: str, details: dict[str, t.Any]) -> None:
        custom = event_type == "user.updated"
        try:
            row = build_row(
                self.config,
                event_type,
                activity=activity,
                entity="User" if custom else None,
                action="update" if custom else None,
                target=("user", stable_id(user)),
                details=details,
            )
        except UnresolvedContext as err:  # no change commits without its event
            raise AuditWriteError(f"The change could not be recorded: {err}.") from err
        self.rows.append(row)


def _created(rows: _Rows, user: t.Any) -> None:
    values = {name: getattr(user, name, None) for name in FIELDS}
    roles = _role_names(getattr(user, "roles", None) or ())
    rows.add("user.created", user, f"Created user {_label(user)}", {"values": values, "roles": roles})


def _deleted(rows: _Rows, user: t.Any) -> None:
    values = {name: getattr(user, name, None) for name in ("username", "email")}
    roles = _role_names(getattr(user, "roles", None) or ())
    rows.add("user.deleted", user, f"Deleted user {_label(user)}", {"values": values, "roles": roles})


def _updated(rows: _Rows, user: t.Any) -> None:
    label = _label(user)
    roles = _collection(user, "roles")
    if roles is not None:
        before, after = roles
        activity = (
            f"Changed roles of {label} from {', '.join(before) or 'none'} to {', '.join(after) or 'none'}"
        )
        rows.add(
            "role.updated", user, activity, {"user": describe_user(user), "before": before, "after": after}
        )
    changes = _changes(user)
    if "groups" in sa.inspect(user).attrs:
        groups = _collection(user, "groups")
        if groups is not None:
            changes["groups"] = list(groups)
    if changes:
        rows.add(
            "user.updated", user, f"Updated user {label}: {', '.join(sorted(changes))}", {"changes": changes}
        )
    if _password_changed(user):
        actor = current_user_or_none()
        if actor is not None and stable_id(actor) == stable_id(user):
            rows.add("user.password_changed", user, "Changed password", {"method": "change"})
        else:
            who = describe_user(user)
            details = {"method": "admin", "by_admin": True, "user": who}
            rows.add("user.password_changed", user, f"Changed the password of {who}", details)


def _user_model() -> tuple[t.Any, type] | None:
    """The audit extension and FAB's user model, when the current app has both hooked."""
    if not has_app_context():
        return None
    app = current_app
    audit = app.extensions.get("audit")
    appbuilder = app.extensions.get("appbuilder")
    if audit is None or appbuilder is None or not app.extensions.get(CONNECTED):
        return None
    model = appbuilder.sm.user_model
    if model in getattr(audit, "_tracked", {}):  # the app tracks it itself: its events win
        return None
    return audit, model


def _after_flush(session: sa_orm.Session, flush_context: t.Any) -> None:
    found = _user_model()
    if found is None:
        return
    audit, model = found
    config = audit.config
    if not config.enabled:
        return
    rows = _Rows(config)
    for user in session.new:
        if isinstance(user, model):
            _created(rows, user)
    for user in session.dirty:
        if isinstance(user, model) and session.is_modified(user):
            _updated(rows, user)
    for user in session.deleted:
        if isinstance(user, model):
            _deleted(rows, user)
    if rows.rows:
        recorder.write_in_flush(current_app._get_current_object(), session, rows.rows)  # type: ignore[attr-defined]


def install() -> None:
    """Listen to every session once; the handler looks up the current app's FAB."""
    if not sa.event.contains(sa_orm.Session, "after_flush", _after_flush):
        sa.event.listen(sa_orm.Session, "after_flush", _after_flush)
