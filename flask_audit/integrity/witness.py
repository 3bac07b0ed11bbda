"""A witness of the seal chain outside the database: every new link, also appended to a file.

The chain lives in the database, so whoever owns the database can remove its newest links
with their events, delete every seal, empty both tables or swap in a chain rebuilt with the
key; what remains is a whole chain, and the HMACs alone cannot tell. A witness keeps, where
the database account cannot reach, one line per link as it is made (its id, kind, range,
time and HMAC). :func:`~flask_audit.integrity.verification.verify` then requires every
witnessed link to be in the chain with the same HMAC: a chain may have gone beyond the
witness (another host sealed, or a write here failed), never fallen short of it.

A line is written after its link has committed, so a witness never names a link that the
database does not hold. If the write fails, the seal stays: it is already part of the chain
(other writers may have extended it), and a seal kept is worth more than a seal undone for
want of a copy. The failure is logged as an error and ``flask audit seal`` exits 1; the next
link written vouches for everything before it, since each link signs the previous HMAC.

:class:`SealWitness` is what the sealer writes to; :class:`FileWitness` is the one kept now:
one JSON line per link, opened ``O_APPEND`` and created ``0600``, each line one ``write()``
under an exclusive ``flock`` and ``fsync``-ed, so the processes of a host that share one
file never tear each other's lines. Each host keeps a file of its own.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import fcntl
import json
import os
import re
import typing as t

from ..config import AuditConfig
from ..exceptions import WitnessError
from .canonical import iso_utc
from .canonical import Row

FORMAT = "flask-audit-witness/1"
_HMAC = re.compile(r"[0-9a-f]{64}")


@dataclasses.dataclass(frozen=True)
class WitnessEntry:
    """One link as the witness keeps it: enough to find it in the chain and to name it."""

    id: int
    kind: str
    first_id: int | None
    last_id: int
    event_count: int
    sealed_at: str
    prev_hmac: str
    hmac: str

    @classmethod
    def from_link(cls, link: Row) -> WitnessEntry:
        """The entry of a committed link (a row of ``audit_seal``, its ``id`` included)."""
        return cls(
            id=int(link["id"]),
            kind=str(link["kind"]),
            first_id=None if link["first_id"] is None else int(link["first_id"]),
            last_id=int(link["last_id"]),
            event_count=int(link["event_count"]),
            sealed_at=t.cast(str, iso_utc(link["sealed_at"])),
            prev_hmac=str(link["prev_hmac"]),
            hmac=str(link["hmac"]),
        )

    def to_line(self) -> bytes:
        data = {"format": FORMAT, **dataclasses.asdict(self)}
        return json.dumps(data, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> WitnessEntry:
        """:raises ValueError: not a whole line of this format (a write torn by a crash)."""
        data = json.loads(line)
        if not isinstance(data, dict) or data.pop("format", None) != FORMAT:
            raise ValueError("not a seal witness entry")
        entry = cls(**data)
        whole = (entry.id, entry.last_id, entry.event_count)
        ints = all(type(value) is int for value in whole) and type(entry.first_id) in (int, type(None))
        texts = all(isinstance(value, str) for value in (entry.sealed_at, entry.prev_hmac, entry.hmac))
        if not (ints and texts and entry.kind in ("seal", "prune") and _HMAC.fullmatch(entry.hmac)):
            raise ValueError("not a seal witness entry")
        return entry

    def describe(self) -> str:
        """``events up to 480, sealed 2026-…Z``: what the link covers, for a one-line message."""
        covers = "events up to" if self.kind == "seal" else "events pruned up to"
        return f"{covers} {self.last_id}, sealed {self.sealed_at}"


class SealWitness(t.Protocol):
    """Where the sealer also writes each new link: a file now, a stream destination later."""

    def write(self, entry: WitnessEntry) -> None:
        """Keep ``entry`` durably before returning; :raises WitnessError: if it cannot."""


class WitnessEntries:
    """The entries a witness file held when this was made, in file order.

    The length is fixed at once, under a shared lock, so that a verify that reads the chain
    afterwards finds each of these links in it, whatever is sealed meanwhile. Lines that
    are not whole entries (a write torn by a crash) are skipped and counted in ``skipped``.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.skipped = 0
        self._size: int | None = None
        try:
            with open(path, "rb") as fh:
                fcntl.flock(fh, fcntl.LOCK_SH)  # no line half-written; released by close()
                self._size = os.fstat(fh.fileno()).st_size
        except OSError:
            pass  # reading says why

    def __iter__(self) -> c.Iterator[WitnessEntry]:
        try:
            with open(self.path, "rb") as fh:
                left = os.fstat(fh.fileno()).st_size if self._size is None else self._size
                for line in fh:
                    if left <= 0:
                        break
                    left -= len(line)
                    if not line.strip():
                        continue
                    try:
                        yield WitnessEntry.from_line(line)
                    except (ValueError, TypeError):
                        self.skipped += 1
        except OSError as err:
            raise WitnessError(
                f"The seal witness {self.path} could not be read: {err.strerror or err}."
            ) from err


class FileWitness:
    """An append-only JSON-lines file of links, safe to share between processes and hosts."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def __repr__(self) -> str:
        return f"<FileWitness {self.path}>"

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def entries(self) -> WitnessEntries:
        """The entries written so far (see :class:`WitnessEntries`): take them before the chain."""
        return WitnessEntries(self.path)

    def write(self, entry: WitnessEntry) -> None:
        """Append ``entry`` as one line and ``fsync`` it.

        A line left without its end by a crash is ended first, so that this one stays whole.
        """
        directory = os.path.dirname(os.path.abspath(self.path))
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            try:
                fd = os.open(self.path, flags, 0o600)
            except FileNotFoundError:  # the first line, in a folder not made yet
                os.makedirs(directory, exist_ok=True)
                fd = os.open(self.path, flags, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # released by close()
                size = os.fstat(fd).st_size
                torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
                _write_all(fd, (b"\n" if torn else b"") + entry.to_line())
                os.fsync(fd)
            finally:
                os.close(fd)
            if not size:
                _fsync_directory(directory)  # a new file's name is durable too
        except OSError as err:
            raise WitnessError(
                f"The seal witness {self.path} could not be written: {err.strerror or err}."
            ) from err


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def configured_witness(config: AuditConfig) -> FileWitness | None:
    """The witness ``AUDIT_SEAL_WITNESS`` names, or ``None`` when it is off."""
    return None if config.seal_witness is None else FileWitness(config.seal_witness)
