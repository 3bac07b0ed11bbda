"""The ``AUDIT_*`` settings: one table of defaults, read once per app into a frozen object."""

from __future__ import annotations

import collections.abc as c
import dataclasses
import os
import re
import typing as t
import urllib.parse

from flask import Flask
from werkzeug.utils import import_string
from werkzeug.utils import ImportStringError

from .exceptions import AuditConfigError

WRITE_ERROR_POLICIES = ("raise", "spool")

#: Every key with its default. ``None`` for the spool path means the app's instance folder.
DEFAULTS: dict[str, t.Any] = {
    "AUDIT_ENABLED": True,
    "AUDIT_RETENTION_DAYS": 90,
    "AUDIT_URL_PREFIX": "/admin/audit",
    "AUDIT_IS_ADMIN": None,
    # With Flask-Security-Too and no AUDIT_IS_ADMIN: admins are the users with this role.
    "AUDIT_ADMIN_ROLE": "admin",
    "AUDIT_ACTOR_EMAIL": None,
    "AUDIT_TEAM_LOADER": None,
    "AUDIT_TENANT_LOADER": None,
    "AUDIT_TRUSTED_PROXIES": 0,
    "AUDIT_REQUEST_ID_HEADER": "X-Request-ID",
    "AUDIT_ON_WRITE_ERROR": "raise",
    "AUDIT_SPOOL_PATH": None,
    "AUDIT_SEAL_KEY": None,
    "AUDIT_EXPORT_ATTACHMENT_MAX_BYTES": 10 * 1024 * 1024,
    "AUDIT_TIMEZONE": "UTC",
    # The audit writer's own engine (see flask_audit.store.engine): another URL for the
    # same database, an SQLALCHEMY_BINDS key for an audit database of its own, and
    # create_engine() arguments for the writer's pool.
    "AUDIT_DATABASE_URI": None,
    "AUDIT_BIND": None,
    "AUDIT_ENGINE_OPTIONS": None,
    # Failed sign-ins from one address beyond this many within this many seconds are folded
    # into counted events (see flask_audit.store.folding); None turns folding off.
    "AUDIT_FAILED_LOGIN_BURST": 20,
    "AUDIT_FAILED_LOGIN_WINDOW": 600,
    # Automatic sealing (see flask_audit.integrity.sealing): after this many events, or this many
    # seconds after an unsealed event; ``None`` turns that trigger off. Needs AUDIT_SEAL_KEY.
    "AUDIT_SEAL_EVERY_EVENTS": None,
    "AUDIT_SEAL_INTERVAL_SECONDS": None,
    # Where every new seal head is also written, outside the database (see
    # flask_audit.integrity.witness): None means <instance>/audit-seal-witness.jsonl, False none.
    "AUDIT_SEAL_WITNESS": None,
    # An event stored more than this many seconds after its occurred_at is marked late, and
    # verify flags an unmarked one dated this much before a seal that preceded it.
    "AUDIT_LATE_AFTER_SECONDS": 300,
    # PostgreSQL only: create_all makes audit_event a table partitioned by month
    # (see flask_audit.store.partitions); None keeps one plain table.
    "AUDIT_PG_PARTITIONS": None,
    # flask audit prune refuses to run without --archive (no month is dropped unarchived).
    "AUDIT_PRUNE_REQUIRE_ARCHIVE": False,
    # Audit log streaming (see flask_audit.stream): destinations, and after how many seconds
    # of failing a destination becomes an audit.stream_failing event.
    # Compliance (see flask_audit.compliance): alert rules (None: the default rules), who receives
    # alerts (None: Flask-Security-Too's AUDIT_ADMIN_ROLE users), longer windows per tenant, the
    # file `flask audit status` reads write failures and verify results from (None:
    # <instance>/audit-health.json), and how recent a failure must be to count (seconds).
    "AUDIT_ALERTS": None,
    "AUDIT_ALERT_RECIPIENTS": None,
    "AUDIT_TENANT_RETENTION_DAYS": None,
    "AUDIT_HEALTH_FILE": None,
    "AUDIT_STATUS_WINDOW": 24 * 3600,
    "AUDIT_STREAMS": {},
    "AUDIT_STREAM_ALERT_AFTER": 300,
    # Export jobs (see flask_audit.export.jobs): run in the web process right after the response
    # ("inline") or only in ``flask audit exports run`` ("worker"); a failed mail is retried
    # after AUDIT_EXPORT_RETRY_DELAY seconds, doubled each time, up to the attempt limit.
    "AUDIT_EXPORT_MODE": "inline",
    "AUDIT_EXPORT_MAX_ATTEMPTS": 5,
    "AUDIT_EXPORT_RETRY_DELAY": 60,
    "AUDIT_EXPORT_LINK_MAX_AGE": 7 * 24 * 3600,
    "AUDIT_EXPORT_COMPRESS_ABOVE_BYTES": 1024 * 1024,
    # Export delivery (see flask_audit.export): queued or running jobs per admin, requests per
    # admin per period ("<count>/<second|minute|hour|day>", None: no limit), where link-delivered
    # files wait (None: <instance>/audit-exports), and the site's public base URL for links
    # (None: SERVER_NAME with PREFERRED_URL_SCHEME; never the request's Host).
    "AUDIT_EXPORT_MAX_PENDING": 3,
    "AUDIT_EXPORT_RATE": "10/hour",
    "AUDIT_EXPORT_DIR": None,
    "AUDIT_EXTERNAL_URL": None,
}

