"""Teams, members and roles: the admin changes the audit trail is for.

Team creation, renaming and deletion are recorded by ``audit.track(Team, ...)``, a role
change by the tracked ``role`` field of ``User``, and members joining or leaving a team
by :data:`flask_audit.signals.team_member_added` and ``team_member_removed``, sent with
``session=db.session`` so that each event commits with its change.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort
from flask import Blueprint
from flask import flash
from flask import redirect
from flask import render_template
from flask import url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required

from flask_audit import AuditEvent
from flask_audit import signals

from .extensions import db
from .helpers import account
from .helpers import admin_required
from .helpers import app_object
from .helpers import field
from .helpers import form_id
from .models import Invitation
from .models import ROLES
from .models import Team
from .models import User

blueprint = Blueprint("workspace", __name__)

TEAM_NAME_MAX = 80


def _team(team_id: int) -> Team:
    return db.get_or_404(Team, team_id)


def _teams() -> list[Team]:
    return list(db.session.scalars(sa.select(Team).order_by(Team.name)))


def _users() -> list[User]:
    return list(db.session.scalars(sa.select(User).order_by(User.name)))


@blueprint.get("/")
@login_required
def overview() -> ResponseReturnValue:
    user = account()
    users = _users()
    recent: list[AuditEvent] = []
    if user.is_admin:
        query = sa.select(AuditEvent).order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(6)
        recent = list(db.session.scalars(query))
    pending = db.session.scalar(
        sa.select(sa.func.count(Invitation.id)).where(
            Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None)
        )
    )
    return render_template(
        "workspace/overview.html",
        user=user,
        users=users,
        teams=_teams(),
        pending_invitations=pending or 0,
        two_factor_count=sum(1 for each in users if each.two_factor_enabled),
        recent=recent,
    )


@blueprint.get("/teams")
@login_required
def teams() -> ResponseReturnValue:
    return render_template("workspace/teams.html", teams=_teams(), users=_users(), user=account())


def _name_error(name: str, team: Team | None = None) -> str | None:
    if not name:
        return "Give the team a name."
    if len(name) > TEAM_NAME_MAX:
        return f"A team name has at most {TEAM_NAME_MAX} characters."
    taken = db.session.scalar(sa.select(Team).where(sa.func.lower(Team.name) == name.lower()))
    if taken is not None and taken is not team:
        return f"There is already a team named {taken.name}."
    return None


@blueprint.post("/teams")
@admin_required
def create_team() -> ResponseReturnValue:
    name = field("name", TEAM_NAME_MAX + 1)
    error = _name_error(name)
    if error:
        flash(error, "error")
    else:
        db.session.add(Team(name=name))
        db.session.commit()
        flash(f"Created the team {name}.", "success")
    return redirect(url_for("workspace.teams"))


@blueprint.post("/teams/<int:team_id>/rename")
@admin_required
def rename_team(team_id: int) -> ResponseReturnValue:
    team = _team(team_id)
    name = field("name", TEAM_NAME_MAX + 1)
    error = _name_error(name, team)
    if error:
        flash(error, "error")
    elif name != team.name:
        old = team.name
        team.name = name
        db.session.commit()
        flash(f"Renamed the team {old} to {name}.", "success")
    return redirect(url_for("workspace.teams"))


@blueprint.post("/teams/<int:team_id>/delete")
@admin_required
def delete_team(team_id: int) -> ResponseReturnValue:
    team = _team(team_id)
    for member in team.members:
        if member.primary_team_id == team.id:
            member.primary_team = next((other for other in member.teams if other is not team), None)
    team.members.clear()
    db.session.execute(sa.update(Invitation).where(Invitation.team_id == team.id).values(team_id=None))
    db.session.delete(team)
    db.session.commit()
    flash(f"Deleted the team {team.name}.", "success")
    return redirect(url_for("workspace.teams"))


@blueprint.post("/teams/<int:team_id>/members")
@admin_required
def add_member(team_id: int) -> ResponseReturnValue:
    team = _team(team_id)
    user_id = form_id("user_id")
    user = db.session.get(User, user_id) if user_id else None
    if user is None:
        flash("Choose someone to add.", "error")
    elif user in team.members:
        flash(f"{user.name} is already in {team.name}.", "info")
    else:
        team.members.append(user)
        if user.primary_team is None:
            user.primary_team = team
        signals.team_member_added.send(app_object(), team=team, user=user, session=db.session)
        db.session.commit()
        flash(f"Added {user.name} to {team.name}.", "success")
    return redirect(url_for("workspace.teams"))


@blueprint.post("/teams/<int:team_id>/members/<int:user_id>/remove")
@admin_required
def remove_member(team_id: int, user_id: int) -> ResponseReturnValue:
    team = _team(team_id)
    user = db.get_or_404(User, user_id)
    if user in team.members:
        team.members.remove(user)
        if user.primary_team_id == team.id:
            user.primary_team = next((other for other in user.teams if other is not team), None)
        signals.team_member_removed.send(app_object(), team=team, user=user, session=db.session)
        db.session.commit()
        flash(f"Removed {user.name} from {team.name}.", "success")
    return redirect(url_for("workspace.teams"))


@blueprint.get("/members")
@login_required
def members() -> ResponseReturnValue:
    invitations = db.session.scalars(
        sa.select(Invitation)
        .where(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .order_by(Invitation.created_at.desc())
    )
    return render_template(
        "workspace/members.html",
        users=_users(),
        teams=_teams(),
        invitations=list(invitations),
        roles=ROLES,
        user=account(),
    )


def _admin_count() -> int:
    return int(db.session.scalar(sa.select(sa.func.count(User.id)).where(User.role == "admin")) or 0)


@blueprint.post("/members/<int:user_id>/role")
@admin_required
def change_role(user_id: int) -> ResponseReturnValue:
    user = db.get_or_404(User, user_id)
    role = field("role", 16)
    if role not in ROLES:
        abort(400, f"Unknown role {role!r}: choose member or admin.")
    if user.role == "admin" and role != "admin" and _admin_count() == 1:
        flash("The workspace needs at least one admin: make someone else an admin first.", "error")
    elif role != user.role:
        user.role = role
        db.session.commit()
        flash(f"{user.name} is now {'an admin' if role == 'admin' else 'a member'}.", "success")
    return redirect(url_for("workspace.members"))


@blueprint.post("/members/<int:user_id>/remove")
@admin_required
def remove_user(user_id: int) -> ResponseReturnValue:
    user = db.get_or_404(User, user_id)
    if user.id == account().id:
        flash("You cannot remove yourself from the workspace.", "error")
        return redirect(url_for("workspace.members"))
    db.session.execute(
        sa.update(Invitation).where(Invitation.invited_by_id == user.id).values(invited_by_id=None)
    )
    user.teams.clear()
    db.session.delete(user)
    db.session.commit()
    flash(f"Removed {user.name} ({user.email}) from the workspace.", "success")
    return redirect(url_for("workspace.members"))
