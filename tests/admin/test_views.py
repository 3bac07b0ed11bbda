from __future__ import annotations

import datetime as dt
import pathlib
import re
import typing as t
import zoneinfo

import pytest
from flask import Flask
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy

from flask_audit import Audit
from flask_audit.admin.views import TZ_COOKIE

from ..apps import Base
from ..apps import User
from ..conftest import audit_of
from ..conftest import MakeApp
from ..views_fixtures import activities
from ..views_fixtures import build_site
from ..views_fixtures import PREFIX
from ..views_fixtures import row_count
from ..views_fixtures import Site
from ..views_fixtures import TENANT_LOADER
from ..views_fixtures import utcnow

HOUR = dt.timedelta(hours=1)


def page(site: Site, query: str = "", *, status: int = 200) -> str:
    response = site.client(site.admin).get(f"{PREFIX}/{query}")
    assert response.status_code == status, response.text
    return response.text


def test_page_shows_the_columns_and_a_row(make_app: MakeApp) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    when = dt.datetime.now(dt.timezone.utc).replace(microsecond=123456) - HOUR
    site.insert(
        site.event(
            "role.updated",
            tenant_id="acme",
            team="Growth",
            activity="Changed role of bob@acme.test from Member to Admin",
            actor_email="alice@acme.test",
            ip="2001:db8::7",
            occurred_at=when,
        )
    )
    html = page(site)
    headers = re.findall(r'<th scope="col">([^<]*)', html)
    assert [h.strip() for h in headers] == ["Time", "Team", "Entity", "Activity", "Action", "Actor", "IP"]
    assert "Settings" in html and "Audit logs</h1>" in html
    iso = when.strftime("%Y-%m-%dT%H:%M:%S.123Z")
    utc = when.strftime("%Y-%m-%d %H:%M:%S UTC")
    # The UTC time is a tooltip of the focusable time, reached by Tab and by a tap, not a title.
    time = re.search(
        rf'<time datetime="{iso}" tabindex="0" aria-describedby="(fa-utc-\d+)">'
        rf"{when:%Y-%m-%d %H:%M:%S}</time>"
        r'<span class="fa-utc" id="(fa-utc-\d+)" role="tooltip">([^<]*)</span>',
        html,
    )
    assert time is not None and time[1] == time[2] and time[3] == utc
    assert "title=" not in html.split("<tbody>")[1].split("</tbody>")[0]
    assert activities(html) == ["Changed role of bob@acme.test from Member to Admin"]
    assert '<span class="fa-badge fa-badge--update">Update</span>' in html
    # The actor wraps at its "@" and dots only.
    email = '<span class="fa-nobr">alice@</span><wbr><span class="fa-nobr">acme</span><wbr>'
    email += '<span class="fa-nobr">.test</span>'
    assert f'<td class="fa-actor">{email}</td>' in html
    for text in ("Growth", "Role", "2001:db8::7", "role.updated"):
        assert text in html


def test_times_show_in_the_chosen_zone_with_utc_on_hover(make_app: MakeApp) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER, AUDIT_TIMEZONE="America/New_York")
    when = (utcnow() - dt.timedelta(days=2)).replace(hour=12, minute=0, second=0, microsecond=0)
    site.insert(site.event(tenant_id="acme", occurred_at=when))
    new_york = when.astimezone(zoneinfo.ZoneInfo("America/New_York"))
    default = page(site)
    assert "Times in America/New_York" in default
    tooltip = r'</time><span class="fa-utc" id="fa-utc-\d+" role="tooltip">'
    assert re.search(rf">{new_york:%Y-%m-%d %H}:00:00{tooltip}{when:%Y-%m-%d} 12:00:00 UTC</span>", default)
    kolkata = page(site, "?tz=Asia/Kolkata")
    assert re.search(rf">{when:%Y-%m-%d} 17:30:00{tooltip}{when:%Y-%m-%d} 12:00:00 UTC</span>", kolkata)


