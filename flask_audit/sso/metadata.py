"""SAML identity provider metadata read with pysaml2, and the SSO configuration events.

An admin who changes the IdP metadata changes who may sign in: the trail must say which
IdP, which sign-in URL and which signing certificates, as facts taken from the metadata
rather than from what the admin typed. Metadata that pysaml2 cannot use is refused with
:class:`InvalidMetadataError` before anything is recorded as configured.

Needs the ``[saml]`` extra; ``import flask_audit`` alone never imports pysaml2.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import dataclasses
import datetime as dt
import hashlib
import typing as t

from ..exceptions import AuditError
from ..state import current_audit
from ..state import Recorder

try:
    from cryptography import x509
    from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
    from saml2 import BINDING_HTTP_POST
    from saml2 import BINDING_HTTP_REDIRECT
    from saml2 import SAMLError
    from saml2.attribute_converter import ac_factory
    from saml2.mdstore import InMemoryMetaData
    from saml2.mdstore import TooOld
    from saml2.time_util import str_to_time
except ImportError as err:  # pragma: no cover - depends on the installed extras
    raise ImportError("flask_audit's SSO support needs pysaml2: pip install 'flask-audit[saml]'.") from err

if t.TYPE_CHECKING:
    from ..store.models import AuditEvent

#: The sign-in bindings a browser can follow, in order of preference.
SSO_BINDINGS = (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST)
_REFRESH = "Download fresh metadata from the identity provider."


class InvalidMetadataError(AuditError, ValueError):
    """IdP metadata that cannot configure SSO; the message says what is missing."""


@dataclasses.dataclass(frozen=True)
class IdpMetadata:
    """The facts of one identity provider that the SSO events record.

    .. versionadded:: 0.1
    """

    entity_id: str
    #: Where browsers are sent to sign in (HTTP-Redirect binding, else HTTP-POST).
    sso_url: str
    #: SHA-256 of each signing certificate, colon-separated uppercase hex, as browsers show.
    signing_fingerprints: tuple[str, ...]
    valid_until: dt.datetime | None = None


def fingerprint(cert_b64: str) -> str:
    """The SHA-256 fingerprint of a base64 DER certificate: ``"AB:CD:..."``."""
    try:
        der = base64.b64decode("".join(cert_b64.split()), validate=True)
        x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as err:
        raise InvalidMetadataError(
            "A signing certificate in the IdP metadata is not an X.509 certificate."
        ) from err
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _load(xml: str | bytes) -> InMemoryMetaData:
    if not xml.strip():
        raise InvalidMetadataError(
            "The IdP metadata is empty: paste the XML your identity provider publishes."
        )
    store = InMemoryMetaData(ac_factory(), xml, check_validity=True)
    try:
        store.load()
    except TooOld as err:
        raise InvalidMetadataError(f"The IdP metadata has expired: {err}. {_REFRESH}") from err
    except (SAMLError, ValueError, SyntaxError) as err:
        cause = err.__cause__ or err
        if isinstance(cause, DefusedXmlException):
            raise InvalidMetadataError(
                "The IdP metadata declares a DTD or entities, which are refused."
            ) from err
        raise InvalidMetadataError(f"The IdP metadata is not valid XML: {cause}.") from err
    if not len(store) and not store.to_old:
        raise InvalidMetadataError("The XML is not SAML 2.0 metadata: it holds no EntityDescriptor.")
    return store


def _expired(store: InMemoryMetaData, entity_id: str) -> InvalidMetadataError:
    descriptor = store.entity_descr
    when = descriptor.valid_until if descriptor is not None and descriptor.valid_until else "an earlier date"
    return InvalidMetadataError(f"The IdP metadata of {entity_id} expired at {when}. {_REFRESH}")


def _pick_idp(store: InMemoryMetaData, entity_id: str | None) -> str:
    idps = [eid for eid, entity in store.items() if entity.get("idpsso_descriptor")]
    expired = entity_id if entity_id in store.to_old else None
    if not idps and store.to_old:
        expired = store.to_old[0]
    if expired is not None:
        raise _expired(store, expired)
    if entity_id is not None:
        if entity_id not in idps:
            raise InvalidMetadataError(f"The metadata describes no identity provider {entity_id!r}.")
        return entity_id
    if not idps:
        raise InvalidMetadataError(
            "The metadata describes no identity provider (no IDPSSODescriptor):"
            f" it holds {', '.join(store.keys())}."
        )
    if len(idps) > 1:
        raise InvalidMetadataError(
            f"The metadata describes {len(idps)} identity providers ({', '.join(idps)}):"
            " choose one by entity id."
        )
    return t.cast(str, idps[0])


def _sso_url(store: InMemoryMetaData, entity_id: str) -> str:
    for binding in SSO_BINDINGS:
        for service in store.service(entity_id, "idpsso_descriptor", "single_sign_on_service", binding) or ():
            if service.get("location"):
                return t.cast(str, service["location"])
    raise InvalidMetadataError(
        f"The identity provider {entity_id} has no SingleSignOnService with the HTTP-Redirect"
        " or HTTP-POST binding."
    )


def _valid_until(store: InMemoryMetaData, entity_id: str) -> dt.datetime | None:
    stamps = [store[entity_id].get("valid_until")]
    if store.entities_descr is not None:
        stamps.append(store.entities_descr.valid_until)
    moments = []
    for stamp in filter(None, stamps):
        try:
            moment = str_to_time(stamp)
        except ValueError as err:
            raise InvalidMetadataError(
                f"The validUntil {stamp!r} of the IdP metadata is not a date."
            ) from err
        moments.append(dt.datetime.fromtimestamp(calendar.timegm(moment), dt.timezone.utc))
    return min(moments, default=None)


def read_idp_metadata(xml: str | bytes, *, entity_id: str | None = None) -> IdpMetadata:
    """Read an identity provider's SAML metadata with pysaml2.

    :param xml: an ``EntityDescriptor``, or an ``EntitiesDescriptor`` with one IdP.
    :param entity_id: which IdP to take from metadata that describes several.
    :raises InvalidMetadataError: not XML, no IdP, no usable sign-in URL, no signing
        certificate, or a ``validUntil`` in the past.

    .. versionadded:: 0.1
    """
    store = _load(xml)
    idp = _pick_idp(store, entity_id)
    certs = store.certs(idp, "idpsso", use="signing")
    if not certs:
        raise InvalidMetadataError(f"The identity provider {idp} publishes no signing certificate.")
    return IdpMetadata(
        entity_id=idp,
        sso_url=_sso_url(store, idp),
        signing_fingerprints=tuple(dict.fromkeys(fingerprint(cert) for _name, cert in certs)),
        valid_until=_valid_until(store, idp),
    )


def _summary(meta: IdpMetadata) -> dict[str, t.Any]:
    return {
        "idp_entity_id": meta.entity_id,
        "sso_url": meta.sso_url,
        "signing_fingerprints": list(meta.signing_fingerprints),
        "valid_until": meta.valid_until,
    }


def _fingerprint_change(old: IdpMetadata, new: IdpMetadata) -> tuple[dict[str, list[str]], str] | None:
    before, after = old.signing_fingerprints, new.signing_fingerprints
    added = [fp for fp in after if fp not in before]
    removed = [fp for fp in before if fp not in after]
    if not added and not removed:
        return None
    if added and removed:
        clause = f"rotated the SSO signing certificate of {new.entity_id}"
    elif added:
        clause = f"added an SSO signing certificate to {new.entity_id}"
    else:
        clause = f"removed an SSO signing certificate from {new.entity_id}"
    change = {"before": list(before), "after": list(after), "added": added, "removed": removed}
    return change, clause


def _changes(
    old: IdpMetadata, new: IdpMetadata, enforced: bool | None, previously_enforced: bool | None
) -> tuple[dict[str, t.Any], list[str]]:
    details: dict[str, t.Any] = {}
    clauses: list[str] = []
    if old.entity_id != new.entity_id:
        details["entity_id"] = {"before": old.entity_id, "after": new.entity_id}
        clauses.append(f"changed the SSO identity provider from {old.entity_id} to {new.entity_id}")
    if old.sso_url != new.sso_url:
        details["sso_url"] = {"before": old.sso_url, "after": new.sso_url}
        clauses.append(f"changed the SSO sign-in URL of {new.entity_id}")
    certs = _fingerprint_change(old, new)
    if certs is not None:
        details["signing_fingerprints"], clause = certs
        clauses.append(clause)
    if enforced is not None and enforced != bool(previously_enforced):
        details["enforced"] = {"before": bool(previously_enforced), "after": enforced}
        clauses.append("enforced SSO for all members" if enforced else "stopped enforcing SSO")
    return details, clauses


def _sentence(clauses: list[str]) -> str:
    text = clauses[0] if len(clauses) == 1 else f"{', '.join(clauses[:-1])} and {clauses[-1]}"
    return text[0].upper() + text[1:]


def _audit() -> Recorder:
    return current_audit()


def _record(event_type: str, activity: str, target: str, details: dict[str, t.Any]) -> AuditEvent:
    return _audit().record(event_type, activity=activity, target=("idp", target), details=details)


def _configured(new: IdpMetadata, enforced: bool | None) -> AuditEvent:
    details = _summary(new)
    activity = f"Configured SSO with {new.entity_id}"
    if enforced is not None:
        details["enforced"] = enforced
        if enforced:
            activity += " and enforced it for all members"
    return _record("sso.configured", activity, new.entity_id, details)


def record_sso_change(
    old: IdpMetadata | None,
    new: IdpMetadata | None,
    *,
    enforced: bool | None = None,
    previously_enforced: bool | None = None,
) -> AuditEvent | None:
    """Record what an admin changed in the SSO configuration; ``None`` if nothing did.

    ``old`` ``None`` records ``sso.configured``, ``new`` ``None`` records
    ``sso.disabled``, both given records ``sso.updated`` with each changed field's
    ``before`` and ``after`` (certificates also as ``added`` and ``removed``). A new
    ``valid_until`` alone is no change: scheduled metadata refreshes move it daily.

    :param enforced: whether SSO is now required of all members; ``None``: not part of
        this change.
    :param previously_enforced: whether it was required before; ``None`` counts as not.

    .. versionadded:: 0.1
    """
    if old is None:
        return None if new is None else _configured(new, enforced)
    if new is None:
        details = _summary(old)
        if previously_enforced:
            details["enforced"] = {"before": True, "after": False}
        return _record("sso.disabled", f"Disabled SSO with {old.entity_id}", old.entity_id, details)
    details, clauses = _changes(old, new, enforced, previously_enforced)
    if not clauses:
        return None
    if "entity_id" not in details:
        details = {"idp_entity_id": new.entity_id, **details}
    return _record("sso.updated", _sentence(clauses), new.entity_id, details)
