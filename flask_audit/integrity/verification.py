"""Checking the seal chain: each link's HMAC and place, then each sealed event against its seal.

Apart from :mod:`flask_audit.integrity.sealing` because it only reads and reports; it never extends
the chain. It shares the link signature (:func:`~flask_audit.integrity.sealing.sign`, so both sides
sign the same fields), the key check and ``GENESIS``, and stops at the first problem, named
by one of ``PROBLEM_KINDS`` with the event or seal it concerns.

A whole chain is not enough when the database owner can remove its newest links or swap in
another: given the entries of a witness (:mod:`flask_audit.integrity.witness`), every link
they name must be in the chain with the same HMAC. The chain may go beyond them (another
host sealed since); falling short of them, or differing, is a ``witness_mismatch``.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import datetime as dt
import hmac as hmac_
import sqlite3
import struct
import typing as t
import zlib

import sqlalchemy as sa

from ..exceptions import SealMismatchError
from ..store.models import audit_event_table
from ..store.models import audit_seal_table
from .arrival import ArrivalCheck
from .canonical import describe
from .canonical import event_content
from .canonical import leaf
from .canonical import load_details
from .canonical import merkle_root
from .canonical import Row
from .canonical import unpack_manifest
from .canonical import UnreadableValue
from .problems import Problem as Problem
from .problems import PROBLEM_KINDS as PROBLEM_KINDS
from .sealing import GENESIS
from .sealing import require_key
from .sealing import sign
from .witness import WitnessEntry
from .witness_check import check_witness
from .witness_check import WitnessCheck

_EVENTS = audit_event_table
_SEALS = audit_seal_table


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify`; ``problem`` is ``None`` when the trail is intact.

    ``witnessed`` counts the witness entries checked, ``witness_head`` is the newest link
    they name and ``beyond_witness`` the links made after it (by another host, say).
    """

    links: int
    events: int
    unsealed: int
    pending_prune: int
    pruned_up_to: int
    head: str
    problem: Problem | None
    witnessed: int = 0
    witness_head: int | None = None
    beyond_witness: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None

    def raise_for_problem(self) -> None:
        """:raises SealMismatchError: with the problem's sentence, if there is one."""
        if self.problem is not None:
            raise SealMismatchError(self.problem.message)


#: What a column type or driver raises for a value it cannot load (a server error is not one).
_LOAD_ERRORS = (ValueError, TypeError, ArithmeticError, RecursionError)
#: The key under which a row that could not be loaded carries ``(column, reason)``.
_UNREADABLE = "unreadable"


def _cannot_load(err: Exception) -> bool:
    """Whether ``err`` is about a stored value rather than the database or the connection.

    The driver of SQLite refuses text that is not UTF-8 with an ``OperationalError`` of its own.
    """
    if isinstance(err, _LOAD_ERRORS):
        return True
    orig = getattr(err, "orig", None)
    return isinstance(orig, sqlite3.OperationalError) and str(orig).startswith("Could not decode")


