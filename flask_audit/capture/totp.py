"""Check a TOTP code with pyotp and record ``two_factor.verified`` or ``two_factor.failed``.

Neither the secret nor the code ever reaches the event. A code is accepted once: the
caller stores the returned time step (per user) and passes it back as ``last_step``, so a
replayed code is refused even inside its validity window.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import typing as t

import pyotp
from flask import current_app

from ..signals import two_factor_failed
from ..signals import two_factor_verified
from ..store.models import AuditEvent
from .audit_signals import event_fields

WRONG, REPLAYED, MALFORMED = "wrong_code", "replayed", "malformed"


@dataclasses.dataclass(frozen=True)
class TotpCheck:
    """The outcome: ``step`` to store when ``ok``; ``reason`` when not."""

    ok: bool
    step: int | None
    reason: str | None
    event: AuditEvent


def matching_step(
    secret: str, code: str, *, valid_window: int = 1, now: dt.datetime | None = None
) -> int | None:
    """The time step whose code equals ``code``, looking ``valid_window`` steps either side."""
    totp = pyotp.TOTP(secret)
    moment = now or dt.datetime.now(dt.timezone.utc)
    current = totp.timecode(moment)
    for offset in range(-valid_window, valid_window + 1):
        if hmac.compare_digest(totp.generate_otp(current + offset), code):
            return current + offset
    return None


def verify_totp(
    user: t.Any,
    secret: str,
    code: str,
    *,
    last_step: int | None = None,
    valid_window: int = 1,
    method: str = "authenticator app",
    now: dt.datetime | None = None,
) -> TotpCheck:
    """Check ``code`` for ``user`` and record the outcome as ``user``'s own event.

    :param last_step: the step accepted last time for this user; that step and older
        ones are refused as replays.
    :param valid_window: how many 30-second steps of clock drift to accept either side.
    """
    audit = current_app.extensions["audit"]
    cleaned = code.replace(" ", "").strip()
    step = None
    reason: str | None = MALFORMED
    if cleaned.isdigit() and len(cleaned) == 6:
        step = matching_step(secret, cleaned, valid_window=valid_window, now=now)
        reason = WRONG if step is None else None
        if step is not None and last_step is not None and step <= last_step:
            step, reason = None, REPLAYED
    signal = two_factor_verified if reason is None else two_factor_failed
    event_type, fields = event_fields(signal, user=user, method=method, reason=reason)
    event = audit.record(event_type, **fields)
    return TotpCheck(ok=reason is None, step=step, reason=reason, event=event)
