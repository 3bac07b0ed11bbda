"""One event against its seal: what the event detail page says about its integrity."""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit.integrity import event_status
from flask_audit.integrity import sealing
from flask_audit.integrity.event_status import SealStatus

from ..conftest import MakeApp
from ..sealing_fixtures import engine_of
from ..sealing_fixtures import EVENTS
from ..sealing_fixtures import forged
from ..sealing_fixtures import insert
from ..sealing_fixtures import KEY
from ..sealing_fixtures import links
from ..sealing_fixtures import record
from ..sealing_fixtures import seal
from ..sealing_fixtures import SEALS
from ..sealing_fixtures import utcnow

pytestmark = pytest.mark.audit_config(AUDIT_SEAL_KEY=KEY)


def status(app: Flask, event_id: int, key: str | None = KEY) -> SealStatus:
    """The status of ``event_id``, read the way the detail page reads it."""
    engine = engine_of(app)
    with engine.connect() as conn:
        columns = event_status.stored_columns(conn.dialect.name)
        row = conn.execute(sa.select(*columns).where(EVENTS.c.id == event_id)).one()._mapping
        return event_status.seal_status(conn, dict(row), None if key is None else key.encode())


def test_each_sealed_event_is_intact_in_the_seal_that_covers_it(app: Flask) -> None:
    ids = record(app, 5)
    seal(app, max_events=2)
    chain = links(app)
    assert [link["last_id"] for link in chain] == [ids[0], ids[2], ids[4]]  # audit.enabled is id 1
    expected = [chain[0], chain[1], chain[1], chain[2], chain[2]]
    for event_id, link in zip(ids, expected, strict=True):
        assert status(app, event_id) == SealStatus("intact", link["id"], link["sealed_at"])
        assert status(app, event_id).ok


def test_an_event_after_the_last_seal_is_not_sealed_yet(app: Flask) -> None:
    first = record(app, 2)
    seal(app)
    later = record(app, 1)
    assert status(app, first[1]).state == "intact"
    assert status(app, later[0]) == SealStatus("unsealed")
    assert status(app, later[0]).ok


def test_without_a_key_sealing_is_off(make_app: MakeApp) -> None:
    app = make_app()
    ids = record(app, 1)
    assert status(app, ids[0], key=None) == SealStatus("off")
    assert status(app, ids[0], key="").state == "off"


def test_a_changed_column_details_or_late_mark_is_a_modification(app: Flask) -> None:
    """The late mark is part of what a seal covers: a forger cannot excuse a row by marking it."""
    ids = record(app, 5)
    seal(app, max_events=2)
    changes: list[dict[str, t.Any]] = [{"actor_email": "x@y"}, {"details": {"n": 0, "x": 1}}, {"late": True}]
    with forged(app) as conn:
        for event_id, values in zip(ids[2:], changes, strict=True):
            conn.execute(sa.update(EVENTS).where(EVENTS.c.id == event_id).values(values))
    chain = links(app)
    found = status(app, ids[2])
    assert found == SealStatus("modified", chain[1]["id"], chain[1]["sealed_at"])
    assert not found.ok
    assert [status(app, event_id).state for event_id in ids] == ["intact"] * 2 + ["modified"] * 3


def test_a_late_event_sealed_as_late_is_intact(app: Flask) -> None:
    ids = record(app, 1, occurred_at=utcnow() - dt.timedelta(days=3))
    seal(app)
    with engine_of(app).connect() as conn:
        assert conn.scalar(sa.select(EVENTS.c.late).where(EVENTS.c.id == ids[0])) is True
    assert status(app, ids[0]).state == "intact"


def test_details_no_writer_stores_are_a_modification_that_says_why(app: Flask) -> None:
    ids = record(app, 2)
    seal(app)
    with forged(app) as conn:
        name = conn.dialect.name
        if name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE audit_event ALTER COLUMN details TYPE text USING details::text")
        elif name in ("mysql", "mariadb"):
            conn.exec_driver_sql("ALTER TABLE audit_event MODIFY details LONGTEXT NULL")
        conn.execute(sa.text("UPDATE audit_event SET details = '{not json' WHERE id = :id"), {"id": ids[1]})
    found = status(app, ids[1])
    assert found.state == "modified"
    assert found.reason is not None
    assert found.reason.startswith("its details cannot be read (not valid JSON: ")


def test_an_event_slipped_into_a_sealed_range_is_inserted(app: Flask) -> None:
    insert(app, [10, 20])
    seal(app)
    insert(app, [15])  # below the seal's last id: not what it sealed
    sealed = links(app)[0]
    assert status(app, 15) == SealStatus("inserted", sealed["id"], sealed["sealed_at"])
    assert status(app, 20).state == "intact"


def test_a_seal_that_fails_its_hmac_vouches_for_nothing(app: Flask) -> None:
    ids = record(app, 3)
    seal(app, max_events=2)
    chain = links(app)
    with forged(app) as conn:
        conn.execute(sa.update(SEALS).where(SEALS.c.id == chain[1]["id"]).values(event_count=99))
    assert status(app, ids[2]) == SealStatus("seal_altered", chain[1]["id"], chain[1]["sealed_at"])
    assert status(app, ids[0]).state == "intact"  # another seal
    assert status(app, ids[0], key="not-the-key-the-seals-were-made-with").state == "seal_altered"


def test_prune_links_are_not_seals(app: Flask) -> None:
    """A prune link's range reaches the id too; only a seal's manifest holds leaves."""
    ids = record(app, 2)
    seal(app)
    sealing.append_prune(
        engine_of(app), KEY.encode(), first_id=None, last_id=ids[-1] + 5, count=0, cutoff=utcnow()
    )
    assert status(app, ids[0]).state == "intact"
    newer = record(app, 1)
    assert status(app, newer[0]).state == "unsealed"
