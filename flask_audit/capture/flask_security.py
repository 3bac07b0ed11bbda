"""Flask-Security-Too's signals → events, with no code in the app.

Connected for every app by :func:`flask_audit.capture.connect`; Flask-Security is imported
only inside :func:`connect`, so it stays optional. When it is set up, this adapter owns
``user.login`` (the Flask-Login adapter skips ``user_logged_in``), because only
``user_authenticated`` says how the user authenticated; logout and remember-cookie
restores still come from the Flask-Login adapter.

=============================================  ==============================================
Flask-Security                                 event (``details``)
=============================================  ==============================================
``user_authenticated``                         ``user.login`` (``method``: ``authn_via``, such as
                                               password, authenticator, sms, email, email_link,
                                               webauthn, oauth, token, register, confirm, reset;
                                               ``second_factor`` after a 2FA step)
``user_failed_authn``, failed sign-in forms    ``user.login_failed`` (``reason``: bad_password,
                                               bad_passcode, bad_passkey, unknown_user, inactive,
                                               unconfirmed, locked) or ``two_factor.failed``
``tf_code_confirmed``                          ``two_factor.verified`` (and ``two_factor.enabled``
                                               when the code completes a first setup)
``tf_profile_changed`` / ``tf_disabled``       ``two_factor.enabled`` (``previous_method`` on a
                                               change) / ``two_factor.disabled``, or
                                               ``two_factor.reset`` when done to another user
``wan_registered`` / ``wan_deleted``           ``two_factor.enabled`` / ``.disabled`` for a
                                               second-factor key, else ``user.signin_method_*``
``us_profile_changed``                         ``user.signin_method_added`` / ``_removed``
``password_changed`` / ``password_reset``      ``user.password_changed`` (``method``: change,
                                               admin, reset)
``user_registered``                            ``user.created``
``user_confirmed``                             ``user.email_confirmed`` (User, update)
``change_email_confirmed``                     ``user.email_changed`` (User, update)
``username_changed``                           ``user.username_changed`` (User, update)
=============================================  ==============================================

Not events: instructions or codes being sent (reset, confirm, two-factor, unified sign-in,
change email), ``user_not_registered``, ``user_unauthenticated`` and refresh tokens. No
token, code, secret or ``form_data`` a signal carries is ever read.

What Flask-Security does not announce, and how it is covered:

- ``login_user`` runs again after a password change (``authn_via=["change"]``): skipped. A
  sign-in with a second factor calls ``login_user`` once, without ``authn_via``, when that
  factor is accepted; the first factor is kept from the previous request's sign-in form
  under a session key, and the one event carries both.
- An unknown identity, a refused account (inactive, unconfirmed, locked), a wrong recovery
  code and a security key or recovery code accepted as second factor send no signal. The
  sign-in forms' instantiators are wrapped through Flask-Security's public
  ``Security.set_form_info``, and each form is read after validation (``form.user``,
  ``form.ifield``, ``form.user_authenticated``). Of what was typed only the identity is kept.
"""

from __future__ import annotations

import collections.abc as c
import typing as t

from flask import current_app
from flask import Flask
from flask import g
from flask import has_app_context
from flask import has_request_context
from flask import request
from flask import request_started
from flask import session

from .._names import describe_user
from ..taxonomy import EVENT_TYPES
from .flask_login import record_sign_in

if t.TYPE_CHECKING:
    from ..extension import Audit

_CONNECTED = "audit.flask_security"  # app.extensions key: connect() ran for this app
_PRIMARY = "_flask_audit_fs_primary"  # session: first factor of a sign-in awaiting its second
_REQUEST = "_flask_audit_fs"  # g: what this request has seen so far
_WRAPPED = "_flask_audit_wrapped"

_FACTORS = {
    "authenticator": "authenticator app",
    "google_authenticator": "authenticator app",
    "sms": "SMS",
    "email": "email",
    "mail": "email",
    "webauthn": "security key",
    "recovery_code": "recovery code",
    "password": "password",
}
_SIGN_INS = {
    "password": "Signed in",
    "authenticator": "Signed in with an authenticator app code",
    "sms": "Signed in with an SMS code",
    "email": "Signed in with an email code",
    "email_link": "Signed in with an email link",
    "webauthn": "Signed in with a passkey",
    "oauth": "Signed in with OAuth",
    "token": "Signed in with a sign-in link",
    "register": "Signed in after signing up",
    "confirm": "Signed in after confirming the email address",
    "reset": "Signed in after resetting the password",
    "unknown": "Signed in",
}
_FAILURES = {"password": "bad_password", "passcode": "bad_passcode", "passkey": "bad_passkey"}
_REAUTHENTICATION = {"verify", "us_verify", "wan_verify_response"}
_SIGN_IN_FORMS = ("login_form", "us_signin_form", "wan_signin_response_form", "mf_recovery_form")


