"""Without AUDIT_ALERT_RECIPIENTS, a Flask-Security-Too app mails the users holding the
admin role (active ones only), through a real SMTP server."""

from __future__ import annotations

import pytest

from flask_audit import compliance

from ..export_fixtures import SmtpServer
from ..flask_security_fixtures import add_user
from ..flask_security_fixtures import db
from ..flask_security_fixtures import MakeSecurityApp
from ..flask_security_fixtures import security
from .alert_fixtures import mails
from .alert_fixtures import record
from .alert_fixtures import settle

pytestmark = pytest.mark.backends("sqlite")


def test_flask_security_admins_receive_the_alerts(
    make_security_app: MakeSecurityApp, smtp: SmtpServer
) -> None:
    app = make_security_app(**smtp.config(), AUDIT_ALERTS=None)
    compliance.connect(app)
    add_user(app, "boss@example.com")
    add_user(app, "gone@example.com", active=False)
    add_user(app, "staff@example.com")
    with app.app_context():
        datastore = security(app).datastore
        admin = datastore.find_or_create_role("admin")
        for email in ("boss@example.com", "gone@example.com"):
            user = datastore.find_user(email=email)
            assert user is not None
            datastore.add_role_to_user(user, admin)
        db.session.commit()
        db.session.remove()
    settle(app)
    record(app, "sso.disabled")
    settle(app)
    assert [rcpt for subject, rcpt in mails(smtp) if subject == "[Audit alert] SSO changed"] == [
        ["boss@example.com"]
    ]