UserCallable = c.Callable[[t.Any], t.Any]
Loader = c.Callable[[], t.Any]


def _default_is_admin(user: t.Any) -> bool:
    return bool(getattr(user, "is_admin", False))


def _default_actor_email(user: t.Any) -> str | None:
    """The user's ``email``; a model without one is named by its ``username``."""
    email = getattr(user, "email", None) or getattr(user, "username", None)
    return None if email is None else str(email)


@dataclasses.dataclass(frozen=True)
class AuditConfig:
    """The resolved settings of one app; built by :func:`load_config`, not read again."""

    enabled: bool
    retention_days: int
    url_prefix: str
    is_admin: UserCallable
    actor_email: UserCallable
    team_loader: Loader | None
    tenant_loader: Loader | None
    trusted_proxies: int
    request_id_header: str | None
    on_write_error: str
    spool_path: str
    seal_key: bytes | None
    export_attachment_max_bytes: int
    timezone: str
    admin_role: str = "admin"
    database_uri: str | None = None
    bind: str | None = None
    engine_options: c.Mapping[str, t.Any] = dataclasses.field(default_factory=dict)
    failed_login_burst: int | None = 20
    failed_login_window: int = 600
    seal_every_events: int | None = None
    seal_interval_seconds: float | None = None
    seal_witness: str | None = None
    late_after_seconds: int = 300
    pg_partitions: str | None = None
    export_mode: str = "inline"
    export_max_attempts: int = 5
    export_retry_delay: float = 60.0
    export_link_max_age: int = 7 * 24 * 3600
    export_compress_above_bytes: int = 1024 * 1024
    export_max_pending: int | None = 3
    export_rate: tuple[int, int] | None = (10, 3600)
    export_dir: str = ""
    external_url: str | None = None


def _callable(config: c.Mapping[str, t.Any], key: str) -> t.Any:
    """Resolve a callable setting, importing ``"pkg.mod:func"`` strings now, not on first use."""
    value = config[key]
    if value is None or callable(value):
        return value
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportStringError as err:
            raise AuditConfigError(
                f"{key} = {config[key]!r} could not be imported: {err.exception}."
                " Give a callable or an import string such as 'myapp.auth:is_admin'."
            ) from err
        if callable(value):
            return value
    raise AuditConfigError(f"{key} must be a callable or an import string, not {value!r}.")


def _int(config: c.Mapping[str, t.Any], key: str, minimum: int) -> int:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AuditConfigError(f"{key} must be an integer of at least {minimum}, not {value!r}.")
    return value


