"""A PostgreSQL server of our own: ``initdb`` in a temporary folder, served on a free loopback port.

Restarting a server in the middle of a load must not touch the machine's shared one, which
the test suite and other tools use. The binaries come from ``FLASK_AUDIT_PG_BINDIR``, else the
newest ``/usr/lib/postgresql/*/bin`` (Debian's layout), else ``PATH``. PostgreSQL refuses to
run as root, so as root the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import dataclasses
import glob
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

STOP_MODES = ("smart", "fast", "immediate")


def bindir() -> pathlib.Path:
    """Where ``initdb`` and ``pg_ctl`` are; a clear error if PostgreSQL's server is not installed."""
    if configured := os.environ.get("FLASK_AUDIT_PG_BINDIR"):
        return pathlib.Path(configured)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return pathlib.Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("initdb was not found: install PostgreSQL's server or set FLASK_AUDIT_PG_BINDIR")
    return pathlib.Path(initdb).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class Cluster:
    """One data folder and its server; ``restart()`` times how long the server was away."""

    root: pathlib.Path
    port: int
    bin: pathlib.Path
    #: Addresses the server listens on, comma-separated (another host's veth address, say).
    listen: str = "127.0.0.1"

    @property
    def data(self) -> pathlib.Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        # To a file, not a pipe: a server that pg_ctl starts keeps its output open, and a pipe
        # would then never reach its end.
        with tempfile.TemporaryFile() as output:
            done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, timeout=120)
            output.seek(0)
            said = output.read().decode(errors="replace").strip()
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise RuntimeError(f"{program} {' '.join(args)} failed: {said}\n{tail}")

    def init(self) -> None:
        # --no-sync only skips flushing the new files once; the server itself runs with fsync on.
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses={self.listen} -k {self.root} -c max_connections=200"
        self.run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "start"
        )

    def restart(self, mode: str) -> tuple[float, float]:
        """Stop in ``mode`` and start again (crash recovery after ``immediate``); when it went
        down and when it answered again, as ``time.perf_counter()`` values."""
        if mode not in STOP_MODES:
            raise ValueError(f"mode must be one of {STOP_MODES}, not {mode!r}")
        began = time.perf_counter()
        self.stop(mode)  # not ``pg_ctl restart``, which would drop the server's log file
        self.start()
        return began, time.perf_counter()

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")


@contextlib.contextmanager
def private_cluster(listen: str = "127.0.0.1", trust: c.Sequence[str] = ()) -> c.Iterator[Cluster]:
    """A new server for the duration of the block; stopped and deleted afterwards.

    ``trust``: networks (CIDR) whose clients may connect without a password, besides loopback.
    """
    root = pathlib.Path(tempfile.mkdtemp(prefix="fa_pg_"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
    root.chmod(0o700)
    cluster = Cluster(root, _free_port(), bindir(), listen)
    try:
        cluster.init()
        with (cluster.data / "pg_hba.conf").open("a") as hba:
            hba.writelines(f"host all all {network} trust\n" for network in trust)
        cluster.start()
        try:
            yield cluster
        finally:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
