"""A tracked model update against the same update untracked, on SQLite and PostgreSQL.

Two tables of identical shape; ``audit.track()`` watches one. Each variant loads one
row, renames it and commits (the shape of a request), ``--updates`` times per repeat;
repeats are interleaved and their order rotates. The tracked update also writes its
``team.updated`` event in the same transaction, which is the whole difference measured.
SQLite runs in WAL mode with ``synchronous=NORMAL`` (see ``_common.py``).

Prints one JSON object: per database the median microseconds per committed update of
each variant and the ratio tracked/untracked (the project aims at 1.25 or better).

    .venv/bin/python benchmarks/tracking_overhead.py --updates 1000
"""

from __future__ import annotations

import argparse
import time
import typing as t

import _common as common
import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from _common import db

from flask_audit import Audit
from flask_audit import AuditEvent

VARIANTS = ("tracked", "untracked")
audit = Audit(db=db)


class TrackedTeam(common.Base):
    __tablename__ = "bench_tracked_team"

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    name: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(255))


class PlainTeam(common.Base):
    __tablename__ = "bench_plain_team"

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    name: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(255))


audit.track(TrackedTeam, entity="Team", fields=["name"])


def _time_updates(model: type[TrackedTeam | PlainTeam], updates: int, tag: str) -> float:
    """Microseconds per request-shaped rename: load the row, change it, commit."""
    start = time.perf_counter()
    for i in range(updates):
        team = t.cast("TrackedTeam | PlainTeam", db.session.get(model, 1))
        team.name = f"{tag}-{i}"
        db.session.commit()
    return (time.perf_counter() - start) / updates * 1e6


def run(kind: str, updates: int, repeats: int) -> dict[str, t.Any]:
    with common.fresh_database(kind) as url:
        app = common.new_app(f"tracking-{kind}", url)
        audit.init_app(app)
        with app.app_context():
            db.create_all()
            db.session.add_all([TrackedTeam(id=1, name="Growth"), PlainTeam(id=1, name="Growth")])
            db.session.commit()
            runs: dict[str, list[float]] = {name: [] for name in VARIANTS}
            for repeat in range(repeats):
                for name in common.rotated(VARIANTS, repeat):
                    model = TrackedTeam if name == "tracked" else PlainTeam
                    runs[name].append(_time_updates(model, updates, f"r{repeat}"))
            events = db.session.scalar(
                sa.select(sa.func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.event_type == "team.updated")
            )
            description = common.describe(db.engine)
        common.dispose(app)
    medians = {name: round(common.median(values), 1) for name, values in runs.items()}
    return {
        "database": description,
        "us_per_update": medians,
        "runs_us_per_update": {name: [round(v, 1) for v in values] for name, values in runs.items()},
        "ratio_tracked_vs_untracked": round(medians["tracked"] / medians["untracked"], 3),
        "events": {"stored": events, "expected": updates * repeats},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--updates", type=common.positive, default=1000, help="updates per variant per repeat"
    )
    parser.add_argument("--repeats", type=common.positive, default=5, help="interleaved repeats")
    common.add_db_option(parser)
    args = parser.parse_args()
    results = common.run_each(args.db, lambda kind: run(kind, args.updates, args.repeats))
    common.emit("tracking_overhead", {"updates": args.updates, "repeats": args.repeats}, results)


if __name__ == "__main__":
    main()
