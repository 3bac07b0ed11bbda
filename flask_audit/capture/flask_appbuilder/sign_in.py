"""Sign-ins and failed sign-ins, read from the security manager's ``auth_user_*`` results.

FAB announces a sign-in only through Flask-Login's ``login_user()`` in its login views, and
a failed one not at all; its JWT API (``POST /api/v1/security/login``) never calls
``login_user()``. Each ``auth_user_*`` method of the app's security manager is wrapped on
the instance (a subclass's override included): a user returned inside the API is recorded
here as a ``jwt`` sign-in; elsewhere :func:`mark_login` tells the Flask-Login adapter the
method of the ``login_user()`` that follows. ``None`` is a failed sign-in; the reason is
looked up afterwards with the same queries for an unknown and a known user, so that the
lookup keeps FAB's own care that a failure takes as long whether the user exists or not.
While an ``auth_user_*`` call runs, :func:`signing_in` names its method: a user it creates
(``AUTH_USER_REGISTRATION``) signed up with it, and roles it syncs are that user's doing.
"""

from __future__ import annotations

import collections.abc as c
import contextvars
import functools
import typing as t

import sqlalchemy as sa
from flask import Flask
from flask import has_request_context
from flask import request
from flask import session

from ...state import current_audit
from ..flask_login import mark_login
from ..flask_login import record_sign_in
from ..names import describe_user

#: ``auth_user_*`` method → ``details.method`` of its sign-ins.
METHODS = {
    "auth_user_db": "password",
    "auth_user_ldap": "ldap",
    "auth_user_oauth": "oauth",
    "auth_user_saml": "saml",
    "auth_user_remote_user": "remote_user",
}
#: The methods that are given the identity provider's user info rather than a username.
_USERINFO = ("auth_user_oauth", "auth_user_saml")
_PROVIDERS = {"auth_user_db": "db", "auth_user_ldap": "ldap"}
_LABELS = {
    "password": "",
    "ldap": " with LDAP",
    "oauth": " with OAuth",
    "saml": " with SAML",
    "remote_user": " with REMOTE_USER",
    "jwt": " to the API (JWT)",
    "registration": "",
}


#: The ``auth_user_*`` method running in this context: a user it creates signs up with it.
_signing_in: contextvars.ContextVar[str | None] = contextvars.ContextVar("flask_audit_fab_auth", default=None)


def signing_in() -> str | None:
    """The sign-in method (``"oauth"``...) whose ``auth_user_*`` call is running, if any."""
    return _signing_in.get()


def signing_up(sm: t.Any) -> str | None:
    """How a user created now made their own account: a sign-in method or ``"registration"``."""
    method = _signing_in.get()
    if method is not None:
        return method
    blueprint = getattr(getattr(sm, "registeruser_view", None), "blueprint", None)
    if blueprint is not None and has_request_context() and request.blueprint == blueprint.name:
        return "registration"  # FAB's activation link: the registration becomes a user
    return None


def label(method: str) -> str:
    """``" with OAuth"`` for a method; nothing for a password or FAB's registration form."""
    return _LABELS.get(method, f" with {method.replace('_', ' ')}")


def hook(app: Flask, appbuilder: t.Any) -> None:
    """Wrap the sign-in methods and the timing guard of ``app``'s security manager."""
    sm = appbuilder.sm
    api_blueprint = _api_blueprint(appbuilder)
    for name in METHODS:
        method = getattr(sm, name, None)
        if method is not None and not getattr(method, "_flask_audit", False):
            setattr(sm, name, _wrap(app, sm, name, method, api_blueprint))
    noop = getattr(sm, "noop_user_update", None)
    if noop is not None and not getattr(noop, "_flask_audit", False):
        sm.noop_user_update = _untracked_noop(sm)


def _api_blueprint(appbuilder: t.Any) -> str | None:
    """The blueprint name of FAB's security API (``SecurityApi`` unless overridden)."""
    api_class = getattr(appbuilder.sm, "security_api", None)
    for view in appbuilder.baseviews:
        if api_class is not None and isinstance(view, api_class) and view.blueprint is not None:
            return t.cast(str, view.blueprint.name)
    return None


