"""Secrets never reach ``details``: masked by key in any spelling, and by shape under any key.

The negative cases matter as much: the keys and values the product relies on (``email``,
``role``, ``sso_url``, ``fingerprint``, ``certificate_sha256``...) must come through as given.
"""

from __future__ import annotations

import json
import math
import typing as t

import hypothesis.strategies as st
import pytest
from flask import Flask
from hypothesis import given
from hypothesis import settings

from flask_audit.store.sanitize import clean_details
from flask_audit.store.sanitize import DETAIL_TEXT_MAX
from flask_audit.store.sanitize import is_secret_key
from flask_audit.store.sanitize import MASK
from flask_audit.store.sanitize import mask_text

from ..conftest import audit_of
from ..conftest import stored

fast = settings(max_examples=200, deadline=None, derandomize=True, database=None)

# -- by key ----------------------------------------------------------------------------------------

#: Each secret name as its words; every spelling of them below must be masked.
SECRET_NAMES = [
    ["password"], ["passwd"], ["passphrase"], ["passcode"], ["pass"], ["pwd"], ["secret"], ["secrets"],
    ["token"], ["otp"], ["totp"], ["hotp"], ["otpauth"], ["otpauth", "uri"], ["provisioning", "uri"],
    ["provisioning"], ["jwt"], ["bearer"], ["auth"], ["access", "key"], ["api", "key"], ["private", "key"],
    ["secret", "key"], ["old", "password"], ["new", "password"], ["session"], ["session", "id"],
    ["reset", "link"], ["reset", "url"], ["magic", "link"], ["login", "link"], ["confirm", "link"],
    ["confirmation", "url"], ["verify", "link"], ["invite", "link"], ["credentials"], ["credential"],
    ["csrf", "token"], ["cookie"], ["authorization"], ["pin"], ["code"], ["recovery", "codes"], ["salt"],
    ["hash"], ["signature"], ["refresh", "token"], ["client", "secret"], ["id", "token"],
]  # fmt: skip
#: Written run together, as the red team found them.
RUN_TOGETHER = [
    "secretkey", "accesskey", "oldpassword", "newpassword", "apikey", "privatekey", "sessionid",
    "otpauthuri", "password1", "password2", "Password_1", "resetToken", "APIKey", "XAuthToken",
    "x-api-key", "X-Auth-Token", "tf_totp_secret", "us_totp_secrets", "user.password",
    "aws_secret_access_key",
]  # fmt: skip
#: Words around a secret name that do not make it harmless.
AROUND = [
    "user",
    "admin",
    "current",
    "tf",
    "us",
    "my",
    "raw",
    "plain",
    "value",
    "input",
    "field",
    "confirm",
    "x",
]


def _spell(words: list[str], style: str) -> str:
    if style == "camel":
        return words[0] + "".join(word.capitalize() for word in words[1:])
    if style == "pascal":
        return "".join(word.capitalize() for word in words)
    if style == "upper":
        return "_".join(words).upper()
    return {"snake": "_", "kebab": "-", "dots": ".", "space": " "}[style].join(words)


@st.composite
def secret_keys(draw: st.DrawFn) -> str:
    words = list(draw(st.sampled_from(SECRET_NAMES)))
    if draw(st.booleans()):
        words = [draw(st.sampled_from(AROUND)), *words]
    if draw(st.booleans()):
        words = [*words, draw(st.sampled_from(AROUND))]
    key = _spell(
        words, draw(st.sampled_from(["snake", "kebab", "dots", "space", "camel", "pascal", "upper"]))
    )
    if draw(st.booleans()):
        key += str(draw(st.integers(0, 99)))
    return key


@fast
@given(key=secret_keys())
def test_a_secret_key_is_masked_in_any_spelling(key: str) -> None:
    assert is_secret_key(key), key
    assert clean_details({key: "s3cr3t-value", "nested": [{key: {"deep": 1}}]}) == {
        key: MASK,
        "nested": [{key: MASK}],
    }


@pytest.mark.parametrize("key", RUN_TOGETHER)
def test_a_secret_key_run_together_is_masked(key: str) -> None:
    assert is_secret_key(key)


#: Keys the product and its adapters store; none may lose its value.
KEPT = [
    "email", "role", "team", "method", "reason", "before", "after", "entity_id", "idp_entity_id",
    "fingerprint", "signing_fingerprints", "certificate_sha256", "sso_url", "acs_url", "name_id",
    "name_id_format", "metadata", "changes", "user", "device", "member", "invited_by_id", "enforced",
    "author", "authority", "authenticator", "authn_requests_signed", "want_assertions_signed", "webauthn",
    "oauth", "passkey", "encode", "key_name", "key_file", "cert_file", "status_code", "error_code",
    "country_code", "removed", "up_to_id", "archive", "cutoff", "delivery", "job_id", "rows", "format",
]  # fmt: skip
#: Keys that describe a secret without holding one: the last word says so (documented).
DESCRIBING = [
    "session_count", "sessionCount", "token_type", "password_changed", "password_changed_at",
    "otp_enabled", "totp_required", "token_expires", "auth_method", "session_timeout",
]  # fmt: skip


