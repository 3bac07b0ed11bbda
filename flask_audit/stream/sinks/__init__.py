"""Sinks: where a destination's events go, behind one small protocol.

A sink is made once per worker from the destination's options and given batches in id
order. ``send`` returns only when the peer has durably accepted every message of the batch
(a written and fsynced file, a 2xx answer, a JetStream ack, a publisher confirm) and raises
otherwise; the worker then retries the whole batch, so a peer may see a message again, with
the same ``uid``. Anything with ``send`` and ``close`` is a sink:

.. code-block:: python

    class KafkaSink:
        def __init__(self, name: str, options: Mapping[str, Any]) -> None: ...
        def send(self, messages: Sequence[Message]) -> None: ...
        def close(self) -> None: ...

    AUDIT_STREAMS = {"kafka": {"sink": "myapp.audit:KafkaSink", "topic": "audit"}}
"""

from __future__ import annotations

import collections.abc as c
import typing as t

from werkzeug.utils import import_string
from werkzeug.utils import ImportStringError

from ...exceptions import AuditConfigError
from ..settings import Destination
from ..wire import Message


class Sink(t.Protocol):
    """What a worker delivers through. See the module docstring for the contract."""

    def send(self, messages: c.Sequence[Message]) -> None: ...

    def close(self) -> None: ...


SinkFactory = c.Callable[[str, c.Mapping[str, t.Any]], Sink]

#: The shipped sinks by name; each module imports its client library only when used.
BUILT_IN = {
    "jsonl": "flask_audit.stream.sinks.files:JsonLinesSink",
    "stdout": "flask_audit.stream.sinks.files:StdoutSink",
    "webhook": "flask_audit.stream.sinks.webhook:WebhookSink",
    "nats": "flask_audit.stream.sinks.nats:NatsSink",
    "rabbitmq": "flask_audit.stream.sinks.rabbitmq:RabbitMQSink",
    "otlp": "flask_audit.stream.sinks.otlp:OtlpSink",
}


def option(
    name: str, options: c.Mapping[str, t.Any], key: str, kind: type | tuple[type, ...], default: t.Any = ...
) -> t.Any:
    """``options[key]`` of the given type, or a clear error naming the destination."""
    if key not in options:
        if default is ...:
            raise AuditConfigError(f"AUDIT_STREAMS[{name!r}] needs {key!r}.")
        return default
    value = options[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        expected = " or ".join(each.__name__ for each in kinds)
        raise AuditConfigError(f"AUDIT_STREAMS[{name!r}][{key!r}] must be a {expected}, not {value!r}.")
    return value


def factory_of(destination: Destination) -> SinkFactory:
    """The factory ``destination.sink`` names: a built-in name, an import string or a callable."""
    sink = destination.sink
    if callable(sink):
        return t.cast(SinkFactory, sink)
    path = BUILT_IN.get(sink, sink)
    if ":" not in path and "." not in path:
        raise AuditConfigError(
            f"AUDIT_STREAMS[{destination.name!r}]: unknown sink {sink!r}; use one of"
            f" {', '.join(BUILT_IN)} or an import string 'pkg.module:factory'."
        )
    try:
        found = import_string(path)
    except ImportStringError as err:
        raise AuditConfigError(
            f"AUDIT_STREAMS[{destination.name!r}]: the sink {sink!r} could not be imported: {err.exception}"
        ) from err
    return t.cast(SinkFactory, found)


def make_sink(destination: Destination) -> Sink:
    """A new sink for ``destination``, made from its options."""
    return factory_of(destination)(destination.name, destination.options)
