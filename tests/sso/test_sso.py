"""SSO: IdP metadata read with pysaml2, configuration events, SAML sign-in and its refusals."""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import re
import subprocess
import sys
import typing as t

import flask_login
import pytest
import sqlalchemy as sa
from flask import Flask
from flask import g
from flask import jsonify
from flask import redirect
from flask import request
from flask.testing import FlaskClient
from flask.typing import ResponseReturnValue
from saml2.metadata import entities_descriptor
from saml2.metadata import entity_descriptor
from saml2.samlp import STATUS_AUTHN_FAILED

from flask_audit import AuditConfigError
from flask_audit import AuditError
from flask_audit.sso import IdpMetadata
from flask_audit.sso import InvalidMetadataError
from flask_audit.sso import login_sso_user
from flask_audit.sso import MemoryReplayStore
from flask_audit.sso import read_idp_metadata
from flask_audit.sso import record_sso_change
from flask_audit.sso import SamlServiceProvider
from flask_audit.sso import SsoResult

from ..apps import add_user
from ..apps import User
from ..conftest import db
from ..conftest import stored
from ..sso_fixtures import IdentityProvider
from ..sso_fixtures import IDP_ENTITY_ID
from ..sso_fixtures import IDP_SSO_POST
from ..sso_fixtures import IDP_SSO_REDIRECT
from ..sso_fixtures import KeyPair
from ..sso_fixtures import make_key_pair
from ..sso_fixtures import OTHER_SP_ENTITY_ID
from ..sso_fixtures import SP_ACS_URL
from ..sso_fixtures import SP_ENTITY_ID
from ..sso_fixtures import sp_metadata
from ..sso_fixtures import tamper

on_databases = pytest.mark.backends("sqlite", "postgresql")
FINGERPRINT = re.compile(r"^([0-9A-F]{2}:){31}[0-9A-F]{2}$")


@pytest.fixture(scope="session")
def sso_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    """Key pairs for the IdP, its next certificate (rotation) and an impostor."""
    directory = tmp_path_factory.mktemp("sso-keys")
    return {name: make_key_pair(directory, name) for name in ("idp", "next", "impostor")}


@pytest.fixture(scope="session")
def idp(sso_keys: dict[str, KeyPair]) -> IdentityProvider:
    return IdentityProvider(sso_keys["idp"])


# --- reading metadata ---------------------------------------------------------------


def test_read_idp_metadata_takes_the_facts_from_pysaml2_metadata(
    idp: IdentityProvider, sso_keys: dict[str, KeyPair]
) -> None:
    xml = idp.metadata()
    for source in (xml, xml.encode()):
        meta = read_idp_metadata(source)
        assert meta == IdpMetadata(
            entity_id=IDP_ENTITY_ID,
            sso_url=IDP_SSO_REDIRECT,
            signing_fingerprints=(sso_keys["idp"].fingerprint,),
            valid_until=None,
        )
    assert FINGERPRINT.match(meta.signing_fingerprints[0])


def test_valid_until_is_read(idp: IdentityProvider) -> None:
    meta = read_idp_metadata(idp.metadata(valid_hours=24))
    assert meta.valid_until is not None
    expected = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=24)
    assert abs(meta.valid_until - expected) < dt.timedelta(minutes=1)


def test_post_only_idp_gives_its_post_url(sso_keys: dict[str, KeyPair]) -> None:
    meta = read_idp_metadata(IdentityProvider(sso_keys["idp"], post_only=True).metadata())
    assert meta.sso_url == IDP_SSO_POST


def test_every_signing_certificate_is_fingerprinted(sso_keys: dict[str, KeyPair]) -> None:
    both = IdentityProvider(sso_keys["idp"], extra_certs=[sso_keys["next"]])
    meta = read_idp_metadata(both.metadata())
    assert meta.signing_fingerprints == (sso_keys["idp"].fingerprint, sso_keys["next"].fingerprint)


