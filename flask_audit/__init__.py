"""flask_audit: an insert-only audit trail for Flask apps, with an admin page and export."""

from __future__ import annotations

from . import signals
from .exceptions import AuditConfigError
from .exceptions import AuditError
from .exceptions import AuditWriteError
from .exceptions import ImmutableAuditEventError
from .exceptions import InvalidFilterError
from .exceptions import SealMismatchError
from .exceptions import TrackedBulkStatementError
from .exceptions import UnknownEventTypeError
from .exceptions import WitnessError
from .extension import Audit
from .store.models import AuditEvent

__all__ = [
    "Audit",
    "AuditConfigError",
    "AuditError",
    "AuditEvent",
    "AuditWriteError",
    "ImmutableAuditEventError",
    "InvalidFilterError",
    "SealMismatchError",
    "TrackedBulkStatementError",
    "UnknownEventTypeError",
    "WitnessError",
    "signals",
]
