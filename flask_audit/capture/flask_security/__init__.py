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
``user_registered``                            ``user.created`` (``method``: registration)
``user_confirmed``                             ``user.email_confirmed`` (User, update)
``change_email_confirmed``                     ``user.email_changed`` (User, update)
``username_changed``                           ``user.username_changed`` (User, update)
=============================================  ==============================================

What no signal announces is read from the datastore's user model at each flush (module
``user_changes``) and written in the same transaction: ``user.created`` (``flask users
create``, ``datastore.create_user``), ``user.deleted``, ``user.deactivated`` and
``user.activated`` (User, update), and one ``role.updated`` per user per transaction with
the whole sorted lists of role names before and after (``add_role_to_user``,
``remove_role_from_user``, ``flask roles add|remove``, any change to ``user.roles``, from
either side; module ``role_changes``). ``reset_user_access`` (``flask users
reset_access``) is wrapped on the datastore (module ``datastore``): ``user.access_reset``.
So are ``tf_set`` and ``tf_reset`` (module ``two_factor``): called by the app's own code,
or by ``reset_user_access``, they announce nothing, and are recorded as the transaction
commits unless a signal about the same user reported the change.
Where ``AUDIT_IS_ADMIN`` is not given, the audit log's admins are the users with the role
``AUDIT_ADMIN_ROLE`` (module ``admins``).

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
- A wrong code confirming a two-factor or unified sign-in set-up from the account's
  settings sends no signal either: the code forms are read the same way
  (``two_factor.failed`` with ``setup``). Set-up again with the same method and a new key
  is ``two_factor.enabled`` with ``rekeyed``.
- A failed sign-in names the account tried under ``identity`` on every path.

The receivers live in ``sign_in`` (sign-ins, failed sign-ins, the sign-in forms and the
two-factor set-up code form) and ``account`` (two-factor, passwords, registration and
confirmation, email and username changes, unified sign-in methods and WebAuthn keys);
``helpers`` holds what they share.
"""

from __future__ import annotations

import collections.abc as c
import typing as t

from flask import appcontext_pushed
from flask import Flask
from flask import has_app_context
from flask import request_started

from . import two_factor
from . import user_changes
from .account import on_confirmed
from .account import on_email_changed
from .account import on_password_changed
from .account import on_password_reset
from .account import on_registered
from .account import on_tf_code_confirmed
from .account import on_tf_disabled
from .account import on_tf_profile_changed
from .account import on_us_profile_changed
from .account import on_username_changed
from .account import on_wan_deleted
from .account import on_wan_registered
from .admins import use_admin_role
from .datastore import hook_datastore
from .helpers import CONNECTED
from .helpers import real
from .sign_in import hook_forms
from .sign_in import on_authenticated
from .sign_in import on_failed_authn

if t.TYPE_CHECKING:
    from ...state import Recorder


def connect(app: Flask, audit: Recorder) -> None:
    """Connect the receivers for ``app``'s Flask-Security signals; a no-op if it is absent.

    Safe to call more than once per app. ``Security`` may be set up before or after
    ``Audit``: signals are matched by sender, and the forms are hooked on each request.
    """
    if app.extensions.get(CONNECTED):
        return
    try:
        from flask_security import signals as fs
    except ImportError:
        return
    app.extensions[CONNECTED] = True
    receivers: dict[str, c.Callable[..., None]] = {
        "user_authenticated": on_authenticated,
        "user_failed_authn": on_failed_authn,
        "tf_code_confirmed": on_tf_code_confirmed,
        "tf_profile_changed": on_tf_profile_changed,
        "tf_disabled": on_tf_disabled,
        "password_changed": on_password_changed,
        "password_reset": on_password_reset,
        "user_registered": on_registered,
        "user_confirmed": on_confirmed,
        "change_email_confirmed": on_email_changed,
        "username_changed": on_username_changed,
        "us_profile_changed": on_us_profile_changed,
        "wan_registered": on_wan_registered,
        "wan_deleted": on_wan_deleted,
    }
    for name, receiver in receivers.items():
        signal = getattr(fs, name, None)  # older releases lack some (user_failed_authn: 5.8)
        if signal is not None:
            signal.connect(_guarded(receiver), sender=app, weak=False)
    request_started.connect(hook_forms, sender=app, weak=False)
    appcontext_pushed.connect(hook_datastore, sender=app, weak=False)
    user_changes.install()
    two_factor.install()
    if "audit" in app.extensions:
        use_admin_role(app)


def _guarded(receiver: c.Callable[..., None]) -> c.Callable[..., None]:
    """Run ``receiver`` only inside an app context: Flask-Security also sends from the CLI."""

    def receive(app: Flask, **kwargs: t.Any) -> None:
        if has_app_context():
            receiver(real(kwargs.pop("user", None)), **kwargs)

    return receive
