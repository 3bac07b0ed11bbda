"""An OTLP/HTTP logs receiver on a loopback port, decoding with opentelemetry-proto.

Both encodings are parsed into ``ExportLogsServiceRequest`` (so a body that does not
follow the OTLP schema is refused with 400), then turned into plain records to compare.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import http.server
import threading
import typing as t

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse


def plain(value: c.Mapping[str, t.Any]) -> t.Any:
    """An ``AnyValue`` (as ``MessageToDict`` gives it) as a Python value."""
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "boolValue" in value:
        return value["boolValue"]
    if "doubleValue" in value:
        return value["doubleValue"]
    if "kvlistValue" in value:
        return attributes(value["kvlistValue"].get("values", []))
    if "arrayValue" in value:
        return [plain(each) for each in value["arrayValue"].get("values", [])]
    return None


def attributes(pairs: c.Iterable[c.Mapping[str, t.Any]]) -> dict[str, t.Any]:
    return {pair["key"]: plain(pair.get("value", {})) for pair in pairs}


class OtlpReceiver:
    """Collects every LogRecord it accepts, with its resource, in arrival order.

    ``status`` answers every request with that HTTP status instead; ``reject`` reports that
    many records rejected (``partialSuccess``) in an otherwise accepted answer.
    """

    def __init__(self) -> None:
        self.records: list[dict[str, t.Any]] = []
        self.resources: list[dict[str, t.Any]] = []
        self.headers: list[dict[str, str]] = []
        self.malformed = 0
        self.status = 200
        self.reject = 0
        self.lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self.port = 0

    def decode(self, body: bytes, content_type: str) -> ExportLogsServiceRequest:
        if content_type == "application/x-protobuf":
            return ExportLogsServiceRequest.FromString(body)
        return json_format.Parse(body, ExportLogsServiceRequest())

    def accept(self, request: ExportLogsServiceRequest, headers: dict[str, str]) -> None:
        data = json_format.MessageToDict(request)
        with self.lock:
            self.headers.append(headers)
            for resource_logs in data.get("resourceLogs", []):
                self.resources.append(attributes(resource_logs["resource"].get("attributes", [])))
                for scope_logs in resource_logs.get("scopeLogs", []):
                    for record in scope_logs.get("logRecords", []):
                        record["attributes"] = attributes(record.get("attributes", []))
                        record["body"] = plain(record.get("body", {}))
                        record["scope"] = scope_logs["scope"]["name"]
                        self.records.append(record)

    def answer(self, content_type: str) -> bytes:
        response = ExportLogsServiceResponse()
        if self.reject:
            response.partial_success.rejected_log_records = self.reject
            response.partial_success.error_message = "quota exceeded"
        if content_type == "application/x-protobuf":
            return response.SerializeToString()
        return json_format.MessageToJson(response).encode()

    def start(self) -> None:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers["content-length"]))
                kind = self.headers.get("content-type", "")
                status, answer = owner.status, b""
                if status == 200 and self.path != "/v1/logs":
                    status = 404
                if status == 200:
                    try:
                        request = owner.decode(body, kind)
                    except (json_format.ParseError, ValueError):
                        owner.malformed += 1
                        status = 400
                    else:
                        if not owner.reject:
                            owner.accept(request, dict(self.headers.items()))
                        answer = owner.answer(kind)
                self.send_response(status)
                self.send_header("content-type", kind or "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: t.Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/logs"


@contextlib.contextmanager
def otlp_receiver() -> c.Iterator[OtlpReceiver]:
    found = OtlpReceiver()
    found.start()
    try:
        yield found
    finally:
        found.stop()
