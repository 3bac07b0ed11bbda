"""A plain ``audit_event`` against one partitioned by month, on MariaDB: does ``PARTITION BY RANGE`` serve?

Two fresh databases hold the same trail: ``plain`` as ``db.create_all()`` makes it (with its
insert-only triggers), and ``partitioned``, made the same way and then altered to
``PRIMARY KEY (id, occurred_at)``, ``UNIQUE (uid, occurred_at)`` and
``PARTITION BY RANGE (TO_DAYS(occurred_at))``, one partition per month of data plus a
``MAXVALUE`` one, its triggers installed again on the partitioned table. ``--rows`` events
over the last ``--span-days`` days, ten tenants, go into both in alternating Core
``executemany`` batches. Then:

* ``insert_rows_per_s``: the rate of those batches, per layout;
* ``pages``: the admin page's keyset query (``fetch_page``, one tenant, 50 rows), first page
  and a deep page from a cursor about 150 days back, alternating layouts (ms p50/p95/max);
* ``remove_oldest_month``: the oldest month removed while a writer thread inserts one row
  every ~5 ms; plain: batched ``DELETE`` (id ranges of 2,000 rows, one transaction each, as
  ``flask audit prune`` does); partitioned: ``ALTER TABLE ... DROP PARTITION``. The removal's
  seconds and the writer's latency (ms p50/p99/max) meanwhile;
* ``remove_while_reader_open``: the next month removed while another connection holds an open
  transaction that has read one row (for ``--hold`` seconds): the DROP waits for it, and the
  writer's inserts queue behind the pending metadata lock. With ``lock_wait_timeout`` at the
  server's default, at 1 s, where the DROP fails, and with ``NOWAIT``; the batched DELETE for
  comparison;
* ``triggers``: whether the insert-only triggers install on the partitioned table, whether an
  ``UPDATE`` is refused there, and whether ``DROP PARTITION`` removes rows inside the
  retention window, which the ``DELETE`` trigger refuses (no trigger fires on it).

Prints one JSON object; asserts nothing. MariaDB from ``FLASK_AUDIT_MYSQL_URL``.

    .venv/bin/python benchmarks/mariadb_partitions.py --rows 1000000
"""

from __future__ import annotations

import argparse
import collections.abc as c
import contextlib
import datetime as dt
import random
import threading
import time
import typing as t
import uuid

import _common as common
import page_latency
import sqlalchemy as sa
from flask import Flask

from flask_audit import Audit
from flask_audit.integrity.retention import DEFAULT_BATCH_SIZE
from flask_audit.query.filters import AuditFilter
from flask_audit.query.filters import Cursor
from flask_audit.query.sql import fetch_page
from flask_audit.store.immutability import create_triggers
from flask_audit.store.models import audit_event_table

LAYOUTS = ("plain", "partitioned")
TENANTS = [f"tenant{n}" for n in range(10)]
RETENTION_DAYS = 90
EVENTS = audit_event_table


def month_start(moment: dt.datetime, shift: int = 0) -> dt.datetime:
    index = moment.year * 12 + moment.month - 1 + shift
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.timezone.utc)


def months(now: dt.datetime, span_days: int) -> list[dt.datetime]:
    """The first day of every month from the oldest event's to the current one."""
    first = month_start(now - dt.timedelta(days=span_days))
    found = [first]
    while found[-1] < month_start(now):
        found.append(month_start(found[-1], 1))
    return found


def partition_name(month: dt.datetime) -> str:
    return f"p{month:%Y%m}"


def create_layout(
    url: str, layout: str, now: dt.datetime, span_days: int
) -> tuple[sa.Engine, dict[str, t.Any]]:
    """``audit_event`` with its triggers through the app's ``create_all``; partitioned if asked."""
    app: Flask = common.new_app(f"mariadb_partitions_{layout}", url)
    app.config.update(AUDIT_IS_ADMIN=lambda user: True, AUDIT_RETENTION_DAYS=RETENTION_DAYS)
    Audit(app, db=common.db)
    with app.app_context():
        common.db.create_all()
    common.dispose(app)
    engine = sa.create_engine(url, pool_size=6, max_overflow=4)
    report: dict[str, t.Any] = {}
    if layout == "partitioned":
        report = partition(engine, now, span_days)
    return engine, report


