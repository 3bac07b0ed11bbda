"""Who may read the audit log in a Flask-Security app: the users with ``AUDIT_ADMIN_ROLE``.

Flask-Security users have roles, not the ``is_admin`` attribute that the default
``AUDIT_IS_ADMIN`` reads, so without this every admin of such an app would be refused.
When the app gives no ``AUDIT_IS_ADMIN``, the predicate becomes ``user.has_role(role)``
while ``Security`` is set up on the app, and stays the documented default otherwise (an
app that has Flask-Security installed but signs users in with Flask-Login alone).
"""

from __future__ import annotations

import dataclasses
import typing as t

from flask import current_app
from flask import Flask
from flask import has_app_context

from ...config import UserCallable
from ...state import audit_state


def use_admin_role(app: Flask) -> None:
    """Replace the default admin predicate of ``app``; an app's own ``AUDIT_IS_ADMIN`` stays."""
    if app.config.get("AUDIT_IS_ADMIN") is not None:
        return
    state = audit_state(app)
    state.config = dataclasses.replace(
        state.config, is_admin=_role_check(state.config.admin_role, state.config.is_admin)
    )


def _role_check(role: str, default: UserCallable) -> UserCallable:
    def is_admin(user: t.Any) -> bool:
        if not (has_app_context() and current_app.extensions.get("security") is not None):
            return bool(default(user))
        has_role = getattr(user, "has_role", None)
        return bool(has_role(role)) if callable(has_role) else False

    is_admin.__doc__ = f"Whether ``user`` has the role {role!r} (``AUDIT_ADMIN_ROLE``)."
    return is_admin
