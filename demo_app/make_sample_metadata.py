"""Write ``sample_idp_metadata.xml``: an identity provider's metadata to paste on the SSO page.

``python -m demo_app.make_sample_metadata`` made the committed file once: pysaml2
publishes the metadata of an IdP whose signing certificate is self-signed and made here
with ``cryptography`` (the private key is thrown away; nobody can sign as this IdP). The
metadata has no ``validUntil``, so the sample never expires.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import tempfile
import typing as t
from xml.dom import minidom

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST
from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS

ENTITY_ID = "https://idp.example.com/saml2/metadata"
SSO_REDIRECT = "https://idp.example.com/saml2/sso/redirect"
SSO_POST = "https://idp.example.com/saml2/sso/post"
TARGET = pathlib.Path(__file__).with_name("sample_idp_metadata.xml")


def _certificate(directory: pathlib.Path) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example IdP"),
            x509.NameAttribute(NameOID.COMMON_NAME, "idp.example.com"),
        ]
    )
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "idp.key", directory / "idp.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(key_path), str(cert_path)


def build() -> str:
    """The metadata XML of a new sample identity provider."""
    with tempfile.TemporaryDirectory() as tmp:
        key_file, cert_file = _certificate(pathlib.Path(tmp))
        config = IdPConfig()
        config.load(
            {
                "entityid": ENTITY_ID,
                "service": {
                    "idp": {
                        "endpoints": {
                            "single_sign_on_service": [
                                (SSO_REDIRECT, BINDING_HTTP_REDIRECT),
                                (SSO_POST, BINDING_HTTP_POST),
                            ]
                        },
                        "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    }
                },
                "key_file": key_file,
                "cert_file": cert_file,
            }
        )
        xml = t.cast(bytes, create_metadata_string(None, config=config)).decode()
    # Indented, so that people can read what they paste.
    return minidom.parseString(xml).toprettyxml(indent="  ", encoding="utf-8").decode()


if __name__ == "__main__":
    TARGET.write_text(build(), encoding="utf-8")
    print(f"Wrote {TARGET}")
