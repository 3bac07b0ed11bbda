"""The stream worker: committed events after the cursor, in id order, to one destination.

One step takes (or renews) the destination's lease, reads up to ``batch_size`` events
after the cursor and no further than :func:`~flask_audit.integrity.sealing.committed_bound`
(so an id drawn before a later one commits is never jumped over), hands the selected ones
to the sink, and moves the cursor in the UPDATE that checks the lease is still held. A
worker that dies between the sink's ack and that UPDATE leaves the batch to be sent again:
at least once, each event with its uid. A failed batch is retried with exponential
back-off; a destination failing longer than ``AUDIT_STREAM_ALERT_AFTER`` becomes an event.

A batch must reach the sink within ``lease_seconds``: past it, another worker may take the
lease, and the late one's cursor update is refused.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import socket
import threading
import typing as t
import uuid

import sqlalchemy as sa
from flask import Flask

from ..exceptions import AuditError
from ..integrity.sealing import committed_bound
from ..state import audit_state
from ..store.models import audit_event_table
from . import cursor
from . import health
from .settings import alert_after
from .settings import Destination
from .sinks import make_sink
from .sinks import Sink
from .wire import encode_batch

logger = logging.getLogger("flask_audit.stream")
_EVENTS = audit_event_table

#: What a step did: ``delivered`` (the batch moved the cursor), ``idle`` (nothing new),
#: ``standby`` (another worker holds the lease), ``paused``, ``waiting`` (an open writer
#: holds an id below the newest), ``failed`` (the sink refused), ``lost`` (lease or cursor
#: changed under the batch).
Outcome = t.Literal["delivered", "idle", "standby", "paused", "waiting", "failed", "lost"]


@dataclasses.dataclass(frozen=True)
class Step:
    outcome: Outcome
    read: int = 0
    sent: int = 0
    cursor: int | None = None


def holder_name() -> str:
    """This worker's lease name: host, process and a random part (two threads never share it)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Relay:
    """Delivers one destination's events; one per thread, each with its own sink."""

    def __init__(
        self,
        app: Flask,
        destination: Destination,
        *,
        sink: Sink | None = None,
        holder: str | None = None,
        bound_timeout: float = 5.0,
    ) -> None:
        self.app = app
        self.destination = destination
        with app.app_context():
            self.engine = audit_state(app).engine
        self.sink = sink if sink is not None else make_sink(destination)
        self.holder = holder or holder_name()
        self.bound_timeout = bound_timeout
        self.alert_after = alert_after(app)
        self.failures = 0

    def step(self) -> Step:
        """One lease check and at most one batch."""
        name, dest = self.destination.name, self.destination
        state = cursor.take_lease(self.engine, name, self.holder, dest.lease_seconds)
        if state is None:
            return Step("standby")
        if state.paused:
            cursor.release(self.engine, name, self.holder)
            return Step("paused", cursor=state.cursor)
        rows = self._read(state.cursor)
        if rows is None:
            return Step("waiting", cursor=state.cursor)
        if not rows:
            return Step("idle", cursor=state.cursor)
        with self.engine.connect() as conn:
            messages = encode_batch(dest, conn, rows)
        try:
            if messages:
                self.sink.send(messages)
        except Exception as err:  # noqa: BLE001 - any sink failure is retried
            self._failed(err)
            return Step("failed", read=len(rows), cursor=state.cursor)
        new = int(rows[-1].id)
        moved = cursor.advance(
            self.engine,
            name,
            self.holder,
            old=state.cursor,
            new=new,
            delivered=len(messages),
            lease_seconds=dest.lease_seconds,
        )
        if not moved:
            logger.warning(
                "Stream %r: the lease or the cursor changed during a batch; it is read again.", name
            )
            return Step("lost", read=len(rows), sent=len(messages), cursor=state.cursor)
        if state.alerted:
            with self.app.app_context():
                health.record_recovered(name, state)
        self.failures = 0
        return Step("delivered", read=len(rows), sent=len(messages), cursor=new)

    def _read(self, after: int) -> list[t.Any] | None:
        """Up to a batch of committed events after ``after``; ``None`` while a writer is open."""
        with self.engine.connect() as conn:
            newest = conn.scalar(sa.select(sa.func.max(_EVENTS.c.id)))
        if newest is None or newest <= after:
            return []
        try:
            bound = committed_bound(self.engine, self.bound_timeout)
        except AuditError:
            return None
        if bound is None:
            return []
        query = (
            sa.select(_EVENTS)
            .where(_EVENTS.c.id > after, _EVENTS.c.id <= bound)
            .order_by(_EVENTS.c.id)
            .limit(self.destination.batch_size)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def _failed(self, err: Exception) -> None:
        self.failures += 1
        error = f"{type(err).__name__}: {err}"
        name = self.destination.name
        logger.warning("Stream %r: delivery failed (attempt %d): %s", name, self.failures, error)
        state = cursor.fail(self.engine, name, self.holder, error)
        failing_for = (
            0.0
            if state is None or state.failing_since is None
            else ((cursor.utcnow() - state.failing_since).total_seconds())
        )
        if state is not None and not state.alerted and failing_for >= self.alert_after:
            if cursor.mark_alerted(self.engine, name):
                with self.app.app_context():
                    health.record_failing(name, state, failing_for)

    def _step_surviving_the_database(self) -> Step:
        """:meth:`step`, with a database that restarts or drops a connection taken as a failed
        step: the pool replaces the connection, and the worker tries again after a back-off."""
        try:
            return self.step()
        except sa.exc.DBAPIError as err:
            self.failures += 1
            name = self.destination.name
            logger.warning("Stream %r: the database failed (%s); trying again.", name, err.orig)
            return Step("failed")

    def retry_delay(self) -> float:
        """Exponential back-off with jitter, between the destination's bounds."""
        dest = self.destination
        delay = min(dest.retry_min_seconds * 2.0 ** max(self.failures - 1, 0), dest.retry_max_seconds)
        return delay * random.uniform(0.5, 1.0)

    def run(self, stop: threading.Event, *, until_idle: bool = False) -> None:
        """Deliver until ``stop`` is set (or, with ``until_idle``, until nothing is left)."""
        try:
            while not stop.is_set():
                done = self._step_surviving_the_database()
                if done.outcome == "delivered" and done.read >= self.destination.batch_size:
                    continue
                if until_idle and done.outcome in ("idle", "paused"):
                    return
                if done.outcome == "delivered":
                    continue
                wait = self.retry_delay() if done.outcome == "failed" else self.destination.poll_seconds
                if done.outcome == "standby":
                    wait = min(self.destination.lease_seconds / 3, max(wait, 0.05))
                stop.wait(wait)
        finally:
            self.close()

    def close(self) -> None:
        """Give the lease up and close the sink."""
        try:
            cursor.release(self.engine, self.destination.name, self.holder)
        finally:
            self.sink.close()
