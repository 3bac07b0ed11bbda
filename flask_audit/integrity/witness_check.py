"""The witness against the chain: every link a witness names must be in it, with its HMAC.

The chain may go beyond the witness (another host sealed since); falling short of it, or
differing, is a ``witness_mismatch``, and the message says which of the ways it happens
(the newest seals removed, every seal deleted, the chain replaced) the evidence fits.
"""

from __future__ import annotations

import collections.abc as c
import dataclasses
import hmac as hmac_

from .canonical import Row
from .problems import Problem
from .witness import WitnessEntry


@dataclasses.dataclass
class WitnessCheck:
    """The witness entries read, the newest link they name, and the first mismatch."""

    problem: Problem | None = None
    entries: int = 0
    newest: int | None = None


def check_witness(links: c.Sequence[Row], entries: c.Iterable[WitnessEntry]) -> WitnessCheck:
    """Every link the witness names must be in the chain, at its id, with its HMAC."""
    held = {int(link["id"]): str(link["hmac"]) for link in links}
    check = WitnessCheck()
    for entry in entries:
        check.entries += 1
        check.newest = entry.id if check.newest is None else max(check.newest, entry.id)
        found = held.get(entry.id)
        if found is None or not hmac_.compare_digest(found, entry.hmac):
            message = _witness_mismatch(entry, found, max(held, default=None))
            check.problem = Problem("witness_mismatch", message, None, entry.id)
            break
    return check


def _witness_mismatch(entry: WitnessEntry, found: str | None, top: int | None) -> str:
    """What a witnessed link missing from the chain, or differing, says happened."""
    sid, what = entry.id, entry.describe()
    if top is None:
        return (
            f"The seal chain is empty, but the witness recorded seal {sid} ({what}): the seals were"
            " deleted or the tables emptied."
        )
    if found is not None:
        return (
            f"Seal {sid} is not the one the witness recorded ({what}): its HMAC differs, so the chain"
            " was replaced."
        )
    if sid > top:
        return (
            f"The chain ends at seal {top}, but the witness recorded seal {sid} ({what}): the newest"
            " seals were removed."
        )
    return f"The chain has no seal {sid}, but the witness recorded it ({what}): the chain was replaced."
