"""Events per second of ``Audit.record()`` against raw SQLAlchemy Core inserts of the same rows.

Four variants, each run ``--repeats`` times, interleaved (the order rotates every repeat):
``record_single``, ``audit.record("team.updated", ...)`` as by default, one transaction per
event (a rename: an admin grant would also queue an alert, see ``docs/compliance``);
``raw_single``, ``conn.execute(insert(audit_event), row)`` in its own ``engine.begin()``;
``record_batched``, ``--batch-size`` calls of ``record(..., session=db.session)`` then one
``db.session.commit()``; ``raw_batched``, one executemany per batch in its own ``engine.begin()``.

All run inside one ``test_request_context`` with a User-Agent, a remote address and a signed-in
Flask-Login user, so ``record()`` takes its request path. Raw rows are built before the clock
starts: one ``build_row()`` result with a fresh ``uid`` each (same columns and values);
the raw insert statement is built once, as the recorder's is.

SQLite is a temporary *file* database with ``PRAGMA journal_mode=WAL`` and ``PRAGMA
synchronous=NORMAL`` set on every connection by an SQLAlchemy ``connect`` event listener on the
engine (the setting we recommend to users). PostgreSQL: ``FLASK_AUDIT_PG_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``); a fresh database ``fa_bench_*`` is
created for the run and dropped afterwards.

Prints one JSON object: per database the median events/s of each variant, the ratios record/raw
and the median client CPU microseconds per event (steadier than wall time on a busy machine).
``--profile single|batched`` also prints a cProfile of that variant to stderr.

    .venv/bin/python benchmarks/record_throughput.py --events 2000
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import pstats
import sys
import time
import typing as t
import uuid

import _common as common
import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from _common import db
from _common import User
from flask_login import login_user

from flask_audit import Audit
from flask_audit.store.models import audit_event_table
from flask_audit.store.rows import build_row

VARIANTS = ("record_single", "raw_single", "record_batched", "raw_batched")
INSERT = sa.insert(audit_event_table)
audit = Audit(db=db)


EVENT_TYPE = "team.updated"
#: The event every variant writes: ``record()`` builds it, the raw variants insert it as built.
FIELDS: dict[str, t.Any] = {
    "activity": "Renamed a team",
    "team": "core",
    "target": ("team", "42"),
    "details": {"before": {"name": "core"}, "after": {"name": "platform"}},
}


def record_one(session: sa_orm.scoped_session[t.Any] | None = None) -> None:
    audit.record(EVENT_TYPE, session=session, **FIELDS)


class Bench:
    """The four variants on one engine; each returns the seconds ``n`` events took."""

    def __init__(self, engine: sa.Engine, template: dict[str, t.Any], batch_size: int, user_id: int) -> None:
        self.engine, self.template, self.batch_size, self.user_id = engine, template, batch_size, user_id
        self.written, self.wall, self.cpu = 0, 0.0, 0.0

    def timed(self, name: str, n: int) -> float:
        """Run one variant from the same state: a request session that has read its user."""
        db.session.remove()
        db.session.get(User, self.user_id)
        gc.collect()
        self.written += n
        return float(getattr(self, name)(n))

    def rows(self, n: int) -> list[dict[str, t.Any]]:
        return [{**self.template, "uid": uuid.uuid4().hex} for _ in range(n)]

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> float:
        """Wall seconds since :meth:`start`; the process CPU seconds go to ``self.cpu``."""
        self.cpu = time.process_time() - self.cpu
        return time.perf_counter() - self.wall

    def record_single(self, n: int) -> float:
        self.start()
        for _ in range(n):
            record_one()
        return self.stop()

    def raw_single(self, n: int) -> float:
        rows, engine = self.rows(n), self.engine
        self.start()
        for row in rows:
            with engine.begin() as conn:
                conn.execute(INSERT, row)
        return self.stop()

    def record_batched(self, n: int) -> float:
        session = db.session  # the scoped session, as apps pass it
        self.start()
        for i in range(0, n, self.batch_size):
            for _ in range(min(self.batch_size, n - i)):
                record_one(session)
            session.commit()
        return self.stop()

    def raw_batched(self, n: int) -> float:
        rows, engine = self.rows(n), self.engine
        batches = [rows[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        self.start()
        for batch in batches:
            with engine.begin() as conn:
                conn.execute(INSERT, batch)
        return self.stop()


def profile(kind: str, bench: Bench, variant: str, n: int, top: int = 30) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(bench.timed, variant, n)
    print(f"--- cProfile {kind}: {variant} x {n} ---", file=sys.stderr)
    stats = pstats.Stats(profiler, stream=sys.stderr)
    stats.sort_stats("cumulative").print_stats(r"flask_audit|orm/(session|decl_base|state)\.py", top)
    stats.sort_stats("tottime").print_stats(top)


def run_database(kind: str, args: argparse.Namespace) -> dict[str, t.Any]:
    with common.fresh_database(kind) as url:
        app = common.new_app(f"record_throughput_{kind}", url)
        audit.init_app(app)
        with app.app_context():
            db.create_all()
        user_id = common.add_user(app)
        headers = {"User-Agent": common.USER_AGENT}
        with app.test_request_context(
            "/roles", headers=headers, environ_base={"REMOTE_ADDR": common.REMOTE_ADDR}
        ):
            user = db.session.get(User, user_id)
            db.session.expunge(user)  # loaded once: commits must not expire it
            login_user(user)
            template = build_row(audit.config, EVENT_TYPE, **FIELDS)
            bench = Bench(db.engine, template, args.batch_size, user_id)
            for name in VARIANTS:  # warm up: pool connections, statement caches, mappers
                bench.timed(name, min(args.events, 100))
            rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
            cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
            for repeat in range(args.repeats):
                for name in common.rotated(VARIANTS, repeat):
                    rates[name].append(args.events / bench.timed(name, args.events))
                    cpu[name].append(bench.cpu * 1e6 / args.events)
            if args.profile:
                profile(kind, bench, f"record_{args.profile}", args.events)
            db.session.remove()
            is_ours = audit_event_table.c.event_type == EVENT_TYPE
            stored = db.session.scalar(sa.select(sa.func.count()).where(is_ours))
            setting = common.describe(db.engine)
        common.dispose(app)
    med = {name: round(common.median(rates[name]), 1) for name in VARIANTS}
    return {
        "database": setting,
        "events_per_s": med,
        "runs_events_per_s": {name: [round(r) for r in rates[name]] for name in VARIANTS},
        "ratio_record_vs_raw_single": round(med["record_single"] / med["raw_single"], 3),
        "ratio_batched_vs_raw_batched": round(med["record_batched"] / med["raw_batched"], 3),
        "us_per_event": {name: round(1e6 / med[name], 1) for name in VARIANTS},
        "cpu_us_per_event": {name: round(common.median(cpu[name]), 1) for name in VARIANTS},
        "rows_stored": stored,
        "rows_expected": bench.written,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=common.positive, default=2000, help="events per variant per repeat")
    parser.add_argument(
        "--repeats", type=common.positive, default=5, help="interleaved repeats of each variant"
    )
    parser.add_argument(
        "--batch-size", type=common.positive, default=100, help="events per commit when batched"
    )
    parser.add_argument("--profile", choices=("single", "batched"), help="cProfile a record() variant")
    common.add_db_option(parser)
    args = parser.parse_args(argv)
    results = common.run_each(args.db, functools.partial(run_database, args=args))
    common.emit(
        "record_throughput",
        {"events": args.events, "repeats": args.repeats, "batch_size": args.batch_size},
        results,
    )


if __name__ == "__main__":
    main()
