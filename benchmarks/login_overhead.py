"""What auditing a Flask-Login sign-in costs, next to the same sign-in with a bare receiver.

Three apps on one database, each answering ``POST /login`` (user lookup by email, password
check, ``login_user(user)``), driven with ``app.test_client()`` (no cookies kept: every
request is a fresh sign-in, with a User-Agent and remote address):

* ``baseline``: no audit at all.
* ``bare``: the baseline plus a ``flask_login.user_logged_in`` receiver doing one raw
  ``INSERT`` of a minimal row into a table of its own, in its own ``engine.begin()``.
* ``audited``: the baseline with ``Audit(app, db=db)``; a ``user_logged_in`` receiver calls
  ``audit.record("user.login", details={"method": "password"})``, unless the extension
  already connects that signal itself (``flask_audit.capture``), which is then used instead;
  the output's ``capture`` field says which.

Each repeat runs ``--logins`` sign-ins per app; repeats are interleaved and the app order
rotates. Every request is timed on its own; the output gives the median microseconds per
sign-in (all repeats pooled, and per repeat), the overheads over the baseline and the ratio
``audited_overhead / bare_overhead`` (the project aims at <= 1.2; nothing is asserted).

``Audit.init_app`` installs its ORM guard and session hooks on the ``Session`` class, so they
run in all three apps; the baseline and bare apps therefore carry the (small) cost of the
``do_orm_execute`` guard of the user lookup too.

Databases: SQLite is a temporary *file* database with ``PRAGMA journal_mode=WAL`` and
``PRAGMA synchronous=NORMAL`` set on every connection by an SQLAlchemy ``connect`` event
listener on each engine (the setting we recommend to users). PostgreSQL comes from
``FLASK_AUDIT_PG_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``); a
fresh database ``fa_bench_*`` is created for the run and dropped afterwards.

    .venv/bin/python benchmarks/login_overhead.py --logins 2000
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import gc
import importlib.util
import time
import typing as t

import _common as common
import sqlalchemy as sa
from _common import Base
from _common import db
from _common import User
from flask import abort
from flask import Flask
from flask import request
from flask_login import login_user
from flask_login import user_logged_in

from flask_audit import Audit
from flask_audit.store.models import audit_event_table

APPS = ("baseline", "bare", "audited")
FORM = {"email": "bench@example.com", "password": "pw"}
ENVIRON = {"REMOTE_ADDR": common.REMOTE_ADDR, "HTTP_USER_AGENT": common.USER_AGENT}
WARMUP = 50

bare_login = sa.Table(
    "bench_bare_login",
    Base.metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.String(64)),
    sa.Column("occurred_at", sa.DateTime),
)
BARE_INSERT = sa.insert(bare_login)
audit = Audit(db=db)


def login_view() -> str:
    user = db.session.scalar(sa.select(User).where(User.email == request.form["email"]))
    if user is None or user.password != request.form["password"]:
        abort(401)
    login_user(user)
    return "ok"


def build_apps(url: str) -> tuple[dict[str, Flask], str]:
    """The three apps, and how the audited one captures sign-ins."""
    apps = {name: common.new_app(f"login_{name}", url) for name in APPS}
    for app in apps.values():
        app.add_url_rule("/login", view_func=login_view, methods=["POST"])

    with apps["bare"].app_context():
        engine = db.engine

    def bare_receiver(sender: Flask, user: t.Any, **extra: t.Any) -> None:
        with engine.begin() as conn:
            conn.execute(
                BARE_INSERT,
                {
                    "user_id": user.get_id(),
                    "occurred_at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
                },
            )

    def audited_receiver(sender: Flask, **extra: t.Any) -> None:
        audit.record("user.login", details={"method": "password"})

    audited = apps["audited"]
    before = len(list(user_logged_in.receivers_for(audited)))
    audit.init_app(audited)
    if len(list(user_logged_in.receivers_for(audited))) > before:
        capture = "flask_audit.capture: connected user_logged_in itself (no manual receiver)"
    else:
        user_logged_in.connect(audited_receiver, audited, weak=False)
        found = importlib.util.find_spec("flask_audit.capture") is not None
        capture = "manual user_logged_in receiver calling audit.record('user.login')" + (
            " (flask_audit.capture exists but did not connect user_logged_in)" if found else ""
        )
    user_logged_in.connect(bare_receiver, apps["bare"], weak=False)
    with audited.app_context():
        db.create_all()
    common.add_user(audited, FORM["email"])
    return apps, capture


def sign_ins(app: Flask, n: int) -> list[float]:
    """Microseconds of each of ``n`` sign-ins."""
    client = app.test_client(use_cookies=False)
    times: list[float] = []
    for _ in range(n):
        start = time.perf_counter_ns()
        response = client.post("/login", data=FORM, environ_base=ENVIRON)
        times.append((time.perf_counter_ns() - start) / 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{app.name}: POST /login answered {response.status}")
    return times


def count(app: Flask, query: sa.Select[int]) -> int | None:
    with app.app_context():
        return db.session.scalar(query)


def run_database(kind: str, args: argparse.Namespace) -> dict[str, t.Any]:
    with common.fresh_database(kind) as url:
        apps, capture = build_apps(url)
        for name in APPS:  # warm up: pool connections, statement caches, mappers
            sign_ins(apps[name], WARMUP)
        samples: dict[str, list[float]] = {name: [] for name in APPS}
        run_medians: dict[str, list[float]] = {name: [] for name in APPS}
        for repeat in range(args.repeats):
            for name in common.rotated(APPS, repeat):
                gc.collect()
                times = sign_ins(apps[name], args.logins)
                samples[name].extend(times)
                run_medians[name].append(round(common.median(times), 1))
        logins = args.logins * args.repeats + WARMUP
        is_login = audit_event_table.c.event_type == "user.login"
        rows = {
            "expected": logins,
            "bare": count(apps["bare"], sa.select(sa.func.count()).select_from(bare_login)),
            "audited": count(apps["audited"], sa.select(sa.func.count()).where(is_login)),
        }
        with apps["audited"].app_context():
            setting = common.describe(db.engine)
        for app in apps.values():
            common.dispose(app)
    med = {name: round(common.median(samples[name]), 1) for name in APPS}
    bare = med["bare"] - med["baseline"]
    audited = med["audited"] - med["baseline"]
    return {
        "database": setting,
        "capture": capture,
        "median_us": med,
        "run_median_us": run_medians,
        "overhead_us": {"bare": round(bare, 1), "audited": round(audited, 1)},
        "ratio_audited_vs_bare_overhead": round(audited / bare, 3) if bare > 0 else None,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--logins", type=common.positive, default=2000, help="sign-ins per app per repeat")
    parser.add_argument("--repeats", type=common.positive, default=5, help="interleaved repeats of each app")
    common.add_db_option(parser)
    args = parser.parse_args(argv)
    results = common.run_each(args.db, functools.partial(run_database, args=args))
    common.emit(
        "login_overhead",
        {
            "logins": args.logins,
            "repeats": args.repeats,
            "capture": "; ".join(sorted({result.pop("capture", "") for result in results.values()} - {""})),
        },
        results,
    )


if __name__ == "__main__":
    main()
