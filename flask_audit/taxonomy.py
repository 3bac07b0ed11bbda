"""The fixed event types: each one's entity, action and default outcome and sentence.

Apps may record their own types by passing ``entity`` and ``action`` to ``record()``.
"""

from __future__ import annotations

import typing as t

ACTIONS = ("create", "update", "delete", "export", "login", "logout")
OUTCOMES = ("success", "failure")
SUCCESS, FAILURE = OUTCOMES


class EventKind(t.NamedTuple):
    entity: str
    action: str
    outcome: str
    activity: str


_LOGIN = "Login"
_USER = "User"
_TFA = "Two-factor authentication"
_SSO = "SSO"
_TEAM = "Team"
_INVITE = "Invitation"

EVENT_TYPES: dict[str, EventKind] = {
    "user.login": EventKind(_LOGIN, "login", SUCCESS, "Signed in"),
    "user.login_failed": EventKind(_LOGIN, "login", FAILURE, "Failed sign-in"),
    "user.logout": EventKind(_LOGIN, "logout", SUCCESS, "Signed out"),
    "user.created": EventKind(_USER, "create", SUCCESS, "Created a user"),
    "user.deleted": EventKind(_USER, "delete", SUCCESS, "Deleted a user"),
    "user.password_changed": EventKind(_USER, "update", SUCCESS, "Changed a password"),
    "two_factor.enabled": EventKind(_TFA, "create", SUCCESS, "Enabled two-factor authentication"),
    "two_factor.disabled": EventKind(_TFA, "delete", SUCCESS, "Disabled two-factor authentication"),
    "two_factor.reset": EventKind(_TFA, "update", SUCCESS, "Reset two-factor authentication"),
    "two_factor.verified": EventKind(_TFA, "login", SUCCESS, "Verified a two-factor code"),
    "two_factor.failed": EventKind(_TFA, "login", FAILURE, "Entered a wrong two-factor code"),
    "sso.configured": EventKind(_SSO, "create", SUCCESS, "Configured SSO"),
    "sso.updated": EventKind(_SSO, "update", SUCCESS, "Updated SSO settings"),
    "sso.disabled": EventKind(_SSO, "delete", SUCCESS, "Disabled SSO"),
    "team.created": EventKind(_TEAM, "create", SUCCESS, "Created a team"),
    "team.updated": EventKind(_TEAM, "update", SUCCESS, "Updated a team"),
    "team.deleted": EventKind(_TEAM, "delete", SUCCESS, "Deleted a team"),
    "team.member_added": EventKind(_TEAM, "update", SUCCESS, "Added a team member"),
    "team.member_removed": EventKind(_TEAM, "update", SUCCESS, "Removed a team member"),
    "invite.sent": EventKind(_INVITE, "create", SUCCESS, "Sent an invitation"),
    "invite.accepted": EventKind(_INVITE, "update", SUCCESS, "Accepted an invitation"),
    "invite.revoked": EventKind(_INVITE, "delete", SUCCESS, "Revoked an invitation"),
    "role.updated": EventKind("Role", "update", SUCCESS, "Changed a role"),
    "audit.enabled": EventKind("Audit log", "create", SUCCESS, "Enabled the audit log"),
    "audit.exported": EventKind("Audit log", "export", SUCCESS, "Exported the audit log"),
    "audit.alert_sent": EventKind("Audit log", "create", SUCCESS, "Sent an audit alert"),
    "audit.health_failed": EventKind("Audit log", "update", FAILURE, "An audit pipeline check failed"),
    "audit.reviewed": EventKind("Audit log", "update", SUCCESS, "Reviewed the audit log"),
    "audit.stream_failing": EventKind("Audit log", "update", FAILURE, "An audit log stream is failing"),
    "audit.stream_recovered": EventKind("Audit log", "update", SUCCESS, "An audit log stream recovered"),
    "audit.stream_paused": EventKind("Audit log", "update", SUCCESS, "Paused an audit log stream"),
    "audit.stream_resumed": EventKind("Audit log", "update", SUCCESS, "Resumed an audit log stream"),
    "audit.stream_rewound": EventKind("Audit log", "update", SUCCESS, "Rewound an audit log stream"),
    "audit.pruned": EventKind("Audit log", "delete", SUCCESS, "Pruned the audit log"),
}

ENTITIES: tuple[str, ...] = tuple(dict.fromkeys(kind.entity for kind in EVENT_TYPES.values()))