def connect(app: Flask, audit: Audit) -> None:
    """Connect the receivers for ``app``'s Flask-Security signals; a no-op if it is absent.

    Safe to call more than once per app. ``Security`` may be set up before or after
    ``Audit``: signals are matched by sender, and the forms are hooked on each request.
    """
    if app.extensions.get(_CONNECTED):
        return
    try:
        from flask_security import signals as fs
    except ImportError:
        return
    app.extensions[_CONNECTED] = True
    receivers: dict[str, c.Callable[..., None]] = {
        "user_authenticated": _on_authenticated,
        "user_failed_authn": _on_failed_authn,
        "tf_code_confirmed": _on_tf_code_confirmed,
        "tf_profile_changed": _on_tf_profile_changed,
        "tf_disabled": _on_tf_disabled,
        "password_changed": _on_password_changed,
        "password_reset": _on_password_reset,
        "user_registered": _on_registered,
        "user_confirmed": _on_confirmed,
        "change_email_confirmed": _on_email_changed,
        "username_changed": _on_username_changed,
        "us_profile_changed": _on_us_profile_changed,
        "wan_registered": _on_wan_registered,
        "wan_deleted": _on_wan_deleted,
    }
    for name, receiver in receivers.items():
        signal = getattr(fs, name, None)  # older releases lack some (user_failed_authn: 5.8)
        if signal is not None:
            signal.connect(_guarded(receiver), sender=app, weak=False)
    request_started.connect(_hook_forms, sender=app, weak=False)


def _guarded(receiver: c.Callable[..., None]) -> c.Callable[..., None]:
    """Run ``receiver`` only inside an app context: Flask-Security also sends from the CLI."""

    def receive(app: Flask, **kwargs: t.Any) -> None:
        if has_app_context():
            receiver(_real(kwargs.pop("user", None)), **kwargs)

    return receive


# -- helpers ---------------------------------------------------------------------------


def _record(event_type: str, **fields: t.Any) -> None:
    audit: Audit = current_app.extensions["audit"]
    audit.record(event_type, **fields)


def _on_user(event_type: str, user: t.Any, activity: str, *, by_user: bool = False, **fields: t.Any) -> None:
    """An event about ``user``'s account; ``by_user`` when they act before being signed in."""
    if event_type not in EVENT_TYPES:
        fields.setdefault("entity", "User")
        fields.setdefault("action", "update")
    if by_user:
        fields["actor"] = user
    _record(event_type, target=_target(user), activity=activity, **fields)


def _pop_session(key: str) -> t.Any:
    """``session.pop`` that leaves an untouched session unmodified (no needless cookie)."""
    return session.pop(key) if has_request_context() and key in session else None


def _real(user: t.Any) -> t.Any:
    """The object behind ``current_user``: signals sometimes pass the proxy itself."""
    get = getattr(user, "_get_current_object", None)
    return get() if callable(get) else user


def _state() -> dict[str, t.Any]:
    state: dict[str, t.Any] | None = g.get(_REQUEST)
    if state is None:
        state = {}
        setattr(g, _REQUEST, state)
    return state


def _view() -> str | None:
    """The Flask-Security view handling this request (``"login"``), or ``None``."""
    if not has_request_context() or not request.endpoint:
        return None
    blueprint, _, view = request.endpoint.rpartition(".")
    return view if blueprint == current_app.config.get("SECURITY_BLUEPRINT_NAME", "security") else None


def _current_user() -> t.Any:
    from ..context import current_user_or_none

    return current_user_or_none()


def _uid(user: t.Any) -> str | None:
    """The primary key: Flask-Security's ``get_id()`` is ``fs_uniquifier``, which rotates."""
    value = getattr(user, "id", None)
    return None if value is None else str(value)


