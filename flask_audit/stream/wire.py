"""The event on the wire: a versioned JSON object, filtered and masked per destination.

The fields and their names are those of the JSON API (:func:`flask_audit.admin.api.serialize`),
plus ``schema`` (:data:`SCHEMA`, bumped only for an incompatible change) and ``seal_id``:
the id of the ``audit_seal`` link that covers the event, or ``null`` while it is unsealed.
A destination with ``"format": "ocsf"`` gets the OCSF form of it instead (:mod:`.ocsf`).
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import fnmatch
import hashlib
import hmac
import json
import typing as t

import sqlalchemy as sa

from ..admin.api import serialize
from ..store.models import audit_seal_table
from .ocsf import to_ocsf
from .settings import Destination

SCHEMA = "flask-audit.event/1"
ALERT_SENT = "audit.alert_sent"
_SEALS = audit_seal_table


@dataclasses.dataclass(frozen=True)
class Message:
    """One event as a sink sends it: ``uid`` is the de-duplication key on every sink."""

    id: int
    uid: str
    event_type: str
    record: c.Mapping[str, t.Any]
    body: bytes


def selects(destination: Destination, row: t.Any) -> bool:
    """Whether ``row`` passes the destination's event type, entity and tenant filters.

    Event types may end in ``*`` (``"user.*"``); an empty filter lets everything through.
    An ``audit.alert_sent`` event whose alert names this destination (``"stream:NAME"``
    among a rule's recipients) passes the type and entity filters: the alert was sent here.
    The tenant filter still applies.
    """
    if destination.tenants and row.tenant_id not in destination.tenants:
        return False
    if alert_for(destination, row):
        return True
    if destination.event_types and not any(
        fnmatch.fnmatchcase(row.event_type, pattern) for pattern in destination.event_types
    ):
        return False
    return not destination.entities or row.entity in destination.entities


def alert_for(destination: Destination, row: t.Any) -> bool:
    """Whether ``row`` is an alert sent to ``destination``."""
    if row.event_type != ALERT_SENT or not isinstance(row.details, dict):
        return False
    streams = row.details.get("streams")
    return isinstance(streams, list) and destination.name in streams


def keyed_hash(key: bytes, value: t.Any) -> str | None:
    """``value`` as a keyed hash (HMAC-SHA-256), stable for one key: joinable, not readable."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return "hmac-sha256:" + hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def masked(destination: Destination, data: dict[str, t.Any]) -> dict[str, t.Any]:
    """``data`` with the destination's masked fields dropped or hashed (``details`` copied first)."""
    if not destination.mask:
        return data
    if isinstance(data.get("details"), dict):
        data["details"] = dict(data["details"])
    for field, mode in destination.mask.items():
        inner = field.startswith("details.") and isinstance(data.get("details"), dict)
        target, name = (data["details"], field[8:]) if inner else (data, field)
        if name not in target:
            continue
        if mode == "drop":
            del target[name]
        else:
            target[name] = keyed_hash(t.cast(bytes, destination.mask_key), target[name])
    return data


def seal_ids(conn: sa.Connection, first: int, last: int) -> list[tuple[int, int]]:
    """``(last_id, seal id)`` of the seal links that cover ids ``first``..``last``, in order.

    Seal ranges are contiguous: an event belongs to the first link whose ``last_id`` is at
    or above its id.
    """
    query = (
        sa.select(_SEALS.c.last_id, _SEALS.c.id)
        .where(_SEALS.c.kind == "seal", _SEALS.c.last_id >= first)
        .order_by(_SEALS.c.last_id)
    )
    found: list[tuple[int, int]] = []
    for last_id, seal_id in conn.execute(query):
        found.append((int(last_id), int(seal_id)))
        if last_id >= last:
            break
    return found


def encode(destination: Destination, row: t.Any, seal_id: int | None) -> Message:
    """The message for ``row``: the JSON API's fields, the schema, the seal, masked."""
    data = {"schema": SCHEMA, **serialize(row), "seal_id": seal_id}
    data = masked(destination, data)
    if destination.format == "ocsf":
        data = to_ocsf(data)
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    return Message(id=int(row.id), uid=str(row.uid), event_type=str(row.event_type), record=data, body=body)


def encode_batch(destination: Destination, conn: sa.Connection, rows: c.Sequence[t.Any]) -> list[Message]:
    """The messages of the selected ``rows`` (ids ascending), each with its seal id."""
    if not rows:
        return []
    seals = seal_ids(conn, int(rows[0].id), int(rows[-1].id))
    messages, index = [], 0
    for row in rows:
        while index < len(seals) and seals[index][0] < row.id:
            index += 1
        if selects(destination, row):
            messages.append(encode(destination, row, seals[index][1] if index < len(seals) else None))
    return messages
