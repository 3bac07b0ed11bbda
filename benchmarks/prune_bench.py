"""Rows per second of ``retention.prune()`` on a table of ``--rows`` events, about a quarter old.

The table is filled with Core executemany (``--insert-batch`` rows per transaction), not
``record()``: events in id order, their times spread evenly over the last 120 days, so
the oldest quarter is outside the 90-day window. Two variants, each on a fresh database:
``plain`` (no ``AUDIT_SEAL_KEY``: old events go wherever they are) and ``sealed`` (the
table is sealed before the clock starts; prune's own seal then finds nothing new, and it
appends the prune links before deleting). The clock covers the whole ``prune()`` call.

SQLite is a temporary file database in WAL mode with ``synchronous=NORMAL``; PostgreSQL a
fresh database on ``FLASK_AUDIT_PG_URL``. Prints one JSON object.

    .venv/bin/python benchmarks/prune_bench.py --rows 200000
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import typing as t
import uuid

import _common as common
import sqlalchemy as sa
from _common import db
from flask import Flask

from flask_audit import Audit
from flask_audit.integrity import retention
from flask_audit.integrity import sealing
from flask_audit.integrity import verification
from flask_audit.store.models import audit_event_table
from flask_audit.store.rows import build_row

VARIANTS = ("plain", "sealed")
KEY = "benchmark-seal-key"
SPAN_DAYS = 120
audit = Audit(db=db)


def make_app(kind: str, url: str, *, sealed: bool) -> Flask:
    app = common.new_app(f"prune_bench_{kind}", url)
    app.config["AUDIT_SEAL_KEY"] = KEY if sealed else None
    audit.init_app(app)
    with app.app_context():
        db.create_all()
    return app


def fill(app: Flask, rows: int, batch: int) -> float:
    """Insert ``rows`` events spread over the last :data:`SPAN_DAYS` days; the seconds it took."""
    with app.app_context():
        template = build_row(
            audit.config,
            "role.updated",
            team="core",
            target=("user", "42"),
            details={"before": "a", "after": "b"},
        )
        engine = db.engine
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=SPAN_DAYS)
    step = dt.timedelta(days=SPAN_DAYS) / rows
    insert = sa.insert(audit_event_table)
    began = time.perf_counter()
    for first in range(0, rows, batch):
        chunk = [
            {**template, "uid": uuid.uuid4().hex, "occurred_at": start + step * n}
            for n in range(first, min(first + batch, rows))
        ]
        with engine.begin() as conn:
            conn.execute(insert, chunk)
    return time.perf_counter() - began


def count(app: Flask) -> int:
    with app.app_context(), db.engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(audit_event_table)) or 0)


def run_variant(kind: str, variant: str, args: argparse.Namespace) -> dict[str, t.Any]:
    with common.fresh_database(kind) as url:
        app = make_app(kind, url, sealed=variant == "sealed")
        fill_seconds = fill(app, args.rows, args.insert_batch)
        with app.app_context():
            state = audit._state(app)
            engine, config = state.engine, state.config
        if variant == "sealed":
            sealing.seal(engine, config.seal_key)
        before = count(app)
        began, cpu = time.perf_counter(), time.process_time()
        result = retention.prune(engine, config, batch_size=args.batch_size)
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
        after = count(app)
        ok = verification.verify(engine, config.seal_key).ok if variant == "sealed" else None
        setting = common.describe(engine)
        common.dispose(app)
    return {
        "database": setting,
        "rows_before": before,
        "rows_pruned": result.count,
        "rows_after": after,
        "seconds": round(seconds, 3),
        "rows_per_s": round(result.count / seconds, 1) if seconds else None,
        "client_cpu_s": round(cpu, 3),
        "fill_rows_per_s": round(args.rows / fill_seconds, 1),
        "verify_ok_after": ok,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    positive = common.positive
    parser.add_argument(
        "--rows", type=positive, default=1_000_000, help="events in the table (default 1,000,000)"
    )
    parser.add_argument(
        "--batch-size", type=positive, default=retention.DEFAULT_BATCH_SIZE, help="prune batch size"
    )
    parser.add_argument(
        "--insert-batch", type=positive, default=10_000, help="rows per executemany when filling"
    )
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    common.add_db_option(parser)
    args = parser.parse_args(argv)
    results = common.run_each(
        args.db, lambda kind: {variant: run_variant(kind, variant, args) for variant in args.variants}
    )
    common.emit(
        "prune",
        {"rows": args.rows, "old_fraction": round(1 - 90 / SPAN_DAYS, 3), "batch_size": args.batch_size},
        results,
    )


if __name__ == "__main__":
    main()
