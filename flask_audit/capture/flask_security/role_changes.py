"""A user's role changes → one ``role.updated`` per user per transaction, as it commits.

A grant and a removal often reach the database in two flushes of one transaction:
``remove_role_from_user(user, "member")`` looks the role up by name, and that query
flushes a grant made just before. So each flush only notes, per user, the role names as
they were before the transaction first changed them; just before the transaction commits,
what is left is flushed and every user whose roles now differ gets one event with the
whole sorted lists before and after, inserted on the session's connection through
:func:`flask_audit.store.recorder.write_in_flush`. The change and its event commit
together; a rolled-back transaction writes nothing, and a rolled-back savepoint inside
one is reflected too, since "after" is read at the commit.

A change from the role side (``role.users.append(user)``, the backref of ``user.roles``)
reaches a ``user.roles`` that is not loaded as a pending change, which the attribute's
history never shows. :func:`watch` hears it as it happens and reads the user's roles from
the database then, before the change is flushed.
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
from ..names import nice
from ..roles import names
from ..roles import stored_roles
from ..roles import watch_roles
from .helpers import CONNECTED
from .helpers import context_of
from .helpers import user_model
from .helpers import user_row

_BEFORE = "_flask_audit_fs_roles"  # session.info: {id(user): (user, role names before)}
_APP = "_flask_audit_fs_roles_app"  # session.info: the app whose users those are


def history(user: t.Any, attribute: str) -> sa_orm.attributes.History:
    attrs = sa.inspect(user).attrs
    if attribute not in attrs.keys():
        return sa_orm.attributes.History((), (), ())
    return t.cast(sa_orm.attributes.History, attrs[attribute].history)


def listed(role_names: list[str]) -> str:
    return ", ".join(nice(name) for name in role_names) or "none"


def note(session: sa_orm.Session, app: Flask, user: t.Any) -> None:
    """In a flush: remember ``user``'s roles before this transaction's first change to them."""
    changed = history(user, "roles")
    if not changed.added and not changed.deleted:
        return
    pending: dict[int, tuple[t.Any, list[str]]] = session.info.setdefault(_BEFORE, {})
    if id(user) not in pending:
        pending[id(user)] = (user, names([*changed.unchanged, *changed.deleted]))
    session.info[_APP] = app


def watch(model: type) -> None:
    """Hear every change to ``model.roles``, loaded or not."""
    watch_roles(model, _unloaded_change)


def _unloaded_change(user: t.Any, role: t.Any, initiator: t.Any) -> None:
    """Note the roles a user had before a change made while ``user.roles`` is not loaded."""
    state = sa.inspect(user)
    session = state.session
    if "roles" not in state.unloaded or state.key is None or session is None or not _connected():
        return  # loaded: its history tells; new: no roles before
    pending: dict[int, tuple[t.Any, list[str]]] = session.info.setdefault(_BEFORE, {})
    if id(user) in pending:
        return
    pending[id(user)] = (user, stored_roles(session, user))
    session.info[_APP] = current_app._get_current_object()  # type: ignore[attr-defined]


def before_commit(session: sa_orm.Session) -> None:
    """Write the transaction's role changes, one event per user, before it commits."""
    if session.in_nested_transaction():
        return  # a savepoint's release: its changes are written with the whole transaction
    if not session.info.get(_BEFORE) and not (_connected() and any(map(_roles_changed, session.dirty))):
        return
    session.flush()  # the commit's own flush comes after this hook: note what it holds now
    pending: dict[int, tuple[t.Any, list[str]]] = session.info.pop(_BEFORE, {})
    app: Flask | None = session.info.pop(_APP, None)
    if not pending or app is None:
        return
    with context_of(app):
        config = audit_state(app).config
        try:
            found = (_row(config, session, user, before) for user, before in pending.values())
            rows = [row for row in found if row is not None]
        except UnresolvedContext as err:  # no change commits without its event
            raise AuditWriteError(f"The change could not be recorded: {err}.") from err
        if rows:
            recorder.write_in_flush(app, session, rows)


def _connected() -> bool:
    """Whether the current app records its Flask-Security users' changes."""
    if not has_app_context():
        return False
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return bool(app.extensions.get(CONNECTED)) and user_model(app) is not None


def _roles_changed(obj: t.Any) -> bool:
    changed = history(obj, "roles")
    return bool(changed.added or changed.deleted)


def forget(session: sa_orm.Session, transaction: sa_orm.SessionTransaction) -> None:
    """A transaction that ended without ``before_commit`` writing: its notes go with it."""
    if transaction.parent is None:
        session.info.pop(_BEFORE, None)
        session.info.pop(_APP, None)


def _row(config: t.Any, session: sa_orm.Session, user: t.Any, before: list[str]) -> dict[str, t.Any] | None:
    state = sa.inspect(user)
    if state.deleted or state.was_deleted or state.detached:
        return None
    after = stored_roles(session, user)  # flushed, so read now: a savepoint rolled back is not counted
    if after == before:
        return None
    activity = f"Changed roles of {describe_user(user)} from {listed(before)} to {listed(after)}"
    return user_row(config, "role.updated", user, activity, {"before": before, "after": after})


def install() -> None:
    """Listen to every session once; the handlers act only for connected apps' users."""
    for name, listener in (("before_commit", before_commit), ("after_transaction_end", forget)):
        if not sa.event.contains(sa_orm.Session, name, listener):
            sa.event.listen(sa_orm.Session, name, listener)
