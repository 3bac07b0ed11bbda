"""The seeded workspace's people: who they are now, and what was true of them when.

Times are resolved against the story's clock by :func:`cast`, so the same people serve
any "today". Each person stands in for a user in ``audit.record(actor=...)``: flask_audit
reads ``get_id()`` and ``email`` from it.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import datetime as dt
import random

At = c.Callable[[int, float], dt.datetime]

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0.0.0 Safari/537.36"
)
FIREFOX_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0"
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.5 Safari/605.1.15"
)
EDGE_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0"
)
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.5 Mobile/15E148 Safari/604.1"
)
ATTACKER_UA = "python-requests/2.31.0"
OFFICE_IPS = ("198.51.100.10", "198.51.100.11")
VPN_IP = "192.0.2.44"
EVER = dt.datetime.max.replace(tzinfo=dt.timezone.utc)


@dataclasses.dataclass
class Person:
    """One member of the workspace; the period fields are ``(start, end)`` times."""

    id: int
    name: str
    email: str
    role: str  # the role today
    teams: tuple[str, ...]  # today's teams, the primary one first
    start_hour: float  # when their working day starts, in UTC hours
    home_ip: str
    user_agent: str
    mobile_ua: str | None = None
    remembers: bool = False  # often comes back through the remember-me cookie
    joined: dt.datetime | None = None  # account created inside the trail's window
    left: dt.datetime | None = None  # account deleted
    two_factor: tuple[tuple[dt.datetime, dt.datetime], ...] = ()
    admin: tuple[tuple[dt.datetime, dt.datetime], ...] = ()
    team_before: tuple[str, dt.datetime] | None = None  # another primary team until then
    vpn: bool = False

    def get_id(self) -> str:
        return str(self.id)

    def active_at(self, when: dt.datetime) -> bool:
        return (self.joined is None or when > self.joined) and (self.left is None or when < self.left)

    def two_factor_at(self, when: dt.datetime) -> bool:
        return any(start <= when < end for start, end in self.two_factor)

    def is_admin_at(self, when: dt.datetime) -> bool:
        return any(start <= when < end for start, end in self.admin)

    def team_at(self, when: dt.datetime) -> str | None:
        if self.team_before is not None and when < self.team_before[1]:
            return self.team_before[0]
        return self.teams[0] if self.teams else None

    def ip_at(self, when: dt.datetime, rng: random.Random) -> str:
        """Office on most weekdays, home otherwise, the VPN for those who use it."""
        if self.vpn and rng.random() < 0.3:
            return VPN_IP
        if when.weekday() < 5 and rng.random() < 0.7:
            return OFFICE_IPS[self.id % 2]
        return self.home_ip


@dataclasses.dataclass(frozen=True)
class System:
    """The actor of command-line work such as ``flask audit prune``."""

    email: str = "system"

    def get_id(self) -> str:
        return "system"


SYSTEM = System()


def cast(at: At) -> dict[str, Person]:
    """Everyone, with their periods placed on the story's calendar (``at(days_ago, hour)``)."""
    always = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    people = [
        Person(
            1,
            "Maya Chen",
            "maya@example.com",
            "admin",
            ("Engineering",),
            8.0,
            "203.0.113.17",
            CHROME_MAC,
            SAFARI_IPHONE,
            admin=((always, EVER),),
        ),
        Person(
            2,
            "Sam Rivera",
            "sam@example.com",
            "member",
            ("Engineering", "Design"),
            8.5,
            "203.0.113.24",
            FIREFOX_WIN,
            remembers=True,
        ),
        Person(
            3,
            "Priya Nair",
            "priya@example.com",
            "admin",
            ("Engineering", "Data"),
            6.5,
            "2001:db8:4a7::3",
            CHROME_LINUX,
            SAFARI_IPHONE,
            two_factor=((at(112, 9.3), EVER),),
            admin=((always, EVER),),
            vpn=True,
        ),
        Person(
            4,
            "Jonas Berg",
            "jonas@example.com",
            "member",
            ("Engineering",),
            7.0,
            "203.0.113.31",
            CHROME_LINUX,
            two_factor=((at(97, 8.2), EVER),),
            admin=((at(88, 11.1), at(31, 15.4)),),
            vpn=True,
        ),
        Person(
            5,
            "Amara Okafor",
            "amara@example.com",
            "member",
            ("Design",),
            8.2,
            "203.0.113.38",
            SAFARI_MAC,
            SAFARI_IPHONE,
            two_factor=((at(64, 10.6), EVER),),
        ),
        Person(
            6,
            "Lucas Martin",
            "lucas@example.com",
            "member",
            ("Growth",),
            8.8,
            "203.0.113.45",
            EDGE_WIN,
            remembers=True,
        ),
        Person(
            7,
            "Elena Petrova",
            "elena@example.com",
            "member",
            ("Growth", "Support"),
            6.0,
            "203.0.113.52",
            CHROME_MAC,
            SAFARI_IPHONE,
            two_factor=((at(103, 7.4), at(33, 9.2)), (at(32, 8.1), EVER)),
        ),
        Person(
            8,
            "Omar Haddad",
            "omar@example.com",
            "member",
            ("Support",),
            12.0,
            "203.0.113.59",
            FIREFOX_WIN,
            two_factor=((at(80, 13.3), at(45, 14.2)),),
            team_before=("Growth", at(15, 16.0)),
        ),
        Person(
            9,
            "Hannah Schmidt",
            "hannah@example.com",
            "member",
            ("Support",),
            6.8,
            "203.0.113.66",
            CHROME_MAC,
            remembers=True,
        ),
        Person(
            10,
            "Diego Alvarez",
            "diego@example.com",
            "member",
            ("Engineering",),
            13.5,
            "2001:db8:4a7::a",
            CHROME_MAC,
            joined=at(73, 14.1),
            two_factor=((at(70, 14.6), EVER),),
        ),
        Person(
            11,
            "Kenji Watanabe",
            "kenji@example.com",
            "member",
            ("Design",),
            0.5,
            "2001:db8:4a7::b",
            SAFARI_MAC,
            joined=at(26, 1.2),
            two_factor=((at(20, 0.9), EVER),),
        ),
        Person(
            12,
            "Sofia Rossi",
            "sofia@example.com",
            "member",
            ("Growth",),
            7.6,
            "203.0.113.80",
            EDGE_WIN,
            joined=at(12, 8.3),
        ),
        Person(
            13,
            "Noah Williams",
            "noah@example.com",
            "member",
            ("Engineering", "Data"),
            14.0,
            "203.0.113.87",
            CHROME_LINUX,
            two_factor=((at(100, 14.4), EVER),),
        ),
        Person(
            14,
            "Chloé Dubois",
            "chloe@example.com",
            "member",
            ("Growth",),
            7.2,
            "203.0.113.94",
            SAFARI_MAC,
            remembers=True,
        ),
        Person(
            15,
            "Alex Kim",
            "alex@example.net",
            "member",
            (),
            9.5,
            "203.0.113.101",
            FIREFOX_WIN,
            joined=at(110, 10.2),
            left=at(40, 16.5),
            team_before=("Contractors", EVER),
        ),
    ]
    return {person.email.split("@")[0]: person for person in people}
