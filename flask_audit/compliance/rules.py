"""Alert rules: which recorded events call for a mail to the tenant's admins.

A rule names event types, an optional condition, a threshold of events within a window
(counted in the trail per ``key``, such as the account or the address of failed sign-ins),
and optional fixed recipients (addresses, or ``"stream:NAME"`` for an ``AUDIT_STREAMS``
destination). ``AUDIT_ALERTS`` is ``None`` for :data:`DEFAULT_RULES`, a
list of rule mappings to replace them, or a mapping ``{name: mapping or False}`` to change
or turn off some of them::

    AUDIT_ALERTS = {
        "failed_signins_account": {"threshold": 10},
        "audit_exported": False,
        "big_team_deleted": {"events": ["team.deleted"], "recipients": ["soc@example.com"]},
    }
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import typing as t

from werkzeug.utils import import_string

from ..exceptions import AuditConfigError

if t.TYPE_CHECKING:
    from ..config import AuditConfig
    from ..store.models import AuditEvent

#: ``when(event, config) -> bool``: whether a matching event calls for an alert.
Condition = c.Callable[["AuditEvent", "AuditConfig"], bool]

#: The event columns a rule may count and fold by.
KEYS = ("actor_email", "actor_id", "ip", "tenant_id", "team", "target_id")

#: Recorded by alerting and the pipeline checks themselves: never matched by a rule
#: through the trail, so an alert cannot raise an alert about itself.
SELF_TYPES = frozenset({"audit.alert_sent", "audit.health_failed"})


@dataclasses.dataclass(frozen=True)
class AlertRule:
    """One alert rule; see the module."""

    name: str
    events: frozenset[str]
    title: str
    when: Condition | None = None
    threshold: int = 1
    window: float = 3600.0
    key: str | None = None
    recipients: tuple[str, ...] | None = None

    def matches(self, event: AuditEvent, config: AuditConfig) -> bool:
        if event.event_type not in self.events:
            return False
        return self.when is None or bool(self.when(event, config))

    def key_of(self, event: AuditEvent) -> str | None:
        return None if self.key is None else getattr(event, self.key, None)


def _not_self(event: AuditEvent, config: AuditConfig) -> bool:
    """Someone other than the user turned off or reset the user's second factor."""
    if event.target_type != "user" or event.target_id is None:
        return True
    return event.actor_id != event.target_id


def _holds(value: t.Any, role: str) -> bool:
    if value is True:
        return True
    if isinstance(value, str):
        return value == role
    if isinstance(value, c.Iterable) and not isinstance(value, bytes | c.Mapping):
        return role in {str(item) for item in value}
    return False


def grants_admin(event: AuditEvent, config: AuditConfig) -> bool:
    """The role change leaves the user an admin who was not one before."""
    details = event.details or {}
    before, after = details.get("before"), details.get("after")
    return _holds(after, config.admin_role) and not _holds(before, config.admin_role)


DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule(
        "two_factor_by_other",
        frozenset({"two_factor.disabled", "two_factor.reset"}),
        "Two-factor authentication turned off or reset by someone else",
        when=_not_self,
    ),
    AlertRule("sso_changed", frozenset({"sso.configured", "sso.updated", "sso.disabled"}), "SSO changed"),
    AlertRule("admin_granted", frozenset({"role.updated"}), "Admin role granted", when=grants_admin),
    AlertRule("audit_exported", frozenset({"audit.exported"}), "Audit log exported"),
    AlertRule("audit_pruned", frozenset({"audit.pruned"}), "Audit log pruned"),
    AlertRule(
        "failed_signins_account",
        frozenset({"user.login_failed"}),
        "Repeated failed sign-ins for one account",
        threshold=5,
        window=600,
        key="actor_email",
    ),
    AlertRule(
        "failed_signins_address",
        frozenset({"user.login_failed"}),
        "Repeated failed sign-ins from one address",
        threshold=20,
        window=600,
        key="ip",
    ),
    AlertRule(
        "audit_pipeline",
        frozenset({"audit.health_failed"}),
        "The audit trail needs attention",
        key="target_id",
    ),
    AlertRule(
        "audit_stream_failing",
        frozenset({"audit.stream_failing"}),
        "An audit log stream is failing",
        key="target_id",
    ),
)

