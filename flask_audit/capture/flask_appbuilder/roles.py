"""Role definitions changed in FAB's role admin → ``role.updated``.

FAB's role admin (``/roles/edit/<id>``), ``update_role``, ``add_permission_role`` /
``del_permission_role`` and ``flask fab import-roles`` change a role's name or its
permissions. Each flush that does is one ``role.updated`` about that role (``target`` is
``("role", <id>)``): ``role`` (its name), ``permissions`` (``added`` and ``removed``, each
sorted and named as FAB's role admin shows them: ``"can list on UserDBModelView"``) and
``name`` (``[before, after]``) when it was renamed.

FAB also grants permissions by itself: its admin role gets every permission of every view
as views are added at start-up, by ``flask fab create-permissions`` and by
``security-converge``. That is bookkeeping, not anyone's decision: the security manager's
methods that do it are wrapped on the instance, and what they change is not recorded.
"""

from __future__ import annotations

import collections.abc as c
import contextvars
import functools
import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm

from .rows import Rows

#: The security manager's methods that align roles with the views (start-up and CLI).
SYNC_METHODS = (
    "create_db",
    "add_permissions_view",
    "add_permissions_menu",
    "security_cleanup",
    "security_converge",
)
#: Listed one by one in an activity up to this many, else counted.
_LISTED = 3
_syncing: contextvars.ContextVar[bool] = contextvars.ContextVar("flask_audit_fab_sync", default=False)


def hook(sm: t.Any) -> None:
    """Wrap FAB's permission sync on ``sm`` so that its changes are told apart."""
    for name in SYNC_METHODS:
        method = getattr(sm, name, None)
        if method is not None and not getattr(method, "_flask_audit", False):
            setattr(sm, name, _syncing_while(method))


def _syncing_while(method: c.Callable[..., t.Any]) -> c.Callable[..., t.Any]:
    @functools.wraps(method)
    def sync(*args: t.Any, **kwargs: t.Any) -> t.Any:
        token = _syncing.set(True)
        try:
            return method(*args, **kwargs)
        finally:
            _syncing.reset(token)

    sync._flask_audit = True  # type: ignore[attr-defined]
    return sync


def _history(role: t.Any, name: str) -> sa_orm.attributes.History:
    attrs = sa.inspect(role).attrs
    if name not in attrs.keys():  # a custom role model without it
        return sa_orm.attributes.History((), (), ())
    return t.cast(sa_orm.attributes.History, attrs[name].history)


def _permissions(role: t.Any) -> tuple[list[str], list[str]]:
    """The permissions added to and removed from ``role`` in this flush, by FAB's names."""
    history = _history(role, "permissions")
    added = {str(each) for each in history.added or ()}
    removed = {str(each) for each in history.deleted or ()}
    return sorted(added - removed), sorted(removed - added)


def _named(verb: str, permissions: list[str]) -> str:
    if len(permissions) > _LISTED:
        return f"{verb} {len(permissions)} permissions"
    return f"{verb} {', '.join(permissions)}"


def updated(rows: Rows, role: t.Any) -> None:
    """One ``role.updated`` for a role renamed or given or stripped of permissions."""
    if _syncing.get():
        return
    name = _history(role, "name")
    added, removed = _permissions(role)
    details: dict[str, t.Any] = {"role": role.name}
    parts = []
    if name.added and name.deleted and name.added[0] != name.deleted[0]:
        details["name"] = [name.deleted[0], name.added[0]]
        parts.append(f"Renamed role {name.deleted[0]} to {name.added[0]}")
    if added or removed:
        details["permissions"] = {"added": added, "removed": removed}
        changes = [_named(verb, names) for verb, names in (("added", added), ("removed", removed)) if names]
        parts.append(f"Changed the permissions of role {role.name}: {'; '.join(changes)}")
    if parts:
        rows.add("role.updated", ("role", str(role.id)), "; ".join(parts), details)
