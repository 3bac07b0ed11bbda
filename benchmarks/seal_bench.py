"""Rows per second of ``sealing.seal()`` and ``verification.verify()`` on a table of ``--rows`` events.

The table is filled as ``prune_bench.py`` fills it (Core executemany, not ``record()``).
Then, each timed on its own: ``seal`` (the first seal of the whole table, in links of
``--max-events``), ``verify`` (every sealed event recomputed and compared), and
``seal_increment`` (``--increment`` new events sealed on top of the existing chain).
Each database is run ``--repeats`` times on a fresh database; medians are reported.

    .venv/bin/python benchmarks/seal_bench.py --rows 200000
"""

from __future__ import annotations

import argparse
import time
import typing as t

import _common as common
import prune_bench
import sqlalchemy as sa

from flask_audit.integrity import sealing
from flask_audit.integrity import verification
from flask_audit.store.models import audit_seal_table


def timed(run: t.Callable[[], t.Any]) -> tuple[t.Any, float, float]:
    """``run()``'s result, wall seconds and client CPU seconds."""
    began, cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, time.perf_counter() - began, time.process_time() - cpu


def run_once(kind: str, args: argparse.Namespace) -> dict[str, t.Any]:
    with common.fresh_database(kind) as url:
        app = prune_bench.make_app(kind, url, sealed=True)
        prune_bench.fill(app, args.rows, args.insert_batch)
        with app.app_context():
            state = prune_bench.audit._state(app)
            engine, key = state.engine, t.cast(bytes, state.config.seal_key)
        sealed, seal_s, seal_cpu = timed(lambda: sealing.seal(engine, key, max_events=args.max_events))
        report, verify_s, verify_cpu = timed(lambda: verification.verify(engine, key))
        prune_bench.fill(app, args.increment, args.insert_batch)
        more, more_s, _ = timed(lambda: sealing.seal(engine, key, max_events=args.max_events))
        with engine.connect() as conn:
            manifest_bytes = conn.scalar(sa.select(sa.func.sum(sa.func.length(audit_seal_table.c.manifest))))
        setting = common.describe(engine)
        common.dispose(app)
    return {
        "database": setting,
        "sealed_events": sealed.events,
        "links": sealed.seals,
        "seal_rows_per_s": sealed.events / seal_s,
        "seal_client_cpu_share": seal_cpu / seal_s,
        "verified_events": report.events,
        "verify_ok": report.ok,
        "verify_rows_per_s": report.events / verify_s,
        "verify_client_cpu_share": verify_cpu / verify_s,
        "increment_events": more.events,
        "increment_seconds": more_s,
        "manifest_bytes_per_event": int(manifest_bytes or 0) / max(sealed.events + more.events, 1),
    }


def run_database(kind: str, args: argparse.Namespace) -> dict[str, t.Any]:
    runs = [run_once(kind, args) for _ in range(args.repeats)]
    rates = ("seal_rows_per_s", "verify_rows_per_s", "increment_seconds", "manifest_bytes_per_event")
    summary = {name: round(common.median(run[name] for run in runs), 3) for name in rates}
    return {
        **summary,
        "runs": [
            {name: round(run[name], 3) if isinstance(run[name], float) else run[name] for name in run}
            for run in runs
        ],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    number = common.positive
    parser.add_argument("--rows", type=number, default=200_000, help="events in the table (default 200,000)")
    parser.add_argument(
        "--max-events", type=number, default=sealing.MAX_SEAL_EVENTS, help="events per seal link"
    )
    parser.add_argument("--increment", type=number, default=1000, help="new events for the incremental seal")
    parser.add_argument("--repeats", type=number, default=1, help="fresh databases per backend")
    parser.add_argument(
        "--insert-batch", type=number, default=10_000, help="rows per executemany when filling"
    )
    common.add_db_option(parser)
    args = parser.parse_args(argv)
    results = common.run_each(args.db, lambda kind: run_database(kind, args))
    common.emit("seal", {"rows": args.rows, "max_events": args.max_events}, results)


if __name__ == "__main__":
    main()
