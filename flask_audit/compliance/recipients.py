"""Who receives an alert: the rule's own addresses, ``AUDIT_ALERT_RECIPIENTS``, or the admins.

Without ``AUDIT_ALERT_RECIPIENTS``, an app with Flask-Security-Too mails the active users
holding ``AUDIT_ADMIN_ROLE``; when its user model has a ``tenant_id`` or ``tenant``
attribute, only those of the event's tenant (all of them for an event without one). A plain
Flask-Login app has no list of users the extension could read: there, alerts are recorded
(as ``audit.alert_sent`` with outcome ``failure``, naming the missing setting) but mailed
to nobody until ``AUDIT_ALERT_RECIPIENTS`` is set.

A recipient ``"stream:NAME"`` names an ``AUDIT_STREAMS`` destination instead of an address:
the alert is not mailed there but carried by its ``audit.alert_sent`` event, which that
destination then receives through the outbox whatever its event type filters say.
"""

from __future__ import annotations

import typing as t

from flask import Flask

from . import settings

if t.TYPE_CHECKING:
    from .rules import AlertRule

STREAM_PREFIX = "stream:"
NO_RECIPIENTS = (
    "No recipients: set AUDIT_ALERT_RECIPIENTS to a list of addresses or callable(tenant_id) -> addresses"
)


def _tenant_of(user: t.Any) -> t.Any:
    for name in ("tenant_id", "tenant"):
        if hasattr(user, name):
            return getattr(user, name)
    return None


def split(recipients: t.Iterable[str]) -> tuple[list[str], list[str]]:
    """``recipients`` as mail addresses and stream destination names, each without repeats."""
    addresses = [each for each in recipients if not each.startswith(STREAM_PREFIX)]
    streams = [each[len(STREAM_PREFIX) :] for each in recipients if each.startswith(STREAM_PREFIX)]
    return list(dict.fromkeys(addresses)), list(dict.fromkeys(streams))


def security_admins(app: Flask, tenant_id: str | None) -> list[str]:
    """The addresses of the active Flask-Security-Too users holding the admin role."""
    security = app.extensions.get("security")
    if security is None:
        return []
    from ..state import audit_state

    role = security.datastore.find_role(audit_state(app).config.admin_role)
    if role is None:
        return []
    users = [user for user in role.users if getattr(user, "active", True) and getattr(user, "email", None)]
    if tenant_id is not None:
        users = [user for user in users if _tenant_of(user) in (None, tenant_id)]
    return sorted({str(user.email) for user in users})


def recipients_for(app: Flask, rule: AlertRule, tenant_id: str | None) -> list[str]:
    """The addresses an alert of ``rule`` about ``tenant_id``'s event goes to, without repeats."""
    if rule.recipients is not None:
        return list(dict.fromkeys(rule.recipients))
    loader = settings.load(app).recipients
    found = loader(tenant_id) if loader is not None else security_admins(app, tenant_id)
    return list(dict.fromkeys(address for address in found if address))
