"""Latency of the admin page and the JSON API over a large trail, first page and deep pages.

Two app modes, each on a fresh database of ``--rows`` events (default 1,000,000):
``single`` (no tenant loader; no event has a tenant) and ``tenant`` (a tenant loader; every
event belongs to the admin's tenant, the worst case for that tenant). The events span the
last 90 days: about 50 actors and 10 teams with skewed frequencies, every event type of the
taxonomy (sign-ins common, exports rare), inserted oldest first in Core ``executemany``
batches, then ``VACUUM ANALYZE``d on PostgreSQL (autovacuum would) and left without
statistics on SQLite (as apps leave it). An admin, signed in through Flask-Login's session,
drives ``app.test_client()``:

* ``GET <prefix>/?<filters>``: the page (table of 50, chart of events per day, tracking since);
* ``GET <prefix>/api/events?<filters>``: the API (50 events, every column).

Each filter combination (none, actor, entity, team + date range, ``action=export``) is timed
on its first page and on a deep keyset page (a cursor 80 % down the filtered rows). The
first request of each filter on the page is reported apart as ``page_cold_ms``: the very
first fills the chart's kept day totals (``audit_day_total``) and each fills the per-day
cache that later requests reuse for five minutes. ``page_after_restart_ms`` is the first
request of each filter in a new app (empty caches, the kept totals in the database, its
templates compiled by one view in another zone); ``restart.first_request_ms`` is a new
app's very first request, template compilation included. Then ``--requests``
timed requests give p50/p95/max in ms, and the median process CPU time (which includes
SQLite's work, not PostgreSQL's). The project aims at page p95 < 15 ms and API p95 < 8 ms at
any filter and depth; nothing is asserted. ``--explain`` adds the plan of each case's table
query (``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL).

    .venv/bin/python benchmarks/page_latency.py --rows 200000 --requests 100
"""

from __future__ import annotations

import argparse
import collections.abc as c
import contextlib
import datetime as dt
import gc
import random
import time
import typing as t
import urllib.parse
import uuid

import _common as common
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_audit import Audit
from flask_audit.query.filters import AuditFilter
from flask_audit.query.filters import Cursor
from flask_audit.query.sql import conditions
from flask_audit.query.sql import Scope
from flask_audit.store.models import audit_event_table
from flask_audit.taxonomy import EVENT_TYPES

PREFIX = "/admin/audit"
TENANT = "acme"
DAYS = 90
TARGET_MS = {"page_p95": 15.0, "api_p95": 8.0}
#: Relative frequency of each event type; what is not listed is rare (weight 1).
WEIGHTS = {
    "user.login": 4000,
    "user.logout": 2000,
    "user.login_failed": 600,
    "two_factor.verified": 1200,
    "two_factor.failed": 150,
    "team.member_added": 120,
    "team.member_removed": 60,
    "invite.sent": 80,
    "invite.accepted": 60,
    "role.updated": 50,
    "user.password_changed": 40,
    "team.updated": 20,
    "user.created": 40,
    "audit.exported": 1,
    "audit.enabled": 0,
    "audit.pruned": 0,
}


def filters(now: dt.datetime) -> dict[str, dict[str, str]]:
    """The filter combinations measured; the team range is two weeks in the middle of the window."""
    start = (now - dt.timedelta(days=50)).date().isoformat()
    end = (now - dt.timedelta(days=36)).date().isoformat()
    return {
        "none": {},
        "actor": {"actor": "user07@example.com"},
        "entity": {"entity": "Team"},
        "team_range": {"team": "Growth", "start": start, "end": end},
        "export": {"action": "export"},
    }


def make_rows(
    count: int, now: dt.datetime, tenant: str | None, seed: int
) -> c.Iterator[list[dict[str, t.Any]]]:
    """``count`` events oldest first, in batches of 10,000."""
    rnd = random.Random(seed)
    types = list(EVENT_TYPES)
    weights = [WEIGHTS.get(name, 1) for name in types]
    actors = [f"user{n:02d}@example.com" for n in range(50)]
    actor_weights = [1 / (n + 1) for n in range(50)]
    teams = ["Growth", "Platform", "Data", "Sales", "Support", "Design", "Finance", "Ops", "Legal", "HR"]
    team_weights = [30, 20, 12, 10, 8, 6, 5, 4, 3, 2]
    span = dt.timedelta(days=DAYS).total_seconds() - 3600
    offsets = sorted((rnd.random() * span for _ in range(count)), reverse=True)
    batch: list[dict[str, t.Any]] = []
    for offset in offsets:
        event_type = rnd.choices(types, weights)[0]
        kind = EVENT_TYPES[event_type]
        actor = rnd.choices(actors, actor_weights)[0]
        batch.append(
            {
                "uid": uuid.uuid4().hex,
                "occurred_at": now - dt.timedelta(seconds=offset),
                "tenant_id": tenant,
                "team": rnd.choices(teams, team_weights)[0],
                "event_type": event_type,
                "entity": kind.entity,
                "action": kind.action,
                "outcome": kind.outcome,
                "activity": f"{kind.activity} ({actor})",
                "actor_id": actor[4:6],
                "actor_email": actor,
                "ip": f"198.51.100.{rnd.randrange(1, 255)}",
                "user_agent": common.USER_AGENT,
                "request_id": uuid.uuid4().hex,
                "target_type": None,
                "target_id": None,
                "details": {"method": "password"} if kind.action == "login" else {},
            }
        )
        if len(batch) == 10_000:
            yield batch
            batch = []
    if batch:
        yield batch


