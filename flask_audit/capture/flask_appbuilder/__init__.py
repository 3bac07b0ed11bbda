"""Flask-AppBuilder's security layer → events, with no code in the app.

Connected for every app by :func:`flask_audit.capture.connect` once FAB is set up on it
(``app.extensions["appbuilder"]``), whether ``AppBuilder`` is initialised before or after
``Audit``: until it is, the adapter waits for the app's next app context. This package is
imported only when ``flask_appbuilder`` already is, so ``import flask_audit`` never loads FAB.

=========================================================  ====================================
FAB                                                        event (``details``)
=========================================================  ====================================
``auth_user_db`` / ``_ldap`` / ``_oauth`` / ``_saml`` /     ``user.login`` (``method``: password,
``_remote_user`` return a user                             ldap, oauth, saml, remote_user, or
                                                           jwt for ``POST /api/v1/security/login``)
... return ``None``                                        ``user.login_failed`` (``username``,
                                                           ``reason``, ``method``)
``logout_user()`` in FAB's logout view                     ``user.logout`` (Flask-Login adapter)
a ``User`` inserted / deleted (admin views, ``add_user``)  ``user.created`` / ``user.deleted``
... by their own sign-up (registration, first sign-in)     ``user.created`` (``method``)
its name, email, ``active`` or groups changed              ``user.updated`` (``changes``)
its roles changed, from either side                        ``role.updated`` (``before``/``after``:
                                                           sorted role names)
its password changed                                       ``user.password_changed``
a ``Role`` renamed or its permissions changed              ``role.updated`` (``role``, ``name``,
                                                           ``permissions``)
=========================================================  ====================================

FAB's user admin writes through its generic model views, not through the security manager,
so user and role changes are read from the ORM flush (``users``, ``role_side``, ``roles``)
and written in the same transaction; FAB's own permission sync is left out (``roles``).
Sign-in results are read by wrapping the security manager's ``auth_user_*`` methods on the
instance (``sign_in``); form sign-ins still reach the event through Flask-Login's
``user_logged_in``, told the method by :func:`~flask_audit.capture.flask_login.mark_login`.
``admin`` makes FAB's ``Admin`` role the audit admins, fixes the login redirect and adds the
"Audit log" entry to FAB's Security menu; ``tables`` makes FAB's ``create-db`` create the
audit tables.
"""

from __future__ import annotations

import threading
import typing as t

from flask import appcontext_pushed
from flask import Flask

from . import admin
from . import role_side
from . import roles
from . import sign_in
from . import tables
from . import users
from .rows import CONNECTED

if t.TYPE_CHECKING:
    from ...state import Recorder

_WAITING = "audit.flask_appbuilder.waiting"  # app.extensions key: waiting for FAB to be set up
_HOOKING = "audit.flask_appbuilder.hooking"  # app.extensions key: being hooked by this thread
#: Concurrent first requests wait for one to finish hooking FAB (views must be added before
#: any request is dispatched); re-entrant, for an app context pushed while hooking.
_LOCK = threading.RLock()


def connect(app: Flask, audit: Recorder) -> None:
    """Hook FAB on ``app`` now if it is set up, else on the first app context after it is.

    Safe to call more than once per app.
    """
    tables.install()
    users.install()
    if "appbuilder" in app.extensions:
        _connect_now(app)
    elif not app.extensions.get(_WAITING):
        app.extensions[_WAITING] = True
        appcontext_pushed.connect(_on_app_context, sender=app, weak=False)


def _on_app_context(app: Flask, **extra: t.Any) -> None:
    if "appbuilder" in app.extensions and not app.extensions.get(CONNECTED):
        _connect_now(app)


def _connect_now(app: Flask) -> None:
    with _LOCK:
        if app.extensions.get(CONNECTED) or app.extensions.get(_HOOKING):
            return
        app.extensions[_HOOKING] = True
        try:
            _hook(app)
        finally:
            del app.extensions[_HOOKING]
        app.extensions[CONNECTED] = True


def _hook(app: Flask) -> None:
    appbuilder = app.extensions["appbuilder"]
    sign_in.hook(app, appbuilder)
    roles.hook(appbuilder.sm)
    role_side.watch(appbuilder.sm.user_model)
    admin.hook(app, appbuilder)
    tables.create_missing(app)
