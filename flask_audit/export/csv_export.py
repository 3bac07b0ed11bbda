"""CSV and JSON-lines exports of the audit trail, streamed from the database.

A CSV file starts with the UTF-8 byte order mark: Excel, and LibreOffice's Text Import
dialog, read a CSV without it in a legacy code page, and "Équipe Zoë 🚀" or "فريق" come
out as mojibake. Every CSV cell is quoted (RFC 4180, CRLF line ends), and a cell that
starts with ``=``, ``+``, ``-``, ``@``, tab, CR, LF or NUL gets a leading ``'`` so that a
spreadsheet shows it as text (OWASP "CSV injection": prefix, never strip). Times are ISO
8601 UTC with ``Z``; Details is compact JSON with sorted keys. A JSON-lines file holds one
event per line as the JSON API serialises it, with no mark and nothing neutralised. Rows
are read ``BATCH_SIZE`` at a time through a server-side cursor, so memory stays flat at
any size.

Two methods write the same CSV bytes. ``"python"`` formats each row and hands it to the
stdlib :mod:`csv` writer: the reference. ``"sql"``, the default, has the database
neutralise and quote the ten text cells and join them into the start of the line, leaving
only Details to Python (the SQL is in :mod:`flask_audit.export.csv_sql`); it is several
times faster (``benchmarks/export_bench.py``), and ``tests/export/test_csv_export.py``
compares the two byte for byte on every backend.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import csv
import dataclasses
import datetime as dt
import io
import json
import json.encoder
import json.scanner
import queue
import threading
import typing as t

import sqlalchemy as sa

from ..admin.api import FIELDS
from ..admin.api import serialize
from ..query.filters import AuditFilter
from ..query.sql import select_events
from ..store.models import audit_event_table
from ..store.models import AuditEvent
from .csv_sql import DANGEROUS_STARTS
from .csv_sql import line_start
from .csv_sql import TEXT_COLUMNS

HEADER = (
    "Time",
    "Team",
    "Entity",
    "Activity",
    "Action",
    "Actor",
    "IP",
    "Event type",
    "Outcome",
    "User agent",
    "Details",
)
FORMATS = ("csv", "jsonl")
#: Starts every CSV file (U+FEFF in UTF-8), so that spreadsheets detect the encoding.
BOM = "\ufeff"
METHODS = ("sql", "python")
BATCH_SIZE = 1000
#: Distinct Details texts remembered during one export (a few MB at most).
DETAILS_CACHE_SIZE = 4096
#: The keys of a JSON-lines record: the JSON API's fields, in its order.
JSONL_COLUMNS = FIELDS
SQL_DIALECTS = frozenset({"sqlite", "postgresql", "mysql", "mariadb"})

_HEADER_LINE = BOM + '"' + '","'.join(HEADER) + '"\r\n'
_details_json = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_jsonl_record = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclasses.dataclass(frozen=True)
class ExportStats:
    """What an export wrote: data rows (the header not counted) and bytes."""

    rows: int
    bytes: int


def neutralise(value: str | None) -> str:
    """``value`` as a spreadsheet shows it as text: a formula start behind ``'``, None empty."""
    if not value:
        return ""
    return "'" + value if value.startswith(DANGEROUS_STARTS) else value


def details_json(details: t.Any) -> str:
    """Details as compact JSON with sorted keys, the same for equal values on any backend."""
    return _details_json(details)


def format_time(when: dt.datetime) -> str:
    """ISO 8601 UTC with microseconds and ``Z``, such as ``2026-11-20T10:00:00.123456Z``."""
    return when.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def csv_cells(row: c.Sequence[t.Any]) -> list[str]:
    """The CSV cells of ``(occurred_at, *TEXT_COLUMNS, details)``: the reference formatting."""
    when, *texts, details = row
    action = TEXT_COLUMNS.index("action")
    texts[action] = texts[action].capitalize()
    return [format_time(when), *map(neutralise, texts), neutralise(details_json(details))]


