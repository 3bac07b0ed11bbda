"""The search box on the audit page: filtering, errors with a caret, clean URLs, suggestions."""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse

import pytest

from ..conftest import MakeApp
from ..views_fixtures import activities
from ..views_fixtures import build_site
from ..views_fixtures import PREFIX
from ..views_fixtures import Site
from ..views_fixtures import TENANT_LOADER
from ..views_fixtures import utcnow

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def page(site: Site, query: str = "", *, status: int = 200) -> str:
    response = site.client(site.admin).get(f"{PREFIX}/{query}")
    assert response.status_code == status, response.text
    return response.text


def _site(make_app: MakeApp) -> Site:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    now = utcnow()
    ev = site.event
    site.insert(
        ev(
            "user.login",
            tenant_id="acme",
            actor_email="priya@acme.test",
            activity="priya in",
            occurred_at=now,
        ),
        ev(
            "user.login_failed", tenant_id="acme", actor_email="Priya.Shah@acme.test", activity="priya failed"
        ),
        ev(
            "team.updated",
            tenant_id="acme",
            team="Équipe Zoë",
            actor_email="bob@acme.test",
            activity="bob renamed",
        ),
        ev(
            "team.created", tenant_id="acme", team="Growth", activity="growth made", occurred_at=now - 3 * DAY
        ),
        ev("user.login", tenant_id="globex", actor_email="priya@globex.test", activity="globex priya"),
    )
    return site


def test_the_search_narrows_the_table_and_keeps_its_text(make_app: MakeApp, backend: str) -> None:
    site = _site(make_app)
    html = page(site, "?q=" + urllib.parse.quote("actor:PRIYA -outcome:failure"))
    assert activities(html) == ["priya in"]
    assert 'name="q" value="actor:PRIYA -outcome:failure"' in html
    team = page(site, "?q=" + urllib.parse.quote('team:"équipe zoë" team:gro'))
    # "é" finds "É" where the database folds it: not SQLite, whose lower() knows only ASCII.
    assert set(activities(team)) == {"growth made"} | (set() if backend == "sqlite" else {"bob renamed"})
    assert activities(page(site, "?q=priya&entity=Login&outcome=failure")) == ["priya failed"]
    assert "No events match these filters" in page(site, "?q=nothing-like-this")


def test_the_chart_counts_what_the_search_finds(make_app: MakeApp) -> None:
    """Past days are counted once and kept: per search, not shared with the unfiltered page."""
    site = _site(make_app)
    assert "<strong>4</strong> events" in page(site)
    assert "<strong>1</strong> event" in page(site, "?q=team:growth")
    assert "<strong>2</strong> events" in page(site, "?q=actor:priya")
    assert "<strong>4</strong> events" in page(site)
    week = (utcnow() - 5 * DAY).date()
    narrowed = page(site, f"?q=created:{week}..{(utcnow() - 2 * DAY).date()}")
    assert "<strong>1</strong> event" in narrowed and activities(narrowed) == ["growth made"]


@pytest.mark.parametrize(
    ("query", "message", "caret"),
    [
        (
            "acter:priya",
            "Unknown qualifier &#39;acter:&#39; at column 1 (try actor:).",
            "acter:priya\n^^^^^^",
        ),
        (
            "team:x action:rename",
            "Unknown action &#39;rename&#39; at column 15. Choose one of:",
            "team:x action:rename\n              ^^^^^^",
        ),
        ('x "open', "The quote at column 3 is not closed", 'x "open\n  ^^^^^'),
    ],
)
def test_a_bad_search_points_at_the_token(make_app: MakeApp, query: str, message: str, caret: str) -> None:
    site = _site(make_app)
    html = page(site, "?q=" + urllib.parse.quote(query), status=400)
    assert message in html
    assert '<div class="fa-alert" role="alert">' in html
    pre = re.search(r'<pre class="fa-search-caret" aria-hidden="true">(.*?)</pre>', html, re.S)
    assert pre is not None and pre.group(1).replace("&#34;", '"') == caret
    assert 'aria-invalid="true" aria-describedby="fa-search-error"' in html
    assert activities(html) == []


def test_other_errors_show_no_caret(make_app: MakeApp) -> None:
    html = page(_site(make_app), "?start=2026-02-30", status=400)
    assert "fa-search-caret" not in html and "aria-invalid" not in html


