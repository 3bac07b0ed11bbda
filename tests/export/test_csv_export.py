"""The CSV and JSON-lines exports: cells, quoting, neutralisation, both methods, the CLI."""

from __future__ import annotations

import codecs
import collections.abc as c
import datetime as dt
import io
import json
import pathlib
import re

import pytest
import sqlalchemy as sa
from flask.testing import FlaskCliRunner

from flask_audit.admin.api import FIELDS
from flask_audit.export import csv_export
from flask_audit.export.csv_export import export_statement
from flask_audit.export.csv_export import HEADER
from flask_audit.export.csv_export import neutralise
from flask_audit.export.csv_export import write_export
from flask_audit.query.filters import AuditFilter
from flask_audit.query.sql import Scope
from flask_audit.store.models import AuditEvent

from ..conftest import MakeApp
from ..conftest import stored
from ..export_fixtures import build_site
from ..export_fixtures import PREFIX
from ..export_fixtures import read_csv
from ..export_fixtures import Site

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=123456)
EVERYTHING = Scope(retention_days=90, tenant_scoped=False, tenant_id=None)
FORMULAS = ["=1+1", "+41 22 000", "-2", "@SUM(A1:A9)", "\tindent", "\rreturn", "\nnewline"]
PLAIN = [
    "",
    "plain",
    'He said "hi", then left',
    "comma, inside",
    "two\nlines\r\nand CRLF",
    "unicode é 漢字 🙂 \u2028",
    "'already quoted",
    " =space first",
    "a=b",
    '"=quoted formula"',
    "trailing =",
]


@pytest.fixture
def site(make_app: MakeApp) -> Site:
    return build_site(make_app, None)


def export(site: Site, **options: str) -> bytes:
    """Every event but the table's own ``audit.enabled``, as ``write_export`` writes them."""
    stmt = export_statement(AuditFilter(), **EVERYTHING).where(AuditEvent.event_type != "audit.enabled")
    out = io.BytesIO()
    with site.engine.connect() as conn:
        write_export(conn, stmt, out, **options)
    return out.getvalue()


def test_header_and_the_cells_of_one_event(site: Site) -> None:
    site.insert(
        site.event(
            "role.updated",
            occurred_at=NOW,
            team="Growth",
            activity="Changed role of bob@example.com from Member to Admin",
            actor_email="alice@example.com",
            ip="203.0.113.7",
            user_agent="Mozilla/5.0",
            details={"before": "member", "after": "admin", "nested": {"z": [1, 2.5, None], "a": True}},
        )
    )
    data = export(site)
    header, row = read_csv(data)
    assert header == list(HEADER)
    assert data.startswith(codecs.BOM_UTF8 + b'"Time","Team","Entity","Activity","Action","Actor","IP",')
    assert row == [
        NOW.strftime("%Y-%m-%dT%H:%M:%S.123456Z"),
        "Growth",
        "Role",
        "Changed role of bob@example.com from Member to Admin",
        "Update",
        "alice@example.com",
        "203.0.113.7",
        "role.updated",
        "success",
        "Mozilla/5.0",
        '{"after":"admin","before":"member","nested":{"a":true,"z":[1,2.5,null]}}',
    ]


def test_every_cell_is_quoted_and_every_line_ends_with_crlf(site: Site) -> None:
    site.insert(*(site.event(activity=value, team=value or None) for value in PLAIN))
    data = export(site)
    lines = read_csv(data)
    assert len(lines) == 1 + len(PLAIN)
    assert sorted(line[3] for line in lines[1:]) == sorted(PLAIN)
    # Outside quoted cells there is only ',' and CRLF: remove the cells and count what is left.
    skeleton = re.sub(rb'"(?:[^"]|"")*"', b"C", data.removeprefix(codecs.BOM_UTF8))
    assert skeleton == (b"C," * 10 + b"C\r\n") * len(lines)


def test_formulas_get_a_leading_apostrophe_in_every_text_column(site: Site) -> None:
    columns = ("team", "activity", "actor_email", "user_agent", "ip", "entity")
    site.insert(*(site.event(**dict.fromkeys(columns, value)) for value in FORMULAS))
    rows = read_csv(export(site))[1:]
    for row in rows:
        assert {row[1], row[2], row[3], row[5], row[6], row[9]} == {row[3]}
    assert sorted(row[3] for row in rows) == sorted("'" + value for value in FORMULAS)


def test_a_custom_event_type_and_details_that_start_like_formulas(site: Site) -> None:
    site.insert(site.event(event_type="=cmd.run", entity="-Entity", details=-5))
    [row] = read_csv(export(site))[1:]
    assert (row[2], row[4], row[7], row[10]) == ("'-Entity", "Create", "'=cmd.run", "'-5")