def partition(engine: sa.Engine, now: dt.datetime, span_days: int) -> dict[str, t.Any]:
    """Composite keys (every unique key must hold the partitioning column), monthly ranges,
    then the insert-only triggers installed again on the partitioned table."""
    with engine.begin() as conn:
        unique = conn.scalar(
            sa.text(
                "SELECT index_name FROM information_schema.statistics WHERE table_schema = DATABASE()"
                " AND table_name = 'audit_event' AND column_name = 'uid' AND non_unique = 0"
            )
        )
        conn.exec_driver_sql(
            "ALTER TABLE audit_event DROP PRIMARY KEY, ADD PRIMARY KEY (id, occurred_at),"
            f" DROP INDEX `{unique}`, ADD UNIQUE KEY uq_audit_event_uid_time (uid, occurred_at)"
        )
        ranges = [
            f"PARTITION {partition_name(month)} VALUES LESS THAN (TO_DAYS('{end:%Y-%m-%d}'))"
            for month, end in ((month, month_start(month, 1)) for month in months(now, span_days))
        ]
        conn.exec_driver_sql(
            "ALTER TABLE audit_event PARTITION BY RANGE (TO_DAYS(occurred_at))"
            f" ({', '.join(ranges)}, PARTITION pmax VALUES LESS THAN MAXVALUE)"
        )
    report: dict[str, t.Any] = {"partitions": len(ranges) + 1}
    try:
        with engine.begin() as conn:
            create_triggers(conn, RETENTION_DAYS, replace=True)
            report["triggers_installed"] = sorted(
                conn.scalars(
                    sa.text(
                        "SELECT trigger_name FROM information_schema.triggers"
                        " WHERE trigger_schema = DATABASE() AND event_object_table = 'audit_event'"
                    )
                )
            )
    except sa.exc.DBAPIError as err:
        report["triggers_error"] = str(err.orig)
    return report


def describe(engine: sa.Engine) -> dict[str, t.Any]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT VERSION(), @@lock_wait_timeout, @@innodb_flush_log_at_trx_commit,"
                " @@innodb_buffer_pool_size"
            )
        ).one()
    return {
        "version": row[0],
        "lock_wait_timeout": int(row[1]),
        "innodb_flush_log_at_trx_commit": int(row[2]),
        "innodb_buffer_pool_size": int(row[3]),
    }


def fill(engines: dict[str, sa.Engine], rows: int, now: dt.datetime, span_days: int) -> dict[str, float]:
    """The same batches into each layout, alternating, oldest first; rows per second per layout."""
    page_latency.DAYS = span_days  # make_rows spreads the events over that many days
    rnd = random.Random(11)
    insert = sa.insert(EVENTS)
    seconds = dict.fromkeys(engines, 0.0)
    for number, batch in enumerate(page_latency.make_rows(rows, now, None, seed=7)):
        for row in batch:
            row["tenant_id"] = rnd.choice(TENANTS)
        for layout in common.rotated(list(engines), number):
            began = time.perf_counter()
            with engines[layout].begin() as conn:
                conn.execute(insert, batch)
            seconds[layout] += time.perf_counter() - began
    page_latency.DAYS = 90
    for engine in engines.values():
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE TABLE audit_event").all()
    return {layout: round(rows / spent, 1) for layout, spent in seconds.items()}


def percentiles(values: c.Sequence[float], *shares: float) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:  # a removal shorter than the writer's pause
        return {}
    out = {
        f"p{round(share * 100)}_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 2)
        for share in shares
    }
    out["max_ms"] = round(ordered[-1], 2)
    return out


