"""The per-app state of the extension, and the accessor every part reaches it through.

Routes, commands, capture adapters and background jobs read the settings, the database
and the recorder from here, so that none of them imports :mod:`flask_audit.extension`:
the extension depends on its parts, never the other way round.
"""

from __future__ import annotations

import dataclasses
import typing as t

import sqlalchemy as sa
from flask import current_app
from flask import Flask

from .config import AuditConfig
from .exceptions import AuditConfigError
from .store.engine import trail_engine
from .store.engine import Writer

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .store.models import AuditEvent


class Recorder(t.Protocol):
    """What the parts call on the :class:`~flask_audit.Audit` object: its one write path."""

    def record(self, *args: t.Any, **kwargs: t.Any) -> AuditEvent: ...


@dataclasses.dataclass
class AuditState:
    """What one app needs at run time; kept per app, never on the extension object."""

    config: AuditConfig
    db: SQLAlchemy
    audit: Recorder
    writer: Writer = dataclasses.field(default_factory=Writer)

    @property
    def engine(self) -> sa.Engine:
        """The database that holds the trail: reads, seals, prune, export, replay."""
        return trail_engine(self.db, self.config)

    @property
    def writer_engine(self) -> sa.Engine:
        """The pool of the audit writer's own that standalone events are committed through."""
        return self.writer.engine(self.db, self.config)


def audit_state(app: Flask | None = None) -> AuditState:
    """The state of ``app`` (the current app by default), with the fix when it has none."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    audit = app.extensions.get("audit")
    if audit is None:
        raise AuditConfigError(
            f"The app {app.name!r} has no Audit extension: call Audit(app, db=db) or audit.init_app(app)."
        )
    return t.cast(AuditState, audit._state(app))


def current_audit(app: Flask | None = None) -> Recorder:
    """The app's :class:`~flask_audit.Audit` object, as the parts use it: to record."""
    return audit_state(app).audit