def _reason(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 120 else text[:119] + "…"


def _read(
    conn: sa.Connection, table: sa.Table, columns: c.Sequence[t.Any], query: sa.Select[t.Any]
) -> list[Row]:
    """The rows of ``query`` (id order) as dicts; one that cannot be loaded becomes
    ``{"id": ..., _UNREADABLE: (column, reason)}`` naming its first such column.

    Column types parse on the way out (a time stored as text on SQLite, a manifest that
    is not bytes): a value an attacker wrote there must become a finding, not a traceback.
    """
    try:
        return [dict(row._mapping) for row in conn.execute(query)]
    except Exception as err:
        if not _cannot_load(err):
            raise
    rows: list[Row] = []  # find the row, then its column, one at a time
    for row_id in conn.scalars(query.with_only_columns(table.c.id)):
        try:
            rows.append(dict(conn.execute(query.where(table.c.id == row_id)).one()._mapping))
        except Exception as err:
            if not _cannot_load(err):
                raise
            rows.append({"id": row_id, _UNREADABLE: _first_unreadable(conn, table, columns, row_id, err)})
    return rows


def _first_unreadable(
    conn: sa.Connection, table: sa.Table, columns: c.Sequence[t.Any], row_id: int, err: Exception
) -> tuple[str, str]:
    for column in columns:
        try:
            conn.execute(sa.select(column).where(table.c.id == row_id)).one()
        except Exception as bad:
            if not _cannot_load(bad):
                raise
            return column.name, _reason(getattr(bad, "orig", None) or bad)
    return "row", _reason(err)


def _event_columns(dialect: str) -> list[t.Any]:
    """Every event column, ``details`` as its stored text: parsed by
    :func:`~flask_audit.integrity.canonical.load_details`, so that invalid JSON or a
    non-finite number is named alike on every backend (psycopg would decode ``jsonb`` itself).
    """
    details = _EVENTS.c.details
    text = sa.cast(details, sa.Text) if dialect == "postgresql" else sa.type_coerce(details, sa.Text)
    return [column for column in _EVENTS.c if column is not details] + [text.label("details")]


class _Cursor:
    """The events in id order, read in keyset batches, with the current one at hand."""

    def __init__(self, conn: sa.Connection, upper: int, batch_size: int) -> None:
        self._conn, self._upper, self._size = conn, upper, batch_size
        self._columns = _event_columns(conn.dialect.name)
        self._batch: list[Row] = []
        self._last: int | None = None
        self.current: Row | None = None
        self.advance()

    def advance(self) -> None:
        if not self._batch:
            query = sa.select(*self._columns).where(_EVENTS.c.id <= self._upper)
            if self._last is not None:
                query = query.where(_EVENTS.c.id > self._last)
            query = query.order_by(_EVENTS.c.id).limit(self._size)
            rows = [_loaded(row) for row in _read(self._conn, _EVENTS, self._columns, query)]
            self._batch = rows[::-1]
            self._last = int(rows[-1]["id"]) if rows else self._last
        self.current = self._batch.pop() if self._batch else None

    def within(self, upper: int) -> Row | None:
        """The current event if its id is at most ``upper``."""
        row = self.current
        return row if row is not None and row["id"] <= upper else None


def _loaded(row: Row) -> Row:
    """``row`` with its ``details`` text parsed, or marked unreadable."""
    if _UNREADABLE in row:
        return row
    try:
        return {**row, "details": load_details(row["details"])}
    except UnreadableValue as err:
        return {"id": row["id"], _UNREADABLE: (err.column, err.reason)}


_TEXT, _WHOLE, _TIME = ((str,), "text"), ((int,), "a whole number"), ((dt.datetime,), "a time")
#: The Python types each seal column must load as; anything else was not written by a sealer.
_LINK_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "kind": _TEXT,
    "sealed_at": _TIME,
    "first_id": ((int, type(None)), "a whole number"),
    "last_id": _WHOLE,
    "event_count": _WHOLE,
    "cutoff": ((dt.datetime, type(None)), "a time"),
    "merkle_root": _TEXT,
    "manifest": ((bytes,), "bytes"),
    "prev_hmac": _TEXT,
    "hmac": _TEXT,
}


def _unreadable_link(link: Row) -> tuple[str, str] | None:
    """``(column, reason)`` for the first value of ``link`` a sealer could not have written."""
    if _UNREADABLE in link:
        return t.cast(tuple[str, str], link[_UNREADABLE])
    for name, (types, expected) in _LINK_TYPES.items():
        value = link[name]
        if not isinstance(value, types) or isinstance(value, bool):
            return name, f"{describe(value)}, not {expected}"
    return None


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
        unreadable = _unreadable_link(link)
        if unreadable is not None:
            column, reason = unreadable
            message = f"Seal {sid} was altered: its {column} cannot be read ({reason})."
            return Problem("seal_altered", message, None, sid)
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


