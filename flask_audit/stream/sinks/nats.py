"""NATS JetStream: each event published to a subject, acknowledged by the stream.

``Nats-Msg-Id`` is the event's uid, so JetStream drops a message sent again within the
stream's duplicate window (two minutes by default): a retried batch is stored once. A
batch is published in order and its acks awaited together; if one message of a batch is
not acknowledged, a later one of the same batch may already be stored, so after such a
failure the stream can hold that batch out of order (never with a gap or a duplicate). Needs
``nats-py`` (the ``[nats]`` extra). The client's coroutines run on an event loop of the
sink's own, so the worker stays a plain thread.
"""

from __future__ import annotations

import asyncio
import collections.abc as c
import typing as t

from ...exceptions import AuditConfigError
from ..wire import Message
from . import option
from .loop import close_quietly
from .loop import LoopSink

if t.TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext


class NatsSink(LoopSink):
    """Publishes to ``subject`` on ``servers``; ``stream`` (optional) is created if missing."""

    def __init__(self, name: str, options: c.Mapping[str, t.Any]) -> None:
        try:
            import nats  # noqa: F401
        except ImportError as err:
            raise AuditConfigError(
                f"AUDIT_STREAMS[{name!r}] uses the nats sink, which needs nats-py:"
                " pip install 'flask-audit[nats]'."
            ) from err
        servers = option(name, options, "servers", (str, list), "nats://127.0.0.1:4222")
        self.servers = [servers] if isinstance(servers, str) else list(servers)
        self.subject = option(name, options, "subject", str)
        self.stream = option(name, options, "stream", str, None)
        self.timeout = float(option(name, options, "timeout", (int, float), 5.0))
        super().__init__()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    async def _connect(self) -> JetStreamContext:
        import nats

        if self._js is not None and self._nc is not None and self._nc.is_connected:
            return self._js
        await self._disconnect()
        self._nc = await nats.connect(
            servers=self.servers,
            connect_timeout=self.timeout,
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )
        self._js = self._nc.jetstream(timeout=self.timeout)
        if self.stream:
            await self._ensure_stream(self._js, self.stream)
        return self._js

    async def _ensure_stream(self, js: JetStreamContext, stream: str) -> None:
        from nats.js.errors import NotFoundError

        try:
            await js.stream_info(stream)
        except NotFoundError:
            await js.add_stream(name=stream, subjects=[self.subject])

    async def _send(self, messages: c.Sequence[Message]) -> None:
        js = await self._connect()
        try:
            acks = []
            for message in messages:  # published in order on one connection, acknowledged together
                headers = {"Nats-Msg-Id": message.uid, "Content-Type": "application/json"}
                acks.append(await js.publish_async(self.subject, message.body, headers=headers))
            await asyncio.wait_for(asyncio.gather(*acks), self.timeout + len(messages) / 1000)
        except BaseException:
            await self._disconnect()
            raise

    async def _disconnect(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        await close_quietly(nc)
