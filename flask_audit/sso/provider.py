"""The pysaml2 service provider: sends the sign-in request and validates the response.

What pysaml2 leaves out is added here: replay protection, and a ``details.reason`` for each
refusal. Import :class:`SamlServiceProvider` from :mod:`flask_audit.sso`.
"""

from __future__ import annotations

import base64
import binascii
import collections.abc as c
import dataclasses
import datetime as dt
import os
import shutil
import typing as t

from flask import session

from ..exceptions import AuditConfigError
from .login import _now
from .login import _record_failure
from .login import login_sso_user
from .login import MemoryReplayStore
from .login import ReplayStore
from .login import SsoResult
from .metadata import IdpMetadata
from .metadata import read_idp_metadata

try:
    from saml2 import BINDING_HTTP_POST
    from saml2 import BINDING_HTTP_REDIRECT
    from saml2 import samlp
    from saml2.client import Saml2Client
    from saml2.config import SPConfig
    from saml2.response import for_me
    from saml2.response import IncorrectlySigned
    from saml2.response import StatusError
    from saml2.response import UnsolicitedResponse
    from saml2.response import VerificationError
    from saml2.sigver import SigverError
    from saml2.validate import ResponseLifetimeExceed
    from saml2.validate import ToEarly
    from saml2.validate import validate_before
    from saml2.validate import validate_on_or_after
except ImportError as err:  # pragma: no cover - depends on the installed extras
    raise ImportError("flask_audit's SSO support needs pysaml2: pip install 'flask-audit[saml]'.") from err

_REQUIRED = ("entity_id", "acs_url", "idp_metadata")
_SETTINGS = (*_REQUIRED, "key_file", "cert_file", "allow_unsolicited", "accepted_time_diff", "xmlsec_binary")
_REQUESTS = "_flask_audit_saml_requests"
_MAX_REQUESTS = 10
_MAX_RESPONSE = 1_000_000


class _Refused(Exception):
    def __init__(self, reason: str, name_id: str | None = None, **details: t.Any) -> None:
        super().__init__(reason)
        self.reason, self.name_id, self.details = reason, name_id, details


def _text(element: t.Any) -> str | None:
    text = getattr(element, "text", None)
    return text.strip() if isinstance(text, str) and text.strip() else None


def _claimed_name_id(response: t.Any) -> str | None:
    subjects = [assertion.subject for assertion in response.assertion if assertion.subject is not None]
    return _text(subjects[0].name_id) if subjects else None


def _check_settings(settings: c.Mapping[str, t.Any]) -> None:
    unknown = sorted(set(settings) - set(_SETTINGS))
    if unknown:
        raise AuditConfigError(f"Unknown SAML settings {unknown}: use {', '.join(_SETTINGS)}.")
    missing = [key for key in _REQUIRED if not settings.get(key)]
    if missing:
        raise AuditConfigError(f"The SAML settings need {', '.join(map(repr, missing))}.")
    if bool(settings.get("key_file")) != bool(settings.get("cert_file")):
        raise AuditConfigError("The SAML settings need 'key_file' and 'cert_file' together, or neither.")


def _xmlsec_binary(configured: str | None) -> str:
    path = configured or shutil.which("xmlsec1")
    if not path or not os.access(path, os.X_OK):
        raise AuditConfigError(
            f"SAML signatures are checked by the xmlsec1 program, which was not found at {path or 'PATH'}:"
            " install it (Debian and Ubuntu: apt-get install xmlsec1) or set 'xmlsec_binary'."
        )
    return path


def _pysaml2_config(settings: c.Mapping[str, t.Any], time_slack: int) -> SPConfig:
    signs = bool(settings.get("key_file"))
    sp = {
        "endpoints": {"assertion_consumer_service": [(settings["acs_url"], BINDING_HTTP_POST)]},
        "allow_unsolicited": bool(settings.get("allow_unsolicited", False)),
        "authn_requests_signed": signs,
        # Either signature covers the assertion; pysaml2 checks every one that is present.
        "want_assertions_or_response_signed": True,
        "want_assertions_signed": False,
        "want_response_signed": False,
    }
    config = SPConfig()
    config.load(
        {
            "entityid": settings["entity_id"],
            "service": {"sp": sp},
            "metadata": {"inline": [settings["idp_metadata"]]},
            "accepted_time_diff": time_slack,
            "allow_unknown_attributes": True,
            "xmlsec_binary": _xmlsec_binary(settings.get("xmlsec_binary")),
            **({"key_file": settings["key_file"], "cert_file": settings["cert_file"]} if signs else {}),
        }
    )
    return config


