"""The export formats as admins and their programs meet them: names, files, content types.

The bytes of each format are written by :mod:`flask_audit.export.csv_export`; this module
says what the confirmation page, the mail, the stored file and the download call them.
"""

from __future__ import annotations

import dataclasses

from .csv_export import FORMATS


@dataclasses.dataclass(frozen=True)
class Format:
    """One export format: its name in forms and jobs, its label and what a file of it is."""

    name: str
    label: str
    extension: str
    #: The download's type; the mail attachment's adds the charset for text types.
    mimetype: str
    hint: str

    @property
    def attachment_type(self) -> str:
        return f"{self.mimetype}; charset=utf-8" if self.mimetype.startswith("text/") else self.mimetype


CSV = Format(
    "csv",
    "CSV",
    "csv",
    "text/csv",
    "For spreadsheets: UTF-8 with a byte order mark, so every script opens right; cells that"
    " start like a formula begin with an apostrophe.",
)
JSONL = Format(
    "jsonl",
    "JSON lines",
    "jsonl",
    "application/x-ndjson",
    "For programs: one JSON object per event, with the JSON API's field names.",
)
#: Every format of :data:`~flask_audit.export.csv_export.FORMATS`, in its order.
BY_NAME = {known.name: known for known in (CSV, JSONL)}


def format_of(name: str) -> Format:
    """The format called ``name``; :class:`ValueError` for an unknown one."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"Unknown export format {name!r}; use one of {', '.join(FORMATS)}.") from None
