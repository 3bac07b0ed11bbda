"""The canonical form is the same bytes on every backend; the Merkle root is RFC 6962's."""

from __future__ import annotations

import datetime as dt
import hashlib
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit.integrity import canonical

from ..sealing_fixtures import engine_of
from ..sealing_fixtures import EVENTS

ROW: dict[str, t.Any] = {
    "id": 1000,
    "uid": "0123456789abcdef0123456789abcdef",
    "occurred_at": dt.datetime(2025, 3, 30, 1, 30, 0, 123456, tzinfo=dt.timezone.utc),
    "tenant_id": None,
    "team": "Growth",
    "event_type": "role.updated",
    "entity": "Role",
    "action": "update",
    "outcome": "success",
    "activity": "Changed role of zoë@example.com",
    "actor_id": "42",
    "actor_email": "admin@example.com",
    "ip": "2001:db8::1",
    "user_agent": "Mozilla/5.0",
    "request_id": "req-1",
    "target_type": "user",
    "target_id": "7",
    "details": {
        "z": 1,
        "a": {"y": "é ☃ 😀", "x": [1, 2.5, True, None]},
        "big": 1e100,
        "one": 1.0,
        "tiny": 1.5e-10,
        "huge": 12345678901234567890,
    },
}
CANONICAL = (
    '[1000,"0123456789abcdef0123456789abcdef","2025-03-30T01:30:00.123456Z",null,"Growth","role.updated",'
    '"Role","update","success","Changed role of zoë@example.com","42","admin@example.com","2001:db8::1",'
    '"Mozilla/5.0","req-1","user","7",{"a":{"x":[1,2.5,true,null],"y":"é ☃ 😀"},"big":1' + "0" * 100 + ","
    '"huge":12345678901234567890,"one":1,"tiny":1.5e-10,"z":1}]'
)


def test_canonical_form_is_the_same_bytes_on_every_backend(app: Flask) -> None:
    """JSONB reorders keys and turns 1e100 into an integer; the canonical form does not care."""
    with engine_of(app).begin() as conn:
        conn.execute(sa.insert(EVENTS), ROW)
    with engine_of(app).connect() as conn:
        stored = conn.execute(sa.select(EVENTS).where(EVENTS.c.id == 1000)).one()._mapping
    assert canonical.canonical(stored) == CANONICAL.encode()
    assert canonical.canonical(ROW) == CANONICAL.encode()
    assert canonical.leaf_hash(stored) == hashlib.sha256(b"\x00" + CANONICAL.encode()).digest()


def _rfc6962(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)  # the largest power of two below n
    return hashlib.sha256(b"\x01" + _rfc6962(leaves[:split]) + _rfc6962(leaves[split:])).digest()


@pytest.mark.parametrize("count", range(1, 12))
def test_merkle_root_is_rfc6962(count: int) -> None:
    leaves = [hashlib.sha256(bytes([n])).digest() for n in range(count)]
    assert canonical.merkle_root(leaves) == _rfc6962(leaves).hex()
