"""The OTLP sink against a real OTLP/HTTP receiver that decodes with opentelemetry-proto."""

from __future__ import annotations

import datetime as dt
import pathlib
import typing as t

import pytest

from flask_audit.exceptions import AuditConfigError
from flask_audit.stream import stream_status

from ..conftest import MakeApp
from .fixtures import add_events
from .fixtures import drain
from .fixtures import read_lines
from .fixtures import relay
from .fixtures import RUN_SIZE
from .fixtures import stored_uids
from .otlp_receiver import otlp_receiver

pytestmark = pytest.mark.backends("sqlite")


def nanos(iso: str) -> int:
    when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return int(when.timestamp()) * 10**9 + when.microsecond * 1000


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_every_event_arrives_in_order_as_a_log_record(
    make_app: MakeApp, tmp_path: pathlib.Path, encoding: str
) -> None:
    path = tmp_path / "audit.jsonl"
    with otlp_receiver() as peer:
        streams = {
            "otel": {
                "sink": "otlp",
                "endpoint": peer.endpoint,
                "encoding": encoding,
                "headers": {"authorization": "Bearer t0ken"},
                "service_name": "billing",
                "batch_size": 300,
            },
            "file": {"sink": "jsonl", "path": str(path)},
        }
        app = make_app(AUDIT_STREAMS=streams)
        add_events(app, RUN_SIZE, team="Growth", ip="203.0.113.9", outcome="failure")
        add_events(app, 3)
        drain(app, "otel")
        drain(app, "file")
    wire = read_lines(path)  # the same events as the JSON lines sink writes them
    assert [line["uid"] for line in wire] == stored_uids(app)
    assert peer.malformed == 0 and len(peer.records) == len(wire)
    assert {h["authorization"] for h in peer.headers} == {"Bearer t0ken"}
    assert {r["service.name"] for r in peer.resources} == {"billing"}
    for record, line in zip(peer.records, wire, strict=True):
        assert int(record["timeUnixNano"]) == nanos(line["occurred_at"])
        assert record["body"] == line["activity"]
        assert record["eventName"] == line["event_type"]
        assert record["scope"] == "flask_audit"
        expected = {key: value for key, value in line.items() if value is not None}
        assert record["attributes"] == {**expected, "log.record.uid": line["uid"]}
        failed = line["outcome"] == "failure"
        assert record["severityNumber"] == ("SEVERITY_NUMBER_WARN" if failed else "SEVERITY_NUMBER_INFO")


def test_a_refused_or_partly_rejected_batch_is_sent_again(make_app: MakeApp) -> None:
    with otlp_receiver() as peer:
        app = make_app(AUDIT_STREAMS={"otel": {"sink": "otlp", "endpoint": peer.endpoint}})
        add_events(app, 20)
        worker = relay(app, "otel")
        peer.status = 503
        assert worker.step().outcome == "failed"
        peer.status, peer.reject = 200, 5
        assert worker.step().outcome == "failed"
        with app.app_context():
            (status,) = stream_status()
        assert status.state == "failing"
        assert f"rejected 5 of {len(stored_uids(app))} event(s)" in t.cast(str, status.last_error)
        assert "quota exceeded" in t.cast(str, status.last_error)
        peer.reject = 0
        assert worker.step().outcome == "delivered"
        worker.close()
    assert [r["attributes"]["uid"] for r in peer.records] == stored_uids(app)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, r"AUDIT_STREAMS\['otel'\] needs 'endpoint'\."),
        ({"endpoint": "ftp://x/v1/logs"}, r"\['endpoint'\] must be an http\(s\) URL"),
        ({"endpoint": "http://x/v1/logs", "encoding": "xml"}, r"must be 'json' or 'protobuf', not 'xml'"),
        ({"endpoint": "http://x/v1/logs", "headers": {"a": 1}}, r"must map header names to strings"),
    ],
)
def test_bad_options_are_clear(make_app: MakeApp, options: dict[str, t.Any], message: str) -> None:
    app = make_app(AUDIT_STREAMS={"otel": {"sink": "otlp", **options}})
    with pytest.raises(AuditConfigError, match=message):
        relay(app, "otel")
