"""120 days of believable workspace history, as the events flask_audit would have recorded.

The story: a workspace older than its trail (the first 90-day prune removed what came
before), fourteen people in five teams, one contractor who came and went, an SSO
rollout that was enforced and later switched off, people turning two-factor on (and one
off), daily sign-ins from office, home and VPN addresses, a few typos, lost phones and
credential-stuffing bursts. Sentences and details follow the ones the extension writes.
Addresses come from the documentation ranges (RFC 5737, RFC 3849); the same seed gives
the same story, shifted to end today.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import typing as t

from .people import ATTACKER_UA
from .people import cast
from .people import Person
from .people import System

AUTH_METHOD = "authenticator app"
OLD_IDP = "https://login.example.org/saml/idp"
OLD_IDP_SSO_URL = "https://login.example.org/saml/sso"


@dataclasses.dataclass
class Entry:
    """One event to record: ``record()``'s arguments plus where the request came from."""

    when: dt.datetime
    event_type: str
    activity: str
    actor: Person | System | None
    details: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    target: tuple[str, str] | None = None
    ip: str | None = None
    user_agent: str | None = None
    actor_email: str | None = None
    team: str | None = None
    group: int | None = None  # entries of one request share it (and its request id)


class Story:
    """Builds the entries; ``days`` count back from ``now``'s date."""

    def __init__(self, now: dt.datetime, seed: int = 2024) -> None:
        self.now = now
        self.rng = random.Random(seed)
        self.entries: list[Entry] = []
        self._groups = 0
        self.fingerprints = [self._fingerprint(), self._fingerprint()]
        self.people = cast(self.at)
        self.renamed_at = self.at(58, 14.5)
        self.team_ids: dict[str, int] = {}  # filled in once the rows exist

    def at(self, days: int, hour: float) -> dt.datetime:
        midnight = dt.datetime.combine(self.now.date(), dt.time(), dt.timezone.utc) - dt.timedelta(days=days)
        return midnight + dt.timedelta(hours=hour, seconds=self.rng.randint(0, 59))

    def _fingerprint(self) -> str:
        return ":".join(f"{self.rng.randrange(256):02X}" for _ in range(32))

    def team_name(self, team: str | None, when: dt.datetime) -> str | None:
        """A team's name at the time: Growth was called Marketing before the rename."""
        return "Marketing" if team == "Growth" and when < self.renamed_at else team

    def add(
        self,
        when: dt.datetime,
        event_type: str,
        activity: str,
        actor: Person | System | None,
        **fields: t.Any,
    ) -> None:
        """Add an entry; one dated after ``now`` (later today) is left out."""
        if when >= self.now:
            return
        if isinstance(actor, Person):
            fields.setdefault("ip", actor.ip_at(when, self.rng))
            fields.setdefault("user_agent", actor.user_agent)
            fields.setdefault("team", self.team_name(actor.team_at(when), when))
        self.entries.append(Entry(when, event_type, activity, actor, **fields))

    def request(self) -> int:
        self._groups += 1
        return self._groups


def _sso_enforced(story: Story, when: dt.datetime) -> bool:
    return story.at(60, 10) <= when < story.at(19, 16)


def _sign_in(story: Story, person: Person, when: dt.datetime, *, second: bool = False) -> dt.datetime:
    """One sign-in, with what can go before it; returns when it succeeded."""
    rng = story.rng
    ip = person.home_ip if second else person.ip_at(when, rng)
    ua = person.mobile_ua if second and person.mobile_ua else person.user_agent
    common = {"ip": ip, "user_agent": ua}
    if _sso_enforced(story, when) and not person.is_admin_at(when):
        if rng.random() < 0.02:
            story.add(
                when - dt.timedelta(minutes=1),
                "user.login_failed",
                "Failed SSO sign-in: the response has expired",
                None,
                actor_email=person.email,
                details={"method": "sso", "reason": "expired", "idp_entity_id": OLD_IDP},
                **common,
            )
        sso = {"method": "sso", "idp_entity_id": OLD_IDP, "name_id": person.email}
        story.add(when, "user.login", "Signed in with SSO", person, details=sso, **common)
        return when
    if not second and person.remembers and rng.random() < 0.35:
        cookie = {"method": "remember_cookie"}
        story.add(when, "user.login", "Signed in with a remember-me cookie", person, details=cookie, **common)
        return when
    if rng.random() < 0.03:
        story.add(
            when - dt.timedelta(seconds=40),
            "user.login_failed",
            f"Failed sign-in for {person.email} (bad password)",
            person,
            details={"reason": "bad_password", "email": person.email},
            **common,
        )
    details: dict[str, t.Any] = {"method": "password"}
    group = story.request()
    if person.two_factor_at(when):
        if rng.random() < 0.04:
            story.add(
                when - dt.timedelta(seconds=25),
                "two_factor.failed",
                f"Failed two-factor authentication ({AUTH_METHOD}) for {person.email}",
                person,
                details={"method": AUTH_METHOD, "user": person.email, "reason": "wrong_code"},
                **common,
            )
        story.add(
            when - dt.timedelta(seconds=1),
            "two_factor.verified",
            f"Verified two-factor authentication ({AUTH_METHOD}) for {person.email}",
            person,
            details={"method": AUTH_METHOD, "user": person.email},
            group=group,
            **common,
        )
        details["second_factor"] = "totp"
    story.add(when, "user.login", "Signed in", person, details=details, group=group, **common)
    return when


def daily_activity(story: Story) -> None:
    """Sign-ins on working days (and the odd weekend), sign-outs, a second device now and then."""
    rng = story.rng
    for days in range(120, -1, -1):
        date = story.now.date() - dt.timedelta(days=days)
        weekend = date.weekday() >= 5
        for person in story.people.values():
            start = story.at(days, person.start_hour + rng.gauss(0, 0.6))
            if not person.active_at(start) or rng.random() > (0.08 if weekend else 0.9):
                continue
            signed_in = _sign_in(story, person, start)
            if rng.random() < 0.5:
                end = signed_in + dt.timedelta(hours=rng.uniform(6.5, 9.5))
                if person.active_at(end):
                    story.add(end, "user.logout", "Signed out", person, ip=person.ip_at(end, rng))
            if rng.random() < 0.4:
                evening = story.at(days, person.start_hour + rng.uniform(10, 13))
                if person.active_at(evening):
                    _sign_in(story, person, evening, second=True)


def credential_stuffing(story: Story) -> None:
    """Short bursts of sign-ins for guessed addresses from one outside address."""
    guesses = ["admin@example.com", "root@example.com", "test@example.com", "maya.chen@example.com"]
    guesses += ["support@example.com", "it@example.com", "info@example.com"]
    for days, hour, ip in (
        (95, 3.2, "203.0.113.201"),
        (47, 22.7, "203.0.113.222"),
        (8, 1.4, "2001:db8:bad::17"),
    ):
        when = story.at(days, hour)
        for guess in story.rng.sample(guesses, story.rng.randint(4, 7)):
            when += dt.timedelta(seconds=story.rng.randint(2, 9))
            story.add(
                when,
                "user.login_failed",
                f"Failed sign-in for {guess} (unknown user)",
                None,
                actor_email=guess,
                details={"reason": "unknown_user", "email": guess},
                ip=ip,
                user_agent=ATTACKER_UA,
            )