def test_a_chosen_zone_is_remembered_in_a_cookie(make_app: MakeApp) -> None:
    site = build_site(make_app)
    client = site.client(site.admin)
    response = client.get(f"{PREFIX}/?tz=Asia/Tokyo")
    assert f"{TZ_COOKIE}=Asia/Tokyo" in response.headers["Set-Cookie"]
    assert f"Path={PREFIX}" in response.headers["Set-Cookie"]
    assert "Times in Asia/Tokyo" in client.get(f"{PREFIX}/").text
    client.set_cookie(TZ_COOKIE, "Not/AZone", path=PREFIX)
    assert "Times in UTC" in client.get(f"{PREFIX}/").text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("entity=Team", {"team-created", "team-deleted"}),
        ("entity=team", {"team-created", "team-deleted"}),
        ("event_type=team.deleted", {"team-deleted"}),
        ("actor=carol@acme.test", {"sso-carol"}),
        ("team=Platform", {"team-deleted"}),
        ("action=delete", {"team-deleted"}),
        ("action=Delete&entity=SSO", set()),
        ("outcome=failure", {"login-failed"}),
        ("entity=Login&outcome=success", {"login"}),
    ],
)
def test_each_filter_narrows_the_table(make_app: MakeApp, query: str, expected: set[str]) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    now = utcnow()
    site.insert(
        site.event("team.created", tenant_id="acme", team="Growth", activity="team-created", occurred_at=now),
        site.event(
            "team.deleted", tenant_id="acme", team="Platform", activity="team-deleted", occurred_at=now
        ),
        site.event("sso.updated", tenant_id="acme", actor_email="carol@acme.test", activity="sso-carol"),
        site.event("user.login", tenant_id="acme", activity="login"),
        site.event("user.login_failed", tenant_id="acme", activity="login-failed"),
    )
    html = page(site, f"?{query}")
    assert set(activities(html)) == expected
    if not expected:
        assert "No events match these filters" in html


def test_date_range_is_read_in_the_display_zone(make_app: MakeApp) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    day = (utcnow() - dt.timedelta(days=3)).date()
    midnight = dt.datetime.combine(day, dt.time.min, tzinfo=dt.timezone.utc)
    site.insert(
        site.event(tenant_id="acme", activity="before", occurred_at=midnight - HOUR),
        site.event(tenant_id="acme", activity="inside", occurred_at=midnight + HOUR),
        site.event(tenant_id="acme", activity="late", occurred_at=midnight + 23 * HOUR),
    )
    assert activities(page(site, f"?start={day}&end={day}")) == ["late", "inside"]
    # In Tokyo (UTC+9) that day runs from 15:00 UTC the day before to 15:00 UTC.
    tokyo = page(site, f"?start={day}&end={day}&tz=Asia/Tokyo")
    assert activities(tokyo) == ["inside", "before"]
    assert f'name="start" value="{day}"' in tokyo


def test_only_the_retention_window_is_shown(make_app: MakeApp) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER, AUDIT_RETENTION_DAYS=30)
    now = utcnow()
    site.insert(
        site.event(tenant_id="acme", activity="recent", occurred_at=now - dt.timedelta(days=29)),
        site.event(tenant_id="acme", activity="expired", occurred_at=now - dt.timedelta(days=31)),
    )
    assert activities(page(site)) == ["recent"]
    old_start = (now - dt.timedelta(days=60)).date()
    assert activities(page(site, f"?start={old_start}")) == ["recent"]
    assert "Events are kept for 30 days." in page(site)


@pytest.mark.parametrize("tenant", [True, False])
def test_pages_walk_older_and_back_newer(make_app: MakeApp, tenant: bool) -> None:
    config = {"AUDIT_TENANT_LOADER": TENANT_LOADER} if tenant else {}
    site = build_site(make_app, **config)
    site.insert(*site.series(120, every=dt.timedelta(minutes=7), tenant_id="acme"))
    client = site.client(site.admin)
    first = client.get(f"{PREFIX}/?entity=Team").text
    assert activities(first) == [f"Event {n}" for n in range(50)]
    assert "← Newer</span>" in first and "Newest</a>" not in first
    older = re.search(r'href="([^"]+)" rel="next"', first)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert activities(second) == [f"Event {n}" for n in range(50, 100)]
    assert "entity=Team" in older.group(1)
    third_url = re.search(r'href="([^"]+)" rel="next"', second)
    assert third_url is not None
    third = client.get(third_url.group(1).replace("&amp;", "&")).text
    assert activities(third) == [f"Event {n}" for n in range(100, 120)]
    assert "Older →</span>" in third
    newer = re.search(r'href="([^"]+)" rel="prev"', third)
    assert newer is not None
    assert activities(client.get(newer.group(1).replace("&amp;", "&")).text) == activities(second)
    back_to_top = re.search(r'href="([^"]+)" rel="prev"', second)
    assert back_to_top is not None
    top = client.get(back_to_top.group(1).replace("&amp;", "&")).text
    assert activities(top) == activities(first)
    assert "Newest</a>" not in top


