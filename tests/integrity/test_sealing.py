from __future__ import annotations

import threading
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit import AuditConfigError
from flask_audit import AuditError
from flask_audit import SealMismatchError
from flask_audit.integrity import sealing
from flask_audit.integrity import verification

from ..conftest import audit_of
from ..sealing_fixtures import days_ago
from ..sealing_fixtures import engine_of
from ..sealing_fixtures import EVENTS
from ..sealing_fixtures import forged
from ..sealing_fixtures import insert
from ..sealing_fixtures import KEY
from ..sealing_fixtures import links
from ..sealing_fixtures import problem
from ..sealing_fixtures import record
from ..sealing_fixtures import seal
from ..sealing_fixtures import SEALS
from ..sealing_fixtures import swap
from ..sealing_fixtures import verify

sealed_app = pytest.mark.audit_config(AUDIT_SEAL_KEY=KEY)


# -- sealing ----------------------------------------------------------------------------------


def test_seal_without_a_key_is_refused(app: Flask) -> None:
    with pytest.raises(AuditConfigError, match=r"^Cannot seal the audit trail: AUDIT_SEAL_KEY is not set\."):
        sealing.seal(engine_of(app), None)
    with pytest.raises(
        AuditConfigError, match=r"^Cannot verify the audit trail: AUDIT_SEAL_KEY is not set\."
    ):
        verification.verify(engine_of(app), b"")


def test_seal_covers_every_committed_event_in_chained_links(app: Flask) -> None:
    ids = record(app, 9)
    result = seal(app, max_events=4)
    assert (result.seals, result.events, result.first_id, result.last_id) == (3, 10, 1, ids[-1])
    chain = links(app)
    assert [link["event_count"] for link in chain] == [4, 4, 2]
    assert [link["prev_hmac"] for link in chain] == [sealing.GENESIS, chain[0]["hmac"], chain[1]["hmac"]]
    assert result.head == chain[-1]["hmac"]
    again = seal(app)
    assert (again.seals, again.events) == (0, 0)
    more = record(app, 2)
    assert seal(app).first_id == more[0]
    report = verify(app)
    assert (report.ok, report.links, report.events, report.unsealed) == (True, 4, 12, 0)


def test_verify_counts_events_after_the_last_seal_as_unsealed(app: Flask) -> None:
    record(app, 3)
    seal(app)
    record(app, 2)
    report = verify(app)
    assert (report.ok, report.events, report.unsealed) == (True, 4, 2)


def test_nothing_sealed_yet_verifies_with_everything_unsealed(app: Flask) -> None:
    record(app, 2)
    report = verify(app)
    assert (report.ok, report.links, report.unsealed, report.head) == (True, 0, 3, sealing.GENESIS)


