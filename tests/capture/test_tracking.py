from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit import AuditConfigError
from flask_audit import TrackedBulkStatementError
from flask_audit.testing import record_events

from ..apps import Team
from ..apps import User
from ..conftest import audit_of
from ..conftest import db
from ..conftest import MakeApp
from ..conftest import stored


@pytest.fixture
def tracked(make_app: MakeApp) -> Flask:
    return make_app(TEST_TRACK_MODELS=True)


def test_insert_update_delete_become_events_on_commit(tracked: Flask) -> None:
    with tracked.app_context():
        session = db(tracked).session
        team = Team(name="Growth")
        session.add(team)
        session.commit()
        team.name = "Expansion"
        session.commit()
        session.delete(team)
        session.commit()
        team_id = str(team.id)
    created, renamed, deleted = stored(tracked)
    assert (created.event_type, created.action, created.activity) == (
        "team.created",
        "create",
        "Created team Growth",
    )
    assert (created.target_type, created.target_id, created.details) == (
        "team",
        team_id,
        {"values": {"name": "Growth"}},
    )
    assert (renamed.event_type, renamed.activity) == ("team.updated", "Renamed team Growth to Expansion")
    assert renamed.details == {"changes": {"name": ["Growth", "Expansion"]}}
    assert (deleted.event_type, deleted.action, deleted.activity) == (
        "team.deleted",
        "delete",
        "Deleted team Expansion",
    )


def test_rolled_back_change_leaves_no_event(tracked: Flask) -> None:
    with tracked.app_context(), record_events(tracked) as seen:
        session = db(tracked).session
        session.add(Team(name="Growth"))
        session.flush()
        session.rollback()
    assert stored(tracked) == [] and seen == []


def test_events_are_announced_after_commit_only(tracked: Flask) -> None:
    with tracked.app_context(), record_events(tracked) as seen:
        session = db(tracked).session
        session.add(Team(name="Growth"))
        session.flush()
        assert seen == []
        session.commit()
    assert [e.event_type for e in seen] == ["team.created"]
    assert seen[0].id == stored(tracked)[0].id


def test_untracked_fields_and_unchanged_values_make_no_event(tracked: Flask) -> None:
    with tracked.app_context():
        session = db(tracked).session
        user = User(email="bob@example.com", password="pw")
        session.add(user)
        session.commit()
        user.password = "new"  # not a tracked field
        session.commit()
        user.email = "bob@example.com"  # same value
        session.commit()
    assert [e.event_type for e in stored(tracked)] == ["user.created"]


def test_role_field_yields_role_updated(tracked: Flask) -> None:
    with tracked.app_context():
        session = db(tracked).session
        user = User(email="bob@example.com", password="pw", role="member")
        session.add(user)
        session.commit()
        user.role = "admin"
        user.email = "robert@example.com"
        session.commit()
    created, role, updated = stored(tracked)
    assert created.event_type == "user.created"
    assert (role.event_type, role.entity, role.action) == ("role.updated", "Role", "update")
    assert role.activity == "Changed role of robert@example.com from Member to Admin"
    assert role.details == {"before": "member", "after": "admin"}
    assert updated.details == {"changes": {"email": ["bob@example.com", "robert@example.com"]}}


def test_tracked_change_in_a_request_carries_the_context(tracked: Flask) -> None:
    with tracked.test_request_context(environ_base={"REMOTE_ADDR": "192.0.2.9"}):
        session = db(tracked).session
        session.add(Team(name="Growth"))
        session.commit()
    [event] = stored(tracked)
    assert (event.ip, event.actor_email) == ("192.0.2.9", None)


@pytest.mark.parametrize("verb", ["update", "delete"])
def test_bulk_statements_on_tracked_models_are_refused(tracked: Flask, verb: str) -> None:
    with tracked.app_context():
        session = db(tracked).session
        stmt = sa.update(Team).values(name="x") if verb == "update" else sa.delete(Team)
        with pytest.raises(
            TrackedBulkStatementError, match=f"^A bulk {verb.upper()} on the tracked model Team"
        ):
            session.execute(stmt)
        session.rollback()


def test_bulk_statements_on_untracked_models_pass(app: Flask) -> None:
    with app.app_context():
        db(app).session.execute(sa.update(Team).values(name="x"))
        db(app).session.commit()


def test_unknown_field_is_a_clear_error(app: Flask) -> None:
    with pytest.raises(AuditConfigError, match="^Team has no mapped attribute 'colour'."):
        audit_of(app).track(Team, entity="Team", fields=["name", "colour"])


@pytest.mark.backends("sqlite")
def test_custom_entity_gets_custom_event_types(app: Flask) -> None:
    audit_of(app).track(Team, entity="Workspace", fields=["name"])
    with app.app_context():
        db(app).session.add(Team(name="Acme"))
        db(app).session.commit()
    [event] = stored(app)
    assert (event.event_type, event.entity, event.action) == ("workspace.created", "Workspace", "create")


def test_acting_as_names_the_actor_of_a_block_signed_in_or_not(tracked: Flask) -> None:
    """Inside a request nobody is signed in as, outside any request (the system otherwise),
    and nested: the innermost user is the actor; afterwards the usual actor again."""
    audit = audit_of(tracked)
    session = db(tracked).session
    with tracked.app_context():
        ann = User(email="ann@example.com", password="pw")
        session.add(ann)
        session.commit()
        bob = User(email="bob@example.com", password="pw")
        with tracked.test_request_context(), audit.acting_as(bob):
            session.add(bob)
            session.flush()  # the tracked insert is recorded here, as bob's
            with audit.acting_as(ann):
                audit.record("team.created")
            audit.record("team.deleted")
        session.commit()
        with audit.acting_as(ann):
            audit.record("team.updated")
        audit.record("team.renamed", entity="Team", action="update")
        session.remove()
    events = [(e.event_type, e.actor_email) for e in stored(tracked)]
    assert events == [
        ("user.created", "system"),
        ("user.created", "bob@example.com"),
        ("team.created", "ann@example.com"),
        ("team.deleted", "bob@example.com"),
        ("team.updated", "ann@example.com"),
        ("team.renamed", "system"),
    ]
