"""OpenTelemetry logs over OTLP/HTTP: each batch one ``ExportLogsServiceRequest``.

Each event is a ``LogRecord``: ``timeUnixNano`` is when it occurred, ``body`` its activity
sentence, ``eventName`` its type, ``severityNumber`` INFO (9) or WARN (13) for a failure,
and ``attributes`` every wire field that is not null, plus ``log.record.uid`` (the
OpenTelemetry name for the de-duplication key). The JSON encoding (the default) needs no
package; ``"encoding": "protobuf"`` needs ``opentelemetry-proto`` (extra ``[otlp]``). A
2xx answer that reports rejected records (``partialSuccess``) fails the batch.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import json
import typing as t

from ...exceptions import AuditConfigError
from ..wire import Message
from . import option
from .httppost import parse_url
from .httppost import Poster

ENCODINGS = {"json": "application/json", "protobuf": "application/x-protobuf"}
SCOPE = "flask_audit"
INFO, WARN = 9, 13


def any_value(value: t.Any) -> dict[str, t.Any]:
    """``value`` as an OTLP ``AnyValue`` in its JSON form (64-bit integers as strings)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, c.Mapping):
        return {"kvlistValue": {"values": key_values(value)}}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [any_value(each) for each in value]}}
    if value is None:
        return {}
    return {"stringValue": str(value)}


def key_values(data: c.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    """``data``'s non-null items as OTLP ``KeyValue`` objects."""
    return [{"key": str(key), "value": any_value(value)} for key, value in data.items() if value is not None]


def unix_nanos(record: c.Mapping[str, t.Any]) -> str:
    """When the event occurred, in nanoseconds: ``occurred_at``, or OCSF's ``time`` (ms)."""
    if "occurred_at" in record:
        when = dt.datetime.fromisoformat(str(record["occurred_at"]).replace("Z", "+00:00"))
        delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        return str((delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000)
    return str(int(record["time"]) * 10**6)


def log_record(message: Message) -> dict[str, t.Any]:
    """One event as an OTLP ``LogRecord`` (JSON form)."""
    record = message.record
    failed = record.get("outcome") == "failure" or record.get("status_id") == 2
    body = record.get("activity", record.get("message"))
    return {
        "timeUnixNano": unix_nanos(record),
        "severityNumber": WARN if failed else INFO,
        "severityText": "WARN" if failed else "INFO",
        "eventName": message.event_type,
        "body": any_value(body),
        "attributes": key_values({**record, "log.record.uid": message.uid}),
    }


def export_request(messages: c.Sequence[Message], resource: c.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The ``ExportLogsServiceRequest`` (JSON form) of one batch, in id order."""
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": key_values(resource)},
                "scopeLogs": [{"scope": {"name": SCOPE}, "logRecords": [log_record(m) for m in messages]}],
            }
        ]
    }


def _protobuf() -> tuple[t.Any, t.Any, t.Any]:
    """The protobuf request and response classes and ``json_format``, imported when used."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

    return logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse, json_format


class OtlpSink:
    """POSTs each batch to ``endpoint`` (``.../v1/logs``) with ``headers``; see the module docstring.

    Options: ``endpoint`` (required), ``headers`` (e.g. an API key), ``encoding``
    (``"json"`` or ``"protobuf"``), ``service_name`` (``"flask-audit"``), ``resource``
    (more resource attributes), ``timeout`` (10 s).
    """

    def __init__(self, name: str, options: c.Mapping[str, t.Any]) -> None:
        self.name = name
        url = parse_url(name, "endpoint", option(name, options, "endpoint", str))
        self.encoding = option(name, options, "encoding", str, "json")
        if self.encoding not in ENCODINGS:
            raise AuditConfigError(
                f"AUDIT_STREAMS[{name!r}]['encoding'] must be 'json' or 'protobuf', not {self.encoding!r}."
            )
        if self.encoding == "protobuf":
            try:
                _protobuf()
            except ImportError as err:
                raise AuditConfigError(
                    f"AUDIT_STREAMS[{name!r}]: the protobuf encoding needs opentelemetry-proto"
                    " (pip install 'flask-audit[otlp]'), or use 'encoding': 'json'."
                ) from err
        headers = option(name, options, "headers", dict, {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise AuditConfigError(f"AUDIT_STREAMS[{name!r}]['headers'] must map header names to strings.")
        self.headers = {**headers, "content-type": ENCODINGS[self.encoding]}
        service = option(name, options, "service_name", str, "flask-audit")
        self.resource = {"service.name": service, **option(name, options, "resource", dict, {})}
        self.poster = Poster(url, float(option(name, options, "timeout", (int, float), 10.0)))

    def encode(self, messages: c.Sequence[Message]) -> bytes:
        """The request body of one batch, in the destination's encoding."""
        request = export_request(messages, self.resource)
        if self.encoding == "json":
            return json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode()
        request_class, _, json_format = _protobuf()
        return t.cast(bytes, json_format.ParseDict(request, request_class()).SerializeToString())

    def rejected(self, answer: bytes) -> tuple[int, str]:
        """``partialSuccess``'s rejected count and message from the answer (0 when absent)."""
        if not answer.strip():
            return 0, ""
        if self.encoding == "json":
            try:
                partial = json.loads(answer).get("partialSuccess") or {}
            except (ValueError, AttributeError):
                return 0, ""
            return int(partial.get("rejectedLogRecords", 0) or 0), str(partial.get("errorMessage", ""))
        _, response_class, _ = _protobuf()
        response = response_class.FromString(answer)
        partial = response.partial_success
        return int(partial.rejected_log_records), str(partial.error_message)

    def send(self, messages: c.Sequence[Message]) -> None:
        if not messages:
            return
        what = f"{len(messages)} event(s) from {messages[0].uid}"
        answer = self.poster.post(self.encode(messages), self.headers, what)
        count, error = self.rejected(answer)
        if count:
            where = self.poster.url.geturl()
            raise RuntimeError(f"{where} rejected {count} of {what}: {error or 'no reason'}")

    def close(self) -> None:
        self.poster.close()