def deep_cursor(engine: sa.Engine, now: dt.datetime) -> Cursor:
    """The row of ``tenant3`` nearest to 150 days back: a deep page's cursor."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(EVENTS.c.occurred_at, EVENTS.c.id)
            .where(EVENTS.c.tenant_id == "tenant3", EVENTS.c.occurred_at <= now - dt.timedelta(days=150))
            .order_by(EVENTS.c.occurred_at.desc(), EVENTS.c.id.desc())
            .limit(1)
        ).one()
    return Cursor(row.occurred_at, row.id)


def pages(engines: dict[str, sa.Engine], now: dt.datetime, args: argparse.Namespace) -> dict[str, t.Any]:
    """``fetch_page`` for one tenant, first and deep page, the layouts taking turns."""
    cursors = {layout: deep_cursor(engine, now) for layout, engine in engines.items()}
    times: dict[str, dict[str, list[float]]] = {layout: {"first": [], "deep": []} for layout in engines}
    for number in range(args.requests):
        for layout in common.rotated(list(engines), number):
            for case, flt in (("first", AuditFilter()), ("deep", AuditFilter(cursor=cursors[layout]))):
                with engines[layout].connect() as conn:
                    began = time.perf_counter()
                    page = fetch_page(
                        conn,
                        flt,
                        limit=50,
                        retention_days=args.span_days + 31,
                        tenant_scoped=True,
                        tenant_id="tenant3",
                        now=now,
                    )
                    times[layout][case].append((time.perf_counter() - began) * 1000)
                    if len(page.rows) != 50:
                        raise RuntimeError(f"{layout} {case} page has {len(page.rows)} rows, not 50")
    return {
        layout: {case: percentiles(values, 0.5, 0.95) for case, values in cases.items()}
        for layout, cases in times.items()
    }


class Writer:
    """Inserts one row about every 5 ms on its own connection and keeps each insert's latency."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.stop = threading.Event()
        self.samples: list[tuple[float, float]] = []  # (start, ms)
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        insert = sa.insert(EVENTS)
        with self.engine.connect() as conn:
            while not self.stop.is_set():
                row = {
                    "uid": uuid.uuid4().hex,
                    "occurred_at": dt.datetime.now(dt.timezone.utc),
                    "tenant_id": "tenant0",
                    "event_type": "user.login",
                    "entity": "user",
                    "action": "login",
                    "outcome": "success",
                    "activity": "Signed in",
                    "details": {"method": "password"},
                }
                began = time.perf_counter()
                conn.execute(insert, row)
                conn.commit()
                self.samples.append((began, (time.perf_counter() - began) * 1000))
                time.sleep(0.005)

    def between(self, start: float, end: float) -> dict[str, t.Any]:
        """Latency of the inserts begun in [start, end] (the sleep after the removal lets them finish)."""
        during = [ms for began, ms in self.samples if start <= began <= end]
        return {"inserts": len(during), **percentiles(during, 0.5, 0.99)}


@contextlib.contextmanager
def writing(engine: sa.Engine) -> c.Iterator[Writer]:
    writer = Writer(engine)
    writer.thread.start()
    time.sleep(0.5)  # the writer's pace before the removal
    try:
        yield writer
    finally:
        time.sleep(0.3)  # inserts queued behind the removal finish
        writer.stop.set()
        writer.thread.join()


def delete_month(engine: sa.Engine, month: dt.datetime) -> int:
    """Batched ``DELETE`` of one month, id range by id range, one short transaction each."""
    end = month_start(month, 1)
    window = sa.and_(EVENTS.c.occurred_at >= month, EVENTS.c.occurred_at < end)
    done, last = 0, 0
    while True:
        with engine.begin() as conn:
            edge = sa.select(EVENTS.c.id).where(window, EVENTS.c.id > last).order_by(EVENTS.c.id)
            high = conn.scalar(edge.offset(DEFAULT_BATCH_SIZE - 1).limit(1))
            batch = sa.and_(window, EVENTS.c.id > last)
            if high is not None:
                batch = sa.and_(batch, EVENTS.c.id <= high)
            done += conn.execute(sa.delete(EVENTS).where(batch)).rowcount
        if high is None:
            return done
        last = int(high)


def drop_partition(engine: sa.Engine, month: dt.datetime, timeout: int | None = None) -> int:
    """``ALTER TABLE ... DROP PARTITION``; the rows it held (counted first). ``timeout``: the
    session's ``lock_wait_timeout`` in seconds, ``0`` for ``NOWAIT``, ``None`` the server's."""
    with engine.connect() as conn:
        rows = int(
            conn.scalar(sa.text(f"SELECT COUNT(*) FROM audit_event PARTITION ({partition_name(month)})")) or 0
        )
        conn.commit()
        if timeout:
            conn.exec_driver_sql(f"SET SESSION lock_wait_timeout = {timeout}")
        wait = " NOWAIT" if timeout == 0 else ""
        conn.exec_driver_sql(f"ALTER TABLE audit_event{wait} DROP PARTITION {partition_name(month)}")
        if timeout:
            conn.exec_driver_sql("SET SESSION lock_wait_timeout = DEFAULT")
    return rows


def remove(layout: str, engine: sa.Engine, month: dt.datetime, timeout: int | None = None) -> int:
    return delete_month(engine, month) if layout == "plain" else drop_partition(engine, month, timeout)


