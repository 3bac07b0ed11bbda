"""A real Flask-Security-Too app on the test databases, driven over its JSON endpoints.

The models are Flask-Security's ``fsqla_v3`` on one module-level Flask-SQLAlchemy object
that every test app shares (Flask-Security keeps the ``db`` on a class, so there can be
only one). Passwords are stored in plain text, which makes a leak into an event easy to
spot; TOTP codes come from pyotp with the key Flask-Security shows the user.
"""

from __future__ import annotations

import base64
import collections.abc as c
import datetime as dt
import hashlib
import json
import os
import time
import typing as t
import uuid

import cbor2
import pyotp
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient
from flask_mail import Mail
from flask_security import auth_required
from flask_security import current_user
from flask_security import Security
from flask_security import SQLAlchemyUserDatastore
from flask_security.models import fsqla_v3 as fsqla
from flask_security.models.fsqla import FsModels
from flask_sqlalchemy import SQLAlchemy

from flask_audit import Audit
from flask_audit import AuditEvent
from flask_audit.capture import flask_security as adapter
from flask_audit.state import audit_state

db = SQLAlchemy()
FsModels.set_db_info(  # type: ignore[no-untyped-call]
    db, user_table_name="fs_user", role_table_name="fs_role", webauthn_table_name="fs_webauthn"
)


class Role(db.Model, fsqla.FsRoleMixin):  # type: ignore[name-defined]
    __tablename__ = "fs_role"


class User(db.Model, fsqla.FsUserMixin):  # type: ignore[name-defined]
    __tablename__ = "fs_user"


class WebAuthn(db.Model, fsqla.FsWebAuthnMixin):  # type: ignore[name-defined]
    __tablename__ = "fs_webauthn"


PASSWORD = "Old-Horse-Battery-1"
NEW_PASSWORD = "New-Staple-Correct-2"

SETTINGS: dict[str, t.Any] = {
    "SECRET_KEY": "test",
    "TESTING": True,
    "WTF_CSRF_ENABLED": False,
    "SECURITY_PASSWORD_HASH": "plaintext",
    "SECURITY_PASSWORD_SALT": "salt",
    "SECURITY_TOTP_SECRETS": {"1": "TjQ9Qa31VOrfEzuPy4VHQWPCTmRzCnFzMKLxXYiZu9B"},
    "SECURITY_TOTP_ISSUER": "flask-audit tests",
    "SECURITY_TWO_FACTOR": True,
    "SECURITY_TWO_FACTOR_ENABLED_METHODS": ["authenticator"],
    "SECURITY_CHANGEABLE": True,
    "SECURITY_RECOVERABLE": True,
    "SECURITY_REGISTERABLE": True,
    "SECURITY_SEND_REGISTER_EMAIL": False,
    "SECURITY_UNIFIED_SIGNIN": True,
    "SECURITY_US_ENABLED_METHODS": ["password", "authenticator"],
    "SECURITY_WEBAUTHN": True,
    "SECURITY_WAN_ALLOW_AS_FIRST_FACTOR": True,
    "SECURITY_WAN_ALLOW_AS_MULTI_FACTOR": False,
    "SECURITY_EMAIL_VALIDATOR_ARGS": {"check_deliverability": False},
}


def create_security_app(db_url: str, spool: str, *, security_first: bool = False, **config: t.Any) -> Flask:
    """A Flask-Security app with ``Audit``; ``Audit`` is set up first unless told otherwise."""
    app = Flask(__name__)
    app.config.update(SETTINGS, SQLALCHEMY_DATABASE_URI=db_url, AUDIT_SPOOL_PATH=spool)
    app.config.update(config)
    db.init_app(app)
    Mail(app)
    datastore = SQLAlchemyUserDatastore(db, User, Role, WebAuthn)
    if security_first:
        own_forms(Security(datastore=datastore)).init_app(app)
        audit = Audit(app, db=db)
    else:
        audit = Audit(app, db=db)
        own_forms(Security(datastore=datastore)).init_app(app)
    adapter.connect(app, audit)  # idempotent: capture.connect() may have done it already

    @app.get("/whoami")
    @auth_required()
    def whoami() -> str:
        return str(current_user.email)

    return app


def own_forms(security: Security) -> Security:
    """Give ``security`` form classes of its own before ``init_app``.

    Flask-Security adds fields to its form classes as it sets up an app (a ``username``
    field with ``SECURITY_USERNAME_ENABLE``), which would reach every later test's app.
    """
    for info in security.forms.values():
        if info.cls is not None:
            info.cls = type(info.cls.__name__, (info.cls,), {})
    return security


