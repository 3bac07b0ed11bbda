"""Checking the seal chain: each link's HMAC and place, then each sealed event against its seal.

Apart from :mod:`flask_audit.integrity.sealing` because it only reads and reports; it never extends
the chain. It shares the link signature (:func:`~flask_audit.integrity.sealing.sign`, so both sides
sign the same fields), the key check and ``GENESIS``, and stops at the first problem, named
by one of ``PROBLEM_KINDS`` with the event or seal it concerns.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import hmac as hmac_
import struct
import typing as t
import zlib

import sqlalchemy as sa

from ..exceptions import SealMismatchError
from ..store.models import audit_event_table
from ..store.models import audit_seal_table
from .canonical import event_content
from .canonical import leaf
from .canonical import merkle_root
from .canonical import Row
from .canonical import unpack_manifest
from .sealing import GENESIS
from .sealing import require_key
from .sealing import sign

_EVENTS = audit_event_table
_SEALS = audit_seal_table

PROBLEM_KINDS = ("modified", "deleted", "inserted", "reordered", "truncated", "seal_altered", "seal_removed")


@dataclasses.dataclass(frozen=True)
class Problem:
    """The first thing :func:`verify` found wrong: its kind, the event or seal, a sentence."""

    kind: str
    message: str
    event_id: int | None = None
    seal_id: int | None = None


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify`; ``problem`` is ``None`` when the trail is intact."""

    links: int
    events: int
    unsealed: int
    pending_prune: int
    pruned_up_to: int
    head: str
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def raise_for_problem(self) -> None:
        """:raises SealMismatchError: with the problem's sentence, if there is one."""
        if self.problem is not None:
            raise SealMismatchError(self.problem.message)


class _Cursor:
    """The events in id order, read in keyset batches, with the current one at hand."""

    def __init__(self, conn: sa.Connection, upper: int, batch_size: int) -> None:
        self._conn, self._upper, self._size = conn, upper, batch_size
        self._batch: list[Row] = []
        self._last: int | None = None
        self.current: Row | None = None
        self.advance()

    def advance(self) -> None:
        if not self._batch:
            query = sa.select(_EVENTS).where(_EVENTS.c.id <= self._upper)
            if self._last is not None:
                query = query.where(_EVENTS.c.id > self._last)
            rows = self._conn.execute(query.order_by(_EVENTS.c.id).limit(self._size)).all()
            self._batch = [row._mapping for row in reversed(rows)]
            self._last = int(rows[-1].id) if rows else self._last
        self.current = self._batch.pop() if self._batch else None

    def within(self, upper: int) -> Row | None:
        """The current event if its id is at most ``upper``."""
        row = self.current
        return row if row is not None and row["id"] <= upper else None


def _intact(link: Row, key: bytes) -> bool:
    """The link's HMAC matches, and its manifest agrees with its count and root."""
    if not hmac_.compare_digest(sign(key, link), link["hmac"]):
        return False
    try:
        ids, leaves = unpack_manifest(link["manifest"])
    except (ValueError, struct.error, zlib.error):
        return False
    if link["kind"] == "prune":
        return not leaves
    counted = len(ids) == len(leaves) == int(link["event_count"])
    return counted and merkle_root(leaves) == str(link["merkle_root"])


def _check_links(links: c.Sequence[Row], key: bytes) -> Problem | None:
    expected = GENESIS
    for link in links:
        sid = link["id"]
        if not _intact(link, key):
            message = (
                f"Seal {sid} was altered: its HMAC does not match (or AUDIT_SEAL_KEY is not the key it"
                " was made with)."
            )
            return Problem("seal_altered", message, link["first_id"], sid)
        if link["prev_hmac"] != expected:
            message = f"Seal {sid} does not follow the chain: the link before it was removed."
            return Problem("seal_removed", message, None, sid)
        expected = link["hmac"]
    return None


class _Pruned:
    """The ids prune links declare removed: all up to the highest ``last_id``, and some above."""

    def __init__(self, links: c.Iterable[Row]) -> None:
        prunes = [link for link in links if link["kind"] == "prune"]
        self.up_to = max((int(link["last_id"]) for link in prunes), default=0)
        self.above = {i for link in prunes for i in unpack_manifest(link["manifest"])[0] if i > self.up_to}

    def __contains__(self, event_id: int) -> bool:
        return event_id <= self.up_to or event_id in self.above


