"""An SSO sign-in's outcome: its result, the replay store, the login and the failures.

A module of its own so that imports go one way: :mod:`flask_audit.sso.provider` builds on
it, and :mod:`flask_audit.sso` re-exports both.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import datetime as dt
import threading
import typing as t

from flask import g

from .metadata import _audit

if t.TYPE_CHECKING:
    from ..store.models import AuditEvent

#: ``details.reason`` of a refused SSO sign-in, and the words the activity uses for it.
REASONS: dict[str, str] = {
    "malformed": "the response is not a SAML response",
    "unknown_idp": "the response comes from an unknown identity provider",
    "wrong_destination": "the response was addressed to another service",
    "unsigned": "the response is not signed",
    "invalid_signature": "the signature is invalid",
    "replayed": "the response was already used",
    "unsolicited": "the response answers no sign-in started here",
    "expired": "the response has expired",
    "not_yet_valid": "the response is not valid yet",
    "wrong_audience": "the response is meant for another service",
    "idp_refused": "the identity provider refused the sign-in",
    "invalid": "the response failed validation",
    "unknown_user": "no account matches the SSO identity",
    "inactive_user": "the account is inactive",
}
_LOGIN_METHOD = "_flask_audit_login_method"
_LOGIN_DETAILS = "_flask_audit_login_details"


@dataclasses.dataclass(frozen=True)
class SsoResult:
    """What :meth:`SamlServiceProvider.process_response` found; ``ok`` if signed in.

    ``name_id`` is the identity the IdP asserted, or, for a refused response, the one it
    claimed. ``attributes`` are the asserted attributes, for the app's own use; they are
    never recorded.
    """

    user: t.Any | None
    name_id: str | None
    idp_entity_id: str | None
    reason: str | None = None
    attributes: c.Mapping[str, list[str]] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def message(self) -> str | None:
        """Why the sign-in was refused, as a sentence fragment for the user."""
        return REASONS.get(self.reason or "", self.reason)


class ReplayStore(t.Protocol):
    """Remembers consumed assertion ids until they expire."""

    def add(self, key: str, expires_at: dt.datetime) -> bool:
        """Remember ``key`` until ``expires_at``; ``False`` if it is there already (a replay)."""


class MemoryReplayStore:
    """The default :class:`ReplayStore`: a dict in this process, forgetting expired ids.

    Trade-off: it protects one process and forgets on restart. With several workers, an
    assertion consumed by one could be replayed to another within its lifetime (minutes).
    Responses to sign-ins started here (the default) are also bound to the browser session
    that started them, which narrows this to an attacker holding that session's cookie. For
    a guarantee across workers, pass a store backed by something shared, such as Redis
    ``SET key 1 NX EXAT`` or a table with a unique key, to :class:`SamlServiceProvider`.
    """

    def __init__(self) -> None:
        self._expiry: dict[str, dt.datetime] = {}
        self._lock = threading.Lock()

    def add(self, key: str, expires_at: dt.datetime) -> bool:
        now = _now()
        with self._lock:
            self._expiry = {k: when for k, when in self._expiry.items() if when > now}
            if key in self._expiry:
                return False
            self._expiry[key] = expires_at
            return True

    def __len__(self) -> int:
        return len(self._expiry)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def login_sso_user(result: SsoResult, *, remember: bool = False) -> bool:
    """Log ``result.user`` in with Flask-Login, marked for the audit trail as an SSO sign-in.

    ``g._flask_audit_login_method`` and ``g._flask_audit_login_details`` are set while
    ``login_user`` runs: the Flask-Login adapter records ``user.login`` from them, so the
    sign-in is recorded once, with ``details.method == "sso"``. An inactive user is not
    logged in and ``user.login_failed`` is recorded instead.

    :raises ValueError: ``result`` is not a successful sign-in.
    """
    if not result.ok or result.user is None:
        raise ValueError(
            f"Only a successful SSO result can be logged in, not one refused as {result.reason!r}."
        )
    import flask_login

    setattr(g, _LOGIN_METHOD, "sso")
    setattr(g, _LOGIN_DETAILS, {"idp_entity_id": result.idp_entity_id, "name_id": result.name_id})
    try:
        logged_in = bool(flask_login.login_user(result.user, remember=remember))
    finally:
        g.pop(_LOGIN_METHOD, None)
        g.pop(_LOGIN_DETAILS, None)
    if not logged_in:
        _record_failure("inactive_user", result.name_id, result.idp_entity_id)
    return logged_in


def _record_failure(
    reason: str, name_id: str | None, idp_entity_id: str | None, **extra: t.Any
) -> AuditEvent:
    return _audit().record(
        "user.login_failed",
        activity=f"Failed SSO sign-in: {REASONS.get(reason, reason)}",
        actor=None,
        actor_email=name_id,
        details={"method": "sso", "reason": reason, "idp_entity_id": idp_entity_id, **extra},
    )
