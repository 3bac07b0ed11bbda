"""Retention by the month on a trail partitioned by month (PostgreSQL).

Whole months before the cutoff go as tables (archived, recorded in the seal chain, detached,
dropped); partly old months and the ``DEFAULT`` partition keep the batched ``DELETE``; a
month that any rule keeps stays, and the dry run and the summary say which and why.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import gzip
import hashlib
import json
import pathlib
import typing as t
import uuid

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit import AuditError
from flask_audit.integrity import grants
from flask_audit.integrity import months
from flask_audit.integrity import retention
from flask_audit.integrity.archive import write_archive
from flask_audit.store import partitions

from ..apps import create_app
from ..conftest import audit_of
from ..conftest import db
from ..conftest import MakeApp
from ..conftest import writer_of
from ..sealing_fixtures import engine_of
from ..sealing_fixtures import event_ids
from ..sealing_fixtures import KEY
from ..sealing_fixtures import links
from ..sealing_fixtures import record
from ..sealing_fixtures import utcnow
from ..sealing_fixtures import verify
from .grants_fixtures import Accounts
from .grants_fixtures import make_accounts

pytestmark = pytest.mark.backends("postgresql")


def month_start(shift: int) -> dt.datetime:
    """The first instant of the month ``shift`` months from this one (UTC)."""
    today = utcnow()
    index = today.year * 12 + today.month - 1 + shift
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.timezone.utc)


def mid(shift: int) -> dt.datetime:
    return month_start(shift) + dt.timedelta(days=14, hours=3)


def label(shift: int) -> str:
    return f"{month_start(shift):%Y-%m}"


def table(shift: int) -> str:
    return f"audit_event_p{month_start(shift):%Y_%m}"


def partitioned(make_app: MakeApp, *, since: int = -6, **config: t.Any) -> Flask:
    """A partitioned trail with months made from ``since`` months ago."""
    app = make_app(AUDIT_PG_PARTITIONS="monthly", **config)
    with engine_of(app).begin() as conn:
        partitions.ensure(conn, since=month_start(since).date())
    return app


def names(app: Flask) -> list[str]:
    with engine_of(app).connect() as conn:
        return [each.name for each in partitions.partitions(conn)]


def prune(app: Flask, **kwargs: t.Any) -> retention.PruneResult:
    with app.app_context():
        state = audit_of(app)._state(app)
        return retention.prune(state.engine, state.config, **kwargs)


def run(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["audit", *args])
    return result.exit_code, result.output


def test_whole_old_months_are_archived_and_dropped_and_the_trail_verifies(
    make_app: MakeApp, tmp_path: pathlib.Path
) -> None:
    app = partitioned(make_app, AUDIT_SEAL_KEY=KEY)
    stray = record(app, occurred_at=month_start(-12))  # before every month: the DEFAULT partition
    oldest = record(app, 3, occurred_at=mid(-6))
    older = record(app, 2, occurred_at=mid(-5))
    young = record(app, 2)
    assert run(app, "seal")[0] == 0
    archive = tmp_path / "trail.jsonl.gz"
    code, output = run(app, "prune", "--archive", str(archive))
    assert code == 0, output
    assert f"dropped month(s) {label(-6)}, {label(-5)}" in output
    assert output.startswith("Pruned 6 event(s) older than "), output
    assert table(-6) not in names(app) and table(-5) not in names(app)
    assert "audit_event_default" in names(app) and table(0) in names(app)
    assert set(event_ids(app)) >= set(young)
    assert not set(event_ids(app)) & set(stray + oldest + older)
    with gzip.open(archive, "rt", encoding="utf-8") as batch:  # the DEFAULT row went in batches
        assert [json.loads(line)["id"] for line in batch] == stray
    month_file = tmp_path / f"trail.{label(-6)}.jsonl.gz"
    with gzip.open(month_file, "rt", encoding="utf-8") as lines:
        assert [json.loads(line)["id"] for line in lines] == oldest
    manifest = json.loads((tmp_path / f"trail.{label(-6)}.manifest.json").read_text(encoding="utf-8"))
    assert manifest["partition"] == table(-6) and manifest["events"] == 3
    assert (manifest["first_id"], manifest["last_id"]) == (oldest[0], oldest[-1])
    assert manifest["sha256"] == hashlib.sha256(month_file.read_bytes()).hexdigest()
    [seal_link] = manifest["seals"]
    assert seal_link["first_id"] <= oldest[0] and seal_link["last_id"] >= oldest[-1]
    assert [link["kind"] for link in links(app)].count("prune") == 3  # two months, one batch
    report = verify(app)
    assert report.ok, report
    code, output = run(app, "verify")
    assert code == 0, output


def test_dry_run_names_the_months_and_drops_nothing(make_app: MakeApp) -> None:
    app = partitioned(make_app)
    record(app, 2, occurred_at=mid(-6))
    record(app)
    code, output = run(app, "prune", "--dry-run")
    assert code == 0, output
    assert output.startswith("Dry run: 2 event(s) older than ")
    assert f"would drop month(s) {label(-6)}, {label(-5)}" in output
    assert table(-6) in names(app) and len(event_ids(app)) == 4  # with audit.enabled


def test_a_month_a_tenant_keeps_stays_and_its_other_rows_go_in_batches(make_app: MakeApp) -> None:
    app = partitioned(make_app, AUDIT_TENANT_RETENTION_DAYS={"acme": 400})
    with app.app_context():
        audit = audit_of(app)
        kept = audit.record("team.created", tenant_id="acme", occurred_at=mid(-6)).id
        gone = audit.record("team.created", tenant_id="other", occurred_at=mid(-6)).id
        audit.record("team.created", tenant_id="other", occurred_at=mid(-5))
    record(app)
    code, output = run(app, "prune", "--dry-run")
    assert code == 0 and (
        f"kept month {label(-6)}: a tenant's longer retention window keeps some of its events" in output
    ), output
    result = prune(app)
    by_name = {month.name: month for month in result.months}
    assert by_name[table(-6)].kept == "a tenant's longer retention window keeps some of its events"
    assert by_name[table(-5)].kept is None
    assert table(-6) in names(app) and table(-5) not in names(app)
    ids = event_ids(app)
    assert kept in ids and gone not in ids
    assert result.count == 2


def test_the_month_of_the_newest_event_stays(make_app: MakeApp) -> None:
    app = partitioned(make_app)
    record(app, occurred_at=mid(-6))
    newest = record(app, occurred_at=mid(-5))  # after audit.enabled: the newest of the trail
    result = prune(app)
    by_name = {month.name: month.kept for month in result.months}
    assert by_name[table(-5)] == "it holds the newest event, which always stays"
    assert by_name[table(-6)] is None
    assert event_ids(app) == [event_ids(app)[0], *newest]


def test_an_archive_setting_keeps_unarchived_months(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    app = partitioned(make_app, AUDIT_PRUNE_REQUIRE_ARCHIVE=True)
    record(app, occurred_at=mid(-6))
    record(app)
    result = prune(app, dry_run=True, require_archive=True)
    assert {month.kept for month in result.months} == {
        "it must be archived first and prune was given no archive"
    }
    code, output = run(app, "prune")
    assert code == 1
    assert "An archive is required before events are pruned: give prune an archive file." in output
    assert table(-6) in names(app)
    code, output = run(app, "prune", "--archive", str(tmp_path / "a.jsonl.gz"))
    assert code == 0 and f"dropped month(s) {label(-6)}, {label(-5)}" in output, output


def test_a_month_that_changed_under_prune_is_kept(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    """The archive must hold every event the plan counted, or the month stays."""
    app = partitioned(make_app)
    record(app, 2, occurred_at=mid(-6))
    with engine_of(app).connect() as conn:
        [month] = [each for each in months.plan(conn, utcnow(), keep=None, sealed_up_to=None) if each.count]
    stale = months.Month(month.name, month.start, month.end, 3, month.first_id, month.last_id)
    with pytest.raises(AuditError, match=rf"holds 2 events but {month.name} held 3"):
        months.write_month_archive(
            engine_of(app), tmp_path / "t.jsonl.gz", stale, 100, utcnow(), write_archive
        )
    assert month.name in names(app)


def test_detach_gives_way_to_a_long_reader_and_says_so(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a DEFAULT partition the DETACH is a plain one under a short lock timeout."""
    app = partitioned(make_app)
    record(app, occurred_at=mid(-6))
    with engine_of(app).connect() as conn:
        [month] = [each for each in months.plan(conn, utcnow(), keep=None, sealed_up_to=None) if each.count]
    monkeypatch.setattr(months, "DETACH_ATTEMPTS", 2)
    reader = engine_of(app).connect()
    try:
        reader.execute(sa.text("SELECT count(*) FROM audit_event")).scalar()  # holds ACCESS SHARE
        with pytest.raises(AuditError, match=rf"^Could not detach {month.name}: other sessions held"):
            months.detach_and_drop(engine_of(app), month)
        record(app)  # the attempts gave up and left no lock behind
    finally:
        reader.rollback()
        reader.close()
    months.detach_and_drop(engine_of(app), month)
    assert month.name not in names(app)