def _check_range(link: Row, lo: int, cursor: _Cursor, pruned: _Pruned) -> tuple[Problem | None, int, int]:
    """Walk one seal's manifest against the stored events: (first problem, checked, pending)."""
    sid, hi = link["id"], link["last_id"]
    checked = pending = 0
    if hi <= pruned.up_to and cursor.within(hi) is None:
        return None, 0, 0  # pruned whole: nothing left to compare
    ids, leaves = unpack_manifest(link["manifest"])
    i = 0
    while True:
        expected = ids[i] if i < len(ids) else None
        row = cursor.within(hi)
        if expected is None and row is None:
            return None, checked, pending
        if row is not None and (expected is None or row["id"] < expected):
            message = f"Event {row['id']} was inserted into the range of seal {sid} (ids {lo + 1} to {hi})."
            return Problem("inserted", message, row["id"], sid), checked, pending
        if expected is not None and (row is None or expected < row["id"]):
            i += 1
            if expected in pruned:
                continue
            if cursor.current is None:
                message = (
                    f"The newest sealed events were removed: event {expected} and every later one up to"
                    f" {hi} (seal {sid})."
                )
                return Problem("truncated", message, expected, sid), checked, pending
            message = f"Event {expected} was deleted: seal {sid} covers it and no prune removed it."
            return Problem("deleted", message, expected, sid), checked, pending
        row = t.cast(Row, row)  # present and expected: the same id
        event_id, content = int(row["id"]), event_content(row)
        if leaf(event_id, content) != leaves[i]:
            pairs = zip(ids, leaves, strict=True)
            moved = [other for other, sealed in pairs if other != event_id and leaf(other, content) == sealed]
            if moved:
                message = f"Event {event_id} holds what seal {sid} sealed as event {moved[0]}: reordered."
                return Problem("reordered", message, event_id, sid), checked, pending
            message = f"Event {event_id} was modified after seal {sid} sealed it."
            return Problem("modified", message, event_id, sid), checked, pending
        if event_id in pruned:
            pending += 1
        else:
            checked += 1
        i += 1
        cursor.advance()


def verify(
    engine: sa.Engine, key: bytes | None, *, anchor: str | None = None, batch_size: int = 5000
) -> VerifyReport:
    """Recompute the chain and compare every sealed event; report the first problem.

    Events that prune links declare removed may be missing; those still present (a prune
    that stopped half-way) must match. Events after the last seal are counted, not checked.
    PostgreSQL reads one snapshot (``REPEATABLE READ``); MariaDB does so anyway.

    :param anchor: an ``hmac`` kept elsewhere (printed by ``flask audit seal``): the chain
        must contain it, which shows when the newest seals and their events were removed.
    :raises AuditConfigError: no key.
    """
    key = require_key(key, "verify the audit trail")
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    checked = pending = 0
    with engine.connect().execution_options(**options) as conn:
        links = [row._mapping for row in conn.execute(sa.select(_SEALS).order_by(_SEALS.c.id))]
        seals = [link for link in links if link["kind"] == "seal"]
        sealed_to = int(seals[-1]["last_id"]) if seals else 0
        unsealed = conn.scalar(sa.select(sa.func.count()).where(_EVENTS.c.id > sealed_to)) or 0
        problem = _check_links(links, key)
        if problem is None and anchor is not None and anchor not in {link["hmac"] for link in links}:
            message = f"The chain does not contain the anchor {anchor}: the newest seals were removed."
            problem = Problem("seal_removed", message)
        pruned = _Pruned(links if problem is None else ())
        if problem is None:
            cursor, lo = _Cursor(conn, sealed_to, batch_size), 0
            for link in seals:
                problem, done, waiting = _check_range(link, lo, cursor, pruned)
                checked, pending, lo = checked + done, pending + waiting, int(link["last_id"])
                if problem is not None:
                    break
    head = str(links[-1]["hmac"]) if links else GENESIS
    return VerifyReport(len(links), checked, int(unsealed), pending, pruned.up_to, head, problem)
