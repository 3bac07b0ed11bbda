"""Real SAML parties for the SSO tests: key pairs, a pysaml2 identity provider, metadata.

Certificates are generated at test time with ``cryptography``; the identity provider is a
``saml2.server.Server`` that signs with xmlsec1, as it would in production.
"""

from __future__ import annotations

import base64
import collections.abc as c
import dataclasses
import datetime as dt
import pathlib
import typing as t
import urllib.parse
import warnings

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST
from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NameID
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS
from saml2.xmldsig import DIGEST_SHA256
from saml2.xmldsig import SIG_RSA_SHA256

with warnings.catch_warnings():
    # pysaml2's server module imports a cipher mode that cryptography has deprecated.
    warnings.simplefilter("ignore")
    from saml2.server import Server

IDP_ENTITY_ID = "https://idp.example.com/metadata"
IDP_SSO_REDIRECT = "https://idp.example.com/sso/redirect"
IDP_SSO_POST = "https://idp.example.com/sso/post"
SP_ENTITY_ID = "https://app.example.com/saml/metadata"
SP_ACS_URL = "https://app.example.com/saml/acs"
OTHER_SP_ENTITY_ID = "https://other.example.com/saml/metadata"
PASSWORD_CONTEXT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


@dataclasses.dataclass(frozen=True)
class KeyPair:
    """A private key and its self-signed certificate, as PEM files pysaml2 can read."""

    key_file: str
    cert_file: str
    fingerprint: str  # SHA-256 as cryptography computes it, colon-separated uppercase hex


def make_key_pair(directory: pathlib.Path, name: str) -> KeyPair:
    """Generate an RSA key and a self-signed certificate valid for a year."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return KeyPair(str(key_path), str(cert_path), cert.fingerprint(hashes.SHA256()).hex(":").upper())


def sp_metadata(entity_id: str = SP_ENTITY_ID, acs_url: str = SP_ACS_URL) -> str:
    """A service provider's metadata, for the IdP to know where it may send responses."""
    config = SPConfig()
    config.load(
        {
            "entityid": entity_id,
            "service": {"sp": {"endpoints": {"assertion_consumer_service": [(acs_url, BINDING_HTTP_POST)]}}},
        }
    )
    return t.cast(bytes, create_metadata_string(None, config=config)).decode()


class IdentityProvider:
    """A pysaml2 IdP that knows this app and one other service provider."""

    def __init__(
        self,
        keys: KeyPair | None,
        *,
        entity_id: str = IDP_ENTITY_ID,
        lifetime_minutes: int = 15,
        extra_certs: c.Sequence[KeyPair] = (),
        post_only: bool = False,
    ) -> None:
        endpoints = [(IDP_SSO_POST, BINDING_HTTP_POST)]
        if not post_only:
            endpoints.insert(0, (IDP_SSO_REDIRECT, BINDING_HTTP_REDIRECT))
        self.entity_id = entity_id
        self.config = IdPConfig()
        self.config.load(
            {
                "entityid": entity_id,
                "service": {
                    "idp": {
                        "endpoints": {"single_sign_on_service": endpoints},
                        "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                        "policy": {"default": {"lifetime": {"minutes": lifetime_minutes}}},
                    }
                },
                "metadata": {"inline": [sp_metadata(), sp_metadata(OTHER_SP_ENTITY_ID)]},
                "signing_algorithm": SIG_RSA_SHA256,
                "digest_algorithm": DIGEST_SHA256,
                **({"key_file": keys.key_file, "cert_file": keys.cert_file} if keys else {}),
                **({"additional_cert_files": [k.cert_file for k in extra_certs]} if extra_certs else {}),
            }
        )
        self.server = Server(config=self.config) if keys else None

    def metadata(self, *, valid_hours: int | None = None) -> str:
        """This IdP's metadata as pysaml2 publishes it; a negative ``valid_hours`` has expired."""
        self.config.valid_for = valid_hours
        return t.cast(bytes, create_metadata_string(None, config=self.config)).decode()

    def refuse(self, login_url: str, status: str) -> str:
        """A base64 error ``SAMLResponse`` with ``status`` (as when a user cancels at the IdP)."""
        if self.server is None:
            raise RuntimeError("This identity provider has no key to sign with.")
        response = self.server.create_error_response(
            _request_id(self.server, login_url), SP_ACS_URL, (status, "The user cancelled the sign-in.")
        )
        return base64.b64encode(str(response).encode()).decode()

    def respond(
        self,
        login_url: str | None,
        *,
        name_id: str = "alice@example.com",
        audience: str = SP_ENTITY_ID,
        destination: str = SP_ACS_URL,
        sign_response: bool = True,
        sign_assertion: bool = True,
    ) -> str:
        """A base64 ``SAMLResponse`` answering the request in ``login_url`` (``None``: unsolicited)."""
        if self.server is None:
            raise RuntimeError("This identity provider has no key to sign with.")
        response = self.server.create_authn_response(
            {"givenName": ["Alice"], "mail": [name_id]},
            _request_id(self.server, login_url) if login_url is not None else None,
            destination,
            audience,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=name_id),
            authn={"class_ref": PASSWORD_CONTEXT, "authn_auth": self.entity_id},
            sign_response=sign_response,
            sign_assertion=sign_assertion,
        )
        return base64.b64encode(str(response).encode()).decode()


def _request_id(server: Server, login_url: str) -> str:
    """The id of the AuthnRequest that an app's login URL carries, read by the IdP."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(login_url).query)
    request = server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
    return t.cast(str, request.message.id)


def tamper(saml_response: str, old: str, new: str) -> str:
    """The response with signed text changed after signing."""
    xml = base64.b64decode(saml_response).decode()
    if old not in xml:
        raise ValueError(f"{old!r} is not in the response.")
    return base64.b64encode(xml.replace(old, new).encode()).decode()
