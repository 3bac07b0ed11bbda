"""AUDIT_STREAMS parsing, the wire form and masking: no database needed."""

from __future__ import annotations

import datetime as dt
import types
import typing as t

import pytest

from flask_audit.exceptions import AuditConfigError
from flask_audit.stream import SCHEMA
from flask_audit.stream.settings import parse_destination
from flask_audit.stream.sinks.webhook import secret_bytes
from flask_audit.stream.sinks.webhook import signature
from flask_audit.stream.wire import encode
from flask_audit.stream.wire import selects

from .fixtures import SECRET


@pytest.mark.parametrize(
    ("name", "spec", "message"),
    [
        ("has space", {"sink": "stdout"}, "AUDIT_STREAMS: 'has space' is not a valid destination name"),
        ("a", "stdout", "AUDIT_STREAMS['a'] must be a dict with at least a 'sink', not 'stdout'."),
        ("a", {}, "AUDIT_STREAMS['a']['sink'] must name a sink (jsonl, stdout, webhook, nats, rabbitmq,"),
        (
            "a",
            {"sink": "stdout", "mask": "ip"},
            "AUDIT_STREAMS['a']['mask'] must be a list of fields to drop",
        ),
        (
            "a",
            {"sink": "stdout", "mask": ["password"]},
            "AUDIT_STREAMS['a']['mask']: 'password' is not a maskable",
        ),
        (
            "a",
            {"sink": "stdout", "mask": {"ip": "blur"}},
            "AUDIT_STREAMS['a']['mask']['ip'] must be 'drop' or 'hash'",
        ),
        (
            "a",
            {"sink": "stdout", "mask": {"ip": "hash"}},
            "AUDIT_STREAMS['a']: hashing a field needs 'mask_key'",
        ),
        (
            "a",
            {"sink": "stdout", "batch_size": 0},
            "AUDIT_STREAMS['a']['batch_size'] must be a positive integer",
        ),
        (
            "a",
            {"sink": "stdout", "lease_seconds": "5"},
            "AUDIT_STREAMS['a']['lease_seconds'] must be a positive",
        ),
        (
            "a",
            {"sink": "stdout", "event_types": [""]},
            "AUDIT_STREAMS['a']['event_types'] must be a list of names",
        ),
    ],
)
def test_a_malformed_destination_is_refused_with_its_name(name: str, spec: t.Any, message: str) -> None:
    with pytest.raises(AuditConfigError) as caught:
        parse_destination(name, spec)
    assert str(caught.value).startswith(message), str(caught.value)


def test_sink_options_are_kept_apart_from_the_worker_settings() -> None:
    found = parse_destination(
        "siem", {"sink": "webhook", "url": "http://x", "secret": SECRET, "batch_size": 10, "tenants": "acme"}
    )
    assert dict(found.options) == {"url": "http://x", "secret": SECRET}
    assert (found.batch_size, found.tenants) == (10, ("acme",))


def _row(**fields: t.Any) -> t.Any:
    base = {
        "id": 7,
        "uid": "0123456789abcdef0123456789abcdef",
        "occurred_at": dt.datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=dt.timezone.utc),
        "tenant_id": None,
        "team": "Growth",
        "event_type": "user.login",
        "entity": "Login",
        "action": "login",
        "outcome": "success",
        "activity": "Signed in",
        "actor_id": "42",
        "actor_email": "ann@example.com",
        "ip": "192.0.2.7",
        "user_agent": "curl",
        "request_id": None,
        "target_type": None,
        "target_id": None,
        "details": {"method": "password", "email": "ann@example.com"},
        "late": False,
    }
    return types.SimpleNamespace(**{**base, **fields})


def test_the_wire_form_is_versioned_and_masks_per_destination() -> None:
    plain = parse_destination("a", {"sink": "stdout"})
    message = encode(plain, _row(), seal_id=3)
    assert message.record["schema"] == SCHEMA
    assert message.record["occurred_at"] == "2026-12-08T01:02:03.456789Z"
    assert message.record["seal_id"] == 3 and message.uid == "0123456789abcdef0123456789abcdef"
    assert message.body.startswith(b'{"schema":"flask-audit.event/1","id":7,"uid":')

    masked = parse_destination(
        "b",
        {
            "sink": "stdout",
            "mask": {"ip": "hash", "actor_email": "drop", "details.email": "hash"},
            "mask_key": "k",
        },
    )
    record = encode(masked, _row(), seal_id=None).record
    assert "actor_email" not in record
    assert record["ip"] == encode(masked, _row(id=8), None).record["ip"] != "192.0.2.7"
    assert record["details"]["email"].startswith("hmac-sha256:") and record["details"]["method"] == "password"


def test_filters_match_types_with_wildcards_entities_and_tenants() -> None:
    dest = parse_destination("a", {"sink": "stdout", "event_types": ["user.*"], "tenants": [None, "acme"]})
    assert selects(dest, _row())
    assert selects(dest, _row(tenant_id="acme"))
    assert not selects(dest, _row(tenant_id="globex"))
    assert not selects(dest, _row(event_type="team.created"))
    assert not selects(parse_destination("b", {"sink": "stdout", "entities": ["Team"]}), _row())


def test_the_webhook_signature_is_the_standard_one() -> None:
    from standardwebhooks.webhooks import Webhook

    body = b'{"uid":"abc"}'
    stamp = int(dt.datetime.now(dt.timezone.utc).timestamp())
    header = signature(secret_bytes("a", SECRET), "abc", stamp, body)
    found = Webhook(SECRET).verify(
        body, {"webhook-id": "abc", "webhook-timestamp": str(stamp), "webhook-signature": header}
    )
    assert found == {"uid": "abc"}
    with pytest.raises(AuditConfigError, match="must be 'whsec_' followed by base64"):
        secret_bytes("a", "whsec_not base64!")


def test_the_ocsf_form_maps_sign_ins_and_account_changes() -> None:
    dest = parse_destination("siem", {"sink": "stdout", "format": "ocsf", "mask": ["user_agent"]})
    login = encode(dest, _row(outcome="failure", event_type="user.login_failed"), seal_id=None).record
    assert (login["class_uid"], login["activity_id"], login["type_uid"]) == (3002, 1, 300201)
    assert (login["status_id"], login["is_mfa"], login["time"]) == (
        2,
        False,
        1796691723456,
    )  # 2026-12-08T01:02:03.456Z
    assert login["user"] == {"uid": "42", "email_addr": "ann@example.com"}
    assert login["src_endpoint"] == {"ip": "192.0.2.7"} and "http_request" not in login
    assert login["metadata"]["uid"] == "0123456789abcdef0123456789abcdef"
    assert login["unmapped"]["team"] == "Growth" and login["unmapped"]["details"]["method"] == "password"
    change = encode(
        dest, _row(event_type="two_factor.disabled", target_type="user", target_id="9"), seal_id=None
    ).record
    assert (change["class_uid"], change["activity_id"], change["user"]) == (3001, 11, {"uid": "9"})
    assert change["actor"] == {"user": {"uid": "42", "email_addr": "ann@example.com"}}
    other = encode(dest, _row(event_type="team.created"), seal_id=None).record
    assert (other["class_uid"], other["type_uid"], other["category_uid"]) == (0, 99, 0)
    with pytest.raises(AuditConfigError, match=r"\['format'\] must be one of flask-audit, ocsf, not 'cef'"):
        parse_destination("siem", {"sink": "stdout", "format": "cef"})
