"""The datastore's own calls that no signal or column change names: ``reset_user_access``.

``reset_user_access`` (and ``flask users reset_access``) ends every session and token of a
user and removes their two-factor, unified sign-in and WebAuthn credentials. It is wrapped
on the app's datastore object when an app context is first pushed (``Security`` may be set
up after ``Audit``), and records ``user.access_reset`` in the caller's transaction: stored
when the reset commits, dropped when it rolls back. ``tf_set`` and ``tf_reset`` are wrapped
at the same time (:mod:`.two_factor`), so the two-factor method it removes is recorded too.

The same hook makes the user model load the old ``active`` value before code replaces it,
so that :mod:`.user_changes` knows whether it changed (the ORM loads a replaced ``roles``
collection by itself).
"""

from __future__ import annotations

import collections.abc as c
import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import current_app
from flask import Flask
from flask import has_app_context

from ..names import describe_user
from ..tracking import load_old_values
from . import role_changes
from . import two_factor
from .helpers import CONNECTED
from .helpers import on_user
from .helpers import user_model

_WRAPPED = "_flask_audit_wrapped"


def hook_datastore(app: Flask, **_: t.Any) -> None:
    """Wrap the datastore's ``reset_user_access`` once; a no-op before ``Security`` is set up."""
    datastore = getattr(app.extensions.get("security"), "datastore", None)
    reset = getattr(datastore, "reset_user_access", None)
    if reset is None or getattr(reset, _WRAPPED, False):
        return
    datastore.reset_user_access = _wrap(datastore, reset)  # type: ignore[union-attr]
    two_factor.wrap(datastore)
    model = user_model(app)
    if model is not None:
        mapper: sa_orm.Mapper[t.Any] | None = sa.inspect(model, raiseerr=False)
        if isinstance(mapper, sa_orm.Mapper) and "active" in mapper.attrs:
            load_old_values(model, ["active"])
        role_changes.watch(model)


def _wrap(datastore: t.Any, reset: c.Callable[[t.Any], None]) -> c.Callable[[t.Any], None]:
    def reset_user_access(user: t.Any) -> None:
        if not (has_app_context() and current_app.extensions.get(CONNECTED)):
            reset(user)  # one datastore may serve an app without Audit
            return
        details = {"user": describe_user(user), **_credentials(datastore, user)}
        reset(user)
        activity = f"Reset the sign-in credentials of {details['user']}"
        on_user("user.access_reset", user, activity, details=details, session=_session_of(user))

    setattr(reset_user_access, _WRAPPED, True)
    return reset_user_access


def _credentials(datastore: t.Any, user: t.Any) -> dict[str, t.Any]:
    """What the reset removes, by name and count only: never a secret."""
    method = getattr(user, "tf_primary_method", None)
    sign_in: list[str] = []
    if getattr(user, "us_totp_secrets", None):
        sign_in = sorted(datastore.us_get_totp_secrets(user))
    keys = list(getattr(user, "webauthn", None) or ())
    return {
        "two_factor_method": method,
        "sign_in_methods": sign_in,
        "security_keys": len(keys),
    }


def _session_of(user: t.Any) -> sa_orm.Session | None:
    try:
        return sa_orm.object_session(user)
    except sa_orm.exc.UnmappedInstanceError:
        return None
