"""Late writes: events stored after the fact carry ``late``, and only those.

A replayed spool line, an event recorded with an explicit ``occurred_at`` and one stored
more than ``AUDIT_LATE_AFTER_SECONDS`` after it happened are marked; an event stored as it
happens is not. ``flask audit verify`` relies on the mark to tell them from a row inserted
afterwards and dated into an already sealed period.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import time

import pytest
import sqlalchemy as sa
from flask import Flask

from ..apps import add_user
from ..apps import create_app
from ..apps import Team
from ..conftest import audit_of
from ..conftest import db
from ..conftest import MakeApp
from ..conftest import signed_in_client
from ..conftest import stored


def test_an_event_stored_as_it_happens_is_not_late(app: Flask) -> None:
    with app.app_context():
        returned = audit_of(app).record("user.login")
    assert returned.late is False
    assert [(e.event_type, e.late) for e in stored(app)] == [("user.login", False)]


def test_an_explicit_time_marks_the_event_late(app: Flask) -> None:
    then = dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.timezone.utc)
    with app.app_context():
        audit_of(app).record("role.updated", occurred_at=then, details={"imported": True})
        audit_of(app).record("role.updated")
    assert [(e.occurred_at, e.late) for e in stored(app)][0] == (then, True)
    assert [e.late for e in stored(app)] == [True, False]


@pytest.mark.audit_config(AUDIT_LATE_AFTER_SECONDS=1)
def test_a_joined_event_committed_long_after_it_happened_is_late(app: Flask) -> None:
    with app.app_context():
        session = db(app).session
        session.add(Team(name="Growth"))
        quick = audit_of(app).record("team.created", session=session)
        session.commit()
        session.add(Team(name="Platform"))
        slow = audit_of(app).record("team.created", session=session)
        time.sleep(1.3)  # the business transaction outlasts AUDIT_LATE_AFTER_SECONDS
        session.commit()
    assert (quick.late, slow.late) == (False, True)
    assert [e.late for e in stored(app)] == [False, True]


def test_a_replayed_spool_line_is_late(make_app: MakeApp, db_url: str, tmp_path: pathlib.Path) -> None:
    spool_path = str(tmp_path / "spool.jsonl")
    url = sa.make_url(db_url)
    if url.get_backend_name() == "sqlite":
        unreachable = f"sqlite:///{tmp_path / 'missing-folder' / 'audit.db'}"
    else:
        unreachable = url.set(port=1).render_as_string(hide_password=False)
    offline = create_app(
        SQLALCHEMY_DATABASE_URI=unreachable, AUDIT_SPOOL_PATH=spool_path, AUDIT_ON_WRITE_ERROR="spool"
    )
    with offline.app_context():
        audit_of(offline).record("user.login")
    online = make_app(AUDIT_SPOOL_PATH=spool_path)
    with online.app_context():
        audit_of(online).record("user.logout")
    result = online.test_cli_runner().invoke(args=["audit", "replay"])
    assert result.exit_code == 0, result.output
    assert [(e.event_type, e.late) for e in stored(online)] == [("user.logout", False), ("user.login", True)]


def test_the_page_and_the_api_show_the_mark(app: Flask) -> None:
    then = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)
    with app.app_context():
        audit_of(app).record("role.updated", activity="Imported role change", occurred_at=then)
        audit_of(app).record("role.updated", activity="Live role change")
    client = signed_in_client(app, add_user(app, "admin@example.com", is_admin=True))
    page = client.get("/admin/audit/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    imported, live = html.index("Imported role change"), html.index("Live role change")
    assert html.count('class="fa-badge fa-badge--late"') == 1
    badge = html.index("fa-badge--late")
    assert imported < badge and (live > badge or live < imported)  # the badge is in the imported row
    events = client.get("/admin/audit/api/events").get_json()["events"]
    assert {e["activity"]: e["late"] for e in events} == {
        "Imported role change": True,
        "Live role change": False,
        "Enabled the audit log": False,
    }
