"""The compliance settings: alert rules, who receives alerts, retention per tenant, status.

Read once per app from ``app.config`` (the defaults applied with ``setdefault``, as
:func:`flask_audit.config.load_config` does) and kept per app, so a bad value fails at
start-up with its key named, not at the first alert.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import os
import typing as t
import weakref

from flask import current_app
from flask import Flask
from flask import has_app_context
from werkzeug.utils import import_string

from ..exceptions import AuditConfigError

#: Every compliance key with its default.
DEFAULTS: dict[str, t.Any] = {
    # None: the default rules (flask_audit.compliance.rules.DEFAULT_RULES); a list of rule
    # mappings replaces them; a mapping {name: rule mapping or False} changes or turns off some.
    "AUDIT_ALERTS": None,
    # A list of addresses, or callable(tenant_id) -> addresses; None: the users holding
    # AUDIT_ADMIN_ROLE under Flask-Security-Too, and nobody otherwise.
    "AUDIT_ALERT_RECIPIENTS": None,
    # An alert mail refused for a reason that may pass is tried again after this many
    # seconds, doubled each time, until AUDIT_ALERT_MAX_ATTEMPTS attempts have failed.
    "AUDIT_ALERT_RETRY_DELAY": 60,
    "AUDIT_ALERT_MAX_ATTEMPTS": 5,
    # A mapping {tenant_id: days} or callable(tenant_id) -> days or None: how long a tenant
    # keeps its events; never less than AUDIT_RETENTION_DAYS.
    "AUDIT_TENANT_RETENTION_DAYS": None,
    # Where write failures and verify results are noted for `flask audit status`
    # (None: <instance>/audit-health.json), and how recent a failure must be to count.
    "AUDIT_HEALTH_FILE": None,
    "AUDIT_STATUS_WINDOW": 24 * 3600,
}

Recipients = c.Callable[[str | None], c.Iterable[str]]
TenantDays = c.Callable[[str | None], int | None]


@dataclasses.dataclass(frozen=True)
class ComplianceConfig:
    """The resolved compliance settings of one app."""

    alerts: t.Any
    recipients: Recipients | None
    retry_delay: float
    max_attempts: int
    tenant_days: TenantDays | None
    health_file: str
    status_window: int
    #: The rules by the event types they name: most events match none, and find it in one
    #: lookup on the write path.
    rules_by_type: c.Mapping[str, tuple[t.Any, ...]] = dataclasses.field(default_factory=dict)


_CONFIGS: weakref.WeakKeyDictionary[Flask, ComplianceConfig] = weakref.WeakKeyDictionary()


def _resolve(key: str, value: t.Any) -> t.Any:
    if isinstance(value, str):
        try:
            return import_string(value)
        except ImportError as err:
            raise AuditConfigError(f"{key} = {value!r} could not be imported: {err}.") from err
    return value


def _recipients(value: t.Any) -> Recipients | None:
    value = _resolve("AUDIT_ALERT_RECIPIENTS", value)
    if value is None or callable(value):
        return t.cast("Recipients | None", value)
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        fixed = tuple(value)
        return lambda tenant_id: fixed
    raise AuditConfigError(
        f"AUDIT_ALERT_RECIPIENTS must be a list of addresses or callable(tenant_id), not {value!r}."
    )


def _tenant_days(value: t.Any) -> TenantDays | None:
    value = _resolve("AUDIT_TENANT_RETENTION_DAYS", value)
    if value is None or callable(value):
        return t.cast("TenantDays | None", value)
    if isinstance(value, c.Mapping):
        for tenant, days in value.items():
            check_tenant_days(tenant, days)
        table = dict(value)
        return table.get
    raise AuditConfigError(
        f"AUDIT_TENANT_RETENTION_DAYS must be a mapping of tenant to days or callable(tenant_id),"
        f" not {value!r}."
    )


def check_tenant_days(tenant: str | None, days: t.Any) -> int | None:
    """``days`` if it is a whole number of days (or None: the default window)."""
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
        raise AuditConfigError(
            f"AUDIT_TENANT_RETENTION_DAYS gives tenant {tenant!r} {days!r}: use a whole number of days."
        )
    return days


def load(app: Flask) -> ComplianceConfig:
    """Apply the defaults to ``app.config`` and return the checked settings (once per app)."""
    found = _CONFIGS.get(app)
    if found is not None:
        return found
    for key, default in DEFAULTS.items():
        app.config.setdefault(key, default)
    cfg = app.config
    window = cfg["AUDIT_STATUS_WINDOW"]
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise AuditConfigError(f"AUDIT_STATUS_WINDOW must be a number of seconds, not {window!r}.")
    delay, attempts = cfg["AUDIT_ALERT_RETRY_DELAY"], cfg["AUDIT_ALERT_MAX_ATTEMPTS"]
    if isinstance(delay, bool) or not isinstance(delay, int | float) or delay <= 0:
        raise AuditConfigError(
            f"AUDIT_ALERT_RETRY_DELAY must be a positive number of seconds, not {delay!r}."
        )
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise AuditConfigError(
            f"AUDIT_ALERT_MAX_ATTEMPTS must be a whole number of at least 1, not {attempts!r}."
        )
    health = cfg["AUDIT_HEALTH_FILE"] or os.path.join(app.instance_path, "audit-health.json")
    from .rules import rules_from_setting

    alerts = rules_from_setting(cfg["AUDIT_ALERTS"])
    check_stream_recipients(app, alerts, cfg["AUDIT_ALERT_RECIPIENTS"])
    found = _CONFIGS[app] = ComplianceConfig(
        alerts=alerts,
        recipients=_recipients(cfg["AUDIT_ALERT_RECIPIENTS"]),
        retry_delay=float(delay),
        max_attempts=attempts,
        tenant_days=_tenant_days(cfg["AUDIT_TENANT_RETENTION_DAYS"]),
        health_file=os.fspath(health),
        status_window=window,
        rules_by_type=_by_type(alerts),
    )
    return found


def _by_type(rules: c.Iterable[t.Any]) -> dict[str, tuple[t.Any, ...]]:
    found: dict[str, list[t.Any]] = {}
    for rule in rules:
        for event_type in rule.events:
            found.setdefault(event_type, []).append(rule)
    return {event_type: tuple(matching) for event_type, matching in found.items()}


def unknown_streams(app: Flask, recipients: c.Iterable[str]) -> list[str]:
    """The ``stream:NAME`` recipients whose NAME is no ``AUDIT_STREAMS`` destination."""
    from .recipients import split

    streams = app.config.get("AUDIT_STREAMS") or {}
    known = set(streams) if isinstance(streams, c.Mapping) else set()
    return [name for name in split(recipients)[1] if name not in known]


def check_stream_recipients(app: Flask, rules: c.Iterable[t.Any], fixed: t.Any) -> None:
    """Fail at start-up when a rule or ``AUDIT_ALERT_RECIPIENTS`` names an unknown destination."""
    named = [(f"AUDIT_ALERTS[{rule.name!r}]", rule.recipients or ()) for rule in rules]
    if isinstance(fixed, list | tuple):
        named.append(("AUDIT_ALERT_RECIPIENTS", fixed))
    for where, recipients in named:
        unknown = unknown_streams(app, recipients)
        if unknown:
            raise AuditConfigError(
                f"{where}: 'stream:{unknown[0]}' names no AUDIT_STREAMS destination"
                f" (configured: {', '.join(sorted(app.config.get('AUDIT_STREAMS') or {})) or 'none'})."
            )


def tenant_window(app: Flask, tenant_id: str | None) -> int:
    """How many days ``tenant_id`` keeps its events: its own setting, never below the floor."""
    from ..state import audit_state

    floor = audit_state(app).config.retention_days
    loader = load(app).tenant_days
    days = check_tenant_days(tenant_id, loader(tenant_id)) if loader is not None else None
    return max(floor, days or floor)


def current_tenant_days() -> TenantDays | None:
    """The current app's tenant retention loader; None outside an app context."""
    if not has_app_context():
        return None
    return load(current_app._get_current_object()).tenant_days  # type: ignore[attr-defined]
