"""A bounded load test: the demo app under gunicorn, with and without the extension.

Concurrent clients send a mix of audited actions (sign-ins, failed sign-ins, role changes,
team renames), each with its own ``X-Request-ID``; afterwards every request must have
exactly one event of its kind, matched by request id. Exits 1 on a lost, duplicated or
mismatched event, on a 5xx or on any other unexpected status.
"""

from __future__ import annotations

import argparse
import collections
import collections.abc as c
import contextlib
import dataclasses
import functools
import http.client
import itertools
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
import urllib.parse
import uuid

import _common as common
import load_app
import sqlalchemy as sa

from flask_audit import AuditEvent

HERE = pathlib.Path(__file__).resolve().parent
KINDS = ("login", "login_failed", "role", "rename")
EVENT = dict(zip(KINDS, ("user.login", "user.login_failed", "role.updated", "team.updated"), strict=True))
STATUS = dict(zip(KINDS, (302, 401, 302, 302), strict=True))
MEMBERS = 16
#: Untimed requests at the start of each phase, so no worker's first requests are measured.
WARMUP = 100
VARIANTS = ("audit_off", "audit_on")


@dataclasses.dataclass(frozen=True)
class Sent:
    kind: str
    request_id: str
    status: int
    seconds: float
    timed: bool
    #: When the request was sent (``time.perf_counter()``), to place it against an outage.
    started: float = 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def send(
    port: int, path: str, form: dict[str, str], request_id: str, cookie: str = "", host: str = "127.0.0.1"
) -> tuple[int, str, float]:
    """POST ``form`` on a new connection (sync workers close each one); status, cookie, seconds."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Request-ID": request_id}
    if cookie:
        headers["Cookie"] = cookie
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        started = time.perf_counter()
        conn.request("POST", path, urllib.parse.urlencode(form), headers)
        response = conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        return response.status, (response.getheader("Set-Cookie") or "").split(";")[0], elapsed
    finally:
        conn.close()


@functools.cache
def has_control_socket() -> bool:
    """Recent gunicorn opens a control socket in ``~/.gunicorn``, one path for every server."""
    usage = subprocess.run([sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True)
    return "--no-control-socket" in usage.stdout


@contextlib.contextmanager
def serve(
    url: str, *, audit: bool, workers: int, log: pathlib.Path, extra_env: c.Mapping[str, str] | None = None
) -> c.Iterator[int]:
    """gunicorn with ``workers`` sync workers on a free loopback port; stopped by pid afterwards."""
    port = free_port()
    env = {
        **os.environ,
        "LOAD_TEST_DB_URL": url,
        "LOAD_TEST_AUDIT": "1" if audit else "0",
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "gunicorn", f"--workers={workers}", "--worker-class=sync"]
    command += [f"--bind=127.0.0.1:{port}", f"--pythonpath={HERE}", "--log-level=warning", "load_app:app"]
    command += ["--no-control-socket"] if has_control_socket() else []
    with running(command, env, "127.0.0.1", port, log):
        yield port


@contextlib.contextmanager
def running(
    command: list[str], env: c.Mapping[str, str], host: str, port: int, log: pathlib.Path
) -> c.Iterator[None]:
    """A gunicorn ``command`` started, answering on ``host:port``; stopped by pid afterwards."""
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(process, port, log, host)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_ready(
    process: subprocess.Popen[bytes], port: int, log: pathlib.Path, host: str = "127.0.0.1"
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            lines = [line for line in log.read_text(errors="replace").splitlines() if line[:1].isalpha()]
            raise RuntimeError(f"gunicorn exited with {process.returncode}: {(lines or ['no log'])[-1]}")
        conn = http.client.HTTPConnection(host, port, timeout=5)
        with contextlib.suppress(OSError), contextlib.closing(conn):
            conn.request("GET", "/login")
            if conn.getresponse().status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer on port {port} within 60 s")


class Load:
    """``total`` requests from ``clients`` threads, the first ``warmup`` of them untimed; client
    ``n`` acts as admin ``n`` on its own target user and team, so each change changes something."""

    def __init__(
        self,
        port: int,
        ids: dict[str, dict[str, int]],
        total: int,
        clients: int,
        servers: c.Sequence[tuple[str, int]] = (),
    ) -> None:
        self.port, self.ids, self.total, self.clients = port, ids, total + WARMUP, clients
        #: (host, port) of each server; client ``n`` talks to server ``n`` modulo their number.
        self.servers = list(servers) or [("127.0.0.1", port)]
        self.prefix = f"lt.{uuid.uuid4().hex[:8]}"
        self.counter = itertools.count()
        self.lock = threading.Lock()
        self.sent: list[Sent] = []
        self.setup: dict[str, str] = {}
        self.failures: list[str] = []
        #: Seconds a client waits after a 503 before its next request, as a polite client does.
        self.pause_after_503 = 0.0
        #: Reads a user's stored role: after a 503 the client cannot tell whether its change was made.
        self.role_of: c.Callable[[int], str] | None = None

    def run(self) -> float:
        threads = [threading.Thread(target=self.client, args=(n,)) for n in range(self.clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started

    def client(self, n: int) -> None:
        try:
            self.drive(n)
        except Exception as err:  # reported, and the run fails
            with self.lock:
                self.failures.append(f"client {n}: {type(err).__name__}: {err}")

    def drive(self, n: int) -> None:
        host, port = self.servers[n % len(self.servers)]
        rid = f"{self.prefix}.setup.{n}"
        form = {"email": load_app.admin_email(n), "password": load_app.PASSWORD}
        status, cookie, _ = send(port, "/login", form, rid, host=host)
        if status != 302 or not cookie:
            raise RuntimeError(f"admin sign-in answered {status}")
        with self.lock:
            self.setup[rid] = "user.login"
        role, target, team = "member", self.ids["targets"][str(n)], self.ids["teams"][str(n)]
        while (i := next(self.counter)) < self.total:
            kind, rid, email = KINDS[i % len(KINDS)], f"{self.prefix}.{i}", load_app.member_email(i % MEMBERS)
            if kind == "role":
                path, form = f"/members/{target}/role", {"role": "admin" if role == "member" else "member"}
            elif kind == "rename":
                path, form = f"/teams/{team}/rename", {"name": f"{self.prefix}.{n}.{i}"}
            else:
                password = load_app.PASSWORD if kind == "login" else "wrong"
                path, form = "/login", {"email": email, "password": password}
            started = time.perf_counter()
            status, _, seconds = send(
                port, path, form, rid, cookie if kind in ("role", "rename") else "", host=host
            )
            if kind == "role" and status == STATUS[kind]:
                role = form["role"]  # only a change that was made: the next one changes it back
            with self.lock:
                self.sent.append(Sent(kind, rid, status, seconds, i >= WARMUP, started))
            if status == 503 and self.pause_after_503:
                time.sleep(self.pause_after_503)
            if kind == "role" and status == 503 and self.role_of is not None:
                role = self.role_of(target)  # a refused change may have been made all the same


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(value * 1000 for value in seconds)
    if len(ms) < 2:
        return {
            "n": len(ms),
            "p50_ms": round(ms[0], 2) if ms else 0.0,
            "p99_ms": round(ms[-1], 2) if ms else 0.0,
        }
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {"n": len(ms), "p50_ms": round(cuts[49], 2), "p99_ms": round(cuts[98], 2)}


def latency(sent: list[Sent]) -> dict[str, dict[str, float]]:
    timed = [s for s in sent if s.timed]
    by_kind = {kind: percentiles([s.seconds for s in timed if s.kind == kind]) for kind in KINDS}
    return {**by_kind, "overall": percentiles([s.seconds for s in timed])}


def stored(engine: sa.Engine, prefix: str) -> dict[str, list[str]]:
    """Event types by request id, for the events of this run's requests."""
    query = sa.select(AuditEvent.request_id, AuditEvent.event_type).where(
        AuditEvent.request_id.startswith(f"{prefix}.")
    )
    events: dict[str, list[str]] = collections.defaultdict(list)
    with engine.connect() as conn:
        for request_id, event_type in conn.execute(query):
            events[str(request_id)].append(str(event_type))
    return events


