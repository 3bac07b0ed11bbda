"""RabbitMQ: each event published with publisher confirms, persistent, ``message_id`` = uid.

``send`` returns once the broker has confirmed every message of the batch (routed and,
for durable queues, written to disk); an unroutable or refused message fails the batch.
The batch's messages are published in order and their confirms awaited together, so a
durable queue's disk writes are shared instead of one per event. Consumers de-duplicate
on ``message_id``. Needs ``aio-pika`` (the ``[rabbitmq]`` extra); its coroutines run on
an event loop of the sink's own.
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
    import aio_pika.abc


class RabbitMQSink(LoopSink):
    """Publishes to ``exchange`` (default: the default exchange) with ``routing_key``.

    ``queue``, if given, is declared durable and is the routing key on the default exchange.
    """

    def __init__(self, name: str, options: c.Mapping[str, t.Any]) -> None:
        try:
            import aio_pika  # noqa: F401
        except ImportError as err:
            raise AuditConfigError(
                f"AUDIT_STREAMS[{name!r}] uses the rabbitmq sink, which needs aio-pika:"
                " pip install 'flask-audit[rabbitmq]'."
            ) from err
        self.url = option(name, options, "url", str, "amqp://guest:guest@127.0.0.1:5672/%2F")
        self.exchange_name = option(name, options, "exchange", str, "")
        self.queue = option(name, options, "queue", str, None)
        self.routing_key = option(name, options, "routing_key", str, self.queue or "")
        if not (self.exchange_name or self.routing_key):
            raise AuditConfigError(
                f"AUDIT_STREAMS[{name!r}] needs an 'exchange', a 'routing_key' or a 'queue'."
            )
        self.timeout = float(option(name, options, "timeout", (int, float), 10.0))
        super().__init__()
        self._conn: aio_pika.abc.AbstractRobustConnection | aio_pika.abc.AbstractConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def _open(self) -> aio_pika.abc.AbstractExchange:
        import aio_pika

        if self._exchange is not None and self._conn is not None and not self._conn.is_closed:
            return self._exchange
        await self._disconnect()
        self._conn = await aio_pika.connect(self.url, timeout=self.timeout)
        channel = await self._conn.channel(publisher_confirms=True)
        if self.queue:
            await channel.declare_queue(self.queue, durable=True)
        if self.exchange_name:
            self._exchange = await channel.get_exchange(self.exchange_name, ensure=True)
        else:
            self._exchange = channel.default_exchange
        return self._exchange

    async def _send(self, messages: c.Sequence[Message]) -> None:
        import aio_pika

        try:
            exchange = await self._open()
            confirms = [
                asyncio.ensure_future(  # started in order; the channel's lock keeps that order
                    exchange.publish(
                        aio_pika.Message(
                            message.body,
                            message_id=message.uid,
                            content_type="application/json",
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            type=message.event_type,
                        ),
                        self.routing_key,
                        mandatory=True,
                        timeout=self.timeout,
                    )
                )
                for message in messages
            ]
            await asyncio.wait_for(asyncio.gather(*confirms), self.timeout + len(messages) / 1000)
        except BaseException:
            await self._disconnect()
            raise

    async def _disconnect(self) -> None:
        conn, self._conn, self._exchange = self._conn, None, None
        await close_quietly(conn)
