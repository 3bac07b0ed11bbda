"""Values the filter form suggests: the actors and teams of the latest events in scope.

Read from the newest :data:`SAMPLE` events of the window (one short index range, however
long the trail), most recent first, and kept for a minute per tenant scope so that a warm
page costs nothing more.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import sqlalchemy as sa

from ..store.models import audit_event_table
from .filters import AuditFilter
from .search import quote
from .sql import conditions
from .sql import Executor
from .sql import Scope

#: How many of the newest events are read, and how many values of each kind are offered.
SAMPLE = 1000
LIMIT = 50


@dataclasses.dataclass(frozen=True)
class Suggestions:
    """Distinct actor emails and team names, most recently seen first."""

    actors: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()

    @property
    def terms(self) -> list[str]:
        """The same values as search terms, ``actor:...`` and ``team:...``."""
        return [f"actor:{quote(v)}" for v in self.actors] + [f"team:{quote(v)}" for v in self.teams]


def recent_values(
    executor: Executor,
    *,
    retention_days: int,
    tenant_scoped: bool,
    tenant_id: str | None,
    now: dt.datetime | None = None,
    sample: int = SAMPLE,
    limit: int = LIMIT,
) -> Suggestions:
    """Up to ``limit`` actors and teams among the newest ``sample`` events in the scope."""
    cols = audit_event_table.c
    scope = Scope(retention_days=retention_days, tenant_scoped=tenant_scoped, tenant_id=tenant_id)
    stmt = (
        sa.select(cols.actor_email, cols.team)
        .where(*conditions(AuditFilter(), now=now, **scope))
        .order_by(cols.occurred_at.desc(), cols.id.desc())
        .limit(sample)
    )
    actors: dict[str, None] = {}
    teams: dict[str, None] = {}
    for actor, team in executor.execute(stmt):
        if actor and len(actors) < limit:
            actors.setdefault(actor)
        if team and len(teams) < limit:
            teams.setdefault(team)
    return Suggestions(tuple(actors), tuple(teams))


class SuggestionCache:
    """:func:`recent_values` per tenant scope, each kept for ``ttl``."""

    def __init__(self, ttl: dt.timedelta = dt.timedelta(minutes=1), max_entries: int = 256) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[tuple[bool, str | None], tuple[dt.datetime, Suggestions]] = {}
        self._lock = threading.Lock()

    def get(self, executor: Executor, scope: Scope, now: dt.datetime) -> Suggestions:
        key = (scope["tenant_scoped"], scope["tenant_id"])
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        found = recent_values(executor, now=now, **scope)
        with self._lock:
            if key not in self._entries and len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)), None)
            self._entries[key] = (now + self.ttl, found)
        return found
