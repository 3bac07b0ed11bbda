"""Two-factor changes made through the datastore with no signal: ``tf_set`` and ``tf_reset``.

Flask-Security's own views change a user's two-factor settings with ``datastore.tf_set``
and ``tf_reset``, then announce it (``tf_profile_changed``, ``tf_code_confirmed``,
``tf_disabled``). Code that calls them itself (to set a user up beforehand, from an admin
page or a command) announces nothing, and neither does ``reset_user_access``, which calls
``tf_reset``. Both methods are wrapped on the datastore (see :mod:`.datastore`). Each call
notes the user's method, key and phone as they were before the transaction first changed
them; a signal about that user takes the note back, since its receiver records the change;
what is left when the transaction commits is written in it, one event per user, as
:mod:`.role_changes` does. A rolled-back change leaves no event.
"""

from __future__ import annotations

import collections.abc as c
import functools
import hashlib
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
from .helpers import CONNECTED
from .helpers import context_of
from .helpers import factor
from .helpers import is_self
from .helpers import real
from .helpers import user_row

_NOTES = "_flask_audit_fs_tf"  # session.info: {id(user): (app, user, settings before)}
_WRAPPED = "_flask_audit_wrapped"
_FIELDS = ("tf_primary_method", "tf_totp_secret", "tf_phone_number")

Settings = tuple[t.Any, ...]


def wrap(datastore: t.Any) -> None:
    """Wrap the datastore's ``tf_set`` and ``tf_reset`` once."""
    for name in ("tf_set", "tf_reset"):
        method = getattr(datastore, name, None)
        if method is not None and not getattr(method, _WRAPPED, False):
            setattr(datastore, name, _noting(method))


def _noting(method: c.Callable[..., None]) -> c.Callable[..., None]:
    @functools.wraps(method)
    def change(user: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
        before = _settings(user)
        method(user, *args, **kwargs)
        if has_app_context() and current_app.extensions.get(CONNECTED):  # else an app without Audit
            _note(real(user), before)

    setattr(change, _WRAPPED, True)
    return change


def _settings(user: t.Any) -> Settings:
    """The method, and digests of the key and phone: a secret is compared, never kept."""
    method, *secrets = (getattr(user, name, None) for name in _FIELDS)
    return (method, *(hashlib.sha256(str(value).encode()).digest() if value else None for value in secrets))


def _session_of(user: t.Any) -> sa_orm.Session | None:
    try:
        return sa_orm.object_session(user)
    except sa_orm.exc.UnmappedInstanceError:
        return None


def _note(user: t.Any, before: Settings) -> None:
    session = _session_of(user)
    if session is not None:
        notes: dict[int, tuple[Flask, t.Any, Settings]] = session.info.setdefault(_NOTES, {})
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        notes.setdefault(id(user), (app, user, before))


def announced(user: t.Any) -> None:
    """A Flask-Security signal reports ``user``'s two-factor change: the commit need not."""
    session = _session_of(user)
    if session is not None:
        session.info.get(_NOTES, {}).pop(id(user), None)


def before_commit(session: sa_orm.Session) -> None:
    """Write the two-factor changes that no signal reported, before the transaction commits."""
    if session.in_nested_transaction() or not session.info.get(_NOTES):
        return
    notes: dict[int, tuple[Flask, t.Any, Settings]] = session.info.pop(_NOTES)
    for app, user, before in notes.values():
        with context_of(app):
            try:
                row = _row(audit_state(app).config, user, before)
            except UnresolvedContext as err:  # no change commits without its event
                raise AuditWriteError(f"The change could not be recorded: {err}.") from err
            if row is not None:
                recorder.write_in_flush(app, session, [row])


def forget(session: sa_orm.Session, transaction: sa_orm.SessionTransaction) -> None:
    """A transaction that ended without ``before_commit`` writing: its notes go with it."""
    if transaction.parent is None:
        session.info.pop(_NOTES, None)


def _row(config: t.Any, user: t.Any, before: Settings) -> dict[str, t.Any] | None:
    state = sa.inspect(user)
    if state.deleted or state.was_deleted or state.detached:
        return None
    after = _settings(user)  # read now: a savepoint rolled back since is not counted
    old, new = before[0], after[0]
    who, own = describe_user(user), is_self(user)
    if old and not new:
        if own:
            activity = f"Disabled two-factor authentication ({factor(old)})"
            return user_row(config, "two_factor.disabled", user, activity, {"method": old})
        activity = f"Reset two-factor authentication ({factor(old)}) of {who}"
        return user_row(config, "two_factor.reset", user, activity, {"method": old, "user": who})
    details: dict[str, t.Any] = {"method": new}
    if not new:
        return None
    if not old:
        activity = f"Enabled two-factor authentication ({factor(new)})"
    elif old != new:
        details["previous_method"] = old
        activity = f"Changed two-factor authentication from {factor(old)} to {factor(new)}"
    elif before[1:] != after[1:]:
        details["rekeyed"] = True
        activity = f"Set up two-factor authentication again with a new key ({factor(new)})"
    else:
        return None
    if not own:
        details["user"] = who
        activity += f" for {who}"
    return user_row(config, "two_factor.enabled", user, activity, details)


def install() -> None:
    """Listen to every session once; only notes made for connected apps are written."""
    for name, listener in (("before_commit", before_commit), ("after_transaction_end", forget)):
        if not sa.event.contains(sa_orm.Session, name, listener):
            sa.event.listen(sa_orm.Session, name, listener)
