"""One event on a page of its own: ``GET <AUDIT_URL_PREFIX>/events/<id>``.

Every stored field, the details as a definition list, before and after as a diff, and where
the event stands against its seal. The blueprint's admin check applies, and the event must be
in the admin's scope like every row of the list (the retention window, and with a tenant
loader the admin's tenant): another tenant's event is a 404, as a missing one is. The list's
query string rides along in both directions, so "Back to audit logs" returns to the same
filtered page.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t
import zoneinfo

import sqlalchemy as sa
from flask import abort
from flask import render_template
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue

from ..config import AuditConfig
from ..exceptions import InvalidFilterError
from ..integrity import event_status
from ..integrity.canonical import load_details
from ..integrity.canonical import UnreadableValue
from ..query import filters
from ..query import sql
from ..state import audit_state
from ..store.models import audit_event_table
from . import details as details_
from .presentation import event_times
from .views import blueprint
from .views import scope
from .views import TZ_COOKIE

#: The largest id a ``BIGINT`` holds; a longer number in the URL names no event.
MAX_ID = 2**63 - 1


@dataclasses.dataclass(frozen=True)
class EventPage:
    """What ``detail.html`` draws: the row (every column), its times, its details read and
    its seal status. ``unreadable`` says why stored details could not be read."""

    row: dict[str, t.Any]
    iso: str
    local: str
    utc: str
    changes: list[details_.Change]
    items: list[details_.Item]
    unreadable: str | None
    status: event_status.SealStatus
    sealed_on: str | None


@blueprint.get("/events/<int:event_id>")
def event_detail(event_id: int) -> ResponseReturnValue:
    """One event in the admin's scope, else 404."""
    state = audit_state()
    config = state.config
    if event_id > MAX_ID:
        abort(404)
    tzname = _timezone(config)
    tz = zoneinfo.ZoneInfo(tzname)
    with state.engine.connect() as conn:
        row = _load(conn, config, event_id)
        if row is None:
            abort(404, description="No such event in the audit log you can see.")
        status = event_status.seal_status(conn, row, config.seal_key)
    query = request.query_string.decode("utf-8", "replace")
    return render_template(
        "flask_audit/detail.html",
        event=_page(row, status, tz),
        tzname=tzname,
        back_url=url_for("audit.index") + (f"?{query}" if query else ""),
    )


def _load(conn: sa.Connection, config: AuditConfig, event_id: int) -> dict[str, t.Any] | None:
    """The event with every column, ``details`` as stored text, if the admin may see it."""
    where = sql.conditions(filters.AuditFilter(), **scope(config))
    columns = event_status.stored_columns(conn.dialect.name)
    query = sa.select(*columns).where(audit_event_table.c.id == event_id, *where)
    found = conn.execute(query).first()
    return None if found is None else dict(found._mapping)


def _timezone(config: AuditConfig) -> str:
    """The list's zone: ``tz`` passed along from it, else the remembered one, else the default.

    A zone that cannot be used falls back quietly: this page has no filters to correct.
    """
    for given in (request.args.get("tz"), request.cookies.get(TZ_COOKIE)):
        try:
            return filters.resolve_timezone(given, config.timezone)
        except InvalidFilterError:
            continue
    return config.timezone


def _page(row: dict[str, t.Any], status: event_status.SealStatus, tz: zoneinfo.ZoneInfo) -> EventPage:
    iso, local, utc = event_times(row["occurred_at"], tz)
    unreadable = None
    try:
        stored = load_details(row["details"])
    except UnreadableValue as err:
        stored, unreadable = None, err.reason
    changes, rest = details_.split(stored, subject=row["entity"] or "Value")
    return EventPage(
        row=row,
        iso=iso,
        local=local,
        utc=utc,
        changes=changes,
        items=details_.items(rest),
        unreadable=unreadable,
        status=status,
        sealed_on=_sealed_on(status.sealed_at, tz),
    )


def _sealed_on(when: dt.datetime | None, tz: zoneinfo.ZoneInfo) -> str | None:
    if when is None:
        return None
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M")
