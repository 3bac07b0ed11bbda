"""How the audit page shows events: its table rows, the chart of events per day, day labels.

Nothing here reads the request or the database: :mod:`flask_audit.admin.views` loads the rows and
picks the display zone, these turn them into what the templates draw.
"""

from __future__ import annotations

import collections.abc as c
import datetime as dt
import re
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

    ``iso`` (UTC, milliseconds, ``Z``) goes in ``<time datetime>``, ``utc`` in the tooltip a
    keyboard or a tap reaches, ``local`` (the display zone) is the visible text; ``actor`` is
    the email ready to wrap only at its ``@`` and dots; ``row`` is the database row.
    """

    __slots__ = ("row", "iso", "local", "utc", "actor", *PAGE_COLUMNS)

    def __init__(self, row: t.Any, tz: zoneinfo.ZoneInfo) -> None:
        self.row = row
        for name in PAGE_COLUMNS:
            setattr(self, name, getattr(row, name))
        self.iso, self.local, self.utc = event_times(row.occurred_at, tz)
        self.actor = email_breaks(row.actor_email) if row.actor_email else None


def email_breaks(email: str) -> Markup:
    """``email`` as unbreakable pieces with a break allowed after the ``@`` and before each dot.

    A narrow column then wraps "priya.raman@<wbr>acme-corp<wbr>.test" between its parts,
    never inside a name (nor at a hyphen, which browsers would otherwise break at). Built
    here once per row: a template filter per row costs more than the table's other cells.
    """
    # Escaping first is safe: an entity (&amp;, &#39;...) holds neither "@" nor ".".
    pieces = _EMAIL_BREAKS.split(str(escape(email)))
    return Markup('<span class="fa-nobr">' + _EMAIL_JOIN.join(piece for piece in pieces if piece) + "</span>")


#: Where an email may wrap: after the ``@``, before a dot.
_EMAIL_BREAKS = re.compile(r"(?<=@)|(?=\.)")
_EMAIL_JOIN = '</span><wbr><span class="fa-nobr">'


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
    """Events per day (in the display zone) of the shown range, drawn as bars by ``_chart.html``.

    With ``link`` (a day to the URL of the page filtered to that day), each day with events
    is a link, so a click on a bar narrows the table to it without any script.
    """

    #: At least this many day slots, so that a short range does not draw one huge bar.
    MIN_SLOTS = 7

    def __init__(
        self, days: list[tuple[dt.date, int]], link: c.Callable[[dt.date], str] | None = None
    ) -> None:
        self.days = days
        self.total = sum(count for _, count in days)
        self.peak = max((count for _, count in days), default=0)
        self.slots = max(len(days), self.MIN_SLOTS)
        left = (self.slots - len(days)) * 5
        self.bars = [self._bar(day, count, left + n * 10) for n, (day, count) in enumerate(days)]
        #: The bars as SVG markup, written here once: a template loop over 90 days costs
        #: more than the rest of the page. A template may draw ``bars`` itself instead.
        self.rects = Markup("".join(_bar_markup(bar, link) for bar in self.bars))

    def _bar(self, day: dt.date, count: int, x: float) -> Bar:
        height = max(count / self.peak * 99, 2.0) if count else 0.0
        title = f"{day_label(day, weekday=True)}, {day.year}: {count:,} event{'' if count == 1 else 's'}"
        return Bar(day, count, x + 1.5, round(100 - height, 2), round(height, 2), title)


def _bar_markup(bar: Bar, link: c.Callable[[dt.date], str] | None) -> str:
    """One bar; a linked one also gets a full-height hit area, so a thin day is easy to tap."""
    title = escape(bar.title)
    rect = f'<rect class="fa-chart__bar" x="{bar.x}" y="{bar.y}" width="7" height="{bar.height}">'
    rect += f"<title>{title}</title></rect>"
    if link is None or not bar.events:
        return rect
    return (
        f'<a class="fa-chart__link" href="{escape(link(bar.day))}" aria-label="{title}, show this day">'
        f'<rect class="fa-chart__hit" x="{bar.x - 1.5}" y="0" width="10" height="100"></rect>{rect}</a>'
    )


def day_label(day: dt.date, *, weekday: bool = False) -> str:
    """A day as the chart labels it, "Mar 4" or "Wed Mar 4", on every platform and locale."""
    label = f"{_MONTHS[day.month - 1]} {day.day}"
    return f"{_WEEKDAYS[day.weekday()]} {label}" if weekday else label


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