def export_statement(
    flt: AuditFilter,
    *,
    retention_days: int,
    tenant_scoped: bool,
    tenant_id: str | None,
    now: dt.datetime | None = None,
    max_event_id: int | None = None,
) -> sa.Select[t.Any]:
    """The events an export writes, newest first: every page of ``flt``, none after ``max_event_id``."""
    stmt = select_events(
        dataclasses.replace(flt, cursor=None),
        retention_days=retention_days,
        tenant_scoped=tenant_scoped,
        tenant_id=tenant_id,
        now=now,
    )
    if max_event_id is not None:
        stmt = stmt.where(AuditEvent.id <= max_event_id)
    return stmt


def count_rows(conn: sa.Connection, stmt: sa.Select[t.Any]) -> int:
    """How many rows :func:`write_export` would write for ``stmt``."""
    counted = stmt.with_only_columns(sa.func.count(), maintain_column_froms=True).order_by(None)
    return int(conn.execute(counted).scalar_one())


def iter_export(
    conn: sa.Connection, stmt: sa.Select[t.Any], *, fmt: str = "csv", method: str | None = None
) -> c.Generator[bytes]:
    """The export of ``stmt``'s rows as UTF-8 chunks of about ``BATCH_SIZE`` rows each.

    Close the generator to stop early (a WSGI server does when a download is cut short).
    """
    for text, _ in _chunks(conn, stmt, fmt, method):
        yield text.encode()


def write_export(
    conn: sa.Connection,
    stmt: sa.Select[t.Any],
    out: t.BinaryIO,
    *,
    fmt: str = "csv",
    method: str | None = None,
) -> ExportStats:
    """Stream the export of ``stmt``'s rows into ``out``; return what was written."""
    rows = size = 0
    for text, count in _chunks(conn, stmt, fmt, method):
        data = text.encode()
        out.write(data)
        rows += count
        size += len(data)
    return ExportStats(rows, size)


def _chunks(
    conn: sa.Connection, stmt: sa.Select[t.Any], fmt: str, method: str | None
) -> c.Iterator[tuple[str, int]]:
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if method is not None and method not in METHODS:
        raise ValueError(f"Unknown export method {method!r}; use one of {', '.join(METHODS)}.")
    if fmt == "jsonl":
        return _jsonl_chunks(conn, stmt)
    if method is None:
        method = "sql" if conn.dialect.name in SQL_DIALECTS else "python"
    return _sql_chunks(conn, stmt) if method == "sql" else _python_chunks(conn, stmt)


def _stream(conn: sa.Connection, stmt: sa.Executable) -> c.Iterator[c.Sequence[sa.Row[t.Any]]]:
    """Batches of rows from a server-side cursor (SQLite's cursors stream by nature)."""
    result = conn.execution_options(stream_results=True, yield_per=BATCH_SIZE).execute(stmt)
    with result:
        if conn.dialect.name == "sqlite":  # in-process: nothing to overlap
            yield from result.partitions()
        else:
            yield from _read_ahead(result.partitions())


_T = t.TypeVar("_T")
_END = object()


