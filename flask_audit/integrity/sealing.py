"""Tamper evidence: HMAC-chained seals over ranges of committed events.

The triggers stop the app; they do not stop the database owner. Seals do not stop anyone
either, but they make a change visible: ``AUDIT_SEAL_KEY`` lives outside the database, so
whoever can rewrite ``audit_event`` still cannot write a seal that matches.

A seal covers the ids after the previous seal's ``last_id`` up to its own. It stores the
Merkle root (RFC 6962 shape) of its events and a manifest: each event's id and leaf hash,
so that :func:`~flask_audit.integrity.verification.verify` names the first bad event and what happened
to it, not just the range. Its ``hmac`` signs its fields and the previous link's ``hmac``
(CloudTrail's digest chain). A ``prune`` link records which events were removed on purpose
(every id up to its ``last_id``, and the ids its manifest lists), so what remains still
verifies and any other deletion still shows.

Each new link is also written to a witness outside the database when one is given
(:mod:`flask_audit.integrity.witness`), after it has committed; a witness that cannot be
written is logged and reported, and never undoes the link.

What is hashed (the canonical form, leaves, Merkle root, manifest) is in
:mod:`flask_audit.integrity.canonical`; when to seal on its own is in :mod:`flask_audit.integrity.autoseal`;
checking the chain is in :mod:`flask_audit.integrity.verification`.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import datetime as dt
import hashlib
import hmac as hmac_
import logging
import time
import typing as t

import sqlalchemy as sa

from ..exceptions import AuditConfigError
from ..exceptions import AuditError
from ..exceptions import WitnessError
from ..store.models import audit_event_table
from ..store.models import audit_seal_table
from .canonical import iso_utc
from .canonical import leaf_hash
from .canonical import merkle_root
from .canonical import pack_manifest
from .canonical import Row
from .witness import SealWitness
from .witness import WitnessEntry

GENESIS = "0" * 64
MAX_SEAL_EVENTS = 10_000
PRUNE_IDS_PER_LINK = 100_000
_FORMAT = "flask-audit-seal/1"
_EVENTS = audit_event_table
_SEALS = audit_seal_table

#: One logger for every seal run, manual or automatic.
logger = logging.getLogger("flask_audit.integrity.sealing")


def require_key(key: bytes | None, action: str) -> bytes:
    """``key``, or a clear error saying that ``action`` needs ``AUDIT_SEAL_KEY``."""
    if not key:
        raise AuditConfigError(
            f"Cannot {action}: AUDIT_SEAL_KEY is not set. Set it to a long random secret kept"
            " outside the database (the same key for every run)."
        )
    return key


# -- the chain ----------------------------------------------------------------------


def sign(key: bytes, link: Row) -> str:
    """A link's HMAC over its fields and ``prev_hmac``; verification recomputes it the same way."""
    fields = (
        _FORMAT,
        link["kind"],
        iso_utc(link["sealed_at"]),
        link["first_id"],
        link["last_id"],
        link["event_count"],
        iso_utc(link["cutoff"]),
        link["merkle_root"],
        hashlib.sha256(link["manifest"]).hexdigest(),
        link["prev_hmac"],
    )
    message = "\n".join("" if field is None else str(field) for field in fields)
    return hmac_.new(key, message.encode(), hashlib.sha256).hexdigest()


def _head(conn: sa.Connection) -> tuple[str, int]:
    """The newest link's HMAC and the highest sealed id (``GENESIS`` and 0 on a new chain)."""
    newest = sa.select(_SEALS.c.hmac).order_by(_SEALS.c.id.desc()).limit(1).scalar_subquery()
    sealed = sa.select(sa.func.max(_SEALS.c.last_id)).where(_SEALS.c.kind == "seal").scalar_subquery()
    head, last = conn.execute(sa.select(newest, sealed)).one()  # one statement: one snapshot
    return head or GENESIS, int(last or 0)


def last_sealed_id(conn: sa.Connection) -> int | None:
    """The highest id covered by a seal; ``None`` when nothing was ever sealed."""
    head, sealed = _head(conn)
    return sealed if head != GENESIS else None


def _append(
    engine: sa.Engine, key: bytes, link: dict[str, t.Any], expect_sealed: int | None
) -> dict[str, t.Any] | None:
    """Insert one link after the current head and return it as committed, with its ``id``.

    ``prev_hmac`` is unique, so of two writers extending the same head one fails and
    tries again on the new head. A seal (``expect_sealed`` given) instead gives up, with
    ``None``, once another run has moved the sealed range: its events need reading again.
    """
    for _ in range(20):
        with engine.connect() as conn:
            head, sealed = _head(conn)
        if expect_sealed is not None and sealed != expect_sealed:
            return None
        link.update(prev_hmac=head, sealed_at=dt.datetime.now(dt.timezone.utc))
        link["hmac"] = sign(key, link)
        try:
            with engine.begin() as conn:
                inserted = conn.execute(sa.insert(_SEALS), link).inserted_primary_key
            return {**link, "id": int(t.cast(tuple[int], inserted)[0])}
        except sa.exc.IntegrityError:
            continue
    raise AuditError("Could not extend the seal chain: other writers kept extending it; try again.")


