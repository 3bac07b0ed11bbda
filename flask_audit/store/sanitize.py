"""Make values safe to store: secrets masked, text cut to size, JSON-clean details.

Whatever a signal or a caller passes, a password, one-time code, TOTP secret or token
never reaches a row.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import decimal
import enum
import functools
import re
import typing as t
import uuid

MASK = "***"
ELLIPSIS = "…"
DETAIL_TEXT_MAX = 2000
DETAIL_ITEMS_MAX = 200
DETAIL_DEPTH_MAX = 6

# Matched against each key of ``details``, case-insensitively, after splitting camelCase.
_SECRET_KEY = re.compile(
    r"(^|[_\-. ])(pass(word|wd|phrase|code)?|pwd|secret|token|otp|totp|hotp|code|codes|pin|"
    r"api[_\-]?key|private[_\-]?key|authorization|cookie|csrf|credentials?|salt|hash|"
    r"recovery[_\-]?codes?|session[_\-]?id|signature)([_\-. ]|$)"
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@functools.lru_cache(maxsize=2048)
def is_secret_key(key: str) -> bool:
    """Whether a details key names something that must never be stored."""
    return bool(_SECRET_KEY.search(_CAMEL.sub("_", key).lower()))


def clean_text(value: t.Any, limit: int | None) -> str | None:
    """Text fit for any backend: valid UTF-8, no NUL, at most ``limit`` characters."""
    if value is None:
        return None
    if type(value) is str and value.isascii() and "\x00" not in value:
        if limit is None or len(value) <= limit:
            return value  # the common case, without the checks below
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + ELLIPSIS
    return text


def _scalar(value: t.Any) -> t.Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return _scalar(value.value)
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return clean_text(value.decode("utf-8", "replace"), DETAIL_TEXT_MAX)
    return clean_text(value, DETAIL_TEXT_MAX)


def clean_details(value: t.Any, depth: int = 0) -> t.Any:
    """A JSON-serialisable copy of ``value`` with secret keys masked and sizes bounded."""
    if depth >= DETAIL_DEPTH_MAX:
        return clean_text(repr(value), DETAIL_TEXT_MAX)
    if isinstance(value, c.Mapping):
        out: dict[str, t.Any] = {}
        for i, (key, item) in enumerate(value.items()):
            if i >= DETAIL_ITEMS_MAX:
                out[ELLIPSIS] = f"{len(value) - i} more"
                break
            name = t.cast(str, clean_text(key, 200))
            out[name] = MASK if is_secret_key(name) else clean_details(item, depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        cleaned = [clean_details(item, depth + 1) for item in items[:DETAIL_ITEMS_MAX]]
        if len(items) > DETAIL_ITEMS_MAX:
            cleaned.append(f"{ELLIPSIS} {len(items) - DETAIL_ITEMS_MAX} more")
        return cleaned
    return _scalar(value)
