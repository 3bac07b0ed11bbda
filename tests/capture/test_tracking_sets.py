"""Tracked collections read as whole sets, and bulk statements that set no tracked field pass."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import Flask

from flask_audit import TrackedBulkStatementError

from ..apps import Base
from ..apps import User
from ..conftest import audit_of
from ..conftest import db
from ..conftest import MakeApp
from ..conftest import stored

member_groups = sa.Table(
    "app_member_group",
    Base.metadata,
    sa.Column("member_id", sa.ForeignKey("app_member.id"), primary_key=True),
    sa.Column("group_id", sa.ForeignKey("app_group.id"), primary_key=True),
)


class Group(Base):
    __tablename__ = "app_group"

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    name: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64))


class Member(Base):
    __tablename__ = "app_member"

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    email: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(255))
    groups: sa_orm.Mapped[list[Group]] = sa_orm.relationship(secondary=member_groups)


@pytest.fixture
def tracked(make_app: MakeApp) -> Flask:
    app = make_app(TEST_TRACK_MODELS=True)
    audit_of(app).track(
        Member, entity="User", fields=["email", "groups"], field_events={"groups": "role.updated"}
    )
    return app


def test_a_collection_is_tracked_as_whole_sets_by_label(tracked: Flask) -> None:
    with tracked.test_request_context():
        session = db(tracked).session
        public, admin = Group(name="Public"), Group(name="Admin")
        member = Member(email="bob@example.com", groups=[public])
        session.add_all([public, admin, member])
        session.commit()
        member.groups.append(admin)
        session.commit()
        member.groups.remove(public)
        session.commit()
    events = [e for e in stored(tracked) if e.target_type == "user"]
    assert [(e.event_type, e.details) for e in events] == [
        ("user.created", {"values": {"email": "bob@example.com", "groups": ["Public"]}}),
        ("role.updated", {"before": ["Public"], "after": ["Admin", "Public"]}),
        ("role.updated", {"before": ["Admin", "Public"], "after": ["Admin"]}),
    ]
    assert events[1].activity == "Changed groups of bob@example.com from Public to Admin, Public"


def test_a_bulk_update_of_untracked_columns_passes(tracked: Flask) -> None:
    """Libraries run such statements on user tables (Flask-AppBuilder's sign-in timing guard)."""
    with tracked.app_context():
        session = db(tracked).session
        session.execute(sa.update(User).where(User.email == "nobody@example.com").values(password="x"))
        session.commit()
        with pytest.raises(TrackedBulkStatementError, match="^A bulk UPDATE on the tracked model User"):
            session.execute(sa.update(User).values(role="admin"))
        session.rollback()
