"""Audit log streaming: every committed event to each configured destination, at least once.

The ``audit_event`` table is the outbox, so the write path pays nothing: no second insert,
no network call in a request. Workers (``flask audit stream run``) read committed events
after each destination's durable cursor (``audit_stream``) in id order, filter and mask
them, hand them to a sink, and move the cursor in the transaction that checks their lease.

- :mod:`.settings`: ``AUDIT_STREAMS`` parsed into :class:`~.settings.Destination` objects;
- :mod:`.wire`: the versioned JSON form of an event on the wire, filters and masking;
  :mod:`.ocsf`: the optional OCSF form;
- :mod:`.cursor`: the ``audit_stream`` rows: lease, cursor, pause, backfill, failures;
- :mod:`.relay`: the worker loop; :mod:`.health`: status, lag and the pipeline's own events;
- :mod:`.sinks`: the :class:`~.sinks.Sink` protocol and the shipped sinks;
- :mod:`.cli`: the ``flask audit stream`` commands.
"""

from __future__ import annotations

from .health import stream_status
from .health import StreamStatus
from .settings import Destination
from .settings import load_destinations
from .sinks import Sink
from .wire import SCHEMA

__all__ = ["SCHEMA", "Destination", "Sink", "StreamStatus", "load_destinations", "stream_status"]
