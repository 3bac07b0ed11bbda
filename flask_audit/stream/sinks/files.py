"""JSON lines: one event per line, to a file that log shippers tail, or to stdout.

The file is opened for appending and reopened when its inode changes or it disappears
(logrotate's rename-and-create, or ``copytruncate``'s truncation is harmless to an
appender), so a rotation never sends lines to a file nobody reads. Each batch is flushed
and fsynced before the cursor moves.
"""

from __future__ import annotations

import collections.abc as c
import os
import sys
import typing as t

from ..wire import Message
from . import option


class JsonLinesSink:
    """Appends each event as one JSON line to ``path``; fsyncs per batch (``"fsync": False`` not to)."""

    def __init__(self, name: str, options: c.Mapping[str, t.Any]) -> None:
        self.path = os.fspath(option(name, options, "path", (str, os.PathLike)))
        self.fsync = bool(option(name, options, "fsync", bool, True))
        self._file: t.BinaryIO | None = None
        self._inode: tuple[int, int] | None = None

    def _open(self) -> t.BinaryIO:
        try:
            found = os.stat(self.path)
            current: tuple[int, int] | None = (found.st_dev, found.st_ino)
        except FileNotFoundError:
            current = None
        if self._file is not None and current == self._inode:
            return self._file
        self.close()
        folder = os.path.dirname(self.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        self._file = open(self.path, "ab")  # noqa: SIM115 - kept open across batches
        stat = os.fstat(self._file.fileno())
        self._inode = (stat.st_dev, stat.st_ino)
        return self._file

    def send(self, messages: c.Sequence[Message]) -> None:
        out = self._open()
        out.write(b"".join(message.body + b"\n" for message in messages))
        out.flush()
        if self.fsync:
            os.fsync(out.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = self._inode = None


class StdoutSink:
    """Writes each event as one JSON line to standard output, for a container's log driver."""

    def __init__(self, name: str, options: c.Mapping[str, t.Any]) -> None:
        self.stream = sys.stdout.buffer

    def send(self, messages: c.Sequence[Message]) -> None:
        self.stream.write(b"".join(message.body + b"\n" for message in messages))
        self.stream.flush()

    def close(self) -> None:
        pass
