"""Where one event stands against the seals: sealed and intact, changed since, or not sealed yet.

:func:`~flask_audit.integrity.verification.verify` walks the whole chain; the event detail page
asks about one event, so this reads one link: the seal whose range holds the event's id. It
checks that link's HMAC, so that its manifest is the one the key signed, finds the id in the
manifest and compares the leaf recorded there with the event's leaf computed now. That shows
an event changed, or slipped into a sealed range, after the seal; a link removed from the
chain, and the order of the chain, are for ``flask audit verify``.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import hmac
import struct
import typing as t
import zlib

import sqlalchemy as sa

from ..store.models import audit_event_table
from ..store.models import audit_seal_table
from .canonical import event_content
from .canonical import leaf
from .canonical import load_details
from .canonical import Row
from .canonical import unpack_manifest
from .canonical import UnreadableValue
from .sealing import sign

_EVENTS = audit_event_table
_SEALS = audit_seal_table

#: ``intact``: the seal's leaf matches; ``modified``: it does not; ``inserted``: the id is in a
#: seal's range but not in its manifest; ``seal_altered``: the covering seal fails its HMAC;
#: ``unsealed``: no seal covers the id yet; ``off``: no ``AUDIT_SEAL_KEY``.
STATES = ("intact", "modified", "inserted", "seal_altered", "unsealed", "off")


@dataclasses.dataclass(frozen=True)
class SealStatus:
    """One event against its seal: a state of :data:`STATES` and the seal, when one covers it.

    ``reason`` says why a ``modified`` event's content could not even be read.
    """

    state: str
    seal_id: int | None = None
    sealed_at: dt.datetime | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong: intact, not sealed yet, or sealing off."""
        return self.state in ("intact", "unsealed", "off")


def stored_columns(dialect: str) -> list[sa.ColumnElement[t.Any]]:
    """Every event column, ``details`` as its stored JSON text.

    Read that way, a ``details`` value no writer stores (invalid JSON, ``NaN``) is a finding
    of :func:`seal_status` rather than an error of the driver, and every backend hands
    over the same text (psycopg would decode ``jsonb`` itself).
    """
    details = _EVENTS.c.details
    text = sa.cast(details, sa.Text) if dialect == "postgresql" else sa.type_coerce(details, sa.Text)
    return [column for column in _EVENTS.c if column is not details] + [text.label("details")]


def seal_status(conn: sa.Connection, row: Row, key: bytes | None) -> SealStatus:
    """Where the event ``row`` (read with :func:`stored_columns`) stands against its seal.

    One indexed read of the event is the caller's; this adds one read of the seal table
    (the first seal whose ``last_id`` reaches the id) and hashes one event.
    """
    if not key:
        return SealStatus("off")
    event_id = int(row["id"])
    link = _covering_seal(conn, event_id)
    if link is None:
        return SealStatus("unsealed")
    seal_id, sealed_at = int(link["id"]), link["sealed_at"]
    manifest = _signed_manifest(link, key)
    if manifest is None:
        return SealStatus("seal_altered", seal_id, sealed_at)
    ids, leaves = manifest
    at = bisect.bisect_left(ids, event_id)
    if at == len(ids) or ids[at] != event_id or at >= len(leaves):
        return SealStatus("inserted", seal_id, sealed_at)
    try:
        content = event_content({**row, "details": load_details(row["details"])})
    except UnreadableValue as err:
        reason = f"its {err.column} cannot be read ({err.reason})"
        return SealStatus("modified", seal_id, sealed_at, reason)
    if leaf(event_id, content) != leaves[at]:
        return SealStatus("modified", seal_id, sealed_at)
    return SealStatus("intact", seal_id, sealed_at)


def _covering_seal(conn: sa.Connection, event_id: int) -> Row | None:
    """The seal whose range holds ``event_id``: seals follow each other in id order, each
    covering the ids after the previous one's ``last_id`` up to its own."""
    query = (
        sa.select(_SEALS)
        .where(_SEALS.c.kind == "seal", _SEALS.c.last_id >= event_id)
        .order_by(_SEALS.c.last_id)
        .limit(1)
    )
    found = conn.execute(query).first()
    return None if found is None else dict(found._mapping)


def _signed_manifest(link: Row, key: bytes) -> tuple[list[int], list[bytes]] | None:
    """The ids and leaves of ``link``'s manifest, if the link's HMAC vouches for them."""
    try:
        if not hmac.compare_digest(sign(key, link), str(link["hmac"])):
            return None
        return unpack_manifest(link["manifest"])
    except (ValueError, TypeError, AttributeError, struct.error, zlib.error):
        return None  # a field no sealer writes: the link was altered
