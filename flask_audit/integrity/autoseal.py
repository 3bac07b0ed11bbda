"""Automatic sealing, and the ORM guard that keeps seals insert-only.

:func:`flask_audit.integrity.sealing.seal` is something to run; this module decides when. With
``AUDIT_SEAL_EVERY_EVENTS`` or ``AUDIT_SEAL_INTERVAL_SECONDS`` set, an :class:`AutoSealer`
counts :data:`~flask_audit.signals.event_recorded` and seals in a background thread, so
no request waits for it; its links go to the ``AUDIT_SEAL_WITNESS`` too. :func:`connect_auto_seal`
is what ``init_app`` calls; it also installs the session guard that refuses ORM changes to
:class:`~flask_audit.store.models.AuditSeal`.
"""

from __future__ import annotations

import threading
import time
import typing as t
import weakref

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask import Flask

from ..config import AuditConfig
from ..exceptions import ImmutableAuditEventError
from ..signals import event_recorded
from ..state import audit_state
from ..store.folding import report_due
from ..store.models import AuditSeal
from .sealing import logger
from .sealing import seal
from .witness import configured_witness


class AutoSealer:
    """Seals an app's trail in the background every N events or T seconds after an event.

    The receiver only counts; sealing runs in a short-lived daemon thread, one at a time per
    app, so no request waits for it. A failed run is logged and retried at the next trigger.
    """

    def __init__(self, app: Flask, every: int | None, interval: float | None) -> None:
        self._app = weakref.ref(app)
        self.every, self.interval = every, interval
        self._lock = threading.Lock()
        self._pending = 0
        self._timer: threading.Timer | None = None
        self._worker: threading.Thread | None = None

    def event_recorded(self, sender: Flask, **kwargs: t.Any) -> None:
        if kwargs.get("spooled"):
            return
        with self._lock:
            self._pending += 1
            self._schedule()

    def _schedule(self) -> None:
        """Start a run if one is due, or a timer if only time can make it due (lock held)."""
        if self._worker is not None or not self._pending:
            return
        if self.every is not None and self._pending >= self.every:
            self._start()
        elif self.interval is not None and self._timer is None:
            self._timer = threading.Timer(self.interval, self._on_timer)
            self._timer.daemon = True
            self._timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
            if self._worker is None and self._pending:
                self._start()

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending = 0
        self._worker = threading.Thread(target=self._run, name="flask-audit-seal", daemon=True)
        self._worker.start()

    def _run(self) -> None:
        try:
            app = self._app()
            if app is not None:
                with app.app_context():
                    state = audit_state(app)
                    report_due(state.engine, state.config)
                    seal(state.engine, state.config.seal_key, witness=configured_witness(state.config))
        except Exception:
            logger.exception("Automatic sealing failed; it runs again at the next trigger.")
        finally:
            with self._lock:
                self._worker = None
                self._schedule()

    def join(self, timeout: float = 30.0) -> bool:
        """Wait until no seal is running or waiting for its timer; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = self._worker or self._timer
            if busy is None:
                return True
            busy.join(max(deadline - time.monotonic(), 0))
        return False

    def close(self) -> None:
        """Forget pending events and any waiting timer; a running seal finishes on its own."""
        with self._lock:
            timer, self._timer, self._pending = self._timer, None, 0
        if timer is not None:
            timer.cancel()


_SEALERS: weakref.WeakKeyDictionary[Flask, AutoSealer] = weakref.WeakKeyDictionary()


def connect_auto_seal(app: Flask, config: AuditConfig) -> AutoSealer | None:
    """Install the seal table's ORM guard and, if configured, automatic sealing for ``app``.

    Called once per app by :meth:`flask_audit.Audit.init_app`; calling it again is harmless.
    Returns the app's :class:`AutoSealer`, or ``None`` when neither
    ``AUDIT_SEAL_EVERY_EVENTS`` nor ``AUDIT_SEAL_INTERVAL_SECONDS`` is set.
    """
    install_seal_guard()
    if config.seal_every_events is None and config.seal_interval_seconds is None:
        return None
    sealer = _SEALERS.get(app)
    if sealer is None:
        sealer = _SEALERS[app] = AutoSealer(app, config.seal_every_events, config.seal_interval_seconds)
        event_recorded.connect(sealer.event_recorded, sender=app)
    return sealer


def _refuse_seal_changes(session: sa_orm.Session, flush_context: t.Any, instances: t.Any) -> None:
    for obj in (*session.deleted, *session.dirty):
        if isinstance(obj, AuditSeal) and (obj in session.deleted or session.is_modified(obj)):
            raise ImmutableAuditEventError(f"AuditSeal {obj.id} cannot be changed: seals are insert-only.")


def _refuse_seal_bulk(state: sa_orm.ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and state.bind_mapper is not None:
        if state.bind_mapper.class_ is AuditSeal:
            raise ImmutableAuditEventError(
                "Seals cannot be changed in bulk through the ORM: they are insert-only."
            )


def install_seal_guard() -> None:
    """Refuse, in every session, to flush a change or deletion of an :class:`AuditSeal`."""
    if not sa.event.contains(sa_orm.Session, "before_flush", _refuse_seal_changes):
        sa.event.listen(sa_orm.Session, "before_flush", _refuse_seal_changes)
        sa.event.listen(sa_orm.Session, "do_orm_execute", _refuse_seal_bulk)