@pytest.mark.backends("sqlite", "mariadb")
def test_nul_first_is_neutralised_and_kept(site: Site) -> None:
    """PostgreSQL cannot store NUL; the others can, when a row bypasses ``record()``."""
    site.insert(site.event(activity="\x00hidden", team="in\x00side"))
    for method in csv_export.METHODS:
        data = export(site, method=method)
        assert b'"\'\x00hidden"' in data
        assert b'"in\x00side"' in data


def test_record_replaces_nul_before_any_export(site: Site) -> None:
    with site.app.test_request_context():
        site.app.extensions["audit"].record("team.created", team="\x00x")
    [row] = read_csv(export(site))[1:]
    assert row[1] == "\ufffdx"


NASTY = [*FORMULAS, *PLAIN, "\x0bvertical", "\u00a0nbsp", "ü=", "\\back\\slash", "%Y%m%%", "?", "é"]


def test_the_sql_and_python_methods_write_the_same_bytes(site: Site) -> None:
    details = [
        {},
        {"b": 1, "a": 2, "é": "ü", "A": None, "": ""},
        {"text": 'line\nbreak "quoted" \t tab \x01 \x1f \u2028', "float": 0.1, "big": 10**20},
        {"floats": [1.0, 1e-07, 1e16, -0.5, 123456789.125], "nested": {"deep": [{"k": "v"}, []]}},
        {"unicode": "漢字 🙂", "emoji_key_🙂": True, "zz": False},
    ]
    rows = []
    for n, value in enumerate(NASTY):
        rows.append(
            site.event(
                activity=value,
                team=value or None,
                actor_email=value,
                user_agent=value,
                ip=None if n % 3 else value,
                details=details[n % len(details)],
                occurred_at=NOW - dt.timedelta(seconds=n, microseconds=n),
            )
        )
    rows.append(site.event(occurred_at=NOW.replace(microsecond=0)))
    site.insert(*rows)
    sql, python = export(site, method="sql"), export(site, method="python")
    assert sql == python
    assert len(read_csv(sql)) == 2 + len(NASTY)


def test_filters_tenant_window_and_snapshot_apply(site: Site) -> None:
    site.insert(
        site.event("team.created", tenant_id="acme", activity="acme new", occurred_at=NOW),
        site.event("team.deleted", tenant_id="acme", activity="acme old", occurred_at=NOW - dt.timedelta(1)),
        site.event("team.created", tenant_id="globex", activity="globex", occurred_at=NOW),
        site.event("team.created", tenant_id="acme", activity="too old", occurred_at=NOW - dt.timedelta(91)),
    )
    with site.engine.connect() as conn:
        newest = max(row.id for row in conn.execute(export_statement(AuditFilter(), **EVERYTHING)))

    def activities(
        flt: AuditFilter, tenant: str | None = None, *, scoped: bool = True, max_event_id: int | None = None
    ) -> list[str]:
        out = io.BytesIO()
        stmt = export_statement(
            flt, retention_days=90, tenant_scoped=scoped, tenant_id=tenant, max_event_id=max_event_id
        )
        with site.engine.connect() as conn:
            write_export(conn, stmt, out)
        return [row[3] for row in read_csv(out.getvalue())[1:]]

    assert activities(AuditFilter(), "acme") == ["acme new", "acme old"]
    assert activities(AuditFilter(event_type="team.created"), "acme") == ["acme new"]
    assert activities(AuditFilter(), None) == ["Enabled the audit log"]
    site.insert(site.event(activity="after the snapshot"))
    assert "after the snapshot" not in activities(AuditFilter(), scoped=False, max_event_id=newest)
    assert "after the snapshot" in activities(AuditFilter(), scoped=False)


def test_rows_stream_in_batches(site: Site) -> None:
    count = csv_export.BATCH_SIZE * 2 + 17
    site.insert(
        *(site.event(activity=f"event {n}", occurred_at=NOW - dt.timedelta(seconds=n)) for n in range(count))
    )
    stmt = export_statement(AuditFilter(event_type="team.created"), **EVERYTHING)
    with site.engine.connect() as conn:
        chunks = list(csv_export.iter_export(conn, stmt))
    assert len(chunks) == 1 + 3  # the header, then one chunk per batch
    rows = read_csv(b"".join(chunks))[1:]
    assert [row[3] for row in rows] == [f"event {n}" for n in range(count)]


