"""How users, teams and values read in an activity sentence."""

from __future__ import annotations

import typing as t

from flask import current_app
from flask import has_app_context


def describe_user(user: t.Any) -> str:
    """The user's email (through ``AUDIT_ACTOR_EMAIL``), else its id."""
    if user is None:
        return "an unknown user"
    if isinstance(user, str):
        return user
    email = None
    if has_app_context() and "audit" in current_app.extensions:
        email = current_app.extensions["audit"].config.actor_email(user)
    if email:
        return str(email)
    get_id = getattr(user, "get_id", None)
    return f"user {get_id() if callable(get_id) else getattr(user, 'id', '?')}"


def user_id(user: t.Any) -> str | None:
    if user is None or isinstance(user, str):
        return None
    get_id = getattr(user, "get_id", None)
    value = get_id() if callable(get_id) else getattr(user, "id", None)
    return None if value is None else str(value)


def describe_team(team: t.Any) -> str:
    name = getattr(team, "name", team)
    return "a team" if name is None else str(name)


def nice(value: t.Any) -> str:
    """A role or setting as the page shows it: ``"admin"`` → ``"Admin"``."""
    text = getattr(value, "name", value)
    text = "none" if text is None else str(text)
    return text[:1].upper() + text[1:]
