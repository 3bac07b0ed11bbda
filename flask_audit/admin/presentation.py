"""How the audit page shows events: its table rows, the chart of events per day, day labels.

Nothing here reads the request or the database: :mod:`flask_audit.admin.views` loads the rows and
picks the display zone, these turn them into what the templates draw.
"""

from __future__ import annotations

import datetime as dt
import typing as t
import zoneinfo

from markupsafe import escape
from markupsafe import Markup

#: What the table shows; the page loads no more (no details, no user agent: the event's own
#: page shows those). The id links each row to that page.
PAGE_COLUMNS: tuple[str, ...] = ("id", "occurred_at", "team", "entity", "event_type", "activity")
PAGE_COLUMNS += ("action", "outcome", "actor_email", "ip", "late", "target_type", "target_id")
#: Zones offered in the time zone field; any IANA name may be typed.
COMMON_ZONES = (
    "UTC",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Istanbul",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)


class EventView:
    """One table row as the page shows it: the loaded columns plus its times, formatted.

    ``iso`` (UTC, milliseconds, ``Z``) goes in ``<time datetime>``, ``utc`` in its title,
    ``local`` (the display zone) is the visible text; ``row`` is the database row.
    """

    __slots__ = ("row", "iso", "local", "utc", *PAGE_COLUMNS)

    def __init__(self, row: t.Any, tz: zoneinfo.ZoneInfo) -> None:
        self.row = row
        for name in PAGE_COLUMNS:
            setattr(self, name, getattr(row, name))
        self.iso, self.local, self.utc = event_times(row.occurred_at, tz)


def event_times(when: dt.datetime, tz: zoneinfo.ZoneInfo) -> tuple[str, str, str]:
    """``when`` as ISO 8601 UTC with milliseconds and ``Z`` (for ``<time datetime>``), in the
    display zone to the second, and in UTC to the second with " UTC"."""
    text = when.isoformat(sep=" ", timespec="milliseconds")[:23]
    local = when.astimezone(tz).isoformat(sep=" ", timespec="seconds")[:19]
    return f"{text[:10]}T{text[11:]}Z", local, f"{text[:19]} UTC"


class Bar(t.NamedTuple):
    """One day of the chart, in the SVG's units (each day is 10 wide, the plot 100 high)."""

    day: dt.date
    events: int
    x: float
    y: float
    height: float
    title: str


class DaySeries:
    """Events per day (in the display zone) of the shown range, drawn as bars by ``_chart.html``."""

    #: At least this many day slots, so that a short range does not draw one huge bar.
    MIN_SLOTS = 7

    def __init__(self, days: list[tuple[dt.date, int]]) -> None:
        self.days = days
        self.total = sum(count for _, count in days)
        self.peak = max((count for _, count in days), default=0)
        self.slots = max(len(days), self.MIN_SLOTS)
        left = (self.slots - len(days)) * 5
        self.bars = [self._bar(day, count, left + n * 10) for n, (day, count) in enumerate(days)]
        #: The bars as SVG markup, written here once: a template loop over 90 days costs
        #: more than the rest of the page. A template may draw ``bars`` itself instead.
        self.rects = Markup(
            "".join(
                f'<rect class="fa-chart__bar" x="{bar.x}" y="{bar.y}" width="7" height="{bar.height}">'
                f"<title>{escape(bar.title)}</title></rect>"
                for bar in self.bars
            )
        )

    def _bar(self, day: dt.date, count: int, x: float) -> Bar:
        height = max(count / self.peak * 99, 2.0) if count else 0.0
        title = f"{day_label(day, weekday=True)}, {day.year}: {count:,} event{'' if count == 1 else 's'}"
        return Bar(day, count, x + 1.5, round(100 - height, 2), round(height, 2), title)


def day_label(day: dt.date, *, weekday: bool = False) -> str:
    """A day as the chart labels it, "Mar 4" or "Wed Mar 4", on every platform and locale."""
    label = f"{_MONTHS[day.month - 1]} {day.day}"
    return f"{_WEEKDAYS[day.weekday()]} {label}" if weekday else label


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
