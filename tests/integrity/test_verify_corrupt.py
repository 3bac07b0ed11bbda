"""``verify`` on values no writer could have stored: it names the row, it never crashes.

Each test corrupts a sealed event or seal with raw SQL as the database owner (triggers out
of the way, see :func:`~tests.sealing_fixtures.forged`). Where a server's column type
refuses the value (PostgreSQL ``jsonb``, MariaDB's ``json_valid`` check, ``bytea``), the
owner first changes the column's type, as an attacker with those rights could.
"""

from __future__ import annotations

import json
import pathlib
import typing as t

import hypothesis.strategies as st
import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import given
from hypothesis import settings

from flask_audit.integrity import canonical

from ..sealing_fixtures import forged
from ..sealing_fixtures import KEY
from ..sealing_fixtures import problem
from ..sealing_fixtures import record
from ..sealing_fixtures import seal

pytestmark = pytest.mark.audit_config(AUDIT_SEAL_KEY=KEY)


def _as_text(conn: sa.Connection, table: str, column: str, charset: str = "utf8mb4") -> None:
    """Make ``column`` plain text, so that the server stores whatever is written to it.

    ``charset`` ``latin1`` turns MariaDB bytes into text without refusing any of them.
    """
    name = conn.dialect.name
    if name == "postgresql":
        conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE text USING {column}::text")
    elif name in ("mysql", "mariadb"):
        conn.exec_driver_sql(f"ALTER TABLE {table} MODIFY {column} LONGTEXT CHARACTER SET {charset} NULL")


def _nullable(conn: sa.Connection, table: str, column: str, mysql_type: str) -> None:
    name = conn.dialect.name
    if name == "postgresql":
        conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL")
    elif name in ("mysql", "mariadb"):
        conn.exec_driver_sql(f"ALTER TABLE {table} MODIFY {column} {mysql_type} NULL")


def _set(conn: sa.Connection, table: str, column: str, value: object, row_id: int) -> None:
    conn.execute(
        sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id"), {"value": value, "id": row_id}
    )


def _run_verify(app: Flask) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    return result.exit_code, result.output


def _sealed(app: Flask, count: int = 4) -> list[int]:
    ids = record(app, count)
    seal(app, max_events=2)
    return ids


def _fails_on_event(app: Flask, event_id: int, column: str) -> None:
    found = problem(app)
    assert (found.kind, found.event_id) == ("modified", event_id)
    assert found.message.startswith(f"Event {event_id} was modified after seal ")
    assert f"its {column} " in found.message
    code, output = _run_verify(app)
    assert (code, output) == (1, f"Error: Verification failed: {found.message}\n")


# -- events ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["{not json", '{"n": 1', "", "[1, 2"])
def test_details_that_are_not_json_name_the_event(app: Flask, text: str) -> None:
    ids = _sealed(app)
    with forged(app) as conn:
        _as_text(conn, "audit_event", "details")
        _set(conn, "audit_event", "details", text, ids[2])
    _fails_on_event(app, ids[2], "details")


@pytest.mark.parametrize("number", ["1e400", "-1e400"])
def test_details_with_a_number_beyond_float_name_the_event(app: Flask, backend: str, number: str) -> None:
    ids = _sealed(app)
    with forged(app) as conn:
        _set(conn, "audit_event", "details", f'{{"n": {number}}}', ids[1])
    if backend != "postgresql":
        _fails_on_event(app, ids[1], "details")
        return
    # jsonb keeps it exactly, as an integer of 401 digits: readable, and not what was sealed.
    found = problem(app)
    assert (found.kind, found.event_id) == ("modified", ids[1])
    assert found.message == f"Event {ids[1]} was modified after seal 2 sealed it."


@pytest.mark.parametrize("digits", [5000, 100_000])
def test_details_with_an_integer_too_long_to_read_name_the_event(app: Flask, digits: int) -> None:
    ids = _sealed(app)
    with forged(app) as conn:
        _as_text(conn, "audit_event", "details")
        _set(conn, "audit_event", "details", f'{{"n": {"9" * digits}}}', ids[1])
    _fails_on_event(app, ids[1], "details")


def test_details_nested_too_deeply_name_the_event(app: Flask) -> None:
    ids = _sealed(app)
    with forged(app) as conn:
        _as_text(conn, "audit_event", "details")
        _set(conn, "audit_event", "details", "[" * 100_000 + "]" * 100_000, ids[2])
    _fails_on_event(app, ids[2], "details")


@pytest.mark.backends("sqlite", "mariadb")
@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_details_with_a_non_finite_constant_name_the_event(app: Flask, constant: str) -> None:
    ids = _sealed(app)
    with forged(app) as conn:
        _as_text(conn, "audit_event", "details")
        _set(conn, "audit_event", "details", f'{{"n": [1, {{"deep": {constant}}}]}}', ids[0])
    _fails_on_event(app, ids[0], "details")


def test_details_holding_json_null_is_a_modification(app: Flask) -> None:
    ids = _sealed(app)
    with forged(app) as conn:
        _set(conn, "audit_event", "details", "null", ids[3])
    found = problem(app)
    assert (found.kind, found.event_id) == ("modified", ids[3])
    assert _run_verify(app)[0] == 1


