"""The TOTP helper's public path: check a code with pyotp and record the outcome.

It lives with the other capture helpers in :mod:`flask_audit.capture.totp`; apps import
it from here.
"""

from __future__ import annotations

from .capture.totp import matching_step
from .capture.totp import TotpCheck
from .capture.totp import verify_totp

__all__ = ["TotpCheck", "matching_step", "verify_totp"]