@pytest.mark.backends("sqlite")
def test_a_network_sqlite_cannot_compare_is_a_message(make_app: MakeApp, backend: str) -> None:
    site = _site(make_app)
    html = page(site, "?q=ip:10.0.0.0/12", status=400)
    assert "cannot be searched on SQLite" in html and activities(html) == []
    response = site.client(site.admin).get(f"{PREFIX}/api/events?q=ip:10.0.0.0/12")
    assert response.status_code == 400 and "cannot be searched on SQLite" in response.json["error"]  # type: ignore[index]


def test_a_form_with_blank_fields_redirects_to_a_clean_url(make_app: MakeApp) -> None:
    site = _site(make_app)
    client = site.client(site.admin)
    sent = "q=actor%3Apriya&entity=&event_type=&action=&outcome=&actor=&team=+&start=&end=&tz=UTC&keep=1"
    response = client.get(f"{PREFIX}/?{sent}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"{PREFIX}/?q=actor:priya&tz=UTC&keep=1"
    assert client.get(f"{PREFIX}/?q=&actor=").headers["Location"] == f"{PREFIX}/"
    # The value the page reads is the first one: a blank first value means no filter.
    assert client.get(f"{PREFIX}/?actor=&actor=x").headers["Location"] == f"{PREFIX}/"
    # Other parameters pass through as they came, even ones url_for would read as options.
    odd = client.get(f"{PREFIX}/?_external=1&_scheme=javascript&team=&x=%C3%A9%20%26")
    assert odd.headers["Location"] == f"{PREFIX}/?_external=1&_scheme=javascript&x=%C3%A9+%26"
    assert client.get(f"{PREFIX}/?q=actor:priya").status_code == 200


def test_links_and_the_export_carry_the_search(make_app: MakeApp) -> None:
    from flask_mail import Mail

    site = _site(make_app)
    site.app.config["MAIL_DEFAULT_SENDER"] = "audit@acme.test"
    Mail(site.app)
    site.insert(
        *site.series(60, every=dt.timedelta(minutes=1), tenant_id="acme", actor_email="ann@acme.test")
    )
    html = page(site, "?q=actor:ann")
    older = re.search(r'href="([^"]+)" rel="next"', html)
    assert older is not None and "q=actor:ann" in older.group(1)
    second = page(site, older.group(1).replace("&amp;", "&").removeprefix(PREFIX + "/"))
    assert activities(second) == [f"Event {n}" for n in range(50, 60)]
    assert 'form="fa-filter-form"' in html and 'name="q" value="actor:ann"' in html  # export sends q


def test_suggestions_are_recent_values_of_the_admins_tenant(make_app: MakeApp) -> None:
    site = _site(make_app)
    html = page(site)
    actors = re.search(r'<datalist id="fa-actors">(.*?)</datalist>', html, re.S)
    teams = re.search(r'<datalist id="fa-teams">(.*?)</datalist>', html, re.S)
    terms = re.search(r'<datalist id="fa-search-values">(.*?)</datalist>', html, re.S)
    assert actors is not None and teams is not None and terms is not None
    # Most recent first: bob's rename, Priya's failure, priya's sign-in (an hour ago).
    assert re.findall(r'value="([^"]*)"', actors.group(1)) == [
        "bob@acme.test",
        "Priya.Shah@acme.test",
        "priya@acme.test",
    ]
    assert set(re.findall(r'value="([^"]*)"', teams.group(1))) == {"Équipe Zoë", "Growth"}
    assert "actor:priya@acme.test" in terms.group(1) and "team:&#34;Équipe Zoë&#34;" in terms.group(1)
    assert "globex" not in html
    assert 'list="fa-actors"' in html and 'list="fa-teams"' in html and 'list="fa-search-values"' in html


def test_suggestions_come_from_the_newest_events_and_stop_at_fifty(make_app: MakeApp) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    now = utcnow()
    site.insert(
        *[
            site.event(
                tenant_id="acme",
                actor_email=f"user{n:02d}@acme.test",
                occurred_at=now - n * dt.timedelta(minutes=1),
            )
            for n in range(70)
        ]
    )
    actors = re.search(r'<datalist id="fa-actors">(.*?)</datalist>', page(site), re.S)
    assert actors is not None
    assert re.findall(r'value="([^"]*)"', actors.group(1)) == [f"user{n:02d}@acme.test" for n in range(50)]


def test_the_syntax_is_explained_without_script(make_app: MakeApp) -> None:
    html = page(_site(make_app))
    assert '<details class="fa-search__help">' in html and "<summary>Search syntax</summary>" in html
    assert "<script" not in html.lower()
    assert html.index('name="q"') < html.index('name="entity"')  # the search box comes first
