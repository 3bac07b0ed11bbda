"""The events one flush makes of FAB's users and roles, built before they are inserted."""

from __future__ import annotations

import typing as t

from ...exceptions import AuditWriteError
from ...store.rows import build_row
from ...store.rows import CURRENT
from ...store.rows import UnresolvedContext

CONNECTED = "audit.flask_appbuilder"  # app.extensions key: FAB was hooked for this app


class Rows:
    """Rows for :func:`~flask_audit.store.recorder.write_in_flush`, in the order they were made."""

    def __init__(self, config: t.Any) -> None:
        self.config = config
        self.rows: list[dict[str, t.Any]] = []

    def add(
        self,
        event_type: str,
        target: tuple[str, t.Any],
        activity: str,
        details: dict[str, t.Any],
        actor: t.Any = CURRENT,
    ) -> None:
        custom = event_type == "user.updated"
        try:
            row = build_row(
                self.config,
                event_type,
                activity=activity,
                entity="User" if custom else None,
                action="update" if custom else None,
                target=target,
                details=details,
                actor=actor,
            )
        except UnresolvedContext as err:  # no change commits without its event
            raise AuditWriteError(f"The change could not be recorded: {err}.") from err
        self.rows.append(row)
