"""Invitations by email: send, revoke, and accept through the link in the message.

Sending and revoking record ``invite.sent`` and ``invite.revoked`` through flask_audit's
signals. Accepting creates the account, which the tracked ``User`` model records as
``user.created`` (nobody is signed in yet, so it has no actor), then ``invite.accepted``
by the new user, then signs them in, marked with ``mark_login`` so the ``user.login``
event says it came from an invitation link rather than a password.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from flask import abort
from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_login import login_user
from flask_login import logout_user
from flask_mail import Message
from werkzeug.security import generate_password_hash

from flask_audit import signals
from flask_audit.capture.flask_login import mark_login

from .extensions import audit
from .extensions import db
from .extensions import mail
from .helpers import account
from .helpers import admin_required
from .helpers import app_object
from .helpers import EMAIL
from .helpers import field
from .helpers import form_id
from .models import get_by_email
from .models import Invitation
from .models import ROLES
from .models import Team
from .models import User
from .models import utcnow

blueprint = Blueprint("invitations", __name__)

MIN_PASSWORD = 8


def _send_mail(invitation: Invitation, inviter: User, product: str) -> None:
    link = url_for("invitations.accept", token=invitation.token, _external=True)
    team = f" in the {invitation.team.name} team" if invitation.team else ""
    message = Message(
        subject=f"{inviter.name} invited you to {product}",
        recipients=[invitation.email],
        body=(
            f"Hello,\n\n{inviter.name} ({inviter.email}) invited you to join {product}{team}"
            f" as {'an admin' if invitation.role == 'admin' else 'a member'}.\n\n"
            f"Accept the invitation and choose your password:\n{link}\n\n"
            "If you did not expect this invitation, you can ignore this message.\n"
        ),
        html=render_template("email/invitation.html", invitation=invitation, inviter=inviter, link=link),
    )
    mail.send(message)


def _invite_error(email: str, role: str) -> str | None:
    if not EMAIL.match(email):
        return "Enter the email address of the person to invite."
    if role not in ROLES:
        return "Choose member or admin."
    if get_by_email(email) is not None:
        return f"{email} is already a member of the workspace."
    pending = sa.select(Invitation).where(
        sa.func.lower(Invitation.email) == email.lower(),
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
    )
    if db.session.scalar(pending) is not None:
        return f"{email} already has a pending invitation."
    return None


@blueprint.post("/invitations")
@admin_required
def invite() -> ResponseReturnValue:
    email, role = field("email", 255), field("role", 16) or "member"
    error = _invite_error(email, role)
    if error:
        flash(error, "error")
        return redirect(url_for("workspace.members"))
    team_id = form_id("team_id")
    team = db.session.get(Team, team_id) if team_id else None
    inviter = account()
    invitation = Invitation(
        email=email, role=role, team=team, invited_by=inviter, token=secrets.token_urlsafe(32)
    )
    db.session.add(invitation)
    signals.invite_sent.send(app_object(), email=email, role=role, team=team, session=db.session)
    db.session.commit()
    _send_mail(invitation, inviter, current_app.config["DEMO_PRODUCT_NAME"])
    flash(f"Invitation sent to {email}.", "success")
    return redirect(url_for("workspace.members"))


@blueprint.post("/invitations/<int:invitation_id>/revoke")
@admin_required
def revoke(invitation_id: int) -> ResponseReturnValue:
    invitation = db.get_or_404(Invitation, invitation_id)
    if invitation.pending:
        invitation.revoked_at = utcnow()
        signals.invite_revoked.send(app_object(), email=invitation.email, session=db.session)
        db.session.commit()
        flash(f"Revoked the invitation of {invitation.email}.", "success")
    return redirect(url_for("workspace.members"))


def _pending_invitation(token: str) -> Invitation:
    invitation = db.session.scalar(sa.select(Invitation).where(Invitation.token == token[:64]))
    if invitation is None or not invitation.pending:
        abort(410, "This invitation is no longer valid: it was used or revoked. Ask an admin for a new one.")
    return invitation


@blueprint.get("/invitations/<token>")
def accept(token: str) -> ResponseReturnValue:
    invitation = _pending_invitation(token)
    return render_template("auth/accept.html", invitation=invitation, name="", error=None)


@blueprint.post("/invitations/<token>")
def accept_post(token: str) -> ResponseReturnValue:
    invitation = _pending_invitation(token)
    name, password = field("name", 120), request.form.get("password", "")[:200]
    error = None
    if not name:
        error = "Enter your name."
    elif len(password) < MIN_PASSWORD:
        error = f"Choose a password of at least {MIN_PASSWORD} characters."
    elif get_by_email(invitation.email) is not None:
        error = f"{invitation.email} already has an account: sign in instead."
    if error:
        return render_template("auth/accept.html", invitation=invitation, name=name, error=error), 400
    if current_user.is_authenticated:
        logout_user()
    user = User(
        email=invitation.email,
        name=name,
        password_hash=generate_password_hash(password),
        role=invitation.role,
        primary_team=invitation.team,
        teams=[invitation.team] if invitation.team else [],
    )
    invitation.accepted_at = utcnow()
    with audit.acting_as(user):  # not signed in yet, but the account is theirs to make
        db.session.add(user)
        db.session.flush()
    signals.invite_accepted.send(
        app_object(), user=user, role=invitation.role, team=invitation.team, session=db.session
    )
    db.session.commit()
    mark_login("invitation_link", invitation_id=invitation.id)
    login_user(user)
    flash(f"Welcome to the workspace, {name}.", "success")
    return redirect(url_for("workspace.overview"))
