"""The read-only JSON API: ``GET <AUDIT_URL_PREFIX>/api/events``.

The same filters, search (``q``), window and tenant scope as the page, with keyset
pagination (``next_cursor``) and a ``limit``. Errors are JSON too: 400 ``{"error": ...}``
for bad input (a search's says where it goes wrong), 401 and 403 from the blueprint's
admin check, never a redirect.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from flask import jsonify
from flask import request
from flask.typing import ResponseReturnValue

from ..exceptions import InvalidFilterError
from ..query import filters
from ..query import sql
from ..state import audit_state
from .views import blueprint
from .views import scope

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

#: The fields of each event, in the order the API documents them.
FIELDS = (
    "id",
    "uid",
    "occurred_at",
    "tenant_id",
    "team",
    "event_type",
    "entity",
    "action",
    "outcome",
    "activity",
    "actor_id",
    "actor_email",
    "ip",
    "user_agent",
    "request_id",
    "target_type",
    "target_id",
    "details",
    "late",
)


def iso_utc(when: dt.datetime) -> str:
    """ISO 8601 in UTC with microseconds and a ``Z``: ``2026-11-25T16:23:44.123456Z``."""
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def serialize(row: t.Any) -> dict[str, t.Any]:
    """One event as the API returns it."""
    data = {name: getattr(row, name) for name in FIELDS}
    data["occurred_at"] = iso_utc(row.occurred_at)
    data["details"] = row.details or {}
    return data


@blueprint.get("/api/events")
def api_events() -> ResponseReturnValue:
    """Events newest first: ``{"events": [...], "next_cursor": ..., "limit": n}``."""
    state = audit_state()
    config = state.config
    try:
        limit = filters.parse_limit(request.args.get("limit"), default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
        tzname = filters.resolve_timezone(request.args.get("tz"), config.timezone)
        flt = filters.AuditFilter.from_args(request.args, timezone=tzname)
        with state.engine.connect() as conn:
            page = sql.fetch_page(conn, flt, limit=limit, **scope(config))
    except InvalidFilterError as err:
        return jsonify(error=str(err)), 400
    return jsonify(
        events=[serialize(row) for row in page.rows],
        next_cursor=page.older.encode() if page.older else None,
        newer_cursor=page.newer.encode() if page.newer else None,
        limit=limit,
    )