def check(load: Load, events: dict[str, list[str]], audit: bool) -> dict[str, t.Any]:
    """Lost, duplicated, mismatched and unexpected events, 5xx and other unexpected statuses."""
    expected = {**load.setup, **{s.request_id: EVENT[s.kind] for s in load.sent}} if audit else {}
    found = collections.Counter(len(events.get(rid, [])) for rid in expected)
    return {
        "requests": len(load.sent) + len(load.setup),
        "expected_events": len(expected),
        "stored_events": sum(len(types) for types in events.values()),
        "lost": found[0],
        "lost_sample": sorted(f"{rid} {kind}" for rid, kind in expected.items() if rid not in events)[:10],
        "duplicated": sum(count for size, count in found.items() if size > 1),
        "mismatched": sum(1 for rid, kind in expected.items() if set(events.get(rid, [kind])) != {kind}),
        "unexpected": sum(len(types) for rid, types in events.items() if rid not in expected),
        "status_5xx": sum(1 for s in load.sent if s.status >= 500),
        "status_unexpected": sum(1 for s in load.sent if s.status != STATUS[s.kind]),
        "client_failures": load.failures,
    }


def problems(checks: dict[str, t.Any]) -> list[str]:
    keys = ("lost", "duplicated", "mismatched", "unexpected", "status_5xx", "status_unexpected")
    found = [f"{checks[key]} {key}" for key in keys if checks[key]]
    return found + [str(failure) for failure in checks["client_failures"]]


