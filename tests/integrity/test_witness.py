"""The seal witness: each new link also in a file outside the database, and ``verify`` holding
the chain to it, so that what the database owner can do to both tables shows without ``--anchor``.

Every attack here passes ``verify`` without the witness; that is asserted too, so each test
shows what the witness adds.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import stat
import subprocess
import sys
import threading
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_audit.integrity import autoseal
from flask_audit.integrity import sealing
from flask_audit.integrity import verification
from flask_audit.integrity.witness import FileWitness
from flask_audit.integrity.witness import WitnessEntry

from ..conftest import audit_of
from ..conftest import MakeApp
from ..sealing_fixtures import days_ago
from ..sealing_fixtures import engine_of
from ..sealing_fixtures import EVENTS
from ..sealing_fixtures import forged
from ..sealing_fixtures import KEY
from ..sealing_fixtures import links
from ..sealing_fixtures import record
from ..sealing_fixtures import SEALS
from ..sealing_fixtures import verify

ROOT = pathlib.Path(__file__).resolve().parents[2]
FAILED = "Error: Verification failed: "
#: About the file, not the database: one backend is enough.
file_only = pytest.mark.backends("sqlite")


@pytest.fixture
def witness_path(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "host-a" / "seal-witness.jsonl"  # its folder does not exist yet


@pytest.fixture
def app(make_app: MakeApp, witness_path: pathlib.Path) -> Flask:
    return make_app(AUDIT_SEAL_KEY=KEY, AUDIT_SEAL_WITNESS=str(witness_path))


def run(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["audit", *args])
    return result.exit_code, result.output


def lines(path: pathlib.Path) -> list[dict[str, t.Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check(app: Flask, path: pathlib.Path) -> verification.VerifyReport:
    return verify(app, witness=FileWitness(path).entries())


def three_seals(app: Flask) -> None:
    """Three links, each written to the witness by ``flask audit seal``."""
    for count in (2, 3, 2):
        record(app, count)
        code, output = run(app, "seal")
        assert code == 0, output


# -- writing --------------------------------------------------------------------------------


def test_each_new_link_is_witnessed_in_a_private_file(app: Flask, witness_path: pathlib.Path) -> None:
    record(app, 2)
    umask = os.umask(0)  # 0600 whatever the umask
    try:
        assert run(app, "seal")[0] == 0
    finally:
        os.umask(umask)
    record(app)
    assert run(app, "seal")[0] == 0
    chain = links(app)
    fields = ("id", "kind", "first_id", "last_id", "event_count", "prev_hmac", "hmac")
    assert [{name: line[name] for name in fields} for line in lines(witness_path)] == [
        {name: link[name] for name in fields} for link in chain
    ]
    assert {line["format"] for line in lines(witness_path)} == {"flask-audit-witness/1"}
    assert stat.S_IMODE(witness_path.stat().st_mode) == 0o600
    assert run(app, "seal") == (0, "Nothing new to seal: every committed event is sealed.\n")
    assert len(lines(witness_path)) == 2  # a run that adds no link writes nothing
    assert run(app, "verify") == (
        0,
        "Verified 4 sealed event(s) against 2 chain link(s); 0 newer event(s) not sealed yet."
        f" Witness {witness_path}: its 2 link(s) are in the chain, up to seal {chain[-1]['id']}.\n",
    )


def test_prune_links_are_witnessed(app: Flask, witness_path: pathlib.Path) -> None:
    old = record(app, 3, occurred_at=days_ago(120))
    witness = FileWitness(witness_path)
    sealing.seal(engine_of(app), KEY.encode(), witness=witness)
    sealing.append_prune(
        engine_of(app),
        KEY.encode(),
        first_id=1,
        last_id=old[-1],
        count=4,
        cutoff=days_ago(90),
        witness=witness,
    )
    assert [line["kind"] for line in lines(witness_path)] == ["seal", "prune"]
    report = check(app, witness_path)
    assert (report.ok, report.witnessed, report.witness_head) == (True, 2, links(app)[-1]["id"])


def test_automatic_seals_are_witnessed(make_app: MakeApp, witness_path: pathlib.Path) -> None:
    app = make_app(AUDIT_SEAL_KEY=KEY, AUDIT_SEAL_EVERY_EVENTS=2, AUDIT_SEAL_WITNESS=str(witness_path))
    sealer = autoseal.connect_auto_seal(app, audit_of(app)._state(app).config)
    assert sealer is not None
    record(app, 2)
    assert sealer.join()
    sealer.close()
    assert [line["hmac"] for line in lines(witness_path)] == [link["hmac"] for link in links(app)]


def test_a_witness_that_cannot_be_written_keeps_the_seal_and_fails_the_command(
    make_app: MakeApp, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a-file").write_text("")
    path = tmp_path / "a-file" / "seal-witness.jsonl"
    app = make_app(AUDIT_SEAL_KEY=KEY, AUDIT_SEAL_WITNESS=str(path))
    record(app)
    with caplog.at_level(logging.ERROR, logger="flask_audit.integrity.sealing"):
        code, output = run(app, "seal")
    [link] = links(app)
    error = (
        f"The seal witness {path} could not be written: Not a directory. 1 of 1 new chain link(s) are not"
        " in the witness; the seals are stored in the database, and the next link written there vouches"
        " for them."
    )
    assert (code, output) == (
        1,
        f"Sealed 2 event(s), ids 1 to 2, in 1 seal(s); chain head {link['hmac']}.\nError: {error}\n",
    )
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("ERROR", error)]
    assert run(app, "verify") == (
        0,
        "Verified 2 sealed event(s) against 1 chain link(s); 0 newer event(s) not sealed yet."
        f" Witness {path}: no file yet, nothing to check.\n",
    )


def test_the_next_link_written_vouches_for_one_the_witness_missed(
    app: Flask, tmp_path: pathlib.Path, witness_path: pathlib.Path
) -> None:
    (tmp_path / "a-file").write_text("")
    record(app)
    missed = sealing.seal(engine_of(app), KEY.encode(), witness=FileWitness(tmp_path / "a-file" / "w"))
    assert missed.seals == 1 and missed.witness_error is not None
    record(app)
    made = sealing.seal(engine_of(app), KEY.encode(), witness=FileWitness(witness_path))
    assert made.witness_error is None
    report = check(app, witness_path)
    assert (report.ok, report.witnessed, report.links) == (True, 1, 2)
    with forged(app) as conn:  # the missed link is still held: the witnessed one signs it
        conn.execute(sa.delete(SEALS).where(SEALS.c.id == links(app)[0]["id"]))
    assert verify(app).problem.kind == "seal_removed"  # type: ignore[union-attr]


@file_only
def test_a_line_torn_by_a_crash_is_ended_and_skipped(app: Flask, witness_path: pathlib.Path) -> None:
    record(app)
    assert run(app, "seal")[0] == 0
    with open(witness_path, "ab") as fh:
        fh.write(b'{"format":"flask-audit-witness/1","id":')  # the crash
    record(app)
    assert run(app, "seal")[0] == 0
    assert witness_path.read_bytes().count(b"\n") == 3  # the torn line was ended first
    code, output = run(app, "verify")
    assert code == 0, output
    assert output.endswith(
        f"its 2 link(s) are in the chain, up to seal {links(app)[-1]['id']}; 1 unreadable line(s) skipped.\n"
    )


def test_concurrent_sealers_write_one_whole_line_per_link(app: Flask, witness_path: pathlib.Path) -> None:
    record(app, 40)
    witness = FileWitness(witness_path)
    results: list[sealing.SealResult] = []

    def sealer() -> None:
        results.append(sealing.seal(engine_of(app), KEY.encode(), max_events=5, witness=witness))

    threads = [threading.Thread(target=sealer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(result.seals for result in results) == len(links(app)) == 9
    assert sorted(line["id"] for line in lines(witness_path)) == [link["id"] for link in links(app)]
    report = check(app, witness_path)
    assert (report.ok, report.witnessed) == (True, 9)


@file_only
def test_entries_are_those_written_before_the_chain_is_read(app: Flask, witness_path: pathlib.Path) -> None:
    """A link sealed while verify runs may be in the file and not in verify's snapshot: the
    entries are fixed before the chain is read, so it is never taken for a removed one."""
    witness = FileWitness(witness_path)
    record(app)
    sealing.seal(engine_of(app), KEY.encode(), witness=witness)
    entries = witness.entries()
    record(app)
    sealing.seal(engine_of(app), KEY.encode(), witness=witness)
    assert [entry.id for entry in entries] == [links(app)[0]["id"]]
    assert len(list(witness.entries())) == 2


_WRITER = """
import sys
from flask_audit.integrity.witness import FileWitness, WitnessEntry
witness, n = FileWitness(sys.argv[1]), int(sys.argv[2])
for i in range(1, 101):
    link = n * 1000 + i
    entry = WitnessEntry(link, "seal", 1, i, 1, "2026-01-01T00:00:00Z", "p" * 6000, format(link, "064x"))
    witness.write(entry)
