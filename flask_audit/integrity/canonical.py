"""The canonical form of an event row and what is hashed from it: leaves, Merkle root, manifest.

A seal is only as good as the bytes it hashes. These pure functions (no database access)
fix those bytes, so that :mod:`flask_audit.integrity.sealing` and :mod:`flask_audit.integrity.verification`
compute the same leaves, whichever database stored the row.

The canonical form (:func:`canonical`) is one JSON array of every column, ``details`` with
sorted keys and numbers in one spelling, so a row hashes to the same bytes on SQLite,
PostgreSQL (JSONB reorders keys and turns ``1e100`` into an integer) and MariaDB. Leaves and
the Merkle root follow RFC 6962; a manifest lists a link's ids and, for a seal, their leaves.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import decimal
import hashlib
import itertools
import json
import struct
import typing as t
import zlib

from ..store.models import audit_event_table

_COLUMNS = tuple(name for name in audit_event_table.c.keys() if name != "id")
Row = c.Mapping[t.Any, t.Any]  # an event or seal row, as read or about to be written


def _number(value: int | float) -> int | float:
    """One spelling per number: integral values as integers, read from their decimal text."""
    if isinstance(value, float) and value.is_integer():
        return int(decimal.Decimal(repr(value)))
    return value


def _normalise(value: t.Any) -> t.Any:
    if isinstance(value, dict):
        return {key: _normalise(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normalise(item) for item in value]
    if isinstance(value, float):
        return _number(value)
    return value


def iso_utc(value: dt.datetime | None) -> str | None:
    """``value`` in UTC with microseconds and a ``Z``: one spelling on every database."""
    return None if value is None else value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_content(row: Row) -> str:
    """Every column but ``id`` as a JSON array: the part of an event that can move."""
    values = [row[name] for name in _COLUMNS]
    values[_COLUMNS.index("occurred_at")] = iso_utc(row["occurred_at"])
    values[-1] = _normalise(row["details"])
    return json.dumps(values, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def leaf(event_id: int, content: str) -> bytes:
    """The leaf hash of an event with id ``event_id`` and :func:`event_content` ``content``."""
    return hashlib.sha256(b"\x00[" + f"{event_id},".encode() + content[1:].encode()).digest()


def canonical(row: Row) -> bytes:
    """The bytes an event is hashed as: ``[id, uid, occurred_at, ..., details]`` in UTF-8."""
    return f"[{row['id']},{event_content(row)[1:]}".encode()


def leaf_hash(row: Row) -> bytes:
    """SHA-256 of ``0x00`` and the canonical form (RFC 6962 leaf)."""
    return leaf(int(row["id"]), event_content(row))


def merkle_root(leaves: c.Sequence[bytes]) -> str:
    """RFC 6962 Merkle tree hash of ``leaves``, as hex; pairs left to right, odd ones carried up."""
    level = list(leaves)
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        paired = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        level = paired + level[len(level) - len(level) % 2 :]
    return level[0].hex()


def pack_manifest(ids: c.Sequence[int], leaves: c.Sequence[bytes] = ()) -> bytes:
    """A manifest: the ids (zlib'd deltas) and, for a seal, each event's 32-byte leaf."""
    deltas = [b - a for a, b in itertools.pairwise((0, *ids))]
    packed = zlib.compress(struct.pack(f"<{len(deltas)}q", *deltas))
    return struct.pack("<BI", 1, len(packed)) + packed + b"".join(leaves)


def unpack_manifest(manifest: bytes) -> tuple[list[int], list[bytes]]:
    """The ids and leaves of a manifest made by :func:`pack_manifest`.

    :raises ValueError: (or ``struct.error``, ``zlib.error``) the bytes are not a manifest.
    """
    version, size = struct.unpack_from("<BI", manifest)
    deltas = zlib.decompress(manifest[5 : 5 + size])
    ids = list(itertools.accumulate(struct.unpack(f"<{len(deltas) // 8}q", deltas)))
    body = manifest[5 + size :]
    leaves = [body[i : i + 32] for i in range(0, len(body), 32)]
    if version != 1 or len(leaves) not in (0, len(ids)) or len(body) % 32:
        raise ValueError("unreadable manifest")
    return ids, leaves
