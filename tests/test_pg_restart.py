"""PostgreSQL restarted twice under load, through ``benchmarks/pg_restart.py`` at a small size.

The script starts a PostgreSQL server of its own (never the shared one the other tests use),
serves the demo app with gunicorn and restarts the server with ``-m fast`` and then
``-m immediate`` while the clients send their requests.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from .pgcluster_fixtures import require_server_binaries

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "pg_restart.py"


def test_postgresql_restarted_in_the_middle_of_the_load_loses_nothing() -> None:
    require_server_binaries()
    command = [sys.executable, str(SCRIPT), "--requests", "900", "--clients", "8", "--workers", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert done.stdout, done.stderr[-3000:]
    result = json.loads(done.stdout)["results"]["postgresql"]
    assert done.returncode == 0, result.get("error", done.stderr[-3000:])
    assert [restart["mode"] for restart in result["restarts"]] == ["fast", "immediate"]
    checks = result["checks"]
    assert (checks["lost"], checks["duplicated"], checks["mismatched"], checks["unexpected"]) == (0, 0, 0, 0)
    assert checks["status_other"] == {} and checks["refused_503_outside_outages"] == 0
    assert checks["succeeded_after_last_restart"] > 0
    assert checks["answered_as_expected"] + checks["refused_503"] == 900 + 100  # + the warm-up requests
    assert result["replays"][1]["inserted"] == 0
