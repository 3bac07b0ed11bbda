"""An optional OCSF form of the event, for SIEMs that ingest the Open Cybersecurity Schema.

``"format": "ocsf"`` on a destination sends each event as an OCSF 1.1 event: sign-ins,
sign-outs and two-factor checks as **Authentication** (class 3002), account creation,
deletion, password and two-factor changes and role changes as **Account Change** (class
3001), every other event as a **Base Event** (class 0). What OCSF has no attribute for
(team, tenant, entity, details, the seal) is kept under ``unmapped``, so nothing is lost.
"""

from __future__ import annotations

import datetime as dt
import typing as t

OCSF_VERSION = "1.1.0"
AUTHENTICATION, ACCOUNT_CHANGE, BASE_EVENT = 3002, 3001, 0
IAM_CATEGORY = 3

#: event type -> (class uid, activity id, activity name).
ACTIVITIES: dict[str, tuple[int, int, str]] = {
    "user.login": (AUTHENTICATION, 1, "Logon"),
    "user.login_failed": (AUTHENTICATION, 1, "Logon"),
    "user.logout": (AUTHENTICATION, 2, "Logoff"),
    "two_factor.verified": (AUTHENTICATION, 1, "Logon"),
    "two_factor.failed": (AUTHENTICATION, 1, "Logon"),
    "user.created": (ACCOUNT_CHANGE, 1, "Create"),
    "user.deleted": (ACCOUNT_CHANGE, 6, "Delete"),
    "user.password_changed": (ACCOUNT_CHANGE, 3, "Password Change"),
    "two_factor.enabled": (ACCOUNT_CHANGE, 10, "MFA Factor Enable"),
    "two_factor.disabled": (ACCOUNT_CHANGE, 11, "MFA Factor Disable"),
    "two_factor.reset": (ACCOUNT_CHANGE, 11, "MFA Factor Disable"),
    "role.updated": (ACCOUNT_CHANGE, 99, "Other"),
}
_CLASS_NAMES = {AUTHENTICATION: "Authentication", ACCOUNT_CHANGE: "Account Change", BASE_EVENT: "Base Event"}
_MAPPED = {"uid", "occurred_at", "activity", "outcome", "actor_id", "actor_email", "ip", "user_agent"}


def _millis(iso: str) -> int:
    when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return int(when.timestamp() * 1000)


def _user(uid: t.Any, email: t.Any) -> dict[str, t.Any] | None:
    user = {key: value for key, value in (("uid", uid), ("email_addr", email)) if value is not None}
    return user or None


def to_ocsf(record: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """``record`` (the ``flask-audit.event/1`` form, possibly masked) as an OCSF event."""
    class_uid, activity_id, activity_name = ACTIVITIES.get(
        record.get("event_type", ""), (BASE_EVENT, 99, "Other")
    )
    failed = record.get("outcome") == "failure"
    event: dict[str, t.Any] = {
        "category_uid": IAM_CATEGORY if class_uid else 0,
        "class_uid": class_uid,
        "class_name": _CLASS_NAMES[class_uid],
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id,
        "time": _millis(record["occurred_at"]),
        "severity_id": 3 if failed else 1,
        "status_id": 2 if failed else 1,
        "status": "Failure" if failed else "Success",
        "message": record.get("activity"),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": record["uid"],
            "product": {"name": "flask-audit", "vendor_name": "flask-audit"},
            "log_name": "audit_event",
        },
    }
    actor = _user(record.get("actor_id"), record.get("actor_email"))
    if class_uid == AUTHENTICATION:
        if actor:
            event["user"] = actor
        event["is_mfa"] = record["event_type"].startswith("two_factor.")
    else:
        if actor:
            event["actor"] = {"user": actor}
        if class_uid == ACCOUNT_CHANGE and record.get("target_type") == "user":
            event["user"] = {"uid": record.get("target_id")}
    if record.get("ip") is not None:
        event["src_endpoint"] = {"ip": record["ip"]}
    if record.get("user_agent") is not None:
        event["http_request"] = {"user_agent": record["user_agent"]}
    event["unmapped"] = {key: value for key, value in record.items() if key not in _MAPPED}
    return event
