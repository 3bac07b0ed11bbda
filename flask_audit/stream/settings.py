"""``AUDIT_STREAMS`` and ``AUDIT_STREAM_*``: destinations parsed and checked at start-up.

.. code-block:: python

    AUDIT_STREAMS = {
        "siem": {
            "sink": "webhook",
            "url": "https://siem.example.com/hooks/audit",
            "secret": "whsec_...",
            "event_types": ["user.*", "role.updated"],
            "mask": {"ip": "hash", "user_agent": "drop"},
            "mask_key": "a long random secret",
        },
        "file": {"sink": "jsonl", "path": "/var/log/app/audit.jsonl"},
    }
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import re
import typing as t

from flask import Flask

from ..exceptions import AuditConfigError
from ..store.models import LENGTHS

#: Settings read by the stream workers, with their defaults (``app.config`` wins).
STREAM_DEFAULTS: dict[str, t.Any] = {
    "AUDIT_STREAMS": {},
    # A destination failing for longer than this many seconds becomes an audit event.
    "AUDIT_STREAM_ALERT_AFTER": 300,
}

#: Keys of a destination that the worker reads; every other key is the sink's own option.
COMMON_KEYS = frozenset(
    {
        "sink",
        "format",
        "event_types",
        "entities",
        "tenants",
        "mask",
        "mask_key",
        "batch_size",
        "lease_seconds",
        "poll_seconds",
        "retry_min_seconds",
        "retry_max_seconds",
    }
)
MASK_MODES = ("drop", "hash")
FORMATS = ("flask-audit", "ocsf")
#: Fields that may be masked: the event's own and ``details.<key>``.
MASKABLE = frozenset(LENGTHS) - {"uid"} | {"details"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclasses.dataclass(frozen=True)
class Destination:
    """One checked ``AUDIT_STREAMS`` entry; the sink is made by the worker that runs it."""

    name: str
    sink: str | c.Callable[..., t.Any]
    options: c.Mapping[str, t.Any]
    #: ``"flask-audit"`` (:data:`~flask_audit.stream.wire.SCHEMA`) or ``"ocsf"`` (:mod:`.ocsf`).
    format: str = "flask-audit"
    event_types: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    tenants: tuple[str | None, ...] = ()
    mask: c.Mapping[str, str] = dataclasses.field(default_factory=dict)
    mask_key: bytes | None = None
    batch_size: int = 500
    lease_seconds: float = 30.0
    poll_seconds: float = 1.0
    retry_min_seconds: float = 1.0
    retry_max_seconds: float = 300.0


def setting(app: Flask, key: str) -> t.Any:
    """``app.config[key]``, or the stream default."""
    return app.config.get(key, STREAM_DEFAULTS[key])


def alert_after(app: Flask) -> float:
    """``AUDIT_STREAM_ALERT_AFTER`` in seconds, checked."""
    value = setting(app, "AUDIT_STREAM_ALERT_AFTER")
    return _seconds("AUDIT_STREAM_ALERT_AFTER", value, allow_zero=True)


def load_destinations(app: Flask) -> dict[str, Destination]:
    """Every destination of ``app``'s ``AUDIT_STREAMS``, checked, by name.

    :raises AuditConfigError: the setting or one destination is malformed; the message
        names the destination and the key.
    """
    streams = setting(app, "AUDIT_STREAMS") or {}
    if not isinstance(streams, c.Mapping):
        raise AuditConfigError(f"AUDIT_STREAMS must be a dict of name -> destination, not {streams!r}.")
    return {name: parse_destination(name, spec) for name, spec in streams.items()}


def parse_destination(name: t.Any, spec: t.Any) -> Destination:
    """One ``AUDIT_STREAMS`` entry as a :class:`Destination`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise AuditConfigError(
            f"AUDIT_STREAMS: {name!r} is not a valid destination name: use up to 64 letters,"
            " digits, '.', '_' or '-', starting with a letter or digit."
        )
    where = f"AUDIT_STREAMS[{name!r}]"
    if not isinstance(spec, c.Mapping):
        raise AuditConfigError(f"{where} must be a dict with at least a 'sink', not {spec!r}.")
    sink = spec.get("sink")
    if not (isinstance(sink, str) and sink) and not callable(sink):
        raise AuditConfigError(
            f"{where}['sink'] must name a sink (jsonl, stdout, webhook, nats, rabbitmq, otlp),"
            f" an import string 'pkg.module:factory' or a callable, not {sink!r}."
        )
    form = spec.get("format", "flask-audit")
    if form not in FORMATS:
        raise AuditConfigError(f"{where}['format'] must be one of {', '.join(FORMATS)}, not {form!r}.")
    mask = _mask(where, spec.get("mask"))
    key = spec.get("mask_key")
    if isinstance(key, str):
        key = key.encode()
    if "hash" in mask.values() and not (isinstance(key, bytes) and key):
        raise AuditConfigError(
            f"{where}: hashing a field needs 'mask_key', a secret the hashes are keyed with."
        )
    numbers: dict[str, t.Any] = {
        field: _number(where, field, spec[field])
        for field in ("lease_seconds", "poll_seconds", "retry_min_seconds", "retry_max_seconds")
        if field in spec
    }
    if "batch_size" in spec:
        numbers["batch_size"] = _positive_int(where, "batch_size", spec["batch_size"])
    return Destination(
        name=name,
        sink=sink,
        options={k: v for k, v in spec.items() if k not in COMMON_KEYS},
        format=form,
        event_types=_strings(where, "event_types", spec.get("event_types")),
        entities=_strings(where, "entities", spec.get("entities")),
        tenants=_tenants(where, spec.get("tenants")),
        mask=mask,
        mask_key=key or None,
        **numbers,
    )


