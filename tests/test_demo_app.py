"""The demo workspace's flows through the test client, and the trail each one leaves.

Runs on SQLite, PostgreSQL and MariaDB: each flow is checked against the events stored
in ``audit_event``, with the expected type, actor and sentence.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import io
import ipaddress
import pathlib
import re

import pyotp
import pytest
import sqlalchemy as sa
from flask import Response
from flask_mail import Attachment
from flask_mail import Message
from werkzeug.security import check_password_hash

import demo_app
from demo_app import seed
from demo_app.extensions import db
from demo_app.extensions import mail
from demo_app.models import Invitation
from demo_app.models import MailMessage
from demo_app.models import SsoSettings
from demo_app.models import Team
from flask_audit import AuditEvent
from flask_audit.sso import read_idp_metadata
from flask_audit.taxonomy import EVENT_TYPES

from .conftest import end_pooled_connection
from .conftest import end_server_connection
from .conftest import refuse_audit_writes
from .conftest import server_connection_id
from .demo_fixtures import build_demo
from .demo_fixtures import Demo
from .demo_fixtures import drop
from .demo_fixtures import PASSWORD
from .demo_fixtures import post
from .demo_fixtures import running_demo
from .demo_fixtures import totp_code

SAMPLE = pathlib.Path(seed.__file__).with_name("sample_idp_metadata.xml")
DOC_NETWORKS = [
    ipaddress.ip_network(net)
    for net in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
]


@pytest.fixture
def demo(db_url: str) -> c.Iterator[Demo]:
    with running_demo(db_url) as built:
        yield built


def test_sign_in_with_two_factor_records_each_step(demo: Demo) -> None:
    client = demo.client()
    response = post(client, "/login", {"email": "cleo@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response.location == "/login/two-factor"
    assert "Enter your authentication code" in client.get("/login/two-factor").text

    wrong = post(client, "/login/two-factor", {"code": "000000"}, page="/login/two-factor")
    assert wrong.status_code == 401
    assert "That code is not correct." in wrong.text

    code = totp_code(demo.totp_secret)
    response = post(client, "/login/two-factor", {"code": code}, page="/login/two-factor")
    assert response.status_code == 302
    assert response.location == "/"
    assert "Good to see you, Cleo" in client.get("/").text

    failed, verified, login = demo.events()
    assert (failed.event_type, failed.outcome, failed.actor_email) == (
        "two_factor.failed",
        "failure",
        "cleo@example.com",
    )
    assert failed.details["reason"] == "wrong_code"
    assert verified.event_type == "two_factor.verified"
    assert verified.actor_id == str(demo.ids["cleo"])
    assert (login.event_type, login.activity, login.actor_email) == (
        "user.login",
        "Signed in",
        "cleo@example.com",
    )
    assert login.details == {"method": "password", "second_factor": "totp"}
    assert login.team == "Design"
    cleo = demo.user("cleo@example.com")
    assert cleo is not None and cleo.totp_last_step == pyotp.TOTP(demo.totp_secret).timecode(
        verified.occurred_at
    )


def test_a_used_code_is_refused_at_the_next_sign_in(demo: Demo) -> None:
    code = totp_code(demo.totp_secret)
    for _attempt in range(2):
        client = demo.client()
        post(client, "/login", {"email": "cleo@example.com", "password": PASSWORD})
        response = post(client, "/login/two-factor", {"code": code}, page="/login/two-factor")
    assert response.status_code == 401
    assert "That code was already used." in response.text
    assert demo.events("two_factor.failed")[-1].details["reason"] == "replayed"


def test_failed_sign_ins_are_recorded_with_the_reason(demo: Demo) -> None:
    client = demo.client()
    bad = post(client, "/login", {"email": "ben@example.com", "password": "nope"})
    unknown = post(client, "/login", {"email": "mallory@example.com", "password": "nope"})
    assert bad.status_code == unknown.status_code == 401
    assert "Incorrect email or password." in bad.text
    first, second = demo.events("user.login_failed")
    assert (first.actor_id, first.actor_email) == (str(demo.ids["ben"]), "ben@example.com")
    assert first.details["reason"] == "bad_password"
    assert "nope" not in str(first.details)
    assert (second.actor_id, second.actor_email) == (None, "mallory@example.com")
    assert second.activity == "Failed sign-in for mallory@example.com (unknown user)"


def test_password_sign_in_and_sign_out(demo: Demo) -> None:
    client = demo.sign_in("ben@example.com")
    assert post(client, "/logout", page="/").location == "/login"
    login, logout = demo.events()
    assert (login.event_type, login.details["method"], login.team) == (
        "user.login",
        "password",
        "Engineering",
    )
    assert (logout.event_type, logout.actor_email) == ("user.logout", "ben@example.com")


def test_next_only_leads_to_this_site(demo: Demo) -> None:
    client = demo.client()
    data = {"email": "ben@example.com", "password": PASSWORD}
    assert post(client, "/login?next=//evil.example/x", data).location == "/"
    client = demo.client()
    assert post(client, "/login?next=/teams", data).location == "/teams"


def test_changing_a_role_records_role_updated(demo: Demo) -> None:
    admin = demo.sign_in("ada@example.com")
    response = post(admin, f"/members/{demo.ids['ben']}/role", {"role": "admin"}, page="/members")
    assert response.status_code == 302
    assert "Ben Member is now an admin." in admin.get("/members").text
    (event,) = demo.events("role.updated")
    assert event.activity == "Changed role of ben@example.com from Member to Admin"
    assert (event.actor_email, event.team, event.action) == ("ada@example.com", "Engineering", "update")
    assert event.details == {"before": "member", "after": "admin"}
    assert (event.target_type, event.target_id) == ("user", str(demo.ids["ben"]))


def test_the_last_admin_keeps_the_role(demo: Demo) -> None:
    admin = demo.sign_in("ada@example.com")
    post(admin, f"/members/{demo.ids['ada']}/role", {"role": "member"}, page="/members")
    assert "The workspace needs at least one admin" in admin.get("/members").text
    assert demo.events("role.updated") == []
    bad = post(admin, f"/members/{demo.ids['ben']}/role", {"role": "owner"}, page="/members")
    assert bad.status_code == 400
    assert "Unknown role &#39;owner&#39;: choose member or admin." in bad.text


def test_members_cannot_manage_the_workspace(demo: Demo) -> None:
    member = demo.sign_in("ben@example.com")
    for path, data in (
        (f"/members/{demo.ids['cleo']}/role", {"role": "admin"}),
        ("/teams", {"name": "Mine"}),
        ("/invitations", {"email": "x@example.com"}),
        (f"/settings/members/{demo.ids['cleo']}/two-factor/reset", {}),
    ):
        response = post(member, path, data, page="/")
        assert response.status_code == 403, path
        assert "Only workspace admins can do this." in response.text
    assert member.get("/settings/audit-logs/").status_code == 403
    assert member.get("/settings/sso").status_code == 403
    assert [event.event_type for event in demo.events()] == ["user.login"]


def test_every_form_needs_its_csrf_token(demo: Demo) -> None:
    client = demo.client()
    response = client.post("/login", data={"email": "ben@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert "This form has expired or was sent from another site." in response.text
    assert [event.event_type for event in demo.events()] == []


def _invite(demo: Demo, email: str = "dana@example.com") -> str:
    admin = demo.sign_in("ada@example.com")
    data = {"email": email, "role": "member", "team_id": str(demo.ids["design"])}
    assert post(admin, "/invitations", data, page="/members").status_code == 302
    assert f"Invitation sent to {email}." in admin.get("/members").text
    with demo.app.app_context():
        message = db.session.scalars(sa.select(MailMessage).order_by(MailMessage.id.desc())).first()
        assert message is not None
        assert message.recipients == email
        assert message.subject == "Ada Admin invited you to Acme Workspace"
        match = re.search(r"http://localhost(/invitations/[\w-]+)", message.body)
        db.session.remove()
    assert match is not None
    return match.group(1)


def test_inviting_and_accepting_creates_the_user(demo: Demo) -> None:
    link = _invite(demo)
    (sent,) = demo.events("invite.sent")
    assert (sent.activity, sent.actor_email) == ("Invited dana@example.com as Member", "ada@example.com")
    assert sent.details == {"email": "dana@example.com", "role": "member", "team": "Design"}

    guest = demo.client()
    page = guest.get(link)
    assert "Ada Admin invited <strong>dana@example.com</strong> as a member of Design." in page.text
    short = post(guest, link, {"name": "Dana", "password": "short"}, page=link)
    assert short.status_code == 400
    assert "Choose a password of at least 8 characters." in short.text
    response = post(guest, link, {"name": "Dana New", "password": "a good password"}, page=link)
    assert response.status_code == 302
    assert "Welcome to the workspace, Dana New." in guest.get("/").text

    dana = demo.user("dana@example.com")
    assert dana is not None and dana.role == "member"
    created, accepted, login = demo.events("user.created", "invite.accepted", "user.login")[-3:]
    assert (created.event_type, created.activity) == ("user.created", "Created user dana@example.com")
    # Nobody was signed in yet: the demo names the new user with ``audit.acting_as``.
    assert (created.actor_id, created.actor_email) == (str(dana.id), "dana@example.com")
    assert (accepted.event_type, accepted.actor_id) == ("invite.accepted", str(dana.id))
    assert accepted.activity == "Accepted the invitation of dana@example.com"
    assert (login.activity, login.details["method"]) == ("Signed in with invitation link", "invitation_link")
    assert login.actor_email == "dana@example.com"
    assert login.team == "Design"
    gone = guest.get(link)
    assert gone.status_code == 410
    assert "This invitation is no longer valid" in gone.text


def test_revoking_an_invitation(demo: Demo) -> None:
    link = _invite(demo, "eve@example.com")
    admin = demo.sign_in("ada@example.com")
    with demo.app.app_context():
        invitation_id = db.session.scalar(
            sa.select(Invitation.id).where(Invitation.email == "eve@example.com")
        )
        db.session.remove()
    post(admin, f"/invitations/{invitation_id}/revoke", page="/members")
    (event,) = demo.events("invite.revoked")
    assert (event.activity, event.actor_email) == (
        "Revoked the invitation of eve@example.com",
        "ada@example.com",
    )
    assert demo.client().get(link).status_code == 410
    again = post(admin, "/invitations", {"email": "ben@example.com"}, page="/members")
    assert again.status_code == 302
    assert "ben@example.com is already a member of the workspace." in admin.get("/members").text


def test_configuring_sso_records_the_metadata_facts(demo: Demo) -> None:
    admin = demo.sign_in("ada@example.com")
    xml = SAMPLE.read_text("utf-8")
    facts = read_idp_metadata(xml)
    response = post(admin, "/settings/sso", {"metadata_xml": xml, "enforced": "on"}, page="/settings/sso")
    assert response.status_code == 302
    page = admin.get("/settings/sso").text
    assert f"Configured SSO with {facts.entity_id} and enforced it for all members." in page
    assert facts.signing_fingerprints[0] in page
    (configured,) = demo.events("sso.configured")
    assert configured.actor_email == "ada@example.com"
    assert configured.details["signing_fingerprints"] == list(facts.signing_fingerprints)
    assert configured.details["sso_url"] == facts.sso_url

    post(admin, "/settings/sso", {"metadata_xml": ""}, page="/settings/sso")
    (updated,) = demo.events("sso.updated")
    assert updated.activity == "Stopped enforcing SSO"
    post(admin, "/settings/sso", {"metadata_xml": ""}, page="/settings/sso")
    assert "Nothing changed." in admin.get("/settings/sso").text

    post(admin, "/settings/sso/disable", page="/settings/sso")
    (disabled,) = demo.events("sso.disabled")
    assert disabled.activity == f"Disabled SSO with {facts.entity_id}"
    with demo.app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(SsoSettings.id))) == 0
        db.session.remove()


def test_sso_metadata_can_be_uploaded(demo: Demo) -> None:
    admin = demo.sign_in("ada@example.com")
    data = {"metadata_file": (io.BytesIO(SAMPLE.read_bytes()), "idp.xml"), "metadata_xml": ""}
    response = post(admin, "/settings/sso", data, page="/settings/sso", content_type="multipart/form-data")
    assert response.status_code == 302
    (event,) = demo.events("sso.configured")
    assert event.activity == f"Configured SSO with {read_idp_metadata(SAMPLE.read_bytes()).entity_id}"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"metadata_xml": "<not xml"}, "The IdP metadata is not valid XML"),
        ({"metadata_xml": ""}, "Paste your identity provider&#39;s metadata XML or upload the file."),
        (
            {"metadata_xml": '<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>'},
            "The XML is not SAML 2.0 metadata: it holds no EntityDescriptor.",
        ),
        (
            {"metadata_file": (b"print('not xml')", "x.xml")},
            "The IdP metadata is not valid XML",
        ),
        ({"metadata_file": (SAMPLE.read_bytes(), "")}, "Paste your identity provider"),
        (
            {"metadata_file": (b"\xff\xfe\x00<x", "idp.xml")},
            "The uploaded file is not UTF-8 text: upload the metadata XML file.",
        ),
    ],
)
def test_invalid_metadata_shows_the_error_and_records_nothing(
    demo: Demo, data: dict[str, object], message: str
) -> None:
    admin = demo.sign_in("ada@example.com")
    form = {
        key: (io.BytesIO(value[0]), value[1]) if isinstance(value, tuple) else value
        for key, value in data.items()
    }
    response = post(admin, "/settings/sso", form, page="/settings/sso", content_type="multipart/form-data")
    assert response.status_code == 400
    assert message in response.text
    assert demo.events("sso.configured", "sso.updated", "sso.disabled") == []


def test_team_changes_are_recorded(demo: Demo) -> None:
    admin = demo.sign_in("ada@example.com")
    post(admin, "/teams", {"name": "Platform"}, page="/teams")
    with demo.app.app_context():
        platform = db.session.scalar(sa.select(Team.id).where(Team.name == "Platform"))
        db.session.remove()
    post(admin, f"/teams/{platform}/rename", {"name": "Infrastructure"}, page="/teams")
    post(admin, f"/teams/{platform}/members", {"user_id": str(demo.ids["ben"])}, page="/teams")
    post(admin, f"/teams/{platform}/members/{demo.ids['ben']}/remove", page="/teams")
    post(admin, f"/teams/{platform}/delete", page="/teams")
    types = ("team.created", "team.updated", "team.member_added", "team.member_removed", "team.deleted")
    events = demo.events(*types)
    assert [(e.event_type, e.activity) for e in events] == [
        ("team.created", "Created team Platform"),
        ("team.updated", "Renamed team Platform to Infrastructure"),
        ("team.member_added", "Added ben@example.com to team Infrastructure"),
        ("team.member_removed", "Removed ben@example.com from team Infrastructure"),
        ("team.deleted", "Deleted team Infrastructure"),
    ]
    assert {(e.actor_email, e.team) for e in events} == {("ada@example.com", "Engineering")}


def test_renaming_a_team_records_team_updated(demo: Demo) -> None:
    admin = demo.sign_in("ada@example.com")
    post(admin, f"/teams/{demo.ids['engineering']}/rename", {"name": "R&D"}, page="/teams")
    (event,) = demo.events("team.updated")
    assert (event.activity, event.actor_email) == ("Renamed team Engineering to R&D", "ada@example.com")
    assert event.details == {"changes": {"name": ["Engineering", "R&D"]}}
    assert event.team == "R&D"  # the admin's team, as named once the change is made
    post(admin, f"/teams/{demo.ids['design']}/rename", {"name": "r&d"}, page="/teams")
    assert "There is already a team named R&amp;D." in admin.get("/teams").text
    post(admin, f"/teams/{demo.ids['design']}/rename", {"name": ""}, page="/teams")
    assert "Give the team a name." in admin.get("/teams").text
    assert len(demo.events("team.updated")) == 1


def test_two_factor_enrolment_disable_and_admin_reset(demo: Demo) -> None:
    ben = demo.sign_in("ben@example.com")
    post(ben, "/settings/security/two-factor", page="/settings/security")
    page = ben.get("/settings/security/two-factor/setup").text
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', page)
    uri = re.search(r'data-testid="totp-uri">([^<]+)<', page)
    assert secret is not None and uri is not None
    assert uri.group(1).startswith("otpauth://totp/Acme%20Workspace:ben%40example.com?secret=")
    assert 'aria-label="QR code for your authenticator app"' in page
    setup = "/settings/security/two-factor/setup"
    wrong = post(ben, setup, {"code": "12"}, page=setup)
    assert wrong.status_code == 400
    assert "That code does not match." in wrong.text
    code = totp_code(secret.group(1).replace(" ", ""))
    assert post(ben, setup, {"code": code}, page=setup).status_code == 302
    assert "Two-factor authentication is on." in ben.get("/settings/security").text

    refused = post(
        ben, "/settings/security/two-factor/disable", {"password": "nope"}, page="/settings/security"
    )
    assert refused.status_code == 400
    assert "Enter your current password to turn two-factor authentication off." in refused.text
    post(ben, "/settings/security/two-factor/disable", {"password": PASSWORD}, page="/settings/security")

    admin = demo.sign_in("ada@example.com")
    post(admin, f"/settings/members/{demo.ids['cleo']}/two-factor/reset", page="/members")
    assert "Reset two-factor authentication of Cleo Secure" in admin.get("/members").text
    enabled, disabled, reset = demo.events("two_factor.enabled", "two_factor.disabled", "two_factor.reset")
    assert enabled.activity == "Enabled two-factor authentication (authenticator app) for ben@example.com"
    assert (enabled.actor_email, disabled.actor_email) == ("ben@example.com", "ben@example.com")
    assert disabled.activity == "Disabled two-factor authentication (authenticator app) for ben@example.com"
    assert (reset.activity, reset.actor_email) == (
        "Reset two-factor authentication of cleo@example.com",
        "ada@example.com",
    )
    cleo = demo.user("cleo@example.com")
    assert cleo is not None and not cleo.two_factor_enabled


def test_removing_a_user_records_user_deleted(demo: Demo) -> None:
    admin = demo.sign_in("ada@example.com")
    post(admin, f"/members/{demo.ids['ben']}/remove", page="/members")
    (event,) = demo.events("user.deleted")
    assert (event.activity, event.actor_email) == ("Deleted user ben@example.com", "ada@example.com")
    assert demo.user("ben@example.com") is None
    post(admin, f"/members/{demo.ids['ada']}/remove", page="/members")
    assert "You cannot remove yourself from the workspace." in admin.get("/members").text


def test_audit_page_is_under_settings_for_admins(demo: Demo) -> None:
    admin = demo.sign_in("ada@example.com")
    post(admin, f"/teams/{demo.ids['design']}/rename", {"name": "Brand"}, page="/teams")
    nav = admin.get("/").text
    assert 'href="/settings/audit-logs/" aria-label="Settings › Audit logs"' in nav
    page = admin.get("/settings/audit-logs/")
    assert page.status_code == 200
    assert "Renamed team Design to Brand" in page.text
    assert demo.client().get("/settings/audit-logs/").location == "/login?next=%2Fsettings%2Faudit-logs%2F"


def test_mailbox_keeps_messages_and_attachments(demo: Demo) -> None:
    data = b"Time,Team\r\n2024-01-01T00:00:00Z,Design\r\n"
    with demo.app.test_request_context():
        message = Message("Your export", recipients=["ada@example.com"], body="Attached.")
        message.attachments.append(Attachment("audit.csv", "text/csv", data))
        mail.send(message)
    client = demo.sign_in("ada@example.com")
    listing = client.get("/dev/mailbox/").text
    assert "Your export" in listing
    assert "For workspace admins only" in listing
    with demo.app.app_context():
        stored = db.session.scalars(sa.select(MailMessage)).one()
        message_id, attachment_id = stored.id, stored.attachments[0].id
        db.session.remove()
    page = client.get(f"/dev/mailbox/{message_id}").text
    assert "audit.csv" in page
    download = client.get(f"/dev/mailbox/{message_id}/attachments/{attachment_id}")
    assert download.data == data
    assert download.headers["Content-Disposition"] == "attachment; filename=audit.csv"
    assert client.get(f"/dev/mailbox/{message_id + 1}/attachments/{attachment_id}").status_code == 404


def _invitation_in_the_mailbox(demo: Demo) -> tuple[int, int]:
    """Ada invites a new admin and mails an export: (the export's message id, its attachment's)."""
    admin = demo.sign_in("ada@example.com")
    data = {"email": "eve@example.com", "role": "admin"}
    assert post(admin, "/invitations", data, page="/members").status_code == 302
    with demo.app.test_request_context():
        message = Message("Your export", recipients=["ada@example.com"], body="Attached.")
        message.attachments.append(Attachment("audit.csv", "text/csv", b"Time,Team\r\n"))
        mail.send(message)
    with demo.app.app_context():
        invite, export = db.session.scalars(sa.select(MailMessage).order_by(MailMessage.id)).all()
        ids = (invite.id, export.id, export.attachments[0].id)
        db.session.remove()
    assert "/invitations/" in admin.get(f"/dev/mailbox/{ids[0]}").text  # the admin reads it
    return ids[1], ids[2]


def test_mailbox_is_closed_to_anonymous_visitors(demo: Demo) -> None:
    """The red team's path: read an admin invitation from the mailbox, accept it, be admin."""
    message_id, attachment_id = _invitation_in_the_mailbox(demo)
    anonymous = demo.client()
    for path in ("/dev/mailbox/", f"/dev/mailbox/{message_id - 1}", f"/dev/mailbox/{message_id}"):
        response = anonymous.get(path)
        assert response.status_code == 302
        assert response.location.startswith("/login?next=")
    download = anonymous.get(f"/dev/mailbox/{message_id}/attachments/{attachment_id}")
    assert download.status_code == 302
    assert b"Time,Team" not in download.data
    assert "/invitations/" not in anonymous.get("/dev/mailbox/", follow_redirects=True).text
    assert "Mailbox" not in anonymous.get("/login").text


