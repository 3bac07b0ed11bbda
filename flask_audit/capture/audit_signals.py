"""flask_audit's own signals → events, for what the identity stack does not announce.

Each receiver turns the signal's keyword arguments into an activity sentence, a target
and structured details, then calls ``audit.record()``. Every signal also accepts
``details`` (merged into the event's details) and ``session`` (join that transaction).
"""

from __future__ import annotations

import collections.abc as c
import typing as t

from blinker import NamedSignal
from flask import Flask
from flask import has_app_context

from .. import signals
from .names import describe_team
from .names import describe_user
from .names import nice
from .names import user_id

Fields = dict[str, t.Any]


def _subject(user: t.Any, email: str | None = None) -> tuple[str, tuple[str, str] | None]:
    if user is None and email is not None:
        return email, None
    uid = user_id(user)
    return describe_user(user), (("user", uid) if uid is not None else None)


def _two_factor(verb: str, *, self_acting: bool = True) -> c.Callable[..., Fields]:
    def build(user: t.Any = None, method: str | None = None, reason: str | None = None, **_: t.Any) -> Fields:
        who, target = _subject(user)
        how = f" ({method.replace('_', ' ')})" if method else ""
        sentence = f"{verb} two-factor authentication{how}"
        fields: Fields = {"target": target, "details": {"method": method, "user": who}}
        if reason:
            fields["details"]["reason"] = reason
        if self_acting:
            fields["actor"] = user  # the user is mid-sign-in: not yet current_user
            fields["activity"] = f"{sentence} for {who}"
        else:
            fields["activity"] = f"{sentence} of {who}"
        return fields

    return build


def _two_factor_change(verb: str) -> c.Callable[..., Fields]:
    def build(user: t.Any = None, method: str | None = None, **_: t.Any) -> Fields:
        who, target = _subject(user)
        how = f" ({method.replace('_', ' ')})" if method else ""
        return {
            "activity": f"{verb} two-factor authentication{how} for {who}",
            "target": target,
            "details": {"method": method, "user": who},
        }

    return build


def _sso(verb: str) -> c.Callable[..., Fields]:
    def build(settings: t.Any = None, old: t.Any = None, new: t.Any = None, **_: t.Any) -> Fields:
        current = dict(new or settings or {})
        before = dict(old or {})
        idp = current.get("entity_id") or before.get("entity_id") or "the identity provider"
        details: dict[str, t.Any] = {"settings": current} if verb != "Updated" else {}
        if verb == "Updated":
            details["changes"] = {
                key: [before.get(key), current.get(key)]
                for key in sorted(set(before) | set(current))
                if before.get(key) != current.get(key)
            }
        return {"activity": f"{verb} SSO with {idp}", "target": ("sso", str(idp)), "details": details}

    return build


def _team(verb: str) -> c.Callable[..., Fields]:
    def build(team: t.Any = None, old_name: str | None = None, changes: t.Any = None, **_: t.Any) -> Fields:
        name = describe_team(team)
        sentence = f"Renamed team {old_name} to {name}" if old_name else f"{verb} team {name}"
        details: dict[str, t.Any] = {"team": name}
        if old_name:
            details["changes"] = {"name": [old_name, name]}
        if changes:
            details["changes"] = dict(changes)
        return {"activity": sentence, "target": ("team", name), "details": details}

    return build


def _member(verb: str, preposition: str) -> c.Callable[..., Fields]:
    def build(team: t.Any = None, user: t.Any = None, email: str | None = None, **_: t.Any) -> Fields:
        name = describe_team(team)
        who, _target = _subject(user, email)
        return {
            "activity": f"{verb} {who} {preposition} team {name}",
            "target": ("team", name),
            "details": {"team": name, "member": who},
        }

    return build


