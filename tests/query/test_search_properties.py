"""Generated searches on every backend find exactly what the Python oracle says, in scope.

The oracle (:mod:`tests.query.search_oracle`) is the language's meaning written without
SQL; each generated search runs as typed (``LIKE``), with its prefixes narrowed to stored
values, and as a page, for tenant ``acme`` only.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import sqlalchemy as sa
from hypothesis import assume
from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings

from flask_audit.query.filters import AuditFilter
from flask_audit.query.resolve import resolve
from flask_audit.query.search import SearchError
from flask_audit.query.sql import conditions
from flask_audit.query.sql import fetch_page
from flask_audit.query.sql import Scope
from flask_audit.store.models import audit_event_table

from ..conftest import audit_of
from ..conftest import MakeApp
from ..views_fixtures import build_site
from . import search_oracle as oracle

EXAMPLES = {"sqlite": 120, "postgresql": 40, "mariadb": 40}
#: Days are read in the display zone: UTC+14 moves every day boundary.
ZONE = "Pacific/Kiritimati"
SCOPE = Scope(retention_days=90, tenant_scoped=True, tenant_id="acme")


def test_generated_searches_match_the_oracle(make_app: MakeApp, backend: str) -> None:
    site = build_site(make_app)
    now = dt.datetime.now(dt.timezone.utc)
    stored = oracle.rows(now)
    site.insert(*[{**site.event("team.created"), **row} for row in stored])  # every column given
    with site.app.app_context():
        engine = audit_of(site.app)._state().engine
    cols = audit_event_table.c
    with engine.connect() as conn:
        by_id = {row.id: dict(row._mapping) for row in conn.execute(sa.select(audit_event_table))}
    fold = oracle.fold_for(backend)
    window = now - dt.timedelta(days=90)
    in_scope = [row for row in by_id.values() if row["tenant_id"] == "acme" and row["occurred_at"] >= window]

    @settings(
        max_examples=EXAMPLES[backend],
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(query=oracle.searches(now, sqlite=backend == "sqlite"))
    def check(query: str) -> None:
        try:
            flt = AuditFilter.from_args({"q": query}, timezone=ZONE)
        except SearchError:
            assume(False)
            raise
        assert flt.q is not None
        expected = {row["id"] for row in in_scope if oracle.matches(row, flt.q, fold)}
        with engine.connect() as conn:
            narrowed = resolve(conn, flt, tenant_scoped=True, tenant_id="acme")
            for each in (flt, narrowed):
                stmt = sa.select(cols.id).where(*conditions(each, now=now, **SCOPE))
                assert {ident for (ident,) in conn.execute(stmt)} == expected, each
            page = fetch_page(conn, flt, limit=200, now=now, **SCOPE)
        assert all(row.tenant_id == "acme" for row in page.rows)
        assert [row.id for row in page.rows] == sorted(
            expected, key=lambda ident: (by_id[ident]["occurred_at"], ident), reverse=True
        )

    check()


def test_the_oracle_agrees_with_itself_on_a_known_search() -> None:
    """The oracle's reading, checked by hand once: the property rests on it."""
    now = dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc)
    flt = AuditFilter.from_args({"q": 'actor:PRIYA -team:"équipe" ip:10.0.0.0/8 signed'})
    assert flt.q is not None
    row: dict[str, t.Any] = {
        "actor_email": "priya@acme.test",
        "team": "Équipe Zoë",
        "ip": "10.1.2.3",
        "activity": "Signed in",
        "occurred_at": now,
    }
    assert oracle.matches(row, flt.q, oracle.ascii_fold)  # SQLite: É is not é
    assert not oracle.matches(row, flt.q, str.lower)  # PostgreSQL, MariaDB: it is
    assert not oracle.matches({**row, "ip": "unknown"}, flt.q, oracle.ascii_fold)
    assert oracle.matches({**row, "team": None}, flt.q, str.lower)