def test_one_idp_is_chosen_from_federation_metadata(sso_keys: dict[str, KeyPair]) -> None:
    first = IdentityProvider(sso_keys["idp"])
    second = IdentityProvider(sso_keys["next"], entity_id="https://idp2.example.com/metadata")
    descriptors = [entity_descriptor(first.config), entity_descriptor(second.config)]
    xml = str(entities_descriptor(descriptors, 0, "federation", None, False, None)[0])
    with pytest.raises(InvalidMetadataError) as caught:
        read_idp_metadata(xml)
    assert str(caught.value) == (
        "The metadata describes 2 identity providers (https://idp.example.com/metadata,"
        " https://idp2.example.com/metadata): choose one by entity id."
    )
    chosen = read_idp_metadata(xml, entity_id="https://idp2.example.com/metadata")
    assert chosen.signing_fingerprints == (sso_keys["next"].fingerprint,)


def _invalid_metadata(sso_keys: dict[str, KeyPair]) -> list[tuple[str, str]]:
    return [
        ("", "The IdP metadata is empty: paste the XML your identity provider publishes."),
        ("not xml at all", "The IdP metadata is not valid XML: syntax error: line 1, column 0."),
        ("<metadata>", "The IdP metadata is not valid XML: no element found: line 1, column 10."),
        (
            '<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
            "The IdP metadata declares a DTD or entities, which are refused.",
        ),
        (
            "<html><body>Sign in</body></html>",
            "The XML is not SAML 2.0 metadata: it holds no EntityDescriptor.",
        ),
        (
            sp_metadata(),
            "The metadata describes no identity provider (no IDPSSODescriptor): it holds"
            " https://app.example.com/saml/metadata.",
        ),
        (
            IdentityProvider(None).metadata(),
            "The identity provider https://idp.example.com/metadata publishes no signing certificate.",
        ),
        (
            re.sub(r"Certificate>[^<]+<", "Certificate>AAAA<", IdentityProvider(sso_keys["idp"]).metadata()),
            "A signing certificate in the IdP metadata is not an X.509 certificate.",
        ),
    ]


def test_invalid_metadata_is_a_clear_error(sso_keys: dict[str, KeyPair]) -> None:
    for xml, message in _invalid_metadata(sso_keys):
        with pytest.raises(InvalidMetadataError) as caught:
            read_idp_metadata(xml)
        assert str(caught.value) == message
        assert isinstance(caught.value, AuditError) and isinstance(caught.value, ValueError)


def test_expired_metadata_is_refused(idp: IdentityProvider) -> None:
    xml = idp.metadata(valid_hours=-1)
    valid_until = re.search(r'validUntil="([^"]+)"', xml)
    assert valid_until is not None
    with pytest.raises(InvalidMetadataError) as caught:
        read_idp_metadata(xml)
    assert str(caught.value) == (
        f"The IdP metadata of {IDP_ENTITY_ID} expired at {valid_until.group(1)}."
        " Download fresh metadata from the identity provider."
    )


# --- configuration events -------------------------------------------------------------


def _sso_events(app: Flask) -> list[t.Any]:
    return [event for event in stored(app) if event.event_type.startswith("sso.")]


def _meta(*fingerprints: str, entity_id: str = IDP_ENTITY_ID, sso_url: str = IDP_SSO_REDIRECT) -> IdpMetadata:
    return IdpMetadata(entity_id, sso_url, fingerprints)


@on_databases
def test_configuring_sso_records_the_idp_facts(app: Flask, idp: IdentityProvider) -> None:
    meta = read_idp_metadata(idp.metadata(valid_hours=24))
    with app.test_request_context():
        event = record_sso_change(None, meta, enforced=True)
    assert event is not None
    (stored_event,) = _sso_events(app)
    assert stored_event.event_type == "sso.configured"
    assert stored_event.action == "create" and stored_event.entity == "SSO"
    assert stored_event.activity == f"Configured SSO with {IDP_ENTITY_ID} and enforced it for all members"
    assert (stored_event.target_type, stored_event.target_id) == ("idp", IDP_ENTITY_ID)
    assert meta.valid_until is not None
    assert stored_event.details == {
        "idp_entity_id": IDP_ENTITY_ID,
        "sso_url": IDP_SSO_REDIRECT,
        "signing_fingerprints": list(meta.signing_fingerprints),
        "valid_until": meta.valid_until.isoformat(),
        "enforced": True,
    }