def test_a_page_stays_put_while_new_events_arrive(make_app: MakeApp) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    site.insert(*site.series(60, every=dt.timedelta(minutes=3), tenant_id="acme"))
    client = site.client(site.admin)
    first = client.get(f"{PREFIX}/").text
    older = re.search(r'href="([^"]+)" rel="next"', first)
    assert older is not None
    site.insert(*[site.event(tenant_id="acme", activity=f"New {n}") for n in range(5)])
    second = client.get(older.group(1)).text
    assert activities(second) == [f"Event {n}" for n in range(50, 60)]


def test_chart_counts_events_per_day(make_app: MakeApp) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    rows = [
        site.event(tenant_id="acme", occurred_at=today - dt.timedelta(days=2) + n * HOUR) for n in range(3)
    ]
    rows.append(site.event(tenant_id="acme", occurred_at=today - dt.timedelta(days=1)))
    site.insert(*rows)
    start = (today - dt.timedelta(days=3)).date()
    html = page(site, f"?start={start}")
    bars = re.findall(r"<title>([^<]*)</title></rect>", html)
    # The chart starts on the day tracking started: the oldest event's.
    assert [bar.rsplit(": ", 1)[1] for bar in bars] == ["3 events", "1 event", "0 events"]
    assert "<strong>4</strong> events" in html
    assert "<script" not in html.lower()


def test_chart_days_are_days_in_the_display_zone(make_app: MakeApp) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    midnight = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=3)
    site.insert(
        *[site.event(tenant_id="acme", occurred_at=midnight + dt.timedelta(hours=h)) for h in (1, 10, 20)]
    )
    utc = re.findall(r"<title>([^<]*)</title></rect>", page(site))
    assert utc[0] == f"{midnight:%a %b} {midnight.day}, {midnight.year}: 3 events"
    # In Tokyo (UTC+9) 20:00 UTC is 05:00 the next day.
    tokyo = re.findall(r"<title>([^<]*)</title></rect>", page(site, "?tz=Asia/Tokyo"))
    assert [bar.rsplit(": ", 1)[1] for bar in tokyo[:2]] == ["2 events", "1 event"]
    assert "(days in Asia/Tokyo)" in page(site, "?tz=Asia/Tokyo")


def test_chart_sees_back_dated_events_recorded_later(make_app: MakeApp) -> None:
    """The per-day counts of past days are cached; ``record()`` of a past event refreshes them."""
    site = build_site(make_app)
    now = utcnow()
    site.insert(site.event("team.deleted", occurred_at=now - dt.timedelta(days=3)))
    query = f"?start={(now - dt.timedelta(days=2)).date()}&event_type=team.deleted"
    assert 'class="fa-card fa-chart"' not in page(site, query)  # no chart without events
    site.insert(site.event("team.deleted", occurred_at=now - dt.timedelta(days=1)))
    assert 'class="fa-card fa-chart"' not in page(site, query)  # cached: rows written behind its back
    with site.app.test_request_context():
        audit_of(site.app).record("team.deleted", occurred_at=now - dt.timedelta(days=1))
    assert "<strong>2</strong> events" in page(site, query)


def test_empty_states(make_app: MakeApp) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    html = page(site)
    assert "No activity yet" in html and row_count(html) == 0
    assert "Tracking since" not in html
    assert "No events match these filters" in page(site, "?actor=nobody@acme.test")


def test_tracking_since_is_the_oldest_event_in_the_window(make_app: MakeApp) -> None:
    site = build_site(make_app)
    oldest = utcnow() - dt.timedelta(days=12)
    site.insert(site.event(occurred_at=oldest), site.event(occurred_at=utcnow() - dt.timedelta(days=200)))
    html = page(site)
    assert (
        f'Tracking since <time datetime="{oldest:%Y-%m-%dT%H:%M:%SZ}">{oldest:%b} {oldest.day}, {oldest.year}'
        in html
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("start=2026-02-30", "The start date &#39;2026-02-30&#39; is not a valid date"),
        ("end=yesterday", "The end date &#39;yesterday&#39; is not a valid date"),
        ("start=2026-03-02&end=2026-03-01", "The start date is after the end date."),
        ("entity=Billing", "Unknown entity &#39;Billing&#39;. Choose one of:"),
        ("action=rename", "Unknown action &#39;rename&#39;. Choose one of:"),
        ("actor=" + "a" * 400, "The actor filter is too long (at most 320 characters)."),
        ("cursor=bm9wZQ", "The page cursor is not valid; start again from the first page."),
        ("tz=Mars/Olympus", "Unknown time zone &#39;Mars/Olympus&#39;; use an IANA name"),
    ],
)
def test_bad_filters_show_a_message_with_the_form(make_app: MakeApp, query: str, message: str) -> None:
    site = build_site(make_app)
    site.insert(site.event(activity="hidden"))
    html = page(site, f"?{query}", status=400)
    assert message in html
    assert '<div class="fa-alert" role="alert">' in html
    assert '<form id="fa-filter-form" class="fa-card fa-filters"' in html
    assert row_count(html) == 0


