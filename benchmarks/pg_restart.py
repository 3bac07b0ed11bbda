"""PostgreSQL restarted in the middle of a load: the app reconnects and no event is lost.

The demo app runs under gunicorn on a private PostgreSQL server (see ``_pgcluster``) with
``AUDIT_ON_WRITE_ERROR = "spool"``. While the clients send the load of ``load_test.py``, the
server is restarted twice: ``pg_ctl restart -m fast`` (an operator's restart) after a third of
the requests, and ``-m immediate`` (a crash, recovered from the WAL) after two thirds. Then
``flask audit replay`` loads the spool, twice.

Exits 1 when a request answered as expected has no event or another kind of event, when any
request id has two events, on a status other than the expected one or a 503 during an outage,
on a 503 outside the outages, when no request succeeded after the last restart, or when the
second replay inserts anything.
"""

from __future__ import annotations

import argparse
import collections
import os
import pathlib
import re
import shutil
import tempfile
import threading
import typing as t

import _common as common
import _pgcluster
import load_app
import load_test
import sqlalchemy as sa

#: After ``pg_ctl`` returns, each worker's next checkout may still meet a dead connection.
GRACE_SECONDS = 2.0
RESTARTS = (("fast", 1 / 3), ("immediate", 2 / 3))
#: The demo's 503 asks for a retry; clients wait this long, so an outage does not eat the load.
PAUSE_AFTER_503 = 0.25
REPLAYED = re.compile(r"Replayed (\d+) spooled event\(s\); (\d+) already stored, (\d+) unreadable")


class Restarter(threading.Thread):
    """Restart ``cluster`` as the load passes each fraction of ``total`` requests."""

    def __init__(self, cluster: _pgcluster.Cluster, load: load_test.Load, total: int) -> None:
        super().__init__(daemon=True)
        self.cluster, self.load, self.total = cluster, load, total
        self.outages: list[dict[str, t.Any]] = []
        self.error: str | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            for mode, fraction in RESTARTS:
                while len(self.load.sent) < self.total * fraction:
                    if self.stop.wait(0.01):
                        return
                sent_before = len(self.load.sent)
                began, back = self.cluster.restart(mode)
                self.outages.append({"mode": mode, "began": began, "back": back, "sent_before": sent_before})
        except Exception as err:  # reported, and the run fails
            self.error = f"{type(err).__name__}: {err}"


def during_outage(sent: load_test.Sent, outages: list[dict[str, t.Any]]) -> bool:
    ended = sent.started + sent.seconds
    return any(o["began"] <= ended and sent.started <= o["back"] + GRACE_SECONDS for o in outages)


def replay(url: str, spool: str) -> list[tuple[int, int, int]]:
    """``flask audit replay`` twice: (inserted, already stored, unreadable) of each run."""
    app = load_app.build(url, audit=True, spool_path=spool)
    runs = []
    for _ in range(2):
        output = app.test_cli_runner().invoke(args=["audit", "replay"]).output
        found = REPLAYED.search(output)
        if found is None:
            raise RuntimeError(f"flask audit replay answered: {output.strip()}")
        runs.append((int(found[1]), int(found[2]), int(found[3])))
    return runs


def check(
    load: load_test.Load, events: dict[str, list[str]], outages: list[dict[str, t.Any]]
) -> dict[str, t.Any]:
    expected = {**load.setup, **{s.request_id: load_test.EVENT[s.kind] for s in load.sent}}
    answered = [s for s in load.sent if s.status == load_test.STATUS[s.kind]]
    refused = [s for s in load.sent if s.status == 503]
    last_back = max((o["back"] for o in outages), default=float("inf"))
    return {
        "requests": len(load.sent) + len(load.setup),
        "answered_as_expected": len(answered),
        "refused_503": len(refused),
        "refused_503_with_event": sorted(
            f"{s.request_id} {s.kind}" for s in refused if s.request_id in events
        ),
        "refused_503_outside_outages": sum(1 for s in refused if not during_outage(s, outages)),
        "succeeded_after_last_restart": sum(1 for s in answered if s.started > last_back),
        "lost": sum(1 for s in answered if s.request_id not in events)
        + sum(1 for rid in load.setup if rid not in events),
        "lost_sample": sorted(
            f"{s.request_id} {s.kind} {s.status}" for s in answered if s.request_id not in events
        )[:10],
        "duplicated": sum(1 for types in events.values() if len(types) > 1),
        "mismatched": sum(
            1
            for s in answered
            if set(events.get(s.request_id, [expected[s.request_id]])) != {expected[s.request_id]}
        ),
        "unexpected": sum(len(types) for rid, types in events.items() if rid not in expected),
        "status_other": dict(
            collections.Counter(
                str(s.status) for s in load.sent if s.status not in (load_test.STATUS[s.kind], 503)
            )
        ),
        "client_failures": load.failures,
    }


