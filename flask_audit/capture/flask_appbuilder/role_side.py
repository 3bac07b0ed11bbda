"""Roles given or taken from the role side while the user's ``roles`` are not loaded.

``role.user.append(user)`` (FAB's ``Role.user`` is the other side of ``user.roles``)
reaches a ``user.roles`` that is not loaded as a pending change, which the attribute's
history never shows and which leaves the user looking unmodified. The change is heard as
it is made, the user's roles are read from the database then, and the flush that writes it
compares them with the roles it leaves in the database.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import current_app
from flask import has_app_context

from ..roles import stored_roles
from ..roles import watch_roles
from .rows import CONNECTED

_BEFORE = "_flask_audit_fab_roles"  # session.info: {id(user): (user, role names before)}


def watch(model: type) -> None:
    """Hear every change to ``model.roles``, loaded or not."""
    watch_roles(model, _unloaded_change)


def _unloaded_change(user: t.Any, role: t.Any, initiator: t.Any) -> None:
    state = sa.inspect(user)
    session = state.session
    if "roles" not in state.unloaded or state.key is None or session is None:
        return  # loaded: its history tells; new: no roles before
    if not (has_app_context() and current_app.extensions.get(CONNECTED)):
        return
    pending: dict[int, tuple[t.Any, list[str]]] = session.info.setdefault(_BEFORE, {})
    if id(user) in pending:
        return
    pending[id(user)] = (user, stored_roles(session, user))


def flushed(session: sa_orm.Session) -> dict[int, tuple[t.Any, list[str], list[str]]]:
    """The users whose roles this flush changed from the role side: before and after."""
    changed = {}
    for key, (user, before) in session.info.pop(_BEFORE, {}).items():
        state = sa.inspect(user)
        if state.deleted or state.was_deleted or state.detached:
            continue
        after = stored_roles(session, user)  # the flush has written the change
        if after != before:
            changed[key] = (user, before, after)
    return changed


def forget(session: sa_orm.Session, transaction: sa_orm.SessionTransaction) -> None:
    """A change never flushed (rolled back) leaves nothing to compare."""
    if transaction.parent is None:
        session.info.pop(_BEFORE, None)