"""


def test_processes_appending_at_once_never_tear_a_line(tmp_path: pathlib.Path) -> None:
    """Lines longer than a pipe's atomic write (6 kB), from four processes at once."""
    path = tmp_path / "shared" / "seal-witness.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(n)], env=env) for n in range(1, 5)
    ]
    assert [writer.wait(120) for writer in writers] == [0, 0, 0, 0]
    entries = list(FileWitness(path).entries())
    assert len(entries) == 400
    assert sorted(entry.id for entry in entries) == [n * 1000 + i for n in range(1, 5) for i in range(1, 101)]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- what verify detects without --anchor ---------------------------------------------------


def test_an_intact_chain_beyond_the_witness_verifies(app: Flask, witness_path: pathlib.Path) -> None:
    """Another host sealed after this one: its links are not in this file, and that is fine."""
    three_seals(app)
    record(app)
    sealing.seal(engine_of(app), KEY.encode())  # the other host, with a witness of its own
    code, output = run(app, "verify")
    assert code == 0, output
    assert output.endswith(
        f"its 3 link(s) are in the chain, up to seal {links(app)[2]['id']}; 1 newer link(s) not in it.\n"
    )


def test_removing_the_newest_seals_with_their_events_is_detected(
    app: Flask, witness_path: pathlib.Path
) -> None:
    three_seals(app)
    chain = links(app)
    with forged(app) as conn:
        conn.execute(sa.delete(EVENTS).where(EVENTS.c.id > chain[0]["last_id"]))
        conn.execute(sa.delete(SEALS).where(SEALS.c.id > chain[0]["id"]))
    assert verify(app).ok  # what the chain alone says
    newest = WitnessEntry.from_link(chain[1])
    assert run(app, "verify") == (
        1,
        f"{FAILED}The chain ends at seal {chain[0]['id']}, but the witness recorded seal {chain[1]['id']}"
        f" (events up to {chain[1]['last_id']}, sealed {newest.sealed_at}): the newest seals were removed.\n",
    )
    record(app)  # sealing goes on after the attack: the witness still holds the removed links
    assert run(app, "seal")[0] == 0
    assert verify(app).ok
    problem = check(app, witness_path).problem
    assert problem is not None and (problem.kind, problem.seal_id) == ("witness_mismatch", chain[1]["id"])
    assert run(app, "verify")[0] == 1