def problems(
    checks: dict[str, t.Any], outages: list[dict[str, t.Any]], replays: list[tuple[int, int, int]]
) -> list[str]:
    found = [
        f"{checks[key]} {key}" for key in ("lost", "duplicated", "mismatched", "unexpected") if checks[key]
    ]
    if checks["refused_503_outside_outages"]:
        found.append(f"{checks['refused_503_outside_outages']} requests refused outside the restarts")
    if checks["status_other"]:
        found.append(f"unexpected statuses {checks['status_other']}")
    if len(outages) < len(RESTARTS):
        found.append(f"only {len(outages)} of {len(RESTARTS)} restarts happened during the load")
    elif not checks["succeeded_after_last_restart"]:
        found.append("no request succeeded after the last restart")
    if replays and (replays[1][0] or any(run[2] for run in replays)):
        found.append(f"the replays were not idempotent: {replays}")
    return found + [str(failure) for failure in checks["client_failures"]]


def run(args: argparse.Namespace) -> dict[str, t.Any]:
    with _pgcluster.private_cluster() as cluster, tempfile.TemporaryDirectory(prefix="fa_restart_") as tmp:
        url, spool = cluster.url, str(pathlib.Path(tmp) / "spool.jsonl")
        ids = load_app.populate(load_app.build(url, audit=True), args.clients, load_test.MEMBERS)
        log = pathlib.Path(tmp) / "gunicorn.log"
        extra_env = {"LOAD_TEST_SPOOL_PATH": spool}
        with load_test.serve(url, audit=True, workers=args.workers, log=log, extra_env=extra_env) as port:
            load = load_test.Load(port, ids, args.requests, args.clients)
            load.pause_after_503 = PAUSE_AFTER_503
            load.role_of, close_reader = load_app.role_reader(url)
            restarter = Restarter(cluster, load, args.requests + load_test.WARMUP)
            restarter.start()
            elapsed = load.run()
            restarter.stop.set()
            restarter.join()
            close_reader()
        spooled = sum(1 for _ in open(spool, encoding="utf-8")) if pathlib.Path(spool).exists() else 0
        replays = replay(url, spool)
        engine = sa.create_engine(url)
        try:
            events = load_test.stored(engine, load.prefix)
        finally:
            engine.dispose()
        outages = restarter.outages
        checks = check(load, events, outages)
        started = min((s.started for s in load.sent), default=0.0)
        result: dict[str, t.Any] = {
            "seconds": round(elapsed, 2),
            "restarts": [
                {
                    "mode": o["mode"],
                    "after_requests": o["sent_before"],
                    "at_s": round(o["began"] - started, 2),
                    "server_away_s": round(o["back"] - o["began"], 2),
                }
                for o in outages
            ],
            "spooled": spooled,
            "replays": [
                dict(zip(("inserted", "already_stored", "unreadable"), r, strict=True)) for r in replays
            ],
            "checks": checks,
        }
        found = problems(checks, outages, replays) + ([restarter.error] if restarter.error else [])
        if found:
            result["error"] = "; ".join(found)
            if keep := os.environ.get("PG_RESTART_KEEP_LOG"):
                shutil.copy(log, keep)
            lines = log.read_text(errors="replace").splitlines()
            result["server_errors"] = sorted({line for line in lines if line[:1].isalpha()})[-20:]
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    load_test.add_load_options(parser, "requests in the load")
    args = parser.parse_args()
    options = {name: getattr(args, name) for name in ("requests", "clients", "workers")}
    common.emit("pg_restart", options, {"postgresql": run(args)})


if __name__ == "__main__":
    main()
