"""One kept-alive HTTP(S) connection that POSTs and raises unless the answer is 2xx.

Shared by the webhook and OTLP sinks: a failed request closes the connection, so the
batch sent again later starts on a fresh one.
"""

from __future__ import annotations

import collections.abc as c
import http.client
import ssl
import typing as t
import urllib.parse

from ...exceptions import AuditConfigError


def parse_url(name: str, key: str, value: str) -> urllib.parse.SplitResult:
    """``value`` as an http(s) URL, or a clear error naming the destination and the key."""
    url = urllib.parse.urlsplit(value)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise AuditConfigError(f"AUDIT_STREAMS[{name!r}][{key!r}] must be an http(s) URL, not {value!r}.")
    return url


class Poster:
    """POSTs to one URL over a connection kept between requests."""

    def __init__(self, url: urllib.parse.SplitResult, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self.path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            host, port = t.cast(str, self.url.hostname), self.url.port
            if self.url.scheme == "https":
                context = ssl.create_default_context()
                self._conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=context)
            else:
                self._conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        return self._conn

    def post(self, body: bytes, headers: c.Mapping[str, str], what: str) -> bytes:
        """POST ``body``; the answer's body. Raises on a network error or a non-2xx answer."""
        conn = self._connection()
        try:
            conn.request("POST", self.path, body=body, headers=dict(headers))
            response = conn.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException):
            self.close()  # a fresh connection next time
            raise
        if response.will_close:
            self.close()
        if not 200 <= response.status < 300:
            raise http.client.HTTPException(
                f"{self.url.geturl()} answered {response.status} {response.reason} to {what}"
            )
        return answer

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