def test_deleting_every_seal_is_detected(app: Flask, witness_path: pathlib.Path) -> None:
    three_seals(app)
    first = WitnessEntry.from_link(links(app)[0])
    with forged(app) as conn:
        conn.execute(sa.delete(SEALS))
    assert verify(app).ok
    assert run(app, "verify") == (
        1,
        f"{FAILED}The seal chain is empty, but the witness recorded seal {first.id} (events up to"
        f" {first.last_id}, sealed {first.sealed_at}): the seals were deleted or the tables emptied.\n",
    )


def test_truncating_both_tables_is_detected(app: Flask, backend: str) -> None:
    three_seals(app)
    with forged(app) as conn:
        if backend == "sqlite":
            conn.execute(sa.delete(EVENTS))
            conn.execute(sa.delete(SEALS))
        elif backend == "postgresql":
            conn.exec_driver_sql("TRUNCATE audit_event, audit_seal RESTART IDENTITY")
        else:
            conn.exec_driver_sql("TRUNCATE TABLE audit_event")
            conn.exec_driver_sql("TRUNCATE TABLE audit_seal")
    record(app)  # the app goes on recording
    assert verify(app).ok
    code, output = run(app, "verify")
    assert code == 1
    assert output.startswith(
        f"{FAILED}The seal chain is empty, but the witness recorded seal 1 (events up to 3,"
    )


def _rebuild(app: Flask) -> None:
    """Both tables emptied and the events put back with one changed, as a copy swapped in."""
    with forged(app) as conn:
        rows = [dict(row._mapping) for row in conn.execute(sa.select(EVENTS).order_by(EVENTS.c.id))]
        conn.execute(sa.delete(SEALS))
        conn.execute(sa.delete(EVENTS))
        rows[1]["activity"] = "Changed role of sam from Member to Admin"
        conn.execute(sa.insert(EVENTS), rows)


