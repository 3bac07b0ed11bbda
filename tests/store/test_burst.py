"""64 concurrent sign-ins against a real server process: every attempt has its event.

Standalone events are written through the audit writer's own pool, so a request that holds
one of the app's connections never waits for a second one from the same pool. Tried with
the app's default pool and with one connection per pool (app and writer alike), on SQLite in
WAL and in rollback-journal mode, PostgreSQL and MariaDB, under ``AUDIT_ON_WRITE_ERROR =
"raise"``: no 5xx, and no sign-in without its ``user.login``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime as dt
import pathlib
import typing as t

import pytest
from flask import Flask

from flask_audit.state import audit_state
from flask_audit.store import folding

from ..apps import add_user
from ..conftest import MakeApp
from ..conftest import stored
from ..server_fixtures import gunicorn
from ..server_fixtures import post

ATTEMPTS = 64
#: (form, expected status, expected event type) for right, wrong and unknown sign-ins.
KINDS = {
    "right": ({"email": "alice@example.com", "password": "pw"}, 200, "user.login"),
    "wrong": ({"email": "alice@example.com", "password": "nope"}, 401, "user.login_failed"),
    "unknown": ({"email": "nobody@example.com", "password": "pw"}, 401, "user.login_failed"),
}
SINGLE = {"pool_size": 1, "max_overflow": 0}


def _burst(port: int) -> list[tuple[str, str, int, str]]:
    """Every attempt at once: (request id, kind, status, session cookie)."""
    kinds = [list(KINDS)[n % len(KINDS)] for n in range(ATTEMPTS)]

    def attempt(n: int) -> tuple[str, str, int, str]:
        request_id = f"burst-{n}"
        status, cookie = post(port, "/login", KINDS[kinds[n]][0], request_id)
        return request_id, kinds[n], status, cookie

    with concurrent.futures.ThreadPoolExecutor(ATTEMPTS) as pool:
        return list(pool.map(attempt, range(ATTEMPTS)))


def _run(make_app: MakeApp, tmp_path: pathlib.Path, url: str | None, pool: str) -> None:
    config: dict[str, t.Any] = {"AUDIT_SPOOL_PATH": str(tmp_path / "spool.jsonl")}
    if url is not None:
        config["SQLALCHEMY_DATABASE_URI"] = url
    app = make_app(**config)
    add_user(app, "alice@example.com")
    served = {**config, "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"]}
    if pool == "single":
        served.update(SQLALCHEMY_ENGINE_OPTIONS=SINGLE, AUDIT_ENGINE_OPTIONS=SINGLE)
    with gunicorn(served, tmp_path / "gunicorn.log") as port:
        results = _burst(port)

    statuses = collections.Counter(status for _id, _kind, status, _cookie in results)
    assert not [status for status in statuses if status >= 500], statuses
    _report_open_folds(app)
    events = stored(app)
    by_request = collections.defaultdict(list)
    for event in events:
        by_request[event.request_id].append(event.event_type)
    alone = 0
    for request_id, kind, status, cookie in results:
        _form, expected_status, expected_type = KINDS[kind]
        assert status == expected_status, (request_id, kind, status)
        assert ("session=" in cookie) == (kind == "right"), (request_id, kind, cookie)
        if kind == "right":  # nobody signed in without their event
            assert by_request[request_id] == [expected_type], (request_id, kind)
        else:  # its own event, or counted in its address's fold
            assert by_request[request_id] in ([expected_type], []), (request_id, kind)
            alone += len(by_request[request_id])
    folded = sum(int(e.details["count"]) for e in events if e.details.get("folded"))
    assert alone + folded == sum(1 for _id, kind, _s, _c in results if kind != "right")
    assert not (tmp_path / "spool.jsonl").exists()


def _report_open_folds(app: Flask) -> None:
    with app.app_context():
        state = audit_state(app)
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
        folding.report_due(state.engine, state.config, now=later)


@pytest.mark.parametrize("pool", ["default", "single"])
def test_a_burst_of_sign_ins_keeps_every_event(make_app: MakeApp, tmp_path: pathlib.Path, pool: str) -> None:
    _run(make_app, tmp_path, None, pool)


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("pool", ["default", "single"])
def test_a_burst_on_sqlite_in_rollback_journal_mode(
    make_app: MakeApp, tmp_path: pathlib.Path, pool: str
) -> None:
    """The fixture's SQLite files use WAL; this one keeps SQLite's default journal."""
    _run(make_app, tmp_path, f"sqlite:///{tmp_path / 'rollback-journal.db'}", pool)