def create_quickstart_app(db_url: str, spool: str) -> Flask:
    """Flask-Security-Too's own quickstart ("Basic Flask-SQLAlchemy Application") plus
    ``Audit(app, db=db)``; nothing else but what a test machine needs (no DNS lookups, a
    hash scheme that needs no extra package, this test's database and spool)."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "pf9Wkove4IKEAXvy-cQkeDPhv9Cb3Ag-wyJILbq_dFw"
    app.config["SECURITY_PASSWORD_SALT"] = "146585145368132386173505678016728509634"
    app.config["REMEMBER_COOKIE_SAMESITE"] = "strict"
    app.config["SESSION_COOKIE_SAMESITE"] = "strict"
    app.config["SQLALCHEMY_DATABASE_URI"] = db_url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    app.config.update(
        SECURITY_PASSWORD_HASH="pbkdf2_sha512",
        SECURITY_EMAIL_VALIDATOR_ARGS={"check_deliverability": False},
        AUDIT_SPOOL_PATH=spool,
    )
    db.init_app(app)
    user_datastore = SQLAlchemyUserDatastore(db, User, Role)
    app.security = own_forms(Security(datastore=user_datastore))  # type: ignore[attr-defined]
    app.security.init_app(app)  # type: ignore[attr-defined]
    Audit(app, db=db)

    @app.route("/")
    @auth_required()
    def home() -> str:
        return f"Hello {current_user.email}"

    return app


MakeSecurityApp = c.Callable[..., Flask]


@pytest.fixture
def make_security_app(db_url: str, tmp_path: t.Any) -> c.Iterator[MakeSecurityApp]:
    made: list[Flask] = []

    def factory(**config: t.Any) -> Flask:
        app = create_security_app(db_url, str(tmp_path / "spool.jsonl"), **config)
        with app.app_context():
            db.create_all()
        made.append(app)
        return app

    yield factory
    for app in made:
        with app.app_context():
            db.session.remove()
            audit_state(app).writer.dispose()
            try:
                db.drop_all()
            finally:
                db.engine.dispose()


@pytest.fixture
def quickstart_app(db_url: str, tmp_path: t.Any) -> c.Iterator[Flask]:
    app = create_quickstart_app(db_url, str(tmp_path / "spool.jsonl"))
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        audit_state(app).writer.dispose()
        try:
            db.drop_all()
        finally:
            db.engine.dispose()


@pytest.fixture
def fs_app(make_security_app: MakeSecurityApp) -> Flask:
    return make_security_app()


def security(app: Flask) -> Security:
    return t.cast(Security, app.extensions["security"])


def add_user(app: Flask, email: str = "alice@example.com", password: str = PASSWORD, **fields: t.Any) -> int:
    """An account that exists before the test: inserted with SQL, outside the ORM's flush,
    so that it records nothing (``datastore.create_user`` records ``user.created``)."""
    values = {"email": email, "password": password, "active": True, "fs_uniquifier": uuid.uuid4().hex}
    values.update({"confirmed_at": dt.datetime.now(), **fields})
    with app.app_context():
        with db.engine.begin() as conn:
            key = conn.execute(sa.insert(User.__table__).values(values)).inserted_primary_key
        db.session.remove()
    assert key is not None
    return int(key[0])


def get_user(app: Flask, email: str = "alice@example.com") -> User:
    with app.app_context():
        user = db.session.scalars(sa.select(User).where(User.email == email)).one()
        db.session.expunge(user)
        db.session.remove()
    return user


def post(client: FlaskClient, url: str, **data: t.Any) -> dict[str, t.Any]:
    """POST JSON to a Flask-Security endpoint and return its ``response`` payload."""
    reply = client.post(url, json=data, headers={"Accept": "application/json"})
    body = reply.get_json()
    assert body is not None, reply.data
    payload = t.cast(dict[str, t.Any], body["response"])
    payload["status"] = reply.status_code
    return payload


def login(
    client: FlaskClient, email: str = "alice@example.com", password: str = PASSWORD
) -> dict[str, t.Any]:
    return post(client, "/login", email=email, password=password)


def b32_key(app: Flask, email: str = "alice@example.com") -> str:
    """The key an authenticator app would hold for the user's stored TOTP secret."""
    secret = get_user(app, email).tf_totp_secret
    with app.app_context():
        return security(app).totp_factory.get_totp_b32_key(str(secret))


def code(key: str) -> str:
    return pyotp.TOTP(key).now()


def wrong_code(key: str) -> str:
    """A six-digit code that no step near now produces."""
    totp = pyotp.TOTP(key)
    near = {totp.at(time.time() + 30 * step) for step in range(-10, 11)}
    return next(f"{n:06d}" for n in range(1, 10**6) if f"{n:06d}" not in near)


