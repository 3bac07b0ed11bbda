"""What ``flask audit verify`` can find wrong: the kinds, and the first problem found."""

from __future__ import annotations

import dataclasses

PROBLEM_KINDS = (
    "modified",
    "deleted",
    "inserted",
    "reordered",
    "truncated",
    "seal_altered",
    "seal_removed",
    "witness_mismatch",
    "backdated",
)


@dataclasses.dataclass(frozen=True)
class Problem:
    """The first thing :func:`~flask_audit.integrity.verification.verify` found wrong: its kind,
    the event or seal, a sentence."""

    kind: str
    message: str
    event_id: int | None = None
    seal_id: int | None = None
