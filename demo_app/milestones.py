"""The one-off moments of the seeded story: teams, invitations, roles, 2FA, SSO, exports, prune.

Each helper writes an entry the way the demo's own views would have caused it, with the
sentence and details flask_audit gives that event type.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from .history import AUTH_METHOD
from .history import OLD_IDP
from .history import OLD_IDP_SSO_URL
from .history import Story
from .people import Person
from .people import SYSTEM


def _team_event(story: Story, days: int, hour: float, actor: Person, verb: str, team: str) -> None:
    when = story.at(days, hour)
    details = {"values": {"name": team}}
    target = ("team", str(story.team_ids.get(team, team)))
    story.add(when, f"team.{verb}", f"{verb.capitalize()} team {team}", actor, details=details, target=target)


def _member(
    story: Story, days: int, hour: float, actor: Person, member: Person, team: str, added: bool
) -> None:
    verb, prep = ("Added", "to") if added else ("Removed", "from")
    event_type = "team.member_added" if added else "team.member_removed"
    details = {"team": team, "member": member.email}
    activity = f"{verb} {member.email} {prep} team {team}"
    story.add(story.at(days, hour), event_type, activity, actor, details=details, target=("team", team))


def _two_factor(
    story: Story, days: int, hour: float, person: Person, verb: str, by: Person | None = None
) -> None:
    when = story.at(days, hour)
    if verb == "reset" and by is not None:
        activity = f"Reset two-factor authentication of {person.email}"
        details: dict[str, t.Any] = {"user": person.email}
        story.add(when, "two_factor.reset", activity, by, details=details, target=("user", person.get_id()))
        return
    activity = f"{verb.capitalize()} two-factor authentication ({AUTH_METHOD}) for {person.email}"
    details = {"method": AUTH_METHOD, "user": person.email}
    story.add(when, f"two_factor.{verb}", activity, person, details=details, target=("user", person.get_id()))


def _invite(
    story: Story, days: int, hour: float, by: Person, email: str, role: str, team: str | None
) -> None:
    details = {"email": email, "role": role, **({"team": team} if team else {})}
    activity = f"Invited {email} as {role.capitalize()}"
    story.add(
        story.at(days, hour), "invite.sent", activity, by, details=details, target=("invitation", email)
    )


def _join(story: Story, person: Person, role: str, team: str | None) -> None:
    """An invitation accepted: the account, the acceptance, the first sign-in."""
    when = t.cast(dt.datetime, person.joined)
    request = {"ip": person.home_ip, "user_agent": person.user_agent}
    story.add(
        when,
        "user.created",
        f"Created user {person.email}",
        None,
        details={"values": {"role": role}},
        target=("user", person.get_id()),
        **request,
    )
    details = {"email": person.email, "role": role, **({"team": team} if team else {})}
    activity = f"Accepted the invitation of {person.email}"
    target = ("invitation", person.email)
    story.add(
        when + dt.timedelta(seconds=1), "invite.accepted", activity, person, details=details, target=target
    )
    details = {"method": "invitation_link"}
    activity = "Signed in with invitation link"
    story.add(when + dt.timedelta(seconds=2), "user.login", activity, person, details=details, **request)


def _role(story: Story, days: int, hour: float, by: Person, person: Person, old: str, new: str) -> None:
    activity = f"Changed role of {person.email} from {old.capitalize()} to {new.capitalize()}"
    details = {"before": old, "after": new}
    story.add(
        story.at(days, hour), "role.updated", activity, by, details=details, target=("user", person.get_id())
    )


def _password(story: Story, days: int, hour: float, person: Person, by: Person | None = None) -> None:
    activity = f"Reset the password of {person.email}" if by else f"Changed the password of {person.email}"
    details = {"by_admin": by is not None}
    target = ("user", person.get_id())
    story.add(
        story.at(days, hour), "user.password_changed", activity, by or person, details=details, target=target
    )


def _export(story: Story, days: int, hour: float, by: Person, rows: int, filters: dict[str, str]) -> None:
    activity = f"Exported {rows} audit events to {by.email}"
    details = {"rows": rows, "filters": filters, "format": "csv"}
    story.add(story.at(days, hour), "audit.exported", activity, by, details=details)


def _sso(
    story: Story, days: int, hour: float, by: Person, event_type: str, activity: str, **details: t.Any
) -> None:
    target = ("idp", OLD_IDP)
    story.add(
        story.at(days, hour),
        event_type,
        activity,
        by,
        details={"idp_entity_id": OLD_IDP, **details},
        target=target,
    )


def organisation(story: Story) -> None:
    """Teams come and go, people join, change teams and leave."""
    p = story.people
    maya, priya = p["maya"], p["priya"]
    _team_event(story, 111, 9.7, priya, "created", "Contractors")
    _member(story, 111, 9.8, priya, priya, "Contractors", True)
    _invite(story, 111, 10.1, priya, "alex@example.net", "member", "Contractors")
    _join(story, p["alex"], "member", "Contractors")
    _invite(story, 74, 15.2, maya, "diego@example.com", "member", "Engineering")
    _join(story, p["diego"], "member", "Engineering")
    story.add(
        story.at(58, 14.5),
        "team.updated",
        "Renamed team Marketing to Growth",
        maya,
        details={"changes": {"name": ["Marketing", "Growth"]}},
        target=("team", str(story.team_ids.get("Growth", "Growth"))),
    )
    _member(story, 57, 9.1, maya, p["elena"], "Support", True)
    _member(story, 41, 16.0, priya, p["alex"], "Contractors", False)
    _member(story, 41, 16.1, priya, priya, "Contractors", False)
    story.add(
        p["alex"].left or story.now,
        "user.deleted",
        "Deleted user alex@example.net",
        priya,
        details={"values": {"role": "member"}},
        target=("user", p["alex"].get_id()),
    )
    _team_event(story, 40, 16.7, priya, "deleted", "Contractors")
    _member(story, 35, 11.3, maya, p["sam"], "Design", True)
    _invite(story, 27, 9.5, priya, "kenji.watanabe@example.org", "member", "Design")
    story.add(
        story.at(27, 11.2),
        "invite.revoked",
        "Revoked the invitation of kenji.watanabe@example.org",
        priya,
        details={"email": "kenji.watanabe@example.org"},
        target=("invitation", "kenji.watanabe@example.org"),
    )
    _invite(story, 27, 11.3, priya, "kenji@example.com", "member", "Design")
    _join(story, p["kenji"], "member", "Design")
    _team_event(story, 20, 10.4, maya, "created", "Data")
    _member(story, 20, 10.5, maya, p["noah"], "Data", True)
    _member(story, 20, 10.6, maya, priya, "Data", True)
    _member(story, 15, 16.0, maya, p["omar"], "Growth", False)
    _invite(story, 13, 9.0, maya, "sofia@example.com", "member", "Growth")
    _join(story, p["sofia"], "member", "Growth")
    _invite(story, 4, 10.2, maya, "ravi@example.com", "member", "Engineering")


def security(story: Story) -> None:
    """Roles, passwords, second factors, SSO and the audit log's own trail."""
    p = story.people
    maya, priya = p["maya"], p["priya"]
    _role(story, 88, 11.1, priya, p["jonas"], "member", "admin")
    _role(story, 31, 15.4, maya, p["jonas"], "admin", "member")
    for key, days, hour in (
        ("priya", 112, 9.3),
        ("jonas", 97, 8.2),
        ("amara", 64, 10.6),
        ("elena", 103, 7.4),
    ):
        _two_factor(story, days, hour, p[key], "enabled")
    for key, days, hour in (("omar", 80, 13.3), ("diego", 70, 14.6), ("kenji", 20, 0.9), ("noah", 100, 14.4)):
        _two_factor(story, days, hour, p[key], "enabled")
    _two_factor(story, 33, 9.2, p["elena"], "reset", by=maya)
    _two_factor(story, 32, 8.1, p["elena"], "enabled")
    _two_factor(story, 45, 14.2, p["omar"], "disabled")
    _password(story, 90, 9.9, p["lucas"])
    _password(story, 52, 7.3, p["hannah"])
    _password(story, 44, 12.5, p["omar"], by=maya)
    fp_old, fp_new = story.fingerprints
    _sso(
        story,
        105,
        10.0,
        priya,
        "sso.configured",
        f"Configured SSO with {OLD_IDP}",
        sso_url=OLD_IDP_SSO_URL,
        signing_fingerprints=[fp_old],
        enforced=False,
    )
    _sso(
        story,
        77,
        9.4,
        priya,
        "sso.updated",
        f"Rotated the SSO signing certificate of {OLD_IDP}",
        signing_fingerprints={"before": [fp_old], "after": [fp_new], "added": [fp_new], "removed": [fp_old]},
    )
    _sso(
        story,
        60,
        10.0,
        maya,
        "sso.updated",
        "Enforced SSO for all members",
        enforced={"before": False, "after": True},
    )
    _sso(story, 19, 16.0, maya, "sso.disabled", f"Disabled SSO with {OLD_IDP}", sso_url=OLD_IDP_SSO_URL,
         signing_fingerprints=[fp_new], enforced={"before": True, "after": False})  # fmt: skip
    _export(story, 85, 15.0, priya, 212, {"event_type": "user.login_failed"})
    _export(story, 29, 10.8, maya, 1630, {"start": str(story.at(59, 0).date())})
    _export(story, 6, 9.6, maya, 48, {"entity": "SSO"})
    cutoff = story.at(120, 2.0).strftime("%Y-%m-%d %H:%M:%S UTC")
    story.add(
        story.at(30, 2.0),
        "audit.pruned",
        f"Pruned 1184 audit events older than {cutoff}",
        SYSTEM,
        details={"days": 90, "count": 1184},
    )