@pytest.mark.backends("postgresql", "mariadb")
def test_a_null_time_is_a_modification(app: Flask) -> None:
    ids = _sealed(app)
    with forged(app) as conn:
        _nullable(conn, "audit_event", "occurred_at", "DATETIME(6)")
        _set(conn, "audit_event", "occurred_at", None, ids[2])
    found = problem(app)
    assert (found.kind, found.event_id) == ("modified", ids[2])
    assert _run_verify(app) == (1, f"Error: Verification failed: {found.message}\n")


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("value", ["yesterday", "2026-13-45 99:99:99", 12345, b"\xff\xfe"])
def test_a_time_that_is_not_a_time_names_the_event(app: Flask, value: object) -> None:
    ids = _sealed(app)
    with forged(app) as conn:
        _set(conn, "audit_event", "occurred_at", value, ids[1])
    _fails_on_event(app, ids[1], "occurred_at")


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("column", ["team", "activity", "details"])
def test_text_that_is_not_utf8_names_the_event(app: Flask, column: str) -> None:
    ids = _sealed(app)
    with forged(app) as conn:
        conn.execute(
            sa.text(f"UPDATE audit_event SET {column} = CAST(x'ff41' AS TEXT) WHERE id = :id"), {"id": ids[1]}
        )
    _fails_on_event(app, ids[1], column)


def test_the_first_corrupt_event_is_named_not_a_later_one(app: Flask) -> None:
    ids = _sealed(app, 6)
    with forged(app) as conn:
        _set(conn, "audit_event", "details", '{"n": 1e400}', ids[4])
        _set(conn, "audit_event", "team", "forged", ids[2])
    found = problem(app)
    assert (found.kind, found.event_id) == ("modified", ids[2])
    assert found.message == f"Event {ids[2]} was modified after seal 2 sealed it."


def test_a_corrupt_event_after_the_last_seal_is_not_checked(app: Flask, tmp_path: pathlib.Path) -> None:
    _sealed(app, 2)
    [unsealed] = record(app)
    with forged(app) as conn:
        _set(conn, "audit_event", "details", '{"n": 1e400}', unsealed)
    code, output = _run_verify(app)
    assert (code, output) == (
        0,
        "Verified 3 sealed event(s) against 2 chain link(s); 1 newer event(s) not sealed yet."
        f" Witness {tmp_path / 'audit-seal-witness.jsonl'}: no file yet, nothing to check.\n",
    )


# -- seals ---------------------------------------------------------------------------------------


def _fails_on_seal(app: Flask, seal_id: int) -> None:
    found = problem(app)
    assert (found.kind, found.seal_id) == ("seal_altered", seal_id)
    assert found.message.startswith(f"Seal {seal_id} was altered")
    assert _run_verify(app) == (1, f"Error: Verification failed: {found.message}\n")


def test_a_manifest_stored_as_text_names_the_seal(app: Flask) -> None:
    _sealed(app)
    with forged(app) as conn:
        _as_text(conn, "audit_seal", "manifest", charset="latin1")
        _set(conn, "audit_seal", "manifest", "not a manifest", 1)
    _fails_on_seal(app, 1)


@pytest.mark.backends("postgresql", "mariadb")
@pytest.mark.parametrize(
    ("column", "mysql_type"),
    [("manifest", "LONGBLOB"), ("last_id", "BIGINT"), ("event_count", "BIGINT"), ("hmac", "VARCHAR(64)")],
)
def test_a_null_in_a_seal_names_the_seal(app: Flask, column: str, mysql_type: str) -> None:
    _sealed(app)
    with forged(app) as conn:
        _nullable(conn, "audit_seal", column, mysql_type)
        _set(conn, "audit_seal", column, None, 3)
    _fails_on_seal(app, 3)


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize(
    ("column", "value"),
    [("last_id", "many"), ("event_count", 2.5), ("sealed_at", "not a time"), ("manifest", 7), ("kind", 1)],
)
def test_a_seal_value_of_the_wrong_type_names_the_seal(app: Flask, column: str, value: object) -> None:
    _sealed(app)
    with forged(app) as conn:
        _set(conn, "audit_seal", column, value, 3)
    _fails_on_seal(app, 3)


def test_garbage_manifest_bytes_name_the_seal(app: Flask) -> None:
    _sealed(app)
    with forged(app) as conn:
        _set(conn, "audit_seal", "manifest", b"\x01\xff\xff\xff\xffgarbage", 1)
    _fails_on_seal(app, 1)


# -- what verify parses is what the sealer read ----------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(value=st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_details_parse_as_the_database_driver_parses_them(value: dict[str, t.Any]) -> None:
    """Seals hash what SQLAlchemy's ``json.loads`` returned; verify must read the same values."""
    text = json.dumps(value)
    assert canonical.load_details(text) == json.loads(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ('{"n": NaN}', "NaN, which is not a JSON number"),
        ('{"n": -1e309}', "the number -1e309 is beyond the range of a float"),
        ('{"n": ' + "7" * 4001 + "}", "an integer of 4001 digits"),
        ("[" * 50_000 + "]" * 50_000, "JSON nested too deeply"),
    ],
)
def test_unreadable_details_say_why(text: str, reason: str) -> None:
    with pytest.raises(canonical.UnreadableValue) as caught:
        canonical.load_details(text)
    assert (caught.value.column, caught.value.reason) == ("details", reason)