def _is_self(user: t.Any) -> bool:
    """Whether the signed-in user acts on their own account (not an admin or the CLI)."""
    current = _current_user()
    return current is not None and _uid(current) == _uid(user)


def _factor(method: str | None) -> str:
    return _FACTORS.get(method or "", (method or "unknown").replace("_", " "))


def _previous(user: t.Any, attribute: str) -> t.Any:
    """The value ``attribute`` had before this unflushed change, when SQLAlchemy knows it."""
    import sqlalchemy as sa

    try:
        history = sa.inspect(user).attrs[attribute].history
    except (sa.exc.NoInspectionAvailable, KeyError, AttributeError):
        return None
    return history.deleted[0] if history.added and history.deleted else None


def _target(user: t.Any) -> tuple[str, str] | None:
    uid = _uid(user)
    return None if uid is None else ("user", uid)


# -- sign-in ---------------------------------------------------------------------------


def _on_authenticated(user: t.Any, authn_via: list[str] | None = None, **_: t.Any) -> None:
    via = list(authn_via or [])
    if "change" in via:
        return  # Flask-Security logs the user in again after their own password change.
    primary = _pop_session(_PRIMARY)
    second, extra = None, t.cast("dict[str, t.Any]", {})
    if via:
        method = "+".join(via)
        if method == "email" and _view() == "us_verify_link":
            method = "email_link"
    elif second := _state().pop("second_factor", None) or _second_factor_of_view(user):
        method = primary or "unknown"  # tf_complete() calls login_user() without authn_via
    else:  # the app's own view called login_user(), perhaps after mark_login()
        method, extra = _app_login_method()
    details: dict[str, t.Any] = {**extra, "method": method}
    sentence = _SIGN_INS.get(method, f"Signed in ({method})")
    if second:
        details["second_factor"] = second
        joiner = "with" if sentence == "Signed in" else "and"
        sentence = f"{sentence} {joiner} two-factor authentication ({_factor(second)})"
    if _view() in {"us_signin", "us_verify_link"}:
        details["flow"] = "unified_signin"
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    record_sign_in(app, user, activity=sentence, details=details)


def _app_login_method() -> tuple[str, dict[str, t.Any]]:
    from .flask_login import pop_login_mark

    return pop_login_mark()


def _second_factor_of_view(user: t.Any) -> str | None:
    """Second factors Flask-Security accepts without a signal: a security key, a recovery code."""
    method = {"wan_signin_response": "webauthn", "mf_recovery": "recovery_code"}.get(_view() or "")
    if method is not None:
        activity = f"Verified two-factor authentication ({_factor(method)})"
        _record("two_factor.verified", actor=user, activity=activity, details={"method": method})
    return method


def _on_failed_authn(user: t.Any, auth_type: str = "password", tfa: bool = False, **_: t.Any) -> None:
    if has_request_context():
        _state()["failed"] = True
    if auth_type == "passkey" and has_request_context() and session.get("tf_state") == "ready":
        activity = "Failed two-factor authentication with a security key"
        details = {"method": "webauthn", "reason": "bad_passkey"}
        _record("two_factor.failed", actor=user, activity=activity, details=details)
    elif tfa:
        method = _pending_tf_method(user)
        activity = f"Entered a wrong two-factor code ({_factor(method)})"
        _record(
            "two_factor.failed",
            actor=user,
            activity=activity,
            details={"method": method, "reason": "bad_code"},
        )
    else:
        reason = _FAILURES.get(auth_type, f"bad_{auth_type}")
        _login_failed(user, None, reason, auth_type, reauthentication=_view() in _REAUTHENTICATION)


def _pending_tf_method(user: t.Any) -> str | None:
    if has_request_context() and session.get("tf_state") == "validating_profile":
        return t.cast("str | None", session.get("tf_primary_method"))
    return getattr(user, "tf_primary_method", None)


def _login_failed(
    user: t.Any, identity: tuple[str, str] | None, reason: str, method: str, reauthentication: bool = False
) -> None:
    """``user.login_failed`` in the Flask-Login adapter's shape: the actor is the account tried."""
    name, typed = identity if identity is not None else ("email", describe_user(user))
    what = "re-authentication" if reauthentication else "sign-in"
    details: dict[str, t.Any] = {"reason": reason, "method": method, name: typed}
    if reauthentication:
        details["reauthentication"] = True
    _record(
        "user.login_failed",
        actor=user,
        actor_email=typed if user is not None or "@" in typed else None,
        activity=f"Failed {what} for {typed} ({reason.replace('_', ' ')})",
        details=details,
    )


