"""SAML sign-in through pysaml2, recorded as ``user.login`` and ``user.login_failed``.

pysaml2 validates each response (signature, lifetime, audience, destination, the request
it answers); flask_audit adds what it leaves out, replay protection, and turns every
refusal into a ``user.login_failed`` event whose ``details.reason`` names the cause. A valid
response is logged in with Flask-Login, marked as SSO so that the Flask-Login adapter
records one ``user.login`` with ``details.method == "sso"``.

This module is the public path. The service provider lives in :mod:`flask_audit.sso_provider`,
the sign-in's result and recording in :mod:`flask_audit.sso_login`, the IdP metadata in
:mod:`flask_audit.sso_metadata`.

Needs the ``[saml]`` extra and the ``xmlsec1`` program; ``import flask_audit`` alone never
imports pysaml2.
"""

from __future__ import annotations

from .sso_login import login_sso_user
from .sso_login import MemoryReplayStore
from .sso_login import REASONS as REASONS
from .sso_login import ReplayStore
from .sso_login import SsoResult
from .sso_metadata import IdpMetadata
from .sso_metadata import InvalidMetadataError
from .sso_metadata import read_idp_metadata
from .sso_metadata import record_sso_change
from .sso_provider import SamlServiceProvider

__all__ = [
    "IdpMetadata",
    "InvalidMetadataError",
    "MemoryReplayStore",
    "ReplayStore",
    "SamlServiceProvider",
    "SsoResult",
    "login_sso_user",
    "read_idp_metadata",
    "record_sso_change",
]
