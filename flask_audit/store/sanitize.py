"""Make values safe to store: secrets masked, text cut to size, JSON-clean details.

Whatever a signal or a caller passes, a password, one-time code, TOTP secret or token
never reaches a row. Two nets, because neither is enough alone:

- by name: a key of ``details`` that names a secret (:func:`is_secret_key`) keeps its key
  and loses its value, at any depth;
- by shape: text that carries a credential whatever its key (:func:`mask_text`): an
  ``otpauth://`` URI, a JWT, a ``Bearer``/``Basic`` credential, a password or token in a
  URL, in ``name=value`` text or in JSON kept as text, a PEM private key, a cloud or
  service key of a known shape; and a long random string under a key that suggests one
  (``key``, ``value``, ``header``, ``url``...).

The patterns are compiled once and run as one pass over each string: this is the write
path of every event, so a scanner built for source trees (detect-secrets and the like,
with entropy plugins and per-line settings) would cost more than it adds here.
"""

from __future__ import annotations

import base64
import binascii
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
_SCAN_MAX = 4 * DETAIL_TEXT_MAX  # what is scanned of a string, of which the first DETAIL_TEXT_MAX is kept
_INT_MAX = 2**63 - 1  # beyond it a JSON number loses digits somewhere: stored as text

# -- by name -------------------------------------------------------------------------------------