class _Witnessing:
    """Writes a run's committed links to the witness; remembers the first failure, logs it once."""

    def __init__(self, witness: SealWitness | None) -> None:
        self.witness = witness
        self.links = self.missed = 0
        self.error: str | None = None

    def __call__(self, link: c.Mapping[str, t.Any]) -> None:
        if self.witness is None:
            return
        self.links += 1
        try:
            self.witness.write(WitnessEntry.from_link(link))
        except WitnessError as err:
            self.missed += 1
            self.error = self.error or str(err)

    def report(self) -> str | None:
        """The failure, logged as an error, or ``None`` when every link was written."""
        if self.error is None:
            return None
        message = (
            f"{self.error} {self.missed} of {self.links} new chain link(s) are not in the witness;"
            " the seals are stored in the database, and the next link written there vouches for them."
        )
        logger.error("%s", message)
        return message


def append_prune(
    engine: sa.Engine,
    key: bytes,
    *,
    first_id: int | None,
    last_id: int,
    count: int,
    cutoff: dt.datetime,
    removed: c.Sequence[int] = (),
    witness: SealWitness | None = None,
) -> list[str]:
    """Record, before deleting, that ``count`` events are pruned: every id up to ``last_id``
    and the ``removed`` ids above it (old events that sat behind a younger one).

    The ids above ``last_id`` go into the manifest, at most :data:`PRUNE_IDS_PER_LINK` per
    link; the first link also counts the prefix. Each link is also written to ``witness``;
    a failure there is logged, not raised, so that prune goes on. Returns the new links' HMACs.
    """
    witnessing = _Witnessing(witness)
    hmacs = []
    for start in range(0, max(len(removed), 1), PRUNE_IDS_PER_LINK):
        chunk = removed[start : start + PRUNE_IDS_PER_LINK]
        link = {
            "kind": "prune",
            "first_id": first_id,
            "last_id": last_id,
            "event_count": len(chunk) + (count - len(removed) if start == 0 else 0),
            "cutoff": cutoff,
            "merkle_root": "",
            "manifest": pack_manifest(chunk),
        }
        made = t.cast(dict[str, t.Any], _append(engine, key, link, None))
        witnessing(made)
        hmacs.append(str(made["hmac"]))
    witnessing.report()
    return hmacs


#: PostgreSQL: the transactions inserting into ``audit_event`` now, and which of them remain.
#: Every INSERT holds ROW EXCLUSIVE on the table from before its id is drawn until it ends.
_PG_WRITERS = (
    "SELECT DISTINCT virtualtransaction FROM pg_locks WHERE locktype = 'relation'"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND relation = CAST(:table AS regclass) AND mode = 'RowExclusiveLock' AND granted"
    " AND pid <> pg_backend_pid()"
)
_PG_STILL_OPEN = "SELECT DISTINCT virtualtransaction FROM pg_locks WHERE virtualtransaction IN :open"
POLL_SECONDS = 0.02
#: MariaDB: ids read (and share-locked) per statement while waiting for uncommitted rows.
LOCK_CHUNK = 10_000


def committed_bound(
    engine: sa.Engine, timeout: float = 10.0, on_wait: c.Callable[[], None] | None = None
) -> int | None:
    """The highest id below which every event has committed: what a seal may cover.

    Ids are handed out before commit, so on PostgreSQL and MariaDB a transaction holding id
    10 can still be open when id 11 has committed; sealing up to 11 would leave 10 out for
    good. The bound is the highest committed id, read first; then the seal waits for every
    insert that may hold an id below it, without a lock that writers could queue behind:

    - PostgreSQL: until each transaction that held ROW EXCLUSIVE on the table at that moment
      has ended (read from ``pg_locks``; no lock is taken);
    - MariaDB: a READ COMMITTED share-locking read of the unsealed ids up to the bound waits
      on exactly the uncommitted rows among them; rows above the bound, where new events
      go, are never locked;
    - SQLite has one writer at a time and no such gap.

    :param on_wait: called once if the bound has to wait for open transactions.
    :raises AuditError: they were still open after ``timeout`` seconds.
    """
    with engine.connect() as conn:
        bound = conn.scalar(sa.select(sa.func.max(_EVENTS.c.id)))
        conn.rollback()
        if bound is not None and engine.dialect.name == "postgresql":
            _wait_for_pg_writers(conn, timeout, on_wait)
        elif bound is not None and engine.dialect.name in ("mysql", "mariadb"):
            _wait_for_innodb_rows(conn, int(bound), timeout, on_wait)
    return None if bound is None else int(bound)


