"""``flask audit prune|seal|verify``: one summary line, non-zero exit on failure."""

from __future__ import annotations

import gzip
import json
import pathlib

import pytest
import sqlalchemy as sa
from flask import Flask

from .conftest import stored
from .sealing_fixtures import days_ago
from .sealing_fixtures import EVENTS
from .sealing_fixtures import forged
from .sealing_fixtures import KEY
from .sealing_fixtures import links
from .sealing_fixtures import record

sealed_app = pytest.mark.audit_config(AUDIT_SEAL_KEY=KEY)


def run(app: Flask, *args: str) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["audit", *args])
    return result.exit_code, result.output


def test_prune_dry_run_counts_and_changes_nothing(app: Flask) -> None:
    record(app, 3, occurred_at=days_ago(100))
    record(app)
    code, output = run(app, "prune", "--dry-run")
    assert code == 0, output
    assert output.startswith("Dry run: 3 event(s) older than ")
    assert output.endswith(" UTC (90 days) would be pruned.\n")
    assert output.count("\n") == 1
    assert len(stored(app)) == 4


def test_prune_deletes_records_itself_and_prints_one_line(app: Flask) -> None:
    record(app, 3, occurred_at=days_ago(100))
    record(app)
    code, output = run(app, "prune", "--batch-size", "2")
    assert code == 0, output
    assert output.startswith("Pruned 3 event(s) older than ")
    assert output.count("\n") == 1  # no progress bar when stdout is not a terminal
    [kept, pruned] = stored(app)
    assert pruned.event_type == "audit.pruned"
    assert (pruned.actor_email, pruned.details["count"], pruned.details["days"]) == ("system", 3, 90)


def test_prune_refuses_the_window_with_a_message(app: Flask) -> None:
    record(app, occurred_at=days_ago(100))
    code, output = run(app, "prune", "--days", "30")
    assert code == 1
    assert output == (
        "Error: Refusing to prune inside the retention window: 30 days is less than AUDIT_RETENTION_DAYS"
        " (90); events younger than that are never deleted.\n"
    )
    assert len(stored(app)) == 1


def test_prune_rejects_a_nonsense_batch_size(app: Flask) -> None:
    code, output = run(app, "prune", "--batch-size", "0")
    assert code == 2
    assert "Invalid value for '--batch-size': 0 is not in the range x>=1." in output


def test_prune_with_archive(app: Flask, tmp_path: pathlib.Path) -> None:
    old = record(app, 2, occurred_at=days_ago(100))
    record(app)
    target = tmp_path / "old.jsonl.gz"
    code, output = run(app, "prune", "--archive", str(target))
    assert code == 0, output
    assert output.endswith(f" UTC (90 days); archived to {target}.\n")
    with gzip.open(target, "rt", encoding="utf-8") as archived:
        assert [json.loads(line)["id"] for line in archived] == old
    code, output = run(app, "prune", "--archive", str(target))
    assert code == 1
    assert output == f"Error: The archive {target} already exists: prune never overwrites an archive.\n"


def test_seal_without_a_key_fails(app: Flask) -> None:
    code, output = run(app, "seal")
    assert code == 1
    assert output.startswith("Error: Cannot seal the audit trail: AUDIT_SEAL_KEY is not set.")


@sealed_app
def test_seal_then_verify(app: Flask, tmp_path: pathlib.Path) -> None:
    record(app, 4)
    code, output = run(app, "seal")
    assert code == 0, output
    head = links(app)[-1]["hmac"]
    assert output == f"Sealed 5 event(s), ids 1 to 5, in 1 seal(s); chain head {head}.\n"
    assert run(app, "seal") == (0, "Nothing new to seal: every committed event is sealed.\n")
    record(app)
    assert run(app, "verify") == (
        0,
        "Verified 5 sealed event(s) against 1 chain link(s); 1 newer event(s) not sealed yet."
        f" Witness {tmp_path / 'audit-seal-witness.jsonl'}: its 1 link(s) are in the chain, up to seal 1.\n",
    )
    assert run(app, "verify", "--anchor", head)[0] == 0
    assert run(app, "verify", "--anchor", "f" * 64) == (
        1,
        f"Error: Verification failed: The chain does not contain the anchor {'f' * 64}: the newest seals"
        " were removed.\n",
    )


@sealed_app
def test_verify_fails_naming_the_first_bad_event(app: Flask) -> None:
    ids = record(app, 3)
    run(app, "seal")
    with forged(app) as conn:
        conn.execute(sa.update(EVENTS).where(EVENTS.c.id == ids[1]).values(ip="203.0.113.9"))
    assert run(app, "verify") == (
        1,
        f"Error: Verification failed: Event {ids[1]} was modified after seal 1 sealed it.\n",
    )


@sealed_app
def test_verify_with_nothing_sealed_says_so(app: Flask, tmp_path: pathlib.Path) -> None:
    assert run(app, "verify") == (
        0,
        "Nothing is sealed yet: 1 event(s); run 'flask audit seal'."
        f" Witness {tmp_path / 'audit-seal-witness.jsonl'}: no file yet, nothing to check.\n",
    )


@sealed_app
def test_prune_of_a_sealed_trail_keeps_verify_passing(app: Flask) -> None:
    record(app, 3, occurred_at=days_ago(100))
    record(app)
    code, output = run(app, "prune")
    assert code == 0, output
    assert output.endswith("; recorded in the seal chain.\n")
    assert run(app, "seal")[0] == 0
    assert run(app, "verify")[0] == 0