@on_databases
def test_certificate_rotation_shows_old_and_new_fingerprints(
    app: Flask, sso_keys: dict[str, KeyPair]
) -> None:
    old_fp, new_fp = sso_keys["idp"].fingerprint, sso_keys["next"].fingerprint
    before = read_idp_metadata(IdentityProvider(sso_keys["idp"]).metadata())
    overlap = read_idp_metadata(IdentityProvider(sso_keys["idp"], extra_certs=[sso_keys["next"]]).metadata())
    after = read_idp_metadata(IdentityProvider(sso_keys["next"]).metadata())
    with app.test_request_context():
        record_sso_change(before, after)
        record_sso_change(before, overlap)
        record_sso_change(overlap, after)
    rotated, added, removed = _sso_events(app)
    assert [e.event_type for e in (rotated, added, removed)] == ["sso.updated"] * 3
    assert rotated.activity == f"Rotated the SSO signing certificate of {IDP_ENTITY_ID}"
    assert rotated.details == {
        "idp_entity_id": IDP_ENTITY_ID,
        "signing_fingerprints": {
            "before": [old_fp],
            "after": [new_fp],
            "added": [new_fp],
            "removed": [old_fp],
        },
    }
    assert added.activity == f"Added an SSO signing certificate to {IDP_ENTITY_ID}"
    assert added.details["signing_fingerprints"]["added"] == [new_fp]
    assert removed.activity == f"Removed an SSO signing certificate from {IDP_ENTITY_ID}"
    assert removed.details["signing_fingerprints"] == {
        "before": [old_fp, new_fp],
        "after": [new_fp],
        "added": [],
        "removed": [old_fp],
    }


@on_databases
def test_enforcement_and_url_changes_are_sentences(app: Flask) -> None:
    meta = _meta("AA")
    with app.test_request_context():
        record_sso_change(meta, meta, enforced=True, previously_enforced=False)
        record_sso_change(meta, meta, enforced=False, previously_enforced=True)
        record_sso_change(meta, _meta("BB", sso_url=IDP_SSO_POST), enforced=True)
        record_sso_change(meta, _meta("AA", entity_id="https://new-idp.example.com"))
    enforced, relaxed, several, moved = _sso_events(app)
    assert enforced.activity == "Enforced SSO for all members"
    assert enforced.details == {"idp_entity_id": IDP_ENTITY_ID, "enforced": {"before": False, "after": True}}
    assert relaxed.activity == "Stopped enforcing SSO"
    assert several.activity == (
        f"Changed the SSO sign-in URL of {IDP_ENTITY_ID}, rotated the SSO signing certificate of"
        f" {IDP_ENTITY_ID} and enforced SSO for all members"
    )
    assert several.details["sso_url"] == {"before": IDP_SSO_REDIRECT, "after": IDP_SSO_POST}
    assert (
        moved.activity
        == f"Changed the SSO identity provider from {IDP_ENTITY_ID} to https://new-idp.example.com"
    )
    assert moved.details == {"entity_id": {"before": IDP_ENTITY_ID, "after": "https://new-idp.example.com"}}
    assert moved.target_id == "https://new-idp.example.com"


@on_databases
def test_nothing_changed_records_nothing(app: Flask) -> None:
    meta = _meta("AA", "BB")
    refreshed = IdpMetadata(
        IDP_ENTITY_ID, IDP_SSO_REDIRECT, ("AA", "BB"), dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    )
    with app.test_request_context():
        assert record_sso_change(meta, refreshed) is None
        assert record_sso_change(meta, meta, enforced=True, previously_enforced=True) is None
        assert record_sso_change(meta, meta, enforced=False) is None
        assert record_sso_change(None, None, enforced=True) is None
    assert _sso_events(app) == []