def _still_open_error(timeout: float) -> AuditError:
    return AuditError(
        f"Could not take the seal's upper bound within {timeout:g} s: a transaction that writes"
        f" to {_EVENTS.name} is still open. Writers are not held up; try again when it has finished."
    )


def _wait_for_pg_writers(conn: sa.Connection, timeout: float, on_wait: c.Callable[[], None] | None) -> None:
    still_open = sa.text(_PG_STILL_OPEN).bindparams(sa.bindparam("open", expanding=True))
    waiting = set(conn.scalars(sa.text(_PG_WRITERS), {"table": _EVENTS.name}))
    deadline = time.monotonic() + timeout
    while waiting:
        conn.rollback()
        if on_wait is not None:
            on_wait()
            on_wait = None
        if time.monotonic() > deadline:
            raise _still_open_error(timeout)
        time.sleep(POLL_SECONDS)
        waiting = set(conn.scalars(still_open, {"open": sorted(waiting)}))
    conn.rollback()


def _wait_for_innodb_rows(
    conn: sa.Connection, bound: int, timeout: float, on_wait: c.Callable[[], None] | None
) -> None:
    # InnoDB's own lists (INNODB_TRX) are a cache that stays stale while anyone polls it, so
    # the wait is a locking read instead: it meets each uncommitted row and waits for it.
    conn = conn.execution_options(isolation_level="READ COMMITTED")
    start = _head(conn)[1]
    conn.rollback()
    wait = max(int(-(-timeout // 1)), 1)  # InnoDB counts whole seconds
    while start < bound:
        ids = (
            f"SELECT id FROM {_EVENTS.name} WHERE id > {int(start)} AND id <= {int(bound)}"
            f" ORDER BY id LIMIT {LOCK_CHUNK} LOCK IN SHARE MODE"
        )
        try:
            found = list(conn.exec_driver_sql(ids + " NOWAIT").scalars())
        except sa.exc.OperationalError:
            conn.rollback()
            if on_wait is not None:
                on_wait()
                on_wait = None
            try:
                found = list(
                    conn.exec_driver_sql(
                        f"SET STATEMENT innodb_lock_wait_timeout = {wait} FOR {ids}"
                    ).scalars()
                )
            except sa.exc.OperationalError as err:
                conn.rollback()
                raise _still_open_error(timeout) from err
        conn.rollback()  # the share locks end here, chunk by chunk
        if len(found) < LOCK_CHUNK:
            return
        start = int(found[-1])


@dataclasses.dataclass(frozen=True)
class SealResult:
    """What one :func:`seal` run added: links, events, the id range and the new head.

    ``witness_error`` says why some of the new links are not in the witness (they are
    stored all the same); ``None`` when each was written, or no witness was given.
    """

    seals: int
    events: int
    first_id: int | None
    last_id: int | None
    head: str
    witness_error: str | None = None


def seal(
    engine: sa.Engine,
    key: bytes | None,
    *,
    max_events: int = MAX_SEAL_EVENTS,
    timeout: float = 10.0,
    on_wait: c.Callable[[], None] | None = None,
    witness: SealWitness | None = None,
) -> SealResult:
    """Seal every event committed before this call, in links of at most ``max_events``.

    Reads and hashing happen outside any transaction; each link is one short insert.
    Two runs at once are safe: the second finds the range sealed and adds what is left.
    Each new link is then written to ``witness``; a failure there is logged and returned
    in :attr:`SealResult.witness_error`, and the seals stay.

    :raises AuditConfigError: no key.
    :raises AuditError: the bound could not be taken (see :func:`committed_bound`).
    """
    key = require_key(key, "seal the audit trail")
    bound = committed_bound(engine, timeout, on_wait)
    witnessing = _Witnessing(witness)
    seals = events = 0
    first: int | None = None
    last: int | None = None
    head = GENESIS
    while bound is not None:
        with engine.connect() as conn:
            head, sealed = _head(conn)
            query = sa.select(_EVENTS).where(_EVENTS.c.id > sealed, _EVENTS.c.id <= bound)
            rows = [row._mapping for row in conn.execute(query.order_by(_EVENTS.c.id).limit(max_events))]
        if not rows:
            break
        ids = [int(row["id"]) for row in rows]
        leaves = [leaf_hash(row) for row in rows]
        link = {
            "kind": "seal",
            "first_id": ids[0],
            "last_id": bound if len(rows) < max_events else ids[-1],
            "event_count": len(ids),
            "cutoff": None,
            "merkle_root": merkle_root(leaves),
            "manifest": pack_manifest(ids, leaves),
        }
        made = _append(engine, key, link, sealed)
        if made is not None:
            witnessing(made)
            seals, events, head, last = seals + 1, events + len(ids), made["hmac"], int(made["last_id"])
            first = ids[0] if first is None else first
    return SealResult(seals, events, first, last, head, witnessing.report())
