"""Sign-in with a password and, when enrolled, a TOTP code; sign-out.

flask_audit records ``user.login`` and ``user.logout`` from Flask-Login's signals; this
module adds what Flask-Login does not announce: ``signals.login_failed`` for a refused
password, and :func:`flask_audit.totp.verify_totp` for the code step, which records
``two_factor.verified`` or ``two_factor.failed``.
"""

from __future__ import annotations

import functools
import secrets
import typing as t

from flask import Blueprint
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_login import login_required
from flask_login import login_user
from flask_login import logout_user
from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from flask_audit import signals
from flask_audit.capture.flask_login import mark_login
from flask_audit.capture.totp import verify_totp

from .extensions import db
from .extensions import login_manager
from .helpers import app_object
from .helpers import field
from .helpers import safe_next
from .models import get_by_email
from .models import User

blueprint = Blueprint("auth", __name__)

PENDING = "demo_two_factor"
MAX_CODE_ATTEMPTS = 5
CODE_ERRORS = {
    "wrong_code": "That code is not correct. Check the time on your phone and try again.",
    "replayed": "That code was already used. Wait for the next one and enter it.",
    "malformed": "Enter the 6-digit code from your authenticator app.",
}


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id)) if user_id.isdigit() else None


def current_team_name() -> str | None:
    """``AUDIT_TEAM_LOADER``: the primary team of the signed-in user."""
    user = current_user._get_current_object() if current_user else None
    if not isinstance(user, User) or user.primary_team is None:
        return None
    return user.primary_team.name


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password, made the way real ones are.

    Checked against when the email is unknown, so that a refused sign-in takes as long for
    an unknown account as for a known one and its timing does not tell which emails exist
    (as Django and Flask-Security do).
    """
    return generate_password_hash(secrets.token_urlsafe(16))


def _home() -> str:
    return safe_next(request.values.get("next")) or url_for("workspace.overview")


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(_home())
    if request.method == "GET":
        return render_template("auth/login.html", email="", error=None)
    email, password = field("email", 320), request.form.get("password", "")
    if not email or not password:
        return render_template("auth/login.html", email=email, error="Enter your email and password."), 400
    user = get_by_email(email)
    if user is None:
        check_password_hash(_dummy_hash(), password)  # as long as for a known account
    if user is None or not check_password_hash(user.password_hash, password):
        reason = "unknown_user" if user is None else "bad_password"
        signals.login_failed.send(app_object(), email=email, reason=reason, user=user)
        return render_template("auth/login.html", email=email, error="Incorrect email or password."), 401
    remember = request.form.get("remember") == "on"
    if user.two_factor_enabled:
        session[PENDING] = {"user_id": user.id, "remember": remember, "next": _home(), "attempts": 0}
        return redirect(url_for("auth.two_factor"))
    login_user(user, remember=remember)
    return redirect(_home())


def _pending_user() -> tuple[dict[str, t.Any], User] | None:
    pending = session.get(PENDING)
    user = db.session.get(User, pending.get("user_id")) if isinstance(pending, dict) else None
    if pending is None or user is None or user.totp_secret is None:
        session.pop(PENDING, None)
        return None
    return pending, user


@blueprint.route("/login/two-factor", methods=["GET", "POST"])
def two_factor() -> ResponseReturnValue:
    found = _pending_user()
    if found is None:
        return redirect(url_for("auth.login"))
    pending, user = found
    if request.method == "GET":
        return render_template("auth/two_factor.html", user=user, error=None)
    check = verify_totp(user, t.cast(str, user.totp_secret), field("code", 32), last_step=user.totp_last_step)
    if not check.ok:
        pending["attempts"] = int(pending.get("attempts", 0)) + 1
        if pending["attempts"] >= MAX_CODE_ATTEMPTS:
            session.pop(PENDING)
            flash("Too many wrong codes. Sign in again to get new attempts.", "error")
            return redirect(url_for("auth.login"))
        session[PENDING] = pending
        error = CODE_ERRORS.get(check.reason or "", CODE_ERRORS["wrong_code"])
        return render_template("auth/two_factor.html", user=user, error=error), 401
    user.totp_last_step = check.step
    db.session.commit()
    session.pop(PENDING)
    mark_login("password", second_factor="totp")
    login_user(user, remember=bool(pending.get("remember")))
    return redirect(safe_next(pending.get("next")) or url_for("workspace.overview"))


@blueprint.post("/login/two-factor/cancel")
def cancel_two_factor() -> ResponseReturnValue:
    session.pop(PENDING, None)
    return redirect(url_for("auth.login"))


@blueprint.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    logout_user()
    flash("You have signed out.", "info")
    return redirect(url_for("auth.login"))
