"""Sign-ins and failed sign-ins: ``user_authenticated``, ``user_failed_authn`` and the forms.

The sign-in forms are read after validation for what Flask-Security does not announce: an
unknown identity, a refused account, a wrong recovery code, the first factor of a sign-in
that a second factor completes on the next request, and a wrong code confirming a
two-factor or unified sign-in set-up from the account's settings.
"""

from __future__ import annotations

import collections.abc as c
import typing as t

from flask import current_app
from flask import Flask
from flask import has_request_context
from flask import request
from flask import session
from itsdangerous import BadData

from ..flask_login import record_sign_in
from ..names import describe_user
from .helpers import CONNECTED
from .helpers import factor
from .helpers import pop_session
from .helpers import record
from .helpers import state
from .helpers import view

_PRIMARY = "_flask_audit_fs_primary"  # session: first factor of a sign-in awaiting its second
_WRAPPED = "_flask_audit_wrapped"

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
#: Read after validation too: the forms that confirm a two-factor or unified sign-in set-up.
_WATCHED_FORMS = (*_SIGN_IN_FORMS, "two_factor_verify_code_form", "us_setup_validate_form")
#: The views of unified sign-in: a failed sign-in there carries ``flow: "unified_signin"``.
_UNIFIED = {"us_signin", "us_verify_link"}


def on_authenticated(user: t.Any, authn_via: list[str] | None = None, **_: t.Any) -> None:
    via = list(authn_via or [])
    if "change" in via:
        return  # Flask-Security logs the user in again after their own password change.
    primary = pop_session(_PRIMARY)
    second, extra = None, t.cast("dict[str, t.Any]", {})
    if via:
        method = "+".join(via)
        if method == "email" and view() == "us_verify_link":
            method = "email_link"
    elif second := state().pop("second_factor", None) or _second_factor_of_view(user):
        method = primary or "unknown"  # tf_complete() calls login_user() without authn_via
    else:  # the app's own view called login_user(), perhaps after mark_login()
        method, extra = _app_login_method()
    details: dict[str, t.Any] = {**extra, "method": method}
    sentence = _SIGN_INS.get(method, f"Signed in ({method})")
    if second:
        details["second_factor"] = second
        joiner = "with" if sentence == "Signed in" else "and"
        sentence = f"{sentence} {joiner} two-factor authentication ({factor(second)})"
    if view() in {"us_signin", "us_verify_link"}:
        details["flow"] = "unified_signin"
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    record_sign_in(app, user, activity=sentence, details=details)


def _app_login_method() -> tuple[str, dict[str, t.Any]]:
    from ..flask_login import pop_login_mark

    return pop_login_mark()


def _second_factor_of_view(user: t.Any) -> str | None:
    """Second factors Flask-Security accepts without a signal: a security key, a recovery code."""
    method = {"wan_signin_response": "webauthn", "mf_recovery": "recovery_code"}.get(view() or "")
    if method is not None:
        activity = f"Verified two-factor authentication ({factor(method)})"
        record("two_factor.verified", actor=user, activity=activity, details={"method": method})
    return method


def on_failed_authn(user: t.Any, auth_type: str = "password", tfa: bool = False, **_: t.Any) -> None:
    if has_request_context():
        state()["failed"] = True
    if auth_type == "passkey" and has_request_context() and session.get("tf_state") == "ready":
        activity = "Failed two-factor authentication with a security key"
        details = {"method": "webauthn", "reason": "bad_passkey"}
        record("two_factor.failed", actor=user, activity=activity, details=details)
    elif tfa:
        setup = has_request_context() and session.get("tf_state") == "validating_profile"
        _wrong_code(user, _pending_tf_method(user), setup=setup)
    else:
        reason = _FAILURES.get(auth_type, f"bad_{auth_type}")
        _login_failed(user, None, reason, auth_type, reauthentication=view() in _REAUTHENTICATION)


def _wrong_code(user: t.Any, method: str | None, *, setup: bool, unified: bool = False) -> None:
    """``two_factor.failed``; ``setup`` when the code was to confirm a new set-up, ``unified``
    when that set-up was of a unified sign-in method."""
    details: dict[str, t.Any] = {"method": method, "reason": "bad_code"}
    activity = f"Entered a wrong two-factor code ({factor(method)})"
    if setup:
        details["setup"] = True
        what = "unified sign-in" if unified else "two-factor"
        activity = f"Entered a wrong {what} set-up code ({factor(method)})"
    if unified:
        details["flow"] = "unified_signin"
    record("two_factor.failed", actor=user, activity=activity, details=details)


