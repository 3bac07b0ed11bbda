"""The ``audit`` blueprint: the admin page, mounted at ``AUDIT_URL_PREFIX``.

One blueprint object serves every app; each app mounts it at its own prefix and the
views read that app's settings at request time. Every route but the stylesheet is for
admins only: anonymous visitors go to the app's login (JSON 401 for the API), other users
get 403, and with a tenant loader an admin sees only their own tenant's events.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import typing as t
import urllib.parse
import weakref
import zoneinfo

import sqlalchemy as sa
from flask import abort
from flask import Blueprint
from flask import current_app
from flask import Flask
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response

from ..compliance.settings import tenant_window
from ..config import AuditConfig
from ..exceptions import InvalidFilterError
from ..query import filters
from ..query import sql
from ..query import suggestions
from ..query.resolve import resolve
from ..query.search import Search
from ..query.search import SearchError
from ..signals import event_recorded
from ..state import audit_state
from ..store.context import current_tenant
from ..store.models import AuditEvent
from ..taxonomy import ACTIONS
from ..taxonomy import ENTITIES
from ..taxonomy import EVENT_TYPES
from ..taxonomy import OUTCOMES
from . import daycounts
from .forbidden import forbidden_page
from .forbidden import REFUSAL
from .presentation import COMMON_ZONES
from .presentation import day_label
from .presentation import DaySeries
from .presentation import EventView
from .presentation import PAGE_COLUMNS

#: Templates and static files sit at the package's top, shared by the page, export and mail.
blueprint = Blueprint(
    "audit",
    __name__,
    root_path=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

PAGE_SIZE = 50
#: The filters under "More filters": its panel opens when one of them is applied. The search
#: box, the entity and the event type stay in the bar.
MORE_FILTERS = ("action", "outcome", "actor", "team", "start", "end")
TZ_COOKIE = "flask_audit_tz"

#: Per app, one day-count cache per search (``None``: no search): the cache keys the other
#: filters itself. At most :data:`SEARCH_CACHES` searches are kept, the oldest dropped first.
_counts: weakref.WeakKeyDictionary[Flask, dict[Search | None, daycounts.DayCountCache]] = (
    weakref.WeakKeyDictionary()
)
_counts_lock = threading.Lock()
SEARCH_CACHES = 64
_suggested: weakref.WeakKeyDictionary[Flask, suggestions.SuggestionCache] = weakref.WeakKeyDictionary()


def register(app: Flask, config: AuditConfig) -> None:
    """Mount the blueprint on ``app`` at ``AUDIT_URL_PREFIX``."""
    # Routes can only be added before the blueprint's first mount: the API's and the export's.
    from ..export.views import add_export_routes
    from . import api  # noqa: F401
    from . import detail  # noqa: F401
    from . import review  # noqa: F401
    from . import streams  # noqa: F401

    add_export_routes(blueprint)
    app.register_blueprint(blueprint, url_prefix=config.url_prefix)


def scope(config: AuditConfig) -> sql.Scope:
    """Keyword arguments that confine a query to the admin's tenant and its window (a
    tenant may keep its events longer than ``AUDIT_RETENTION_DAYS``: it sees them all)."""
    tenant = current_tenant(config)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return sql.Scope(
        retention_days=tenant_window(app, tenant),
        tenant_scoped=config.tenant_loader is not None,
        tenant_id=tenant,
    )


def _current_user() -> t.Any:
    if getattr(current_app, "login_manager", None) is None:
        return None
    from flask_login import current_user

    user = current_user._get_current_object()
    return user if user is not None and user.is_authenticated else None


@blueprint.before_request
def _require_admin() -> ResponseReturnValue | None:
    """Admins only; the stylesheet is public, the API answers in JSON and never redirects."""
    endpoint = request.endpoint or ""
    if endpoint == "audit.static":
        return None
    is_api = endpoint.startswith("audit.api")
    user = _current_user()
    if user is None:
        if is_api:
            return jsonify(error="Sign in as an administrator to read the audit log."), 401
        manager = getattr(current_app, "login_manager", None)
        if manager is None:
            abort(401)
        try:
            return manager.unauthorized()  # type: ignore[no-any-return]
        except BuildError:  # its login_view names no endpoint: nowhere to send the visitor
            abort(401)
    config = audit_state().config
    if not config.is_admin(user):
        # Name the setting: an app's own admins refused here need AUDIT_IS_ADMIN or AUDIT_ADMIN_ROLE.
        if is_api:
            return jsonify(error=REFUSAL), 403
        return forbidden_page(config, user)
    return None


def _no_framing(policy: str | None) -> str:
    """``policy`` with ``frame-ancestors 'none'``: the app's other directives kept, its own
    ``frame-ancestors`` (if any) replaced, since no page of the audit log may be framed."""
    directives = [part.strip() for part in (policy or "").split(";") if part.strip()]
    kept = [part for part in directives if part.split()[0].lower() != "frame-ancestors"]
    return "; ".join([*kept, "frame-ancestors 'none'"])


@blueprint.after_request
def _private(response: Response) -> Response:
    """Audit data must not sit in shared caches, nor leak filter values through referrers;
    no page may be framed (a framed, signed-in page can be clicked into an export), and no
    response sniffed into another type (the JSON API, the CSV download)."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = _no_framing(response.headers.get("Content-Security-Policy"))
    if request.endpoint != "audit.static":
        response.headers["Cache-Control"] = "private, no-store"
        response.headers["Referrer-Policy"] = "same-origin"
    return response