def phase(
    url: str, ids: dict[str, dict[str, int]], args: argparse.Namespace, audit: bool, share: int
) -> dict[str, t.Any]:
    """One server start with or without the extension: its load, checks and log tail."""
    load_app.reset_targets(url)
    with tempfile.TemporaryDirectory(prefix="fa_load_") as tmp:
        log = pathlib.Path(tmp) / "gunicorn.log"
        with serve(url, audit=audit, workers=args.workers, log=log) as port:
            load = Load(port, ids, share, args.clients)
            elapsed = load.run()
        engine = sa.create_engine(url)
        try:
            checks = check(load, stored(engine, load.prefix), audit)
        finally:
            engine.dispose()
        return {
            "sent": load.sent,
            "seconds": elapsed,
            "checks": checks,
            "log": log.read_text(errors="replace"),
        }


def merged(phases: list[dict[str, t.Any]]) -> dict[str, t.Any]:
    """The phases of one variant as one result: latencies pooled, checks added up."""
    sent = [each for p in phases for each in p["sent"]]
    seconds = sum(p["seconds"] for p in phases)
    checks = {
        key: sum((p["checks"][key] for p in phases), type(value)())
        for key, value in phases[0]["checks"].items()
    }
    result = {
        "requests_per_s": round(len(sent) / seconds, 1),
        "seconds": round(seconds, 2),
        "latency": latency(sent),
    }
    result["checks"] = checks
    if problems(checks):
        result["server_log_tail"] = "".join(p["log"] for p in phases)[-2000:]
    return result


def run(kind: str, args: argparse.Namespace) -> dict[str, t.Any]:
    with common.fresh_database(kind) as url:
        ids = load_app.populate(load_app.build(url, audit=True), args.clients, MEMBERS)
        phases: dict[str, list[dict[str, t.Any]]] = {name: [] for name in VARIANTS}
        for round_ in range(args.rounds):
            for name in common.rotated(VARIANTS, round_):
                share = args.requests // args.rounds + (round_ < args.requests % args.rounds)
                phases[name].append(phase(url, ids, args, name == "audit_on", share))
        engine = sa.create_engine(url)
        common.tune_engine(engine)
        try:
            database = common.describe(engine)
        finally:
            engine.dispose()
    variants = {name: merged(phases[name]) for name in VARIANTS}
    on, off = variants["audit_on"]["latency"], variants["audit_off"]["latency"]
    result: dict[str, t.Any] = {
        "database": database,
        **variants,
        "overhead_ms": {
            name: {q: round(on[name][q] - off[name][q], 2) for q in ("p50_ms", "p99_ms")} for name in on
        },
    }
    found = [f"{name}: {each}" for name, variant in variants.items() for each in problems(variant["checks"])]
    if found:
        result["error"] = "; ".join(found)
    return result


def add_load_options(parser: argparse.ArgumentParser, requests_help: str) -> None:
    """``--requests``, ``--clients`` and ``--workers``, shared with ``pg_restart.py``."""
    parser.add_argument("--requests", type=common.positive, default=20_000, help=requests_help)
    parser.add_argument("--clients", type=common.positive, default=32, help="concurrent client threads")
    parser.add_argument("--workers", type=common.positive, default=4, help="gunicorn sync workers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_options(parser, "requests per variant")
    parser.add_argument(
        "--rounds", type=common.positive, default=2, help="server starts per variant, alternated"
    )
    common.add_db_option(parser)
    args = parser.parse_args()
    options = {name: getattr(args, name) for name in ("requests", "clients", "workers", "rounds", "db")}
    common.emit("load_test", options, common.run_each(args.db, lambda kind: run(kind, args)))


if __name__ == "__main__":
    main()
