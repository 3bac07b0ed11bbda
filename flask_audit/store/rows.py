"""The column values of one event, from the caller's arguments and the current request.

Building a row reads the request (actor, address, user agent, request id, team, tenant),
classifies the event type and cleans every value; :mod:`flask_audit.store.recorder` stores it.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import functools
import os
import typing as t

from ..config import AuditConfig
from ..exceptions import UnknownEventTypeError
from ..taxonomy import ACTIONS
from ..taxonomy import EVENT_TYPES
from ..taxonomy import OUTCOMES
from . import context
from .models import LENGTHS
from .sanitize import clean_details
from .sanitize import clean_text

#: Shorter limits for what anyone can type into a sign-in form: an address has at most 254
#: characters (RFC 5321), and no browser needs more of its user agent to be told apart.
ANONYMOUS_LENGTHS = {**LENGTHS, "actor_email": 254, "user_agent": 256}

#: Marks "not given": ``None`` is a meaningful value for actor, team and tenant.
CURRENT: t.Any = type("CURRENT", (), {"__repr__": lambda self: "CURRENT"})()


class UnresolvedContext(Exception):
    """The app's team or tenant loader, or its actor e-mail callable, raised.

    Carries the row built without that value, so the write policy can still spool it; an
    event is never stored under a guessed tenant.
    """

    def __init__(self, row: dict[str, t.Any], reason: str) -> None:
        super().__init__(reason)
        self.row = row
        self.reason = reason


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@functools.lru_cache(maxsize=1024)
def _classify(
    event_type: str, entity: str | None, action: str | None, outcome: str | None, activity: str | None
) -> tuple[str, str, str, str, str]:
    """The type, entity, action, outcome and activity of an event, checked and cleaned.

    Cached: a few dozen combinations make up nearly every event an app records.
    """
    kind = EVENT_TYPES.get(event_type)
    if kind is None and (entity is None or action is None):
        raise UnknownEventTypeError(
            f"Unknown event type {event_type!r}: pass entity= and action= to record a custom type,"
            f" or use one of the documented types such as 'role.updated'."
        )
    entity = entity or t.cast(str, kind and kind.entity)
    action = action or t.cast(str, kind and kind.action)
    outcome = outcome or (kind.outcome if kind else "success")
    if action not in ACTIONS:
        raise UnknownEventTypeError(f"Unknown action {action!r}: use one of {', '.join(ACTIONS)}.")
    if outcome not in OUTCOMES:
        raise UnknownEventTypeError(f"Unknown outcome {outcome!r}: use 'success' or 'failure'.")
    activity = activity or (kind.activity if kind else event_type)
    values = (event_type, entity, action, outcome, activity)
    return t.cast(
        "tuple[str, str, str, str, str]",
        tuple(clean_text(value, LENGTHS[name]) for name, value in zip(_CLASS_COLUMNS, values, strict=True)),
    )


_CLASS_COLUMNS = ("event_type", "entity", "action", "outcome", "activity")
#: The columns whose values come from the caller or the app, cleaned for every event.
_FREE_TEXT = (
    "tenant_id",
    "team",
    "actor_id",
    "actor_email",
    "ip",
    "user_agent",
    "request_id",
    "target_type",
    "target_id",
)


def build_row(
    config: AuditConfig,
    event_type: str,
    *,
    activity: str | None = None,
    entity: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    team: t.Any = CURRENT,
    tenant_id: t.Any = CURRENT,
    target: tuple[str, t.Any] | None = None,
    details: c.Mapping[str, t.Any] | None = None,
    actor: t.Any = CURRENT,
    actor_email: t.Any = CURRENT,
    occurred_at: dt.datetime | None = None,
    ip: t.Any = CURRENT,
    user_agent: t.Any = CURRENT,
    request_id: t.Any = CURRENT,
) -> dict[str, t.Any]:
    """The column values of one event: classified, completed from the request, cleaned."""
    event_type, entity, action, outcome, activity = _classify(event_type, entity, action, outcome, activity)
    problems: list[str] = []
    if actor is CURRENT:
        who = _read(problems, "AUDIT_ACTOR_EMAIL", context.current_actor, config) or context.Actor(None, None)
    elif actor is None:
        who = context.Actor(None, None)
    else:
        who = _read(problems, "AUDIT_ACTOR_EMAIL", context.actor_of, actor, config) or context.Actor(
            context.stable_id(actor), None
        )
    here = context.request_origin(config)
    row = {
        "uid": os.urandom(16).hex(),
        "occurred_at": occurred_at or utcnow(),
        "tenant_id": _read(problems, "AUDIT_TENANT_LOADER", context.current_tenant, config)
        if tenant_id is CURRENT
        else tenant_id,
        "team": _read(problems, "AUDIT_TEAM_LOADER", context.current_team, config)
        if team is CURRENT
        else team,
        "event_type": event_type,
        "entity": entity,
        "action": action,
        "outcome": outcome,
        "activity": activity,
        "actor_id": who.id,
        "actor_email": who.email if actor_email is CURRENT else actor_email,
        "ip": here.ip if ip is CURRENT else ip,
        "user_agent": here.user_agent if user_agent is CURRENT else user_agent,
        "request_id": here.request_id if request_id is CURRENT else request_id,
        "target_type": target[0] if target else None,
        "target_id": target[1] if target else None,
        "details": clean_details(dict(details)) if details else {},
        "late": occurred_at is not None,  # a time given by the caller: recorded after the fact
    }
    limits = ANONYMOUS_LENGTHS if event_type == "user.login_failed" else LENGTHS
    for name in _FREE_TEXT:
        row[name] = clean_text(row[name], limits[name])
    if event_type == "user.login_failed":  # what anyone can type: as short as an address
        for key in ("email", "identity", "username"):
            if isinstance(row["details"].get(key), str):
                row["details"][key] = clean_text(row["details"][key], ANONYMOUS_LENGTHS["actor_email"])
    if problems:
        raise UnresolvedContext(row, "; ".join(problems))
    return row


def mark_late(row: dict[str, t.Any], config: AuditConfig) -> dict[str, t.Any]:
    """Mark ``row`` late if it is stored more than ``AUDIT_LATE_AFTER_SECONDS`` after it happened.

    A joined event waits for its session's commit, a folded count for its window to close:
    marked, neither can be mistaken for a row inserted later and dated into a sealed period.
    """
    if not row.get("late"):
        row["late"] = (utcnow() - row["occurred_at"]).total_seconds() > config.late_after_seconds
    return row


def _read(problems: list[str], setting: str, read: c.Callable[..., t.Any], *args: t.Any) -> t.Any:
    """Call the app's callable; a failure is noted (with the setting's name), not raised here."""
    try:
        return read(*args)
    except Exception as err:  # the app's code: any error at all
        problems.append(f"{setting} raised {type(err).__name__}: {err}")
        return None


def enabled_row(retention_days: int) -> dict[str, t.Any]:
    """The ``audit.enabled`` event written when the table is created: "tracking since"."""
    return {
        "uid": os.urandom(16).hex(),
        "occurred_at": utcnow(),
        "tenant_id": None,
        "team": None,
        "event_type": "audit.enabled",
        "entity": EVENT_TYPES["audit.enabled"].entity,
        "action": EVENT_TYPES["audit.enabled"].action,
        "outcome": "success",
        "activity": EVENT_TYPES["audit.enabled"].activity,
        "actor_id": context.SYSTEM_ACTOR,
        "actor_email": context.SYSTEM_ACTOR,
        "ip": None,
        "user_agent": None,
        "request_id": None,
        "target_type": None,
        "target_id": None,
        "details": {"retention_days": retention_days},
        "late": False,
    }
