"""How users, teams and values read in an activity sentence."""

from __future__ import annotations

import typing as t

from flask import current_app
from flask import has_app_context

from ..store.context import stable_id


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
    return f"user {stable_id(user) or '?'}"


def user_id(user: t.Any) -> str | None:
    if user is None or isinstance(user, str):
        return None
    return stable_id(user)


def describe_team(team: t.Any) -> str:
    name = getattr(team, "name", team)
    return "a team" if name is None else str(name)


def nice(value: t.Any) -> str:
    """A role or setting as the page shows it: ``"admin"`` → ``"Admin"``."""
    text = getattr(value, "name", value)
    text = "none" if text is None else str(text)
    return text[:1].upper() + text[1:]
