"""First-run data: the workspace as it stands today and the 120 days of history behind it.

The rows of today's users, teams and invitations are inserted in bulk, so that the
tracking hooks do not stamp them as created today; their history is recorded instead
through ``audit.record(..., occurred_at=...)`` with the dates, actors, addresses and user
agents of the story, in one transaction (``session=db.session``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import secrets
import time
import typing as t

import pyotp
import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import current_app
from werkzeug.security import generate_password_hash

from .extensions import audit
from .extensions import db
from .history import credential_stuffing
from .history import daily_activity
from .history import Entry
from .history import Story
from .milestones import organisation
from .milestones import security
from .models import Invitation
from .models import Team
from .models import team_member
from .models import User
from .people import EVER
from .people import Person

ADMIN_EMAIL, ADMIN_PASSWORD = "maya@example.com", "demo-admin-pass"
MEMBER_EMAIL, MEMBER_PASSWORD = "sam@example.com", "demo-member-pass"
TEAMS = ("Contractors", "Engineering", "Design", "Growth", "Support", "Data")
DEPARTED_TEAM = "Contractors"
_BATCH = 1000


@dataclasses.dataclass(frozen=True)
class SeedResult:
    users: int
    teams: int
    events: int
    seconds: float


def is_empty() -> bool:
    """Whether the workspace has no users yet: the one time to seed."""
    return db.session.scalar(sa.select(User.id).limit(1)) is None


def _naive(when: dt.datetime) -> dt.datetime:
    return when.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _insert_teams(story: Story) -> dict[str, int]:
    """Today's teams; the deleted one is made and removed first so its id stays its own."""
    created = {"Data": story.at(20, 10.4), DEPARTED_TEAM: story.at(111, 9.7)}
    long_ago = _naive(story.now - dt.timedelta(days=400))
    for name in TEAMS:
        when = _naive(created[name]) if name in created else long_ago
        db.session.execute(sa.insert(Team), [{"name": name, "created_at": when}])
    ids = {team.name: team.id for team in db.session.scalars(sa.select(Team))}
    table = t.cast(sa.Table, Team.__table__)
    db.session.connection().execute(sa.delete(table).where(table.c.id == ids[DEPARTED_TEAM]))
    return ids


def _user_row(
    person: Person, story: Story, hashes: dict[str, str], team_ids: dict[str, int]
) -> dict[str, object]:
    enrolled = bool(person.two_factor) and person.two_factor[-1][1] == EVER
    password = "admin" if person.email == ADMIN_EMAIL else "member"
    return {
        "email": person.email,
        "name": person.name,
        "password_hash": hashes[password],
        "role": person.role,
        "primary_team_id": team_ids.get(person.teams[0]) if person.teams else None,
        "totp_secret": pyotp.random_base32() if enrolled else None,
        "created_at": _naive(person.joined or story.now - dt.timedelta(days=400)),
    }


def _insert_users(story: Story, team_ids: dict[str, int]) -> dict[str, int]:
    """Today's users; the departed contractor's row is made and removed so his id stays his."""
    hashes = {
        "admin": generate_password_hash(ADMIN_PASSWORD),
        "member": generate_password_hash(MEMBER_PASSWORD),
    }
    people = sorted(story.people.values(), key=lambda person: person.left is None)
    for person in people:
        db.session.execute(sa.insert(User), [_user_row(person, story, hashes, team_ids)])
    ids = {user.email: user.id for user in db.session.scalars(sa.select(User))}
    for person in people:
        person.id = ids[person.email]
    departed = [person.id for person in people if person.left is not None]
    table = t.cast(sa.Table, User.__table__)
    db.session.connection().execute(sa.delete(table).where(table.c.id.in_(departed)))
    memberships = [
        {"team_id": team_ids[team], "user_id": person.id}
        for person in people
        if person.left is None
        for team in person.teams
    ]
    db.session.execute(sa.insert(team_member), memberships)
    return ids


def _insert_invitations(story: Story, team_ids: dict[str, int], user_ids: dict[str, int]) -> None:
    people = story.people
    rows = []
    for email, by, team, days, accepted in (
        ("kenji@example.com", "priya@example.com", "Design", 27, people["kenji"].joined),
        ("sofia@example.com", "maya@example.com", "Growth", 13, people["sofia"].joined),
        ("diego@example.com", "maya@example.com", "Engineering", 74, people["diego"].joined),
        ("ravi@example.com", "maya@example.com", "Engineering", 4, None),
    ):
        rows.append(
            {
                "email": email,
                "role": "member",
                "team_id": team_ids[team],
                "token": secrets.token_urlsafe(32),
                "invited_by_id": user_ids[by],
                "created_at": _naive(story.at(days, 10.0)),
                "accepted_at": _naive(accepted) if accepted else None,
            }
        )
    db.session.execute(sa.insert(Invitation), rows)


def _record(entry: Entry, session: sa_orm.Session) -> None:
    audit.record(
        entry.event_type,
        activity=entry.activity,
        actor=entry.actor,
        actor_email=entry.actor_email if entry.actor is None else entry.actor.email,
        team=entry.team,
        tenant_id=None,
        target=entry.target,
        details=entry.details,
        occurred_at=entry.when,
        session=session,
    )


def record_history(entries: list[Entry]) -> int:
    """Record the entries oldest first; each request's entries share one request context.

    Each request gets its own app context too, so that it gets its own request id; the
    events all join this context's session, committed once by the caller.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    session = db.session()
    with contextlib.ExitStack() as stack:
        group = None
        for count, entry in enumerate(sorted(entries, key=lambda each: each.when), start=1):
            if entry.group is None or entry.group != group:
                stack.close()
                if entry.ip is not None or entry.user_agent is not None:
                    environ = {"REMOTE_ADDR": entry.ip or "", "HTTP_USER_AGENT": entry.user_agent or ""}
                    stack.enter_context(app.app_context())
                    stack.enter_context(app.test_request_context("/", environ_base=environ))
            group = entry.group
            _record(entry, session)
            if count % _BATCH == 0:
                session.flush()
        stack.close()
    return len(entries)


def seed(now: dt.datetime | None = None) -> SeedResult:
    """Fill an empty workspace; call inside an app context."""
    started = time.perf_counter()
    story = Story(now or dt.datetime.now(dt.timezone.utc))
    team_ids = _insert_teams(story)
    user_ids = _insert_users(story, team_ids)
    _insert_invitations(story, team_ids, user_ids)
    story.team_ids = team_ids
    daily_activity(story)
    credential_stuffing(story)
    organisation(story)
    security(story)
    events = record_history(story.entries)
    db.session.commit()
    return SeedResult(
        users=len(user_ids) - 1, teams=len(team_ids) - 1, events=events, seconds=time.perf_counter() - started
    )
