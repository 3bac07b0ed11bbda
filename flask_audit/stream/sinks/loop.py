"""What the asyncio-based sinks (NATS, RabbitMQ) share: their own event loop, driven from
the worker's synchronous calls, and a connection dropped without a fuss when it broke."""

from __future__ import annotations

import asyncio
import collections.abc as c
import typing as t

from ..wire import Message


class LoopSink:
    """A sink whose client is asynchronous: ``send`` and ``close`` run its coroutines on a
    loop of its own (the worker is synchronous and owns no loop)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()

    async def _send(self, messages: c.Sequence[Message]) -> None:
        raise NotImplementedError

    async def _disconnect(self) -> None:
        raise NotImplementedError

    def send(self, messages: c.Sequence[Message]) -> None:
        self._loop.run_until_complete(self._send(messages))

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._disconnect())
            self._loop.close()


async def close_quietly(connection: t.Any) -> None:
    """Close ``connection`` if it is open; one already broken may fail to close, and that is fine."""
    if connection is not None and not connection.is_closed:
        try:
            await connection.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass
