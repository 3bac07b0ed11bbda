"""The confirmation before an export: it names the filters and the count, changes nothing,
says when nothing matches, and exports what the filter form held, in the chosen format."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from markupsafe import escape

from flask_audit.export import jobs
from flask_audit.export.formats import BY_NAME

from ..conftest import MakeApp
from ..conftest import stored
from ..export_fixtures import attachment
from ..export_fixtures import build_site
from ..export_fixtures import Form
from ..export_fixtures import forms_of
from ..export_fixtures import PREFIX
from ..export_fixtures import Site
from ..export_fixtures import SmtpServer
from ..export_fixtures import TENANT_LOADER
from ..export_fixtures import text_body

CONFIRM = f"{PREFIX}/exports/new"
WORKER = {"AUDIT_EXPORT_MODE": "worker", "AUDIT_TENANT_LOADER": TENANT_LOADER}
BOB = "bob@example.com"


@pytest.fixture
def site(make_app: MakeApp, smtp_server: SmtpServer) -> Site:
    site = build_site(make_app, smtp_server, **WORKER)
    site.insert(
        *(
            site.event(actor_email="bob@example.com", team="Équipe Zoë 🚀", tenant_id="acme")
            for _ in range(3)
        ),
        site.event(actor_email="eve@example.com", tenant_id="acme"),
        site.event("user.login", actor_email="bob@example.com", tenant_id="acme"),
        *(site.event(actor_email="bob@example.com", tenant_id="globex") for _ in range(2)),
    )
    return site


def page(site: Site, user: int | None, **args: str) -> tuple[int, str]:
    response = site.client(user).get(CONFIRM, query_string=args)
    return response.status_code, response.get_data(as_text=True)


def post_form(form: Form) -> list[Form]:
    """The forms that post (the confirmation's), whatever else the page holds."""
    return [form] if form.attrs.get("method", "get").lower() == "post" else []


def export_form(html: str) -> Form:
    [form] = [posting for form in forms_of(html) for posting in post_form(form)]
    return form


def test_the_confirmation_names_the_filters_and_the_count(site: Site) -> None:
    status, html = page(
        site, site.admin, entity="Team", actor="bob@example.com", start="2026-01-01", tz="Europe/Berlin"
    )
    assert status == 200
    assert '<link rel="stylesheet" href="/admin/audit/static/flask_audit/audit.css">' in html
    assert "Export 3 events matching:" in html
    for label, value in [
        ("Entity", "Team"),
        ("Actor", "bob@example.com"),
        ("From", "2026-01-01 (Europe/Berlin)"),
    ]:
        assert f"<dt>{label}</dt><dd><bdi>{value}</bdi></dd>" in html
    assert "Send 3 events by email" in html and "<strong>admin@acme.test</strong>" in html
    form = export_form(html)
    assert form.attrs["action"] == f"{PREFIX}/export"
    values = form.values()
    assert values.pop("csrf_token")
    assert values == {
        "entity": "Team",
        "actor": "bob@example.com",
        "start": "2026-01-01",  # the admin's own text, read again by the POST in the same zone
        "tz": "Europe/Berlin",
        "then": "exports",
        "format": "csv",
    }
    assert form.choices == {"format": list(BY_NAME)}
    assert site.jobs() == [] and [e for e in stored(site.app) if e.event_type == "audit.exported"] == []


def test_no_filters_is_said_too(site: Site) -> None:
    status, html = page(site, site.admin, format="jsonl")
    assert status == 200
    assert export_form(html).values()["format"] == "jsonl"  # preselected by the link
    assert "Export 5 events:" in html
    assert "<dt>Filters</dt><dd>None: every event of the last 90 days</dd>" in html


def test_an_empty_result_is_said_and_nothing_can_be_sent(site: Site, smtp_server: SmtpServer) -> None:
    status, html = page(site, site.admin, entity="SSO")
    assert status == 200
    assert "No events match these filters" in html
    assert "There is nothing to export, so nothing will be sent." in html
    assert [form for form in forms_of(html) if post_form(form)] == []
    assert "csrf_token" not in html and "Send" not in html
    with site.app.app_context():
        assert jobs.run_due() == jobs.RunSummary()
    assert site.jobs() == [] and smtp_server.messages == []


def test_the_form_sends_the_chosen_format_and_the_flash_names_filters_and_count(
    site: Site, smtp_server: SmtpServer
) -> None:
    client = site.client(site.admin)
    html = client.get(CONFIRM, query_string={"actor": "bob@example.com", "entity": "Team"}).get_data(True)
    form = export_form(html)
    response = client.post(form.attrs["action"], data={**form.values(), "format": "jsonl"})
    assert response.status_code == 303
    assert urllib.parse.urlsplit(response.headers["Location"]).path == f"{PREFIX}/exports"
    exports_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert (
        str(
            escape(
                "Your export of 3 events matching Entity: Team; Actor: bob@example.com is on its way to"
                " admin@acme.test: the JSON lines file will arrive by email shortly."
            )
        )
        in exports_page
    )
    job = site.job()
    assert job.filters == {"entity": "Team", "actor": "bob@example.com", "format": "jsonl"}
    with site.app.app_context():
        assert jobs.run_due().sent == 1
    [message] = smtp_server.messages
    name, content_type, data = attachment(message)
    assert name.endswith(f"-{job.id}.jsonl") and content_type == "application/x-ndjson"
    records = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    assert [(r["team"], r["actor_email"], r["tenant_id"]) for r in records] == [
        ("Équipe Zoë 🚀", "bob@example.com", "acme")
    ] * 3
    assert f"The JSON lines file is attached as {name}." in text_body(message)
    [event] = [e for e in stored(site.app) if e.event_type == "audit.exported"]
    assert (event.details["format"], event.details["rows"]) == ("jsonl", 3)


def test_the_filter_forms_current_values_are_what_is_exported(site: Site) -> None:
    """Values edited in the page's filter form but not applied reach the confirmation, as the
    form's export button sends them, and the job holds them."""
    client = site.client(site.admin)
    html = client.get(f"{PREFIX}/", query_string={"entity": "Login", "tz": "UTC"}).get_data(as_text=True)
    [filters] = [form for form in forms_of(html) if "entity" in form.values() and not post_form(form)]
    current = filters.values()
    assert (current["entity"], current["actor"], current["tz"]) == ("Login", "", "UTC")
    current.update(entity="Team", actor="bob@example.com", tz="Asia/Tokyo")  # typed, not applied
    confirm = client.get(CONFIRM, query_string=current).get_data(as_text=True)
    assert "Export 3 events matching:" in confirm and "<bdi>Login</bdi>" not in confirm
    form = export_form(confirm)
    assert client.post(form.attrs["action"], data=form.values()).status_code == 303
    job = site.job()
    assert (job.filters, job.timezone) == ({"entity": "Team", "actor": "bob@example.com"}, "Asia/Tokyo")


@pytest.mark.parametrize(("who", "status"), [("anonymous", 401), ("member", 403)])
def test_only_admins_see_the_confirmation(site: Site, who: str, status: int) -> None:
    code, html = page(site, None if who == "anonymous" else site.member, actor="bob@example.com")
    assert code == status
    assert "bob@example.com" not in html and "Export" not in html


def test_another_tenants_admin_counts_only_their_events(site: Site) -> None:
    status, html = page(site, site.other_admin, actor="bob@example.com")
    assert status == 200
    assert "Export 2 events matching:" in html and "admin@globex.test" in html
    assert "Équipe" not in html
    response = site.client(site.other_admin).get(
        CONFIRM, query_string={"actor": "bob@example.com"}, headers={"Accept": "application/json"}
    )
    assert response.get_json() == {"count": 2, "filters": {"actor": "bob@example.com"}, "timezone": "UTC"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"entity": "Nope"}, "Unknown entity 'Nope'. Choose one of:"),
        ({"start": "2026-02-01", "end": "2026-01-01"}, "The start date is after the end date."),
        (
            {"tz": "Mars/Olympus"},
            "Unknown time zone 'Mars/Olympus'; use an IANA name such as 'Europe/Berlin'.",
        ),
    ],
)
def test_bad_filters_are_refused_with_their_message(site: Site, args: dict[str, str], message: str) -> None:
    status, html = page(site, site.admin, **args)
    assert status == 400
    assert str(escape(message)) in html
    assert "These filters cannot be exported" in html and [f for f in forms_of(html) if post_form(f)] == []