def _day_cache(app: Flask, search: Search | None) -> daycounts.DayCountCache:
    with _counts_lock:
        caches = _counts.setdefault(app, {})
        cache = caches.get(search)
        if cache is None:
            if len(caches) > SEARCH_CACHES:
                caches.pop(next(key for key in caches if key is not None), None)
            cache = caches[search] = daycounts.DayCountCache()
        return cache


def _suggestion_cache(app: Flask) -> suggestions.SuggestionCache:
    with _counts_lock:
        cache = _suggested.get(app)
        if cache is None:
            cache = _suggested[app] = suggestions.SuggestionCache()
        return cache


@event_recorded.connect
def _forget_past_days(sender: Flask, event: AuditEvent, **extra: t.Any) -> None:
    """An event dated before today changes settled days: count them again."""
    with _counts_lock:
        caches = list(_counts.get(sender, {}).values())
    if event.occurred_at is not None:
        for cache in caches:
            cache.forget_before(event.occurred_at)


def _timezone(config: AuditConfig) -> tuple[str, bool]:
    """The display zone, and whether it came from the query string (then it is remembered)."""
    given = request.args.get("tz", "")
    if given.strip():
        return filters.resolve_timezone(given, config.timezone), True
    try:
        return filters.resolve_timezone(request.cookies.get(TZ_COOKIE), config.timezone), False
    except InvalidFilterError:
        return config.timezone, False


def _link_args() -> dict[str, str]:
    names = (*filters.FILTER_NAMES, "tz")
    return {name: request.args[name] for name in names if name != "cursor" and request.args.get(name)}


def _clean_url() -> str | None:
    """The page's URL without the blank fields a GET form sends, or ``None`` if it has none.

    Each filter keeps the value the page reads (its first); other parameters stay as sent.
    """
    names = {*filters.FILTER_NAMES, "tz"}
    if not any(request.args.get(name, "x").strip() == "" for name in names):
        return None
    kept: list[tuple[str, str]] = []
    for name, values in request.args.lists():
        if name not in names:
            kept += [(name, value) for value in values]
        elif values[0].strip():
            kept.append((name, values[0]))
    query = urllib.parse.urlencode(kept, safe="!$'()*,/:;?@")  # as url_for writes them
    return url_for("audit.index") + (f"?{query}" if query else "")


def _day_link() -> t.Callable[[dt.date], str]:
    """A day to this page filtered to that day alone, the other filters kept: the chart's links.

    The URL without dates is built once; each of the chart's days only appends its own.
    """
    args: dict[str, t.Any] = {k: v for k, v in _link_args().items() if k not in ("start", "end")}
    base = url_for("audit.index", **args)
    joiner = "&" if "?" in base else "?"
    return lambda day: f"{base}{joiner}start={day.isoformat()}&end={day.isoformat()}"


def _export_context(tzname: str) -> dict[str, t.Any]:
    """The export form's target and fields, when the app provides ``audit.export``."""
    if "audit.export" not in current_app.view_functions:
        return {"export_url": None, "export_filters": {}, "csrf_token": None, "export_unavailable": None}
    from flask_wtf.csrf import generate_csrf

    from ..export.views import unavailable_reason

    # The visitor's own values and zone: the export reads them as the page did, and sends
    # the admin back to the same link.
    return {
        "export_url": url_for("audit.export"),
        "export_filters": {**_link_args(), "tz": tzname},
        "csrf_token": generate_csrf(),
        "export_unavailable": unavailable_reason(),  # said by the button, not after a click
    }


