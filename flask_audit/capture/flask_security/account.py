"""Account changes: two-factor, passwords, sign-up, confirmation, email and username.

Also the sign-in methods added or removed through unified sign-in and WebAuthn.
"""

from __future__ import annotations

import typing as t

from flask import has_request_context
from flask import session

from ..names import describe_user
from .helpers import current_user
from .helpers import factor
from .helpers import is_self
from .helpers import on_user
from .helpers import record
from .helpers import state
from .helpers import value_before
from .two_factor import announced
from .user_changes import announce_sign_up

# -- two-factor ------------------------------------------------------------------------


def on_tf_code_confirmed(user: t.Any, method: str | None = None, **_: t.Any) -> None:
    announced(user)
    details = {"method": method}
    if has_request_context():
        state()["second_factor"] = method
        if session.get("tf_state") == "validating_profile":  # first setup, inside a sign-in
            activity = f"Enabled two-factor authentication ({factor(method)})"
            on_user("two_factor.enabled", user, activity, by_user=True, details=details)
    activity = f"Verified a two-factor code ({factor(method)})"
    record("two_factor.verified", actor=user, activity=activity, details=details)


def on_tf_profile_changed(user: t.Any, method: str | None = None, **_: t.Any) -> None:
    announced(user)
    previous = value_before(user, "tf_primary_method")
    details: dict[str, t.Any] = {"method": method}
    activity = f"Enabled two-factor authentication ({factor(method)})"
    if previous:
        details["previous_method"] = previous
        activity = f"Changed two-factor authentication from {factor(previous)} to {factor(method)}"
    elif _kept_method(user, method):
        details["rekeyed"] = True
        activity = f"Set up two-factor authentication again with a new key ({factor(method)})"
    on_user("two_factor.enabled", user, activity, details=details)


def _kept_method(user: t.Any, method: str | None) -> bool:
    """Whether two-factor was already on with ``method``: set up again, not turned on."""
    import sqlalchemy as sa

    try:
        history = sa.inspect(user).attrs["tf_primary_method"].history
    except (sa.exc.NoInspectionAvailable, KeyError, AttributeError):
        return False
    return bool(method) and not history.added and list(history.unchanged) == [method]


def on_tf_disabled(user: t.Any, **_: t.Any) -> None:
    announced(user)
    method = value_before(user, "tf_primary_method")
    details = {"method": method} if method else {}
    how = f" ({factor(method)})" if method else ""
    if is_self(user):
        on_user("two_factor.disabled", user, f"Disabled two-factor authentication{how}", details=details)
    else:
        who = describe_user(user)
        activity = f"Reset two-factor authentication{how} of {who}"
        on_user("two_factor.reset", user, activity, details={**details, "user": who})


# -- passwords and accounts ------------------------------------------------------------


def on_password_changed(user: t.Any, **_: t.Any) -> None:
    if is_self(user):
        on_user("user.password_changed", user, "Changed password", details={"method": "change"})
    else:
        who = describe_user(user)
        details = {"method": "admin", "by_admin": True, "user": who}
        on_user("user.password_changed", user, f"Changed the password of {who}", details=details)


def on_password_reset(user: t.Any, **_: t.Any) -> None:
    details = {"method": "reset"}
    on_user("user.password_changed", user, "Reset password by email link", by_user=True, details=details)


def on_registered(user: t.Any, **_: t.Any) -> None:
    """``form_data`` and the confirmation token that come with the signal are never read.

    An SQLAlchemy user is recorded by the flush that inserts it (see ``user_changes``), in
    the sign-up's own transaction; any other is recorded here.
    """
    if announce_sign_up(user):
        return
    activity = f"Signed up as {describe_user(user)}"
    on_user("user.created", user, activity, actor=current_user() or user, details={"method": "registration"})


def on_confirmed(user: t.Any, **_: t.Any) -> None:
    on_user("user.email_confirmed", user, f"Confirmed the email address {describe_user(user)}", by_user=True)


def on_email_changed(user: t.Any, old_email: str | None = None, **_: t.Any) -> None:
    new = getattr(user, "email", None)
    activity = f"Changed email address from {old_email} to {new}"
    on_user(
        "user.email_changed", user, activity, by_user=True, details={"old_email": old_email, "new_email": new}
    )


def on_username_changed(user: t.Any, old_username: str | None = None, **_: t.Any) -> None:
    new = getattr(user, "username", None)
    activity = f"Changed username from {old_username} to {new}"
    details = {"old_username": old_username, "new_username": new}
    on_user("user.username_changed", user, activity, by_user=True, details=details)


# -- unified sign-in and WebAuthn ------------------------------------------------------


def _sign_in_methods(user: t.Any, methods: list[str], removed: bool, **details: t.Any) -> None:
    names = ", ".join("passkey" if method == "webauthn" else factor(method) for method in methods)
    verb, plural = ("Removed" if removed else "Added"), ("s" if len(methods) > 1 else "")
    event_type = "user.signin_method_removed" if removed else "user.signin_method_added"
    on_user(
        event_type, user, f"{verb} sign-in method{plural}: {names}", details={"methods": methods, **details}
    )


def on_us_profile_changed(
    user: t.Any, methods: list[str] | None = None, delete: bool = False, **_: t.Any
) -> None:
    _sign_in_methods(user, list(methods or []), delete, flow="unified_signin")


def _on_wan(user: t.Any, name: str | None, removed: bool) -> None:
    usage = next((cred.usage for cred in getattr(user, "webauthn", None) or () if cred.name == name), None)
    if usage != "secondary":
        _sign_in_methods(user, ["webauthn"], removed, key_name=name)
        return
    event_type = "two_factor.disabled" if removed else "two_factor.enabled"
    activity = f"{'Removed' if removed else 'Registered'} security key {name!r} for two-factor authentication"
    on_user(event_type, user, activity, details={"method": "webauthn", "key_name": name})


def on_wan_registered(user: t.Any, name: str | None = None, **_: t.Any) -> None:
    _on_wan(user, name, removed=False)


def on_wan_deleted(user: t.Any, name: str | None = None, **_: t.Any) -> None:
    _on_wan(user, name, removed=True)
