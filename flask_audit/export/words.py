"""Exports put into words: their filters, times in the admin's zone, a job's status.

The confirmation page, the flash message, the exports page and the mail all say what an
export holds in these same words, so an admin can match the mail to the request. Filters
are read from :meth:`AuditFilter.to_args` output, so any filter the query layer adds shows
here without a change (an unknown name is shown as it is spelled).
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import typing as t
import zoneinfo

from ..admin.presentation import day_label

if t.TYPE_CHECKING:
    from ..store.models import ExportJob

#: How each filter is named, in the order the page's filter form shows them.
LABELS = {
    "q": "Search",
    "entity": "Entity",
    "event_type": "Event type",
    "action": "Action",
    "outcome": "Outcome",
    "actor": "Actor",
    "team": "Team",
    "start": "From",
    "end": "To",
}
NO_FILTERS = "no filters (every event of the retention window)"
_CAPITALISED = frozenset({"action", "outcome"})
_TIMES = frozenset({"start", "end"})


def filter_pairs(args: c.Mapping[str, str], timezone: str) -> list[tuple[str, str]]:
    """``(label, value)`` for each filter of ``args`` (as ``to_args`` gives them), times in ``timezone``."""
    tz = zoneinfo.ZoneInfo(timezone)
    known = [name for name in LABELS if name in args]
    others = sorted(name for name in args if name not in LABELS)
    pairs = []
    for name in (*known, *others):
        value = str(args[name])
        if name in _TIMES:
            value = _filter_time(value, tz, timezone)
        elif name in _CAPITALISED:
            value = value.capitalize()
        pairs.append((LABELS.get(name) or name.replace("_", " ").capitalize(), value))
    return pairs


def filters_in_words(args: c.Mapping[str, str], timezone: str) -> str:
    """The filters as one line: ``"Entity: Team; From: 2026-01-01 (Europe/Berlin)"``."""
    pairs = filter_pairs(args, timezone)
    return "; ".join(f"{label}: {value}" for label, value in pairs) if pairs else NO_FILTERS


def _filter_time(value: str, tz: zoneinfo.ZoneInfo, timezone: str) -> str:
    """A stored bound as the admin typed it: a date when it is a day's edge, else to the minute."""
    try:
        moment = dt.datetime.fromisoformat(value).astimezone(tz)
    except ValueError:  # not written by to_args: shown as it is
        return value
    edge = moment.time() in (dt.time.min, dt.time.max)
    text = moment.strftime("%Y-%m-%d" if edge else "%Y-%m-%d %H:%M")
    return f"{text} ({timezone})"


def local_text(when: dt.datetime, tz: zoneinfo.ZoneInfo, *, year: bool = True) -> str:
    """A time as people read it in ``tz``: ``"Nov 20, 2026, 14:05"`` (``"Nov 20, 14:05"``)."""
    local = when.astimezone(tz)
    day = day_label(local.date())
    return f"{day}, {local.year}, {local:%H:%M}" if year else f"{day}, {local:%H:%M}"


def status_words(job: ExportJob, tz: zoneinfo.ZoneInfo) -> tuple[str, str]:
    """The job's status as a short phrase, and its kind (``pending``, ``done``, ``failed``)."""
    if job.status == "queued" and job.attempts:
        return f"Waiting to retry at {local_text(job.next_attempt_at, tz, year=False)}", "pending"
    if job.status == "queued":
        return "Waiting to be sent", "pending"
    if job.status == "sending":
        return "Being written and sent", "pending"
    if job.status == "sent":
        how = "with a download link" if job.delivery == "link" else "as an attachment"
        return f"Sent by email {how}", "done"
    if job.status == "failed":
        return "Failed", "failed"
    return job.status.capitalize(), "pending"


def count_words(count: int) -> str:
    """``"1 event"``, ``"1,234 events"``."""
    return f"{count:,} event{'' if count == 1 else 's'}"


def selection_words(count: int, args: c.Mapping[str, str], timezone: str) -> str:
    """What an export holds: ``"3 events matching Entity: Team"``."""
    if not args:
        return f"{count_words(count)} with no filters (the whole retention window)"
    return f"{count_words(count)} matching {filters_in_words(args, timezone)}"