# -- the sign-in forms -----------------------------------------------------------------


def _hook_forms(app: Flask, **_: t.Any) -> None:
    """Wrap the sign-in forms' instantiators (again, if the app replaced one)."""
    security: t.Any = app.extensions.get("security")
    forms = getattr(security, "forms", None)
    if not forms:
        return
    from flask_security import FormInfo

    for name in _SIGN_IN_FORMS:
        info = forms.get(name)
        if info is not None and not getattr(info.instantiator, _WRAPPED, False):
            security.set_form_info(name, FormInfo(instantiator=_wrap(info.instantiator, name), cls=info.cls))


def _wrap(instantiator: c.Callable[..., t.Any], name: str) -> c.Callable[..., t.Any]:
    def instantiate(form_name: str, cls: t.Any = None, *args: t.Any, **kwargs: t.Any) -> t.Any:
        form = instantiator(form_name, cls, *args, **kwargs)
        if current_app.extensions.get(_CONNECTED):  # one Security may serve several apps
            if name in {"login_form", "us_signin_form"}:
                _pop_session(_PRIMARY)  # a new sign-in starts: forget an abandoned one
            _watch(form, name)
        return form

    setattr(instantiate, _WRAPPED, True)
    return instantiate


def _watch(form: t.Any, name: str) -> None:
    validate = form.validate

    def validate_and_record(*args: t.Any, **kwargs: t.Any) -> bool:
        ok = bool(validate(*args, **kwargs))
        _after_validate(name, form, ok)
        return ok

    form.validate = validate_and_record


def _after_validate(name: str, form: t.Any, ok: bool) -> None:
    if name == "login_form":
        _after_login_form(form, ok)
    elif name == "us_signin_form" and form.submit.data:  # not a request to send a code
        _after_us_signin_form(form, ok)
    elif name == "wan_signin_response_form" and ok and not getattr(form, "is_secondary", False):
        session[_PRIMARY] = "webauthn"
    elif name == "mf_recovery_form" and not ok and getattr(form, "user", None) and form.code.data:
        activity = "Entered a wrong two-factor code (recovery code)"
        details = {"method": "recovery_code", "reason": "bad_code"}
        _record("two_factor.failed", actor=form.user, activity=activity, details=details)


def _after_login_form(form: t.Any, ok: bool) -> None:
    if ok:
        session[_PRIMARY] = "password"
        return
    user = form.user
    if user is None:
        field = form.ifield  # set only once the identity was looked up
        if field is not None and isinstance(field.data, str) and field.data.strip():
            _login_failed(None, (field.name, field.data.strip()), "unknown_user", "password")
    elif not form.user_authenticated:
        if not _state().get("failed"):  # the app's track_failed_authn() sent no signal
            _login_failed(user, None, "bad_password", "password")
    else:
        _login_failed(user, None, _refusal(user, form), "password")


def _after_us_signin_form(form: t.Any, ok: bool) -> None:
    if ok:
        session[_PRIMARY] = form.authn_via
        return
    if not form.passcode.data:
        return  # no credential presented
    user = getattr(form, "user", None)
    identity = form.identity.data
    if user is None and isinstance(identity, str) and identity.strip() and not form.passcode.errors:
        _login_failed(None, ("identity", identity.strip()), "unknown_user", "passcode")
    elif user is not None and not _state().get("failed"):  # else user_failed_authn recorded it
        _login_failed(user, None, _refusal(user, form), "passcode")


def _refusal(user: t.Any, form: t.Any) -> str:
    """Why a user whose credentials were right was still refused."""
    if not getattr(user, "is_active", True):
        return "inactive"
    if getattr(form, "requires_confirmation", False):
        return "unconfirmed"
    return "locked"


# -- two-factor ------------------------------------------------------------------------


def _on_tf_code_confirmed(user: t.Any, method: str | None = None, **_: t.Any) -> None:
    details = {"method": method}
    if has_request_context():
        _state()["second_factor"] = method
        if session.get("tf_state") == "validating_profile":  # first setup, inside a sign-in
            activity = f"Enabled two-factor authentication ({_factor(method)})"
            _on_user("two_factor.enabled", user, activity, by_user=True, details=details)
    activity = f"Verified a two-factor code ({_factor(method)})"
    _record("two_factor.verified", actor=user, activity=activity, details=details)