@pytest.mark.parametrize("query", ["end=0001-01-02", "start=9999-12-31", "start=0001-01-01&end=9999-12-31"])
def test_extreme_dates_are_valid_filters(make_app: MakeApp, query: str) -> None:
    site = build_site(make_app)
    site.insert(site.event(activity="inside"))
    expected = ["inside", "Enabled the audit log"] if "9999-12-31" in query and "start=0001" in query else []
    assert activities(page(site, f"?{query}")) == expected
    response = site.client(site.admin).get(f"{PREFIX}/api/events?{query}")
    assert response.status_code == 200


def test_a_bad_zone_stays_in_the_form_to_be_fixed(make_app: MakeApp) -> None:
    site = build_site(make_app)
    response = site.client(site.admin).get(f"{PREFIX}/?tz=Europe/Berln&entity=Team")
    assert response.status_code == 400
    assert 'name="tz" value="Europe/Berln"' in response.text
    assert '<option value="Team" selected>' in response.text
    assert TZ_COOKIE not in response.headers.get("Set-Cookie", "")


def test_impossible_times_are_refused(make_app: MakeApp) -> None:
    site = build_site(make_app)
    assert "is out of range" in page(site, "?end=9999-12-31&tz=America/Anchorage", status=400)
    assert "The start filter contains a control character." in page(site, "?start=2026-01-01%00", status=400)


def test_every_value_is_escaped(make_app: MakeApp) -> None:
    site = build_site(make_app)
    evil = "<script>alert(1)</script>"
    site.insert(site.event(activity=evil, actor_email=evil, team=evil, ip=None))
    html = page(site, f"?actor={evil}")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("&lt;script&gt;") >= 4  # activity, actor and team cells, and the form
    bad = page(site, "?entity=<script>x</script>", status=400)
    assert "<script>" not in bad and "&#39;&lt;script&gt;x&lt;/script&gt;&#39;" in bad


def _with_mailer(site: Site) -> Site:
    from flask_mail import Mail

    site.app.config["MAIL_DEFAULT_SENDER"] = "audit@acme.test"
    Mail(site.app)
    return site


def test_export_button_follows_the_export_endpoint(make_app: MakeApp) -> None:
    site = _with_mailer(build_site(make_app))
    html = page(site)
    has_endpoint = "audit.export" in site.app.view_functions
    assert ("Export audit logs" in html) is has_endpoint
    assert ('formaction="/admin/audit/exports/new"' in html) is has_endpoint


def test_without_a_mailer_the_page_says_so_by_the_button(make_app: MakeApp) -> None:
    """Said before a click, not as "on its way" (nor as a refusal) after one."""
    html = page(build_site(make_app))
    assert '<p class="fa-export-note" role="status">Audit log exports are sent by email' in html
    assert "exports/new" not in html  # no button that could only be refused


def test_export_buttons_send_the_filter_forms_current_values_to_the_confirmation(make_app: MakeApp) -> None:
    """Both buttons submit the filter form itself, so values typed but not applied go too."""
    site = _with_mailer(build_site(make_app, WTF_CSRF_ENABLED=True))
    html = page(site, "?entity=Team&start=2026-01-02")
    assert '<form id="fa-filter-form" class="fa-card fa-filters" method="get"' in html
    header = re.search(
        r'<button type="submit" form="fa-filter-form" formaction="([^"]+)" class="fa-button', html
    )
    assert header is not None and header.group(1) == f"{PREFIX}/exports/new"
    in_form = re.search(
        r'<button type="submit" class="fa-button" formaction="([^"]+)">Export…</button>', html
    )
    assert in_form is not None and in_form.group(1) == f"{PREFIX}/exports/new"
    assert 'name="csrf_token"' not in html  # a GET to the confirmation; its POST carries the token


def test_flashed_messages_are_shown(make_app: MakeApp) -> None:
    site = build_site(make_app)
    client = site.client(site.admin)
    with client.session_transaction() as session:
        session["_flashes"] = [("success", "Your export is on its way to admin@acme.test.")]
    html = client.get(f"{PREFIX}/").text
    assert '<p class="fa-flash fa-flash--success" role="status">Your export is on its way' in html