def _read_ahead(batches: c.Iterator[_T]) -> c.Iterator[_T]:
    """``batches``, fetched by a thread while the caller writes the previous one.

    A server cursor makes the next batch only when asked: fetching it ahead lets the
    database work while Python formats, instead of each waiting for the other.
    """
    ready: queue.Queue[t.Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def read() -> None:
        try:
            for batch in batches:
                ready.put(batch)
                if stop.is_set():
                    return
            ready.put(_END)
        except BaseException as err:  # handed to the caller's thread
            ready.put(err)

    reader = threading.Thread(target=read, name="flask-audit-export-reader", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # unblock it, and let it finish with the cursor first
            with contextlib.suppress(queue.Empty):
                ready.get_nowait()
            reader.join(0.01)


def _raw_details(conn: sa.Connection) -> sa.ColumnElement[t.Any]:
    """Details as the database stores it, decoded by :func:`_decoded` on both paths alike."""
    details = audit_event_table.c.details
    if conn.dialect.name == "postgresql":
        return sa.cast(details, sa.Text)
    return sa.type_coerce(details, sa.Text)


def _decoded(stored: t.Any) -> t.Any:
    # SQLite's NUMERIC affinity returns a bare JSON number as a number, not as text.
    return json.loads(stored) if isinstance(stored, str) else stored


def _fast_json() -> tuple[c.Callable[[str], t.Any], c.Callable[[t.Any], str]]:
    """:func:`json.loads` and :func:`details_json`, twice as fast on small objects.

    ``JSONEncoder.encode`` builds a C encoder on every call, and ``loads`` wraps the C
    scanner in checks that stored JSON does not need: here both are built once. The
    byte-for-byte test of the two export methods holds them to the standard functions.
    """
    decoder: t.Any = json.JSONDecoder()  # typeshed types the scanner's argument oddly
    scan: c.Callable[[str, int], tuple[t.Any, int]] = json.scanner.make_scanner(decoder)
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is None:  # pragma: no cover - CPython has the C accelerator
        return _decoded, details_json
    encoder = make_encoder(
        None, json.JSONEncoder().default, json.encoder.encode_basestring, None, ":", ",", True, False, True
    )

    def parse(stored: t.Any) -> t.Any:
        if not isinstance(stored, str):
            return stored
        try:
            value, end = scan(stored, 0)
        except StopIteration:
            return json.loads(stored)  # raises the usual error
        return value if end == len(stored) else json.loads(stored)

    def encode(value: t.Any) -> str:
        return "".join(encoder(value, 0))

    return parse, encode


_parse_json, _encode_json = _fast_json()


def _python_chunks(conn: sa.Connection, stmt: sa.Select[t.Any]) -> c.Iterator[tuple[str, int]]:
    cols = audit_event_table.c
    texts = (cols[name] for name in TEXT_COLUMNS)
    picked = stmt.with_only_columns(cols.occurred_at, *texts, _raw_details(conn))
    yield _HEADER_LINE, 0
    for batch in _stream(conn, picked):
        buffer = io.StringIO()
        writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerows(csv_cells((*row[:-1], _decoded(row[-1]))) for row in batch)
        yield buffer.getvalue(), len(batch)


def _line_end(stored: t.Any) -> str:
    """The rest of a line after :func:`line_start`: the Details cell's content, closed."""
    cell = neutralise(_encode_json(_parse_json(stored)))
    return cell.replace('"', '""') + '"\r\n'


def _sql_chunks(conn: sa.Connection, stmt: sa.Select[t.Any]) -> c.Iterator[tuple[str, int]]:
    picked = stmt.with_only_columns(line_start(), _raw_details(conn))
    # The same details recur (every password sign-in has {"method": "password"}): each
    # distinct text is decoded and encoded once, up to a bound that keeps memory flat.
    ends: dict[t.Any, str] = {}
    yield _HEADER_LINE, 0
    for batch in _stream(conn, picked):
        parts: list[str] = []
        add = parts.append
        for start, stored in t.cast("c.Sequence[tuple[str, t.Any]]", batch):
            end = ends.get(stored)
            if end is None:
                end = _line_end(stored)
                if len(ends) < DETAILS_CACHE_SIZE:
                    ends[stored] = end
            add(start)
            add(end)
        yield "".join(parts), len(batch)


def _jsonl_chunks(conn: sa.Connection, stmt: sa.Select[t.Any]) -> c.Iterator[tuple[str, int]]:
    """One JSON object per line, as the JSON API serialises an event: this output is for
    programs, so values are kept as they are (no neutralising) and there is no BOM."""
    cols = audit_event_table.c
    picked = stmt.with_only_columns(*(cols[name] for name in JSONL_COLUMNS))
    for batch in _stream(conn, picked):
        yield "".join(_jsonl_record(serialize(row)) + "\n" for row in batch), len(batch)
