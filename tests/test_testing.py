from __future__ import annotations

import pytest
from flask import Flask

from flask_audit.testing import record_events

from .apps import add_user
from .conftest import audit_of
from .conftest import MakeApp

pytestmark = pytest.mark.backends("sqlite")


def test_record_events_yields_what_the_block_recorded(app: Flask) -> None:
    add_user(app, "bob@example.com")
    client = app.test_client()
    with record_events(app) as events:
        client.post("/record/team.created")
        client.post("/record/invite.sent")
    client.post("/record/team.deleted")
    assert [e.event_type for e in events] == ["team.created", "invite.sent"]
    assert all(e.id is not None for e in events)


def test_record_events_for_one_app_ignores_another(make_app: MakeApp) -> None:
    first, second = make_app(), make_app()
    with record_events(first) as events, record_events() as everything:
        with first.app_context():
            audit_of(first).record("team.created")
        with second.app_context():
            audit_of(second).record("team.deleted")
    assert [e.event_type for e in events] == ["team.created"]
    assert [e.event_type for e in everything] == ["team.created", "team.deleted"]