def test_json_lines_are_the_apis_events_kept_as_they_are(site: Site) -> None:
    """One object per line, as ``GET <prefix>/api/events`` serialises it: no neutralising,
    no BOM (this output is for programs), text as UTF-8 rather than escapes."""
    site.insert(
        site.event(
            activity="=1+1",
            team="Équipe Zoë 🚀",
            occurred_at=NOW,
            details={"b": [1], "a": "فريق"},
            tenant_id="acme",
            target_type="user",
            target_id="42",
        )
    )
    data = export(site, fmt="jsonl")
    assert not data.startswith(codecs.BOM_UTF8)
    assert data.endswith(b"}\n") and "Équipe Zoë 🚀".encode() in data
    [record] = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    assert list(record) == list(FIELDS)
    assert (record["activity"], record["team"], record["target_id"]) == ("=1+1", "Équipe Zoë 🚀", "42")
    assert record["occurred_at"] == NOW.strftime("%Y-%m-%dT%H:%M:%S.123456Z")
    assert record["details"] == {"b": [1], "a": "فريق"}
    response = site.client(site.admin).get(f"{PREFIX}/api/events", query_string={"team": "Équipe Zoë 🚀"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["events"] == [record]


def test_unknown_format_and_method_are_refused(site: Site) -> None:
    with pytest.raises(ValueError, match=r"^Unknown export format 'xlsx'; use one of csv, jsonl\.$"):
        export(site, fmt="xlsx")
    with pytest.raises(ValueError, match=r"^Unknown export method 'copy'; use one of sql, python\.$"):
        export(site, method="copy")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        ("", ""),
        ("=x", "'=x"),
        ("\x00x", "'\x00x"),
        ("x=", "x="),
        ("'=x", "'=x"),
        (" -x", " -x"),
    ],
)
def test_neutralise(value: str | None, expected: str) -> None:
    assert neutralise(value) == expected


def test_the_export_command_writes_a_file_and_records_itself(site: Site, tmp_path: pathlib.Path) -> None:
    site.insert(
        site.event("team.created", activity="kept", tenant_id="acme"),
        site.event("team.deleted", activity="filtered out", tenant_id="acme"),
        site.event("team.created", activity="other tenant", tenant_id="globex"),
    )
    out = tmp_path / "audit.csv"
    runner = site.app.test_cli_runner()
    result = runner.invoke(
        args=["audit", "export", "--out", str(out), "--event-type", "team.created", "--tenant", "acme"]
    )
    assert result.exit_code == 0, result.output
    size = out.stat().st_size
    assert result.output == f"Exported 1 event(s) to {out} (csv, {size} bytes).\n"
    assert [row[3] for row in read_csv(out.read_bytes())] == ["Activity", "kept"]
    [event] = [event for event in stored(site.app) if event.event_type == "audit.exported"]
    assert (event.actor_email, event.tenant_id, event.action) == ("system", "acme", "export")
    assert event.details == {
        "filters": {"event_type": "team.created"},
        "rows": 1,
        "format": "csv",
        "delivery": "file",
    }


def test_the_export_command_writes_json_lines(site: Site, tmp_path: pathlib.Path) -> None:
    out = tmp_path / "audit.jsonl"
    result = site.app.test_cli_runner().invoke(
        args=["audit", "export", "--out", str(out), "--format", "jsonl"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Exported 1 event(s) to")
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["event_type"] == "audit.enabled"


def test_the_export_command_refuses_bad_filters(site: Site, tmp_path: pathlib.Path) -> None:
    runner: FlaskCliRunner = site.app.test_cli_runner()
    out = tmp_path / "audit.csv"
    result = runner.invoke(args=["audit", "export", "--out", str(out), "--start", "yesterday"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: The start date 'yesterday' is not a valid date; use YYYY-MM-DD or an ISO 8601 time.\n"
    )
    result = runner.invoke(args=["audit", "export", "--out", str(tmp_path / "missing" / "audit.csv")])
    assert result.exit_code == 1
    assert "No such file or directory" in result.output
    assert not out.exists()
    assert [event.event_type for event in stored(site.app)] == []


def test_closing_an_export_early_frees_the_connection(site: Site) -> None:
    """A download cut short stops the read-ahead thread and leaves the connection usable."""
    count = csv_export.BATCH_SIZE * 5
    site.insert(*(site.event(occurred_at=NOW - dt.timedelta(seconds=n)) for n in range(count)))
    with site.engine.connect() as conn:
        chunks = csv_export.iter_export(conn, export_statement(AuditFilter(), **EVERYTHING))
        assert next(chunks).startswith(codecs.BOM_UTF8 + b'"Time"')
        assert next(chunks).count(b"\r\n") == csv_export.BATCH_SIZE
        chunks.close()
        assert conn.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar() == count + 1


def test_an_error_while_reading_ahead_reaches_the_caller() -> None:
    def batches() -> c.Iterator[list[int]]:
        yield [1]
        raise RuntimeError("the server went away")

    reader = csv_export._read_ahead(batches())
    assert next(reader) == [1]
    with pytest.raises(RuntimeError, match="^the server went away$"):
        next(reader)
