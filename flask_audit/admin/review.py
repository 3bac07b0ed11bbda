"""The daily review page: ``GET`` and ``POST <AUDIT_URL_PREFIX>/review``.

Lists the days not yet reviewed with what each holds, and the sign-offs so far; an admin
marks a day, or a range of days, reviewed with an optional note, recorded as
``audit.reviewed``. The blueprint's admin check applies: members get 403. The logic lives
in :mod:`flask_audit.compliance.review`.
"""

from __future__ import annotations

from flask import abort
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask.typing import ResponseReturnValue

from ..compliance import review
from ..state import audit_state
from .views import blueprint
from .views import scope

NOTE_LENGTH = 2000


def _check_csrf() -> None:
    from flask_wtf.csrf import validate_csrf
    from wtforms import ValidationError  # type: ignore[import-untyped]

    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError as err:
        abort(400, description=f"The review was not recorded: {err.args[0]} Reload the page and try again.")


@blueprint.get("/review")
def review_page() -> ResponseReturnValue:
    """The days not yet reviewed, and the sign-offs so far."""
    from flask_wtf.csrf import generate_csrf

    state = audit_state()
    where = scope(state.config)
    with state.engine.connect() as conn:
        days = review.unreviewed(conn, state.config, where)
        done = review.reviews(conn, where)
    return render_template(
        "flask_audit/review.html",
        days=days,
        reviews=done,
        timezone=state.config.timezone,
        csrf_token=generate_csrf(),
        back_url=url_for("audit.index"),
    )


@blueprint.post("/review")
def review_mark() -> ResponseReturnValue:
    """Record the sign-off of the submitted range, then show the page again."""
    _check_csrf()
    state = audit_state()
    try:
        first, last = review.check_range(
            state.config, request.form.get("from", ""), request.form.get("to", request.form.get("from", ""))
        )
    except ValueError as err:
        abort(400, description=str(err))
    note = request.form.get("note", "").strip()[:NOTE_LENGTH]
    span = str(first) if first == last else f"{first} to {last}"
    state.audit.record(
        review.REVIEWED,
        entity="Audit log",
        action="update",
        activity=f"Reviewed the audit log of {span}",
        details={"from": str(first), "to": str(last), "note": note, "timezone": state.config.timezone},
    )
    return redirect(url_for("audit.review_page"), code=303)