@pytest.mark.parametrize("key", KEPT + DESCRIBING)
def test_keys_the_product_relies_on_are_kept(key: str) -> None:
    assert not is_secret_key(key)
    assert clean_details({key: "plain value"}) == {key: "plain value"}


NEUTRAL = [
    "email", "role", "team", "method", "reason", "entity", "id", "name", "device", "ip", "sso", "url",
    "author", "authority", "fingerprint", "certificate", "sha256", "before", "after", "user",
]  # fmt: skip


@fast
@given(
    words=st.lists(st.sampled_from(NEUTRAL), min_size=1, max_size=3),
    style=st.sampled_from(["snake", "kebab", "dots", "camel", "pascal", "upper"]),
)
def test_keys_made_of_ordinary_words_are_kept(words: list[str], style: str) -> None:
    key = _spell(words, style)
    assert not is_secret_key(key), key


# -- by shape --------------------------------------------------------------------------------------

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiIsIm5hbWUiOiJib2IifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "-----END RSA PRIVATE KEY-----"
)
#: (text carrying a secret, the secret part that must be gone, what must stay).
SHAPES = [
    ("otpauth://totp/Acme:bob@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Acme", "JBSWY3DPEHPK3PXP", ""),
    (f"session started with {JWT} today", "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", "session started"),
    ("Authorization: Bearer 0a1b2c3d4e5f6a7b8c9d", "0a1b2c3d4e5f6a7b8c9d", "Authorization: Bearer ***"),
    ("bearer abcdefghijklmnop", "abcdefghijklmnop", "bearer ***"),
    ("Basic Ym9iOmh1bnRlcjI=", "Ym9iOmh1bnRlcjI=", "Basic ***"),
    ("postgresql://app:hunter2@db.example.com/prod", "hunter2", "postgresql://app:***@db.example.com/prod"),
    ("https://ghtoken123@git.example.com/repo", "ghtoken123", "https://***@git.example.com/repo"),
    ("https://app.example/cb?code=4/0AX4XfWh&state=xyz", "4/0AX4XfWh", "state=xyz"),
    ("https://app.example/#access_token=ya29.a0Af&token_type=bearer", "ya29.a0Af", "token_type=bearer"),
    (
        "https://app.example/reset?token=Im1hbGxvcnki.ZXyz",
        "Im1hbGxvcnki",
        "https://app.example/reset?token=***",
    ),
    (
        "https://maps.example/api?key=AIzaSyD-1234567890abcdefghijklmnopqrs",
        "AIzaSyD-1234567890",
        "api?key=***",
    ),
    (
        "https://s3.example/f?X-Amz-Signature=abc123def&X-Amz-Credential=AKID",
        "abc123def",
        "https://s3.example",
    ),
    ("login failed: password=hunter2 user=bob", "hunter2", "user=bob"),
    (
        '{"email": "bob@example.com", "newPassword": "hunter2", "pin": 1234}',
        "hunter2",
        '"email": "bob@example.com"',
    ),
    (
        f"key file:\n{PEM}\nend",
        "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
        "key file:",
    ),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA" + "A" * 3000, "b3BlbnNzaC1rZXk", ""),
    ("aws AKIAIOSFODNN7EXAMPLE in use", "AKIAIOSFODNN7EXAMPLE", "aws *** in use"),
    ("ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", "ghp_0123456789abcdefghij", ""),
    ("xoxb-123456789012-abcdefghijkl", "123456789012-abcdefghijkl", ""),
    ("sk_live_0123456789abcdefABCDEF", "0123456789abcdefABCDEF", ""),
]


@pytest.mark.parametrize(("text", "secret", "kept"), SHAPES)
def test_credential_shapes_are_masked_under_any_key(text: str, secret: str, kept: str) -> None:
    cleaned = clean_details({"note": text, "list": [text, {"inner": [text]}], text: 1})
    stored = json.dumps(cleaned)
    assert secret not in stored
    assert MASK in cleaned["note"]
    assert kept in cleaned["note"]
    assert cleaned["list"][1]["inner"][0] == cleaned["note"] == cleaned["list"][0]


@pytest.mark.parametrize(
    "value",
    [
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "dGhpcyBpcyBhIHNlY3JldCB2YWx1ZSAxMjM0NTY3OA==",
    ],
)
@pytest.mark.parametrize(
    "key", ["key", "value", "x-header", "callback_url", "payload", "raw", "client", "params"]
)
def test_a_long_random_string_under_a_suspicious_key_is_masked(key: str, value: str) -> None:
    assert clean_details({key: value, "nested": {key: [value]}}) == {key: MASK, "nested": {key: [MASK]}}