def test_a_table_rebuilt_without_the_key_is_detected(app: Flask) -> None:
    three_seals(app)
    _rebuild(app)
    assert verify(app).ok  # nothing sealed, as far as the database tells
    code, output = run(app, "verify")
    assert code == 1
    assert output.startswith(f"{FAILED}The seal chain is empty, but the witness recorded seal 1")


def test_a_chain_rebuilt_with_the_key_is_detected(app: Flask, witness_path: pathlib.Path) -> None:
    three_seals(app)
    _rebuild(app)
    sealing.seal(engine_of(app), KEY.encode())  # a whole chain, signed with the real key
    assert verify(app).ok
    problem = check(app, witness_path).problem
    assert problem is not None and (problem.kind, problem.seal_id) == ("witness_mismatch", 1)
    code, output = run(app, "verify")
    assert code == 1
    assert output.startswith(FAILED)
    assert "the witness recorded " in output and "(events up to 3, sealed " in output
    assert output.endswith(" the chain was replaced.\n")


def test_a_link_at_the_witnessed_id_with_another_hmac_is_named(
    app: Flask, witness_path: pathlib.Path
) -> None:
    three_seals(app)
    forged_entry = WitnessEntry.from_link({**links(app)[0], "hmac": "e" * 64})
    FileWitness(witness_path).write(forged_entry)
    problem = check(app, witness_path).problem
    assert problem is not None
    assert problem.message == (
        f"Seal 1 is not the one the witness recorded ({forged_entry.describe()}): its HMAC differs, so the"
        " chain was replaced."
    )


# -- the options ----------------------------------------------------------------------------


@file_only
def test_no_witness_file_yet_is_nothing_to_check(app: Flask, witness_path: pathlib.Path) -> None:
    assert run(app, "verify") == (
        0,
        f"Nothing is sealed yet: 1 event(s); run 'flask audit seal'. Witness {witness_path}: no file yet,"
        " nothing to check.\n",
    )
    witness_path.parent.mkdir()
    witness_path.write_text("")
    assert run(app, "verify")[1].endswith(f"Witness {witness_path}: no entries yet, nothing to check.\n")


def test_no_witness_skips_the_check_and_witness_reads_another_file(
    app: Flask, tmp_path: pathlib.Path
) -> None:
    three_seals(app)
    other = tmp_path / "host-b.jsonl"
    record(app)
    sealing.seal(engine_of(app), KEY.encode(), witness=FileWitness(other))
    code, output = run(app, "verify", "--witness", str(other))
    assert code == 0, output
    assert output.endswith(
        f"Witness {other}: its 1 link(s) are in the chain, up to seal {links(app)[-1]['id']}.\n"
    )
    with forged(app) as conn:
        conn.execute(sa.delete(SEALS))
    assert run(app, "verify", "--witness", str(other))[0] == 1
    assert run(app, "verify", "--no-witness") == (
        0,
        "Nothing is sealed yet: 9 event(s); run 'flask audit seal'. Witness not checked (--no-witness).\n",
    )
    code, output = run(app, "verify", "--witness", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "does not exist" in output
    code, output = run(app, "verify", "--witness", str(other), "--no-witness")
    assert code == 2 and "--witness and --no-witness exclude each other." in output


@file_only
def test_witness_off(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    app = make_app(AUDIT_SEAL_KEY=KEY, AUDIT_SEAL_WITNESS=False, AUDIT_SPOOL_PATH=str(tmp_path / "spool"))
    with app.app_context():
        assert audit_of(app).config.seal_witness is None
    assert run(app, "seal")[0] == 0
    assert sorted(os.listdir(tmp_path)) == []
    assert run(app, "verify")[1].endswith(" No witness (AUDIT_SEAL_WITNESS is False).\n")


@file_only
def test_a_witness_that_cannot_be_read_fails_verify(make_app: MakeApp, tmp_path: pathlib.Path) -> None:
    app = make_app(AUDIT_SEAL_KEY=KEY, AUDIT_SEAL_WITNESS=str(tmp_path))
    assert run(app, "verify") == (
        1,
        f"Error: The seal witness {tmp_path} could not be read: Is a directory.\n",
    )
