"""Small pieces the views share: the signed-in account, the admin guard, form fields."""

from __future__ import annotations

import collections.abc as c
import functools
import re
import typing as t
import urllib.parse

from flask import abort
from flask import current_app
from flask import Flask
from flask import request
from flask_login import current_user
from flask_login import login_required

from .models import User

F = t.TypeVar("F", bound=c.Callable[..., t.Any])
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def app_object() -> Flask:
    """The real app behind ``current_app``: the sender flask_audit's signals expect."""
    return t.cast(Flask, current_app._get_current_object())  # type: ignore[attr-defined]


def account() -> User:
    """The signed-in user; only for views behind ``login_required``."""
    user = current_user._get_current_object()
    if not isinstance(user, User):
        abort(401)
    return user


def admin_required(view: F) -> F:
    """Signed-in admins only; members get 403."""

    @functools.wraps(view)
    def wrapped(*args: t.Any, **kwargs: t.Any) -> t.Any:
        if not account().is_admin:
            abort(403, "Only workspace admins can do this.")
        return view(*args, **kwargs)

    return t.cast(F, login_required(wrapped))


def field(name: str, limit: int = 255) -> str:
    """A stripped form value, cut at ``limit`` characters."""
    return (request.form.get(name) or "").strip()[:limit]


def form_id(name: str) -> int | None:
    """A form value that must be a positive id; ``None`` if it is not."""
    value = field(name, 20)
    return int(value) if value.isdigit() and int(value) > 0 else None


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, so a link cannot send users elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urllib.parse.urlsplit(target)
    return None if parts.scheme or parts.netloc else target
