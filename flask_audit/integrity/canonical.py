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
import math
import struct
import typing as t
import zlib

from ..store.models import audit_event_table

#: Hashed as they are, in this order, ``details`` last; ``late`` follows only when true, so
#: rows stored before the column existed keep their leaves.
_COLUMNS = tuple(name for name in audit_event_table.c.keys() if name not in ("id", "late"))
Row = c.Mapping[t.Any, t.Any]  # an event or seal row, as read or about to be written
_MAX_DIGITS = 4000  # below Python's int-to-text limit (4300): such an integer can be hashed


def _number(value: int | float) -> int | float:
    """One spelling per number: integral values as integers, read from their decimal text."""
    if isinstance(value, float) and value.is_integer():
        return int(decimal.Decimal(repr(value)))
    return value


class UnreadableValue(ValueError):
    """A stored value no writer could have stored: it has no canonical form.

    Raised for text that is not JSON, a number beyond a float, a time that is not a time,
    bytes where text belongs. A sealed row holding one was changed after it was sealed.
    """

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column, self.reason = column, reason


def describe(value: t.Any) -> str:
    """What a value of the wrong type is, for a message: ``NULL``, ``text``, ``bytes``..."""
    names = {type(None): "NULL", str: "text", bytes: "bytes", int: "an integer", float: "a number"}
    return names.get(type(value), type(value).__name__)


class _Refused(ValueError):
    """A JSON number the canonical form cannot hold."""


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise _Refused(f"the number {text[:40]} is beyond the range of a float")
    return number


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_DIGITS:
        raise _Refused(f"an integer of {len(text.lstrip('-'))} digits")
    return int(text)


def _constant(name: str) -> t.NoReturn:
    raise _Refused(f"{name}, which is not a JSON number")


def load_details(text: t.Any) -> t.Any:
    """Parse ``details`` as stored (JSON text), refusing what JSON and the seals cannot hold.

    The same values as SQLAlchemy's and psycopg's ``json.loads`` for anything a writer
    stores; ``NaN``, ``Infinity`` and numbers beyond a float raise instead of becoming
    ``nan`` or ``inf``, which have no canonical form.

    :raises UnreadableValue: not JSON text.
    """
    if text is None or isinstance(text, dict | list):
        return text  # SQL NULL; or a driver that decoded the JSON already
    if not isinstance(text, str):
        raise UnreadableValue("details", f"{describe(text)}, not JSON text")
    try:
        return json.loads(text, parse_float=_finite, parse_int=_integer, parse_constant=_constant)
    except RecursionError:
        raise UnreadableValue("details", "JSON nested too deeply") from None
    except _Refused as err:
        raise UnreadableValue("details", str(err)) from None
    except ValueError as err:
        raise UnreadableValue("details", f"not valid JSON: {str(err)[:120]}") from None


def _normalise(value: t.Any) -> t.Any:
    if isinstance(value, dict):
        return {key: _normalise(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normalise(item) for item in value]
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnreadableValue("details", f"the number {value} has no JSON form")
        return _number(value)
    if value is None or isinstance(value, str | int):
        return value
    raise UnreadableValue("details", f"{describe(value)} is not a JSON value")


def _scalar(column: str, value: t.Any) -> t.Any:
    """A column's value if JSON can hold it as a writer stored it (text, a number, NULL)."""
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise UnreadableValue(column, f"{describe(value)}, not text")


def iso_utc(value: dt.datetime | None) -> str | None:
    """``value`` in UTC with microseconds and a ``Z``: one spelling on every database."""
    return None if value is None else value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_content(row: Row) -> str:
    """Every column but ``id`` as a JSON array: the part of an event that can move.

    ``late`` is appended only when true (see :data:`_COLUMNS`).

    :raises UnreadableValue: a column holds what no writer stores (a time that is not a
        time, bytes, ``details`` with a non-finite number); it names the column.
    """
    when = row["occurred_at"]
    if when is not None and not isinstance(when, dt.datetime):
        raise UnreadableValue("occurred_at", f"{describe(when)}, not a time")
    values = [iso_utc(when) if name == "occurred_at" else _scalar(name, row[name]) for name in _COLUMNS[:-1]]
    try:
        values.append(_normalise(row["details"]))
    except RecursionError:
        raise UnreadableValue("details", "JSON nested too deeply") from None
    if row.get("late"):
        values.append(True)
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