def test_pages_are_not_cached(make_app: MakeApp) -> None:
    site = build_site(make_app)
    response = site.client(site.admin).get(f"{PREFIX}/")
    assert response.headers["Cache-Control"] == "private, no-store"


def test_two_apps_on_one_audit_instance_use_their_own_prefix(tmp_path: pathlib.Path) -> None:
    audit = Audit()
    clients = {}
    for n, prefix in enumerate(("/admin/audit", "/settings/audit-log")):
        app = Flask("tests.admin.test_views", template_folder=None)
        app.config.update(
            SECRET_KEY="test",
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / f'app{n}.db'}",
            AUDIT_URL_PREFIX=prefix,
            AUDIT_SPOOL_PATH=str(tmp_path / f"spool{n}.jsonl"),
        )
        database = SQLAlchemy(app, model_class=Base)
        audit.init_app(app, db=database)
        login = LoginManager(app)
        login.request_loader(lambda request: User(id=1, email="root@example.com", is_admin=True))
        with app.app_context():
            database.create_all()
            audit.record("team.created", activity=f"Made in app {n}")
        clients[prefix] = app.test_client()
    one, two = clients["/admin/audit"], clients["/settings/audit-log"]
    assert activities(one.get("/admin/audit/").text)[0] == "Made in app 0"
    html = two.get("/settings/audit-log/").text
    assert activities(html)[0] == "Made in app 1"
    assert 'href="/settings/audit-log/static/flask_audit/audit.css"' in html
    assert two.get("/admin/audit/").status_code == 404
    assert (
        t.cast(dict[str, t.Any], two.get("/settings/audit-log/api/events").json)["events"][0]["activity"]
        == "Made in app 1"
    )


def test_static_stylesheet_is_served_under_the_prefix(app: Flask) -> None:
    with app.test_client().get(f"{PREFIX}/static/flask_audit/audit.css") as response:
        assert response.status_code == 200
        assert response.mimetype == "text/css"
        assert b".fa-table" in response.data


def test_each_day_of_the_chart_links_to_that_day_with_the_other_filters(make_app: MakeApp) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    today = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    site.insert(
        site.event(tenant_id="acme", team="Growth", occurred_at=today - dt.timedelta(days=2)),
        site.event(tenant_id="acme", team="Growth", occurred_at=today - dt.timedelta(days=1)),
        site.event(tenant_id="acme", team="Other", occurred_at=today - dt.timedelta(days=3)),
    )
    html = page(site, "?team=Growth&tz=UTC")
    links = re.findall(r'<a class="fa-chart__link" href="([^"]+)" aria-label="([^"]+)">', html)
    days = [(today - dt.timedelta(days=n)).date() for n in (2, 1)]
    assert [href for href, _ in links] == [
        f"{PREFIX}/?team=Growth&amp;tz=UTC&amp;start={day}&amp;end={day}" for day in days
    ]
    assert links[0][1] == f"{days[0]:%a %b} {days[0].day}, {days[0].year}: 1 event, show this day"
    # A day without events is no link; a date already applied is replaced, not repeated.
    html = page(site, f"?start={days[0]}&end={days[1]}")
    hrefs = re.findall(r'<a class="fa-chart__link" href="([^"]+)"', html)
    assert hrefs and all(href.count("start=") == 1 and href.count("end=") == 1 for href in hrefs)


def test_more_filters_opens_when_one_of_its_filters_is_applied(make_app: MakeApp) -> None:
    site = build_site(make_app, AUDIT_TENANT_LOADER=TENANT_LOADER)
    site.insert(site.event(tenant_id="acme"))
    assert '<details class="fa-more">' in page(site)
    assert '<details class="fa-more">' in page(
        site, "?q=actor:ann&entity=Team&event_type=team.created&tz=UTC"
    )
    for query in ("?action=create", "?actor=ann@acme.test", "?start=2026-01-01", "?outcome=failure"):
        assert '<details class="fa-more" open>' in page(site, query), query


def test_the_page_states_the_tenants_own_retention_and_links_to_the_review(make_app: MakeApp) -> None:
    site = build_site(
        make_app,
        AUDIT_TENANT_LOADER=TENANT_LOADER,
        AUDIT_RETENTION_DAYS=90,
        AUDIT_TENANT_RETENTION_DAYS={"acme": 400},
    )
    assert "Events are kept for 400 days." in page(site)
    other = site.client(site.other_admin).get(f"{PREFIX}/").text
    assert "Events are kept for 90 days." in other  # no setting of its own: the floor
    assert f'<a class="fa-button fa-button--ghost" href="{PREFIX}/review">Daily review</a>' in other
