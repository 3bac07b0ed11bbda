"""A plain ``audit_event`` against one partitioned by month (``AUDIT_PG_PARTITIONS``), on PostgreSQL.

Each layout gets a fresh database of ``--rows`` events spread over the last ``--span-days``
days (default 180: half of them outside the 90-day window), with the event mix of
``page_latency.py``, inserted oldest first in Core ``executemany`` batches (the insert rate
is reported), then ``VACUUM ANALYZE``d. Then, per layout:

* ``pages``: the admin page and the JSON API, first and deep keyset pages, for the filters of
  ``page_latency.py`` (p50/p95/max over ``--requests`` requests);
* ``partitions_read``: the tables in the ``EXPLAIN`` of the API's first and deep page
  (no filter): a partitioned trail reads only the months between the cursor and the window;
* ``index_sizes``: the btree on ``occurred_at`` and a BRIN index on it, made for the
  measurement and dropped again (summed over the partitions);
* ``prune``: ``retention.prune()`` with a cutoff just after the first month of data, while a
  writer thread records events through ``Audit.record()`` (its latency p50/p99/max in ms):
  the partitioned trail drops that month, the plain one deletes the same rows in batches.

Prints one JSON object; asserts nothing.

    .venv/bin/python benchmarks/partitions_bench.py --rows 1000000
"""

from __future__ import annotations

import argparse
import collections.abc as c
import datetime as dt
import json
import threading
import time
import typing as t

import _common as common
import page_latency
import sqlalchemy as sa
from flask import Flask

from flask_audit import Audit
from flask_audit.integrity import retention
from flask_audit.store import partitions
from flask_audit.store.models import audit_event_table

LAYOUTS = ("plain", "partitioned")


def build(url: str, layout: str) -> Flask:
    app = common.new_app(f"partitions_{layout}", url)
    app.config.update(
        AUDIT_IS_ADMIN=lambda user: True,
        AUDIT_PG_PARTITIONS="monthly" if layout == "partitioned" else None,
    )
    Audit(app, db=common.db)
    return app


def month_start(moment: dt.datetime, shift: int = 0) -> dt.datetime:
    index = moment.year * 12 + moment.month - 1 + shift
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.timezone.utc)


def fill(app: Flask, rows: int, now: dt.datetime, span_days: int) -> float:
    """The trail, oldest first; the seconds the inserts took (``VACUUM ANALYZE`` not included)."""
    page_latency.DAYS = span_days  # make_rows spreads the events over that many days
    insert = sa.insert(audit_event_table)
    with app.app_context():
        engine = common.db.engine
    began = time.perf_counter()
    for batch in page_latency.make_rows(rows, now, None, seed=7):
        with engine.begin() as conn:
            conn.execute(insert, batch)
    seconds = time.perf_counter() - began
    page_latency.DAYS = 90
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE audit_event")
    return seconds


def _relations(node: t.Any, found: list[str]) -> None:
    if isinstance(node, list):
        for each in node:
            _relations(each, found)
    elif isinstance(node, dict):
        if "Relation Name" in node and node["Relation Name"] not in found:
            found.append(node["Relation Name"])
        for value in node.values():
            _relations(value, found)


def partitions_read(app: Flask, client: t.Any, url: str) -> list[str]:
    """The tables PostgreSQL plans to read for the API's table query behind ``url``."""
    with app.app_context():
        engine = common.db.engine
    with page_latency.captured(engine) as seen:
        client.get(url)
    statement, parameters = next((s, p) for s, p in seen if "ORDER BY" in s and "LIMIT" in s)
    with engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar()
    found: list[str] = []
    _relations(plan if not isinstance(plan, str) else json.loads(plan), found)
    return sorted(found)


