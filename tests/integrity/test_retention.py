from __future__ import annotations

import datetime as dt
import gzip
import json
import pathlib
import threading
import time
import typing as t
import zoneinfo

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit import AuditConfigError
from flask_audit import AuditError
from flask_audit.integrity import retention
from flask_audit.store.context import SYSTEM_ACTOR

from ..conftest import audit_of
from ..conftest import MakeApp
from ..conftest import stored
from ..sealing_fixtures import days_ago
from ..sealing_fixtures import engine_of
from ..sealing_fixtures import event_ids
from ..sealing_fixtures import forged
from ..sealing_fixtures import insert
from ..sealing_fixtures import KEY
from ..sealing_fixtures import links
from ..sealing_fixtures import problem
from ..sealing_fixtures import record
from ..sealing_fixtures import seal
from ..sealing_fixtures import utcnow
from ..sealing_fixtures import verify

sealed_app = pytest.mark.audit_config(AUDIT_SEAL_KEY=KEY)


def prune(app: Flask, **kwargs: t.Any) -> retention.PruneResult:
    with app.app_context():
        state = audit_of(app)._state(app)
        return retention.prune(state.engine, state.config, **kwargs)


# -- the window ------------------------------------------------------------------------------


@pytest.mark.parametrize("days", [89, 1])
def test_pruning_inside_the_window_is_refused(app: Flask, days: int) -> None:
    record(app, occurred_at=days_ago(100))
    with pytest.raises(ValueError) as info:
        prune(app, days=days)
    assert str(info.value) == (
        f"Refusing to prune inside the retention window: {days} days is less than AUDIT_RETENTION_DAYS (90);"
        " events younger than that are never deleted."
    )
    assert len(stored(app)) == 1