def test_mailbox_is_closed_to_members(demo: Demo) -> None:
    message_id, attachment_id = _invitation_in_the_mailbox(demo)
    member = demo.sign_in("ben@example.com")
    for path in (
        "/dev/mailbox/",
        f"/dev/mailbox/{message_id}",
        f"/dev/mailbox/{message_id}/attachments/{attachment_id}",
    ):
        response = member.get(path)
        assert response.status_code == 403
        assert "The development mailbox is for workspace admins only" in response.text
    assert 'href="/dev/mailbox/"' not in member.get("/").text
    assert 'href="/dev/mailbox/"' in demo.sign_in("ada@example.com").get("/").text


def test_an_unknown_email_costs_a_password_check_too(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same work for a known and an unknown account: timing does not tell which emails exist."""
    checked: list[str] = []

    def spy(pwhash: str, password: str) -> bool:
        checked.append(pwhash)
        return check_password_hash(pwhash, password)

    monkeypatch.setattr(demo_app.auth, "check_password_hash", spy)
    client = demo.client()
    unknown = post(client, "/login", {"email": "nobody@example.com", "password": "guess"})
    assert unknown.status_code == 401
    [dummy] = checked
    ben = demo.user("ben@example.com")
    assert ben is not None and ben.password_hash.split("$")[0] == dummy.split("$")[0]  # the same method
    known = post(client, "/login", {"email": "ben@example.com", "password": "guess"})
    assert known.status_code == 401
    assert checked == [dummy, ben.password_hash]
    assert "Incorrect email or password." in unknown.text and "Incorrect email or password." in known.text
    post(client, "/login", {"email": "nobody2@example.com", "password": "guess"})
    assert checked[-1] == dummy  # made once, then reused


def test_session_cookies_are_same_site_lax(demo: Demo) -> None:
    client = demo.client()
    response = post(client, "/login", {"email": "ben@example.com", "password": PASSWORD, "remember": "on"})
    assert response.status_code == 302
    cookies = {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}
    assert "SameSite=Lax" in cookies[demo.app.config["SESSION_COOKIE_NAME"]]
    assert "SameSite=Lax" in cookies["remember_token"]


def test_mailbox_is_off_when_an_smtp_server_is_configured(db_url: str) -> None:
    app = build_demo(db_url, MAIL_SERVER="smtp.example.com")
    try:
        assert app.config["MAIL_SUPPRESS_SEND"] is False
        assert app.test_client().get("/dev/mailbox/").status_code == 404
    finally:
        drop(app)


def test_seeding_an_empty_workspace_tells_a_120_day_story(db_url: str) -> None:
    app = build_demo(db_url)
    try:
        runner = app.test_cli_runner()
        result = runner.invoke(args=["demo", "init"])
        assert result.exit_code == 0, result.output
        assert re.search(r"Seeded 14 users, 5 teams and [\d,]+ audit events over 120 days", result.output)
        assert f"admin   {seed.ADMIN_EMAIL}" in result.output
        assert seed.ADMIN_PASSWORD in result.output and seed.MEMBER_PASSWORD in result.output
        again = runner.invoke(args=["demo", "init"])
        assert "The workspace already has data: nothing seeded." in again.output
        with app.app_context():
            events = list(
                db.session.scalars(sa.select(AuditEvent).where(AuditEvent.event_type != "audit.enabled"))
            )
            db.session.remove()
        assert 2000 <= len(events) <= 5000
        # Every type the workspace's people cause; the pipeline's own events (streams, alerts,
        # health, review sign-offs) come from its running parts, not from the seeded story.
        pipeline = {kind for kind in EVENT_TYPES if kind.startswith("audit.stream_")}
        pipeline |= {"audit.enabled", "audit.alert_sent", "audit.health_failed", "audit.reviewed"}
        assert {event.event_type for event in events} == set(EVENT_TYPES) - pipeline
        oldest = min(event.occurred_at for event in events)
        now = dt.datetime.now(dt.timezone.utc)
        assert now - dt.timedelta(days=121) < oldest < now - dt.timedelta(days=119)
        assert max(event.occurred_at for event in events) < now
        ips = {event.ip for event in events if event.ip}
        assert all(any(ipaddress.ip_address(ip) in net for net in DOC_NETWORKS) for ip in ips)
        assert any(":" in ip for ip in ips)
        assert len({event.user_agent for event in events}) >= 5
        assert sum(event.outcome == "failure" for event in events) >= 20
        assert {event.tenant_id for event in events} == {None}
        client = app.test_client()
        post(client, "/login", {"email": seed.ADMIN_EMAIL, "password": seed.ADMIN_PASSWORD})
        assert "Audit logs" in client.get("/settings/audit-logs/").text
    finally:
        drop(app)


@pytest.mark.backends("sqlite")
def test_sqlite_runs_in_wal_mode(demo: Demo) -> None:
    with demo.app.app_context():
        assert db.session.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        db.session.remove()


def test_a_database_outage_is_a_page_to_retry_not_a_500(db_url: str, tmp_path: pathlib.Path) -> None:
    url = sa.make_url(db_url)
    if url.get_backend_name() == "sqlite":
        offline = f"sqlite:///{tmp_path / 'missing-folder' / 'demo.db'}"
    else:
        offline = url.set(port=1).render_as_string(hide_password=False)
    app = demo_app.create_app({"SQLALCHEMY_DATABASE_URI": offline, "SECRET_KEY": "test"})
    client = app.test_client()
    response = post(client, "/login", {"email": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "cannot reach its database just now" in response.text


def test_a_sign_in_that_cannot_be_recorded_is_refused(demo: Demo) -> None:
    """``AUDIT_ON_WRITE_ERROR = "raise"`` (the default): no event, no sign-in."""
    with demo.app.app_context():
        refuse_audit_writes(db.engine)
    client = demo.client()
    response = post(client, "/login", {"email": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 503
    assert client.get("/").status_code == 302  # still signed out: back to the sign-in page


@pytest.mark.backends("postgresql", "mariadb")
def test_sign_in_works_after_the_database_ended_the_pooled_connection(demo: Demo) -> None:
    with demo.app.app_context():
        end_pooled_connection(db.engine)
    demo.sign_in("ada@example.com")
    assert [e.actor_email for e in demo.events("user.login")] == ["ada@example.com"]


@pytest.mark.backends("postgresql", "mariadb")
def test_a_connection_ended_after_the_response_does_not_make_a_500(demo: Demo) -> None:
    """The server ends the request's connection between the view and the teardown (a restart)."""

    def end_the_sessions_connection(response: Response) -> Response:
        end_server_connection(db.engine, server_connection_id(db.session.connection()))
        return response

    demo.app.after_request(end_the_sessions_connection)
    client = demo.sign_in("ada@example.com")
    demo.app.after_request_funcs[None].remove(end_the_sessions_connection)
    assert client.get("/").status_code == 200
    assert [e.actor_email for e in demo.events("user.login")] == ["ada@example.com"]