@blueprint.get("/")
def index() -> ResponseReturnValue:
    """The audit log page; a bad filter shows its message with the form (HTTP 400).

    A form sent with blank fields is redirected to the same filters without them, so that
    an applied filter is a clean link.
    """
    clean = _clean_url()
    if clean is not None:
        return redirect(clean, 302)
    state = audit_state()
    config = state.config
    now = dt.datetime.now(dt.timezone.utc)
    tzname, remember = config.timezone, False
    failure: InvalidFilterError | None = None
    flt: filters.AuditFilter | None = None
    try:
        tzname, remember = _timezone(config)
        flt = filters.AuditFilter.from_args(request.args, timezone=tzname)
    except InvalidFilterError as err:
        failure, remember = err, False
    tz = zoneinfo.ZoneInfo(tzname)
    with state.engine.connect() as conn:
        try:
            context = _read(conn, config, flt, tzname, now)
        except InvalidFilterError as err:  # a search this database cannot run
            failure, remember = err, False
            context = _read(conn, config, None, tzname, now)
    error = None if failure is None else str(failure)
    kept_days = _kept_days(config)
    html = render_template(
        "flask_audit/index.html",
        error=error,
        search_error=failure if isinstance(failure, SearchError) else None,
        form=_form_values(tzname),
        tzname=tzname,
        retention_days=kept_days,
        review_url=url_for("audit.review_page")
        if "audit.review_page" in current_app.view_functions
        else None,
        streams_url=_streams_url(config),
        more_open=any(request.args.get(name, "").strip() for name in MORE_FILTERS),
        window_start=sql.window_start(kept_days, now).astimezone(tz).date(),
        today=now.astimezone(tz).date(),
        entities=ENTITIES,
        event_types=sorted(EVENT_TYPES),
        actions=ACTIONS,
        outcomes=OUTCOMES,
        zones=COMMON_ZONES,
        day_label=day_label,
        since_day=context["since"].astimezone(tz).date() if context["since"] else None,
        clear_url=url_for("audit.index", tz=tzname if remember else None),
        **context,
    )
    response = current_app.make_response((html, 400 if error else 200))
    if remember:
        response.set_cookie(
            TZ_COOKIE, tzname, max_age=365 * 86400, path=config.url_prefix, samesite="Lax", httponly=True
        )
    return response


def _kept_days(config: AuditConfig) -> int:
    """How long the visitor's tenant keeps its events: its own window, never below the floor."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return tenant_window(app, current_tenant(config))


def _streams_url(config: AuditConfig) -> str | None:
    """The stream health page, for those who may see it, when streams are set up."""
    if not current_app.config.get("AUDIT_STREAMS"):
        return None
    if config.tenant_loader is not None and current_tenant(config) is not None:
        return None  # destinations carry every tenant's events: see admin/streams.py
    return url_for("audit.streams")


def _form_values(tzname: str) -> dict[str, str]:
    """What the filter form shows: the visitor's own text, so a shared link reads the same."""
    names = (*filters.FILTER_NAMES, "tz")
    values = {name: request.args.get(name, "").strip() for name in names if name != "cursor"}
    values["tz"] = values["tz"] or tzname
    return values


def _read(
    conn: sa.Connection, config: AuditConfig, flt: filters.AuditFilter | None, tzname: str, now: dt.datetime
) -> dict[str, t.Any]:
    """Everything the page shows from the database; only "tracking since" without a filter."""
    where = scope(config)
    since = sql.oldest_time(conn, now=now, **where)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    context: dict[str, t.Any] = {
        "since": since,
        "suggestions": _suggestion_cache(app).get(conn, where, now) if since else suggestions.Suggestions(),
        "events": [],
        "chart": DaySeries([]),
        "older_url": None,
        "newer_url": None,
        "first_url": None,
        "filtered": False,
        "export_url": None,
        "export_filters": {},
        "csrf_token": None,
    }
    if flt is None:
        return context
    tz = zoneinfo.ZoneInfo(tzname)
    sql.check_backend(conn, flt)
    # Once, for the table and the chart alike.
    flt = resolve(conn, flt, tenant_scoped=where["tenant_scoped"], tenant_id=where["tenant_id"])
    page = sql.fetch_page(conn, flt, limit=PAGE_SIZE, columns=PAGE_COLUMNS, now=now, **where)
    if since is not None:
        cache = _day_cache(app, flt.q)
        first_day = since.astimezone(tz).date()
        days = daycounts.chart_counts(
            conn, flt, cache=cache, timezone=tzname, first_day=first_day, now=now, **where
        )
        context["chart"] = DaySeries(days, link=_day_link())
    args: dict[str, t.Any] = _link_args()

    def link(cursor: filters.Cursor | None) -> str | None:
        return None if cursor is None else url_for("audit.index", **args, cursor=cursor.encode())

    context.update(
        events=[EventView(row, tz) for row in page.rows],
        older_url=link(page.older),
        newer_url=link(page.newer),
        first_url=None if page.first else url_for("audit.index", **args),
        filtered=not flt.is_empty,
        **_export_context(tzname),
    )
    return context