def _admin_role(value: t.Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AuditConfigError(f"AUDIT_ADMIN_ROLE must be the name of a role, not {value!r}.")
    return value


def _seal_key(value: t.Any) -> bytes | None:
    if value is None or value == "":
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise AuditConfigError(f"AUDIT_SEAL_KEY must be bytes or a string, not {type(value).__name__}.")


def load_config(app: Flask) -> AuditConfig:
    """Apply the defaults to ``app.config`` and return the checked, resolved settings."""
    for key, default in DEFAULTS.items():
        app.config.setdefault(key, default)
    cfg = app.config
    policy = cfg["AUDIT_ON_WRITE_ERROR"]
    if policy not in WRITE_ERROR_POLICIES:
        raise AuditConfigError(
            f"AUDIT_ON_WRITE_ERROR must be one of {', '.join(WRITE_ERROR_POLICIES)}, not {policy!r}."
        )
    prefix = cfg["AUDIT_URL_PREFIX"]
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise AuditConfigError(f"AUDIT_URL_PREFIX must be a path starting with '/', not {prefix!r}.")
    spool = cfg["AUDIT_SPOOL_PATH"] or os.path.join(app.instance_path, "audit-spool.jsonl")
    return AuditConfig(
        enabled=bool(cfg["AUDIT_ENABLED"]),
        retention_days=_int(cfg, "AUDIT_RETENTION_DAYS", 1),
        url_prefix=prefix.rstrip("/") or "/",
        is_admin=_callable(cfg, "AUDIT_IS_ADMIN") or _default_is_admin,
        actor_email=_callable(cfg, "AUDIT_ACTOR_EMAIL") or _default_actor_email,
        team_loader=_callable(cfg, "AUDIT_TEAM_LOADER"),
        tenant_loader=_callable(cfg, "AUDIT_TENANT_LOADER"),
        trusted_proxies=_int(cfg, "AUDIT_TRUSTED_PROXIES", 0),
        request_id_header=cfg["AUDIT_REQUEST_ID_HEADER"] or None,
        on_write_error=policy,
        spool_path=os.fspath(spool),
        seal_key=_seal_key(cfg["AUDIT_SEAL_KEY"]),
        export_attachment_max_bytes=_int(cfg, "AUDIT_EXPORT_ATTACHMENT_MAX_BYTES", 1),
        timezone=_timezone(cfg["AUDIT_TIMEZONE"]),
        admin_role=_admin_role(cfg["AUDIT_ADMIN_ROLE"]),
        **_auto_seal(cfg),
        seal_witness=_seal_witness(cfg["AUDIT_SEAL_WITNESS"], app.instance_path),
        late_after_seconds=_int(cfg, "AUDIT_LATE_AFTER_SECONDS", 1),
        pg_partitions=_pg_partitions(cfg["AUDIT_PG_PARTITIONS"]),
        **_writer_settings(cfg),
        **_fold_settings(cfg),
        **_export_settings(cfg),
        **_delivery_settings(cfg, app.instance_path),
    )


def _pg_partitions(value: t.Any) -> str | None:
    if value is None or value is False:
        return None
    if value != "monthly":
        raise AuditConfigError(f"AUDIT_PG_PARTITIONS must be None or 'monthly', not {value!r}.")
    return "monthly"


def _seal_witness(value: t.Any, instance_path: str) -> str | None:
    if value is False:
        return None
    if value is None:
        return os.path.join(instance_path, "audit-seal-witness.jsonl")
    if isinstance(value, str | os.PathLike) and os.fspath(value):
        return os.fspath(value)
    raise AuditConfigError(
        f"AUDIT_SEAL_WITNESS must be a file path, None (the instance folder) or False, not {value!r}."
    )


def _auto_seal(config: c.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The automatic sealing triggers, refused at start-up when no key could sign a seal."""
    every = config["AUDIT_SEAL_EVERY_EVENTS"]
    if every is not None:
        every = _int(config, "AUDIT_SEAL_EVERY_EVENTS", 1)
    interval = config["AUDIT_SEAL_INTERVAL_SECONDS"]
    if interval is not None and (
        isinstance(interval, bool) or not isinstance(interval, int | float) or not 0 < interval < float("inf")
    ):
        raise AuditConfigError(
            f"AUDIT_SEAL_INTERVAL_SECONDS must be a positive number of seconds or None, not {interval!r}."
        )
    if (every is not None or interval is not None) and _seal_key(config["AUDIT_SEAL_KEY"]) is None:
        key = "AUDIT_SEAL_EVERY_EVENTS" if every is not None else "AUDIT_SEAL_INTERVAL_SECONDS"
        raise AuditConfigError(f"{key} turns on automatic sealing, which needs AUDIT_SEAL_KEY to be set.")
    return {
        "seal_every_events": every,
        "seal_interval_seconds": None if interval is None else float(interval),
    }


def _timezone(value: t.Any) -> str:
    from zoneinfo import ZoneInfo
    from zoneinfo import ZoneInfoNotFoundError

    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise AuditConfigError(
            f"AUDIT_TIMEZONE = {value!r} is not a known time zone; use an IANA name such as 'Europe/Berlin'."
        ) from err
    return str(value)


EXPORT_MODES = ("inline", "worker")


def _export_settings(config: c.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """How export jobs run, retry and deliver; checked at start-up, not at the first export."""
    mode = config["AUDIT_EXPORT_MODE"]
    if mode not in EXPORT_MODES:
        raise AuditConfigError(f"AUDIT_EXPORT_MODE must be one of {', '.join(EXPORT_MODES)}, not {mode!r}.")
    delay = config["AUDIT_EXPORT_RETRY_DELAY"]
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay < float("inf"):
        raise AuditConfigError(f"AUDIT_EXPORT_RETRY_DELAY must be a number of seconds, not {delay!r}.")
    return {
        "export_mode": mode,
        "export_max_attempts": _int(config, "AUDIT_EXPORT_MAX_ATTEMPTS", 1),
        "export_retry_delay": float(delay),
        "export_link_max_age": _int(config, "AUDIT_EXPORT_LINK_MAX_AGE", 1),
        "export_compress_above_bytes": _int(config, "AUDIT_EXPORT_COMPRESS_ABOVE_BYTES", 0),
    }


RATE_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = r"\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*"


def _delivery_settings(config: c.Mapping[str, t.Any], instance_path: str) -> dict[str, t.Any]:
    """Per-admin export limits, the folder of stored files and the base of mailed links."""
    pending = config["AUDIT_EXPORT_MAX_PENDING"]
    folder = config["AUDIT_EXPORT_DIR"] or os.path.join(instance_path, "audit-exports")
    return {
        "export_max_pending": None if pending is None else _int(config, "AUDIT_EXPORT_MAX_PENDING", 1),
        "export_rate": _rate(config["AUDIT_EXPORT_RATE"]),
        "export_dir": os.fspath(folder),
        "external_url": _external_url(config["AUDIT_EXTERNAL_URL"]),
    }


def _rate(value: t.Any) -> tuple[int, int] | None:
    """``"10/hour"`` as ``(10, 3600)``: a count per period; ``None`` for no limit."""
    if value is None:
        return None
    found = re.fullmatch(_RATE, value, re.ASCII | re.IGNORECASE) if isinstance(value, str) else None
    if found is None or int(found[1]) < 1:
        raise AuditConfigError(
            f"AUDIT_EXPORT_RATE must be a count per second, minute, hour or day such as '10/hour',"
            f" or None, not {value!r}."
        )
    return int(found[1]), RATE_PERIODS[found[2].lower()]


def _external_url(value: t.Any) -> str | None:
    """The site's public base URL, which links in mail start with (never a request's Host)."""
    if value is None or value == "":
        return None
    try:
        parts = urllib.parse.urlsplit(str(value))
        valid = isinstance(value, str) and parts.scheme in ("http", "https") and bool(parts.hostname)
        valid = valid and not (parts.query or parts.fragment or parts.username)
    except ValueError:  # a malformed host, such as an unclosed IPv6 bracket
        valid = False
    if not valid:
        raise AuditConfigError(
            f"AUDIT_EXTERNAL_URL must be the site's public base URL, such as 'https://app.example.com',"
            f" not {value!r}."
        )
    return str(value).rstrip("/")


def _writer_settings(config: c.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Where and how standalone events are written: checked now, the engine made on first use."""
    from .store.engine import options_of

    uri, bind = config["AUDIT_DATABASE_URI"], config["AUDIT_BIND"]
    if uri is not None and not isinstance(uri, str):
        uri = uri.render_as_string(hide_password=False)  # a sqlalchemy URL object
    if bind is not None and not isinstance(bind, str):
        raise AuditConfigError(f"AUDIT_BIND must be a key of SQLALCHEMY_BINDS, not {bind!r}.")
    if bind is not None and bind not in (config.get("SQLALCHEMY_BINDS") or {}):
        raise AuditConfigError(f"AUDIT_BIND = {bind!r} is not a key of SQLALCHEMY_BINDS.")
    return {
        "database_uri": uri or None,
        "bind": bind,
        "engine_options": options_of(config["AUDIT_ENGINE_OPTIONS"]),
    }


def _fold_settings(config: c.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """When failed sign-ins from one address are folded into counted events."""
    burst = config["AUDIT_FAILED_LOGIN_BURST"]
    return {
        "failed_login_burst": None if burst is None else _int(config, "AUDIT_FAILED_LOGIN_BURST", 1),
        "failed_login_window": _int(config, "AUDIT_FAILED_LOGIN_WINDOW", 1),
    }