def test_concurrent_seal_runs_extend_one_chain(app: Flask) -> None:
    """``prev_hmac`` is unique: a run that loses the race seals what is left, never a fork."""
    record(app, 40)
    results: list[sealing.SealResult] = []
    threads = [threading.Thread(target=lambda: results.append(seal(app, max_events=5))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(result.events for result in results) == 41
    assert verify(app).ok
    chain = links(app)
    assert len({link["prev_hmac"] for link in chain}) == len(chain)


@pytest.mark.backends("postgresql", "mariadb")
def test_seal_waits_for_an_insert_still_in_flight(app: Flask) -> None:
    """Id 2 is taken by an open transaction when id 3 commits: the seal must not leave 2 out,
    and while it waits, writers go on: the seal holds no lock they could queue behind."""
    engine = engine_of(app)
    results: list[sealing.SealResult] = []
    waiting = threading.Event()
    sealer = threading.Thread(target=lambda: results.append(seal(app, on_wait=waiting.set)))
    with engine.connect() as slow:  # closed whatever happens: an open one would block teardown
        transaction = slow.begin()
        try:
            slow.execute(sa.insert(EVENTS), _row(app))
            slow_id = slow.scalar(sa.select(sa.func.max(EVENTS.c.id)))
            [fast_id] = record(app)
            assert fast_id > slow_id
            sealer.start()
            assert waiting.wait(20), "the seal never waited for the open transaction"
            [later_id] = record(app)  # a writer while the seal waits
            assert sealer.is_alive(), "the seal stopped waiting before the open transaction ended"
        finally:
            transaction.commit()
    sealer.join(30)
    assert results[0].last_id == fast_id
    assert results[0].events == 3
    report = verify(app)
    assert (report.ok, report.unsealed) == (True, 1)
    assert later_id > fast_id


@pytest.mark.backends("postgresql", "mariadb")
def test_a_seal_gives_up_on_a_transaction_that_stays_open(app: Flask) -> None:
    engine = engine_of(app)
    [done] = record(app)
    with engine.connect() as slow:
        transaction = slow.begin()
        try:
            slow.execute(sa.insert(EVENTS), _row(app))
            with pytest.raises(AuditError, match="a transaction that writes to audit_event is still open"):
                seal(app, timeout=0.3)
        finally:
            transaction.rollback()
    assert seal(app).last_id == done


def _row(app: Flask) -> dict[str, t.Any]:
    from flask_audit.store.rows import build_row

    with app.app_context():
        return build_row(audit_of(app).config, "team.created")


# -- every kind of damage --------------------------------------------------------------------


def test_intact_trail_verifies(app: Flask) -> None:
    record(app, 5)
    seal(app, max_events=2)
    report = verify(app)
    assert report.ok
    report.raise_for_problem()


def test_modified_event_is_named(app: Flask) -> None:
    ids = record(app, 6)
    seal(app, max_events=4)
    with forged(app) as conn:
        conn.execute(sa.update(EVENTS).where(EVENTS.c.id == ids[3]).values(actor_email="someone@else"))
    found = problem(app)
    assert (found.kind, found.event_id, found.seal_id) == ("modified", ids[3], 2)
    assert found.message == f"Event {ids[3]} was modified after seal 2 sealed it."
    with pytest.raises(SealMismatchError, match=f"^Event {ids[3]} was modified"):
        verify(app).raise_for_problem()


def test_details_change_is_a_modification(app: Flask) -> None:
    ids = record(app, 3)
    seal(app)
    with forged(app) as conn:
        conn.execute(sa.update(EVENTS).where(EVENTS.c.id == ids[1]).values(details={"n": 1, "x": 0}))
    assert (problem(app).kind, problem(app).event_id) == ("modified", ids[1])


def test_deleted_event_is_named(app: Flask) -> None:
    ids = record(app, 6)
    seal(app)
    with forged(app) as conn:
        conn.execute(sa.delete(EVENTS).where(EVENTS.c.id.in_([ids[2], ids[4]])))
    found = problem(app)
    assert (found.kind, found.event_id) == ("deleted", ids[2])
    assert found.message == f"Event {ids[2]} was deleted: seal 1 covers it and no prune removed it."


def test_deleting_an_old_event_is_caught_although_the_triggers_allow_it(app: Flask) -> None:
    """Outside the window the triggers let a DELETE through; only prune may make it."""
    record(app, 2)
    [old] = record(app, occurred_at=days_ago(100))
    record(app)
    seal(app)
    with engine_of(app).begin() as conn:
        assert conn.execute(sa.delete(EVENTS).where(EVENTS.c.id == old)).rowcount == 1
    assert (problem(app).kind, problem(app).event_id) == ("deleted", old)


def test_inserted_event_is_named(app: Flask) -> None:
    insert(app, [2, 3, 5, 6])
    seal(app)
    insert(app, [4])
    found = problem(app)
    assert (found.kind, found.event_id) == ("inserted", 4)
    assert found.message == "Event 4 was inserted into the range of seal 1 (ids 1 to 6)."


def test_reordered_events_are_named(app: Flask) -> None:
    ids = record(app, 5)
    seal(app)
    with forged(app) as conn:
        swap(conn, ids[1], ids[3])
    found = problem(app)
    assert (found.kind, found.event_id) == ("reordered", ids[1])
    assert found.message == f"Event {ids[1]} holds what seal 1 sealed as event {ids[3]}: reordered."


def test_removing_the_newest_sealed_events_is_named(app: Flask) -> None:
    ids = record(app, 6)
    seal(app, max_events=4)
    with forged(app) as conn:
        conn.execute(sa.delete(EVENTS).where(EVENTS.c.id >= ids[4]))
    found = problem(app)
    assert (found.kind, found.event_id) == ("truncated", ids[4])
    assert found.message == (
        f"The newest sealed events were removed: event {ids[4]} and every later one up to {ids[-1]} (seal 2)."
    )


def test_truncation_is_named_even_with_newer_unsealed_events(app: Flask) -> None:
    ids = record(app, 4)
    seal(app)
    record(app, 2)
    with forged(app) as conn:
        conn.execute(sa.delete(EVENTS).where(EVENTS.c.id == ids[-1]))
    assert (problem(app).kind, problem(app).event_id) == ("truncated", ids[-1])


def test_altered_seal_is_named(app: Flask) -> None:
    record(app, 4)
    seal(app, max_events=2)
    with forged(app) as conn:
        conn.execute(sa.update(SEALS).where(SEALS.c.id == 2).values(event_count=1))
    found = problem(app)
    assert (found.kind, found.seal_id) == ("seal_altered", 2)
    assert found.message.startswith("Seal 2 was altered: its HMAC does not match")


def test_removed_seal_breaks_the_chain(app: Flask) -> None:
    record(app, 6)
    seal(app, max_events=2)
    with forged(app) as conn:
        conn.execute(sa.delete(SEALS).where(SEALS.c.id == 2))
    found = problem(app)
    assert (found.kind, found.seal_id) == ("seal_removed", 3)
    assert found.message == "Seal 3 does not follow the chain: the link before it was removed."


def test_anchor_catches_removal_of_the_newest_seals_with_their_events(app: Flask) -> None:
    record(app, 3)
    seal(app)
    newest = record(app, 3)
    anchor = seal(app).head
    with forged(app) as conn:
        conn.execute(sa.delete(SEALS).where(SEALS.c.hmac == anchor))
        conn.execute(sa.delete(EVENTS).where(EVENTS.c.id.in_(newest)))
    assert verify(app).ok  # without an anchor the shorter chain is self-consistent
    found = problem(app, anchor=anchor)
    assert found.kind == "seal_removed"
    assert found.message == f"The chain does not contain the anchor {anchor}: the newest seals were removed."


def test_another_key_fails_on_the_first_seal(app: Flask) -> None:
    record(app, 2)
    seal(app)
    report = verification.verify(engine_of(app), b"another key")
    assert report.problem is not None
    assert (report.problem.kind, report.problem.seal_id) == ("seal_altered", 1)


# -- prune and verify agree ------------------------------------------------------------------


def _prune(app: Flask, **kwargs: t.Any) -> t.Any:
    from flask_audit.integrity import retention

    with app.app_context():
        state = audit_of(app)._state(app)
        return retention.prune(state.engine, state.config, **kwargs)


@sealed_app
def test_prune_through_the_middle_of_a_sealed_range_verifies(app: Flask) -> None:
    old = record(app, 5, occurred_at=days_ago(120))
    young = record(app, 3)
    seal(app, max_events=4)  # links: 1-4, 5-8, 9: the cutoff falls inside the second
    assert _prune(app).count == 5
    report = verify(app)
    assert report.ok, report.problem
    assert report.events == 1 + len(young)  # audit.enabled and the young ones
    with forged(app) as conn:
        conn.execute(sa.delete(EVENTS).where(EVENTS.c.id == young[0]))
    assert (problem(app).kind, problem(app).event_id) == ("deleted", young[0])
    assert old[-1] < young[0]


@sealed_app
def test_prune_that_stopped_half_way_still_verifies_and_checks_what_is_left(app: Flask) -> None:
    old = record(app, 4, occurred_at=days_ago(120))
    seal(app)
    sealing.append_prune(
        engine_of(app), KEY.encode(), first_id=old[0], last_id=0, count=4, cutoff=days_ago(90), removed=old
    )
    with engine_of(app).begin() as conn:
        conn.execute(sa.delete(EVENTS).where(EVENTS.c.id.in_(old[:2])))
    report = verify(app)
    assert (report.ok, report.pending_prune) == (True, 2)
    with forged(app) as conn:
        conn.execute(sa.update(EVENTS).where(EVENTS.c.id == old[3]).values(team="forged"))
    assert (problem(app).kind, problem(app).event_id) == ("modified", old[3])


# -- the database guard ----------------------------------------------------------------------


def test_database_refuses_to_change_or_remove_a_seal(app: Flask, backend: str) -> None:
    record(app)
    seal(app)
    for statement, verb in [
        ("UPDATE audit_seal SET event_count = 0", "UPDATE"),
        ("DELETE FROM audit_seal", "DELETE"),
    ]:
        with pytest.raises(sa.exc.DBAPIError, match=f"audit_seal is insert-only: {verb} refused"):
            with engine_of(app).begin() as conn:
                conn.exec_driver_sql(statement)
    if backend == "postgresql":
        with pytest.raises(sa.exc.DBAPIError, match="audit_seal is insert-only: TRUNCATE refused"):
            with engine_of(app).begin() as conn:
                conn.exec_driver_sql("TRUNCATE audit_seal")
    assert len(links(app)) == 1