def test_without_a_default_partition_months_detach_concurrently(make_app: MakeApp) -> None:
    app = partitioned(make_app)
    with engine_of(app).begin() as conn:
        conn.exec_driver_sql("DROP TABLE audit_event_default")
    old = record(app, occurred_at=mid(-6))
    record(app)
    result = prune(app)
    assert [month.name for month in result.months if month.kept is None][:2] == [table(-6), table(-5)]
    assert not set(old) & set(event_ids(app))
    with engine_of(app).connect() as conn:  # no partition left half-detached
        pending = conn.scalar(sa.text("SELECT count(*) FROM pg_inherits WHERE inhdetachpending"))
    assert pending == 0


def test_a_plain_trail_has_no_months(make_app: MakeApp) -> None:
    app = make_app()
    record(app, occurred_at=mid(-6))
    record(app)
    result = prune(app)
    assert result.months == () and result.count == 1


def test_an_account_that_does_not_own_the_months_keeps_them(make_app: MakeApp) -> None:
    """The least-privilege role cannot drop tables: its plan keeps every month, saying why."""
    app = partitioned(make_app)
    record(app, occurred_at=mid(-6))
    record(app)
    role = f"fa_reader_{uuid.uuid4().hex[:8]}"
    engine = engine_of(app)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        conn.exec_driver_sql(f"GRANT SELECT ON audit_event, audit_seal TO {role}")
    reader = sa.create_engine(engine.url.set(username=role), poolclass=sa.pool.NullPool)
    try:
        with reader.connect() as conn:
            planned = months.plan(conn, utcnow() - dt.timedelta(days=90), keep=None, sealed_up_to=None)
        assert planned and {month.kept for month in planned} == {
            "this account does not own the partition: the owner of the audit tables prunes months"
        }
    finally:
        reader.dispose()
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")