@pytest.mark.parametrize(("days", "message"), [(0, "days must be a positive whole number, not 0.")])
def test_nonsense_days_are_refused(app: Flask, days: int, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        prune(app, days=days)


def test_old_events_go_young_ones_stay(app: Flask) -> None:
    old = record(app, 3, occurred_at=days_ago(91))
    young = record(app, 2, occurred_at=days_ago(89))
    result = prune(app)
    assert (result.count, result.days, result.dry_run, result.sealed) == (3, 90, False, False)
    assert [event.id for event in stored(app)] == young
    assert not set(old) & set(event_ids(app))


def test_exactly_n_days_old_stays(app: Flask) -> None:
    """Older than N days means strictly before ``now - N days``; the edge itself stays."""
    now = utcnow() - dt.timedelta(seconds=1)  # the triggers' clock (SQLite: milliseconds) runs later
    cutoff = now - dt.timedelta(days=90)
    [edge] = record(app, occurred_at=cutoff)
    [older] = record(app, occurred_at=cutoff - dt.timedelta(microseconds=1))
    record(app)
    assert prune(app, now=now).cutoff == cutoff
    assert edge in event_ids(app)
    assert older not in event_ids(app)


@pytest.mark.audit_config(AUDIT_RETENTION_DAYS=30)
def test_more_days_than_the_window_keeps_more(app: Flask) -> None:
    [forty] = record(app, occurred_at=days_ago(40))
    [seventy] = record(app, occurred_at=days_ago(70))
    record(app)
    assert prune(app, days=60).count == 1
    assert forty in event_ids(app)
    assert seventy not in event_ids(app)


@pytest.mark.audit_config(AUDIT_TIMEZONE="Europe/Berlin")
def test_cutoff_is_computed_in_utc_across_a_daylight_saving_change(app: Flask) -> None:
    """Berlin moved to summer time on 2025-03-30: 90 local days back would be 13:00 UTC, not 12:00."""
    now = dt.datetime(2025, 4, 15, 14, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin"))  # 12:00 UTC
    cutoff = dt.datetime(2025, 1, 15, 12, 0, tzinfo=dt.timezone.utc)
    [before] = record(app, occurred_at=cutoff - dt.timedelta(microseconds=1))
    [at] = record(app, occurred_at=cutoff)
    [half_past] = record(app, occurred_at=cutoff + dt.timedelta(minutes=30))
    result = prune(app, now=now)
    assert result.cutoff == cutoff
    assert result.cutoff.utcoffset() == dt.timedelta(0)
    assert [event.id for event in stored(app)] == [at, half_past]
    assert before not in event_ids(app)


@pytest.mark.parametrize("zone", ["America/New_York", "Australia/Sydney", "UTC"])
def test_cutoff_for_any_zone_is_exact_24_hour_days(zone: str) -> None:
    now = dt.datetime(2025, 3, 9, 3, 30, tzinfo=zoneinfo.ZoneInfo(zone))
    assert retention.cutoff_for(90, now) == now.astimezone(dt.timezone.utc) - dt.timedelta(hours=90 * 24)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^now must be timezone-aware"):
        retention.cutoff_for(90, dt.datetime(2025, 1, 1))


def test_the_newest_event_stays_even_when_old(app: Flask) -> None:
    """Ids never restart: SQLite would hand out the highest rowid again."""
    ids = record(app, 3, occurred_at=days_ago(200))
    result = prune(app)
    assert (result.count, result.held_back) == (2, 1)
    assert [event.id for event in stored(app)] == ids[-1:]


# -- dry run, batches, archive, record ---------------------------------------------------------


def test_dry_run_counts_only(app: Flask) -> None:
    record(app, 4, occurred_at=days_ago(100))
    record(app)
    before = event_ids(app)
    result = prune(app, dry_run=True)
    assert (result.count, result.dry_run) == (4, True)
    assert event_ids(app) == before


def test_deletes_in_batches_with_progress(app: Flask) -> None:
    insert(app, range(2, 25), occurred_at=days_ago(100))
    record(app)
    seen: list[tuple[int, int]] = []
    result = prune(app, batch_size=7, progress=lambda done, total: seen.append((done, total)))
    assert result.count == 23
    assert seen == [(7, 23), (14, 23), (21, 23), (23, 23)]


def test_bad_batch_size_is_refused(app: Flask) -> None:
    with pytest.raises(ValueError, match=r"^batch_size must be a positive whole number, not 0\.$"):
        prune(app, batch_size=0)


def test_records_audit_pruned_as_the_system(app: Flask) -> None:
    record(app, 2, occurred_at=days_ago(100))
    record(app)
    now = utcnow()
    with app.app_context():
        state = audit_of(app)._state(app)
        result = retention.prune(state.engine, state.config, now=now, audit=audit_of(app))
    [event] = [event for event in stored(app) if event.event_type == "audit.pruned"]
    assert (event.actor_id, event.actor_email, event.action) == (SYSTEM_ACTOR, SYSTEM_ACTOR, "delete")
    cutoff = now - dt.timedelta(days=90)
    assert event.details == {
        "cutoff": cutoff.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "days": 90,
        "count": 2,
        "up_to_id": result.upper,
        "archive": None,
    }
    assert event.activity == f"Pruned 2 audit events older than {cutoff:%Y-%m-%d %H:%M:%S} UTC"


def test_archive_is_written_and_checked_before_deleting(app: Flask, tmp_path: pathlib.Path) -> None:
    old = record(app, 3, occurred_at=days_ago(100))
    record(app)
    target = tmp_path / "pruned.jsonl.gz"
    result = prune(app, archive=target, batch_size=2)
    assert result.archive == str(target)
    with gzip.open(target, "rt", encoding="utf-8") as archived:
        lines = [json.loads(line) for line in archived]
    assert [line["id"] for line in lines] == old
    assert lines[0]["event_type"] == "team.created"
    assert lines[0]["details"] == {"n": 0}
    assert lines[0]["occurred_at"].endswith("Z")
    assert not (tmp_path / "pruned.jsonl.gz.partial").exists()


def test_existing_archive_is_never_overwritten(app: Flask, tmp_path: pathlib.Path) -> None:
    record(app, 2, occurred_at=days_ago(100))
    record(app)
    target = tmp_path / "taken.gz"
    target.write_bytes(b"keep me")
    with pytest.raises(AuditError, match=f"^The archive {target} already exists: prune never overwrites"):
        prune(app, archive=target)
    assert target.read_bytes() == b"keep me"
    assert len(stored(app)) == 3


def test_archive_is_written_even_with_nothing_to_prune(app: Flask, tmp_path: pathlib.Path) -> None:
    """A scheduled run always leaves its file, so a missing file means a run that failed."""
    record(app)
    target = tmp_path / "empty.gz"
    assert prune(app, archive=target).count == 0
    with gzip.open(target, "rt", encoding="utf-8") as archived:
        assert archived.read() == ""


def test_archive_with_dry_run_is_refused(app: Flask, tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match=r"^An archive holds what prune deletes: it cannot be combined"):
        prune(app, dry_run=True, archive=tmp_path / "x.gz")


# -- sealed trails -------------------------------------------------------------------------------


@sealed_app
def test_sealed_trail_prune_seals_first_and_records_the_removal(app: Flask) -> None:
    old = record(app, 4, occurred_at=days_ago(100))
    record(app, 2)
    result = prune(app)
    assert (result.count, result.sealed) == (4, True)
    kinds = [link["kind"] for link in links(app)]
    assert kinds == ["seal", "prune"]
    prune_link = links(app)[-1]
    assert (prune_link["event_count"], prune_link["first_id"]) == (4, old[0])
    report = verify(app)
    assert (report.ok, report.unsealed) == (True, 0)


@sealed_app
def test_sealed_prefix_is_recorded_compactly(app: Flask) -> None:
    """Once the table's first events are old, the link says "everything up to N"."""
    insert(app, range(2, 30), occurred_at=days_ago(100))
    record(app)
    with forged(app) as conn:  # the table's own audit.enabled row is young: age it
        conn.execute(sa.text("UPDATE audit_event SET occurred_at = :t WHERE id = 1"), {"t": days_ago(100)})
    assert prune(app).count == 29
    assert links(app)[-1]["last_id"] == 29
    assert verify(app).pruned_up_to == 29
    assert verify(app).ok


@sealed_app
def test_pruning_again_after_new_events_still_verifies(app: Flask) -> None:
    record(app, 3, occurred_at=days_ago(100))
    record(app)
    prune(app)
    record(app, 2, occurred_at=days_ago(95))
    record(app)
    assert prune(app).count == 2
    seal(app)
    assert verify(app).ok


@sealed_app
def test_deletion_outside_prune_still_fails_after_a_prune(app: Flask) -> None:
    """After a prune, an old event that prune did not remove cannot go quietly either."""
    record(app, 2, occurred_at=days_ago(100))
    record(app)
    assert prune(app).count == 2
    [old] = record(app, occurred_at=days_ago(100))
    young = record(app, 2)
    seal(app)
    assert verify(app).ok
    with forged(app) as conn:
        conn.execute(sa.text("DELETE FROM audit_event WHERE id = :id"), {"id": young[0]})
    assert (problem(app).kind, problem(app).event_id) == ("deleted", young[0])
    with engine_of(app).begin() as conn:  # outside the window: the triggers let it through
        assert conn.execute(sa.text("DELETE FROM audit_event WHERE id = :id"), {"id": old}).rowcount == 1
    assert (problem(app).kind, problem(app).event_id) == ("deleted", old)


def test_sealed_trail_without_the_key_is_refused(make_app: MakeApp) -> None:
    app = make_app(AUDIT_SEAL_KEY=KEY)
    record(app, 2, occurred_at=days_ago(100))
    record(app)
    seal(app)
    unkeyed = make_app()
    with pytest.raises(AuditConfigError) as info:
        prune(unkeyed)
    assert str(info.value) == (
        "The audit trail is sealed, so prune must record what it removes in the seal chain:"
        " set AUDIT_SEAL_KEY to the key the seals were made with."
    )
    assert prune(unkeyed, dry_run=True).count == 2


# -- other writers keep going ----------------------------------------------------------------------


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
def test_writers_insert_between_batches(make_app: MakeApp, sealed: bool) -> None:
    """Each batch is its own transaction: a writer thread gets in between every two of them."""
    app = make_app(AUDIT_SEAL_KEY=KEY if sealed else None)
    insert(app, range(2, 302), occurred_at=days_ago(100))
    record(app)
    written: list[int] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            while not stop.is_set():
                written.extend(record(app))
        except Exception as err:
            errors.append(err)

    def progress(done: int, total: int) -> None:
        before, deadline = len(written), time.monotonic() + 20
        while len(written) == before and not errors:
            assert time.monotonic() < deadline, "no writer got in between two batches"
            time.sleep(0.001)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = prune(app, batch_size=30, progress=progress)
    finally:
        stop.set()
        thread.join(30)
    assert not errors
    assert result.count == 300
    assert set(written) <= set(event_ids(app))
    assert len(written) >= 10
    if sealed:
        seal(app)
        assert verify(app).ok
