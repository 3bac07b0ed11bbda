"""Each sink against a real peer on this machine: a webhook receiver, NATS JetStream, RabbitMQ.

The outbox logic is the same on every database (see test_outbox.py), so these run on SQLite.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import pathlib
import typing as t
import urllib.parse
import uuid

import pytest

from flask_audit.exceptions import AuditConfigError
from flask_audit.stream import health

from ..conftest import MakeApp
from .fixtures import add_events
from .fixtures import AMQP_URL
from .fixtures import drain
from .fixtures import NATS_URL
from .fixtures import read_lines
from .fixtures import relay
from .fixtures import require_port
from .fixtures import RUN_SIZE
from .fixtures import SECRET
from .fixtures import stored_uids

pytestmark = pytest.mark.backends("sqlite")


def test_json_lines_follow_a_rotated_file(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "logs" / "audit.jsonl"
    app = make_app(AUDIT_STREAMS={"file": {"sink": "jsonl", "path": str(path)}})
    worker = relay(app, "file")
    add_events(app, 5)
    assert worker.step().outcome == "delivered"
    path.rename(tmp_path / "logs" / "audit.jsonl.1")  # logrotate moves the file away
    add_events(app, 3)
    assert worker.step().outcome == "delivered"
    worker.close()
    old, new = read_lines(tmp_path / "logs" / "audit.jsonl.1"), read_lines(path)
    assert [line["uid"] for line in old + new] == stored_uids(app)
    assert len(new) == 3


# -- NATS JetStream ---------------------------------------------------------------------------


def _nats_host() -> tuple[str, int]:
    url = urllib.parse.urlsplit(NATS_URL)
    return url.hostname or "127.0.0.1", url.port or 4222


async def _jetstream(stream: str, subject: str, action: str) -> list[tuple[str, str]]:
    import nats

    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    try:
        if action == "create":
            await js.add_stream(name=stream, subjects=[subject])
            return []
        if action == "delete":
            await js.delete_stream(stream)
            return []
        info = await js.stream_info(stream)
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            found.append(((msg.headers or {}).get("Nats-Msg-Id", ""), (msg.data or b"").decode()))
        return found
    finally:
        await nc.close()


def jetstream(stream: str, subject: str, action: str) -> list[tuple[str, str]]:
    return asyncio.run(_jetstream(stream, subject, action))


def test_nats_jetstream_stores_each_event_once_even_when_sent_again(make_app: MakeApp) -> None:
    require_port(*_nats_host(), "NATS")
    name = f"audit_test_{uuid.uuid4().hex[:8]}"
    subject = f"{name}.events"
    jetstream(name, subject, "create")
    try:
        streams = {"bus": {"sink": "nats", "servers": NATS_URL, "subject": subject, "batch_size": 500}}
        app = make_app(AUDIT_STREAMS=streams)
        add_events(app, RUN_SIZE)
        drain(app, "bus")
        with app.app_context():
            health.rewind("bus", dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))
        drain(app, "bus")  # everything again: JetStream drops the duplicates by Nats-Msg-Id
        stored = jetstream(name, subject, "read")
    finally:
        jetstream(name, subject, "delete")
    uids = stored_uids(app)
    assert [msg_id for msg_id, _ in stored] == uids
    assert all(f'"uid":"{msg_id}"' in body for msg_id, body in stored)


# -- RabbitMQ ---------------------------------------------------------------------------------


async def _drain_queue(queue: str) -> list[tuple[str | None, int, bytes]]:
    import aio_pika

    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1000)
        declared = await channel.declare_queue(queue, durable=True, passive=True)
        count = t.cast(int, declared.declaration_result.message_count)
        got = []
        async with declared.iterator() as messages:
            async for message in messages:
                async with message.process():
                    got.append((message.message_id, int(message.delivery_mode), message.body))
                if len(got) == count:
                    break
        await declared.delete(if_unused=False, if_empty=False)
        return got
    finally:
        await connection.close()


def test_rabbitmq_confirms_each_event_with_its_uid(make_app: MakeApp) -> None:
    url = urllib.parse.urlsplit(AMQP_URL)
    require_port(url.hostname or "127.0.0.1", url.port or 5672, "RabbitMQ")
    queue = f"audit-test-{uuid.uuid4().hex[:8]}"
    app = make_app(AUDIT_STREAMS={"mq": {"sink": "rabbitmq", "url": AMQP_URL, "queue": queue}})
    add_events(app, RUN_SIZE)
    drain(app, "mq")
    got = asyncio.run(_drain_queue(queue))
    assert [message_id for message_id, _, _ in got] == stored_uids(app)
    assert {mode for _, mode, _ in got} == {2}
    assert all(f'"uid":"{message_id}"'.encode() in body for message_id, _, body in got)


def test_an_unknown_sink_and_a_missing_option_are_clear(make_app: MakeApp) -> None:
    app = make_app(AUDIT_STREAMS={"a": {"sink": "kafka"}, "b": {"sink": "webhook", "secret": SECRET}})
    with pytest.raises(AuditConfigError, match=r"AUDIT_STREAMS\['a'\]: unknown sink 'kafka'; use one of"):
        relay(app, "a")
    with pytest.raises(AuditConfigError, match=r"AUDIT_STREAMS\['b'\] needs 'url'\."):
        relay(app, "b")