def _strings(where: str, field: str, value: t.Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, c.Iterable) or not all(isinstance(v, str) and v for v in value):
        raise AuditConfigError(f"{where}[{field!r}] must be a list of names, not {value!r}.")
    return tuple(value)


def _tenants(where: str, value: t.Any) -> tuple[str | None, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, c.Iterable):
        value = [value]
    items = tuple(value)
    if not all(v is None or isinstance(v, str) for v in items):
        raise AuditConfigError(f"{where}['tenants'] must be a list of tenant ids (None: no tenant).")
    return items


def _mask(where: str, value: t.Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, str) or not isinstance(value, c.Iterable):
        raise AuditConfigError(
            f"{where}['mask'] must be a list of fields to drop or a dict of field -> 'drop' or 'hash',"
            f" not {value!r}."
        )
    pairs = value.items() if isinstance(value, c.Mapping) else ((field, "drop") for field in value)
    mask = {}
    for field, mode in pairs:
        if not isinstance(field, str) or not (field in MASKABLE or field.startswith("details.")):
            raise AuditConfigError(
                f"{where}['mask']: {field!r} is not a maskable field; use an event field such as"
                " 'ip' or 'actor_email', or 'details.<key>'."
            )
        if mode not in MASK_MODES:
            raise AuditConfigError(f"{where}['mask'][{field!r}] must be 'drop' or 'hash', not {mode!r}.")
        mask[field] = mode
    return mask


def _seconds(where: str, value: t.Any, *, allow_zero: bool = False) -> float:
    good = not isinstance(value, bool) and isinstance(value, int | float) and value < float("inf")
    if not good or value < 0 or (value == 0 and not allow_zero):
        raise AuditConfigError(f"{where} must be a positive number of seconds, not {value!r}.")
    return float(value)


def _number(where: str, field: str, value: t.Any) -> float:
    return _seconds(f"{where}[{field!r}]", value)


def _positive_int(where: str, field: str, value: t.Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AuditConfigError(f"{where}[{field!r}] must be a positive integer, not {value!r}.")
    return value
