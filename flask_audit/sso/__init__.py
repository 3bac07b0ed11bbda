"""SAML sign-in through pysaml2, recorded as ``user.login`` and ``user.login_failed``.

pysaml2 validates each response (signature, lifetime, audience, destination, the request
it answers); flask_audit adds what it leaves out, replay protection, and turns every
refusal into a ``user.login_failed`` event whose ``details.reason`` names the cause. A valid
response is logged in with Flask-Login, marked as SSO so that the Flask-Login adapter
records one ``user.login`` with ``details.method == "sso"``.

This module is the public path. The service provider lives in :mod:`flask_audit.sso.provider`,
the sign-in's result and recording in :mod:`flask_audit.sso.login`, the IdP metadata in
:mod:`flask_audit.sso.metadata`.

Needs the ``[saml]`` extra and the ``xmlsec1`` program; ``import flask_audit`` alone never
imports pysaml2.
"""

from __future__ import annotations

from .login import login_sso_user
from .login import MemoryReplayStore
from .login import REASONS as REASONS
from .login import ReplayStore
from .login import SsoResult
from .metadata import IdpMetadata
from .metadata import InvalidMetadataError
from .metadata import read_idp_metadata
from .metadata import record_sso_change
from .provider import SamlServiceProvider

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
