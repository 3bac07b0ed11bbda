"""The stream health page: ``GET <AUDIT_URL_PREFIX>/streams``.

Shows each ``AUDIT_STREAMS`` destination's state, cursor, lag, last delivery and last
error (:func:`flask_audit.stream.stream_status`). The blueprint's admin check applies, and
one more: destinations are global, each carrying every tenant's events, so their lag and
their errors (which may quote a peer's answer about any tenant's event) are no one
tenant's business. With ``AUDIT_TENANT_LOADER`` set, only an admin whose tenant is ``None``
(an operator of the whole installation) may see the page; a tenant's admin gets 403.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from flask import abort
from flask import render_template
from flask import url_for
from flask.typing import ResponseReturnValue

from ..exceptions import AuditConfigError
from ..state import audit_state
from ..store.context import current_tenant
from ..stream import stream_status
from ..stream import StreamStatus
from .api import iso_utc
from .views import blueprint

#: How each state reads on the page, and its badge's modifier class.
STATES = {
    "running": ("Running", "fa-badge--create"),
    "stopped": ("Stopped", "fa-badge--update"),
    "new": ("Not started", "fa-badge--update"),
    "paused": ("Paused", "fa-badge--export"),
    "failing": ("Failing", "fa-badge--failure"),
}
TENANT_REFUSAL = (
    "Stream destinations carry every tenant's events: only an admin without a tenant may view them."
)


def duration(seconds: float) -> str:
    """``seconds`` as a short human duration: ``"0 s"``, ``"42 s"``, ``"3 min"``, ``"2 h 5 min"``."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    hours, minutes = divmod(whole // 60, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} d {hours % 24} h"


@dataclasses.dataclass(frozen=True)
class StreamRowView:
    """One destination as the template shows it: labels and times already formatted."""

    status: StreamStatus
    label: str
    badge: str
    lag: str
    delivered_iso: str | None
    delivered_text: str | None
    failing_for: str | None

    @classmethod
    def of(cls, status: StreamStatus, now: dt.datetime) -> StreamRowView:
        label, badge = STATES.get(status.state, (status.state.capitalize(), "fa-badge--update"))
        at = status.delivered_at
        since = status.failing_since
        return cls(
            status=status,
            label=label,
            badge=badge,
            lag=duration(status.lag_seconds),
            delivered_iso=iso_utc(at) if at else None,
            delivered_text=at.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if at else None,
            failing_for=duration((now - since).total_seconds()) if since else None,
        )


@blueprint.get("/streams")
def streams() -> ResponseReturnValue:
    """Every destination's health, for admins without a tenant."""
    state = audit_state()
    if state.config.tenant_loader is not None and current_tenant(state.config) is not None:
        abort(403, description=TENANT_REFUSAL)
    error = None
    try:
        found = stream_status()
    except AuditConfigError as err:
        found, error = [], str(err)
    now = dt.datetime.now(dt.timezone.utc)
    return render_template(
        "flask_audit/streams.html",
        rows=[StreamRowView.of(each, now) for each in found],
        config_error=error,
        back_url=url_for("audit.index"),
    )
