"""Stored export files: written once by the job, served by download links, then deleted.

Every export waits in ``AUDIT_EXPORT_DIR`` (``<instance>/audit-exports`` by default) as
``<job id>.csv`` or ``<job id>.jsonl``, gzipped (``.gz``) above
``AUDIT_EXPORT_COMPRESS_ABOVE_BYTES``, readable by the app's user only (0600, in a folder
made 0700): a file too large to mail is reached through the mail's link, and any file
through the exports page's download link. Every download serves these bytes: the database
is not read again, so a second download is cheap and gives the same file even after rows
were pruned. Once the link has expired, or the job failed for good, the export runner (the
web process's export thread or ``flask audit exports run``) deletes the file. Hosts that
serve one app need the folder shared between them.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import datetime as dt
import gzip
import os
import pathlib
import re
import shutil
import tempfile
import time
import typing as t

import sqlalchemy as sa

from ..store.models import export_job_table
from .job_store import CLAIM_SECONDS

if t.TYPE_CHECKING:
    from ..config import AuditConfig

FILE_NAME = re.compile(r"(\d+)\.(?:csv|jsonl)(\.gz)?", re.ASCII)
#: The file extensions of the export formats, in the order :func:`stored_file` looks.
EXTENSIONS = ("csv", "jsonl")
PART_SUFFIX = ".part"
_CHUNK = 1024 * 1024
_LOOKUP_BATCH = 500

_jobs = export_job_table.c


def folder(config: AuditConfig) -> pathlib.Path:
    return pathlib.Path(config.export_dir)


def _name(job_id: int, extension: str, compress: bool) -> str:
    return f"{job_id}.{extension}" + (".gz" if compress else "")


def _names(job_id: int) -> list[str]:
    return [_name(job_id, extension, packed) for extension in EXTENSIONS for packed in (True, False)]


def stored_file(config: AuditConfig, job_id: int) -> pathlib.Path | None:
    """The job's stored file, if there is one."""
    for name in _names(job_id):
        path = folder(config) / name
        if path.is_file():
            return path
    return None


def store(
    config: AuditConfig, job_id: int, source: t.BinaryIO, *, compress: bool, extension: str = "csv"
) -> pathlib.Path:
    """Copy ``source``, from its start, into the job's file (gzipped with ``compress``).

    The copy is written under a temporary name and renamed into place, so a download never
    sees half a file.
    """
    directory = folder(config)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, part = tempfile.mkstemp(prefix=f".{job_id}-", suffix=PART_SUFFIX, dir=directory)  # mode 0600
    try:
        with os.fdopen(handle, "wb") as out:
            source.seek(0)
            if compress:
                with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as writer:
                    shutil.copyfileobj(source, writer, _CHUNK)
            else:
                shutil.copyfileobj(source, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        remove(config, job_id)
        target = directory / _name(job_id, extension, compress)
        os.replace(part, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)
        raise
    return target


def remove(config: AuditConfig, job_id: int) -> None:
    """Delete the job's stored file, if any."""
    for name in _names(job_id):
        (folder(config) / name).unlink(missing_ok=True)


def purge(engine: sa.Engine, config: AuditConfig, now: dt.datetime) -> int:
    """Delete the files whose link expired, whose job failed or is gone; return how many.

    Reads the folder rather than the job table, so the work is bounded by the files that
    remain, and a file left behind by any mishap goes too.
    """
    directory = folder(config)
    if not directory.is_dir():
        return 0
    found: dict[int, list[pathlib.Path]] = {}
    removed = 0
    for path in directory.iterdir():
        matched = FILE_NAME.fullmatch(path.name)
        if matched:
            found.setdefault(int(matched[1]), []).append(path)
        elif path.name.endswith(PART_SUFFIX) and _older_than(path, CLAIM_SECONDS):
            removed += _unlink(path)  # the copy of a runner that was killed while writing
    keep = set(_live_jobs(engine, list(found), now))
    for job_id, paths in found.items():
        if job_id not in keep:
            removed += sum(_unlink(path) for path in paths)
    return removed


def _live_jobs(engine: sa.Engine, job_ids: list[int], now: dt.datetime) -> c.Iterator[int]:
    """Those of ``job_ids`` whose file may still be downloaded (or is about to be mailed)."""
    live = sa.and_(
        _jobs.status != "failed", sa.or_(_jobs.link_expires_at.is_(None), _jobs.link_expires_at > now)
    )
    with engine.connect() as conn:
        for start in range(0, len(job_ids), _LOOKUP_BATCH):
            batch = job_ids[start : start + _LOOKUP_BATCH]
            yield from conn.execute(sa.select(_jobs.id).where(_jobs.id.in_(batch), live)).scalars()


def _older_than(path: pathlib.Path, seconds: float) -> bool:
    try:
        return path.stat().st_mtime < time.time() - seconds
    except FileNotFoundError:
        return False


def _unlink(path: pathlib.Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1
