"""Generated searches through the JSON API and the page: a 200 with exactly the caller's
tenant's matching rows, or a 400 with the parser's message; never a 500."""

from __future__ import annotations

import datetime as dt
import typing as t

import hypothesis.strategies as st
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from markupsafe import escape

from flask_audit.exceptions import InvalidFilterError
from flask_audit.query import search_sql
from flask_audit.query.filters import AuditFilter
from flask_audit.store.models import audit_event_table

from ..conftest import audit_of
from ..conftest import MakeApp
from ..query import search_oracle as oracle
from ..views_fixtures import activities
from ..views_fixtures import build_site
from ..views_fixtures import PREFIX
from ..views_fixtures import Site
from ..views_fixtures import TENANT_LOADER

EXAMPLES = {"sqlite": 80, "postgresql": 30, "mariadb": 30}
TENANTS = {"admin": "acme", "other_admin": "globex"}


def _settings(backend: str) -> settings:
    return settings(
        max_examples=EXAMPLES[backend],
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )


def _seeded(make_app: MakeApp, now: dt.datetime) -> tuple[Site, dict[int, dict[str, t.Any]]]:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    site.insert(*[{**site.event("team.created"), **row} for row in oracle.rows(now)])
    with site.app.app_context():
        engine = audit_of(site.app)._state().engine
    with engine.connect() as conn:
        rows = {row.id: dict(row._mapping) for row in conn.execute(sa.select(audit_event_table))}
    return site, rows


def _queries(now: dt.datetime, backend: str) -> st.SearchStrategy[str]:
    return st.one_of(oracle.searches(now, sqlite=backend == "sqlite"), oracle.BROKEN)


def _expected(
    query: str, rows: dict[int, dict[str, t.Any]], tenant: str, backend: str, now: dt.datetime
) -> str | list[int]:
    """The parser's message, or the ids the caller must get, newest first."""
    try:
        flt = AuditFilter.from_args({"q": query})
        reason = search_sql.unsupported(flt.q, backend)
        if reason is not None:
            raise InvalidFilterError(reason)
    except InvalidFilterError as err:
        return str(err)
    window = now - dt.timedelta(days=90)
    fold = oracle.fold_for(backend)
    found = [
        row
        for row in rows.values()
        if row["tenant_id"] == tenant
        and row["occurred_at"] >= window
        and (flt.q is None or oracle.matches(row, flt.q, fold))
    ]
    found.sort(key=lambda row: (row["occurred_at"], row["id"]), reverse=True)
    return [row["id"] for row in found]


@pytest.mark.parametrize("channel", ["api", "page"])
def test_any_search_answers_with_the_callers_rows_or_a_400(
    make_app: MakeApp, backend: str, channel: str
) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    site, rows = _seeded(make_app, now)
    by_activity = {row["activity"]: row["id"] for row in rows.values()}
    clients = {who: site.client(getattr(site, who)) for who in TENANTS}

    @_settings(backend)
    @given(query=_queries(now, backend), who=st.sampled_from(sorted(TENANTS)))
    def check(query: str, who: str) -> None:
        expected = _expected(query, rows, TENANTS[who], backend, now)
        if channel == "api":
            response = clients[who].get(f"{PREFIX}/api/events", query_string={"q": query, "limit": "500"})
            body = t.cast(dict[str, t.Any], response.get_json())
            if isinstance(expected, str):
                assert (response.status_code, body) == (400, {"error": expected})
                return
            assert response.status_code == 200, body
            assert [event["id"] for event in body["events"]] == expected
            assert all(event["tenant_id"] == TENANTS[who] for event in body["events"])
            return
        response = clients[who].get(f"{PREFIX}/", query_string={"q": query}, follow_redirects=True)
        html = response.get_data(as_text=True)
        if isinstance(expected, str):
            assert response.status_code == 400
            assert str(escape(expected)) in html and activities(html) == []
            return
        assert response.status_code == 200
        shown = [by_activity[text] for text in activities(html)]  # no activity needs escaping
        assert shown == expected[:50]

    check()
