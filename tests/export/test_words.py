"""Exports in words: filters as the admin gave them, times in a zone, a job's status."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from flask_audit.export import csv_export
from flask_audit.export.formats import BY_NAME
from flask_audit.export.formats import format_of
from flask_audit.export.words import filter_pairs
from flask_audit.export.words import filters_in_words
from flask_audit.export.words import local_text
from flask_audit.export.words import selection_words
from flask_audit.export.words import status_words
from flask_audit.query.filters import AuditFilter
from flask_audit.store.models import ExportJob

UTC = dt.timezone.utc
BERLIN = "Europe/Berlin"


def test_filters_read_as_the_admin_typed_them() -> None:
    args = AuditFilter.from_args(
        {"end": "2026-03-31", "action": "export", "start": "2026-03-01", "outcome": "failure"},
        timezone=BERLIN,
    ).to_args()
    assert filter_pairs(args, BERLIN) == [
        ("Action", "Export"),
        ("Outcome", "Failure"),
        ("From", "2026-03-01 (Europe/Berlin)"),
        ("To", "2026-03-31 (Europe/Berlin)"),  # the whole day: shown as the date
    ]
    moment = AuditFilter.from_args({"start": "2026-03-01T09:30:00+00:00"}).to_args()
    assert filter_pairs(moment, BERLIN) == [("From", "2026-03-01 10:30 (Europe/Berlin)")]


def test_a_filter_this_module_does_not_know_is_shown_as_spelled() -> None:
    assert filter_pairs({"target_type": "user", "team": "Growth"}, "UTC") == [
        ("Team", "Growth"),
        ("Target type", "user"),
    ]
    assert filter_pairs({"start": "not a time"}, "UTC") == [("From", "not a time")]


def test_one_line_and_the_count() -> None:
    assert filters_in_words({"entity": "Team", "actor": "bob@example.com"}, "UTC") == (
        "Entity: Team; Actor: bob@example.com"
    )
    assert filters_in_words({}, "UTC") == "no filters (every event of the retention window)"
    assert selection_words(1, {"entity": "SSO"}, "UTC") == "1 event matching Entity: SSO"
    assert selection_words(12345, {}, "UTC") == "12,345 events with no filters (the whole retention window)"


def test_local_text() -> None:
    when = dt.datetime(2026, 11, 20, 23, 5, tzinfo=UTC)
    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
    assert local_text(when, tokyo) == "Nov 21, 2026, 08:05"
    assert local_text(when, tokyo, year=False) == "Nov 21, 08:05"


@pytest.mark.parametrize(
    ("status", "attempts", "delivery", "words", "kind"),
    [
        ("queued", 0, None, "Waiting to be sent", "pending"),
        ("queued", 2, None, "Waiting to retry at Nov 20, 10:00", "pending"),
        ("sending", 1, None, "Being written and sent", "pending"),
        ("sent", 1, "attachment", "Sent by email as an attachment", "done"),
        ("sent", 3, "link", "Sent by email with a download link", "done"),
        ("failed", 5, None, "Failed", "failed"),
    ],
)
def test_status_words(status: str, attempts: int, delivery: str | None, words: str, kind: str) -> None:
    job = ExportJob(
        status=status,
        attempts=attempts,
        delivery=delivery,
        next_attempt_at=dt.datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
    )
    assert status_words(job, zoneinfo.ZoneInfo("UTC")) == (words, kind)


def test_every_format_is_described() -> None:
    assert tuple(BY_NAME) == csv_export.FORMATS
    assert (format_of("csv").attachment_type, format_of("jsonl").attachment_type) == (
        "text/csv; charset=utf-8",
        "application/x-ndjson",
    )
    with pytest.raises(ValueError, match=r"^Unknown export format 'xlsx'; use one of csv, jsonl\.$"):
        format_of("xlsx")
