"""Webhooks signed as the Standard Webhooks specification says (https://www.standardwebhooks.com).

One POST per event, its JSON as the body, with ``webhook-id`` (the event's uid, the
receiver's de-duplication key), ``webhook-timestamp`` (Unix seconds) and
``webhook-signature`` (``v1,`` and the base64 HMAC-SHA-256 of ``id.timestamp.body`` under
the ``whsec_`` secret). Any 2xx answer accepts the event; anything else fails the batch,
which is sent again later, each event with its own id.
"""

from __future__ import annotations

import base64
import collections.abc as c
import hashlib
import hmac
import time
import typing as t

from ...exceptions import AuditConfigError
from ..wire import Message
from . import option
from .httppost import parse_url
from .httppost import Poster

SECRET_PREFIX = "whsec_"


def secret_bytes(name: str, secret: str) -> bytes:
    """The key of a ``whsec_<base64>`` secret."""
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError as err:
        raise AuditConfigError(
            f"AUDIT_STREAMS[{name!r}]['secret'] must be 'whsec_' followed by base64, such as"
            " 'whsec_' + base64.b64encode(os.urandom(32)).decode()."
        ) from err


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class WebhookSink:
    """POSTs each event to ``url``, signed with ``secret`` (``whsec_...``); ``timeout`` in seconds."""

    def __init__(self, name: str, options: c.Mapping[str, t.Any]) -> None:
        self.name = name
        url = parse_url(name, "url", option(name, options, "url", str))
        self.key = secret_bytes(name, option(name, options, "secret", str))
        timeout = float(option(name, options, "timeout", (int, float), 10.0))
        self.headers = dict(option(name, options, "headers", dict, {}))
        self.poster = Poster(url, timeout)

    def _post(self, message: Message) -> None:
        timestamp = int(time.time())
        headers = {
            **self.headers,
            "content-type": "application/json",
            "webhook-id": message.uid,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(self.key, message.uid, timestamp, message.body),
        }
        self.poster.post(message.body, headers, f"event {message.uid}")

    def send(self, messages: c.Sequence[Message]) -> None:
        for message in messages:
            self._post(message)

    def close(self) -> None:
        self.poster.close()
