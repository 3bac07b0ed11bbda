"""A user's roles as the identity stacks' captures read them: by name, from the database.

Flask-Security-Too and Flask-AppBuilder both keep roles in a many-to-many ``user.roles``
whose other side can change it while it is not loaded; both captures then hear the change
as it is made and read the roles before and after from the database.
"""

from __future__ import annotations

import collections.abc as c
import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm


def names(roles: t.Iterable[t.Any]) -> list[str]:
    """Role names, sorted, each once: the way a role change shows before and after."""
    return sorted({str(getattr(role, "name", role)) for role in roles})


def stored_roles(session: sa_orm.Session, user: t.Any) -> list[str]:
    """The user's roles in the database, read without loading (or changing) ``user.roles``."""
    relationship = type(user).roles
    query = sa.select(relationship.property.mapper.class_).where(sa_orm.with_parent(user, relationship))
    with session.no_autoflush:
        return names(session.scalars(query))


def watch_roles(model: type, listener: c.Callable[[t.Any, t.Any, t.Any], None]) -> None:
    """Call ``listener(user, role, initiator)`` on every change to ``model.roles``, loaded or not."""
    attribute = getattr(model, "roles", None)
    if not isinstance(getattr(attribute, "property", None), sa_orm.RelationshipProperty):
        return
    for name in ("append", "remove"):
        if not sa.event.contains(attribute, name, listener):
            sa.event.listen(attribute, name, listener)