def index_sizes(app: Flask) -> dict[str, int]:
    """Bytes of the btree on ``occurred_at`` and of a BRIN index on it (made, measured, dropped)."""
    size = (  # a plain index is no partition tree: its own size
        "SELECT coalesce((SELECT sum(pg_relation_size(relid)) FROM pg_partition_tree(CAST(:i AS regclass))),"
        " pg_relation_size(CAST(:i AS regclass)))"
    )
    with app.app_context(), common.db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("CREATE INDEX bench_brin_time ON audit_event USING brin (occurred_at)")
        try:
            btree = conn.scalar(sa.text(size), {"i": "ix_audit_event_time"})
            brin = conn.scalar(sa.text(size), {"i": "bench_brin_time"})
        finally:
            conn.exec_driver_sql("DROP INDEX bench_brin_time")
    return {"btree_occurred_at_bytes": int(btree or 0), "brin_occurred_at_bytes": int(brin or 0)}


def _percentile(values: c.Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 2) if ordered else 0.0


def prune_with_writer(app: Flask, now: dt.datetime, span_days: int) -> dict[str, t.Any]:
    """Prune the first month of data while a thread records events; both timed."""
    second = month_start(now - dt.timedelta(days=span_days), 1)
    days = (now - second).days  # the cutoff lands just after the start of the second month
    with app.app_context():
        audit = app.extensions["audit"]
        state = audit._state(app)
        engine, config = state.engine, state.config
    latencies: list[float] = []
    stop = threading.Event()

    def write() -> None:
        with app.app_context():
            while not stop.is_set():
                began = time.perf_counter()
                audit.record("user.login", details={"method": "password"})
                latencies.append((time.perf_counter() - began) * 1000)

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.5)  # the writer's pace before prune starts
    before = len(latencies)
    began = time.perf_counter()
    result = retention.prune(engine, config, days=days)
    seconds = time.perf_counter() - began
    during = latencies[before:]
    stop.set()
    writer.join()
    return {
        "days": days,
        "seconds": round(seconds, 3),
        "rows_removed": result.count,
        "months_dropped": [month.name for month in result.months if month.kept is None],
        "writer_during_prune": {
            "inserts": len(during),
            "p50_ms": _percentile(during, 0.5),
            "p99_ms": _percentile(during, 0.99),
            "max_ms": round(max(during), 2) if during else 0.0,
        },
    }


def run_layout(layout: str, args: argparse.Namespace) -> dict[str, t.Any]:
    now = dt.datetime.now(dt.timezone.utc)
    with common.fresh_database("postgresql") as url:
        app = build(url, layout)
        with app.app_context():
            common.db.create_all()
            if layout == "partitioned":
                with common.db.engine.begin() as conn:
                    partitions.ensure(conn, since=month_start(now - dt.timedelta(days=args.span_days)).date())
            database = common.describe(common.db.engine)
        user_id = common.add_user(app, "admin@example.com")
        seconds = fill(app, args.rows, now, args.span_days)
        out: dict[str, t.Any] = {"database": database, "insert_rows_per_s": round(args.rows / seconds, 1)}
        pages = page_latency.measure_mode(url, "single", user_id, args, now)
        out["pages"] = pages
        reader = page_latency.build_app(url, "single")
        client = page_latency.admin_client(reader, user_id)
        cursor, _ = page_latency.deep_cursor(reader, {}, "single", now)
        api = f"{page_latency.PREFIX}/api/events"
        out["partitions_read"] = {
            "first": partitions_read(reader, client, api),
            "deep": partitions_read(reader, client, f"{api}?cursor={cursor}"),
        }
        common.dispose(reader)
        out["index_sizes"] = index_sizes(app)
        out["prune"] = prune_with_writer(app, now, args.span_days)
        common.dispose(app)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=common.positive, default=100_000, help="events per layout")
    parser.add_argument("--requests", type=common.positive, default=50, help="timed requests per case")
    parser.add_argument("--span-days", type=common.positive, default=180, help="days the events span")
    parser.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS))
    args = parser.parse_args(argv)
    if args.span_days < 150:
        parser.error("--span-days must be at least 150: the first month of data must be outside the window")
    args.explain = False
    results = {
        "postgresql": common.run_each(
            "postgresql", lambda kind: {layout: run_layout(layout, args) for layout in args.layouts}
        )["postgresql"]
    }
    common.emit(
        "partitions",
        {"rows": args.rows, "requests": args.requests, "span_days": args.span_days},
        results,
    )


if __name__ == "__main__":
    main()