@on_databases
def test_disabling_sso_records_what_was_configured(app: Flask) -> None:
    with app.test_request_context():
        record_sso_change(_meta("AA"), None, previously_enforced=True)
    (event,) = _sso_events(app)
    assert (event.event_type, event.action) == ("sso.disabled", "delete")
    assert event.activity == f"Disabled SSO with {IDP_ENTITY_ID}"
    assert event.details["signing_fingerprints"] == ["AA"]
    assert event.details["enforced"] == {"before": True, "after": False}


@on_databases
def test_invalid_metadata_is_refused_and_not_recorded(app: Flask, idp: IdentityProvider) -> None:
    """An admin form that saves IdP metadata: bad XML is a 400 with the reason, never configured."""

    @app.post("/admin/sso")
    def save_sso() -> ResponseReturnValue:
        try:
            meta = read_idp_metadata(request.form["metadata"])
        except InvalidMetadataError as err:
            return str(err), 400
        record_sso_change(None, meta)
        return "saved"

    client = app.test_client()
    refused = client.post("/admin/sso", data={"metadata": sp_metadata()})
    assert refused.status_code == 400
    assert "no identity provider (no IDPSSODescriptor)" in refused.get_data(as_text=True)
    assert client.post("/admin/sso", data={"metadata": "<EntityDescriptor"}).status_code == 400
    assert _sso_events(app) == []
    assert client.post("/admin/sso", data={"metadata": idp.metadata()}).status_code == 200
    assert [e.event_type for e in _sso_events(app)] == ["sso.configured"]


# --- signing in -----------------------------------------------------------------------

LOGIN_MARKS = ("_flask_audit_login_method", "_flask_audit_login_details")


class Probe(flask_login.UserMixin):
    """The app's user as Flask-Login sees it, noting the SSO marks in ``g`` as it is logged in."""

    def __init__(self, user: User, active: bool, marks: list[tuple[t.Any, ...]]) -> None:
        self.user, self.active, self.marks = user, active, marks
        self.email = user.email

    def get_id(self) -> str:
        return str(self.user.id)

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        # login_user() reads is_active first: what the adapter will read is in g by then.
        self.marks.append(tuple(g.get(name) for name in LOGIN_MARKS))
        return self.active


