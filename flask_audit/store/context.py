"""Who, from where and in which team and tenant: read from the current request.

Outside a request (CLI, workers) the system actor is used and ``record()``'s own
arguments decide team and tenant.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import ipaddress
import re
import typing as t
import uuid

from flask import current_app
from flask import g
from flask import has_app_context
from flask import has_request_context
from flask import request
from flask_login import current_user

from ..config import AuditConfig

SYSTEM_ACTOR = "system"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,64}$")


class Actor(t.NamedTuple):
    id: str | None
    email: str | None


_SYSTEM = Actor(SYSTEM_ACTOR, SYSTEM_ACTOR)
_NOBODY = Actor(None, None)


def _valid_ip(value: str) -> str | None:
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    # An IPv6 zone id ("fe80::1%eth0") is free text: never let it into the column.
    return None if getattr(address, "scope_id", None) else str(address)


class Origin(t.NamedTuple):
    """Where the current request comes from; the same for all its events."""

    ip: str | None
    user_agent: str | None
    request_id: str | None


_NO_ORIGIN = Origin(None, None, None)


def request_origin(config: AuditConfig) -> Origin:
    """The current request's address, user agent and id, read once per request.

    Outside a request all three are ``None``.
    """
    if not has_request_context():
        return _NO_ORIGIN
    state = _request_state()
    found: Origin | None = state.get("origin")
    if found is None:
        header = request.headers.get(config.request_id_header, "") if config.request_id_header else ""
        found = state["origin"] = Origin(
            _client_ip(config),
            request.headers.get("User-Agent") or None,
            header if _REQUEST_ID.match(header) else uuid.uuid4().hex,
        )
    return found


def client_ip(config: AuditConfig) -> str | None:
    """The client address, trusting ``X-Forwarded-For`` only through configured proxies.

    Follows Werkzeug's ``ProxyFix``: with ``n`` trusted proxies the ``n``-th address from
    the right is the client; anything a client sent before it is ignored.
    """
    return request_origin(config).ip


def _client_ip(config: AuditConfig) -> str | None:
    remote = request.remote_addr
    if config.trusted_proxies:
        forwarded = [part for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
        if len(forwarded) >= config.trusted_proxies:
            ip = _valid_ip(forwarded[-config.trusted_proxies])
            if ip is not None:
                return ip
    return _valid_ip(remote) if remote else None


def request_id(config: AuditConfig) -> str | None:
    """One id per request, shared by all its events: the caller's header if sane, else new."""
    return request_origin(config).request_id


def current_user_or_none() -> t.Any:
    """Flask-Login's authenticated user, or ``None`` (anonymous, no request, no Flask-Login)."""
    return _signed_in_user() if has_request_context() else None


def _signed_in_user() -> t.Any:
    if getattr(current_app, "login_manager", None) is None:
        return None  # the app does not use Flask-Login
    user = current_user._get_current_object()
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user


def stable_id(user: t.Any) -> str | None:
    """The user's primary key as text; ``get_id()`` only when there is no ``id``.

    Flask-Security's ``get_id()`` is a token that changes with every password change, so
    it would split one person's trail into several actors.
    """
    raw_id = getattr(user, "id", None)
    if raw_id is None:
        get_id = getattr(user, "get_id", None)
        raw_id = get_id() if callable(get_id) else None
    return None if raw_id is None else str(raw_id)


def actor_of(user: t.Any, config: AuditConfig) -> Actor:
    """Actor id and email as text, so the trail outlives the user's account."""
    return Actor(stable_id(user), config.actor_email(user))


_ACTING_AS = "_flask_audit_acting_as"


@contextlib.contextmanager
def acting_as(user: t.Any) -> c.Iterator[None]:
    """Within the block, events are recorded as done by ``user`` (innermost block wins)."""
    stack: list[t.Any] = g.setdefault(_ACTING_AS, [])
    stack.append(user)
    try:
        yield
    finally:
        stack.pop()


def current_actor(config: AuditConfig) -> Actor:
    """Who acts now: an :func:`acting_as` block's user, the signed-in user, nobody in a
    request, or the system outside one."""
    if not has_app_context():
        return _SYSTEM
    namespace = g._get_current_object()  # one proxy lookup for both reads (hot path)
    acting: list[t.Any] | None = namespace.get(_ACTING_AS)
    if acting:
        return actor_of(acting[-1], config)
    if not has_request_context():
        return _SYSTEM
    # Flask-Login keeps the request's user in ``g._login_user`` once loaded; ask it otherwise.
    user = namespace.get("_login_user")
    if user is None:
        user = _signed_in_user()
    elif not getattr(user, "is_authenticated", False):
        user = None
    return _NOBODY if user is None else actor_of(user, config)


def current_team(config: AuditConfig) -> str | None:
    if config.team_loader is None or not has_request_context():
        return None
    team = config.team_loader()
    return None if team is None else str(team)


def current_tenant(config: AuditConfig) -> str | None:
    """The tenant of the current request; ``None`` means no tenant (single-tenant apps)."""
    if config.tenant_loader is None or not has_request_context():
        return None
    tenant = config.tenant_loader()
    return None if tenant is None else str(tenant)


def _request_state() -> dict[str, t.Any]:
    state: dict[str, t.Any] | None = g.get("_flask_audit")
    if state is None:
        state = {}
        g._flask_audit = state
    return state


def origin(config: AuditConfig) -> dict[str, str | None]:
    """The current request's address, user agent and id, for an event recorded after it."""
    return request_origin(config)._asdict()