def enable_two_factor(app: Flask, client: FlaskClient) -> tuple[str, dict[str, t.Any]]:
    """Set up the authenticator method for the signed-in user; return its key and the reply."""
    setup = post(client, "/tf-setup", setup="authenticator")
    assert setup["status"] == 200, setup
    key = t.cast(str, setup["tf_authr_b32key"])
    done = post(client, f"/tf-setup/{setup['tf_state_token']}", code=code(key))
    assert done["status"] == 200, done
    return key, setup


def stored_events(app: Flask) -> list[AuditEvent]:
    with app.app_context():
        query = sa.select(AuditEvent).where(AuditEvent.event_type != "audit.enabled").order_by(AuditEvent.id)
        events = list(db.session.scalars(query))
        db.session.remove()
    return events


def kinds(app: Flask) -> list[str]:
    return [event.event_type for event in stored_events(app)]


#: Columns that the extension fills with its own random or clock values.
MACHINE_COLUMNS = {"id", "uid", "occurred_at", "request_id"}


def stored_text(app: Flask, *, all_columns: bool = True) -> str:
    """Every stored event's columns as one string, to search for a leaked secret."""
    with app.app_context():
        rows = db.session.execute(sa.select(AuditEvent.__table__)).mappings().all()
        db.session.remove()
    parts = []
    for row in rows:
        for name, value in row.items():
            if all_columns or name not in MACHINE_COLUMNS:
                parts.append(json.dumps(value, default=str) if isinstance(value, dict) else str(value))
    return "\n".join(parts)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SoftKey:
    """A software WebAuthn authenticator: a P-256 key that answers real challenges.

    It builds what a browser hands the server (``none`` attestation on registration, a
    signed assertion on sign-in), so Flask-Security verifies it with py_webauthn as it
    would a hardware key.
    """

    def __init__(self, origin: str = "http://localhost") -> None:
        self.origin = origin
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.sign_count = 0

    def _cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: x, -3: y})  # COSE EC2 key, ES256, P-256

    def _client_data(self, kind: str, options: dict[str, t.Any]) -> bytes:
        return json.dumps({"type": kind, "challenge": options["challenge"], "origin": self.origin}).encode()

    def register(self, options: dict[str, t.Any]) -> str:
        """The credential JSON for ``navigator.credentials.create(options)``."""
        rp_hash = hashlib.sha256(options["rp"]["id"].encode()).digest()
        attested = bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id
        auth_data = rp_hash + bytes([0x45]) + (0).to_bytes(4, "big") + attested + self._cose_public_key()
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        response = {
            "clientDataJSON": _b64url(self._client_data("webauthn.create", options)),
            "attestationObject": _b64url(attestation),
            "transports": ["usb"],
        }
        return self._credential(response)

    def sign(self, options: dict[str, t.Any], *, tamper: bool = False) -> str:
        """The assertion JSON for ``navigator.credentials.get(options)``; ``tamper`` breaks it."""
        self.sign_count += 1
        rp_hash = hashlib.sha256(options["rpId"].encode()).digest()
        auth_data = rp_hash + bytes([0x05]) + self.sign_count.to_bytes(4, "big")
        client_data = self._client_data("webauthn.get", options)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed + (b"x" if tamper else b""), ec.ECDSA(hashes.SHA256()))
        response = {
            "clientDataJSON": _b64url(client_data),
            "authenticatorData": _b64url(auth_data),
            "signature": _b64url(signature),
        }
        return self._credential(response)

    def _credential(self, response: dict[str, t.Any]) -> str:
        raw_id = _b64url(self.credential_id)
        return json.dumps(
            {
                "id": raw_id,
                "rawId": raw_id,
                "type": "public-key",
                "response": response,
                "clientExtensionResults": {},
            }
        )


def register_key(client: FlaskClient, key: SoftKey, name: str, usage: str) -> dict[str, t.Any]:
    start = post(client, "/wan-register", name=name, usage=usage)
    assert start["status"] == 200, start
    return post(
        client, f"/wan-register/{start['wan_state']}", credential=key.register(start["credential_options"])
    )


def sign_in_with_key(
    client: FlaskClient, key: SoftKey, *, tamper: bool = False, **data: t.Any
) -> dict[str, t.Any]:
    start = post(client, "/wan-signin", **data)
    assert start["status"] == 200, start
    options = start["credential_options"]
    return post(client, f"/wan-signin/{start['wan_state']}", credential=key.sign(options, tamper=tamper))