def timed_removal(
    layout: str, engine: sa.Engine, month: dt.datetime, hold: float = 0.0, timeout: int | None = None
) -> dict[str, t.Any]:
    """Remove ``month`` while the writer runs (and, with ``hold``, a reader's transaction is open)."""
    out: dict[str, t.Any] = {"month": f"{month:%Y-%m}"}
    read = threading.Event()
    committed: list[float] = []

    def holder() -> None:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT id FROM audit_event LIMIT 1")).all()
            read.set()
            time.sleep(hold)
            conn.commit()
            committed.append(time.perf_counter())

    reader = threading.Thread(target=holder)
    with writing(engine) as writer:
        if hold:
            reader.start()
            read.wait()
        began = time.perf_counter()
        try:
            out["rows_removed"] = remove(layout, engine, month, timeout)
        except sa.exc.DBAPIError as err:
            out["error"] = str(err.orig)
        ended = time.perf_counter()
        time.sleep(0.3)
        out["seconds"] = round(ended - began, 3)
        out["writer"] = writer.between(began, ended)
    if hold:
        reader.join()
        out["reader_committed_after_s"] = round(committed[0] - began, 3)
    return out


def check_triggers(engine: sa.Engine, now: dt.datetime) -> dict[str, t.Any]:
    """On the partitioned table: is an UPDATE refused; does DROP PARTITION take rows inside the window?"""
    out: dict[str, t.Any] = {}
    with engine.connect() as conn:
        try:
            conn.exec_driver_sql("UPDATE audit_event SET team = 'changed' ORDER BY id DESC LIMIT 1")
            conn.commit()
            out["update_refused"] = False
        except sa.exc.DBAPIError as err:
            conn.rollback()
            out["update_refused"] = str(err.orig)
        try:
            conn.exec_driver_sql("DELETE FROM audit_event ORDER BY id DESC LIMIT 1")
            conn.commit()
            out["young_delete_refused"] = False
        except sa.exc.DBAPIError as err:
            conn.rollback()
            out["young_delete_refused"] = str(err.orig)
    young = month_start(now, -1)  # last month: inside the window
    try:
        out["drop_partition_inside_window_rows_removed"] = drop_partition(engine, young)
    except sa.exc.DBAPIError as err:
        out["drop_partition_inside_window_error"] = str(err.orig)
    return out


def run(args: argparse.Namespace) -> dict[str, t.Any]:
    now = dt.datetime.now(dt.timezone.utc)
    with common.fresh_database("mariadb") as plain_url, common.fresh_database("mariadb") as part_url:
        engines: dict[str, sa.Engine] = {}
        out: dict[str, t.Any] = {}
        for layout, url in zip(LAYOUTS, (plain_url, part_url), strict=True):
            engines[layout], report = create_layout(url, layout, now, args.span_days)
            if report:
                out["partitioning"] = report
        try:
            out["database"] = describe(engines["plain"])
            out["insert_rows_per_s"] = fill(engines, args.rows, now, args.span_days)
            out["pages"] = pages(engines, now, args)
            oldest = months(now, args.span_days)
            out["remove_oldest_month"] = {
                layout: timed_removal(layout, engines[layout], oldest[0]) for layout in LAYOUTS
            }
            out["remove_while_reader_open"] = {
                "hold_seconds": args.hold,
                "plain_delete": timed_removal("plain", engines["plain"], oldest[1], args.hold),
                "drop_partition_default_timeout": timed_removal(
                    "partitioned", engines["partitioned"], oldest[1], args.hold
                ),
                "drop_partition_timeout_1s": timed_removal(
                    "partitioned", engines["partitioned"], oldest[2], args.hold, timeout=1
                ),
                "drop_partition_nowait": timed_removal(
                    "partitioned", engines["partitioned"], oldest[2], args.hold, timeout=0
                ),
            }
            out["triggers"] = check_triggers(engines["partitioned"], now)
        finally:
            for engine in engines.values():
                engine.dispose()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=common.positive, default=200_000, help="events per layout")
    parser.add_argument(
        "--requests", type=common.positive, default=50, help="timed pages per case and layout"
    )
    parser.add_argument("--span-days", type=common.positive, default=180, help="days the events span")
    parser.add_argument(
        "--hold", type=float, default=5.0, help="seconds the reader keeps its transaction open"
    )
    args = parser.parse_args(argv)
    if args.span_days < 155:
        parser.error(
            "--span-days must be at least 155: three whole months of data must be outside the window"
        )
    if not args.hold >= 3:
        parser.error("--hold must be at least 3 seconds: longer than the 1 s lock_wait_timeout case waits")
    results: dict[str, dict[str, t.Any]]
    try:
        results = {"mariadb": run(args)}
    except Exception as err:  # report the failure in the JSON, as the other scripts do
        results = {"mariadb": {"error": f"{type(err).__name__}: {str(err).splitlines()[0]}"}}
    common.emit(
        "mariadb_partitions",
        {"rows": args.rows, "requests": args.requests, "span_days": args.span_days, "hold": args.hold},
        results,
    )


if __name__ == "__main__":
    main()