def _wrap(
    app: Flask, sm: t.Any, name: str, method: c.Callable[..., t.Any], api_blueprint: str | None
) -> c.Callable[..., t.Any]:
    @functools.wraps(method)
    def authenticate(*args: t.Any, **kwargs: t.Any) -> t.Any:
        token = _signing_in.set(METHODS[name])
        try:
            user = method(*args, **kwargs)
        finally:
            _signing_in.reset(token)
        if not has_request_context():
            return user
        in_api = api_blueprint is not None and request.blueprint == api_blueprint
        details: dict[str, t.Any] = {}
        how = METHODS[name]
        if in_api:
            details["provider"] = _PROVIDERS.get(name, how)
            how = "jwt"
        elif name == "auth_user_oauth" and (provider := _oauth_provider()):
            details["provider"] = provider
        if user:
            _signed_in(app, user, how, details, in_api)
        else:
            username = _attempted(name, args, kwargs)
            if username:
                _failed(sm, name, username, how, details)
        return user

    authenticate._flask_audit = True  # type: ignore[attr-defined]
    return authenticate


def _oauth_provider() -> str | None:
    """FAB's OAuth callback names the provider in its URL and, before this, in the session."""
    provider = (request.view_args or {}).get("provider") or session.get("oauth_provider")
    return provider if isinstance(provider, str) else None


def _signed_in(app: Flask, user: t.Any, how: str, details: dict[str, t.Any], in_api: bool) -> None:
    if in_api:
        activity = f"Signed in{_LABELS[how]}"
        record_sign_in(app, user, activity=activity, details={"method": how, **details})
    else:
        mark_login(how, **details)  # the login view's login_user() records it


def _attempted(name: str, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]) -> str | None:
    """The identity that was typed (or that the OAuth provider sent); never the password."""
    if name in _USERINFO:
        info = args[0] if args else kwargs.get("userinfo")
        if not isinstance(info, c.Mapping):
            return None
        value = info.get("username") or info.get("email")
    else:
        value = args[0] if args else kwargs.get("username")
    return value.strip() if isinstance(value, str) and value.strip() else None


def _reason(sm: t.Any, name: str, username: str) -> tuple[str, t.Any]:
    """Why the sign-in was refused, and the account it was for, if any."""
    user = sm.find_user(username=username)
    if name not in _USERINFO:  # both lookups always, as FAB does: a known name costs no less
        by_email = sm.find_user(email=username)
        user = user or by_email
    if user is None:
        return "unknown_user", None
    if not getattr(user, "is_active", True):
        return "inactive", user
    return {"auth_user_db": "bad_password", "auth_user_ldap": "ldap_rejected"}.get(name, "rejected"), user


def _failed(sm: t.Any, name: str, username: str, how: str, details: dict[str, t.Any]) -> None:
    reason, user = _reason(sm, name, username)
    who = describe_user(user) if user is not None else username
    unknown: dict[str, t.Any] = {} if user is not None else {"actor_email": username}
    current_audit().record(
        "user.login_failed",
        actor=user,
        activity=f"Failed sign-in{_LABELS[how]} for {who} ({reason.replace('_', ' ')})",
        details={"method": how, "reason": reason, "username": username, **details},
        **unknown,
    )


def _untracked_noop(sm: t.Any) -> c.Callable[[t.Any], None]:
    """FAB's timing guard for an unknown user, as a Core statement on the users table.

    FAB runs an ORM bulk ``update(User)`` that changes nothing, so that a failed sign-in for
    an unknown user costs what one for a known user does. Through the ORM, a tracked
    ``User`` would refuse it (bulk statements on tracked models are refused) and turn the
    failed sign-in into a server error.
    """
    table = sm.user_model.__table__

    def noop_user_update(user: t.Any) -> None:
        statement = sa.update(table).where(table.c.id == user.id).values(login_count=user.login_count)
        sm.session.execute(statement)
        sm.session.commit()

    noop_user_update._flask_audit = True  # type: ignore[attr-defined]
    return noop_user_update