def _invite(verb: str) -> c.Callable[..., Fields]:
    def build(
        email: str | None = None, user: t.Any = None, role: t.Any = None, team: t.Any = None, **_: t.Any
    ) -> Fields:
        who, _target = _subject(user, email)
        as_role = f" as {nice(role)}" if role and verb == "Invited" else ""
        sentence = f"{verb} {who}{as_role}" if verb == "Invited" else f"{verb} the invitation of {who}"
        fields: Fields = {
            "activity": sentence,
            "target": ("invitation", who),
            "details": {"email": who, "role": role, "team": describe_team(team) if team else None},
        }
        if verb == "Accepted" and user is not None:
            fields["actor"] = user  # accepting happens before the new user is signed in
        return fields

    return build


def _role(user: t.Any = None, old: t.Any = None, new: t.Any = None, **_: t.Any) -> Fields:
    who, target = _subject(user)
    return {
        "activity": f"Changed role of {who} from {nice(old)} to {nice(new)}",
        "target": target,
        "details": {"before": getattr(old, "name", old), "after": getattr(new, "name", new)},
    }


def _user(verb: str) -> c.Callable[..., Fields]:
    def build(user: t.Any = None, email: str | None = None, by_admin: bool = False, **_: t.Any) -> Fields:
        who, target = _subject(user, email)
        if verb == "password":
            sentence = f"Reset the password of {who}" if by_admin else f"Changed the password of {who}"
            return {"activity": sentence, "target": target, "details": {"by_admin": bool(by_admin)}}
        return {"activity": f"{verb} user {who}", "target": target, "details": {"email": who}}

    return build


RECEIVERS: dict[NamedSignal, tuple[str, c.Callable[..., Fields]]] = {
    signals.two_factor_enabled: ("two_factor.enabled", _two_factor_change("Enabled")),
    signals.two_factor_disabled: ("two_factor.disabled", _two_factor_change("Disabled")),
    signals.two_factor_reset: ("two_factor.reset", _two_factor("Reset", self_acting=False)),
    signals.two_factor_verified: ("two_factor.verified", _two_factor("Verified")),
    signals.two_factor_failed: ("two_factor.failed", _two_factor("Failed")),
    signals.sso_configured: ("sso.configured", _sso("Configured")),
    signals.sso_updated: ("sso.updated", _sso("Updated")),
    signals.sso_disabled: ("sso.disabled", _sso("Disabled")),
    signals.team_created: ("team.created", _team("Created")),
    signals.team_updated: ("team.updated", _team("Updated")),
    signals.team_deleted: ("team.deleted", _team("Deleted")),
    signals.team_member_added: ("team.member_added", _member("Added", "to")),
    signals.team_member_removed: ("team.member_removed", _member("Removed", "from")),
    signals.invite_sent: ("invite.sent", _invite("Invited")),
    signals.invite_accepted: ("invite.accepted", _invite("Accepted")),
    signals.invite_revoked: ("invite.revoked", _invite("Revoked")),
    signals.role_updated: ("role.updated", _role),
    signals.user_created: ("user.created", _user("Created")),
    signals.user_deleted: ("user.deleted", _user("Deleted")),
    signals.password_changed: ("user.password_changed", _user("password")),
}


def event_fields(signal: NamedSignal, **kwargs: t.Any) -> tuple[str, Fields]:
    """The event type and ``record()`` arguments that ``signal`` sent with ``kwargs`` gives."""
    event_type, build = RECEIVERS[signal]
    extra_details = kwargs.pop("details", None) or {}
    fields = build(**kwargs)
    fields["details"] = {
        **{k: v for k, v in fields.get("details", {}).items() if v is not None},
        **extra_details,
    }
    return event_type, fields


def _receiver(signal: NamedSignal) -> c.Callable[..., None]:
    def receive(sender: Flask, **kwargs: t.Any) -> None:
        if not has_app_context():
            return
        session = kwargs.pop("session", None)
        event_type, fields = event_fields(signal, **kwargs)
        sender.extensions["audit"].record(event_type, session=session, **fields)

    receive.__name__ = f"record_{signal.name.replace('-', '_')}"
    return receive


_CONNECTED = {signal: _receiver(signal) for signal in RECEIVERS}


def connect(app: Flask) -> None:
    """Connect a receiver for each of flask_audit's signals, for ``app`` only."""
    for signal, receiver in _CONNECTED.items():
        signal.connect(receiver, sender=app)