def fill(app: Flask, rows: int, now: dt.datetime, tenant: str | None) -> float:
    """Insert the trail; returns the seconds it took."""
    started = time.perf_counter()
    with app.app_context():
        engine = common.db.engine
        insert = sa.insert(audit_event_table)
        for batch in make_rows(rows, now, tenant, seed=7):
            with engine.begin() as conn:
                conn.execute(insert, batch)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE audit_event")
    return time.perf_counter() - started


def build_app(url: str, mode: str) -> Flask:
    app = common.new_app(f"page_{mode}", url)
    app.config.update(
        AUDIT_IS_ADMIN=lambda user: True,
        AUDIT_TENANT_LOADER=(lambda: TENANT) if mode == "tenant" else None,
    )
    Audit(app, db=common.db)
    return app


def admin_client(app: Flask, user_id: int) -> FlaskClient:
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(user_id)
        session["_fresh"] = True
    return client


def deep_cursor(app: Flask, args: dict[str, str], mode: str, now: dt.datetime) -> tuple[str | None, int]:
    """A cursor 80 % down the filtered rows, and how many rows match."""
    flt = AuditFilter.from_args(args)
    scope = Scope(retention_days=DAYS, tenant_scoped=mode == "tenant", tenant_id=TENANT)
    where = conditions(flt, now=now, **scope)
    cols = audit_event_table.c
    with app.app_context(), common.db.engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).where(*where)).scalar_one()
        stmt = (
            sa.select(cols.occurred_at, cols.id)
            .where(*where)
            .order_by(cols.occurred_at.desc(), cols.id.desc())
        )
        row = conn.execute(stmt.offset(int(total * 0.8)).limit(1)).first()
    return (Cursor(row.occurred_at, row.id).encode() if row else None), int(total)


class Times(t.NamedTuple):
    wall: list[float]
    cpu: list[float]


def timed(client: FlaskClient, url: str, n: int) -> Times:
    """Wall and process CPU milliseconds of ``n`` requests (CPU includes SQLite, not PostgreSQL)."""
    times = Times([], [])
    for _ in range(n):
        start, cpu = time.perf_counter_ns(), time.process_time_ns()
        response = client.get(url)
        times.wall.append((time.perf_counter_ns() - start) / 1e6)
        times.cpu.append((time.process_time_ns() - cpu) / 1e6)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status}: {response.text[:200]}")
    return times


def stats(times: Times) -> dict[str, float]:
    ordered = sorted(times.wall)
    return {
        "p50_ms": round(common.median(ordered), 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 2),
        "max_ms": round(ordered[-1], 2),
        "cpu_p50_ms": round(common.median(times.cpu), 2),
    }


@contextlib.contextmanager
def captured(engine: sa.Engine) -> c.Iterator[list[tuple[str, t.Any]]]:
    """The SQL statements (and parameters) the engine sends while the block runs."""
    seen: list[tuple[str, t.Any]] = []

    def capture(conn: t.Any, cursor: t.Any, statement: str, parameters: t.Any, *args: t.Any) -> None:
        seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)


def explain(app: Flask, client: FlaskClient, url: str) -> list[str]:
    """The plan of the table query behind ``url`` (the one with ``ORDER BY`` and ``LIMIT``)."""
    with app.app_context():
        engine = common.db.engine
    with captured(engine) as seen:
        client.get(url)
    statement, parameters = next((s, p) for s, p in seen if "ORDER BY" in s and "LIMIT" in s)
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + statement, parameters).all()
    return [str(row[-1]) for row in rows]