#: Found anywhere in the key's letters run together: ``oldPassword``, ``x-api-key``, ``secretkey``.
_SECRET_PARTS = re.compile(
    r"pass(?:word|wd|phrase|code)|secret|token|credential|otpauth|jwt|bearer|cookie|csrf|xsrf|"
    r"authorization|apikey|privatekey|accesskey|sessionid|sessionkey|signingkey|encryptionkey"
)
#: Matched as a whole word of the key: ``code`` but not ``encode``, ``auth`` but not ``author``.
_SECRET_WORDS = frozenset(
    {
        "pass", "pwd", "pin", "otp", "totp", "hotp", "code", "codes", "salt", "hash", "signature",
        "sig", "auth", "session", "provisioning", "seed", "cvv", "cvc",
    }
)  # fmt: skip
#: A link or address word after one of these is a credential: ``reset_link``, ``magicLink``.
_LINK_OWNERS = frozenset(
    {
        "reset", "magic", "login", "signin", "confirm", "confirmation", "verify", "verification",
        "invite", "invitation", "activation", "activate", "unlock", "recovery", "impersonate",
    }
)  # fmt: skip
_LINK_WORDS = frozenset({"link", "url", "uri", "href"})
#: A last word that makes the key describe a secret rather than hold one: ``session_count``,
#: ``token_type``, ``password_changed_at``, ``otp_enabled``.
_DESCRIBING = frozenset(
    {
        "count", "counts", "total", "enabled", "disabled", "required", "changed", "at", "expires",
        "expiry", "expired", "ttl", "age", "lifetime", "timeout", "type", "kind", "method",
        "methods", "version", "policy", "format", "algorithm", "alg", "strength", "rotated",
    }
)  # fmt: skip
#: ``status_code`` and ``country_code`` name no secret.
_PUBLIC_CODES = frozenset(
    {
        "status", "error", "country", "currency", "language", "lang", "locale", "http", "response",
        "exit", "zip", "postal", "area", "region", "reason", "event", "iso", "color", "colour",
    }
)  # fmt: skip
#: Keys under which a long random-looking string is taken for a key or token.
_SUSPICIOUS = frozenset(
    {
        "key", "keys", "value", "header", "headers", "link", "url", "uri", "href", "payload",
        "body", "raw", "data", "param", "params", "query", "env", "api", "client", "access",
        "refresh", "bearer", "private", "secret",
    }
)  # fmt: skip
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _words(key: str) -> list[str]:
    """``"resetPasswordURL2"`` -> ``["reset", "password", "url"]``: camelCase, kebab, dots, digits."""
    return [word.lower() for word in _WORD.findall(key) if not word.isdigit()]


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a details key names something that must never be stored.

    Any spelling: ``password``, ``newPassword``, ``password-2``, ``user.oldpassword``,
    ``X-Auth-Token``, ``otpauth_uri``, ``reset_link``. A key whose last word only describes
    the secret is kept: ``session_count``, ``token_type``, ``otp_enabled``; and so is one
    that merely contains such letters: ``author``, ``authority``, ``encode``, ``fingerprint``.
    """
    words = _words(key)
    if not words:
        return False
    if len(words) > 1 and words[-1] in _DESCRIBING:
        return False
    if _SECRET_PARTS.search("".join(words)):
        return True
    for i, word in enumerate(words):
        if word in _SECRET_WORDS and not (word in ("code", "codes") and i and words[i - 1] in _PUBLIC_CODES):
            return True
        if word in _LINK_WORDS and i and words[i - 1] in _LINK_OWNERS:
            return True
    return False


@functools.lru_cache(maxsize=4096)
def _suspicious_key(key: str) -> bool:
    return not _SUSPICIOUS.isdisjoint(_words(key))


# -- by shape ------------------------------------------------------------------------------------

_SHAPES = re.compile(
    r"(?P<pem>-----BEGIN[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----.*?"
    r"(?:-----END[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----|\Z))"
    r"|(?P<otpauth>otpauth(?:-migration)?://\S+)"
    r"|(?P<userinfo>\b[A-Za-z][A-Za-z0-9+.-]{0,30}://)(?P<user>[^\s/?#@:]*)(?P<password>:[^\s/?#@]*)?@"
    r"|(?P<jwt>\beyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){2,4})"
    r"|(?P<scheme>\b(?:Bearer|Basic)\s+)(?P<credential>[A-Za-z0-9._~+/-]{6,}=*)"
    r"|(?P<known>\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b|\bgh[pousr]_[A-Za-z0-9]{30,}|\bgithub_pat_\w{22,}"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}|\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}|\bAIza[0-9A-Za-z_-]{35}"
    r"|\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}|\bglpat-[A-Za-z0-9_-]{20,})"
    r"|(?:(?<=[?&#;,\s])|^)(?P<param>[A-Za-z0-9_.\-\[\]]{1,64})=(?P<value>[^&#\s;,]+)"
    r'|(?P<jsonkey>"(?P<jname>[A-Za-z0-9_.\- ]{1,64})"\s*:\s*)(?P<jvalue>"(?:[^"\\]|\\.)*"|[0-9]+)',
    # the last: a secret inside JSON that was stored as text, such as a request body
    re.DOTALL | re.IGNORECASE,
)
_HEX = re.compile(r"[0-9a-fA-F]{32,}")
_RANDOM = re.compile(r"[A-Za-z0-9+/_-]{32,}={0,2}")
#: Query parameters that carry a key under a name too short to be a key name elsewhere.
_SECRET_PARAMS = frozenset({"key", "ticket"})


def _basic(credential: str) -> bool:
    """A ``Basic`` credential is base64 of ``user:password``; ``Basic plan`` is not one."""
    try:
        decoded = base64.b64decode(credential, validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


def _masked(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind in ("pem", "otpauth", "jwt", "known"):
        return MASK
    if kind in ("userinfo", "user", "password"):
        user = match["user"]
        if match["password"] is not None:
            return f"{match['userinfo']}{user}:{MASK}@"
        return f"{match['userinfo']}{MASK}@" if user else match[0]
    if kind == "credential":
        scheme, credential = match["scheme"], match["credential"]
        if scheme.strip().lower() == "basic" and not _basic(credential):
            return match[0]
        return scheme + MASK
    if kind == "jvalue":
        return f'{match["jsonkey"]}"{MASK}"' if is_secret_key(match["jname"]) else match[0]
    name = match["param"]
    if is_secret_key(name) or name.lower() in _SECRET_PARAMS:
        return f"{name}={MASK}"
    return match[0]


#: A shape can only match where one of these is. Plain substring tests (C, no regex) spare
#: the ordinary short value (an email, a role) the full pattern.
_NEEDLES = (
    "=", '":', "://", "eyJ", "-----", "earer", "EARER", "asic", "ASIC", "AKIA", "ASIA", "ABIA", "ACCA",
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "k_live_", "k_test_", "AIza", "sk-",
    "glpat-",
)  # fmt: skip


def _hinted(text: str) -> bool:
    for needle in _NEEDLES:
        if needle in text:
            return True
    return False


def mask_text(text: str) -> str:
    """``text`` with every credential-shaped part replaced by ``***`` (see the module's list)."""
    return _SHAPES.sub(_masked, text) if _hinted(text) else text


def _random_looking(text: str) -> bool:
    """A long hex string, or a long base64 one mixing cases and digits: a key, not a word."""
    if _HEX.fullmatch(text):
        return True
    if not _RANDOM.fullmatch(text):
        return False
    return (
        any(ch.isdigit() for ch in text)
        and any(ch.islower() for ch in text)
        and any(ch.isupper() for ch in text)
    )


# -- cleaning ------------------------------------------------------------------------------------


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


def unprintable(value: object) -> str:
    """What stands for a value whose ``str()`` or ``repr()`` raises."""
    return f"<unprintable {type(value).__name__}>"


def _text(value: t.Any, key: str | None) -> str:
    """A string detail, masked by shape before it is cut to size, so that a cut cannot
    turn a token into a fragment that no longer looks like one."""
    text = value if isinstance(value, str) else str(value)
    text = mask_text(text[:_SCAN_MAX])
    if key is not None and _suspicious_key(key) and _random_looking(text.strip()):
        return MASK
    return t.cast(str, clean_text(text, DETAIL_TEXT_MAX))


def _scalar(value: t.Any, key: str | None) -> t.Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value) if -_INT_MAX <= value <= _INT_MAX else _text(value, key)
    if isinstance(value, float):
        return float(value) if value == value and abs(value) != float("inf") else str(float(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return _scalar(value.value, key)
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _text(bytes(value).decode("utf-8", "replace"), key)
    return _text(value, key)


def _key(key: t.Any) -> str:
    if type(key) is str:
        return _key_text(key)
    try:
        return _key_text(str(key))
    except Exception:
        return unprintable(key)


@functools.lru_cache(maxsize=4096)
def _key_text(name: str) -> str:
    return t.cast(str, clean_text(mask_text(name[:_SCAN_MAX]), 200))


def _clean(value: t.Any, depth: int, key: str | None) -> t.Any:
    if type(value) is str:
        return _text(value, key)  # the common case first
    if depth >= DETAIL_DEPTH_MAX:
        if isinstance(value, c.Mapping | list | tuple | set | frozenset):
            return f"<{type(value).__name__} nested too deeply>"  # its repr could hold a secret
        return _scalar(value, key)
    if isinstance(value, c.Mapping):
        out: dict[str, t.Any] = {}
        for i, (raw, item) in enumerate(value.items()):
            if i >= DETAIL_ITEMS_MAX:
                out[ELLIPSIS] = f"{len(value) - i} more"
                break
            name = _key(raw)
            out[name] = MASK if is_secret_key(name) else _safe(item, depth + 1, name)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        cleaned = [_safe(item, depth + 1, key) for item in items[:DETAIL_ITEMS_MAX]]
        if len(items) > DETAIL_ITEMS_MAX:
            cleaned.append(f"{ELLIPSIS} {len(items) - DETAIL_ITEMS_MAX} more")
        return cleaned
    return _scalar(value, key)


def _safe(value: t.Any, depth: int, key: str | None) -> t.Any:
    """:func:`_clean`, or a placeholder for a value that raises when read or printed."""
    try:
        return _clean(value, depth, key)
    except Exception:
        return unprintable(value)


def clean_details(value: t.Any, depth: int = 0) -> t.Any:
    """A JSON-serialisable copy of ``value``: secrets masked by key and by shape, sizes bounded.

    Never raises: a value whose ``str()`` raises becomes ``"<unprintable TypeName>"``;
    ``NaN`` and infinities become text, as do integers beyond 64 bits.
    """
    return _safe(value, depth, None)