#: Values the product stores: a certificate's hash, fingerprints, addresses, agents, sentences.
KEPT_VALUES = {
    "certificate_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "fingerprint": "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01",
    "signing_fingerprints": ["9F:86:D0:81:88:4C:7D:65", "AA:01"],
    "sso_url": "https://idp.example.com/saml2/sso?SAMLRequest=fZJNT",
    "entity_id": "https://idp.example.com/metadata",
    "email": "bob+audit@example.com",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0",
    "plan": "Basic plan, upgraded from basic settings",
    "reason": "bad_password",
    "method": "magic_link",
    "merkle_root": "d2a84f4b8b650937ec8f73cd8be2c74add5a911ba64df27458ed8229da804a26",
    "uid": "0123456789abcdef0123456789abcdef",
    "activity": "Changed role of bob@example.com from Member to Admin",
    "filters": {"start": "2026-01-01", "end": "2026-01-31", "team": "Growth"},
}


def test_values_the_product_stores_are_kept() -> None:
    assert clean_details(KEPT_VALUES) == KEPT_VALUES


def test_a_pem_is_masked_before_the_text_is_cut() -> None:
    """A key longer than the stored text loses its END line to the cut: still masked."""
    text = "-----BEGIN PRIVATE KEY-----\n" + "QUJD" * 3000 + "\n-----END PRIVATE KEY-----"
    cleaned = clean_details({"note": text})
    assert cleaned == {"note": MASK}
    long_tail = "x" * (DETAIL_TEXT_MAX - 10) + " " + JWT
    assert "eyJ" not in json.dumps(clean_details({"note": long_tail}))


def test_mask_text_leaves_text_without_a_credential_alone() -> None:
    for text in [
        "",
        "a=b",
        "bob@example.com",
        "x" * 5000,
        "the bearer of news",
        "see https://example.com/a?b=c",
    ]:
        assert mask_text(text) == text


# -- never raises ----------------------------------------------------------------------------------


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class BrokenMapping(dict[str, t.Any]):
    def items(self) -> t.Any:
        raise RuntimeError("no items")


def test_a_value_whose_str_raises_becomes_a_placeholder() -> None:
    cleaned = clean_details(
        {"a": Unprintable(), Unprintable(): "key", "list": [Unprintable()], "map": BrokenMapping(x=1)}
    )
    assert cleaned == {
        "a": "<unprintable Unprintable>",
        "<unprintable Unprintable>": "key",
        "list": ["<unprintable Unprintable>"],
        "map": "<unprintable BrokenMapping>",
    }
    assert clean_details(Unprintable()) == "<unprintable Unprintable>"


def test_numbers_json_cannot_hold_become_text() -> None:
    cleaned = clean_details(
        {"nan": math.nan, "inf": math.inf, "big": 2**64, "huge": 10**5000, "ok": 2**63 - 1}
    )
    assert cleaned == {
        "nan": "nan",
        "inf": "inf",
        "big": str(2**64),
        "huge": "<unprintable int>",
        "ok": 2**63 - 1,
    }


def test_deep_structures_are_cut_without_their_repr() -> None:
    """A repr of what is too deep would carry its secrets past the key check."""
    deep: t.Any = {"password": "hunter2"}
    for _ in range(10):
        deep = {"level": [deep]}
    assert "hunter2" not in json.dumps(clean_details(deep))


anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary()
    | st.datetimes()
    | st.builds(Unprintable)
    | st.sampled_from([s[0] for s in SHAPES]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.frozensets(st.integers(), max_size=3)
        | st.dictionaries(st.text(max_size=12) | st.integers() | secret_keys(), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(value=st.dictionaries(st.text(max_size=12) | secret_keys(), anything, max_size=5))
def test_clean_details_never_raises_and_always_gives_json(value: dict[t.Any, t.Any]) -> None:
    cleaned = clean_details(value)
    text = json.dumps(cleaned, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    assert "\x00" not in text
    for secret in (
        "JBSWY3DPEHPK3PXP",
        "hunter2",
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV",
        "AKIAIOSFODNN7EXAMPLE",
    ):
        assert secret not in text


# -- through record(), on every backend ------------------------------------------------------------


def test_recorded_details_are_masked_by_key_and_shape(app: Flask, app_ctx: None) -> None:
    audit_of(app).record(
        "two_factor.enabled",
        details={
            "method": "totp",
            "otpauth_uri": "otpauth://totp/Acme:bob?secret=JBSWY3DPEHPK3PXP",
            "devices": [{"name": "Pixel", "setup": "otpauth://totp/Acme:bob?secret=JBSWY3DPEHPK3PXP"}],
            "password1": "hunter2",
            "headers": {"X-Forwarded-For": "203.0.113.9", "Authorization": "Bearer abcdefgh12345678"},
            "note": f"issued {JWT}",
            "sso_url": "https://idp.example.com/sso",
        },
    )
    [row] = stored(app)
    assert row.details == {
        "method": "totp",
        "otpauth_uri": MASK,
        "devices": [{"name": "Pixel", "setup": MASK}],
        "password1": MASK,
        "headers": {"X-Forwarded-For": "203.0.113.9", "Authorization": MASK},
        "note": f"issued {MASK}",
        "sso_url": "https://idp.example.com/sso",
    }
