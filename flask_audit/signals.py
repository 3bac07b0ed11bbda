"""flask_audit's blinker signals.

Two kinds live here. ``event_recorded`` and ``write_failed`` are sent *by* the extension
after each event is stored (or spooled), or could not be. The others are sent *by the
app* for what its identity stack does not announce; the extension turns each into its
event. Every signal is sent with the real app as sender (``current_app`` itself is
resolved to it); receivers take ``(sender, **kwargs)`` and should accept extra keyword
arguments.
"""

from __future__ import annotations

import typing as t

from blinker import NamedSignal
from blinker import Namespace


class AppSignal(NamedSignal):
    """A signal that accepts ``current_app`` itself as sender.

    Receivers are connected per app, and blinker matches senders by identity: a signal sent
    with the ``current_app`` proxy (the natural spelling in a blueprint) would reach nobody.
    The proxy is resolved to the real app first.
    """

    def send(self, sender: t.Any | None = None, /, **kwargs: t.Any) -> list[tuple[t.Any, t.Any]]:
        resolve = getattr(sender, "_get_current_object", None)
        return super().send(resolve() if callable(resolve) else sender, **kwargs)


class _Namespace(Namespace):
    def signal(self, name: str, doc: str | None = None) -> NamedSignal:
        if name not in self:
            self[name] = AppSignal(name, doc)
        return self[name]


_signals = _Namespace()

#: Sent after an event is stored, or spooled when the database refused it.
#: Kwargs: ``event`` (the :class:`~flask_audit.AuditEvent`), ``spooled`` (bool).
event_recorded: NamedSignal = _signals.signal("event-recorded")

#: Sent when an event could not be stored: the database refused it, no connection could be
#: had in time, or the request's team or tenant could not be read. Kwargs: ``event`` (the
#: unstored :class:`~flask_audit.AuditEvent`), ``reason`` (text), ``spooled`` (bool: kept in
#: the spool; ``False`` means :class:`~flask_audit.AuditWriteError` is raised next).
write_failed: NamedSignal = _signals.signal("write-failed")

#: A sign-in was refused. Kwargs: ``email`` (what was typed), ``reason``
#: (``"unknown_user"``, ``"bad_password"``, ...), optional ``user`` when the account exists.
login_failed: NamedSignal = _signals.signal("login-failed")

#: Kwargs: ``user``; optional ``method`` (``"totp"``, ``"webauthn"``, ...).
two_factor_enabled: NamedSignal = _signals.signal("two-factor-enabled")
#: Kwargs: ``user``; optional ``method``.
two_factor_disabled: NamedSignal = _signals.signal("two-factor-disabled")
#: An admin reset another user's second factor. Kwargs: ``user`` (whose factor was reset).
two_factor_reset: NamedSignal = _signals.signal("two-factor-reset")
#: A code was accepted. Kwargs: ``user``; optional ``method``.
two_factor_verified: NamedSignal = _signals.signal("two-factor-verified")
#: A code was refused. Kwargs: ``user``; optional ``method``, ``reason``.
two_factor_failed: NamedSignal = _signals.signal("two-factor-failed")

#: Kwargs: ``settings`` (a mapping: entity id, SSO URL, fingerprints, enforced).
sso_configured: NamedSignal = _signals.signal("sso-configured")
#: Kwargs: ``old`` and ``new`` settings mappings.
sso_updated: NamedSignal = _signals.signal("sso-updated")
#: Kwargs: optional ``settings`` that were removed.
sso_disabled: NamedSignal = _signals.signal("sso-disabled")

#: Kwargs: ``team`` (name).
team_created: NamedSignal = _signals.signal("team-created")
#: Kwargs: ``team``; optional ``old_name``, ``changes`` (``{field: [old, new]}``).
team_updated: NamedSignal = _signals.signal("team-updated")
#: Kwargs: ``team``.
team_deleted: NamedSignal = _signals.signal("team-deleted")
#: Kwargs: ``team``, ``user`` (or ``email``).
team_member_added: NamedSignal = _signals.signal("team-member-added")
#: Kwargs: ``team``, ``user`` (or ``email``).
team_member_removed: NamedSignal = _signals.signal("team-member-removed")

#: Kwargs: ``email`` (invitee); optional ``role``, ``team``.
invite_sent: NamedSignal = _signals.signal("invite-sent")
#: Kwargs: ``email`` or ``user``.
invite_accepted: NamedSignal = _signals.signal("invite-accepted")
#: Kwargs: ``email``.
invite_revoked: NamedSignal = _signals.signal("invite-revoked")

#: Kwargs: ``user``, ``old``, ``new`` (role names).
role_updated: NamedSignal = _signals.signal("role-updated")

#: Kwargs: ``user``.
user_created: NamedSignal = _signals.signal("user-created")
#: Kwargs: ``user`` (or ``email`` and ``user_id``).
user_deleted: NamedSignal = _signals.signal("user-deleted")
#: Kwargs: ``user``; optional ``by_admin`` (bool).
password_changed: NamedSignal = _signals.signal("password-changed")
