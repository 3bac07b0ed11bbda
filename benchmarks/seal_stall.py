"""Insert latency while seals run every second behind a transaction held open.

``--writers`` threads insert events as fast as they can (one autocommit INSERT each, as
standalone events are written), one transaction inserts an event and stays open for
``--hold`` seconds, and a sealer calls ``sealing.seal()`` every ``--seal-every`` seconds
(giving up after that long: the open insert keeps it from sealing past it). A seal must
never make a writer wait: the script reports the writers' latency percentiles while the
transaction is open and after, the seals made and given up, and ``verify`` at the end.

    .venv/bin/python benchmarks/seal_stall.py --db both --writers 32 --hold 30
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import time
import typing as t
import uuid

import _common as common
import sqlalchemy as sa
from prune_bench import audit

from flask_audit.exceptions import AuditError
from flask_audit.integrity import sealing
from flask_audit.integrity import verification
from flask_audit.store.models import audit_event_table
from flask_audit.store.rows import build_row

KEY = b"seal-stall-benchmark-key"
KINDS = ("postgresql", "mariadb")


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(share: float) -> float:
        return round(ordered[min(int(share * len(ordered)), len(ordered) - 1)] * 1000, 2)

    return {"count": len(ordered), "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0)}


def sealer(url: sa.URL, every: float, stop: t.Any, made: t.Any, gave_up: t.Any) -> None:
    """Seal every ``every`` seconds until ``stop``; count the seals made and given up."""
    engine = sa.create_engine(url)
    while not stop.wait(every):
        try:
            sealing.seal(engine, KEY, timeout=every)
            made.value += 1
        except AuditError:
            gave_up.value += 1
    engine.dispose()


def run_once(kind: str, args: argparse.Namespace) -> dict[str, t.Any]:
    with common.fresh_database(kind) as url:
        app = common.new_app(f"seal_stall_{kind}", url)
        app.config["AUDIT_SEAL_KEY"] = KEY
        audit.init_app(app)
        with app.app_context():
            common.db.create_all()
            template = build_row(audit.config, "team.created", actor=None, details={"n": 1})
        engine = sa.create_engine(url, pool_size=args.writers + 4, max_overflow=4)
        with engine.connect() as conn:
            version = conn.scalar(sa.text("SELECT version()"))
        result: dict[str, t.Any] = measure(engine, template, args, {"version": version})
        return result


def measure(engine: sa.Engine, template: dict[str, t.Any], args: argparse.Namespace, setting: t.Any) -> t.Any:
    insert = sa.insert(audit_event_table)
    stop = threading.Event()
    held = threading.Event()
    released: list[float] = []
    samples: list[tuple[float, float]] = []  # (finished at, seconds)
    lock = threading.Lock()

    def row() -> dict[str, t.Any]:
        return {**template, "uid": uuid.uuid4().hex}

    def writer() -> None:
        mine: list[tuple[float, float]] = []
        while not stop.is_set():
            began = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(insert, row())
            done = time.perf_counter()
            mine.append((done, done - began))
        with lock:
            samples.extend(mine)

    def holder() -> None:
        with engine.connect() as conn:
            transaction = conn.begin()
            conn.execute(insert, row())
            held.set()
            time.sleep(args.hold)
            transaction.commit()
        released.append(time.perf_counter())

    threads = [threading.Thread(target=writer) for _ in range(args.writers)]
    for thread in threads:
        thread.start()
    hold_thread = threading.Thread(target=holder)
    hold_thread.start()
    held.wait()
    hold_began = time.perf_counter()
    # A process of its own, as ``flask audit seal`` from cron is: its hashing must not take
    # the writers' interpreter lock, or the figure would measure Python, not the database.
    stop_sealing = multiprocessing.Event()
    made, gave_up = multiprocessing.Value("i", 0), multiprocessing.Value("i", 0)
    seal_process = multiprocessing.Process(
        target=sealer, args=(engine.url, args.seal_every, stop_sealing, made, gave_up)
    )
    seal_process.start()
    hold_thread.join()
    time.sleep(args.after)
    stop.set()
    stop_sealing.set()
    for thread in threads:
        thread.join()
    seal_process.join()
    seals = {"made": made.value, "gave_up": gave_up.value}
    final = sealing.seal(engine, KEY)
    report = verification.verify(engine, KEY)
    engine.dispose()
    during = [took for at, took in samples if hold_began <= at <= released[0]]
    after = [took for at, took in samples if at > released[0]]
    return {
        "database": setting,
        "inserts_while_held": percentiles(during),
        "inserts_after": percentiles(after),
        "seals_made": seals["made"],
        "seals_given_up_while_held": seals["gave_up"],
        "final_seal_events": final.events,
        "verify_ok": report.ok,
        "unsealed_after_final_seal": report.unsealed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=(*KINDS, "both"), default="both")
    parser.add_argument("--writers", type=common.positive, default=32, help="inserting threads (default 32)")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds the transaction stays open (30)")
    parser.add_argument("--seal-every", type=float, default=1.0, help="seconds between seals (1)")
    parser.add_argument("--after", type=float, default=3.0, help="seconds of load after the commit (3)")
    args = parser.parse_args()
    results: dict[str, dict[str, t.Any]] = {}
    for kind in KINDS if args.db == "both" else (args.db,):
        try:
            results[kind] = run_once(kind, args)
        except Exception as err:  # one database failing must not lose the other's numbers
            results[kind] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0]}"}
    options = {"writers": args.writers, "hold_s": args.hold, "seal_every_s": args.seal_every}
    common.emit("seal_stall", options, results)


if __name__ == "__main__":
    main()