_FIELDS = {"events", "title", "when", "threshold", "window", "key", "recipients"}


def _number(name: str, key: str, value: t.Any, minimum: float) -> t.Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise AuditConfigError(f"AUDIT_ALERTS[{name!r}]: {key} must be a number of at least {minimum}.")
    return value


def _condition(name: str, value: t.Any) -> Condition | None:
    """A callable, an import string, or a mapping of event fields to required values."""
    if isinstance(value, str):
        value = import_string(value)
    if value is None or callable(value):
        return t.cast("Condition | None", value)
    if isinstance(value, c.Mapping):
        wanted = dict(value)
        return lambda event, config: all(getattr(event, f, None) == v for f, v in wanted.items())
    raise AuditConfigError(f"AUDIT_ALERTS[{name!r}]: when must be a callable or a mapping, not {value!r}.")


def rule_from_mapping(name: str, data: c.Mapping[str, t.Any], base: AlertRule | None = None) -> AlertRule:
    """A rule from its settings, over ``base`` (a default rule of the same name) if any."""
    unknown = set(data) - _FIELDS - {"name"}
    if unknown:
        raise AuditConfigError(f"AUDIT_ALERTS[{name!r}]: unknown field(s) {', '.join(sorted(unknown))}.")
    events = data.get("events", base.events if base else None)
    if not events or isinstance(events, str):
        raise AuditConfigError(f"AUDIT_ALERTS[{name!r}]: events must be a list of event types.")
    key = data.get("key", base.key if base else None)
    if key is not None and key not in KEYS:
        raise AuditConfigError(f"AUDIT_ALERTS[{name!r}]: key must be one of {', '.join(KEYS)}, not {key!r}.")
    recipients = data.get("recipients", base.recipients if base else None)
    if recipients is not None and (
        isinstance(recipients, str) or not all(isinstance(each, str) and each for each in recipients)
    ):
        raise AuditConfigError(
            f"AUDIT_ALERTS[{name!r}]: recipients must be a list of addresses or 'stream:<destination>'."
        )
    return AlertRule(
        name=name,
        events=frozenset(events),
        title=str(data.get("title", base.title if base else name.replace("_", " ").capitalize())),
        when=_condition(name, data["when"]) if "when" in data else (base.when if base else None),
        threshold=int(_number(name, "threshold", data.get("threshold", base.threshold if base else 1), 1)),
        window=float(_number(name, "window", data.get("window", base.window if base else 3600), 1)),
        key=key,
        recipients=None if recipients is None else tuple(recipients),
    )


def rules_from_setting(value: t.Any) -> tuple[AlertRule, ...]:
    """The rules ``AUDIT_ALERTS`` stands for; see the module."""
    if value is None:
        return DEFAULT_RULES
    if isinstance(value, list | tuple):
        found = []
        for data in value:
            if not isinstance(data, c.Mapping) or not data.get("name"):
                raise AuditConfigError("AUDIT_ALERTS: each rule in a list is a mapping with a name.")
            found.append(rule_from_mapping(str(data["name"]), data))
        return tuple(found)
    if isinstance(value, c.Mapping):
        rules = {rule.name: rule for rule in DEFAULT_RULES}
        for name, data in value.items():
            if data is False or data is None:
                rules.pop(name, None)
            elif isinstance(data, c.Mapping):
                rules[name] = rule_from_mapping(name, data, rules.get(name))
            else:
                raise AuditConfigError(f"AUDIT_ALERTS[{name!r}] must be a mapping or False, not {data!r}.")
        return tuple(rules.values())
    raise AuditConfigError(f"AUDIT_ALERTS must be None, a list of rules or a mapping, not {value!r}.")