def _pending_tf_method(user: t.Any) -> str | None:
    if has_request_context() and session.get("tf_state") == "validating_profile":
        return t.cast("str | None", session.get("tf_primary_method"))
    return getattr(user, "tf_primary_method", None)


def _login_failed(
    user: t.Any, typed: str | None, reason: str, method: str, reauthentication: bool = False
) -> None:
    """``user.login_failed``; as in the Flask-Login adapter, the actor is the account tried.

    The account tried is under ``identity`` on every path (login form, unified sign-in, its
    email link, passkeys, re-authentication): what was typed for an unknown account, else
    the account as ``AUDIT_ACTOR_EMAIL`` names it.
    """
    identity = typed if typed is not None else describe_user(user)
    what = "re-authentication" if reauthentication else "sign-in"
    details: dict[str, t.Any] = {"reason": reason, "method": method, "identity": identity}
    if reauthentication:
        details["reauthentication"] = True
    if view() in _UNIFIED:
        details["flow"] = "unified_signin"
    record(
        "user.login_failed",
        actor=user,
        actor_email=identity if user is not None or "@" in identity else None,
        activity=f"Failed {what} for {identity} ({reason.replace('_', ' ')})",
        details=details,
    )


# -- the sign-in forms -----------------------------------------------------------------


def hook_forms(app: Flask, **_: t.Any) -> None:
    """Wrap the sign-in forms' instantiators (again, if the app replaced one)."""
    security: t.Any = app.extensions.get("security")
    forms = getattr(security, "forms", None)
    if not forms:
        return
    from flask_security import FormInfo

    for name in _WATCHED_FORMS:
        info = forms.get(name)
        if info is not None and not getattr(info.instantiator, _WRAPPED, False):
            security.set_form_info(name, FormInfo(instantiator=_wrap(info.instantiator, name), cls=info.cls))


def _wrap(instantiator: c.Callable[..., t.Any], name: str) -> c.Callable[..., t.Any]:
    def instantiate(form_name: str, cls: t.Any = None, *args: t.Any, **kwargs: t.Any) -> t.Any:
        form = instantiator(form_name, cls, *args, **kwargs)
        if current_app.extensions.get(CONNECTED):  # one Security may serve several apps
            if name in {"login_form", "us_signin_form"}:
                pop_session(_PRIMARY)  # a new sign-in starts: forget an abandoned one
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
    elif name == "two_factor_verify_code_form" and not ok and getattr(form, "is_setup", False):
        if form.code.data and getattr(form, "user", None) is not None:  # no signal for a set-up code
            _wrong_code(form.user, getattr(form, "primary_method", None) or None, setup=True)
    elif name == "us_setup_validate_form" and not ok and form.passcode.data:
        if getattr(form, "user", None) is not None:  # no signal for a unified sign-in set-up code
            _wrong_code(form.user, _us_setup_method(), setup=True, unified=True)
    elif name == "mf_recovery_form" and not ok and getattr(form, "user", None) and form.code.data:
        activity = "Entered a wrong two-factor code (recovery code)"
        details = {"method": "recovery_code", "reason": "bad_code"}
        record("two_factor.failed", actor=form.user, activity=activity, details=details)


def _us_setup_method() -> str | None:
    """The method being set up, from the view's signed state token (read, never stored)."""
    token = (request.view_args or {}).get("token")
    serializer = getattr(current_app.extensions.get("security"), "us_setup_serializer", None)
    if not isinstance(token, str) or serializer is None:
        return None
    try:
        state = serializer.loads(token)
    except BadData:  # the view itself refuses such a token
        return None
    method = state.get("chosen_method") if isinstance(state, dict) else None
    return method if isinstance(method, str) else None


def _after_login_form(form: t.Any, ok: bool) -> None:
    if ok:
        session[_PRIMARY] = "password"
        return
    user = form.user
    if user is None:
        field = form.ifield  # set only once the identity was looked up
        if field is not None and isinstance(field.data, str) and field.data.strip():
            _login_failed(None, field.data.strip(), "unknown_user", "password")
    elif not form.user_authenticated:
        if not state().get("failed"):  # the app's track_failed_authn() sent no signal
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
        _login_failed(None, identity.strip(), "unknown_user", "passcode")
    elif user is not None and not state().get("failed"):  # else user_failed_authn recorded it
        _login_failed(user, None, _refusal(user, form), "passcode")


def _refusal(user: t.Any, form: t.Any) -> str:
    """Why a user whose credentials were right was still refused."""
    if not getattr(user, "is_active", True):
        return "inactive"
    if getattr(form, "requires_confirmation", False):
        return "unconfirmed"
    return "locked"
