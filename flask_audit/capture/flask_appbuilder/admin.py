"""The audit page in a FAB app: FAB's admins, FAB's login, FAB's Security menu.

- Without ``AUDIT_IS_ADMIN``, an audit admin is a user with FAB's admin role
  (``AUTH_ROLE_ADMIN``, ``"Admin"`` by default) or FAB's ``can_access`` on ``AuditLog``.
- FAB sets Flask-Login's ``login_view`` to ``"login"``, an endpoint it never defines (its
  own views redirect by class name), so a redirect to it fails; it is pointed at FAB's real
  login view unless it already names an endpoint.
- "Audit log" under "Security": a FAB view guarded by ``can_access on AuditLog``, drawn
  in FAB's layout, with the latest events and a link to the full page (filters, export).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import typing as t
import zoneinfo

from flask import abort
from flask import current_app
from flask import Flask
from flask import url_for
from flask_appbuilder import BaseView  # type: ignore[import-untyped]
from flask_appbuilder import expose
from flask_appbuilder import has_access

from ...admin.presentation import EventView
from ...admin.presentation import PAGE_COLUMNS
from ...admin.views import scope
from ...query import filters
from ...query import sql
from ...state import audit_state
from ...store.context import current_user_or_none

PERMISSION = "access"
VIEW_MENU = "AuditLog"
LATEST = 25


def hook(app: Flask, appbuilder: t.Any) -> None:
    """Make FAB's admins the audit admins, send visitors to FAB's login, add the menu entry."""
    if app.config.get("AUDIT_IS_ADMIN") is None:
        state = audit_state(app)
        state.config = dataclasses.replace(
            state.config, is_admin=functools.partial(is_fab_admin, appbuilder.sm)
        )
    _fix_login_view(app, appbuilder)
    if any(isinstance(view, AuditLogView) for view in appbuilder.baseviews):
        return
    appbuilder.add_view(
        AuditLogView, "Audit log", icon="fa-list-alt", category="Security", category_icon="fa-cogs"
    )


def is_fab_admin(sm: t.Any, user: t.Any) -> bool:
    """FAB's admin role, or FAB's ``can_access`` on ``AuditLog`` through any role."""
    admin_role = current_app.config.get("AUTH_ROLE_ADMIN", "Admin")
    if any(getattr(role, "name", None) == admin_role for role in getattr(user, "roles", None) or ()):
        return True
    return (f"can_{PERMISSION}", VIEW_MENU) in sm.get_user_permissions(user)


def _fix_login_view(app: Flask, appbuilder: t.Any) -> None:
    manager = getattr(app, "login_manager", None)
    auth_view = getattr(appbuilder.sm, "auth_view", None)
    if manager is None or auth_view is None or getattr(auth_view, "blueprint", None) is None:
        return
    view = manager.login_view
    if isinstance(view, str) and (
        view in app.view_functions or view.startswith(("/", "http://", "https://"))
    ):
        return
    manager.login_view = f"{auth_view.blueprint.name}.login"


class AuditLogView(BaseView):  # type: ignore[misc]
    """The latest events in FAB's layout; the full page filters and exports."""

    route_base = "/auditlog"
    class_permission_name = VIEW_MENU
    method_permission_name = {"index": PERMISSION}
    default_view = "index"

    @expose("/")  # type: ignore[untyped-decorator]
    @has_access  # type: ignore[untyped-decorator]
    def index(self) -> t.Any:
        state = audit_state()
        config = state.config
        user = current_user_or_none()
        if user is None or not config.is_admin(user):  # a FAB permission given to the public role
            abort(403)
        tz = zoneinfo.ZoneInfo(config.timezone)
        now = dt.datetime.now(dt.timezone.utc)
        flt = filters.AuditFilter.from_args({}, timezone=config.timezone)
        with state.engine.connect() as conn:
            page = sql.fetch_page(conn, flt, limit=LATEST, columns=PAGE_COLUMNS, now=now, **scope(config))
        return self.render_template(
            "flask_audit/fab/index.html",
            events=[EventView(row, tz) for row in page.rows],
            tzname=config.timezone,
            latest=LATEST,
            retention_days=config.retention_days,
            full_url=url_for("audit.index"),
        )