def _check_range(
    link: Row, lo: int, cursor: _Cursor, pruned: _Pruned, arrival: ArrivalCheck
) -> tuple[Problem | None, int, int]:
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
        event_id = int(row["id"])
        try:
            if _UNREADABLE in row:
                raise UnreadableValue(*row[_UNREADABLE])
            content = event_content(row)
        except UnreadableValue as err:
            message = (
                f"Event {event_id} was modified after seal {sid} sealed it: its {err.column} cannot be"
                f" read ({err.reason})."
            )
            return Problem("modified", message, event_id, sid), checked, pending
        if leaf(event_id, content) != leaves[i]:
            pairs = zip(ids, leaves, strict=True)
            moved = [other for other, sealed in pairs if other != event_id and leaf(other, content) == sealed]
            if moved:
                message = f"Event {event_id} holds what seal {sid} sealed as event {moved[0]}: reordered."
                return Problem("reordered", message, event_id, sid), checked, pending
            message = f"Event {event_id} was modified after seal {sid} sealed it."
            return Problem("modified", message, event_id, sid), checked, pending
        backdated = arrival.event(row)
        if backdated is not None:
            return Problem("backdated", backdated.message(), event_id, sid), checked, pending
        if event_id in pruned:
            pending += 1
        else:
            checked += 1
        i += 1
        cursor.advance()


def verify(
    engine: sa.Engine,
    key: bytes | None,
    *,
    anchor: str | None = None,
    witness: c.Iterable[WitnessEntry] | None = None,
    late_after_seconds: float = 300,
    batch_size: int = 5000,
) -> VerifyReport:
    """Recompute the chain and compare every sealed event; report the first problem.

    Events that prune links declare removed may be missing; those still present (a prune
    that stopped half-way) must match. Events after the last seal are counted, not checked.
    PostgreSQL reads one snapshot (``REPEATABLE READ``); MariaDB does so anyway.

    :param anchor: an ``hmac`` kept elsewhere (printed by ``flask audit seal``): the chain
        must contain it, which shows when the newest seals and their events were removed.
    :param witness: the entries of a seal witness, taken before this call reads the chain
        (``FileWitness(path).entries()`` fixes the file's length when called): each link
        they name must be in the chain with its HMAC. That shows what ``anchor`` shows, and
        an emptied or replaced chain too.
    :param late_after_seconds: ``AUDIT_LATE_AFTER_SECONDS``: how far before the sealed
        period an event not marked late may be dated (see :mod:`~flask_audit.integrity.arrival`).
    :raises AuditConfigError: no key.
    :raises WitnessError: the witness could not be read.
    """
    key = require_key(key, "verify the audit trail")
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    checked = pending = 0
    with engine.connect().execution_options(**options) as conn:
        links = _read(conn, _SEALS, list(_SEALS.c), sa.select(_SEALS).order_by(_SEALS.c.id))
        problem = _check_links(links, key)
        seals = [link for link in links if link.get("kind") == "seal" and _unreadable_link(link) is None]
        sealed_to = int(seals[-1]["last_id"]) if seals else 0
        unsealed = conn.scalar(sa.select(sa.func.count()).where(_EVENTS.c.id > sealed_to)) or 0
        if problem is None and anchor is not None and anchor not in {link["hmac"] for link in links}:
            message = f"The chain does not contain the anchor {anchor}: the newest seals were removed."
            problem = Problem("seal_removed", message)
        witnessed = WitnessCheck()
        if problem is None and witness is not None:
            witnessed = check_witness(links, witness)
            problem = witnessed.problem
        pruned = _Pruned(links if problem is None else ())
        if problem is None:
            cursor, lo = _Cursor(conn, sealed_to, batch_size), 0
            arrival = ArrivalCheck(late_after_seconds)
            for link in seals:
                problem, done, waiting = _check_range(link, lo, cursor, pruned, arrival)
                checked, pending, lo = checked + done, pending + waiting, int(link["last_id"])
                if problem is not None:
                    break
                arrival.close(link)
            backdated = arrival.unsealed(conn, sealed_to) if problem is None else None
            if backdated is not None:
                problem = Problem("backdated", backdated.message(), backdated.event_id)
    head = str(links[-1].get("hmac", "")) if links else GENESIS
    newest = witnessed.newest
    beyond = 0 if newest is None else sum(1 for link in links if int(link["id"]) > newest)
    return VerifyReport(
        len(links),
        checked,
        int(unsealed),
        pending,
        pruned.up_to,
        head,
        problem,
        witnessed.entries,
        newest,
        beyond,
    )