class SamlServiceProvider:
    """This app as a SAML service provider of one identity provider, built on pysaml2.

    .. code-block:: python

        sp = SamlServiceProvider({
            "entity_id": "https://app.example.com/saml/metadata",
            "acs_url": "https://app.example.com/saml/acs",
            "idp_metadata": idp_xml,
        })
        redirect(sp.login_url(relay_state="/"))          # in /saml/login
        sp.process_response(request.form["SAMLResponse"],   # in /saml/acs
                            user_loader=lambda name_id: User.query.filter_by(email=name_id).first())

    Optional settings: ``key_file`` and ``cert_file`` (sign the requests),
    ``allow_unsolicited`` (accept IdP-initiated sign-ins, default ``False``),
    ``accepted_time_diff`` (clock skew in seconds, default 60), ``xmlsec_binary``.

    :param replay_store: where consumed assertion ids are kept; see
        :class:`MemoryReplayStore` for the default's trade-off.
    :raises AuditConfigError: a setting is missing or unknown, or xmlsec1 is not found.
    :raises InvalidMetadataError: the IdP metadata cannot be used.

    .. versionadded:: 0.1
    """

    def __init__(self, settings: c.Mapping[str, t.Any], *, replay_store: ReplayStore | None = None) -> None:
        _check_settings(settings)
        self.idp: IdpMetadata = read_idp_metadata(settings["idp_metadata"])
        self.entity_id: str = settings["entity_id"]
        self.acs_url: str = settings["acs_url"]
        self.time_slack = int(settings.get("accepted_time_diff", 60))
        self.replay_store: ReplayStore = replay_store or MemoryReplayStore()
        self._client = Saml2Client(config=_pysaml2_config(settings, self.time_slack))

    def __repr__(self) -> str:
        return f"<SamlServiceProvider {self.entity_id} idp={self.idp.entity_id}>"

    def login_url(self, relay_state: str | None = None) -> str:
        """The IdP URL to redirect the browser to (HTTP-Redirect binding).

        The request id is kept in the session, so that only a response to it is accepted.

        :raises AuditConfigError: the IdP offers no HTTP-Redirect sign-in.
        """
        services = self._client.metadata.service(
            self.idp.entity_id, "idpsso_descriptor", "single_sign_on_service"
        )
        if BINDING_HTTP_REDIRECT not in services:
            raise AuditConfigError(
                f"The identity provider {self.idp.entity_id} offers no HTTP-Redirect sign-in:"
                " its users can only start from the identity provider (set 'allow_unsolicited')."
            )
        request_id, info = self._client.prepare_for_authenticate(
            entityid=self.idp.entity_id, relay_state=relay_state or "", binding=BINDING_HTTP_REDIRECT
        )
        session[_REQUESTS] = [*session.get(_REQUESTS, []), request_id][-_MAX_REQUESTS:]
        return t.cast(str, dict(info["headers"])["Location"])

    def process_response(
        self,
        saml_response: str,
        *,
        user_loader: c.Callable[[str], t.Any | None],
        login: bool = True,
        remember: bool = False,
    ) -> SsoResult:
        """Validate a ``SAMLResponse`` form value (HTTP-POST binding) and sign its user in.

        A refused response, or one whose name id ``user_loader`` does not know, records
        ``user.login_failed`` with the reason. A valid one is logged in with
        :func:`login_sso_user` when ``login`` is true; with ``login=False`` nothing is
        recorded and the caller logs the user in, through :func:`login_sso_user` so that
        the sign-in is recorded as SSO.
        """
        try:
            name_id, response = self._validate(saml_response)
        except _Refused as refusal:
            _record_failure(refusal.reason, refusal.name_id, self.idp.entity_id, **refusal.details)
            return SsoResult(None, refusal.name_id, self.idp.entity_id, refusal.reason)
        user = user_loader(name_id)
        if user is None:
            _record_failure("unknown_user", name_id, self.idp.entity_id)
            return SsoResult(None, name_id, self.idp.entity_id, "unknown_user")
        result = SsoResult(user, name_id, self.idp.entity_id, attributes=dict(response.ava or {}))
        if login and not login_sso_user(result, remember=remember):
            return dataclasses.replace(result, reason="inactive_user")
        return result

    def _validate(self, saml_response: str) -> tuple[str, t.Any]:
        unverified = self._inspect(saml_response)
        claimed = _claimed_name_id(unverified)
        outstanding = {rid: "" for rid in session.get(_REQUESTS, [])}
        try:
            response = self._client.parse_authn_request_response(
                saml_response, BINDING_HTTP_POST, outstanding=outstanding
            )
        except Exception as err:  # pysaml2 signals several refusals with bare Exception
            raise _Refused(self._reason(err, unverified), claimed) from err
        name_id = _text(getattr(response, "name_id", None))
        if response is None or response.assertion is None or name_id is None:
            raise _Refused(self._reason(None, unverified), claimed)
        self._client.users.remove_person(response.name_id)  # pysaml2 caches identities in memory
        # Without NotOnOrAfter pysaml2 accepts a response for a day after it was issued.
        expires = response.not_on_or_after or (_now() + dt.timedelta(days=1)).timestamp()
        expires_at = dt.datetime.fromtimestamp(expires + self.time_slack, dt.timezone.utc)
        if not self.replay_store.add(f"{self.idp.entity_id} {response.assertion.id}", expires_at):
            raise _Refused("replayed", name_id)
        return name_id, response

    def _inspect(self, saml_response: str) -> t.Any:
        """The response parsed, not yet verified: for the checks pysaml2 leaves out or blurs."""
        if not isinstance(saml_response, str) or not saml_response or len(saml_response) > _MAX_RESPONSE:
            raise _Refused("malformed")
        try:
            response = samlp.response_from_string(base64.b64decode(saml_response, validate=True))
        except (binascii.Error, ValueError, SyntaxError):  # defusedxml's refusals are ValueErrors
            response = None
        if response is None:
            raise _Refused("malformed")
        claimed = _claimed_name_id(response)
        issuers = {_text(response.issuer)} | {_text(a.issuer) for a in response.assertion}
        strangers = sorted(filter(None, issuers - {self.idp.entity_id}))
        if strangers or issuers == {None}:
            raise _Refused("unknown_idp", claimed, issuer=strangers[0] if strangers else None)
        if response.destination and response.destination != self.acs_url:
            raise _Refused("wrong_destination", claimed)
        status = response.status.status_code if response.status is not None else None
        if status is not None and status.value != samlp.STATUS_SUCCESS:
            # Such as a sign-in cancelled at the IdP: often unsigned, and refused either way.
            detail = status.status_code.value if status.status_code is not None else None
            raise _Refused("idp_refused", claimed, status=detail or status.value)
        signed = response.signature or any(a.signature for a in response.assertion)
        if not signed and not response.encrypted_assertion:
            raise _Refused("unsigned", claimed)
        return response

    def _reason(self, err: Exception | None, unverified: t.Any) -> str:
        if isinstance(err, UnsolicitedResponse) or (
            isinstance(err, VerificationError) and str(err) == "Came from"
        ):
            return "unsolicited"
        if isinstance(err, StatusError):
            return "idp_refused"
        if isinstance(err, SigverError | IncorrectlySigned):
            return "invalid_signature"
        # The signatures held: the response's own conditions say what else was wrong.
        return _condition_reason(unverified, self.entity_id, self.time_slack)


def _time_windows(assertion: t.Any) -> list[tuple[str | None, str | None]]:
    """Each ``(NotOnOrAfter, NotBefore)`` of an assertion: its conditions and confirmations."""
    windows = []
    if assertion.conditions is not None:
        windows.append((assertion.conditions.not_on_or_after, assertion.conditions.not_before))
    for confirmation in assertion.subject.subject_confirmation if assertion.subject is not None else ():
        data = confirmation.subject_confirmation_data
        if data is not None:
            windows.append((data.not_on_or_after, data.not_before))
    return windows


def _condition_reason(unverified: t.Any, entity_id: str, slack: int) -> str:
    for assertion in unverified.assertion:
        try:
            for not_on_or_after, not_before in _time_windows(assertion):
                validate_on_or_after(not_on_or_after, slack)
                validate_before(not_before, slack)
        except ResponseLifetimeExceed:
            return "expired"
        except ToEarly:
            return "not_yet_valid"
        if assertion.conditions is not None and not for_me(assertion.conditions, entity_id):
            return "wrong_audience"
    return "invalid"
