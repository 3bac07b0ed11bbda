from __future__ import annotations

import pathlib
import subprocess
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_wheel_ships_the_typed_package(tmp_path: pathlib.Path) -> None:
    """Builds the wheel as a user gets it: py.typed and the migrations must be inside."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    [wheel] = tmp_path.glob("flask_audit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "flask_audit/py.typed" in names
    assert "flask_audit/store/immutability.py" in names
    assert any(name.startswith("flask_audit/migrations/versions/") for name in names)
    assert not any(name.startswith("tests/") for name in names)