def test_a_month_that_gained_events_is_detached_but_not_dropped(make_app: MakeApp) -> None:
    app = partitioned(make_app)
    record(app, 2, occurred_at=mid(-6))
    with engine_of(app).connect() as conn:
        [month] = [each for each in months.plan(conn, utcnow(), keep=None, sealed_up_to=None) if each.count]
    planned = months.Month(month.name, month.start, month.end, 1, month.first_id, month.last_id)
    try:
        with pytest.raises(AuditError, match=rf"^{month.name} holds 2 events, not the 1 prune archived"):
            months.detach_and_drop(engine_of(app), planned)
        assert month.name not in names(app)
        with engine_of(app).connect() as conn:
            assert conn.scalar(sa.text(f"SELECT count(*) FROM {month.name}")) == 2
    finally:
        with engine_of(app).begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {month.name}")


@pytest.fixture
def accounts(db_url: str) -> c.Iterator[Accounts]:
    """An owner and a runtime role; the owner takes over the trigger functions that earlier
    tests' tables left in the module's database, as a fresh database would have none."""
    for made in make_accounts("postgresql", db_url):
        admin = sa.create_engine(made.database_url, poolclass=sa.pool.NullPool)
        with admin.begin() as conn:
            query = "SELECT oid::regprocedure::text FROM pg_proc WHERE proname LIKE 'audit%%'"
            for signature in list(conn.exec_driver_sql(query).scalars()):
                conn.exec_driver_sql(f"ALTER FUNCTION {signature} OWNER TO {made.owner}")
        admin.dispose()
        yield made


def test_the_runtime_role_keeps_the_months_and_prunes_their_rows_in_batches(
    accounts: Accounts, tmp_path: pathlib.Path
) -> None:
    """The least-privilege role may not drop tables: its prune deletes through the owner's routine."""
    config = {"AUDIT_PG_PARTITIONS": "monthly", "AUDIT_SPOOL_PATH": str(tmp_path / "spool.jsonl")}
    owner = create_app(SQLALCHEMY_DATABASE_URI=accounts.url(accounts.owner), **config)
    runtime = create_app(SQLALCHEMY_DATABASE_URI=accounts.url(accounts.runtime), **config)
    try:
        with owner.app_context():
            db(owner).create_all()
            engine = db(owner).engine
            with engine.begin() as conn:
                partitions.ensure(conn, since=month_start(-6).date())
            grants.apply(engine, accounts.runtime, audit_of(owner).config.retention_days)
        old = record(runtime, 2, occurred_at=mid(-6))
        record(runtime)
        code, output = run(runtime, "prune")
        assert code == 0, output
        assert f"kept month {label(-6)}: this account does not own the partition" in output
        assert output.startswith("Pruned 2 event(s) older than "), output
        assert table(-6) in names(owner)
        assert not set(old) & set(event_ids(owner))
    finally:
        for app in (runtime, owner):
            with app.app_context():
                db(app).session.remove()
                writer_of(app).writer.dispose()
                for each in db(app).engines.values():
                    each.dispose()
