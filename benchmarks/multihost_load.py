"""Load from several hosts: gunicorn in network namespaces of its own, one PostgreSQL.

Each host is a network namespace this script makes (``ip netns``, one veth pair each: the
host at ``10.231.N.2``, the machine's side at ``10.231.N.1``), running the demo app under
gunicorn with ``--workers`` sync workers and automatic sealing every ``--seal-every``
events. A PostgreSQL server of its own (``_pgcluster``, never the shared one) listens on the
machine's side of every pair. The clients send ``--requests`` audited requests spread over
the hosts; afterwards every request must have exactly one event of its kind (matched by
request id), no request may have answered 5xx, and the seal chain must verify. Needs root
(``ip netns``); every namespace, link and process it made is removed afterwards.

    .venv/bin/python benchmarks/multihost_load.py --hosts 3 --workers 4 --requests 30000
"""

from __future__ import annotations

import argparse
import collections.abc as c
import contextlib
import os
import pathlib
import subprocess
import sys
import tempfile
import typing as t

import _common as common
import _pgcluster
import load_app
import load_test
import sqlalchemy as sa

from flask_audit.integrity import sealing
from flask_audit.integrity import verification

HERE = pathlib.Path(__file__).resolve().parent
PORT = 8000


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def hosts(count: int) -> c.Iterator[list[tuple[str, str, str]]]:
    """``count`` namespaces, each wired to the machine by a veth pair: (name, its address,
    the machine's address on its link). Deleted afterwards, with their links."""
    tag = f"fa{os.getpid() % 100000}"
    made: list[tuple[str, str, str]] = []
    try:
        for n in range(1, count + 1):
            name, outer, inner = f"{tag}h{n}", f"{tag}o{n}", f"{tag}i{n}"
            ip("netns", "add", name)
            made.append((name, f"10.231.{n}.2", f"10.231.{n}.1"))
            ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            ip("link", "set", inner, "netns", name)
            ip("addr", "add", f"10.231.{n}.1/24", "dev", outer)
            ip("link", "set", outer, "up")
            ip("netns", "exec", name, "ip", "addr", "add", f"10.231.{n}.2/24", "dev", inner)
            ip("netns", "exec", name, "ip", "link", "set", inner, "up")
            ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield made
    finally:
        for name, _host, _machine in made:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)  # takes its veth pair along


@contextlib.contextmanager
def serve_in(
    namespace: str, address: str, url: str, workers: int, seal_every: int, log: pathlib.Path
) -> c.Iterator[None]:
    """gunicorn in ``namespace`` on ``address``; stopped by pid afterwards."""
    env = {
        **os.environ,
        "LOAD_TEST_DB_URL": url,
        "LOAD_TEST_AUDIT": "1",
        "LOAD_TEST_SEAL_EVERY": str(seal_every),
    }
    command = ["ip", "netns", "exec", namespace, sys.executable, "-m", "gunicorn", f"--workers={workers}"]
    command += [
        "--worker-class=sync",
        f"--bind={address}:{PORT}",
        f"--pythonpath={HERE}",
        "--log-level=warning",
    ]
    command += ["--no-control-socket"] if load_test.has_control_socket() else []
    command.append("load_app:app")
    with load_test.running(command, env, address, PORT, log):
        yield


def run(args: argparse.Namespace) -> dict[str, t.Any]:
    with hosts(args.hosts) as made:
        listen = ",".join(["127.0.0.1", *(machine for _name, _host, machine in made)])
        with _pgcluster.private_cluster(listen=listen, trust=["10.231.0.0/16"]) as cluster:
            admin = sa.create_engine(cluster.url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql("CREATE DATABASE fa_multihost")
            admin.dispose()
            local = sa.make_url(cluster.url).set(database="fa_multihost")
            ids = load_app.populate(load_app.build(local.render_as_string(), audit=True), args.clients, 16)
            with tempfile.TemporaryDirectory(prefix="fa_multihost_") as tmp, contextlib.ExitStack() as stack:
                for name, host, machine in made:
                    url = local.set(host=machine).render_as_string(hide_password=False)
                    log = pathlib.Path(tmp) / f"{name}.log"
                    stack.enter_context(serve_in(name, host, url, args.workers, args.seal_every, log))
                servers = [(host, PORT) for _name, host, _machine in made]
                load = load_test.Load(PORT, ids, args.requests, args.clients, servers=servers)
                seconds = load.run()
            engine = sa.create_engine(local)
            try:
                checks = load_test.check(load, load_test.stored(engine, load.prefix), audit=True)
                with engine.connect() as conn:
                    automatic = conn.scalar(sa.text("SELECT count(*) FROM audit_seal WHERE kind = 'seal'"))
                key = load_app.SEAL_KEY.encode()
                final = sealing.seal(engine, key)
                report = verification.verify(engine, key)
            finally:
                engine.dispose()
    result: dict[str, t.Any] = {
        "hosts": [host for _name, host, _machine in made],
        "requests_per_s": round(len(load.sent) / seconds, 1),
        "latency": load_test.latency(load.sent),
        "checks": checks,
        "seals_made_by_the_hosts": automatic,
        "events_sealed_at_the_end": final.events,
        "verify_ok": report.ok,
        "verified_events": report.events,
    }
    found = load_test.problems(checks) + ([] if report.ok else [f"verify: {report.problem}"])
    if found:
        result["error"] = "; ".join(found)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    load_test.add_load_options(parser, "audited requests across all hosts (default 20,000)")
    parser.add_argument("--hosts", type=common.positive, default=3, help="network namespaces (default 3)")
    parser.add_argument("--seal-every", type=common.positive, default=1000, help="events per automatic seal")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("network namespaces need root")
    try:
        results = {"postgresql": run(args)}
    except Exception as err:  # reported as JSON like every benchmark's failure
        results = {"postgresql": {"error": f"{type(err).__name__}: {str(err).splitlines()[0]}"}}
    options = {
        "hosts": args.hosts,
        "workers": args.workers,
        "requests": args.requests,
        "clients": args.clients,
    }
    common.emit("multihost_load", options, results)


if __name__ == "__main__":
    main()