def test_without_a_mailer_the_reason_is_said_instead_of_a_button(make_app: MakeApp) -> None:
    site = build_site(make_app, None, mailer=None, **WORKER)
    site.insert(site.event(tenant_id="acme"))
    status, html = page(site, site.admin)
    assert status == 200
    assert "Audit log exports are sent by email, and this app has no mailer set up" in html
    assert [form for form in forms_of(html) if post_form(form)] == []


def test_an_unknown_format_is_refused(site: Site) -> None:
    client = site.client(site.admin)
    form = export_form(client.get(CONFIRM).get_data(as_text=True))
    response = client.post(
        form.attrs["action"], data={**form.values(), "format": "xlsx"}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "Unknown export format 'xlsx'; choose csv (CSV) or jsonl (JSON lines)."
    }
    assert site.jobs() == []


def test_a_search_flows_into_the_export(site: Site) -> None:
    """``q`` is read and written by ``AuditFilter`` like every filter: nothing here names it."""
    client = site.client(site.admin)
    html = client.get(CONFIRM, query_string={"q": f"actor:{BOB} -type:user.login"}).get_data(as_text=True)
    assert "Export 3 events matching:" in html
    assert f"<dt>Search</dt><dd><bdi>actor:{BOB} -type:user.login</bdi></dd>" in html
    form = export_form(html)
    assert form.values()["q"] == f"actor:{BOB} -type:user.login"
    assert client.post(form.attrs["action"], data=form.values()).status_code == 303
    assert site.job().filters == {"q": f"actor:{BOB} -type:user.login"}