def measure_mode(
    url: str, mode: str, user_id: int, args: argparse.Namespace, now: dt.datetime
) -> dict[str, t.Any]:
    app = build_app(url, mode)
    client = admin_client(app, user_id)
    out: dict[str, t.Any] = {}
    for name, values in filters(now).items():
        cursor, total = deep_cursor(app, values, mode, now)
        query = urllib.parse.urlencode(values)
        entry: dict[str, t.Any] = {"matching_rows": total}
        entry["page_cold_ms"] = round(timed(client, f"{PREFIX}/?{query}", 1).wall[0], 2)
        for depth, extra in (("first", ""), ("deep", f"&cursor={cursor}" if cursor else "")):
            page_url, api_url = f"{PREFIX}/?{query}{extra}", f"{PREFIX}/api/events?{query}{extra}"
            timed(client, page_url, 3)
            timed(client, api_url, 3)
            gc.collect()
            entry[depth] = {
                "page": stats(timed(client, page_url, args.requests)),
                "api": stats(timed(client, api_url, args.requests)),
            }
            if args.explain:
                entry[depth]["plan"] = explain(app, client, api_url)
        out[name] = entry
    common.dispose(app)
    out["restart"] = restarted(url, mode, user_id, now, out)
    return out


def restarted(url: str, mode: str, user_id: int, now: dt.datetime, out: dict[str, t.Any]) -> dict[str, float]:
    """First views in new apps, their caches empty, the chart's kept day totals in the database.

    The very first request of a process also compiles the templates; it is reported apart.
    Then, in another new app whose templates a view in another zone has compiled, the first
    view of each filter is ``page_after_restart_ms``.
    """
    app = build_app(url, mode)
    first = round(timed(admin_client(app, user_id), f"{PREFIX}/", 1).wall[0], 2)
    common.dispose(app)
    app = build_app(url, mode)
    client = admin_client(app, user_id)
    timed(client, f"{PREFIX}/?tz=Asia%2FTokyo", 1)
    for name, values in filters(now).items():
        query = urllib.parse.urlencode(values)
        out[name]["page_after_restart_ms"] = round(timed(client, f"{PREFIX}/?{query}", 1).wall[0], 2)
    common.dispose(app)
    return {"first_request_ms": first}


def run_database(kind: str, args: argparse.Namespace) -> dict[str, t.Any]:
    """Each mode on a database of its own: no tenant ids for ``single``, one tenant for ``tenant``."""
    result: dict[str, t.Any] = {}
    for mode in args.modes:
        now = dt.datetime.now(dt.timezone.utc)
        with common.fresh_database(kind) as url:
            setup = build_app(url, "setup")
            with setup.app_context():
                common.db.create_all()
                result["database"] = common.describe(common.db.engine)
            user_id = common.add_user(setup, "admin@example.com")
            seconds = fill(setup, args.rows, now, TENANT if mode == "tenant" else None)
            common.dispose(setup)
            result[mode] = {"fill_seconds": round(seconds, 1), **measure_mode(url, mode, user_id, args, now)}
    return result


def verdict(results: dict[str, t.Any], modes: list[str]) -> dict[str, t.Any]:
    """The worst p95 of the page and of the API across filters and depths, per database."""
    out: dict[str, t.Any] = {}
    for kind, result in results.items():
        if "error" in result:
            continue
        worst: dict[str, t.Any] = {"page_p95_ms": 0.0, "api_p95_ms": 0.0}
        for mode in modes:
            for name, entry in result[mode].items():
                if name in ("fill_seconds", "restart"):
                    continue
                for depth in ("first", "deep"):
                    worst["page_p95_ms"] = max(worst["page_p95_ms"], entry[depth]["page"]["p95_ms"])
                    worst["api_p95_ms"] = max(worst["api_p95_ms"], entry[depth]["api"]["p95_ms"])
        worst["meets_target"] = (
            worst["page_p95_ms"] < TARGET_MS["page_p95"] and worst["api_p95_ms"] < TARGET_MS["api_p95"]
        )
        out[kind] = worst
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=common.positive, default=1_000_000, help="events in the trail")
    parser.add_argument("--requests", type=common.positive, default=100, help="timed requests per case")
    parser.add_argument(
        "--modes", nargs="+", choices=("single", "tenant"), default=["single", "tenant"], help="app modes"
    )
    parser.add_argument("--explain", action="store_true", help="add the table query's plan to each case")
    common.add_db_option(parser)
    args = parser.parse_args(argv)
    results = common.run_each(args.db, lambda kind: run_database(kind, args))
    options = {"rows": args.rows, "requests": args.requests, "target_ms": TARGET_MS}
    common.emit("page_latency", {**options, "worst_p95": verdict(results, args.modes)}, results)


if __name__ == "__main__":
    main()
