"""Exceptions raised by flask_audit.

The hierarchy::

    AuditError
     ├── AuditConfigError          a setting or the app's setup is wrong
     ├── UnknownEventTypeError     record() got a type it cannot classify
     ├── ImmutableAuditEventError  something tried to change or delete a stored event
     ├── AuditWriteError           the database refused an event and the policy is "raise"
     ├── SealMismatchError         verification found the trail altered
     ├── WitnessError              the seal witness could not be written or read
     ├── TrackedBulkStatementError a bulk ORM statement would skip a tracked model's events
     └── InvalidFilterError        a bad filter value (also an HTTP 400)
"""

from __future__ import annotations

from werkzeug.exceptions import BadRequest


class AuditError(Exception):
    """Base class of every error this extension raises."""


class AuditConfigError(AuditError):
    """A configuration value or the app's setup cannot work; the message says the fix."""


class UnknownEventTypeError(AuditError, ValueError):
    """An event type outside the taxonomy was recorded without its entity and action."""


class ImmutableAuditEventError(AuditError):
    """An audit event was about to be updated or deleted; events are insert-only."""


class AuditWriteError(AuditError):
    """The event could not be stored and ``AUDIT_ON_WRITE_ERROR`` is ``"raise"``."""


class SealMismatchError(AuditError):
    """The sealed chain does not match the stored events."""


class WitnessError(AuditError):
    """The seal witness could not be written or read; the message names the file and why."""


class TrackedBulkStatementError(AuditError):
    """A bulk ORM statement would change tracked rows without their events."""


class InvalidFilterError(AuditError, BadRequest):
    """A filter value that cannot be used; shown to the user, never a server error."""

    def __init__(self, message: str) -> None:
        AuditError.__init__(self, message)
        BadRequest.__init__(self, description=message)

    def __str__(self) -> str:
        return str(self.description)