def _on_tf_profile_changed(user: t.Any, method: str | None = None, **_: t.Any) -> None:
    previous = _previous(user, "tf_primary_method")
    details: dict[str, t.Any] = {"method": method}
    activity = f"Enabled two-factor authentication ({_factor(method)})"
    if previous:
        details["previous_method"] = previous
        activity = f"Changed two-factor authentication from {_factor(previous)} to {_factor(method)}"
    _on_user("two_factor.enabled", user, activity, details=details)


def _on_tf_disabled(user: t.Any, **_: t.Any) -> None:
    method = _previous(user, "tf_primary_method")
    details = {"method": method} if method else {}
    how = f" ({_factor(method)})" if method else ""
    if _is_self(user):
        _on_user("two_factor.disabled", user, f"Disabled two-factor authentication{how}", details=details)
    else:
        who = describe_user(user)
        activity = f"Reset two-factor authentication{how} of {who}"
        _on_user("two_factor.reset", user, activity, details={**details, "user": who})


# -- passwords and accounts ------------------------------------------------------------


def _on_password_changed(user: t.Any, **_: t.Any) -> None:
    if _is_self(user):
        _on_user("user.password_changed", user, "Changed password", details={"method": "change"})
    else:
        who = describe_user(user)
        details = {"method": "admin", "by_admin": True, "user": who}
        _on_user("user.password_changed", user, f"Changed the password of {who}", details=details)


def _on_password_reset(user: t.Any, **_: t.Any) -> None:
    details = {"method": "reset"}
    _on_user("user.password_changed", user, "Reset password by email link", by_user=True, details=details)


def _on_registered(user: t.Any, **_: t.Any) -> None:
    """``form_data`` and the confirmation token that come with the signal are never read."""
    if getattr(user, "id", 0) is None:
        _flush(user)
    activity = f"Signed up as {describe_user(user)}"
    _on_user(
        "user.created", user, activity, actor=_current_user() or user, details={"method": "registration"}
    )


def _flush(user: t.Any) -> None:
    """Give a just-created user its id; Flask-Security commits it right after this signal."""
    import sqlalchemy.orm as sa_orm

    try:
        db_session = sa_orm.object_session(user)
    except sa_orm.exc.UnmappedInstanceError:
        return
    if db_session is not None:
        db_session.flush()


def _on_confirmed(user: t.Any, **_: t.Any) -> None:
    _on_user("user.email_confirmed", user, f"Confirmed the email address {describe_user(user)}", by_user=True)


def _on_email_changed(user: t.Any, old_email: str | None = None, **_: t.Any) -> None:
    new = getattr(user, "email", None)
    activity = f"Changed email address from {old_email} to {new}"
    _on_user(
        "user.email_changed", user, activity, by_user=True, details={"old_email": old_email, "new_email": new}
    )


def _on_username_changed(user: t.Any, old_username: str | None = None, **_: t.Any) -> None:
    new = getattr(user, "username", None)
    activity = f"Changed username from {old_username} to {new}"
    details = {"old_username": old_username, "new_username": new}
    _on_user("user.username_changed", user, activity, by_user=True, details=details)


# -- unified sign-in and WebAuthn ------------------------------------------------------


def _sign_in_methods(user: t.Any, methods: list[str], removed: bool, **details: t.Any) -> None:
    names = ", ".join("passkey" if method == "webauthn" else _factor(method) for method in methods)
    verb, plural = ("Removed" if removed else "Added"), ("s" if len(methods) > 1 else "")
    event_type = "user.signin_method_removed" if removed else "user.signin_method_added"
    _on_user(
        event_type, user, f"{verb} sign-in method{plural}: {names}", details={"methods": methods, **details}
    )


def _on_us_profile_changed(
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
    _on_user(event_type, user, activity, details={"method": "webauthn", "key_name": name})


def _on_wan_registered(user: t.Any, name: str | None = None, **_: t.Any) -> None:
    _on_wan(user, name, removed=False)


def _on_wan_deleted(user: t.Any, name: str | None = None, **_: t.Any) -> None:
    _on_wan(user, name, removed=True)