class SsoApp:
    """The test app with ``/saml/login`` and ``/saml/acs`` views around a service provider."""

    def __init__(self, app: Flask, sp: SamlServiceProvider) -> None:
        self.app, self.sp = app, sp
        self.client: FlaskClient = app.test_client()
        self.marks: list[tuple[t.Any, ...]] = []
        self.inactive: set[str] = set()
        app.add_url_rule("/saml/login", view_func=self._login)
        app.add_url_rule("/saml/acs", view_func=self._acs, methods=["POST"])

    def _load(self, name_id: str) -> Probe | None:
        user = db(self.app).session.scalar(sa.select(User).where(User.email == name_id))
        return None if user is None else Probe(user, name_id not in self.inactive, self.marks)

    def _login(self) -> ResponseReturnValue:
        return redirect(self.sp.login_url(request.args.get("next")))

    def _acs(self) -> ResponseReturnValue:
        login = request.args.get("login", "1") == "1"
        result = self.sp.process_response(request.form["SAMLResponse"], user_loader=self._load, login=login)
        current = flask_login.current_user
        return jsonify(
            ok=result.ok,
            reason=result.reason,
            user=result.user.email if result.user else None,
            name_id=result.name_id,
            attributes=dict(result.attributes),
            current_user=current.email if current.is_authenticated else None,
            same_user=current._get_current_object() is result.user,
        )

    def start(self, next_url: str = "/home") -> str:
        """Begin a sign-in as the browser would: the IdP URL this app redirects to."""
        response = self.client.get("/saml/login", query_string={"next": next_url})
        assert response.status_code == 302
        return response.headers["Location"]

    def finish(self, saml_response: str, *, login: bool = True) -> dict[str, t.Any]:
        response = self.client.post(
            "/saml/acs", data={"SAMLResponse": saml_response}, query_string={"login": "1" if login else "0"}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return t.cast(dict[str, t.Any], response.get_json())

    def failures(self) -> list[t.Any]:
        return [e for e in stored(self.app) if e.event_type == "user.login_failed"]


def sp_settings(idp: IdentityProvider, **extra: t.Any) -> dict[str, t.Any]:
    return {"entity_id": SP_ENTITY_ID, "acs_url": SP_ACS_URL, "idp_metadata": idp.metadata(), **extra}


@pytest.fixture
def sso(app: Flask, idp: IdentityProvider) -> SsoApp:
    add_user(app, "alice@example.com")
    return SsoApp(app, SamlServiceProvider(sp_settings(idp)))


@on_databases
def test_valid_response_logs_the_user_in_marked_as_sso(sso: SsoApp, idp: IdentityProvider) -> None:
    login_url = sso.start()
    assert login_url.startswith(IDP_SSO_REDIRECT + "?SAMLRequest=")
    assert "RelayState=%2Fhome" in login_url
    body = sso.finish(idp.respond(login_url))
    assert body["ok"] is True and body["reason"] is None
    assert body["current_user"] == "alice@example.com" and body["same_user"] is True
    assert body["attributes"] == {"givenName": ["Alice"], "mail": ["alice@example.com"]}
    assert sso.marks == [("sso", {"idp_entity_id": IDP_ENTITY_ID, "name_id": "alice@example.com"})]
    events = stored(sso.app)
    assert [e for e in events if e.event_type == "user.login_failed"] == []
    # The sign-in itself is Flask-Login's adapter's to record, once, from the marks.
    logins = [e for e in events if e.event_type == "user.login"]
    assert [e.details["method"] for e in logins] in ([], ["sso"])
    with sso.app.test_request_context():
        assert all(g.get(name) is None for name in LOGIN_MARKS)


@on_databases
def test_without_login_the_result_carries_the_user_and_nothing_is_recorded(
    sso: SsoApp, idp: IdentityProvider
) -> None:
    body = sso.finish(idp.respond(sso.start()), login=False)
    assert body["ok"] is True
    assert body["user"] == "alice@example.com" and body["name_id"] == "alice@example.com"
    assert body["current_user"] is None
    assert sso.marks == []
    assert [e.event_type for e in stored(sso.app)] == []


@on_databases
def test_response_or_assertion_signature_is_enough(sso: SsoApp, idp: IdentityProvider) -> None:
    assert sso.finish(idp.respond(sso.start(), sign_assertion=False))["ok"] is True
    assert sso.finish(idp.respond(sso.start(), sign_response=False))["ok"] is True
    assert sso.failures() == []


def _refusal(
    sso: SsoApp,
    saml_response: str,
    reason: str,
    name_id: str | None = "alice@example.com",
    *,
    signed_in: str | None = None,
    **details: t.Any,
) -> None:
    body = sso.finish(saml_response)
    assert (body["ok"], body["reason"], body["current_user"]) == (False, reason, signed_in)
    (event,) = sso.failures()
    assert (event.event_type, event.outcome, event.action) == ("user.login_failed", "failure", "login")
    assert (event.actor_id, event.actor_email) == (None, name_id)
    assert event.details == {"method": "sso", "reason": reason, "idp_entity_id": IDP_ENTITY_ID, **details}
    assert event.activity.startswith("Failed SSO sign-in: ")


@on_databases
def test_unsigned_response_is_refused(sso: SsoApp, idp: IdentityProvider) -> None:
    _refusal(sso, idp.respond(sso.start(), sign_response=False, sign_assertion=False), "unsigned")
    assert sso.failures()[0].activity == "Failed SSO sign-in: the response is not signed"


@on_databases
def test_expired_response_is_refused(sso: SsoApp, sso_keys: dict[str, KeyPair]) -> None:
    """A real response from an IdP whose assertions stopped being valid ten minutes ago."""
    stale = IdentityProvider(sso_keys["idp"], lifetime_minutes=-10)
    _refusal(sso, stale.respond(sso.start()), "expired")


@on_databases
def test_response_for_another_service_is_refused(sso: SsoApp, idp: IdentityProvider) -> None:
    _refusal(sso, idp.respond(sso.start(), audience=OTHER_SP_ENTITY_ID), "wrong_audience")


@on_databases
def test_replayed_response_is_refused(sso: SsoApp, idp: IdentityProvider) -> None:
    saml_response = idp.respond(sso.start())
    assert sso.finish(saml_response)["ok"] is True
    _refusal(sso, saml_response, "replayed", signed_in="alice@example.com")


@on_databases
def test_replay_from_another_session_is_refused(sso: SsoApp, idp: IdentityProvider) -> None:
    """An attacker holding copies of the response and of the victim's session cookie is refused too."""
    saml_response = idp.respond(sso.start())
    attacker = sso.app.test_client()
    with attacker.session_transaction() as session:
        with sso.client.session_transaction() as victim:
            session.update(victim)
    assert sso.finish(saml_response)["ok"] is True
    sso.client = attacker
    _refusal(sso, saml_response, "replayed")


@on_databases
def test_tampered_response_has_an_invalid_signature(sso: SsoApp, idp: IdentityProvider) -> None:
    signed = idp.respond(sso.start())
    _refusal(sso, tamper(signed, ">Alice<", ">Mallory<"), "invalid_signature")


@on_databases
def test_response_signed_with_another_key_is_refused(sso: SsoApp, sso_keys: dict[str, KeyPair]) -> None:
    impostor = IdentityProvider(sso_keys["impostor"])
    _refusal(sso, impostor.respond(sso.start()), "invalid_signature")


@on_databases
def test_response_from_an_unknown_idp_is_refused(sso: SsoApp, sso_keys: dict[str, KeyPair]) -> None:
    other = IdentityProvider(sso_keys["impostor"], entity_id="https://evil.example.com/metadata")
    _refusal(sso, other.respond(sso.start()), "unknown_idp", issuer="https://evil.example.com/metadata")


@on_databases
def test_response_sent_to_another_address_is_refused(sso: SsoApp, idp: IdentityProvider) -> None:
    saml_response = idp.respond(sso.start(), destination="https://other.example.com/saml/acs")
    _refusal(sso, saml_response, "wrong_destination")


@on_databases
def test_unsolicited_response_is_refused_unless_allowed(
    sso: SsoApp, idp: IdentityProvider, make_app: c.Callable[..., Flask]
) -> None:
    _refusal(sso, idp.respond(None), "unsolicited")
    allowing = SsoApp(make_app(), SamlServiceProvider(sp_settings(idp, allow_unsolicited=True)))
    assert allowing.finish(idp.respond(None))["current_user"] == "alice@example.com"


@on_databases
def test_sign_in_refused_by_the_idp_keeps_its_status(sso: SsoApp, idp: IdentityProvider) -> None:
    _refusal(
        sso, idp.refuse(sso.start(), STATUS_AUTHN_FAILED), "idp_refused", None, status=STATUS_AUTHN_FAILED
    )
    assert sso.failures()[0].activity == "Failed SSO sign-in: the identity provider refused the sign-in"


@on_databases
def test_garbage_is_refused_as_malformed(sso: SsoApp) -> None:
    for garbage in ("", "not base64!", "PGh0bWw+PC9odG1sPg==", "PA=="):
        body = sso.finish(garbage)
        assert (body["ok"], body["reason"]) == (False, "malformed")
    assert [e.details["reason"] for e in sso.failures()] == ["malformed"] * 4
    assert {e.actor_email for e in sso.failures()} == {None}


@on_databases
def test_unknown_user_is_a_failed_sign_in(sso: SsoApp, idp: IdentityProvider) -> None:
    _refusal(
        sso, idp.respond(sso.start(), name_id="nobody@example.com"), "unknown_user", "nobody@example.com"
    )
    assert sso.failures()[0].activity == "Failed SSO sign-in: no account matches the SSO identity"


@on_databases
def test_inactive_user_is_not_logged_in(sso: SsoApp, idp: IdentityProvider) -> None:
    sso.inactive.add("alice@example.com")
    _refusal(sso, idp.respond(sso.start()), "inactive_user")


def test_login_sso_user_needs_a_successful_result() -> None:
    refused = SsoResult(None, "alice@example.com", IDP_ENTITY_ID, "expired")
    with pytest.raises(ValueError) as caught:
        login_sso_user(refused)
    assert str(caught.value) == "Only a successful SSO result can be logged in, not one refused as 'expired'."
    assert refused.message == "the response has expired"


def test_replay_store_forgets_expired_ids() -> None:
    store = MemoryReplayStore()
    now = dt.datetime.now(dt.timezone.utc)
    assert store.add("a", now + dt.timedelta(minutes=5)) is True
    assert store.add("a", now + dt.timedelta(minutes=5)) is False
    assert store.add("b", now - dt.timedelta(seconds=1)) is True
    assert store.add("b", now + dt.timedelta(minutes=5)) is True  # "b" had expired: a new use
    assert store.add("c", now + dt.timedelta(minutes=5)) is True
    assert len(store) == 3


def test_settings_are_checked(idp: IdentityProvider) -> None:
    cases = [
        ({"entity_id": SP_ENTITY_ID}, "The SAML settings need 'acs_url', 'idp_metadata'."),
        (
            sp_settings(idp, acs=SP_ACS_URL),
            "Unknown SAML settings ['acs']: use entity_id, acs_url, idp_metadata, key_file, cert_file,"
            " allow_unsolicited, accepted_time_diff, xmlsec_binary.",
        ),
        (
            sp_settings(idp, key_file="sp.key"),
            "The SAML settings need 'key_file' and 'cert_file' together, or neither.",
        ),
        (
            sp_settings(idp, xmlsec_binary="/nonexistent/xmlsec1"),
            "SAML signatures are checked by the xmlsec1 program, which was not found at /nonexistent/xmlsec1:"
            " install it (Debian and Ubuntu: apt-get install xmlsec1) or set 'xmlsec_binary'.",
        ),
    ]
    for settings, message in cases:
        with pytest.raises(AuditConfigError) as caught:
            SamlServiceProvider(settings)
        assert str(caught.value) == message
    with pytest.raises(InvalidMetadataError):
        SamlServiceProvider({**sp_settings(idp), "idp_metadata": sp_metadata()})


@on_databases
def test_signed_requests_with_an_sp_key(
    app: Flask, idp: IdentityProvider, sso_keys: dict[str, KeyPair]
) -> None:
    keys = sso_keys["next"]
    sso = SsoApp(app, SamlServiceProvider(sp_settings(idp, key_file=keys.key_file, cert_file=keys.cert_file)))
    add_user(app, "alice@example.com")
    login_url = sso.start()
    assert "Signature=" in login_url and "SigAlg=" in login_url
    assert sso.finish(idp.respond(login_url))["current_user"] == "alice@example.com"


@on_databases
def test_post_only_idp_has_no_login_url(app: Flask, sso_keys: dict[str, KeyPair]) -> None:
    post_only = IdentityProvider(sso_keys["idp"], post_only=True)
    sp = SamlServiceProvider(sp_settings(post_only))
    with app.test_request_context(), pytest.raises(AuditConfigError) as caught:
        sp.login_url()
    assert str(caught.value).startswith(
        f"The identity provider {IDP_ENTITY_ID} offers no HTTP-Redirect sign-in"
    )


def test_flask_audit_does_not_import_pysaml2() -> None:
    code = "import sys, flask_audit; print('saml2' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
