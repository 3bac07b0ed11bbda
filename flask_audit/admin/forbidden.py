"""The page a signed-in visitor who is not an audit admin sees: who may read the log, and how to ask.

Werkzeug's bare 403 text tells a member nothing they can act on; this page, drawn with the
package's base template so it looks like the rest of the audit log, names the people who can
see the log (the administrators of the visitor's organisation) and what to ask them for. The
JSON API keeps its JSON 403: a script reads the ``error`` field, not a page.
"""

from __future__ import annotations

import typing as t

from flask import render_template
from flask import request
from flask import url_for

from ..config import AuditConfig
from ..store.context import current_tenant

#: The reason, for the app's developers: the settings that decide who is an admin.
REFUSAL = "Only audit admins may view this page (AUDIT_IS_ADMIN / AUDIT_ADMIN_ROLE)."


def forbidden_page(config: AuditConfig, user: t.Any) -> tuple[str, int]:
    """The styled refusal for ``user``, with status 403."""
    try:
        email = config.actor_email(user)
    except Exception:  # an app's email callable failing must not turn a refusal into a 500
        email = None
    html = render_template(
        "flask_audit/forbidden.html",
        email=email,
        tenant=current_tenant(config),
        site=request.host,
        home_url=request.host_url,
        page_url=url_for("audit.index", _external=True),
        refusal=REFUSAL,
    )
    return html, 403
